//! The model spec: everything the trainer needs to know about one model's data that is not in
//! the data itself — the target column, each feature's kind, the range requests are validated
//! against, the case rule of a category, the clipping of a number — and the quality gate.
//!
//! Generic code never names a column: the churn lab's knowledge lives in `specs/churn.toml`
//! ([`ModelSpec::churn`], embedded), and another model is trained by writing another spec
//! (`modelhost train --spec FILE`, format in `docs/SPEC.md`). The ranges and case rules travel
//! on into the artifact's `info` document, so the server validates requests, and the OpenAPI
//! document describes them, from the same declaration.
//!
//! A spec file is untrusted input: it is size-capped, read with `deny_unknown_fields`, and every
//! error names the file, the feature and the field at fault, with the TOML line and column.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::clean::CaseRule;
use crate::csvdata::KindOverrides;

/// The churn lab's spec, as committed.
pub const CHURN_SPEC: &str = include_str!("../specs/churn.toml");

/// Largest spec file read, in bytes: a spec is a few hundred bytes per feature.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Most features a spec may declare.
pub const MAX_FEATURES: usize = 4096;

/// Longest feature or target name, in bytes (the ABI's bound on feature names).
pub const MAX_NAME_LEN: usize = 128;

/// A spec that could not be read or is not valid. The message starts with the file and, where
/// known, `line:column`, then names the feature and field.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// How a feature's values are read and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecKind {
    /// Numeric if every value of the column parses as a number, else categorical.
    Auto,
    /// A number; served as an integer when every training value is whole, else as a number.
    Numeric,
    /// A whole number: a fractional value in the data is an error naming column and row.
    Integer,
    /// A number, served as one even when every training value is whole.
    Number,
    /// A category (a string), even when every value looks like a number.
    Categorical,
}

impl SpecKind {
    fn is_numeric(self) -> bool {
        matches!(
            self,
            SpecKind::Numeric | SpecKind::Integer | SpecKind::Number
        )
    }
}

/// One feature of a spec.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRule {
    /// The column name in the data and the field name in requests.
    pub name: String,
    /// How its values are read and served.
    pub kind: SpecKind,
    /// The smallest value requests may send (numeric kinds; with `max`). Absent: the training
    /// range widened by its own span on both sides.
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest value requests may send (numeric kinds; with `min`).
    #[serde(default)]
    pub max: Option<f64>,
    /// Training values below this are raised to it (numeric kinds).
    #[serde(default)]
    pub clip_min: Option<f64>,
    /// Training values above this are lowered to it (numeric kinds).
    #[serde(default)]
    pub clip_max: Option<f64>,
    /// How categories are normalised, in training data and in requests (categorical only).
    #[serde(default)]
    pub case: Option<CaseRule>,
}

impl FeatureRule {
    /// A feature the spec does not declare: its kind inferred from the data, no range, no
    /// clipping, categories kept as written.
    pub fn inferred(name: &str) -> Self {
        FeatureRule {
            name: name.to_string(),
            kind: SpecKind::Auto,
            min: None,
            max: None,
            clip_min: None,
            clip_max: None,
            case: None,
        }
    }

    /// The declared request range, when the spec gives one.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.min.zip(self.max)
    }

    /// The case rule of a categorical feature (`keep` unless declared).
    pub fn case_rule(&self) -> CaseRule {
        self.case.unwrap_or_default()
    }

    /// `value` clipped to `clip_min..=clip_max`.
    pub fn clip(&self, value: f64) -> f64 {
        let value = self.clip_min.map_or(value, |lo| value.max(lo));
        self.clip_max.map_or(value, |hi| value.min(hi))
    }

    /// The first field that contradicts the kind or another field, with the reason.
    fn problem(&self) -> Option<(&'static str, String)> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return Some(("name", format!("must be 1-{MAX_NAME_LEN} bytes")));
        }
        let numeric_fields = [
            ("min", self.min),
            ("max", self.max),
            ("clip_min", self.clip_min),
            ("clip_max", self.clip_max),
        ];
        for (field, value) in numeric_fields {
            match value {
                Some(_) if !self.kind.is_numeric() => {
                    return Some((
                        field,
                        format!("applies only to numeric kinds, not {:?}", self.kind),
                    ));
                }
                Some(v) if !v.is_finite() => {
                    return Some((field, format!("must be finite, got {v}")));
                }
                _ => {}
            }
        }
        if self.case.is_some() && self.kind != SpecKind::Categorical {
            return Some((
                "case",
                format!("applies only to categorical features, not {:?}", self.kind),
            ));
        }
        match (self.min, self.max) {
            (Some(_), None) => return Some(("max", "is required with `min`".to_string())),
            (None, Some(_)) => return Some(("min", "is required with `max`".to_string())),
            (Some(lo), Some(hi)) if lo >= hi => {
                return Some(("max", format!("must be above `min` ({hi} <= {lo})")));
            }
            _ => {}
        }
        if let (Some(lo), Some(hi)) = (self.clip_min, self.clip_max)
            && lo > hi
        {
            return Some((
                "clip_max",
                format!("must not be below `clip_min` ({hi} < {lo})"),
            ));
        }
        None
    }
}

