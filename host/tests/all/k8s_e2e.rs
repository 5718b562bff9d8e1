//! The cluster's parts played on one machine with the real binary: a temp directory is the
//! PersistentVolume, the training Job's command (from `k8s/job-train.yaml`) writes the first
//! model into it, two `serve` processes with the Deployment's environment are the replicas, the
//! probes are polled as configured, the Secret mounted as a file guards their metrics, a second
//! Job run with other data swaps both replicas, the drift CronJob reads both replicas' logs, and
//! SIGTERM stops a replica within its grace period.
//!
//! What differs from a cluster, and why: the replicas listen on free loopback ports (two
//! processes cannot share port 8000) and log JSON so the test can read each one's address;
//! container paths are mapped to the temp volume as the volume mounts say, and a Secret volume
//! to a temp directory of the pod's own holding the Secret's files.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, PodSpec, Probe};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{eventually, example_customer};
use crate::k8s::{
    container, container_env, deployment, job, job_pod_spec, map_path, pod_spec, repo_root,
    secret_data, secret_mounts,
};

/// Where the image keeps its seed registry; the repository's `registry/` plays it here.
const IMAGE_SEED_DIR: &str = "/opt/modelhost/registry";

/// A pod's view of its volumes: container path → path on this machine.
struct Pod {
    name: String,
    mounts: Vec<(PathBuf, PathBuf)>,
    /// Where this pod's Secret volumes are written, removed with the pod.
    _secrets: tempfile::TempDir,
}

impl Pod {
    /// The mounts of `spec`'s container: those of the claim on `volume`, with `$(POD_NAME)`
    /// expanded (like the kubelet, it creates each sub path on the volume), and the Secret
    /// volumes, written to a directory of the pod's own.
    fn new(name: &str, spec: &PodSpec, volume: &Path) -> Pod {
        let container = container(spec);
        let secrets = tempfile::tempdir().unwrap();
        let mut mounts = vec![(PathBuf::from(IMAGE_SEED_DIR), repo_root().join("registry"))];
        mounts.extend(secret_mounts(spec, secrets.path()));
        for mount in container.volume_mounts.iter().flatten() {
            let claim = spec
                .volumes
                .iter()
                .flatten()
                .any(|v| v.name == mount.name && v.persistent_volume_claim.is_some());
            if !claim {
                continue;
            }
            let sub = mount
                .sub_path
                .clone()
                .or_else(|| mount.sub_path_expr.clone())
                .unwrap_or_default()
                .replace("$(POD_NAME)", name);
            let on_volume = volume.join(sub);
            std::fs::create_dir_all(&on_volume).unwrap();
            mounts.push((PathBuf::from(&mount.mount_path), on_volume));
        }
        Pod {
            name: name.to_string(),
            mounts,
            _secrets: secrets,
        }
    }

    /// `value` with a container path in it moved onto this machine.
    fn map(&self, value: &str) -> String {
        map_path(&self.mounts, value)
    }

    /// The container's environment (image, ConfigMap, Secret, env) with paths mapped.
    fn env(&self, container: &Container) -> BTreeMap<String, String> {
        container_env(container, &self.name)
            .into_iter()
            .map(|(key, value)| {
                let value = self.map(&value);
                (key, value)
            })
            .collect()
    }

    /// The container's args with paths mapped.
    fn args(&self, container: &Container) -> Vec<String> {
        container
            .args
            .iter()
            .flatten()
            .map(|a| self.map(a))
            .collect()
    }
}

/// A child process whose output is collected by a thread, killed if still running on drop.
pub(crate) struct Process {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub(crate) fn spawn(args: &[String], env: &BTreeMap<String, String>) -> Process {
        Process::spawn_in(args, env, None)
    }

