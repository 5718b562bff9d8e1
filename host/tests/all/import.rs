//! `modelhost import`: real XGBoost and LightGBM exports (`host/tests/fixtures/import/`, made by
//! its `make_fixtures.py` with pinned versions) become artifacts whose probabilities agree with
//! the frameworks' own `predict_proba`, rows with missing values and values exactly on split
//! thresholds included; the command writes a file or stores a version a running server swaps
//! to; bad model files are refused with a named reason, and mutated ones never panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use modelhost::commands::import::{build, default_schema};
use modelhost::import::{self, Format, ImportError, Imported};
use modelhost::model::Model;
use modelhost::registry;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::{base_url, churn_artifact, start_server, temp_registry, wait_for_version};
use crate::fuzz::{cases, runtime};
use crate::oip::post_json;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn modelhost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_modelhost"))
}

/// A fixture's sample rows (null → NaN) and the framework's probabilities for them.
struct Rows {
    features: Vec<String>,
    rows: Vec<Vec<f64>>,
    probability: Vec<f64>,
}

fn rows(name: &str) -> Rows {
    let doc: Value = serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    Rows {
        features: strings(&doc["features"]),
        rows: doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect(),
        probability: doc["probability"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect(),
    }
}

fn imported(model: &str) -> Imported {
    import::parse(&std::fs::read(fixture_path(model)).unwrap(), None).unwrap()
}

/// The artifact of `imported` with the schema of its own feature names.
fn built(
    imported: &Imported,
) -> Result<(Vec<u8>, modelhost_abi::info::ModelInfo), modelhost::artifact::ArtifactError> {
    build(imported, "churn", default_schema(&imported.feature_names))
}

/// The artifact's probabilities for the fixture's rows against the framework's; returns the
/// largest difference.
fn agreement(model: &str, sample: &str, format: Format) -> f64 {
    let imported = imported(model);
    assert_eq!(imported.format, format);
    let sample = rows(sample);
    assert_eq!(imported.feature_names, sample.features);
    let (wasm, info) = built(&imported).unwrap();
    let loaded = Model::load(runtime(), &wasm, PathBuf::from(model)).unwrap();
    assert_eq!(loaded.info().features.len(), sample.features.len());
    let matrix: Vec<f64> = sample.rows.iter().flatten().copied().collect();
    let from_wasm = loaded.predict(&matrix).unwrap();
    let native = imported.model.score(&matrix).unwrap();
    assert_eq!(from_wasm, native, "wasm and native kernels disagree");
    assert_eq!(
        info.family.as_ref().unwrap().source.as_deref(),
        Some(format.name())
    );
    let mut worst = 0.0f64;
    for (i, (p, want)) in from_wasm.iter().zip(&sample.probability).enumerate() {
        let error = (p - want).abs();
        assert!(error <= 1e-5, "row {i} {:?}: {p} vs {want}", sample.rows[i]);
        worst = worst.max(error);
    }
    // Rows with missing values and rows on thresholds are there.
    assert!(sample.rows.iter().any(|r| r.iter().any(|x| x.is_nan())));
    assert!(sample.rows.len() > 150);
    worst
}

#[test]
fn xgboost_probabilities_match_predict_proba() {
    let worst = agreement("xgboost.json", "xgboost.rows.json", Format::Xgboost);
    println!("xgboost: max |p - predict_proba| = {worst:e}");
    assert!(worst <= 1e-6, "max error {worst:e}");
}

#[test]
fn lightgbm_probabilities_match_predict_proba() {
    let worst = agreement("lightgbm.txt", "lightgbm.rows.json", Format::Lightgbm);
    println!("lightgbm: max |p - predict_proba| = {worst:e}");
    assert!(worst <= 1e-6, "max error {worst:e}");
}

#[test]
fn early_stopping_keeps_the_rounds_up_to_the_best_iteration() {
    let xgb = std::fs::read_to_string(fixture_path("xgboost.json")).unwrap();
    let stopped = replace(
        &xgb,
        r#""attributes":{"#,
        r#""attributes":{"best_iteration":"9","#,
    );
    let imported = import::parse(&stopped, None).unwrap();
    assert_eq!(imported.model.trees.len(), 10);
    assert_eq!(
        imported.model.trees[..],
        self::imported("xgboost.json").model.trees[..10]
    );
    let past = replace(
        &xgb,
        r#""attributes":{"#,
        r#""attributes":{"best_iteration":"25","#,
    );
    let message = import::parse(&past, None).unwrap_err().to_string();
    assert!(
        message.contains("best_iteration 25 is not a round"),
        "{message}"
    );
}

#[test]
fn the_same_model_file_gives_the_same_bytes() {
    let imported = imported("lightgbm.txt");
    let (a, info) = built(&imported).unwrap();
    let (b, _) = built(&imported).unwrap();
    assert_eq!(a, b);
    assert!(info.version.starts_with('v') && info.version.len() == 13);
}

#[test]
fn import_writes_an_artifact_that_inspect_describes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.wasm");
    let output = modelhost()
        .arg("import")
        .arg(fixture_path("xgboost.json"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("XGBoost model: 25 trees"), "{stdout}");
    let output = modelhost().arg("inspect").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("family     trees (from xgboost), 25 trees, "),
        "{stdout}"
    );
    assert!(stdout.contains("parameter bytes"), "{stdout}");
    assert!(stdout.contains("tenure_months"), "{stdout}");
}

