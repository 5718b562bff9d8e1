//! Property-based fuzzing of the places untrusted bytes come in: request bodies (parsing,
//! validation against a schema, and the whole `/predict` route) and the ABI boundary (arbitrary
//! module bytes into the loader, arbitrary values handed back by a guest).
//!
//! Case counts are small so `cargo test` stays fast; `PROPTEST_CASES` raises them for a long
//! run (see `docs/FUZZING.md`). A failure found this way is kept as a named regression test at
//! the end of this file.

mod abi;
mod grpc;

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use modelhost::http::{AppState, Observers, app};
use modelhost::model::executor::{Executor, call_threads};
use modelhost::model::schema::{BodyError, parse_object, prepare_row};
use modelhost::model::{ActiveModel, Model};
use modelhost::runtime::{Limits, Runtime};
use modelhost_abi::info::{FeatureKind, ModelInfo};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::common::{churn_artifact, churn_info, example_customer};

/// `default` cases, unless `PROPTEST_CASES` asks for another number.
pub(super) fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Seeds of shrunk failures, replayed first on every later run.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/all/fuzz.proptest-regressions"
        )))),
        ..ProptestConfig::default()
    }
}

/// One runtime for the whole binary: engines are expensive and every case may compile.
pub(super) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(Limits::default()).unwrap())
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| json!(x)),
        (-1000.0..1000.0f64).prop_map(|x| json!(x)),
        (0u32..250).prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["basic", " PREMIUM ", "af", "EU", "mars", ""])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A churn request where each field is kept, dropped, or replaced by anything, plus extras.
fn churn_request() -> impl Strategy<Value = Map<String, Value>> {
    let fields = [
        "request_id",
        "tenure_months",
        "num_complaints",
        "avg_session_minutes",
        "plan_type",
        "region",
    ];
    let edits = prop::collection::vec(
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(Value::Null)),
            3 => json_value().prop_map(Some),
        ],
        fields.len(),
    );
    let extras = prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..3);
    (
        prop::collection::vec(any::<bool>(), fields.len()),
        edits,
        extras,
    )
        .prop_map(move |(keep, edits, extras)| {
            let mut object = example_customer().as_object().unwrap().clone();
            for ((field, keep), edit) in fields.iter().zip(keep).zip(edits) {
                match (keep, edit) {
                    (true, _) => {}
                    (false, None) => {
                        object.remove(*field);
                    }
                    (false, Some(value)) => {
                        object.insert(field.to_string(), value);
                    }
                }
            }
            object.extend(extras);
            object
        })
}

/// Checks one prepared row against the schema, or its errors against the field names.
fn check_prepared(info: &ModelInfo, object: &Map<String, Value>) -> Result<(), TestCaseError> {
    match prepare_row(info, object) {
        Ok(prepared) => {
            prop_assert_eq!(prepared.row.len(), info.features.len());
            prop_assert_eq!(prepared.features.len(), info.features.len());
            for (x, spec) in prepared.row.iter().zip(&info.features) {
                prop_assert!(x.is_finite(), "{}: {}", spec.name, x);
                match &spec.kind {
                    FeatureKind::Integer { min, max } => {
                        prop_assert!(x.fract() == 0.0 && (*min..=*max).contains(x));
                    }
                    FeatureKind::Number { min, max } => prop_assert!((*min..=*max).contains(x)),
                    FeatureKind::Categorical { vocabulary, .. } => {
                        prop_assert!(*x == -1.0 || (*x >= 0.0 && (*x as usize) < vocabulary.len()));
                    }
                }
            }
        }
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            for error in errors {
                prop_assert!(
                    info.features.iter().any(|f| f.name == error.field),
                    "names a schema field: {:?}",
                    error
                );
                let quoted = format!("`{}`", error.field);
                prop_assert!(error.message.contains(&quoted), "{:?}", error);
                prop_assert!(
                    ["missing", "type", "range", "not_finite"].contains(&error.kind),
                    "{:?}",
                    error
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn fuzz_request_validation_accepts_only_rows_inside_the_schema(object in churn_request()) {
        check_prepared(&churn_info("v-fuzz"), &object)?;
        // The same object through the body parser gives the same verdict.
        let bytes = serde_json::to_vec(&object).unwrap();
        let parsed = parse_object(&bytes).unwrap();
        prop_assert_eq!(&parsed, &object);
    }

    #[test]
    fn fuzz_body_parsing_never_panics(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "\\PC{0,200}".prop_map(String::into_bytes),
        churn_request().prop_flat_map(|object| {
            let text = serde_json::to_string(&object).unwrap();
            let len = text.len();
            (Just(text), 0..=len, "[\\[\\]{}\",:0-9eE.+-]{0,6}")
        }).prop_map(|(mut text, at, junk)| {
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.insert_str(at, &junk);
            text.into_bytes()
        }),
    ]) {
        match parse_object(&bytes) {
            Ok(object) => check_prepared(&churn_info("v-fuzz"), &object)?,
            Err(BodyError::Malformed(message)) => prop_assert!(message.starts_with("malformed JSON")),
            Err(BodyError::NotAnObject(message)) => prop_assert!(message.contains("JSON object")),
            Err(BodyError::NotFinite(errors)) => {
                prop_assert!(!errors.is_empty());
                for error in errors {
                    prop_assert_eq!(error.kind, "not_finite");
                }
            }
        }
    }
}

/// Handlers' state serving a churn model (`v-fuzz`), without a prediction log.
pub(super) fn serving_state() -> AppState {
    let active = Arc::new(ActiveModel::new());
    let model = Model::load(
        runtime(),
        &churn_artifact("v-fuzz", 0.0),
        "model.wasm".into(),
    )
    .unwrap();
    active.install(Arc::new(model));
    let observers = Observers::without_log();
    let executor = Executor::start(call_threads(), Some(observers.metrics.clone())).unwrap();
    AppState::new(
        active,
        "registry".into(),
        "churn".into(),
        4,
        observers,
        Arc::new(executor),
    )
}

/// A single-threaded runtime to drive a router from a property.
pub(super) fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A router serving a churn model, and the runtime to drive it.
fn predict_route() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static ROUTE: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    ROUTE.get_or_init(|| (tokio_runtime(), app(serving_state(), 1 << 20)))
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn fuzz_the_predict_route_answers_json_with_a_known_status(
        body in prop_oneof![
            churn_request().prop_map(|object| serde_json::to_vec(&object).unwrap()),
            prop::collection::vec(any::<u8>(), 0..128),
        ],
        content_type in prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "",
        ]),
    ) {
        let (executor, router) = predict_route();
        let mut request = Request::post("/predict");
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let request = request.body(Body::from(body)).unwrap();
        let (status, answer) = executor.block_on(async {
            let response = router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
            (status, bytes)
        });
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|e| TestCaseError::fail(format!("{status}: not JSON: {e}")))?;
        prop_assert!([200, 400, 415, 422].contains(&status), "{} {}", status, answer);
        if status == 200 {
            let p = answer["probability"].as_f64().unwrap();
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert_eq!(&answer["model_version"], "v-fuzz");
        } else {
            prop_assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{}", answer);
        }
    }
}
