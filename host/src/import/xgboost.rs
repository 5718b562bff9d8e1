//! XGBoost's JSON model (`Booster.save_model("model.json")`, `XGBClassifier().save_model(...)`),
//! as XGBoost 2.x and 3.x write it: `binary:logistic` with the `gbtree` booster.
//!
//! XGBoost's numbers: inputs are float32, a split sends `x` left when `x < threshold` (both
//! float32) and a missing value (NaN) to the node's default child; the margin starts at
//! `base_score` turned into margin space (`-ln(1/p - 1)` in float32, as its logistic
//! objective's `ProbToMargin`) and adds each tree's leaf in float32, in tree order; the
//! probability is the sigmoid of the margin. Leaf values are the leaves' `split_conditions`.
//! A model early stopping left a `best_iteration` in scores with the rounds up to it, as
//! `XGBClassifier.predict_proba` does.

use serde::Deserialize;

use super::{Format, ImportError, Imported, RawNode, TreeBuilder, feature_names};
use crate::artifact::trees::TreeModel;
use modelhost_abi::trees::{CMP_F32_LT, DEFAULT_LEFT, FLAG_F32_SUM, FLAG_SIGMOID, MISSING_NAN};

const FORMAT: Format = Format::Xgboost;

#[derive(Deserialize)]
struct Document {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    /// Strings XGBoost keeps with the model; `best_iteration` (early stopping) among them.
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: Booster,
    learner_model_param: LearnerParam,
    objective: Objective,
}

#[derive(Deserialize)]
struct LearnerParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct Objective {
    name: String,
}

#[derive(Deserialize)]
struct Booster {
    name: String,
    #[serde(default)]
    model: Option<GbtreeModel>,
}

#[derive(Deserialize)]
struct GbtreeModel {
    trees: Vec<Tree>,
    /// Where each boosting round's trees start in `trees` (one past the last at the end).
    #[serde(default)]
    iteration_indptr: Vec<usize>,
}

#[derive(Deserialize)]
struct Tree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<Flag>,
    #[serde(default)]
    split_type: Vec<i64>,
}

/// `default_left` is 0/1 in XGBoost 2.x and later, `true`/`false` before.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum Flag {
    Int(i64),
    Bool(bool),
}

impl Flag {
    fn set(self) -> bool {
        matches!(self, Flag::Int(1) | Flag::Bool(true))
    }
}

/// A count written as a decimal string, as XGBoost writes its parameters.
fn count(field: &str, text: &str) -> Result<usize, ImportError> {
    text.trim().parse().map_err(|_| {
        FORMAT.invalid(format!(
            "learner_model_param.{field} `{text}` is not a count"
        ))
    })
}

/// `base_score`, `"5E-1"` (2.x) or `"[5E-1]"` (3.x, one value per target).
fn base_score(text: &str) -> Result<f32, ImportError> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let values: Vec<&str> = inner.split(',').map(str::trim).collect();
    let [value] = values.as_slice() else {
        return Err(FORMAT.unsupported(format!(
            "base_score `{text}` with more than one value (a multi-target model)"
        )));
    };
    let score: f32 = value
        .parse()
        .map_err(|_| FORMAT.invalid(format!("base_score `{text}` is not a number")))?;
    if !(score > 0.0 && score < 1.0) {
        return Err(FORMAT.invalid(format!(
            "base_score {score} is not a probability strictly between 0 and 1"
        )));
    }
    Ok(score)
}

