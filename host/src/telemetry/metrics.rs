//! Prometheus metrics, exposed at `GET /metrics` in the OpenMetrics text format.
//!
//! One [`Metrics`] per process holds every family; handlers, the watcher and the prediction log
//! update it, and [`Metrics::encode`] renders it. Counters that other parts already keep (the
//! prediction log's written/dropped lines, the log lines lost on standard error, the active
//! model) are read at scrape time rather than duplicated. The drift figures are computed at
//! scrape time too, from the live window (see [`Metrics::encode_with_drift`]): a scrape every
//! few seconds costs one report over a few hundred rows, while keeping them current on every
//! prediction would cost the request path.
//!
//! **Which model.** A server that serves several models (`MODEL_NAMES`) labels every per-model
//! series — predictions, loads, swaps, refusals, `model_info`, the drift gauges — with
//! `model="<name>"` ([`ModelLabel`]); the names are the served models', so the label set is
//! bounded by [`MAX_MODELS`](crate::config::MAX_MODELS). A server of one model writes the same
//! series without the label, exactly as before there could be several. Which of the two is
//! decided once, at start-up ([`Metrics::labelling_models`]). The wasm call histogram and call
//! errors stay process-wide.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::drift::DriftReport;
use super::predlog::LogCounters;
use crate::runtime::{CallError, LoadError};

/// The served model a series belongs to: `model="<name>"` on a server of several models,
/// nothing on a server of one (see the module's documentation).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct ModelLabel(Option<String>);

impl EncodeLabelSet for ModelLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match &self.0 {
            Some(name) => ("model", name.as_str()).encode(encoder.encode_label()),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// One of the serving model's features: the label set of the drift gauges is bounded by the
/// features its info document declares.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeatureLabels {
    pub feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 50 µs … ~1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<HttpLabels>,
    pub predictions: Family<(ModelLabel, VersionLabels), Counter>,
    pub wasm_call_duration: Histogram,
    pub wasm_call_errors: Family<ReasonLabels, Counter>,
    model_loads: Family<ModelLabel, Counter>,
    model_swaps: Family<ModelLabel, Counter>,
    model_rejections: Family<(ModelLabel, ReasonLabels), Counter>,
    model_info: Family<(ModelLabel, ModelLabels), Gauge>,
    /// The `model_info` series of each served model, to replace it at its next swap.
    info_series: Mutex<BTreeMap<String, (ModelLabel, ModelLabels)>>,
    models_unloaded: Family<ModelLabel, Counter>,
    /// Whether series carry the [`ModelLabel`].
    per_model: bool,
    log_written: Counter,
    log_dropped: Counter,
    log_counters: Option<Arc<LogCounters>>,
    log_lines_dropped: Counter,
    drift_z: Family<(ModelLabel, FeatureLabels), FloatGauge>,
    drift_psi: Family<(ModelLabel, FeatureLabels), FloatGauge>,
    drift_window_predictions: Family<ModelLabel, Gauge>,
    /// Held from setting the drift gauges to encoding them, so that two concurrent scrapes
    /// never see each other's half-cleared families.
    scrape: Mutex<()>,
}

