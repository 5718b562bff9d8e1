//! Prometheus metrics, exposed at `GET /metrics` in the OpenMetrics text format.
//!
//! One [`Metrics`] per process holds every family; handlers, the watcher and the prediction log
//! update it, and [`Metrics::encode`] renders it. Counters that other parts already keep (the
//! prediction log's written/dropped lines, the log lines lost on standard error, the active
//! model) are read at scrape time rather than duplicated. The drift figures are computed at
//! scrape time too, from the live window (see [`Metrics::encode_with_drift`]): a scrape every
//! few seconds costs one report over a few hundred rows, while keeping them current on every
//! prediction would cost the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::drift::DriftReport;
use super::predlog::LogCounters;
use crate::runtime::{CallError, LoadError};

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
    pub predictions: Family<VersionLabels, Counter>,
    pub wasm_call_duration: Histogram,
    pub wasm_call_errors: Family<ReasonLabels, Counter>,
    pub model_loads: Counter,
    pub model_swaps: Counter,
    pub model_rejections: Family<ReasonLabels, Counter>,
    pub model_info: Family<ModelLabels, Gauge>,
    log_written: Counter,
    log_dropped: Counter,
    log_counters: Option<Arc<LogCounters>>,
    log_lines_dropped: Counter,
    drift_z: Family<FeatureLabels, FloatGauge>,
    drift_psi: Family<FeatureLabels, FloatGauge>,
    drift_window_predictions: Gauge,
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
        let predictions = Family::<VersionLabels, Counter>::default();
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
        let model_loads = Counter::default();
        registry.register(
            "model_loads",
            "Candidate artifacts that passed every check",
            model_loads.clone(),
        );
        let model_swaps = Counter::default();
        registry.register(
            "model_swaps",
            "Times the serving model was replaced (the first load included)",
            model_swaps.clone(),
        );
        let model_rejections = at_zero(LoadError::reasons());
        registry.register(
            "model_rejections",
            "Candidate artifacts refused, by reason",
            model_rejections.clone(),
        );
        let model_info = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "model_info",
            "The serving model (value 1)",
            model_info.clone(),
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
        let drift_z = Family::<FeatureLabels, FloatGauge>::default();
        registry.register(
            "drift_z",
            "Numeric feature drift over the live window: |recent mean - training mean| / training std (absent without recent values or with a training std of 0)",
            drift_z.clone(),
        );
        let drift_psi = Family::<FeatureLabels, FloatGauge>::default();
        registry.register(
            "drift_psi",
            "Categorical feature drift over the live window: population stability index against the training frequencies (absent without recent values)",
            drift_psi.clone(),
        );
        let drift_window_predictions = Gauge::default();
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

    /// Records the serving model as the only `model_info` series.
    pub fn set_active_model(&self, name: &str, version: &str, sha256: &str) {
        self.model_info.clear();
        self.model_info
            .get_or_create(&ModelLabels {
                name: name.to_string(),
                version: version.to_string(),
                sha256: sha256.to_string(),
            })
            .set(1);
        // Its prediction series exists from the moment it serves, at 0 until its first answer.
        self.predictions.get_or_create_owned(&VersionLabels {
            version: version.to_string(),
        });
    }

    /// Counts a refused candidate.
    pub fn reject(&self, reason: &str) {
        self.model_rejections
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition, without drift figures.
    pub fn encode(&self) -> String {
        self.encode_with_drift(None)
    }

    /// The OpenMetrics text exposition with `drift`'s figures as the drift gauges: one
    /// `drift_z` series per numeric feature and one `drift_psi` series per categorical feature
    /// that has a figure, nothing for the others (a figure that cannot be computed is absent,
    /// never a made-up 0). The families are replaced on each call, so a swapped-in model's
    /// features replace the previous model's.
    pub fn encode_with_drift(&self, drift: Option<&DriftReport>) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.drift_z.clear();
        self.drift_psi.clear();
        let mut predictions = 0;
        if let Some(report) = drift {
            predictions = report.n_predictions;
            for (feature, figures) in &report.numeric {
                if let Some(z) = figures.z {
                    self.drift_z.get_or_create(&feature_labels(feature)).set(z);
                }
            }
            for (feature, figures) in &report.categorical {
                if let Some(psi) = figures.psi {
                    self.drift_psi
                        .get_or_create(&feature_labels(feature))
                        .set(psi);
                }
            }
        }
        self.drift_window_predictions
            .set(i64::try_from(predictions).unwrap_or(i64::MAX));
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
        metrics.set_active_model("churn", "v1", "abc");
        metrics.set_active_model("churn", "v2", "def");
        metrics.reject("import");
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
        let text = metrics.encode_with_drift(Some(&report));
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
