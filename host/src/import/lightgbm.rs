//! LightGBM's text model (`LGBMClassifier().booster_.save_model("model.txt")`,
//! `Booster.save_model`), objective `binary`.
//!
//! LightGBM's numbers: inputs are float64; a numerical split reads its `decision_type` bits
//! (1 categorical, 2 default left, bits 2–3 the missing type: None, Zero or NaN) and sends `x`
//! left when `x <= threshold`; NaN is read as 0 unless the missing type is NaN, and a missing
//! value (0 for Zero, NaN for NaN) goes to the default child. The score is the float64 sum of
//! the trees' leaves (the average of the labels is already in the first tree), and the
//! probability `1 / (1 + exp(-sigmoid · score))` with the objective's `sigmoid:` parameter.
//! Categorical splits and linear trees are refused, naming the tree and the node.

use std::collections::HashMap;

use super::{Format, ImportError, Imported, RawNode, TreeBuilder, feature_names};
use crate::artifact::trees::TreeModel;
use modelhost_abi::trees::{
    CMP_F64_LE, DEFAULT_LEFT, FLAG_SIGMOID, MISSING_LGBM_NAN, MISSING_NONE, MISSING_ZERO,
};

const FORMAT: Format = Format::Lightgbm;

/// `key=value` lines up to the first blank line after them, or the first `Tree=`.
type Fields<'a> = HashMap<&'a str, &'a str>;

fn field<'a>(fields: &Fields<'a>, key: &str, part: &str) -> Result<&'a str, ImportError> {
    fields
        .get(key)
        .copied()
        .ok_or_else(|| FORMAT.invalid(format!("{part} has no `{key}=` line")))
}

fn list<T: std::str::FromStr>(
    fields: &Fields<'_>,
    key: &str,
    part: &str,
    len: usize,
) -> Result<Vec<T>, ImportError> {
    let values = field(fields, key, part)?
        .split_whitespace()
        .enumerate()
        .map(|(i, text)| {
            text.parse().map_err(|_| {
                FORMAT.invalid(format!("{part}: {key} entry {i} `{text}` is not a number"))
            })
        })
        .collect::<Result<Vec<T>, _>>()?;
    if values.len() != len {
        return Err(FORMAT.invalid(format!(
            "{part}: {key} has {} entries, expected {len}",
            values.len()
        )));
    }
    Ok(values)
}

/// Parses a LightGBM text model.
pub fn parse(bytes: &[u8]) -> Result<Imported, ImportError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| FORMAT.invalid(format!("not UTF-8 text: {e}")))?;
    let body = text.split("end of trees").next().unwrap_or_default();
    let mut sections = body.split("\nTree=");
    let header = fields_of(sections.next().unwrap_or_default());
    let tree_texts: Vec<&str> = sections.collect();

    let part = "the header";
    let objective = field(&header, "objective", part)?;
    let mut words = objective.split_whitespace();
    if words.next() != Some("binary") {
        return Err(FORMAT.unsupported(format!("objective `{objective}` (binary is)")));
    }
    let mut sigmoid = 1.0;
    for word in words {
        if let Some(value) = word.strip_prefix("sigmoid:") {
            sigmoid = value
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| FORMAT.invalid(format!("objective's sigmoid `{value}`")))?;
        }
    }
    for (key, wanted) in [("num_class", "1"), ("num_tree_per_iteration", "1")] {
        if let Some(value) = header.get(key)
            && value.trim() != wanted
        {
            return Err(FORMAT.unsupported(format!("{key}={value} (one binary target is)")));
        }
    }
    if header.contains_key("average_output") {
        return Err(FORMAT.unsupported("average_output (a random forest)"));
    }
    let max_feature_idx: usize = field(&header, "max_feature_idx", part)?
        .trim()
        .parse()
        .map_err(|_| FORMAT.invalid("max_feature_idx is not a count"))?;
    let n_features = max_feature_idx
        .checked_add(1)
        .ok_or_else(|| FORMAT.invalid("max_feature_idx is too large"))?;
    let names = header
        .get("feature_names")
        .map(|names| names.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    // Check the feature count before anything is sized by it.
    let mut builder = TreeBuilder::new(FORMAT, n_features, tree_texts.len())?;
    let names = feature_names(FORMAT, names, n_features, |i| format!("Column_{i}"))?;

    let mut trees = Vec::with_capacity(tree_texts.len());
    for (index, tree_text) in tree_texts.iter().enumerate() {
        let (nodes, root) = raw_nodes(index, tree_text)?;
        trees.push(builder.finish(index, &nodes, root)?);
    }
    Ok(Imported {
        format: FORMAT,
        model: TreeModel {
            n_features: n_features as u32,
            base: 0.0,
            scale: sigmoid,
            flags: FLAG_SIGMOID,
            trees,
        },
        feature_names: names,
    })
}