/// Parses an XGBoost JSON model.
pub fn parse(bytes: &[u8]) -> Result<Imported, ImportError> {
    let document: Document =
        serde_json::from_slice(bytes).map_err(|e| FORMAT.invalid(e.to_string()))?;
    let learner = document.learner;
    if learner.objective.name != "binary:logistic" {
        return Err(FORMAT.unsupported(format!(
            "objective `{}` (binary:logistic is)",
            learner.objective.name
        )));
    }
    let param = &learner.learner_model_param;
    for (field, value) in [
        ("num_class", &param.num_class),
        ("num_target", &param.num_target),
    ] {
        if let Some(value) = value
            && count(field, value)? > 1
        {
            return Err(FORMAT.unsupported(format!("{field} {value} (one binary target is)")));
        }
    }
    if learner.gradient_booster.name != "gbtree" {
        return Err(FORMAT.unsupported(format!(
            "booster `{}` (gbtree is)",
            learner.gradient_booster.name
        )));
    }
    if let Some(kind) = learner
        .feature_types
        .iter()
        .find(|t| !matches!(t.as_str(), "float" | "q" | "int" | "i"))
    {
        return Err(FORMAT.unsupported(format!("feature type `{kind}` (numeric features are)")));
    }
    let n_features = count("num_feature", &param.num_feature)?;
    let probability = base_score(&param.base_score)?;
    let base = -(1.0f32 / probability - 1.0f32).ln();
    let model = learner
        .gradient_booster
        .model
        .ok_or_else(|| FORMAT.invalid("gradient_booster has no model"))?;
    let used = rounds_used(&learner.attributes, &model)?;
    let mut builder = TreeBuilder::new(FORMAT, n_features, used)?;
    let mut trees = Vec::with_capacity(used);
    for (index, tree) in model.trees.iter().take(used).enumerate() {
        trees.push(builder.finish(index, &raw_nodes(index, tree)?, 0)?);
    }
    let names = feature_names(FORMAT, learner.feature_names, n_features, |i| {
        format!("f{i}")
    })?;
    Ok(Imported {
        format: FORMAT,
        model: TreeModel {
            n_features: n_features as u32,
            base: f64::from(base),
            scale: 1.0,
            flags: FLAG_F32_SUM | FLAG_SIGMOID,
            trees,
        },
        feature_names: names,
    })
}

/// How many trees score: all of them, unless early stopping recorded a `best_iteration`, when
/// (as `XGBClassifier.predict_proba` does) those of the rounds up to and including it.
fn rounds_used(
    attributes: &std::collections::BTreeMap<String, serde_json::Value>,
    model: &GbtreeModel,
) -> Result<usize, ImportError> {
    let Some(best) = attributes.get("best_iteration") else {
        return Ok(model.trees.len());
    };
    let round = best
        .as_str()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            FORMAT.invalid(format!("attributes.best_iteration {best} is not a count"))
        })?;
    let end = round
        .checked_add(1)
        .and_then(|next| model.iteration_indptr.get(next))
        .copied()
        .ok_or_else(|| {
            FORMAT.invalid(format!(
                "attributes.best_iteration {round} is not a round of iteration_indptr ({} rounds)",
                model.iteration_indptr.len().saturating_sub(1)
            ))
        })?;
    if end > model.trees.len() {
        return Err(FORMAT.invalid(format!(
            "iteration_indptr ends round {round} at tree {end}, past the {} trees",
            model.trees.len()
        )));
    }
    Ok(end)
}

/// One tree's nodes in XGBoost's numbering.
fn raw_nodes(index: usize, tree: &Tree) -> Result<Vec<RawNode>, ImportError> {
    let n = tree.left_children.len();
    for (field, len) in [
        ("right_children", tree.right_children.len()),
        ("split_indices", tree.split_indices.len()),
        ("split_conditions", tree.split_conditions.len()),
        ("default_left", tree.default_left.len()),
    ] {
        if len != n {
            return Err(FORMAT.invalid(format!(
                "tree {index}: {field} has {len} entries, left_children {n}"
            )));
        }
    }
    if n == 0 {
        return Err(FORMAT.invalid(format!("tree {index} has no nodes")));
    }
    let mut nodes = Vec::with_capacity(n);
    for node in 0..n {
        if tree.split_type.get(node).is_some_and(|t| *t != 0) {
            return Err(ImportError::Node {
                format: FORMAT,
                tree: index,
                node,
                problem: "a categorical split is not supported (numeric splits are)".into(),
            });
        }
        let (left, right) = (tree.left_children[node], tree.right_children[node]);
        let value = tree.split_conditions[node];
        nodes.push(if left == -1 && right == -1 {
            RawNode::Leaf {
                value: f64::from(value as f32),
            }
        } else {
            let threshold = value as f32;
            RawNode::Split {
                feature: tree.split_indices[node],
                threshold: if threshold.is_finite() {
                    f64::from(threshold)
                } else {
                    f64::INFINITY
                },
                left,
                right,
                decision: CMP_F32_LT
                    | MISSING_NAN
                    | if tree.default_left[node].set() {
                        DEFAULT_LEFT
                    } else {
                        0
                    },
            }
        });
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_score_reads_both_spellings() {
        assert_eq!(base_score("5E-1"), Ok(0.5));
        assert_eq!(base_score("[4.24E-1]"), Ok(0.424));
        assert!(base_score("[1E-1,2E-1]").is_err());
        assert!(base_score("1.5").is_err());
        assert!(base_score("x").is_err());
    }
}
