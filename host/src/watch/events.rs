//! File-system events: an accelerator for the poll, never the source of truth.
//!
//! [`Events`] watches the model folder (not recursively), or while it does not exist, its
//! nearest existing ancestor, so that the folder's creation wakes the watcher, which then
//! re-arms on the folder itself. notify calls back on its own thread; the callback only filters
//! the event and forwards a wake-up into a one-slot tokio channel (`try_send`: a full channel
//! already holds a wake-up), so it never blocks and never compiles anything. [`next_burst`]
//! resolves once a burst of wake-ups has been quiet for [`QUIET`], or [`MAX_DELAY`] after it
//! began if it never quiets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::registry::{CHECKSUM_FILE, LIVE_FILE};

/// How long a burst of events must be quiet before it triggers a check.
pub const QUIET: Duration = Duration::from_millis(75);

/// The longest a burst that never quiets delays its check.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// A directory being watched, and its identity (a folder deleted and created again is another).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    path: PathBuf,
    id: (u64, u64),
}

/// Event-driven wake-ups for one model folder.
pub struct Events {
    watcher: RecommendedWatcher,
    wakeups: mpsc::Receiver<()>,
    dir: PathBuf,
    watched: Option<Watched>,
    failed: bool,
}

impl Events {
    /// Starts watching `dir` (or its nearest existing ancestor).
    pub fn new(dir: &Path) -> notify::Result<Events> {
        let (tx, wakeups) = mpsc::channel(1);
        let filter_dir = dir.to_path_buf();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            // notify's thread: filter and forward, nothing else.
            if relevant(&filter_dir, &event) {
                let _ = tx.try_send(());
            }
        })?;
        let mut events = Events {
            watcher,
            wakeups,
            dir: dir.to_path_buf(),
            watched: None,
            failed: false,
        };
        events.arm();
        Ok(events)
    }

    /// The directory currently watched.
    #[cfg(test)]
    fn watched(&self) -> Option<&Path> {
        self.watched.as_ref().map(|w| w.path.as_path())
    }

    /// Watches the model folder, or its nearest existing ancestor while it does not exist. Cheap
    /// when nothing moved; called before every check.
    pub fn arm(&mut self) {
        let want = nearest_existing_dir(&self.dir);
        if want == self.watched {
            return;
        }
        if let Some(old) = self.watched.take() {
            // The folder may be gone, and its watch with it.
            let _ = self.watcher.unwatch(&old.path);
        }
        let Some(want) = want else {
            return;
        };
        match self.watcher.watch(&want.path, RecursiveMode::NonRecursive) {
            Ok(()) => {
                tracing::debug!(path = %want.path.display(), "watching for file-system events");
                self.watched = Some(want);
                self.failed = false;
            }
            Err(e) => {
                if !self.failed {
                    self.failed = true;
                    tracing::warn!(
                        path = %want.path.display(),
                        "cannot watch for file-system events, relying on the poll: {e}"
                    );
                }
            }
        }
    }
}

/// Resolves after the next burst of events has quietened; never, without events.
pub async fn next_burst(events: Option<&mut Events>) {
    let Some(events) = events else {
        return std::future::pending().await;
    };
    if events.wakeups.recv().await.is_none() {
        return std::future::pending().await;
    }
    debounce(&mut events.wakeups, QUIET, MAX_DELAY).await;
}

/// Waits until no wake-up has arrived for `quiet`, or until `max_delay` has passed.
async fn debounce(wakeups: &mut mpsc::Receiver<()>, quiet: Duration, max_delay: Duration) {
    let cap = Instant::now() + max_delay;
    loop {
        let deadline = (Instant::now() + quiet).min(cap);
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(deadline) => return,
            more = wakeups.recv() => if more.is_none() { return },
        }
    }
}

/// Whether an event may concern the model: everything except reads, and except changes to
/// other files directly inside the model folder (history, temp files, `versions/`). When in
/// doubt, wake: a needless check costs one `stat`.
fn relevant(dir: &Path, event: &notify::Result<Event>) -> bool {
    let Ok(event) = event else {
        return true;
    };
    if event.need_rescan() || event.paths.is_empty() {
        return true;
    }
    if let EventKind::Access(kind) = event.kind {
        // Opening and reading (the watcher's own reads among them) change nothing.
        if kind != AccessKind::Close(AccessMode::Write) {
            return false;
        }
    }
    event.paths.iter().any(|path| {
        let sibling = path.parent() == Some(dir)
            && path
                .file_name()
                .is_some_and(|name| name != LIVE_FILE && name != CHECKSUM_FILE);
        !sibling
    })
}