fn fields_of(text: &str) -> Fields<'_> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim_end_matches('\r')))
        .collect()
}

/// One tree's nodes: internal nodes first (LightGBM's indices), then leaves (`~child`).
/// Returns the nodes and the root's index.
fn raw_nodes(index: usize, text: &str) -> Result<(Vec<RawNode>, usize), ImportError> {
    let part = format!("tree {index}");
    let fields = fields_of(text);
    let num_leaves: usize = field(&fields, "num_leaves", &part)?
        .trim()
        .parse()
        .map_err(|_| FORMAT.invalid(format!("{part}: num_leaves is not a count")))?;
    if num_leaves == 0 || num_leaves > super::MAX_NODES {
        return Err(FORMAT.invalid(format!("{part}: num_leaves {num_leaves}")));
    }
    if fields.get("is_linear").is_some_and(|v| v.trim() != "0") {
        return Err(FORMAT.unsupported(format!("{part}: a linear tree")));
    }
    let leaves: Vec<f64> = list(&fields, "leaf_value", &part, num_leaves)?;
    if num_leaves == 1 {
        return Ok((vec![RawNode::Leaf { value: leaves[0] }], 0));
    }
    let n_split = num_leaves - 1;
    let features: Vec<i64> = list(&fields, "split_feature", &part, n_split)?;
    let thresholds: Vec<f64> = list(&fields, "threshold", &part, n_split)?;
    let decisions: Vec<u32> = list(&fields, "decision_type", &part, n_split)?;
    let lefts: Vec<i64> = list(&fields, "left_child", &part, n_split)?;
    let rights: Vec<i64> = list(&fields, "right_child", &part, n_split)?;
    // A child `c >= 0` is internal node `c`; `c < 0` is leaf `-c - 1`, stored after the splits.
    let child = |c: i64| {
        if c >= 0 {
            c
        } else {
            (n_split as i64).saturating_add(-(c + 1))
        }
    };
    let mut nodes = Vec::with_capacity(n_split + num_leaves);
    for node in 0..n_split {
        let bits = decisions[node];
        let node_error = |problem: String| ImportError::Node {
            format: FORMAT,
            tree: index,
            node,
            problem,
        };
        if bits & 1 != 0 {
            return Err(node_error(
                "a categorical split is not supported (numerical splits are)".into(),
            ));
        }
        let missing = match (bits >> 2) & 3 {
            0 => MISSING_NONE,
            1 => MISSING_ZERO,
            2 => MISSING_LGBM_NAN,
            other => {
                return Err(node_error(format!(
                    "decision_type {bits}: missing type {other}"
                )));
            }
        };
        if bits > 15 {
            return Err(node_error(format!("decision_type {bits}")));
        }
        nodes.push(RawNode::Split {
            feature: features[node],
            threshold: thresholds[node],
            left: child(lefts[node]),
            right: child(rights[node]),
            decision: CMP_F64_LE | missing | if bits & 2 != 0 { DEFAULT_LEFT } else { 0 },
        });
    }
    nodes.extend(leaves.into_iter().map(|value| RawNode::Leaf { value }));
    Ok((nodes, 0))
}