impl Metrics {
    /// Registers every family under the `modelhost_` prefix.
    pub fn new(log_counters: Option<Arc<LogCounters>>) -> Self {
        let mut registry = Registry::with_prefix("modelhost");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<HttpLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route, method and status",
            http_duration.clone(),
        );
        let predictions = Family::<(ModelLabel, VersionLabels), Counter>::default();
        registry.register(
            "predictions",
            "Rows predicted, by model version",
            predictions.clone(),
        );
        let wasm_call_duration = latency_histogram();
        registry.register(
            "wasm_call_duration_seconds",
            "Duration of one model call (fresh instance + predict)",
            wasm_call_duration.clone(),
        );
        let wasm_call_errors = at_zero(CallError::reasons());
        registry.register(
            "wasm_call_errors",
            "Failed model calls by reason",
            wasm_call_errors.clone(),
        );
        let model_loads = Family::<ModelLabel, Counter>::default();
        registry.register(
            "model_loads",
            "Candidate artifacts that passed every check",
            model_loads.clone(),
        );
        let model_swaps = Family::<ModelLabel, Counter>::default();
        registry.register(
            "model_swaps",
            "Times the serving model was replaced (the first load included)",
            model_swaps.clone(),
        );
        let model_rejections = Family::<(ModelLabel, ReasonLabels), Counter>::default();
        registry.register(
            "model_rejections",
            "Candidate artifacts refused, by reason",
            model_rejections.clone(),
        );
        let model_info = Family::<(ModelLabel, ModelLabels), Gauge>::default();
        registry.register(
            "model_info",
            "The serving model (value 1)",
            model_info.clone(),
        );
        let models_unloaded = Family::<ModelLabel, Counter>::default();
        registry.register(
            "models_unloaded",
            "Models no longer served because their registry folder was removed (MODEL_NAMES=*)",
            models_unloaded.clone(),
        );
        let log_written = Counter::default();
        registry.register(
            "prediction_log_lines_written",
            "Lines appended to the prediction log",
            log_written.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "prediction_log_lines_dropped",
            "Prediction log lines lost (queue full or file unwritable)",
            log_dropped.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines lost because standard error could not be written (its reader went away or the write failed); serving continues",
            log_lines_dropped.clone(),
        );
        let drift_z = Family::<(ModelLabel, FeatureLabels), FloatGauge>::default();
        registry.register(
            "drift_z",
            "Numeric feature drift over the live window: |recent mean - training mean| / training std (absent without recent values or with a training std of 0)",
            drift_z.clone(),
        );
        let drift_psi = Family::<(ModelLabel, FeatureLabels), FloatGauge>::default();
        registry.register(
            "drift_psi",
            "Categorical feature drift over the live window: population stability index against the training frequencies (absent without recent values)",
            drift_psi.clone(),
        );
        let drift_window_predictions = Family::<ModelLabel, Gauge>::default();
        registry.register(
            "drift_window_predictions",
            "Predictions in the live drift window the drift figures are computed over",
            drift_window_predictions.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_duration,
            predictions,
            wasm_call_duration,
            wasm_call_errors,
            model_loads,
            model_swaps,
            model_rejections,
            model_info,
            info_series: Mutex::new(BTreeMap::new()),
            models_unloaded,
            per_model: false,
            log_written,
            log_dropped,
            log_counters,
            log_lines_dropped,
            drift_z,
            drift_psi,
            drift_window_predictions,
            scrape: Mutex::new(()),
        }
    }

    /// Labels every per-model series with its model's name: for a server of several models.
    /// Call it before any model is registered.
    pub fn labelling_models(mut self) -> Self {
        self.per_model = true;
        self
    }

    /// The label of `model`'s series.
    pub fn model_label(&self, model: &str) -> ModelLabel {
        ModelLabel(self.per_model.then(|| model.to_string()))
    }

    /// Starts `model`'s series: its loads, swaps and every refusal reason at 0.
    pub fn register_model(&self, model: &str) {
        let label = self.model_label(model);
        self.model_loads.get_or_create_owned(&label);
        self.model_swaps.get_or_create_owned(&label);
        for reason in LoadError::reasons() {
            self.model_rejections.get_or_create_owned(&(
                label.clone(),
                ReasonLabels {
                    reason: reason.to_string(),
                },
            ));
        }
    }

    /// Counts a load of `model` that now serves: `name` (as its info says), `version`,
    /// `sha256`, which become its one `model_info` series.
    pub fn model_loaded(&self, model: &str, name: &str, version: &str, sha256: &str) {
        let label = self.model_label(model);
        self.model_loads.get_or_create(&label).inc();
        self.model_swaps.get_or_create(&label).inc();
        let series = (
            label.clone(),
            ModelLabels {
                name: name.to_string(),
                version: version.to_string(),
                sha256: sha256.to_string(),
            },
        );
        let mut info = self.info_series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = info.insert(model.to_string(), series.clone()) {
            self.model_info.remove(&previous);
        }
        self.model_info.get_or_create(&series).set(1);
        drop(info);
        // Its prediction series exists from the moment it serves, at 0 until its first answer.
        self.predictions.get_or_create_owned(&(
            label,
            VersionLabels {
                version: version.to_string(),
            },
        ));
    }

    /// Counts a refused candidate of `model`.
    pub fn reject(&self, model: &str, reason: &str) {
        self.model_rejections
            .get_or_create(&(
                self.model_label(model),
                ReasonLabels {
                    reason: reason.to_string(),
                },
            ))
            .inc();
    }

    /// Counts one answered row of `model`'s `version`.
    pub fn count_prediction(&self, model: &str, version: &str) {
        self.predictions
            .get_or_create(&(
                self.model_label(model),
                VersionLabels {
                    version: version.to_string(),
                },
            ))
            .inc();
    }

    /// `model` is no longer served (its folder was removed): counted, and its `model_info`
    /// series dropped.
    pub fn model_unloaded(&self, model: &str) {
        self.models_unloaded
            .get_or_create(&self.model_label(model))
            .inc();
        let mut info = self.info_series.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = info.remove(model) {
            self.model_info.remove(&previous);
        }
    }

    /// The OpenMetrics text exposition, without drift figures.
    pub fn encode(&self) -> String {
        self.encode_with_drift(&[])
    }

    /// The OpenMetrics text exposition with `drift`'s figures as the drift gauges: one
    /// `drift_z` series per numeric feature and one `drift_psi` series per categorical feature
    /// that has a figure, nothing for the others (a figure that cannot be computed is absent,
    /// never a made-up 0). The families are replaced on each call, so a swapped-in model's
    /// features replace the previous model's. `drift` holds each served model's report (none
    /// while it serves nothing); with no entry at all, the window gauge is one series at 0.
    pub fn encode_with_drift(&self, drift: &[(&str, Option<DriftReport>)]) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.drift_z.clear();
        self.drift_psi.clear();
        self.drift_window_predictions.clear();
        if drift.is_empty() {
            self.drift_window_predictions
                .get_or_create(&ModelLabel::default())
                .set(0);
        }
        for (model, report) in drift {
            let label = self.model_label(model);
            let mut predictions = 0;
            if let Some(report) = report {
                predictions = report.n_predictions;
                for (feature, figures) in &report.numeric {
                    if let Some(z) = figures.z {
                        self.drift_z
                            .get_or_create(&(label.clone(), feature_labels(feature)))
                            .set(z);
                    }
                }
                for (feature, figures) in &report.categorical {
                    if let Some(psi) = figures.psi {
                        self.drift_psi
                            .get_or_create(&(label.clone(), feature_labels(feature)))
                            .set(psi);
                    }
                }
            }
            self.drift_window_predictions
                .get_or_create(&label)
                .set(i64::try_from(predictions).unwrap_or(i64::MAX));
        }
        if let Some(counters) = &self.log_counters {
            sync_counter(&self.log_written, counters.written.load(Ordering::Relaxed));
            sync_counter(&self.log_dropped, counters.dropped.load(Ordering::Relaxed));
        }
        sync_counter(&self.log_lines_dropped, super::log_lines_dropped());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// A counter family with a series at 0 for each of `reasons`, so that every known cause is on
