//! The `info` document: what a model says about itself, as JSON returned by the `info` export.
//!
//! The host reads it once per artifact, validates it with [`ModelInfo::validate`], and from then
//! on uses the schema to validate and encode every request, the threshold to turn probabilities
//! into predictions, the training statistics for drift checks and the golden pairs to self-test
//! the module before it may serve. Unknown fields are ignored so that newer guests stay loadable.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The task every v1 model performs.
pub const TASK_BINARY_CLASSIFICATION: &str = "binary-classification";

/// Largest `info` document the host accepts, in bytes.
pub const MAX_INFO_BYTES: usize = 1 << 20;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model name, e.g. `churn`.
    pub name: String,
    /// Version id; every response names it.
    pub version: String,
    /// Always [`TASK_BINARY_CLASSIFICATION`] in ABI v1.
    pub task: String,
    /// Input features, in the column order of the `predict` matrix.
    pub features: Vec<FeatureSpec>,
    /// Output names; v1 models output one probability per row.
    pub outputs: Vec<String>,
    /// Probability at or above which the prediction is 1.
    pub threshold: f64,
    /// Statistics of the training rows, for drift checks.
    #[serde(default)]
    pub training: TrainingStats,
    /// Hold-out metrics (accuracy, precision, recall, f1, roc_auc, baseline_f1, …).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Input rows with the probability the model must return for them; the load-time self-test.
    pub golden: Vec<GoldenPair>,
    /// What kind of model computes the probabilities, for people (`inspect`); optional, and
    /// written only when known, so documents without it are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
}

/// The model family an artifact holds and its size, as its builder describes it. Descriptive
/// only: nothing is decided from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// `trees` for the tree-ensemble kernel.
    pub name: String,
    /// Where the model came from (`xgboost`, `lightgbm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u64>,
    /// Bytes of the parameter block (trees, nodes and the info document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_bytes: Option<u64>,
}

/// One input feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Field name in requests.
    pub name: String,
    /// Type and valid values.
    #[serde(flatten)]
    pub kind: FeatureKind,
}

/// A feature's type and the values it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureKind {
    /// A whole number in `min..=max`.
    Integer { min: f64, max: f64 },
    /// A finite number in `min..=max`.
    Number { min: f64, max: f64 },
    /// A string, normalised by `case` and trimmed; its index in `vocabulary` is the column value,
    /// or [`UNKNOWN_CATEGORY`](crate::UNKNOWN_CATEGORY) when absent.
    Categorical {
        vocabulary: Vec<String>,
        #[serde(default)]
        case: CaseRule,
    },
}

/// How a categorical value is normalised before lookup (after trimming white space).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseRule {
    /// Lower-case (the lab's `plan_type`).
    Lower,
    /// Upper-case (the lab's `region`).
    Upper,
    /// Keep as given.
    #[default]
    Keep,
}

impl CaseRule {
    /// Trims and applies the rule.
    pub fn apply(self, raw: &str) -> String {
        let trimmed = raw.trim();
        match self {
            CaseRule::Lower => trimmed.to_lowercase(),
            CaseRule::Upper => trimmed.to_uppercase(),
            CaseRule::Keep => String::from(trimmed),
        }
    }
}

/// Training-set statistics carried by the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingStats {
    /// Number of training rows.
    #[serde(default)]
    pub n_rows: u64,
    /// Mean and population standard deviation per numeric feature.
    #[serde(default)]
    pub numeric: BTreeMap<String, NumericStats>,
    /// Category frequencies (fractions) per categorical feature.
    #[serde(default)]
    pub categorical: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Mean and population standard deviation of a numeric feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumericStats {
    pub mean: f64,
    pub std: f64,
}

/// A golden input row (in schema order) and the probability the model returns for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenPair {
    pub input: Vec<GoldenValue>,
    pub probability: f64,
}

/// One value of a golden row: a number, or a category as it would arrive in a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GoldenValue {
    Number(f64),
    Category(String),
}

/// Why an info document is unusable; the message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoError(pub String);

impl core::fmt::Display for InfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, InfoError> {
    Err(InfoError(message.into()))
}