/// `dir` if it is a directory, else its nearest ancestor that is one.
fn nearest_existing_dir(dir: &Path) -> Option<Watched> {
    let mut candidate = Some(dir);
    while let Some(path) = candidate {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        if let Ok(meta) = std::fs::metadata(path)
            && meta.is_dir()
        {
            return Some(Watched {
                path: path.to_path_buf(),
                id: dir_id(&meta),
            });
        }
        candidate = path.parent();
    }
    None
}

#[cfg(unix)]
fn dir_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, paths: &[&Path]) -> notify::Result<Event> {
        let mut event = Event::new(kind);
        for path in paths {
            event = event.add_path(path.to_path_buf());
        }
        Ok(event)
    }

    #[test]
    fn only_events_that_may_concern_the_model_wake_the_watcher() {
        let dir = Path::new("/registry/churn");
        let live = dir.join("model.wasm");
        let temp = dir.join(".model.wasm.tmp-42");
        let data = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any));
        let wakes = |kind, paths: &[&Path]| relevant(dir, &event(kind, paths));
        assert!(wakes(data, &[&live]));
        assert!(wakes(data, &[&dir.join("model.wasm.sha256")]));
        assert!(wakes(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &[&temp, &live]
        ));
        assert!(wakes(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[&live]
        ));
        assert!(wakes(
            EventKind::Remove(notify::event::RemoveKind::Folder),
            &[dir]
        ));
        assert!(
            wakes(
                EventKind::Create(CreateKind::Folder),
                &[Path::new("/registry/churn")]
            ),
            "the folder appearing, seen from an ancestor"
        );
        assert!(wakes(EventKind::Other, &[]));
        assert!(relevant(
            dir,
            &Err(notify::Error::generic("queue overflow"))
        ));

        assert!(!wakes(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &[&live]
        ));
        assert!(!wakes(data, &[&dir.join("history.jsonl")]));
        assert!(!wakes(EventKind::Create(CreateKind::File), &[&temp]));
    }

    #[test]
    fn the_nearest_existing_ancestor_is_watched_until_the_folder_exists() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("registry/churn");
        let mut events = Events::new(&dir).unwrap();
        assert_eq!(events.watched(), Some(root.path()));
        std::fs::create_dir_all(&dir).unwrap();
        events.arm();
        assert_eq!(events.watched(), Some(dir.as_path()));
        // Deleted and created again: the new folder is watched.
        std::fs::remove_dir(&dir).unwrap();
        events.arm();
        assert_eq!(
            events.watched(),
            Some(root.path().join("registry").as_path())
        );
        std::fs::create_dir(&dir).unwrap();
        events.arm();
        assert_eq!(events.watched(), Some(dir.as_path()));
    }

    #[tokio::test]
    async fn a_write_to_the_artifact_wakes_the_watcher() {
        let root = tempfile::tempdir().unwrap();
        let mut events = Events::new(root.path()).unwrap();
        std::fs::write(root.path().join("model.wasm"), b"bytes").unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(10), next_burst(Some(&mut events)));
        assert!(
            woke.await.is_ok(),
            "no event arrived for a write to model.wasm"
        );
    }

    #[tokio::test]
    async fn a_burst_is_coalesced_until_it_quietens() {
        let (tx, mut rx) = mpsc::channel(1);
        let keep_open = tx.clone();
        let started = Instant::now();
        let sender = tokio::spawn(async move {
            for _ in 0..6 {
                let _ = tx.try_send(());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        debounce(&mut rx, Duration::from_millis(250), Duration::from_secs(10)).await;
        // Six wake-ups 10 ms apart, then 250 ms of quiet.
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        sender.await.unwrap();
        drop(keep_open);
    }

    #[tokio::test]
    async fn a_burst_that_never_quietens_is_cut_at_the_maximum_delay() {
        let (tx, mut rx) = mpsc::channel(1);
        let sender = tokio::spawn(async move {
            while !tx.is_closed() {
                let _ = tx.try_send(());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let started = Instant::now();
        debounce(
            &mut rx,
            Duration::from_millis(200),
            Duration::from_millis(300),
        )
        .await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        drop(rx);
        sender.await.unwrap();
    }
}
