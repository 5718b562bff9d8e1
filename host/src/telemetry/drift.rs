//! The lab's drift check: recent inputs against the training statistics the model carries.
//!
//! Numeric features: z = |mean_recent − mean_train| / std_train, alert when z ≥ the threshold
//! (2.5 by default, as the lab). Categorical features: the population stability index (PSI)
//! between recent and training category frequencies, alert when PSI ≥ 0.2 (the usual "major
//! shift" line). The same [`drift_report`] serves the live `GET /monitoring/drift` (over a window
//! of the last N predictions kept in memory) and the offline `modelhost drift` over a log file.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use modelhost_abi::info::{FeatureKind, ModelInfo};
use serde::Serialize;
use serde_json::{Map, Value};

/// Default window, z threshold and PSI threshold: those of the server's settings.
pub const DEFAULT_WINDOW: usize = crate::config::DEFAULTS.drift_window as usize;
pub const DEFAULT_Z_THRESHOLD: f64 = crate::config::DEFAULTS.drift_z_threshold;
pub const DEFAULT_PSI_THRESHOLD: f64 = crate::config::DEFAULTS.drift_psi_threshold;

/// Floor for a frequency inside the PSI's logarithm, so a category absent on one side counts
/// as a large shift instead of an infinity.
const PSI_EPSILON: f64 = 1e-4;

/// Thresholds for a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub z: f64,
    pub psi: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            z: DEFAULT_Z_THRESHOLD,
            psi: DEFAULT_PSI_THRESHOLD,
        }
    }
}

/// One numeric feature's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumericDrift {
    pub n: usize,
    pub mean_recent: Option<f64>,
    pub mean_train: f64,
    pub std_train: f64,
    /// `None` when there are no recent values, or the training std is 0.
    pub z: Option<f64>,
    pub alert: bool,
}

/// One categorical feature's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoricalDrift {
    pub n: usize,
    pub recent: BTreeMap<String, f64>,
    pub train: BTreeMap<String, f64>,
    pub psi: Option<f64>,
    pub alert: bool,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftReport {
    pub model_name: String,
    pub model_version: String,
    /// Predictions considered (at most the window).
    pub n_predictions: usize,
    pub window: usize,
    pub thresholds: Thresholds,
    pub numeric: BTreeMap<String, NumericDrift>,
    pub categorical: BTreeMap<String, CategoricalDrift>,
    /// Features whose figure crossed its threshold.
    pub alerts: Vec<String>,
    pub drift: bool,
}

/// Computes the report over `recent` feature maps (as logged: normalised values by name).
pub fn drift_report(
    info: &ModelInfo,
    recent: &[Map<String, Value>],
    window: usize,
    thresholds: Thresholds,
) -> DriftReport {
    let mut numeric = BTreeMap::new();
    let mut categorical = BTreeMap::new();
    let mut alerts = Vec::new();
    for spec in &info.features {
        let name = &spec.name;
        match &spec.kind {
            FeatureKind::Integer { .. } | FeatureKind::Number { .. } => {
                let Some(train) = info.training.numeric.get(name) else {
                    continue;
                };
                let values: Vec<f64> = recent
                    .iter()
                    .filter_map(|row| row.get(name).and_then(Value::as_f64))
                    .collect();
                let mean_recent =
                    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
                let z = mean_recent
                    .filter(|_| train.std > 0.0)
                    .map(|m| (m - train.mean).abs() / train.std);
                let alert = match (mean_recent, z) {
                    (_, Some(z)) => z >= thresholds.z,
                    // A constant training feature drifts as soon as the recent mean differs.
                    (Some(m), None) => m != train.mean,
                    (None, None) => false,
                };
                if alert {
                    alerts.push(name.clone());
                }
                numeric.insert(
                    name.clone(),
                    NumericDrift {
                        n: values.len(),
                        mean_recent,
                        mean_train: train.mean,
                        std_train: train.std,
                        z,
                        alert,
                    },
                );
            }
            FeatureKind::Categorical { .. } => {
                let Some(train) = info.training.categorical.get(name) else {
                    continue;
                };
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                for value in recent
                    .iter()
                    .filter_map(|row| row.get(name).and_then(Value::as_str))
                {
                    *counts.entry(value.to_string()).or_default() += 1;
                }
                let n: usize = counts.values().sum();
                let recent_freq: BTreeMap<String, f64> = counts
                    .iter()
                    .map(|(k, c)| (k.clone(), *c as f64 / n as f64))
                    .collect();
                let psi = (n > 0).then(|| psi(&recent_freq, train));
                let alert = psi.is_some_and(|p| p >= thresholds.psi);
                if alert {
                    alerts.push(name.clone());
                }
                categorical.insert(
                    name.clone(),
                    CategoricalDrift {
                        n,
                        recent: recent_freq,
                        train: train.clone(),
                        psi,
                        alert,
                    },
                );
            }
        }
    }
    DriftReport {
        model_name: info.name.clone(),
        model_version: info.version.clone(),
        n_predictions: recent.len(),
        window,
        thresholds,
        numeric,
        categorical,
        drift: !alerts.is_empty(),
        alerts,
    }
}

