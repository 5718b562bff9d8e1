//! The prediction log: one JSON line per answered prediction in `LOG_DIR/predictions.log`.
//!
//! Handlers hand finished lines to a bounded queue ([`PredictionLog::record`] never blocks and
//! never fails a request); one writer thread appends them, flushing whenever the queue runs dry,
//! and rotates the file by size (`predictions.log` → `.1` → … → `.N`, the oldest dropped).
//! Closing the log ([`PredictionLog::close`]) drains the queue and flushes before it returns.
//! A full queue or an unwritable directory loses lines, never requests: every lost line is
//! counted and the first loss of a kind is logged.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer rests after each flush (see `Writer::run`).
const BATCH_PAUSE: Duration = Duration::from_millis(20);

/// File name inside `LOG_DIR`.
pub const FILE_NAME: &str = "predictions.log";

/// Rotation and queue settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`predictions.log.1` … `.N`).
    pub keep: u32,
    /// Lines that may wait for the writer before new ones are dropped.
    pub queue: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_bytes: 50 << 20,
            keep: 5,
            queue: 65_536,
        }
    }
}

/// Counters shared by the handle and the writer.
#[derive(Debug, Default)]
pub struct LogCounters {
    /// Lines appended to the file.
    pub written: AtomicU64,
    /// Lines lost (queue full, or the file could not be written).
    pub dropped: AtomicU64,
    warned_full: AtomicBool,
}

/// The handle handlers use. Cheap to clone.
#[derive(Clone)]
pub struct PredictionLog {
    sender: Arc<Mutex<Option<SyncSender<String>>>>,
    counters: Arc<LogCounters>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    path: PathBuf,
}

impl PredictionLog {
    /// Starts the writer thread for `dir/predictions.log`. The directory is created if needed;
    /// if that fails the log still starts, counting every line as dropped until it works.
    pub fn start(dir: &Path, settings: LogSettings) -> Self {
        let (sender, receiver) = sync_channel(settings.queue.max(1));
        let counters = Arc::new(LogCounters::default());
        let path = dir.join(FILE_NAME);
        let writer = Writer {
            path: path.clone(),
            settings,
            counters: counters.clone(),
            file: None,
            size: 0,
            failing: false,
        };
        let handle = std::thread::Builder::new()
            .name("modelhost-predlog".into())
            .spawn(move || writer.run(receiver))
            .expect("cannot spawn the prediction-log writer thread");
        PredictionLog {
            sender: Arc::new(Mutex::new(Some(sender))),
            counters,
            writer: Arc::new(Mutex::new(Some(handle))),
            path,
        }
    }

