//! Rows per second for batches of 1, 100 and 1000 rows, in process: the model call alone (one
//! fresh wasm instance per batch), and the whole request path through the router without a
//! socket (JSON parsing, validation, one model call, the answer, the prediction log) for the
//! lab's `POST /predict` with `instances` and for the v2 infer route. One request at a time.
//!
//! `--write-bodies DIR` also writes the request bodies (`predict-<rows>.json`,
//! `infer-<rows>.json`) that `batch_throughput.lua` sends with wrk over HTTP.
//!
//! Each figure is the median of `--repeat` measurements of `--seconds` each, so a burst of other
//! work on a shared machine moves it less.
//!
//! Run: `cargo run --release -p modelhost --example batch_throughput -- [--seconds 3] [--repeat 5]
//! [--rows 1,100,1000] [--write-bodies DIR] [--prediction-log true|false]`. Results are recorded
//! in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use modelhost::http::{AppState, Observers, app};
use modelhost::model::executor::{Executor, call_threads};
use modelhost::model::schema::prepare_row;
use modelhost::model::{ActiveModel, Model};
use modelhost::runtime::{Limits, Runtime};
use modelhost::telemetry::predlog::{LogSettings, PredictionLog};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Options {
    seconds: f64,
    repeat: usize,
    rows: Vec<usize>,
    write_bodies: Option<PathBuf>,
    /// Whether answered rows are written to a prediction log, as the server does by default.
    prediction_log: bool,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 3.0,
        repeat: 5,
        rows: vec![1, 100, 1000],
        write_bodies: None,
        prediction_log: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--seconds" => {
                options.seconds = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--seconds needs a number, got {value:?}"))
            }
            "--rows" => {
                options.rows = value
                    .split(',')
                    .map(|n| {
                        n.parse()
                            .unwrap_or_else(|_| panic!("--rows takes numbers, got {n:?}"))
                    })
                    .collect()
            }
            "--repeat" => {
                options.repeat =
                    value.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| {
                        panic!("--repeat needs a positive number, got {value:?}")
                    })
            }
            "--write-bodies" => options.write_bodies = Some(PathBuf::from(value)),
            "--prediction-log" => {
                options.prediction_log = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--prediction-log is true or false, got {value:?}"))
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    options
}

/// `n` customers spread over the schema's ranges and categories.
fn customers(n: usize) -> Vec<Value> {
    let plans = ["basic", "premium"];
    let regions = ["NA", "EU", "AF", "AS"];
    (0..n)
        .map(|i| {
            json!({
                "tenure_months": (i * 7) % 60 + 1,
                "num_complaints": i % 5,
                "avg_session_minutes": 5.0 + ((i * 1337) % 11000) as f64 / 100.0,
                "plan_type": plans[i % 2],
                "region": regions[i % 4],
            })
        })
        .collect()
}

fn predict_body(rows: &[Value]) -> Value {
    json!({ "instances": rows })
}

fn infer_body(rows: &[Value]) -> Value {
    let n = rows.len();
    let column = |name: &str| -> Vec<Value> { rows.iter().map(|r| r[name].clone()).collect() };
    json!({ "inputs": [
        {"name": "tenure_months", "shape": [n], "datatype": "INT64", "data": column("tenure_months")},
        {"name": "num_complaints", "shape": [n], "datatype": "INT64", "data": column("num_complaints")},
        {"name": "avg_session_minutes", "shape": [n], "datatype": "FP64", "data": column("avg_session_minutes")},
        {"name": "plan_type", "shape": [n], "datatype": "BYTES", "data": column("plan_type")},
        {"name": "region", "shape": [n], "datatype": "BYTES", "data": column("region")},
    ]})
}

/// Calls `step` for `seconds` (after a short warm-up), `repeat` times; returns the median rate
/// in calls per second.
async fn per_second<F, Fut>(seconds: f64, repeat: usize, mut step: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_millis(300) {
        step().await;
    }
    let mut rates = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let started = Instant::now();
        let mut calls = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            step().await;
            calls += 1;
        }
        rates.push(calls as f64 / started.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

async fn post(router: &axum::Router, uri: &str, body: &[u8]) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
}

fn write_bodies(dir: &Path, rows: &[usize]) {
    std::fs::create_dir_all(dir).unwrap();
    for &n in rows {
        let customers = customers(n);
        for (name, body) in [
            ("predict", predict_body(&customers)),
            ("infer", infer_body(&customers)),
        ] {
            let path = dir.join(format!("{name}-{n}.json"));
            std::fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
            println!("wrote {}", path.display());
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = options();
    if let Some(dir) = &options.write_bodies {
        write_bodies(dir, &options.rows);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../registry/churn/model.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let runtime = Runtime::new(Limits::default()).unwrap();
    let model = Arc::new(Model::load(&runtime, &bytes, path.clone()).unwrap());
    let max_rows = options.rows.iter().copied().max().unwrap_or(1);

    let active = Arc::new(ActiveModel::new());
    active.install(model.clone());
    let logs = tempfile::tempdir().unwrap();
    let predlog = options
        .prediction_log
        .then(|| PredictionLog::start(logs.path(), LogSettings::default()));
    let mut observers = Observers::without_log();
    observers.predlog = predlog.clone();
    let executor = Executor::start(call_threads(), Some(observers.metrics.clone())).unwrap();
    let state = AppState::new(
        active,
        PathBuf::from("../registry"),
        "churn".to_string(),
        64,
        observers,
        Arc::new(executor),
    )
    .with_max_batch_rows(max_rows);
    let router = app(state, 64 << 20);

    println!(
        "\n| rows per batch | wasm call: rows/s | in-process POST /predict: rows/s | in-process v2 infer: rows/s |"
    );
    println!("|---:|---:|---:|---:|");
    for &n in &options.rows {
        let customers = customers(n);
        let matrix: Vec<f64> = customers
            .iter()
            .flat_map(|c| {
                prepare_row(model.info(), c.as_object().unwrap())
                    .unwrap()
                    .row
            })
            .collect();
        let (scored, rows) = (&model, &matrix);
        let wasm = per_second(options.seconds, options.repeat, || async move {
            std::hint::black_box(scored.predict(rows).unwrap());
        })
        .await;
        let predict = serde_json::to_vec(&predict_body(&customers)).unwrap();
        let lab = per_second(options.seconds, options.repeat, || {
            post(&router, "/predict", &predict)
        })
        .await;
        let infer = serde_json::to_vec(&infer_body(&customers)).unwrap();
        let v2 = per_second(options.seconds, options.repeat, || {
            post(&router, "/v2/models/churn/infer", &infer)
        })
        .await;
        let rate = |calls: f64| format!("{:.0}", calls * n as f64);
        println!("| {n} | {} | {} | {} |", rate(wasm), rate(lab), rate(v2));
    }
    if let Some(log) = predlog {
        log.close();
        // The log never blocks a request: lines that find its queue full are dropped, and a run
        // that dropped many did less work than the server promises.
        let counters = log.counters_handle();
        println!(
            "\nprediction log: {} lines written, {} dropped",
            counters.written.load(Ordering::Relaxed),
            counters.dropped.load(Ordering::Relaxed)
        );
    }
}
