//! The kernel compiled to wasm agrees with the same kernel built natively.

use modelhost::artifact::build_artifact;
use modelhost::model::Model;
use modelhost::runtime::{Limits, Runtime};
use modelhost_abi::params::{ParamView, encode_block};

use crate::common::{churn_info, churn_params, golden_inputs};

/// A small deterministic generator (xorshift), so the rows are the same on every run.
struct Rows(u64);

impl Rows {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn wasm_and_native_agree_on_many_rows() {
    let (intercept, features) = churn_params(0.3);
    let info = churn_info("v-agree");
    let bytes = build_artifact(&info, intercept, &features, &golden_inputs()).unwrap();
    let runtime = Runtime::new(Limits::default()).unwrap();
    let model = Model::load(&runtime, &bytes, "agree.wasm".into()).unwrap();

    let mut rng = Rows(0x9E37_79B9_7F4A_7C15);
    let n_rows = 5000;
    let mut rows = Vec::with_capacity(n_rows * 5);
    for _ in 0..n_rows {
        rows.push((rng.next_f64() * 200.0).floor());
        rows.push((rng.next_f64() * 50.0).floor());
        rows.push(rng.next_f64() * 500.0);
        rows.push((rng.next_f64() * 3.0).floor() - 1.0); // -1 (unknown), 0, 1
        rows.push((rng.next_f64() * 5.0).floor() - 1.0); // -1 .. 3
    }
    let wasm = model.predict(&rows).unwrap();

    let block = encode_block(intercept, &features, b"{}").unwrap();
    let view = ParamView::parse(&block).unwrap();
    let mut native = vec![0.0; n_rows];
    assert_eq!(
        modelhost_logreg::predict_rows(&view, &rows, 5, &mut native),
        0
    );

    assert_eq!(wasm.len(), n_rows);
    let worst = wasm
        .iter()
        .zip(&native)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-12, "largest wasm/native difference {worst}");
    // The rows really exercise the model: probabilities spread over a wide range.
    let (lo, hi) = wasm
        .iter()
        .fold((1.0f64, 0.0f64), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    assert!(lo < 0.05 && hi > 0.95, "probabilities span {lo}..{hi}");
}

#[test]
fn the_same_parameters_give_the_same_bytes() {
    let (intercept, features) = churn_params(0.0);
    let info = churn_info("v-same");
    let a = build_artifact(&info, intercept, &features, &golden_inputs()).unwrap();
    let b = build_artifact(&info, intercept, &features, &golden_inputs()).unwrap();
    assert_eq!(a, b);
    let (other_intercept, _) = churn_params(0.1);
    let c = build_artifact(&info, other_intercept, &features, &golden_inputs()).unwrap();
    assert_ne!(a, c);
}

#[test]
fn builder_refuses_parameters_that_do_not_fit_the_schema() {
    let (intercept, mut features) = churn_params(0.0);
    features.pop();
    let err = build_artifact(&churn_info("v"), intercept, &features, &golden_inputs()).unwrap_err();
    assert!(
        err.to_string().contains("expected 5 fitted features"),
        "{err}"
    );

    let (intercept, mut features) = churn_params(0.0);
    features[4] = modelhost_abi::params::FittedFeature::Categorical {
        coefs: vec![0.0; 3],
    };
    let err = build_artifact(&churn_info("v"), intercept, &features, &golden_inputs()).unwrap_err();
    assert!(
        err.to_string()
            .contains("feature 4 (region): 3 coefficients for a vocabulary of 4"),
        "{err}"
    );
}

/// The compiled kernel's own checks, called directly (as a host that ignored the ABI might):
/// lengths whose byte size would wrap a 32-bit `usize` are refused with the kernel's status,
/// never read out of bounds (which would trap), and a well-formed call still scores.
#[test]
fn the_wasm_kernel_refuses_lengths_that_would_wrap_with_its_status() {
    use modelhost_abi::status;
    let (intercept, features) = churn_params(0.0);
    let bytes = build_artifact(
        &churn_info("v-wrap"),
        intercept,
        &features,
        &golden_inputs(),
    )
    .unwrap();
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::from_binary(&engine, &bytes).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    let alloc = instance
        .get_typed_func::<i32, i32>(&mut store, "alloc")
        .unwrap();
    let predict = instance
        .get_typed_func::<(i32, i32, i32, i32), i32>(&mut store, "predict")
        .unwrap();
    let n_cols = 5;
    let rows = alloc.call(&mut store, 8 * n_cols).unwrap();
    let out = alloc.call(&mut store, 8).unwrap();
    let cases = [
        // n_rows * 8 = 2^32 + 8 wraps to 8 in 32 bits.
        ((1 << 29) + 1, status::BAD_POINTER),
        // n_rows * 5 * 8 = 2^32 + 40 wraps to 40.
        ((1 << 27) * 4 / 5 + 1, status::BAD_POINTER),
        (i32::MAX, status::BAD_POINTER),
        (-1, status::BAD_SHAPE),
    ];
    for (n_rows, expected) in cases {
        let answer = predict
            .call(&mut store, (rows, n_rows, n_cols, out))
            .unwrap();
        assert_eq!(answer, expected, "n_rows {n_rows}");
    }
    assert_eq!(
        predict
            .call(&mut store, (rows, 1, n_cols - 1, out))
            .unwrap(),
        status::BAD_SHAPE,
        "another column count"
    );
    assert_eq!(
        predict.call(&mut store, (rows, 1, n_cols, rows)).unwrap(),
        status::BAD_POINTER,
        "output over the input"
    );
    assert_eq!(
        predict.call(&mut store, (rows, 1, n_cols, out)).unwrap(),
        status::OK
    );
}
