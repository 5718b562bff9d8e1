//! `modelhost serve` as a child process: JSON logs on stderr collected by a thread, the bound
//! address read from the "modelhost listening" line, SIGTERM, and a kill on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ServeProcess {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts `modelhost serve` on 127.0.0.1 with a free port and JSON logs, plus `env`.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelhost"));
        command
            .arg("serve")
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("MODELHOST_POLL_INTERVAL_MS", "200")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cannot start modelhost");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        ServeProcess { child, stderr }
    }

    /// `http://addr` once the server logged where it listens.
    pub fn wait_for_address(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.stderr.lock().unwrap().iter().find_map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).ok()?;
                (value["message"] == "modelhost listening")
                    .then(|| value["addr"].as_str().map(str::to_string))?
            });
            if let Some(addr) = found {
                return format!("http://{addr}");
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("modelhost exited with {status}:\n{}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "no listening line:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("modelhost did not exit in {timeout:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `base/ready` until it answers 200; false if it does not within `timeout`.
pub async fn ready_within(client: &reqwest::Client, base: &str, timeout: Duration) -> bool {
    let ready = format!("{base}/ready");
    crate::common::eventually(timeout, || async {
        matches!(client.get(&ready).send().await, Ok(r) if r.status() == reqwest::StatusCode::OK)
    })
    .await
}