/// Σ (p − q) · ln(p / q) over the union of categories, each frequency floored at ε.
pub fn psi(recent: &BTreeMap<String, f64>, train: &BTreeMap<String, f64>) -> f64 {
    let categories: std::collections::BTreeSet<&String> =
        recent.keys().chain(train.keys()).collect();
    categories
        .into_iter()
        .map(|c| {
            let p = recent.get(c).copied().unwrap_or(0.0).max(PSI_EPSILON);
            let q = train.get(c).copied().unwrap_or(0.0).max(PSI_EPSILON);
            (p - q) * (p / q).ln()
        })
        .sum()
}

/// The last N predictions' features, for the live report.
///
/// A std `Mutex`: pushes and the occasional report are short and never span an `.await`.
pub struct DriftWindow {
    capacity: usize,
    rows: Mutex<VecDeque<Map<String, Value>>>,
}

impl DriftWindow {
    pub fn new(capacity: usize) -> Self {
        DriftWindow {
            capacity: capacity.max(1),
            rows: Mutex::new(VecDeque::with_capacity(capacity.max(1))),
        }
    }

    /// The window size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds one prediction's features, forgetting the oldest beyond the capacity.
    pub fn push(&self, features: Map<String, Value>) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.len() == self.capacity {
            rows.pop_front();
        }
        rows.push_back(features);
    }

    /// A copy of the current window, oldest first.
    pub fn snapshot(&self) -> Vec<Map<String, Value>> {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// One prediction as read back from a log: when it was answered and its normalised features.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRow {
    /// The line's `ts` (epoch seconds), if it had one.
    pub ts: Option<u64>,
    pub features: Map<String, Value>,
}

/// The last `window` predictions in a prediction log, oldest first; with `model`, only that
/// model's: lines naming another model are skipped, and lines that name none (written before
/// lines named their model, by a server of one model) are kept.
///
/// Reads `path`, then its rotated predecessors (`.1`, `.2`, …) while fewer than `window`
/// parseable rows were found. Returns the rows and the number of lines that could not be parsed
/// (counted only in the files that were read).
pub fn read_log_window(
    path: &std::path::Path,
    window: usize,
    model: Option<&str>,
) -> std::io::Result<(Vec<LoggedRow>, usize)> {
    let window = window.max(1);
    // Newest file first; each file's rows oldest first.
    let mut chunks: Vec<Vec<LoggedRow>> = Vec::new();
    let mut found = 0;
    let mut unparsed = 0;
    for n in 0.. {
        let file = if n == 0 {
            path.to_path_buf()
        } else {
            std::path::PathBuf::from(format!("{}.{n}", path.display()))
        };
        // Ask for as many lines as rows are still missing; if some of them were not rows and
        // the file has more, ask again for more.
        let mut want = window - found;
        let (rows, bad) = loop {
            let (text, whole) = match tail_text(&file, want) {
                Ok(tail) => tail,
                Err(e) if n > 0 && e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(finish(chunks, window, unparsed));
                }
                Err(e) => return Err(e),
            };
            let (rows, bad) = parse_log_lines(&text, model);
            if whole || found + rows.len() >= window {
                break (rows, bad);
            }
            want = want.saturating_mul(2);
        };
        unparsed += bad;
        found += rows.len();
        chunks.push(rows);
        if found >= window {
            break;
        }
    }
    Ok(finish(chunks, window, unparsed))
}

/// The last `window` rows of `chunks` (newest file first), oldest first.
fn finish(chunks: Vec<Vec<LoggedRow>>, window: usize, unparsed: usize) -> (Vec<LoggedRow>, usize) {
    let mut rows: Vec<LoggedRow> = chunks.into_iter().rev().flatten().collect();
    let excess = rows.len().saturating_sub(window);
    rows.drain(..excess);
    (rows, unparsed)
}

