//! Crash-safe file writes: a reader, or a crash at any instant, sees either the old file or the
//! whole new one, never a mix. Every registry write goes through here.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        &random[..TEMP_RANDOM_LEN]
    )
}

/// Hex digits of randomness in a [`temp_name`].
const TEMP_RANDOM_LEN: usize = 12;

/// Whether `name` is one that [`temp_name`] makes: `.<name>.tmp-<digits>-<12 lower-case hex>`.
/// Nothing else is ever taken for a leftover, so an operator's own dot files are safe.
pub(super) fn is_temp_name(name: &str) -> bool {
    let Some((target, tail)) = name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".tmp-"))
    else {
        return false;
    };
    let Some((pid, random)) = tail.split_once('-') else {
        return false;
    };
    !target.is_empty()
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && random.len() == TEMP_RANDOM_LEN
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How long a temp file must have gone unmodified before it is taken for the leftover of a
/// writer that was killed. A writer in progress cannot be this old: every write refreshes the
/// temp file's mtime, and what follows the last write (an fsync and a rename) takes seconds even
/// on a slow network volume, never an hour. The hour also absorbs clock skew between the hosts
/// sharing a volume, whose server may stamp mtimes by its own clock.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Removes the temp files in `dir` that [`is_temp_name`] recognises and that were last
/// modified at least [`STALE_TEMP_AGE`] ago; returns how many were removed. Directories,
/// symlinks, other names and younger temp files are left alone, as is a temp file another
/// process removed first. A missing `dir` holds nothing to remove.
pub(super) fn remove_stale_temps(dir: &Path) -> std::io::Result<usize> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for item in listing {
        let item = item?;
        if !item.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        let meta = match std::fs::symlink_metadata(item.path()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if !meta.is_file() || age.is_none_or(|age| age < STALE_TEMP_AGE) {
            continue;
        }
        match std::fs::remove_file(item.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot remove {}: {e}", item.path().display()),
                ));
            }
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Writes `bytes` to `path` crash-safely unless `path` exists: a unique temp file beside it is
/// written and fsynced, then hard-linked to `path` (which fails if `path` exists, atomically)
/// and removed. True if this call created `path`.
pub(super) fn link_new(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = TempFile(dir.join(temp_name(name)));
    let mut file = std::fs::File::create_new(&temp.0)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    let created = match std::fs::hard_link(&temp.0, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        // File systems without hard links: check, then rename. The window between the two is
        // small, and what could slip in is the same kind of complete file.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            match std::fs::symlink_metadata(path) {
                Ok(_) => false,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::rename(&temp.0, path)?;
                    true
                }
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    drop(temp);
    sync_dir(dir)?;
    Ok(created)
}

/// A temp file removed when dropped (after a link, the name goes and the file stays).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