/// The quality gate a trained model must pass to be promoted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// Least hold-out F1 (0 to 1); the model must also reach the always-0 baseline's F1.
    pub f1_min: f64,
}

/// A validated model spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The 0/1 column to predict.
    pub target: String,
    /// The features, in model order.
    pub features: Vec<FeatureRule>,
    /// The promotion gate.
    pub gate: GateSpec,
}

/// The file as written, with the position of each feature kept for error messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    target: Spanned<String>,
    gate: Spanned<GateSpec>,
    features: Spanned<Vec<Spanned<FeatureRule>>>,
}

/// Just the features' names and positions: read loosely first, so a strict error inside a
/// feature can say which feature it is in.
#[derive(Deserialize)]
struct Outline {
    #[serde(default)]
    features: Vec<Spanned<toml::Table>>,
}

/// Changes to a spec asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct SpecOverrides {
    /// Another target column.
    pub target: Option<String>,
    /// These features, in this order: the spec's rule for a feature it declares, an inferred
    /// one ([`FeatureRule::inferred`]) for any other.
    pub features: Option<Vec<String>>,
    /// These features are numeric (their range and clipping kept, kind inferred as `numeric`).
    pub numeric: Vec<String>,
    /// These features are categorical (their range and clipping dropped).
    pub categorical: Vec<String>,
    /// Another gate threshold.
    pub gate_f1: Option<f64>,
}

impl ModelSpec {
    /// The churn lab's spec ([`CHURN_SPEC`]).
    pub fn churn() -> Self {
        ModelSpec::parse(
            CHURN_SPEC,
            "the built-in churn spec (train/specs/churn.toml)",
        )
        .expect("the committed churn spec is valid")
    }

