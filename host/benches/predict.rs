//! Predict latency: the native kernel against the wasm kernel with a fresh instance per call,
//! for one row and for batches; plus request validation and the full load (compile + self-test).
//!
//! Run: `cargo bench -p modelhost --bench predict`. Results are recorded in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use modelhost::model::Model;
use modelhost::model::schema::prepare_row;
use modelhost::runtime::{Limits, Runtime};
use modelhost_abi::params::ParamView;

mod common;
use common::{default_model_bytes, param_block};

fn rows(n_rows: usize) -> Vec<f64> {
    (0..n_rows)
        .flat_map(|i| {
            let i = i as f64;
            [i % 60.0, i % 5.0, 10.0 + i % 90.0, i % 2.0, i % 4.0]
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let bytes = default_model_bytes();
    let runtime = Runtime::new(Limits::default()).unwrap();
    let model = Model::load(&runtime, &bytes, "model.wasm".into()).unwrap();
    let view = ParamView::parse(param_block(&bytes)).unwrap();

    let mut group = c.benchmark_group("predict");
    for n_rows in [1usize, 100, 1000] {
        let input = rows(n_rows);
        let mut out = vec![0.0; n_rows];
        group.throughput(Throughput::Elements(n_rows as u64));
        group.bench_with_input(BenchmarkId::new("native", n_rows), &input, |b, input| {
            b.iter(|| modelhost_logreg::predict_rows(&view, black_box(input), 5, &mut out))
        });
        group.bench_with_input(
            BenchmarkId::new("wasm_fresh_instance", n_rows),
            &input,
            |b, input| b.iter(|| model.predict(black_box(input)).unwrap()),
        );
    }
    group.finish();

    let request: serde_json::Value = serde_json::json!({
        "request_id": "req-001", "tenure_months": 6, "num_complaints": 3,
        "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"
    });
    let body = serde_json::to_vec(&request).unwrap();
    c.bench_function("parse_and_validate_request", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(&body)).unwrap();
            prepare_row(model.info(), value.as_object().unwrap()).unwrap()
        })
    });

    let mut group = c.benchmark_group("load");
    group.sample_size(20);
    group.bench_function("compile_and_self_test_default_model", |b| {
        b.iter(|| Model::load(&runtime, black_box(&bytes), "model.wasm".into()).unwrap())
    });
    group.finish();
}

criterion_group!(predict, benches);
criterion_main!(predict);
