//! What a one-row call costs, part by part: the native kernel, the whole fresh-instance call the
//! server makes (`Guest::predict`), the parts of that call measured alone (store creation,
//! instantiation from the `InstancePre` with the slot's reset when it is dropped, export lookup
//! by name and by index, one `alloc` call, one `predict` call), and the whole call under each pooling-allocator
//! setting of [`Tuning`] that bears on the fresh instance.
//!
//! Run: `cargo bench -p modelhost --bench instance`. Results are recorded in BENCHMARKS.md as
//! ratios to the native kernel measured in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelhost::runtime::{Limits, Runtime, Tuning};
use modelhost_abi::params::ParamView;
use wasmtime::{Linker, Module, Store, StoreLimits, StoreLimitsBuilder};

mod common;
use common::{default_model_bytes, param_block};

/// One customer of the lab's kind: tenure, complaints, session minutes, plan index, region index.
const ROW: [f64; 5] = [6.0, 3.0, 12.5, 0.0, 0.0];

/// A store as the runtime makes one for a call: limiter and epoch deadline set.
fn store(engine: &wasmtime::Engine) -> Store<StoreLimits> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(Limits::default().memory_bytes)
        .instances(1)
        .memories(1)
        .tables(1)
        .build();
    let mut store = Store::new(engine, limits);
    store.limiter(|limits| limits);
    store.set_epoch_deadline(100);
    store.epoch_deadline_trap();
    store
}

fn parts(c: &mut Criterion, bytes: &[u8]) {
    let runtime = Runtime::new(Limits::default()).unwrap();
    let guest = runtime.load(bytes).unwrap();
    let view = ParamView::parse(param_block(bytes)).unwrap();
    let engine = runtime.engine();
    let module = Module::from_binary(engine, bytes).unwrap();
    let pre = Linker::new(engine).instantiate_pre(&module).unwrap();

    let mut group = c.benchmark_group("one_row");
    let mut out = [0.0];
    group.bench_function("native_kernel", |b| {
        b.iter(|| modelhost_logreg::predict_rows(&view, black_box(&ROW), 5, &mut out))
    });
    group.bench_function("fresh_instance_call", |b| {
        b.iter(|| guest.predict(black_box(&ROW)).unwrap())
    });
    group.bench_function("part_store_new", |b| b.iter(|| store(engine)));
    group.bench_function("part_instantiate_and_drop", |b| {
        b.iter(|| {
            let mut store = store(engine);
            pre.instantiate(&mut store).unwrap();
            store
        })
    });

    // The remaining parts run in one live instance, with no deadline within the run.
    let mut store = store(engine);
    store.set_epoch_deadline(1 << 40);
    let instance = pre.instantiate(&mut store).unwrap();
    let by_name = |store: &mut Store<StoreLimits>| {
        let memory = instance.get_memory(&mut *store, "memory").unwrap();
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut *store, "alloc")
            .unwrap();
        let predict = instance
            .get_typed_func::<(i32, i32, i32, i32), i32>(&mut *store, "predict")
            .unwrap();
        (memory, alloc, predict)
    };
    group.bench_function("part_export_lookup", |b| b.iter(|| by_name(&mut store)));
    let by_index =
        ["memory", "alloc", "predict"].map(|name| module.get_export_index(name).unwrap());
    group.bench_function("part_export_lookup_by_index", |b| {
        b.iter(|| {
            let [memory, alloc, predict] = &by_index;
            let memory = instance.get_module_export(&mut store, memory).unwrap();
            let alloc = instance.get_module_export(&mut store, alloc).unwrap();
            let predict = instance.get_module_export(&mut store, predict).unwrap();
            let alloc = alloc
                .into_func()
                .unwrap()
                .typed::<i32, i32>(&store)
                .unwrap();
            let predict = predict
                .into_func()
                .unwrap()
                .typed::<(i32, i32, i32, i32), i32>(&store)
                .unwrap();
            (memory.into_memory().unwrap(), alloc, predict)
        })
    });
    let (memory, alloc, predict) = by_name(&mut store);
    let in_ptr = alloc.call(&mut store, 40).unwrap();
    let out_ptr = alloc.call(&mut store, 8).unwrap();
    group.bench_function("part_alloc_call", |b| {
        // `alloc(0)` leaves the bump pointer where it is, so every iteration is the same call.
        b.iter(|| alloc.call(&mut store, black_box(0)).unwrap())
    });
    group.bench_function("part_predict_call", |b| {
        b.iter(|| {
            let data = memory.data_mut(&mut store);
            for (dst, value) in data[in_ptr as usize..][..40].chunks_exact_mut(8).zip(&ROW) {
                dst.copy_from_slice(&value.to_le_bytes());
            }
            let code = predict.call(&mut store, (in_ptr, 1, 5, out_ptr)).unwrap();
            let data = memory.data(&store);
            (code, data[out_ptr as usize])
        })
    });
    group.finish();
}

fn tunings(c: &mut Criterion, bytes: &[u8]) {
    let base = Tuning::default();
    let variants = [
        ("production", base),
        (
            "keep_resident_0",
            Tuning {
                memory_keep_resident: 0,
                ..base
            },
        ),
        (
            "keep_resident_256k",
            Tuning {
                memory_keep_resident: 256 << 10,
                ..base
            },
        ),
        (
            "no_pagemap_scan",
            Tuning {
                pagemap_scan: false,
                ..base
            },
        ),
        (
            "no_pagemap_scan_keep_256k",
            Tuning {
                pagemap_scan: false,
                memory_keep_resident: 256 << 10,
                ..base
            },
        ),
        (
            "no_memory_init_cow",
            Tuning {
                memory_init_cow: false,
                ..base
            },
        ),
        (
            "table_keep_resident_64k",
            Tuning {
                table_keep_resident: 64 << 10,
                ..base
            },
        ),
    ];
    let mut group = c.benchmark_group("one_row_tuning");
    for (name, tuning) in variants {
        let runtime = Runtime::with_tuning(Limits::default(), tuning).unwrap();
        let guest = runtime.load(bytes).unwrap();
        group.bench_function(name, |b| b.iter(|| guest.predict(black_box(&ROW)).unwrap()));
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let bytes = default_model_bytes();
    parts(c, &bytes);
    tunings(c, &bytes);
}

criterion_group!(instance, benches);
criterion_main!(instance);