/// The end of a file holding at least `lines` complete lines, and whether that is the whole
/// file. Read backwards in blocks, so a large log costs memory in proportion to the lines asked
/// for, not to the file. A partial first line is dropped.
fn tail_text(path: &std::path::Path, lines: usize) -> std::io::Result<(String, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: u64 = 64 << 10;
    let mut file = std::fs::File::open(path)?;
    let mut start = file.metadata()?.len();
    let mut buffer: Vec<u8> = Vec::new();
    let mut newlines = 0;
    // One more newline than lines wanted: the one before the first whole line (the file's last
    // newline ends the last line, so it counts as well).
    while start > 0 && newlines <= lines {
        let step = BLOCK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut block = vec![0; step as usize];
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|&&b| b == b'\n').count();
        block.extend_from_slice(&buffer);
        buffer = block;
    }
    if start > 0 {
        let cut = buffer.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        buffer.drain(..cut);
    }
    Ok((String::from_utf8_lossy(&buffer).into_owned(), start == 0))
}

/// Every parseable line (an object with a `features` object) of `model` (any, with `None`; a
/// line naming no model is any model's), in file order, and the count of unparseable lines.
fn parse_log_lines(text: &str, model: Option<&str>) -> (Vec<LoggedRow>, usize) {
    let mut rows = Vec::new();
    let mut unparsed = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object))
                if model.is_some()
                    && object
                        .get("model")
                        .and_then(Value::as_str)
                        .is_some_and(|named| Some(named) != model) => {}
            Ok(Value::Object(mut object)) => match object.remove("features") {
                Some(Value::Object(features)) => rows.push(LoggedRow {
                    ts: object.get("ts").and_then(Value::as_u64),
                    features,
                }),
                _ => unparsed += 1,
            },
            _ => unparsed += 1,
        }
    }
    (rows, unparsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> ModelInfo {
        serde_json::from_value(json!({
            "name": "churn", "version": "v1", "task": "binary-classification",
            "features": [
                {"name": "tenure_months", "kind": "integer", "min": 0, "max": 200},
                {"name": "plan_type", "kind": "categorical", "vocabulary": ["basic", "premium"]}
            ],
            "outputs": ["probability"], "threshold": 0.5, "golden": [],
            "training": {
                "n_rows": 100,
                "numeric": {"tenure_months": {"mean": 30.0, "std": 10.0}},
                "categorical": {"plan_type": {"basic": 0.75, "premium": 0.25}}
            }
        }))
        .unwrap()
    }

    fn rows(values: &[(f64, &str)]) -> Vec<Map<String, Value>> {
        values
            .iter()
            .map(|(t, p)| {
                json!({"tenure_months": t, "plan_type": p})
                    .as_object()
                    .unwrap()
                    .clone()
            })
            .collect()
    }

    #[test]
    fn figures_match_a_hand_computed_example() {
        // tenure mean = (50 + 60 + 55 + 55) / 4 = 55 → z = |55 − 30| / 10 = 2.5 → alert (≥ 2.5).
        // plan: recent basic 0.5, premium 0.5 vs train 0.75 / 0.25:
        // PSI = (0.5 − 0.75)·ln(0.5/0.75) + (0.5 − 0.25)·ln(0.5/0.25)
        //     = 0.25·ln(1.5) + 0.25·ln(2) = 0.101366 + 0.173287 = 0.274653 → alert (≥ 0.2).
        let recent = rows(&[
            (50.0, "basic"),
            (60.0, "premium"),
            (55.0, "basic"),
            (55.0, "premium"),
        ]);
        let report = drift_report(&info(), &recent, 200, Thresholds::default());
        let tenure = &report.numeric["tenure_months"];
        assert_eq!(tenure.mean_recent, Some(55.0));
        assert_eq!(tenure.z, Some(2.5));
        assert!(tenure.alert);
        let plan = &report.categorical["plan_type"];
        assert!(
            (plan.psi.unwrap() - 0.274_653).abs() < 1e-6,
            "{:?}",
            plan.psi
        );
        assert!(plan.alert);
        assert_eq!(report.alerts, ["tenure_months", "plan_type"]);
        assert!(report.drift);
        assert_eq!(report.n_predictions, 4);
    }

    #[test]
    fn data_like_training_raises_no_alert() {
        let recent = rows(&[
            (25.0, "basic"),
            (35.0, "basic"),
            (30.0, "basic"),
            (30.0, "premium"),
        ]);
        let report = drift_report(&info(), &recent, 200, Thresholds::default());
        assert_eq!(report.numeric["tenure_months"].z, Some(0.0));
        assert_eq!(report.categorical["plan_type"].psi, Some(0.0));
        assert!(!report.drift && report.alerts.is_empty());
    }

    #[test]
    fn an_empty_window_reports_nothing_and_unseen_categories_count() {
        let report = drift_report(&info(), &[], 200, Thresholds::default());
        assert_eq!(report.numeric["tenure_months"].mean_recent, None);
        assert!(!report.drift);
        let recent = rows(&[(30.0, "enterprise")]);
        let report = drift_report(&info(), &recent, 200, Thresholds::default());
        assert!(
            report.categorical["plan_type"].alert,
            "a category never seen in training"
        );
    }

    #[test]
    fn the_log_window_reads_the_last_lines_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.log");
        let line = |t: u32| {
            format!(
                r#"{{"request_id":"r{t}","features":{{"tenure_months":{t},"plan_type":"basic"}}}}"#
            )
        };
        let older: Vec<String> = (0..5).map(line).collect();
        let newer: Vec<String> = (5..8).map(line).collect();
        std::fs::write(
            dir.path().join("predictions.log.1"),
            older.join("\n") + "\n",
        )
        .unwrap();
        std::fs::write(&path, newer.join("\n") + "\nnot json\n").unwrap();
        let (rows, unparsed) = read_log_window(&path, 4, None).unwrap();
        let kept: Vec<f64> = rows
            .iter()
            .map(|r| r.features["tenure_months"].as_f64().unwrap())
            .collect();
        assert_eq!(kept, [4.0, 5.0, 6.0, 7.0]);
        assert_eq!(unparsed, 1);
    }

    #[test]
    fn a_large_log_is_read_from_its_tail_past_junk_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.log");
        let mut text = String::new();
        for t in 0..20_000 {
            text.push_str(&format!(
                "{{\"ts\":{t},\"features\":{{\"tenure_months\":{t}}}}}\n"
            ));
        }
        // More junk than the window at the end: the reader must look further back.
        for _ in 0..5_000 {
            text.push_str("junk that is not a prediction record\n");
        }
        std::fs::write(&path, &text).unwrap();
        assert!(text.len() > 4 * (64 << 10), "spans several blocks");
        let (rows, unparsed) = read_log_window(&path, 3, None).unwrap();
        let kept: Vec<u64> = rows.iter().map(|r| r.ts.unwrap()).collect();
        assert_eq!(kept, [19_997, 19_998, 19_999]);
        assert!(unparsed >= 5_000);
        let (all, _) = read_log_window(&path, 1_000_000, None).unwrap();
        assert_eq!(all.len(), 20_000);
        assert_eq!(all[0].ts, Some(0));
    }

    #[test]
    fn a_model_filter_keeps_its_lines_and_those_that_name_no_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("predictions.log");
        std::fs::write(
            &path,
            concat!(
                "{\"ts\":1,\"features\":{\"tenure_months\":1}}\n",
                "{\"ts\":2,\"features\":{\"tenure_months\":2},\"model\":\"churn\"}\n",
                "{\"ts\":3,\"features\":{\"tenure_months\":3},\"model\":\"fraud\"}\n",
            ),
        )
        .unwrap();
        let times = |model| {
            let (rows, unparsed) = read_log_window(&path, 10, model).unwrap();
            assert_eq!(unparsed, 0);
            rows.iter().map(|r| r.ts.unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(times(Some("churn")), [1, 2]);
        assert_eq!(times(Some("fraud")), [1, 3]);
        assert_eq!(times(None), [1, 2, 3]);
    }

    #[test]
    fn the_window_keeps_the_last_n() {
        let window = DriftWindow::new(3);
        for row in rows(&[(1.0, "a"), (2.0, "a"), (3.0, "a"), (4.0, "a")]) {
            window.push(row);
        }
        let kept: Vec<f64> = window
            .snapshot()
            .iter()
            .map(|r| r["tenure_months"].as_f64().unwrap())
            .collect();
        assert_eq!(kept, [2.0, 3.0, 4.0]);
    }
}