/// `/metrics` from start-up: `rate()` and alerts see a cause's first occurrence as a rise from
/// 0, not as a series that appears out of nowhere.
fn at_zero(reasons: impl Iterator<Item = &'static str>) -> Family<ReasonLabels, Counter> {
    let family = Family::<ReasonLabels, Counter>::default();
    for reason in reasons {
        family.get_or_create_owned(&ReasonLabels {
            reason: reason.to_string(),
        });
    }
    family
}

fn feature_labels(feature: &str) -> FeatureLabels {
    FeatureLabels {
        feature: feature.to_string(),
    }
}

/// Raises `counter` to `value` (counters only go up).
fn sync_counter(counter: &Counter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefixed_names_and_labels() {
        let counters = Arc::new(LogCounters::default());
        counters.written.store(7, Ordering::Relaxed);
        let metrics = Metrics::new(Some(counters));
        metrics
            .http_requests
            .get_or_create(&HttpLabels {
                route: "/predict".into(),
                method: "POST".into(),
                status: 200,
            })
            .inc();
        metrics.register_model("churn");
        metrics.model_loaded("churn", "churn", "v1", "abc");
        metrics.model_loaded("churn", "churn", "v2", "def");
        metrics.reject("churn", "import");
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"modelhost_http_requests_total{route="/predict",method="POST",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"modelhost_model_info{name="churn",version="v2",sha256="def"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"modelhost_model_info{name="churn",version="v1""#),
            "only the serving model: {text}"
        );
        assert!(
            text.contains(r#"modelhost_predictions_total{version="v2"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"modelhost_wasm_call_errors_total{reason="trap"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"modelhost_model_rejections_total{reason="import"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("modelhost_prediction_log_lines_written_total 7"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE modelhost_wasm_call_duration_seconds histogram"),
            "{text}"
        );
    }

    #[test]
    fn a_server_of_several_models_labels_each_series_with_its_model() {
        let metrics = Metrics::new(None).labelling_models();
        metrics.register_model("churn");
        metrics.register_model("fraud");
        metrics.model_loaded("churn", "churn", "v1", "a");
        metrics.model_loaded("fraud", "fraud", "v9", "b");
        metrics.model_loaded("fraud", "fraud", "v10", "c");
        metrics.count_prediction("fraud", "v10");
        metrics.reject("fraud", "import");
        metrics.model_unloaded("churn");
        let text = metrics.encode_with_drift(&[("fraud", None)]);
        for sample in [
            r#"modelhost_predictions_total{model="fraud",version="v10"} 1"#,
            r#"modelhost_predictions_total{model="churn",version="v1"} 0"#,
            r#"modelhost_model_swaps_total{model="fraud"} 2"#,
            r#"modelhost_model_loads_total{model="churn"} 1"#,
            r#"modelhost_model_rejections_total{model="fraud",reason="import"} 1"#,
            r#"modelhost_model_rejections_total{model="churn",reason="import"} 0"#,
            r#"modelhost_model_info{model="fraud",name="fraud",version="v10",sha256="c"} 1"#,
            r#"modelhost_models_unloaded_total{model="churn"} 1"#,
            r#"modelhost_drift_window_predictions{model="fraud"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample} in {text}");
        }
        assert!(!text.contains(r#"version="v9",sha256"#), "{text}");
        assert!(
            !text.contains(r#"modelhost_model_info{model="churn""#),
            "an unloaded model has no model_info: {text}"
        );
    }

    #[test]
    fn drift_gauges_carry_the_reports_figures_and_only_those() {
        use crate::telemetry::drift::{CategoricalDrift, NumericDrift, Thresholds};
        use std::collections::BTreeMap;

        let numeric = |z| NumericDrift {
            n: 4,
            mean_recent: Some(1.0),
            mean_train: 0.0,
            std_train: 1.0,
            z,
            alert: false,
        };
        let report = DriftReport {
            model_name: "churn".into(),
            model_version: "v1".into(),
            n_predictions: 4,
            window: 200,
            thresholds: Thresholds::default(),
            numeric: BTreeMap::from([
                ("tenure_months".to_string(), numeric(Some(2.5))),
                ("constant".to_string(), numeric(None)),
            ]),
            categorical: BTreeMap::from([(
                "plan_type".to_string(),
                CategoricalDrift {
                    n: 4,
                    recent: BTreeMap::new(),
                    train: BTreeMap::new(),
                    psi: Some(0.125),
                    alert: false,
                },
            )]),
            alerts: vec![],
            drift: false,
        };
        let metrics = Metrics::new(None);
        let text = metrics.encode_with_drift(&[("churn", Some(report.clone()))]);
        for sample in [
            r#"modelhost_drift_z{feature="tenure_months"} 2.5"#,
            r#"modelhost_drift_psi{feature="plan_type"} 0.125"#,
            "modelhost_drift_window_predictions 4",
        ] {
            assert!(text.lines().any(|l| l == sample), "{sample} in {text}");
        }
        assert!(!text.contains(r#"feature="constant""#), "{text}");
        let text = metrics.encode();
        assert!(!text.contains("modelhost_drift_z{"), "{text}");
        assert!(!text.contains("modelhost_drift_psi{"), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "modelhost_drift_window_predictions 0"),
            "{text}"
        );
    }
}