/// `modelhost import lightgbm.txt --spec SPEC --output OUT`.
fn import_with_spec(spec: &Path, out: &Path) -> std::process::Output {
    modelhost()
        .arg("import")
        .arg(fixture_path("lightgbm.txt"))
        .arg("--spec")
        .arg(spec)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn a_spec_gives_ranges_and_integer_kinds_and_must_name_the_models_features() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    let header = "target = \"churn\"\n[gate]\nf1_min = 0.5\n";
    std::fs::write(
        &spec,
        format!(
            "{header}[[features]]\nname = \"tenure_months\"\nkind = \"integer\"\nmin = 0\nmax = 100\n\
             [[features]]\nname = \"avg_session_minutes\"\nkind = \"number\"\nmin = 0\nmax = 500\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("model.wasm");
    let output = import_with_spec(&spec, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded = Model::load(runtime(), &std::fs::read(&out).unwrap(), out.clone()).unwrap();
    let kinds: Vec<String> = loaded
        .info()
        .features
        .iter()
        .map(|f| format!("{}={:?}", f.name, f.kind))
        .collect();
    assert_eq!(kinds[0], "tenure_months=Integer { min: 0.0, max: 100.0 }");
    assert_eq!(
        kinds[2],
        "avg_session_minutes=Number { min: 0.0, max: 500.0 }"
    );
    assert!(kinds[1].starts_with("num_complaints=Number"), "{kinds:?}");
    // Golden rows were brought inside the ranges (the load's self-test passed on them).
    assert!(loaded.info().golden.iter().all(|g| matches!(
        g.input[0],
        modelhost_abi::info::GoldenValue::Number(x) if (0.0..=100.0).contains(&x) && x.fract() == 0.0
    )));

    std::fs::write(
        &spec,
        format!("{header}[[features]]\nname = \"plan_type\"\nkind = \"categorical\"\n"),
    )
    .unwrap();
    let output = import_with_spec(&spec, &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(65), "{stderr}");
    assert!(
        stderr.contains("feature `plan_type` is not one of the model's"),
        "{stderr}"
    );
}

#[test]
fn files_that_are_not_importable_exit_65_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let out = dir.path().join("model.wasm");
    for (file, extra, says) in [
        (csv.clone(), None, "not a model format modelhost imports"),
        (
            fixture_path("xgboost.json"),
            Some("lightgbm"),
            "LightGBM model: the header has no `objective=` line",
        ),
        (
            fixture_path("lightgbm.txt"),
            Some("xgboost"),
            "XGBoost model:",
        ),
    ] {
        let mut command = modelhost();
        command.arg("import").arg(&file).arg("--output").arg(&out);
        if let Some(format) = extra {
            command.args(["--format", format]);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(65), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!out.exists());
    }
}

fn replace(text: &str, from: &str, to: &str) -> Vec<u8> {
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn unsupported_and_corrupt_models_are_refused_with_a_reason() {
    let xgb = std::fs::read_to_string(fixture_path("xgboost.json")).unwrap();
    let lgb = std::fs::read_to_string(fixture_path("lightgbm.txt")).unwrap();
    let refusal = |bytes: Vec<u8>| import::parse(&bytes, None).unwrap_err().to_string();
    let cases = [
        (
            replace(&xgb, "\"binary:logistic\"", "\"reg:squarederror\""),
            "objective `reg:squarederror`",
        ),
        (
            replace(&xgb, "\"split_type\":[0", "\"split_type\":[1"),
            "tree 0, node 0: a categorical split",
        ),
        (
            replace(&xgb, "\"left_children\":[1,", "\"left_children\":[0,"),
            "tree 0, node 0: reached twice",
        ),
        (
            replace(&xgb, "\"left_children\":[1,", "\"left_children\":[900,"),
            "tree 0, node 0: left child 900 does not exist",
        ),
        (
            replace(&xgb, "\"split_indices\":[0,", "\"split_indices\":[9,"),
            "splits on feature 9, but the model has 5 features",
        ),
        (
            replace(
                &lgb,
                "objective=binary sigmoid:1",
                "objective=multiclass num_class:3",
            ),
            "objective `multiclass num_class:3`",
        ),
        (
            replace(&lgb, "decision_type=2 2", "decision_type=3 2"),
            "tree 0, node 0: a categorical split",
        ),
        (
            replace(&lgb, "left_child=2 4", "left_child=0 4"),
            "tree 0, node 0: reached twice",
        ),
        (
            replace(&lgb, "threshold=25.500000000000004", "threshold=nan"),
            "tree 0, node 0: threshold NaN",
        ),
        (
            replace(&lgb, "leaf_value=-0.017728884417975099", "leaf_value=inf"),
            "leaf value inf",
        ),
        (
            replace(&lgb, "left_child=2 4", "left_child=2 99"),
            "tree 0, node 1: left child 99 does not exist",
        ),
    ];
    for (bytes, says) in cases {
        let message = refusal(bytes);
        assert!(message.contains(says), "{message} (wanted {says})");
    }
    // A deep chain: each split's left child is the next split.
    let depth = import::MAX_DEPTH + 5;
    let chain: Vec<String> = (0..depth).map(|i| (i + 1).to_string()).collect();
    let mut lefts = chain.clone();
    lefts[depth - 1] = "-1".into();
    let rights: Vec<String> = (0..depth).map(|i| format!("-{}", i + 2)).collect();
    let n = depth;
    let tree = format!(
        "tree\nversion=v4\nnum_class=1\nmax_feature_idx=0\nobjective=binary sigmoid:1\nfeature_names=x\n\nTree=0\nnum_leaves={}\nsplit_feature={}\nthreshold={}\ndecision_type={}\nleft_child={}\nright_child={}\nleaf_value={}\n\nend of trees\n",
        n + 1,
        vec!["0"; n].join(" "),
        vec!["1"; n].join(" "),
        vec!["2"; n].join(" "),
        lefts.join(" "),
        rights.join(" "),
        vec!["0.1"; n + 1].join(" "),
    );
    let message = refusal(tree.into_bytes());
    assert!(
        message.contains("deeper than the limit of 128"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_the_registry_records_it_and_the_server_swaps_to_it() {
    let registry_dir = temp_registry(Some(&churn_artifact("v-lab", 0.0)));
    let server = start_server(registry_dir.path()).await;
    assert!(wait_for_version(&server, "v-lab", Duration::from_secs(10)).await);

    let dir = registry_dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        modelhost()
            .arg("import")
            .arg(fixture_path("lightgbm.txt"))
            .arg("--registry-dir")
            .arg(&dir)
            .args(["--model-name", "churn", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let version = report["version"].as_str().unwrap().to_string();
    assert_eq!(report["format"], "lightgbm");
    assert_eq!(report["trees"], 25);

    let history = registry::read_history(registry_dir.path(), "churn").unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["event"], "import");
    assert_eq!(last["version"], version.as_str());
    assert_eq!(last["promoted"], true);
    let record: Value = serde_json::from_slice(
        &std::fs::read(
            registry_dir
                .path()
                .join(format!("churn/versions/{version}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(record["event"], "import");

    assert!(wait_for_version(&server, &version, Duration::from_secs(10)).await);

    // A complete row of the fixture, through /predict and v2 infer, by the model's names.
    let sample = rows("lightgbm.rows.json");
    let (row, want) = sample
        .rows
        .iter()
        .zip(&sample.probability)
        .find(|(row, _)| row.iter().all(|x| x.is_finite()))
        .unwrap();
    let mut body = serde_json::Map::new();
    for (name, x) in sample.features.iter().zip(row) {
        body.insert(name.clone(), json!(x));
    }
    let (status, answer) = post_json(
        &format!("{}/predict", base_url(&server)),
        &Value::Object(body),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert_eq!(answer["model_version"], version.as_str(), "{answer}");
    let p = answer["probability"].as_f64().unwrap();
    assert!((p - want).abs() <= 1e-6, "{p} vs {want}");

    let inputs: Vec<Value> = sample
        .features
        .iter()
        .zip(row)
        .map(|(name, x)| json!({"name": name, "shape": [1], "datatype": "FP64", "data": [x]}))
        .collect();
    let (status, answer) = post_json(
        &format!("{}/v2/models/churn/infer", base_url(&server)),
        &json!({"inputs": inputs}),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    let outputs = answer["outputs"].as_array().unwrap();
    let probability = outputs.iter().find(|o| o["name"] == "probability").unwrap();
    let p = probability["data"][0].as_f64().unwrap();
    assert!((p - want).abs() <= 1e-6, "{p} vs {want}: {answer}");
    server.shutdown().await.unwrap();
}

/// The fixtures' bytes, read once.
fn fixture_bytes() -> &'static [(Vec<u8>, Format)] {
    static BYTES: OnceLock<Vec<(Vec<u8>, Format)>> = OnceLock::new();
    BYTES.get_or_init(|| {
        vec![
            (
                std::fs::read(fixture_path("xgboost.json")).unwrap(),
                Format::Xgboost,
            ),
            (
                std::fs::read(fixture_path("lightgbm.txt")).unwrap(),
                Format::Lightgbm,
            ),
        ]
    })
}

/// Whether `error` is one of the importer's own refusals with a message.
fn is_clean(error: &ImportError) -> bool {
    !error.to_string().is_empty()
}

/// A mutation of a fixture: bytes overwritten, a number token replaced, or a cut.
#[derive(Debug, Clone)]
enum Mutation {
    Bytes(Vec<(usize, u8)>),
    Number { nth: usize, with: String },
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let numbers = prop_oneof![
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("nan".to_string()),
        Just("1e400".to_string()),
        Just("-2147483649".to_string()),
        Just("99999999999".to_string()),
        (-40i64..40).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|x| format!("{x:e}")),
    ];
    prop_oneof![
        proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6).prop_map(Mutation::Bytes),
        (any::<usize>(), numbers).prop_map(|(nth, with)| Mutation::Number { nth, with }),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match mutation {
        Mutation::Bytes(edits) => {
            for (at, byte) in edits {
                let i = at % out.len();
                out[i] = *byte;
            }
        }
        Mutation::Truncate(at) => out.truncate(at % bytes.len()),
        Mutation::Number { nth, with } => {
            // The nth run of digits (mod their count) is replaced.
            let runs: Vec<(usize, usize)> = {
                let mut runs = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i].is_ascii_digit() {
                        let start = i;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                        runs.push((start, i));
                    } else {
                        i += 1;
                    }
                }
                runs
            };
            let (start, end) = runs[nth % runs.len()];
            out.splice(start..end, with.bytes());
        }
    }
    out
}

proptest! {
    #![proptest_config(cases(48))]

    /// Mutated model files never panic the importer; what parses builds an artifact that the
    /// server's own checks accept, or is refused with a reason.
    #[test]
    fn mutated_model_files_never_panic(which in 0usize..2, mutation in mutation()) {
        let (bytes, format) = &fixture_bytes()[which];
        let mutated = apply(bytes, &mutation);
        for forced in [None, Some(*format)] {
            match import::parse(&mutated, forced) {
                Err(error) => prop_assert!(is_clean(&error)),
                Ok(imported) => {
                    if let Ok((wasm, _)) = built(&imported) {
                        let loaded = Model::load(runtime(), &wasm, Path::new("m").to_path_buf());
                        prop_assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
                    }
                }
            }
        }
    }
}

/// The kernel checks what the importer checked: a block whose tree walks backwards or past its
/// end, or names a feature past the row, makes `predict` return status 3 (the self-test then
/// refuses the module), and a locator pointing outside memory gives no info document. Nothing
/// traps.
#[test]
fn the_kernel_refuses_a_corrupt_block_with_a_status_never_a_trap() {
    use modelhost::artifact::trees::{TREES_TEMPLATE, append_block};
    use modelhost_abi::trees::{LOCATOR_MAGIC, Node};

    let imported = imported("xgboost.json");
    let (good, _) = built(&imported).unwrap();
    let loaded = Model::load(runtime(), &good, PathBuf::from("good.wasm")).unwrap();
    // The served document, golden pairs included.
    let info_json = serde_json::to_vec(loaded.info()).unwrap();
    let corruptions: [fn(&mut Node); 3] = [
        |root| root.left = 0,
        |root| root.right = 100_000,
        |root| root.feature = 77,
    ];
    for corrupt in corruptions {
        let mut model = imported.model.clone();
        // Every tree, so whichever way a golden row goes it meets the corruption at the root.
        for tree in &mut model.trees {
            corrupt(&mut tree.nodes[0]);
        }
        let wasm = append_block(TREES_TEMPLATE, &model.block(&info_json)).unwrap();
        let error = Model::load(runtime(), &wasm, PathBuf::from("corrupt.wasm"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("status 3"), "{error}");
    }

    let mut outside = good.clone();
    let at = outside
        .windows(LOCATOR_MAGIC.len())
        .position(|w| w == LOCATOR_MAGIC)
        .unwrap();
    outside[at + 16..at + 20].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
    let error = Model::load(runtime(), &outside, PathBuf::from("outside.wasm"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("info"), "{error}");
}