impl ModelInfo {
    /// Checks everything the host relies on: names, ranges, vocabularies, threshold and golden
    /// pairs. A model that passes can be served without further shape checks.
    pub fn validate(&self) -> Result<(), InfoError> {
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return fail("info.name must be 1-128 characters");
        }
        if self.version.trim().is_empty() || self.version.len() > 128 {
            return fail("info.version must be 1-128 characters");
        }
        if self.task != TASK_BINARY_CLASSIFICATION {
            return fail(format!(
                "info.task is {:?}; ABI v1 serves only {TASK_BINARY_CLASSIFICATION:?}",
                self.task
            ));
        }
        if self.outputs.len() != 1 {
            return fail(format!(
                "info.outputs must name exactly one output, found {}",
                self.outputs.len()
            ));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return fail(format!(
                "info.threshold {} is outside [0, 1]",
                self.threshold
            ));
        }
        if self.features.is_empty() {
            return fail("info.features is empty");
        }
        for (i, feature) in self.features.iter().enumerate() {
            feature.validate(i)?;
            if self.features[..i].iter().any(|f| f.name == feature.name) {
                return fail(format!(
                    "info.features[{i}]: duplicate feature name {:?}",
                    feature.name
                ));
            }
        }
        if self.golden.is_empty() {
            return fail(
                "info.golden is empty; a model must carry at least one golden pair for its self-test",
            );
        }
        for (i, pair) in self.golden.iter().enumerate() {
            if pair.input.len() != self.features.len() {
                return fail(format!(
                    "info.golden[{i}] has {} values, the schema has {} features",
                    pair.input.len(),
                    self.features.len()
                ));
            }
            if !(0.0..=1.0).contains(&pair.probability) {
                return fail(format!(
                    "info.golden[{i}].probability {} is outside [0, 1]",
                    pair.probability
                ));
            }
            for (value, feature) in pair.input.iter().zip(&self.features) {
                let fits = matches!(
                    (value, &feature.kind),
                    (GoldenValue::Number(v), FeatureKind::Integer { .. } | FeatureKind::Number { .. }) if v.is_finite()
                ) || matches!(
                    (value, &feature.kind),
                    (GoldenValue::Category(_), FeatureKind::Categorical { .. })
                );
                if !fits {
                    return fail(format!(
                        "info.golden[{i}]: value for {:?} does not match its kind",
                        feature.name
                    ));
                }
            }
        }
        Ok(())
    }
}

impl FeatureSpec {
    fn validate(&self, i: usize) -> Result<(), InfoError> {
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return fail(format!("info.features[{i}].name must be 1-128 characters"));
        }
        match &self.kind {
            FeatureKind::Integer { min, max } | FeatureKind::Number { min, max } => {
                if !(min.is_finite() && max.is_finite() && min <= max) {
                    return fail(format!(
                        "info.features[{i}] ({}): range {min}..{max} is not a finite, ordered range",
                        self.name
                    ));
                }
            }
            FeatureKind::Categorical { vocabulary, .. } => {
                if vocabulary.is_empty() {
                    return fail(format!(
                        "info.features[{i}] ({}): empty vocabulary",
                        self.name
                    ));
                }
                for (j, word) in vocabulary.iter().enumerate() {
                    if vocabulary[..j].contains(word) {
                        return fail(format!(
                            "info.features[{i}] ({}): duplicate category {word:?}",
                            self.name
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn sample() -> ModelInfo {
        ModelInfo {
            name: "churn".to_string(),
            version: "v1".to_string(),
            task: TASK_BINARY_CLASSIFICATION.to_string(),
            features: vec![
                FeatureSpec {
                    name: "tenure_months".to_string(),
                    kind: FeatureKind::Integer {
                        min: 0.0,
                        max: 200.0,
                    },
                },
                FeatureSpec {
                    name: "plan_type".to_string(),
                    kind: FeatureKind::Categorical {
                        vocabulary: vec!["basic".to_string(), "premium".to_string()],
                        case: CaseRule::Lower,
                    },
                },
            ],
            outputs: vec!["probability".to_string()],
            threshold: 0.5,
            training: TrainingStats::default(),
            metrics: BTreeMap::new(),
            golden: vec![GoldenPair {
                input: vec![
                    GoldenValue::Number(6.0),
                    GoldenValue::Category("basic".to_string()),
                ],
                probability: 0.5,
            }],
            family: None,
        }
    }

    #[test]
    fn a_sound_document_validates() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn each_defect_is_named() {
        type Mutation = fn(&mut ModelInfo);
        let cases: [(Mutation, &str); 6] = [
            (|m| m.threshold = 1.5, "info.threshold"),
            (|m| m.features.clear(), "info.features is empty"),
            (|m| m.golden.clear(), "info.golden is empty"),
            (
                |m| m.golden[0].input.pop().map(drop).unwrap_or(()),
                "info.golden[0] has 1 values",
            ),
            (
                |m| m.features[1].name = "tenure_months".to_string(),
                "duplicate feature name",
            ),
            (|m| m.task = "regression".to_string(), "info.task"),
        ];
        for (mutate, expected) in cases {
            let mut info = sample();
            mutate(&mut info);
            let err = info.validate().unwrap_err().0;
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn case_rules_trim_and_fold() {
        assert_eq!(CaseRule::Lower.apply("  Premium "), "premium");
        assert_eq!(CaseRule::Upper.apply("eu"), "EU");
        assert_eq!(CaseRule::Keep.apply(" Mixed "), "Mixed");
    }
}
