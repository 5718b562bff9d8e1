//! `modelhost predict`: batch scoring of CSV and JSONL files through the sandbox.

use std::ffi::OsStr;
use std::path::Path;

use modelhost::model::Model;
use modelhost::model::response::round_to;
use modelhost::model::schema::prepare_row;
use modelhost::runtime::{Limits, Runtime};
use serde_json::{Value, json};

use super::{Run, cli};
use crate::common::{churn_artifact, example_customer};

const RESPONSE_FIELDS: [&str; 7] = [
    "request_id",
    "model_version",
    "prediction",
    "probability",
    "latency_ms",
    "features",
    "ts",
];

fn predict(model: &Path, input: &Path, output: Option<&Path>) -> Run {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("predict"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--input"),
        input.as_os_str(),
    ];
    if let Some(output) = output {
        args.extend([OsStr::new("--output"), output.as_os_str()]);
    }
    cli(args)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// What `/predict` would answer for `request`, scored directly through the library.
fn expected(model: &Model, request: &Value) -> (f64, u8) {
    let prepared = prepare_row(model.info(), request.as_object().unwrap()).unwrap();
    let probability = model.predict(&prepared.row).unwrap()[0];
    (round_to(probability, 6), model.decide(probability))
}

fn load(bytes: &[u8]) -> Model {
    let runtime = Runtime::new(Limits::default()).unwrap();
    Model::load(&runtime, bytes, "test.wasm".into()).unwrap()
}

#[test]
fn a_csv_is_scored_in_input_order_with_an_error_line_for_the_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = churn_artifact("v-batch", 0.0);
    let model_path = dir.path().join("model.wasm");
    std::fs::write(&model_path, &bytes).unwrap();
    let input = dir.path().join("customers.csv");
    std::fs::write(
        &input,
        "request_id,tenure_months,num_complaints,avg_session_minutes,plan_type,region\n\
         req-1,6,3,12.5,basic,AF\n\
         ,48,0,40,Premium, eu\n\
         req-3,six,1,30,basic,NA\n\
         req-4,12,1,30,basic,mars\n",
    )
    .unwrap();
    let output = dir.path().join("out/scored.jsonl");

    let run = predict(&model_path, &input, Some(&output));
    assert_eq!(run.code, Some(65), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(run.stderr.contains("scored 3 of 4 rows"), "{run:?}");
    assert!(
        run.stderr.contains("row 3: field `tenure_months`"),
        "{run:?}"
    );
    let scored = lines(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(scored.len(), 4);

    let model = load(&bytes);
    let requests = [
        json!({"tenure_months": 6, "num_complaints": 3, "avg_session_minutes": 12.5, "plan_type": "basic", "region": "AF"}),
        json!({"tenure_months": 48, "num_complaints": 0, "avg_session_minutes": 40, "plan_type": "premium", "region": "EU"}),
        Value::Null,
        json!({"tenure_months": 12, "num_complaints": 1, "avg_session_minutes": 30, "plan_type": "basic", "region": "MARS"}),
    ];
    for (i, (line, request)) in scored.iter().zip(&requests).enumerate() {
        if i == 2 {
            continue;
        }
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, RESPONSE_FIELDS, "the /predict fields, in its order");
        let (probability, prediction) = expected(&model, request);
        assert_eq!(line["probability"], probability, "row {}", i + 1);
        assert_eq!(line["prediction"], prediction, "row {}", i + 1);
        assert_eq!(line["model_version"], "v-batch");
        assert_eq!(
            line["features"]["region"], request["region"],
            "normalised as /predict does"
        );
    }
    assert_eq!(scored[0]["request_id"], "req-1");
    assert_eq!(
        scored[1]["request_id"], "row-2",
        "no id in the row: row-<n>"
    );
    assert_eq!(scored[3]["request_id"], "req-4");
    let bad = &scored[2];
    assert_eq!(bad["row"], 3);
    assert_eq!(bad["request_id"], "req-3");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .starts_with("row 3: field `tenure_months`")
    );
    assert_eq!(bad["fields"][0]["field"], "tenure_months");
    assert!(bad.get("probability").is_none());
}