    /// Like [`Process::spawn`], in the working directory `cwd` (else this process's).
    pub(crate) fn spawn_in(
        args: &[String],
        env: &BTreeMap<String, String>,
        cwd: Option<&Path>,
    ) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modelhost"));
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start modelhost");
        let output = Arc::new(Mutex::new(Vec::new()));
        let collect = |pipe: Box<dyn Read + Send>| {
            let lines = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        };
        collect(Box::new(child.stdout.take().unwrap()));
        collect(Box::new(child.stderr.take().unwrap()));
        Process { child, output }
    }

    pub(crate) fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Polls until the process exits; `None` if it still runs after `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://addr` from the "modelhost listening" log line.
    pub(crate) fn address(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.output.lock().unwrap().iter().find_map(|line| {
                let value: Value = serde_json::from_str(line).ok()?;
                (value["message"] == "modelhost listening")
                    .then(|| value["addr"].as_str().map(str::to_string))?
            });
            if let Some(addr) = found {
                return format!("http://{addr}");
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("modelhost exited with {status}:\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "no listening line:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal `name` (`TERM`, `INT`, …) with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the Job's container on the volume, with `args` changed by `edit`; its exit code.
fn run_job(volume: &Path, edit: impl FnOnce(&mut Vec<String>)) -> (Option<i32>, String) {
    let job = job();
    let container = container(job_pod_spec(&job));
    let pod = Pod::new("churn-train-x7k2p", job_pod_spec(&job), volume);
    let mut args = pod.args(container);
    edit(&mut args);
    let mut process = Process::spawn(&args, &pod.env(container));
    let status = process
        .wait(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the Job did not finish:\n{}", process.output()));
    (status.code(), process.output())
}

/// A replica: `modelhost serve` with the Deployment's environment.
struct Replica {
    name: String,
    process: Process,
    base: String,
}

fn start_replica(name: &str, volume: &Path) -> Replica {
    let deployment = deployment();
    let container = container(pod_spec(&deployment));
    let pod = Pod::new(name, pod_spec(&deployment), volume);
    let mut env = pod.env(container);
    env.insert("HOST".into(), "127.0.0.1".into());
    env.insert("PORT".into(), "0".into());
    env.insert("LOG_FORMAT".into(), "json".into());
    let mut args = pod.args(container);
    if args.is_empty() {
        args.push("serve".into());
    }
    let mut process = Process::spawn(&args, &env);
    let base = process.address(Duration::from_secs(30));
    Replica {
        name: name.to_string(),
        process,
        base,
    }
}

/// One probe as the kubelet runs it: a GET with the probe's timeout; 200-399 passes.
async fn probe_passes(client: &reqwest::Client, base: &str, probe: &Probe) -> bool {
    let http = probe.http_get.as_ref().unwrap();
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1) as u64);
    let url = format!("{base}{}", http.path.as_deref().unwrap_or("/"));
    match client.get(url).timeout(timeout).send().await {
        Ok(response) => (200..400).contains(&response.status().as_u16()),
        Err(_) => false,
    }
}

/// How long a probe may keep failing before the kubelet acts.
fn patience(probe: &Probe) -> Duration {
    let threshold = probe.failure_threshold.unwrap_or(3) as u64;
    let period = probe.period_seconds.unwrap_or(10) as u64;
    let initial = probe.initial_delay_seconds.unwrap_or(0) as u64;
    Duration::from_secs(initial + threshold * period)
}

async fn predict(client: &reqwest::Client, base: &str) -> Value {
    let response = client
        .post(format!("{base}/predict"))
        .json(&example_customer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn ready_version(client: &reqwest::Client, base: &str) -> Option<String> {
    let response = client.get(format!("{base}/ready")).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body["version"].as_str().map(str::to_string)
}

/// The version of the last line of the volume's `history.jsonl`.
fn last_history_version(volume: &Path) -> String {
    let text = std::fs::read_to_string(volume.join("registry/churn/history.jsonl")).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    line["version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_then_two_replicas_then_a_new_job_swaps_both() {
    let volume = tempfile::tempdir().unwrap();
    let volume = volume.path();

    // Step 12: the training Job writes the first model into the volume.
    let (code, output) = run_job(volume, |_| {});
    assert_eq!(code, Some(0), "the Job must train and promote:\n{output}");
    let first = last_history_version(volume);

    // Step 6: two replicas on the same volume, each with its own log directory.
    let replicas = [
        start_replica("churn-api-5c9d7-a1b2c", volume),
        start_replica("churn-api-5c9d7-d3e4f", volume),
    ];
    let deployment = deployment();
    let serving = container(pod_spec(&deployment));
    let client = reqwest::Client::new();

    // Step 11: the startup probe passes within its patience, then liveness and readiness.
    let startup = serving.startup_probe.as_ref().unwrap();
    for replica in &replicas {
        let started = eventually(patience(startup), || {
            probe_passes(&client, &replica.base, startup)
        })
        .await;
        assert!(
            started,
            "{}: startup probe\n{}",
            replica.name,
            replica.process.output()
        );
        for probe in [&serving.liveness_probe, &serving.readiness_probe] {
            let probe = probe.as_ref().unwrap();
            assert!(probe_passes(&client, &replica.base, probe).await);
        }
    }
    // The Job's model was on the volume first, so the image's seed was not installed.
    let history = std::fs::read_to_string(volume.join("registry/churn/history.jsonl")).unwrap();
    assert!(!history.contains("\"event\":\"seed\""), "{history}");

    // Step 9: the Secret, mounted as a file, guards each replica's metrics.
    let token = &secret_data()["MONITORING_TOKEN"];
    for replica in &replicas {
        let metrics = format!("{}/metrics", replica.base);
        let open = client.get(&metrics).send().await.unwrap();
        assert_eq!(open.status(), StatusCode::UNAUTHORIZED, "{}", replica.name);
        let guarded = client
            .get(&metrics)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(guarded.status(), StatusCode::OK, "{}", replica.name);
    }

    // Step 7: predictions from both replicas, named with the Job's version.
    for replica in &replicas {
        let answer = predict(&client, &replica.base).await;
        assert_eq!(answer["model_version"], first.as_str(), "{}", replica.name);
        assert_eq!(answer["request_id"], "req-001");
    }

    // The Job again, with other data: a new version, and both replicas switch to it.
    let (code, output) = run_job(volume, |args| {
        let seed = args.iter().position(|a| a == "--seed").unwrap();
        args[seed + 1] = "8".to_string();
    });
    assert_eq!(code, Some(0), "the second Job must promote:\n{output}");
    let second = last_history_version(volume);
    assert_ne!(second, first, "other data must give another model");
    for replica in &replicas {
        let swapped = eventually(Duration::from_secs(30), || async {
            ready_version(&client, &replica.base).await.as_deref() == Some(second.as_str())
        })
        .await;
        assert!(
            swapped,
            "{} did not swap to {second}:\n{}",
            replica.name,
            replica.process.output()
        );
        let answer = predict(&client, &replica.base).await;
        assert_eq!(answer["model_version"], second.as_str());
    }

    // Each replica logged its own predictions, both versions, in its own directory.
    for replica in &replicas {
        let log = volume
            .join("logs")
            .join(&replica.name)
            .join("predictions.log");
        let logged = eventually(Duration::from_secs(10), || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains(first.as_str()) && text.contains(second.as_str())
        })
        .await;
        assert!(logged, "{} did not log both versions", log.display());
    }

    // The drift CronJob's command reads every replica's log on the volume (exit 3: drift in
    // two identical requests is expected; 0 would be fine too, 65 would mean no log found).
    let cron: k8s_openapi::api::batch::v1::CronJob = crate::k8s::manifest("cronjob-drift.yaml");
    let drift_pod = cron
        .spec
        .unwrap()
        .job_template
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let drift = container(&drift_pod);
    let pod = Pod::new("churn-drift-29001234-q8w9e", &drift_pod, volume);
    let mut process = Process::spawn(&pod.args(drift), &pod.env(drift));
    let status = process
        .wait(Duration::from_secs(60))
        .expect("drift finishes");
    assert!(
        matches!(status.code(), Some(0 | 3)),
        "drift exited {status}:\n{}",
        process.output()
    );

    // Scale in: SIGTERM one replica. It reports not ready at once, the other keeps serving,
    // and it exits cleanly within the grace period.
    let [mut leaving, staying] = replicas;
    leaving.process.terminate();
    let not_ready = eventually(Duration::from_secs(5), || async {
        let response = client.get(format!("{}/ready", leaving.base)).send().await;
        matches!(response, Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE)
    })
    .await;
    assert!(not_ready, "a terminating replica must leave the Service");
    assert_eq!(
        ready_version(&client, &staying.base).await.as_deref(),
        Some(second.as_str())
    );
    let grace = Duration::from_secs(
        pod_spec(&deployment)
            .termination_grace_period_seconds
            .unwrap() as u64,
    );
    let status = leaving
        .process
        .wait(grace)
        .unwrap_or_else(|| panic!("still running after {grace:?}"));
    assert!(status.success(), "{status}:\n{}", leaving.process.output());
}