    /// Reads and validates a spec file, at most [`MAX_SPEC_BYTES`].
    pub fn read(path: &Path) -> Result<Self, SpecError> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| SpecError(format!("spec {origin}: cannot read: {e}")))?;
        let mut bytes = Vec::new();
        file.take(MAX_SPEC_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SpecError(format!("spec {origin}: cannot read: {e}")))?;
        if bytes.len() as u64 > MAX_SPEC_BYTES {
            return Err(SpecError(format!(
                "spec {origin}: larger than {MAX_SPEC_BYTES} bytes; a spec is a few hundred bytes per feature"
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| SpecError(format!("spec {origin}: not UTF-8: {e}")))?;
        ModelSpec::parse(&text, &origin)
    }

    /// Parses and validates spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SpecError> {
        let at = |span: Range<usize>| {
            let (line, column) = line_column(text, span.start);
            format!("spec {origin}:{line}:{column}")
        };
        let file: SpecFile = toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            let Some(span) = e.span() else {
                return SpecError(format!("spec {origin}: {message}"));
            };
            let outline: Option<Outline> = toml::from_str(text).ok();
            let feature = outline.and_then(|o| {
                o.features.into_iter().find_map(|f| {
                    let inside = f.span().start <= span.start && span.start < f.span().end;
                    inside.then(|| match f.get_ref().get("name").and_then(|n| n.as_str()) {
                        Some(name) => format!("feature `{name}`: "),
                        None => "a feature without a name: ".to_string(),
                    })
                })
            });
            SpecError(format!(
                "{}: {}{message}",
                at(span),
                feature.unwrap_or_default()
            ))
        })?;

        let target_span = file.target.span();
        let target = file.target.into_inner();
        if target.trim().is_empty() || target.len() > MAX_NAME_LEN {
            return Err(SpecError(format!(
                "{}: field `target`: must be 1-{MAX_NAME_LEN} bytes",
                at(target_span)
            )));
        }
        let gate_span = file.gate.span();
        let gate = file.gate.into_inner();
        if !(0.0..=1.0).contains(&gate.f1_min) {
            return Err(SpecError(format!(
                "{}: gate: field `f1_min`: must be from 0 to 1, got {}",
                at(gate_span),
                gate.f1_min
            )));
        }
        let features_span = file.features.span();
        let spanned = file.features.into_inner();
        if spanned.is_empty() || spanned.len() > MAX_FEATURES {
            return Err(SpecError(format!(
                "{}: field `features`: must declare 1-{MAX_FEATURES} features, found {}",
                at(features_span),
                spanned.len()
            )));
        }
        let mut features: Vec<FeatureRule> = Vec::with_capacity(spanned.len());
        for feature in spanned {
            let span = feature.span();
            let feature = feature.into_inner();
            let fault = |field: &str, problem: String| {
                SpecError(format!(
                    "{}: feature `{}`: field `{field}`: {problem}",
                    at(span.clone()),
                    feature.name
                ))
            };
            if let Some((field, problem)) = feature.problem() {
                return Err(fault(field, problem));
            }
            if features.iter().any(|f| f.name == feature.name) {
                return Err(fault("name", "is declared twice".to_string()));
            }
            if feature.name == target {
                return Err(fault("name", "is the target column".to_string()));
            }
            features.push(feature);
        }
        Ok(ModelSpec {
            target,
            features,
            gate,
        })
    }

    /// The spec with the command line's changes applied, checked again.
    pub fn with_overrides(mut self, overrides: &SpecOverrides) -> Result<Self, SpecError> {
        if let Some(target) = &overrides.target {
            self.target = target.clone();
        }
        if let Some(names) = &overrides.features {
            let mut chosen: Vec<FeatureRule> = Vec::with_capacity(names.len());
            for name in names {
                if chosen.iter().any(|f| f.name == *name) {
                    return Err(SpecError(format!("--features: `{name}` is named twice")));
                }
                chosen.push(match self.feature(name) {
                    Some(rule) => rule.clone(),
                    None => FeatureRule::inferred(name),
                });
            }
            self.features = chosen;
        }
        for (flag, names) in [
            ("--numeric", &overrides.numeric),
            ("--categorical", &overrides.categorical),
        ] {
            if let Some(name) = names.iter().find(|n| self.feature(n).is_none()) {
                return Err(SpecError(format!(
                    "{flag}: `{name}` is not one of the features"
                )));
            }
        }
        for feature in &mut self.features {
            if overrides.numeric.contains(&feature.name) && !feature.kind.is_numeric() {
                feature.kind = SpecKind::Numeric;
                feature.case = None;
            }
            if overrides.categorical.contains(&feature.name) {
                *feature = FeatureRule {
                    kind: SpecKind::Categorical,
                    case: feature.case,
                    ..FeatureRule::inferred(&feature.name)
                };
            }
        }
        if let Some(f1_min) = overrides.gate_f1 {
            self.gate.f1_min = f1_min;
        }
        if self.features.is_empty() {
            return Err(SpecError("--features: no feature named".to_string()));
        }
        for feature in &self.features {
            if let Some((field, problem)) = feature.problem() {
                return Err(SpecError(format!(
                    "feature `{}`: field `{field}`: {problem}",
                    feature.name
                )));
            }
            if feature.name == self.target {
                return Err(SpecError(format!(
                    "feature `{}` is the target column",
                    feature.name
                )));
            }
        }
        Ok(self)
    }

    /// The rule for feature `name`, if the spec declares it.
    pub fn feature(&self, name: &str) -> Option<&FeatureRule> {
        self.features.iter().find(|f| f.name == name)
    }

    /// Feature names in model order.
    pub fn names(&self) -> Vec<&str> {
        self.features.iter().map(|f| f.name.as_str()).collect()
    }

    /// The kinds reading must force: numeric kinds numeric (a non-number is an error naming
    /// column and row), categorical ones categorical, `auto` ones inferred.
    pub fn kind_overrides(&self) -> KindOverrides {
        let named = |keep: fn(SpecKind) -> bool| {
            self.features
                .iter()
                .filter(|f| keep(f.kind))
                .map(|f| f.name.clone())
                .collect()
        };
        KindOverrides {
            numeric: named(SpecKind::is_numeric),
            categorical: named(|k| k == SpecKind::Categorical),
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