#[test]
fn a_jsonl_file_is_scored_to_stdout_and_each_bad_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = churn_artifact("v-batch", 0.0);
    let model_path = dir.path().join("model.wasm");
    std::fs::write(&model_path, &bytes).unwrap();
    let mut anonymous = example_customer();
    anonymous.as_object_mut().unwrap().remove("request_id");
    let mut no_region = example_customer();
    no_region.as_object_mut().unwrap().remove("region");
    let input = dir.path().join("customers.jsonl");
    std::fs::write(
        &input,
        format!(
            "{}\n\n{no_region}\n{anonymous}\nnot json\n",
            example_customer()
        ),
    )
    .unwrap();

    let run = predict(&model_path, &input, None);
    assert_eq!(run.code, Some(65), "{run:?}");
    let scored = lines(&run.stdout);
    assert_eq!(
        scored.len(),
        4,
        "one line per row; the blank line is not a row"
    );
    let (probability, _) = expected(&load(&bytes), &example_customer());
    assert_eq!(scored[0]["request_id"], "req-001");
    assert_eq!(scored[0]["probability"], probability);
    assert_eq!(scored[1]["row"], 3, "rows are line numbers");
    assert_eq!(scored[1]["request_id"], "req-001");
    assert_eq!(scored[1]["fields"][0]["field"], "region");
    assert!(
        scored[1]["error"]
            .as_str()
            .unwrap()
            .contains("`region` is required")
    );
    assert_eq!(scored[2]["request_id"], "row-4");
    assert_eq!(scored[2]["probability"], probability);
    assert_eq!(scored[3]["row"], 5);
    assert!(
        scored[3]["error"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    assert!(run.stderr.contains("2 invalid rows"), "{run:?}");
}

#[test]
fn many_rows_are_scored_in_batches_in_order_and_all_valid_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = churn_artifact("v-batch", 0.0);
    let model_path = dir.path().join("model.wasm");
    std::fs::write(&model_path, &bytes).unwrap();
    let data = modelhost_train::synthetic_churn(2500, 3);
    let mut csv = String::from("request_id,");
    csv.push_str(&data.names().join(","));
    csv.push('\n');
    let mut requests = Vec::new();
    for i in 0..data.n_rows() {
        let mut request = serde_json::Map::new();
        let mut cells = vec![format!("r-{i}")];
        for (name, cell) in data.names().into_iter().zip(data.row(i)) {
            let (text, value) = match cell {
                modelhost_train::Cell::Number(x) => (x.to_string(), json!(x)),
                modelhost_train::Cell::Category(s) => (s.to_string(), json!(s)),
            };
            cells.push(text);
            request.insert(name.to_string(), value);
        }
        csv.push_str(&cells.join(","));
        csv.push('\n');
        requests.push(Value::Object(request));
    }
    let input = dir.path().join("many.csv");
    std::fs::write(&input, csv).unwrap();
    let output = dir.path().join("many.jsonl");

    let run = predict(&model_path, &input, Some(&output));
    assert_eq!(run.code, Some(0), "{run:?}");
    let scored = lines(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(scored.len(), 2500);
    let model = load(&bytes);
    for (i, (line, request)) in scored.iter().zip(&requests).enumerate() {
        assert_eq!(line["request_id"], format!("r-{i}"));
        assert_eq!(
            line["probability"],
            expected(&model, request).0,
            "row {}",
            i + 1
        );
    }
}

#[test]
fn a_refused_model_or_unreadable_input_fails_without_leaving_an_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a model").unwrap();
    let good = dir.path().join("model.wasm");
    std::fs::write(&good, churn_artifact("v-batch", 0.0)).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, format!("{}\n", example_customer())).unwrap();
    let output = dir.path().join("out.jsonl");

    let run = predict(&garbage, &input, Some(&output));
    assert_eq!(run.code, Some(65), "{run:?}");
    assert!(
        run.stderr.contains("would be refused (not_wasm)"),
        "{run:?}"
    );
    let run = predict(&good, &dir.path().join("absent.csv"), Some(&output));
    assert_eq!(run.code, Some(65), "{run:?}");
    assert!(run.stderr.contains("absent.csv"), "{run:?}");
    let run = predict(&good, &dir.path().join("in.txt"), Some(&output));
    assert_eq!(run.code, Some(64), "{run:?}");
    assert!(run.stderr.contains("--format"), "{run:?}");
    assert!(!output.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(names.len(), 3, "no temp files left: {names:?}");
}
