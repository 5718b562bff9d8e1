//! Crash-safe file writes: a reader, or a crash at any instant, sees either the old file or the
//! whole new one, never a mix. Every registry write goes through here.

use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a reader (or a crash) sees either the old file or the whole
/// new one: write a temp file in the same directory, fsync it, rename it over `path`, fsync the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file written the way [`write_atomic`] writes one, but streamed: the content goes to a
/// temp file `.<name>.tmp-<pid>-<random>` beside `path`, and [`AtomicFile::commit`] fsyncs it and
/// renames it over `path`. Dropped without a commit, the temp file is removed and `path` is
/// untouched. The random part matters on shared volumes: processes in different containers
/// (every one PID 1, say) never write to the same temp file.
pub struct AtomicFile {
    path: PathBuf,
    dir: PathBuf,
    temp: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// Set once the temp file has been renamed: from then on it is not ours to remove.
    renamed: bool,
}

impl AtomicFile {
    /// Creates the temp file (and `path`'s directory, if needed).
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let dir = match path.parent() {
            Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
            Some(dir) => dir,
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{} has no parent directory", path.display()),
                ));
            }
        };
        std::fs::create_dir_all(dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temp = dir.join(temp_name(name));
        let file = std::fs::File::create_new(&temp)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            temp,
            file: Some(std::io::BufWriter::new(file)),
            renamed: false,
        })
    }

    /// Flushes and fsyncs the temp file, renames it over the target and fsyncs the directory.
    pub fn commit(mut self) -> std::io::Result<()> {
        let Some(writer) = self.file.take() else {
            return Ok(());
        };
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)?;
        self.renamed = true;
        sync_dir(&self.dir)
    }

    fn writer(&mut self) -> std::io::Result<&mut std::io::BufWriter<std::fs::File>> {
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("atomic file already committed"))
    }
}

impl std::io::Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// `.<name>.tmp-<pid>-<random>`: hidden (the watcher and the version listing skip dot files)
/// and unique to this call.
pub(super) fn temp_name(name: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(".{name}.tmp-{}-{}", std::process::id(), &random[..12])
}

/// Makes a rename or removal of `path` durable by syncing its directory.
pub(super) fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Makes a rename in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn write_atomic_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m/model.wasm");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second version").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second version");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("m"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.wasm"]);
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_alone_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        write_atomic(&path, b"old").unwrap();
        {
            let mut file = AtomicFile::create(&path).unwrap();
            file.write_all(b"partial").unwrap();
            file.flush().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.jsonl"]);
    }
}