    /// Where lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The written/dropped counters.
    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }

    /// A shared handle on the counters, for the metrics exposition.
    pub fn counters_handle(&self) -> Arc<LogCounters> {
        self.counters.clone()
    }

    /// Queues one line (without its newline). Never blocks.
    pub fn record(&self, line: String) {
        let guard = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = guard.as_ref() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match sender.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.counters.warned_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %self.path.display(), "prediction log queue is full; dropping lines (counted in modelhost_prediction_log_lines_dropped_total)");
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops accepting lines, writes everything queued, flushes, and waits for the writer.
    pub fn close(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

struct Writer {
    path: PathBuf,
    settings: LogSettings,
    counters: Arc<LogCounters>,
    file: Option<BufWriter<File>>,
    size: u64,
    failing: bool,
}

impl Writer {
    fn run(mut self, receiver: Receiver<String>) {
        loop {
            match receiver.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.write_line(&line);
                    // Write whatever else is already queued, then flush once.
                    while let Ok(line) = receiver.try_recv() {
                        self.write_line(&line);
                    }
                    self.flush();
                    // Let lines gather before the next wake-up: under load, one wake-up and one
                    // write per batch instead of per line. The queue holds far more than arrives
                    // meanwhile; closing the log waits at most this long more.
                    std::thread::sleep(BATCH_PAUSE);
                }
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    fn write_line(&mut self, line: &str) {
        let needed = line.len() as u64 + 1;
        if self.size > 0 && self.size + needed > self.settings.max_bytes {
            self.rotate();
        }
        if self.file.is_none() {
            self.open();
        }
        let Some(file) = self.file.as_mut() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let result = file
            .write_all(line.as_bytes())
            .and_then(|()| file.write_all(b"\n"));
        match result {
            Ok(()) => {
                self.size += needed;
                self.counters.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                self.fail(&e.to_string());
                self.file = None;
            }
        }
    }

    fn open(&mut self) {
        let result = self
            .path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
            });
        match result {
            Ok(file) => {
                self.size = file.metadata().map_or(0, |m| m.len());
                self.file = Some(BufWriter::with_capacity(64 << 10, file));
                if self.failing {
                    tracing::info!(path = %self.path.display(), "prediction log is writable again");
                    self.failing = false;
                }
            }
            Err(e) => self.fail(&e.to_string()),
        }
    }

    fn fail(&mut self, error: &str) {
        if !self.failing {
            self.failing = true;
            tracing::error!(path = %self.path.display(), error, "cannot write the prediction log; serving continues and lost lines are counted");
        }
    }

    fn flush(&mut self) {
        if let Some(file) = self.file.as_mut()
            && let Err(e) = file.flush()
        {
            self.fail(&e.to_string());
            self.file = None;
        }
    }

    /// `predictions.log.{keep-1}` → `.{keep}`, …, `predictions.log` → `.1`, then a new file.
    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.settings.keep == 0 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            for n in (1..self.settings.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            if let Err(e) = std::fs::rename(&self.path, numbered(1)) {
                self.fail(&format!("rotation failed: {e}"));
            }
        }
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_in(dir: &Path) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // Oldest first: highest rotation number first, the live file last.
        files.sort_by_key(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            std::cmp::Reverse(
                name.rsplit('.')
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0),
            )
        });
        files
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_line_survives_rotation_in_order_under_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogSettings {
            max_bytes: 4096,
            keep: 1000,
            queue: 1 << 20,
        };
        let log = PredictionLog::start(dir.path(), settings);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..2500 {
                        log.record(format!(r#"{{"thread":{t},"i":{i}}}"#));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        log.close();
        let lines = lines_in(dir.path());
        assert_eq!(lines.len(), 10_000);
        assert_eq!(log.counters().written.load(Ordering::Relaxed), 10_000);
        assert_eq!(log.counters().dropped.load(Ordering::Relaxed), 0);
        assert!(
            std::fs::read_dir(dir.path()).unwrap().count() > 2,
            "rotation happened"
        );
        // Each writer's lines keep their order across files.
        for t in 0..4 {
            let mine: Vec<u64> = lines
                .iter()
                .filter_map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (v["thread"] == t).then(|| v["i"].as_u64().unwrap())
                })
                .collect();
            assert_eq!(mine, (0..2500).collect::<Vec<_>>());
        }
    }

    #[test]
    fn rotation_keeps_only_the_configured_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = PredictionLog::start(
            dir.path(),
            LogSettings {
                max_bytes: 100,
                keep: 2,
                queue: 1000,
            },
        );
        for i in 0..100 {
            log.record(format!("line number {i:04} with some padding"));
        }
        log.close();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["predictions.log", "predictions.log.1", "predictions.log.2"]
        );
        let last = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(last.ends_with("line number 0099 with some padding\n"));
    }

    #[test]
    fn an_unwritable_directory_counts_lost_lines_and_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the directory should be: nothing can be created under it.
        let blocked = dir.path().join("not-a-dir");
        std::fs::write(&blocked, b"").unwrap();
        let log = PredictionLog::start(&blocked, LogSettings::default());
        for i in 0..10 {
            log.record(format!("{i}"));
        }
        log.close();
        assert_eq!(log.counters().written.load(Ordering::Relaxed), 0);
        assert_eq!(log.counters().dropped.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let log = PredictionLog::start(
            dir.path(),
            LogSettings {
                max_bytes: 1 << 20,
                keep: 1,
                queue: 1,
            },
        );
        for i in 0..10_000 {
            log.record(format!("{i}"));
        }
        log.close();
        let written = log.counters().written.load(Ordering::Relaxed);
        let dropped = log.counters().dropped.load(Ordering::Relaxed);
        assert_eq!(written + dropped, 10_000);
        assert_eq!(lines_in(dir.path()).len() as u64, written);
    }
}
