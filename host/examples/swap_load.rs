//! Hot swap under load: continuous `/predict` traffic from several connections while versions
//! are published back to back by atomic rename, with file-system events and in polling-only
//! mode. Reports requests served and failed, and publish→live latency: from the moment the
//! rename that publishes a version returns to the moment the server's slot serves it (the slot
//! is polled every millisecond, in process).
//!
//! Run: `cargo run -p modelhost --example swap_load -- [--versions 100] [--connections 8]
//! [--poll-ms 2000] [--mode both|events|poll]`. Results are recorded in BENCHMARKS.md.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modelhost::artifact::build_artifact;
use modelhost::config::{self, Flags};
use modelhost::registry;
use modelhost_abi::info::{GoldenValue, ModelInfo};
use modelhost_abi::params::FittedFeature;
use serde_json::{Value, json};

struct Options {
    versions: usize,
    connections: usize,
    poll_ms: u64,
    modes: Vec<bool>,
}

fn options() -> Options {
    let mut options = Options {
        versions: 100,
        connections: 8,
        poll_ms: 2000,
        modes: vec![true, false],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{} needs a number, got {value:?}", pair[0]))
        };
        match pair[0].as_str() {
            "--versions" => options.versions = number() as usize,
            "--connections" => options.connections = number() as usize,
            "--poll-ms" => options.poll_ms = number(),
            "--mode" => {
                options.modes = match value {
                    "both" => vec![true, false],
                    "events" => vec![true],
                    "poll" => vec![false],
                    _ => panic!("--mode is both, events or poll, got {value:?}"),
                }
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    options
}

/// The churn schema; `version` names the artifact.
fn churn_info(version: &str) -> ModelInfo {
    serde_json::from_value(json!({
        "name": "churn", "version": version, "task": "binary-classification",
        "features": [
            {"name": "tenure_months", "kind": "integer", "min": 0, "max": 200},
            {"name": "num_complaints", "kind": "integer", "min": 0, "max": 50},
            {"name": "avg_session_minutes", "kind": "number", "min": 0, "max": 500},
            {"name": "plan_type", "kind": "categorical", "vocabulary": ["basic", "premium"], "case": "lower"},
            {"name": "region", "kind": "categorical", "vocabulary": ["AF", "AS", "EU", "NA"], "case": "upper"}
        ],
        "outputs": ["probability"], "threshold": 0.5,
        "training": {"n_rows": 900, "numeric": {}, "categorical": {}},
        "metrics": {}, "golden": []
    }))
    .expect("a valid info document")
}

/// A distinct artifact per `k`: the intercept moves with it.
fn artifact(version: &str, k: usize) -> Vec<u8> {
    let numeric = |mean, scale, coef| FittedFeature::Numeric { mean, scale, coef };
    let features = [
        numeric(30.0, 17.0, -0.5),
        numeric(1.2, 1.1, 0.7),
        numeric(35.0, 12.0, -0.25),
        FittedFeature::Categorical {
            coefs: vec![0.1, -0.1],
        },
        FittedFeature::Categorical {
            coefs: vec![0.05, 0.0, -0.03, 0.01],
        },
    ];
    let n = GoldenValue::Number;
    let c = |s: &str| GoldenValue::Category(s.to_string());
    let golden = [
        vec![n(6.0), n(3.0), n(12.5), c("basic"), c("AF")],
        vec![n(48.0), n(0.0), n(40.0), c("premium"), c("EU")],
    ];
    let intercept = 0.2 + k as f64 * 0.001;
    build_artifact(&churn_info(version), intercept, &features, &golden).expect("an artifact")
}

#[derive(Default)]
struct Tally {
    served: u64,
    failed: u64,
    versions: BTreeSet<String>,
    first_failure: Option<String>,
}

struct Report {
    tally: Tally,
    latencies: Vec<Duration>,
    missed: usize,
    elapsed: Duration,
}

async fn run(options: &Options, events: bool) -> Report {
    let registry = tempfile::tempdir().expect("a temp dir");
    let live = registry::live_path(registry.path(), "churn");
    registry::write_atomic(&live, &artifact("v0", 0)).expect("the first artifact");
    let flags: Flags = [
        ("registry_dir", registry.path().display().to_string()),
        (
            "log_dir",
            registry.path().join("logs").display().to_string(),
        ),
        ("host", "127.0.0.1".to_string()),
        ("port", "0".to_string()),
        ("poll_interval_ms", options.poll_ms.to_string()),
        ("watch_events", events.to_string()),
    ]
    .into_iter()
    .collect();
    let config = config::resolve(None, &|_| None, &flags).expect("a valid config");
    let server = modelhost::serve::start(&config).await.expect("a server");
    let serving = |server: &modelhost::serve::Server| {
        server.active.current().map(|m| m.version().to_string())
    };
    while serving(&server).as_deref() != Some("v0") {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let versions: Vec<(String, Vec<u8>)> = (1..=options.versions)
        .map(|k| (format!("v{k}"), artifact(&format!("v{k}"), k)))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("http://{}/predict", server.addr);
    let customer = json!({"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5,
        "plan_type": "basic", "region": "AF"});
    let clients: Vec<_> = (0..options.connections)
        .map(|_| {
            let (stop, url, customer) = (stop.clone(), url.clone(), customer.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let response = client.post(&url).json(&customer).send().await;
                    let ok = match response {
                        Ok(response) if response.status().is_success() => {
                            let body: Value = response.json().await.unwrap_or_default();
                            body["model_version"]
                                .as_str()
                                .map(|v| tally.versions.insert(v.to_string()))
                                .is_some()
                        }
                        Ok(response) => {
                            tally
                                .first_failure
                                .get_or_insert(response.status().to_string());
                            false
                        }
                        Err(e) => {
                            tally.first_failure.get_or_insert(e.to_string());
                            false
                        }
                    };
                    if ok {
                        tally.served += 1;
                    } else {
                        tally.failed += 1;
                    }
                }
                tally
            })
        })
        .collect();

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(versions.len());
    let mut missed = 0;
    for (version, bytes) in &versions {
        registry::write_atomic(&live, bytes).expect("a publish");
        let published = Instant::now();
        let deadline = published + Duration::from_millis(options.poll_ms) + Duration::from_secs(30);
        loop {
            if serving(&server).as_deref() == Some(version.as_str()) {
                latencies.push(published.elapsed());
                break;
            }
            if Instant::now() > deadline {
                missed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for client in clients {
        let one = client.await.expect("a client task");
        tally.served += one.served;
        tally.failed += one.failed;
        tally.versions.extend(one.versions);
        if tally.first_failure.is_none() {
            tally.first_failure = one.first_failure;
        }
    }
    let status = server.active.status();
    if status.rejections > 0 {
        eprintln!("unexpected rejections: {status:?}");
    }
    server.shutdown().await.expect("a clean shutdown");
    Report {
        tally,
        latencies,
        missed,
        elapsed,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let options = options();
    println!(
        "{} versions back to back, {} connections, poll interval {} ms, {} build",
        options.versions,
        options.connections,
        options.poll_ms,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "| mode | requests served | failed | req/s | versions answered | publish→live p50 | p90 | p99 | max | missed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &events in &options.modes {
        let mut report = run(&options, events).await;
        report.latencies.sort();
        let tally = &report.tally;
        println!(
            "| {} | {} | {} | {:.0} | {}/{} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
            if events {
                "events + poll"
            } else {
                "polling only"
            },
            tally.served,
            tally.failed,
            tally.served as f64 / report.elapsed.as_secs_f64(),
            tally.versions.len(),
            options.versions + 1,
            percentile(&report.latencies, 50.0),
            percentile(&report.latencies, 90.0),
            percentile(&report.latencies, 99.0),
            percentile(&report.latencies, 100.0),
            report.missed,
        );
        if let Some(failure) = &tally.first_failure {
            println!("first failure: {failure}");
        }
    }
}
