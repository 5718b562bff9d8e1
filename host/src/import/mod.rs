//! Importers: a model file exported by a training framework → a [`TreeModel`] and the schema
//! the artifact serves, refused with a named reason when it is anything the kernel would not
//! score exactly as the framework does.
//!
//! Formats are told from the content ([`detect`]); a new front end (ONNX, say) is a variant of
//! [`Format`], a parser module and an arm in [`parse`]. A model file is untrusted input: the
//! file size, trees, nodes and depth are capped, and every tree is walked once from its root
//! ([`TreeBuilder::finish`]) so that cycles, shared or dangling children, features past the
//! schema and non-finite thresholds or leaves are refused naming the tree and the node — the
//! kernel never sees them (and checks again anyway).

pub mod lightgbm;
pub mod xgboost;

use std::fmt;

use modelhost_abi::trees::{EncodedTree, LEAF, Node};

use crate::artifact::trees::TreeModel;

/// Largest model file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Most trees in one model.
pub const MAX_TREES: usize = 10_000;
/// Most nodes in one model, all trees together (24 bytes each in the artifact).
pub const MAX_NODES: usize = 1_000_000;
/// Deepest path from a root to a leaf.
pub const MAX_DEPTH: usize = 128;
/// Most features in one model.
pub const MAX_FEATURES: usize = 10_000;

/// A model file format `import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// XGBoost's JSON model (`save_model("model.json")`).
    Xgboost,
    /// LightGBM's text model (`booster_.save_model("model.txt")`).
    Lightgbm,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Xgboost => "XGBoost",
            Format::Lightgbm => "LightGBM",
        })
    }
}

impl Format {
    /// The file is not a valid model of this format: `problem` says where.
    pub(crate) fn invalid(self, problem: impl Into<String>) -> ImportError {
        ImportError::Invalid {
            format: self,
            problem: problem.into(),
        }
    }

    /// A valid model of this format that the tree kernel would not score as the framework does.
    pub(crate) fn unsupported(self, what: impl Into<String>) -> ImportError {
        ImportError::Unsupported {
            format: self,
            what: what.into(),
        }
    }

    /// The name `--format` takes and reports carry.
    pub fn name(self) -> &'static str {
        match self {
            Format::Xgboost => "xgboost",
            Format::Lightgbm => "lightgbm",
        }
    }
}

/// Why a model file cannot be imported. Messages name the part at fault; the command adds the
/// file's path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error(
        "not a model format modelhost imports ({0}); it reads XGBoost JSON models \
         (save_model(\"model.json\")) and LightGBM text models (booster_.save_model(\"model.txt\"))"
    )]
    UnknownFormat(String),
    #[error("{size} bytes, more than the {MAX_FILE_BYTES}-byte limit on a model file")]
    TooLarge { size: u64 },
    #[error("{format} model: {problem}")]
    Invalid { format: Format, problem: String },
    #[error("{format} model: {what} is not supported")]
    Unsupported { format: Format, what: String },
    #[error("{format} model: tree {tree}, node {node}: {problem}")]
    Node {
        format: Format,
        tree: usize,
        node: usize,
        problem: String,
    },
    #[error("{format} model: {what} {found}, more than the limit of {limit}")]
    Limit {
        format: Format,
        what: &'static str,
        found: usize,
        limit: usize,
    },
}

/// A parsed model: the trees in the kernel's terms and the names of its features, in column
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub format: Format,
    pub model: TreeModel,
    pub feature_names: Vec<String>,
}

/// The format `bytes` are in, told from the content.
pub fn detect(bytes: &[u8]) -> Result<Format, ImportError> {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') && contains(bytes, b"\"learner\"") {
        return Ok(Format::Xgboost);
    }
    if trimmed.starts_with("tree\n")
        || trimmed.starts_with("tree\r\n")
        || (text.contains("version=v") && contains(bytes, b"Tree=0"))
    {
        return Ok(Format::Lightgbm);
    }
    let what = if trimmed.starts_with('{') {
        "JSON without a \"learner\" object; an XGBoost model saved as UBJSON (.ubj) must be saved as JSON instead"
    } else if bytes.starts_with(b"\0asm") {
        "a wasm module; publish it with `modelhost publish`"
    } else if bytes.first() == Some(&0x08) {
        "it looks like an ONNX protobuf, which this version does not import"
    } else {
        "no XGBoost \"learner\" or LightGBM \"tree\" header"
    };
    Err(ImportError::UnknownFormat(what.to_string()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses `bytes` as `format` (or the detected format).
pub fn parse(bytes: &[u8], format: Option<Format>) -> Result<Imported, ImportError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let format = match format {
        Some(format) => format,
        None => detect(bytes)?,
    };
    let imported = match format {
        Format::Xgboost => xgboost::parse(bytes)?,
        Format::Lightgbm => lightgbm::parse(bytes)?,
    };
    let limit = |what, found, limit| {
        if found > limit {
            Err(ImportError::Limit {
                format,
                what,
                found,
                limit,
            })
        } else {
            Ok(())
        }
    };
    limit("nodes", imported.model.n_nodes(), MAX_NODES)?;
    if imported.model.trees.is_empty() {
        return Err(format.invalid("the model holds no trees"));
    }
    Ok(imported)
}

/// A tree as the framework numbers its nodes: a split or a leaf at each index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawNode {
    Split {
        feature: i64,
        threshold: f64,
        left: i64,
        right: i64,
        decision: u32,
    },
    Leaf {
        value: f64,
    },
}

/// A node still to visit: its framework index, its parent's new index and side (`true` for
/// left), and its depth.
type Visit = (usize, Option<(usize, bool)>, usize);

/// Checks and renumbers the trees of one model.
pub struct TreeBuilder {
    pub format: Format,
    pub n_features: usize,
    nodes_so_far: usize,
}

impl TreeBuilder {
    /// A builder for a model of `n_features` features; refuses more trees than [`MAX_TREES`].
    pub fn new(format: Format, n_features: usize, n_trees: usize) -> Result<Self, ImportError> {
        for (what, found, limit) in [
            ("features", n_features, MAX_FEATURES),
            ("trees", n_trees, MAX_TREES),
        ] {
            if found > limit {
                return Err(ImportError::Limit {
                    format,
                    what,
                    found,
                    limit,
                });
            }
        }
        Ok(TreeBuilder {
            format,
            n_features,
            nodes_so_far: 0,
        })
    }

    fn node_error(&self, tree: usize, node: usize, problem: String) -> ImportError {
        ImportError::Node {
            format: self.format,
            tree,
            node,
            problem,
        }
    }

    /// Walks tree `tree` from `root`, depth first, and renumbers its nodes so that every child
    /// follows its parent (the kernel's invariant). A node reached twice (a cycle, or a child
    /// shared by two parents), a child index outside the tree, a feature outside the schema, a
    /// non-finite threshold or leaf, or a path deeper than [`MAX_DEPTH`] is refused, naming
    /// the node by the framework's own index. Nodes not reached from the root are dropped.
    pub fn finish(
        &mut self,
        tree: usize,
        nodes: &[RawNode],
        root: usize,
    ) -> Result<EncodedTree, ImportError> {
        if nodes.len() > MAX_NODES - self.nodes_so_far.min(MAX_NODES) {
            return Err(ImportError::Limit {
                format: self.format,
                what: "nodes",
                found: self.nodes_so_far + nodes.len(),
                limit: MAX_NODES,
            });
        }
        if root >= nodes.len() {
            return Err(self.node_error(tree, root, format!("the tree has {} nodes", nodes.len())));
        }
        let mut seen = vec![false; nodes.len()];
        let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
        let mut stack: Vec<Visit> = vec![(root, None, 0)];
        while let Some((old, parent, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(self.node_error(
                    tree,
                    old,
                    format!("depth {depth}, deeper than the limit of {MAX_DEPTH}"),
                ));
            }
            if std::mem::replace(&mut seen[old], true) {
                return Err(self.node_error(
                    tree,
                    old,
                    "reached twice from the root (a cycle, or a child of two parents)".into(),
                ));
            }
            let new = out.len();
            if let Some((parent, left)) = parent {
                if left {
                    out[parent].left = new as u32;
                } else {
                    out[parent].right = new as u32;
                }
            }
            match nodes[old] {
                RawNode::Leaf { value } => {
                    if !value.is_finite() {
                        return Err(self.node_error(tree, old, format!("leaf value {value}")));
                    }
                    out.push(Node {
                        feature: LEAF,
                        left: 0,
                        right: 0,
                        decision: 0,
                        value,
                    });
                }
                RawNode::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    decision,
                } => {
                    if feature < 0 || feature as u64 >= self.n_features as u64 {
                        return Err(self.node_error(
                            tree,
                            old,
                            format!(
                                "splits on feature {feature}, but the model has {} features",
                                self.n_features
                            ),
                        ));
                    }
                    if !threshold.is_finite() {
                        return Err(self.node_error(tree, old, format!("threshold {threshold}")));
                    }
                    let child = |side: &str, index: i64| {
                        usize::try_from(index)
                            .ok()
                            .filter(|i| *i < nodes.len())
                            .ok_or_else(|| {
                                self.node_error(
                                    tree,
                                    old,
                                    format!(
                                        "{side} child {index} does not exist (the tree has {} nodes)",
                                        nodes.len()
                                    ),
                                )
                            })
                    };
                    let (left, right) = (child("left", left)?, child("right", right)?);
                    out.push(Node {
                        feature: feature as u32,
                        left: 0,
                        right: 0,
                        decision,
                        value: threshold,
                    });
                    // Right first, so the left child is numbered next.
                    stack.push((right, Some((new, false)), depth + 1));
                    stack.push((left, Some((new, true)), depth + 1));
                }
            }
        }
        self.nodes_so_far += out.len();
        Ok(EncodedTree { nodes: out })
    }
}

/// `name` as a schema feature name: trimmed; an empty name is refused.
pub fn feature_names(
    format: Format,
    names: Vec<String>,
    n_features: usize,
    default: impl Fn(usize) -> String,
) -> Result<Vec<String>, ImportError> {
    if names.is_empty() {
        return Ok((0..n_features).map(default).collect());
    }
    if names.len() != n_features {
        return Err(format.invalid(format!(
            "{} feature names for {n_features} features",
            names.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() || name.len() > 128 {
            return Err(format.invalid(format!("feature {i} has an empty or over-long name")));
        }
        if !seen.insert(name.as_str()) {
            return Err(format.invalid(format!("feature name `{name}` appears twice")));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(feature: i64, left: i64, right: i64) -> RawNode {
        RawNode::Split {
            feature,
            threshold: 1.0,
            left,
            right,
            decision: 0,
        }
    }

    const LEAF0: RawNode = RawNode::Leaf { value: 0.5 };

    fn finish(nodes: &[RawNode]) -> Result<EncodedTree, ImportError> {
        TreeBuilder::new(Format::Xgboost, 2, 1)
            .unwrap()
            .finish(3, nodes, 0)
    }

    #[test]
    fn nodes_are_renumbered_children_after_parents() {
        // Root 0 with children stored before it in the framework's numbering.
        let nodes = [LEAF0, split(1, 0, 3), LEAF0, RawNode::Leaf { value: -1.0 }];
        let tree = TreeBuilder::new(Format::Lightgbm, 2, 1)
            .unwrap()
            .finish(0, &nodes, 1)
            .unwrap();
        assert_eq!(tree.nodes.len(), 3);
        assert_eq!((tree.nodes[0].left, tree.nodes[0].right), (1, 2));
        assert_eq!(tree.nodes[2].value, -1.0);
    }

    #[test]
    fn bad_trees_are_refused_naming_tree_and_node() {
        let message = |nodes: &[RawNode]| finish(nodes).unwrap_err().to_string();
        assert!(message(&[split(0, 0, 1), LEAF0]).contains("tree 3, node 0: reached twice"));
        assert!(message(&[split(0, 1, 1), LEAF0]).contains("node 1: reached twice"));
        assert!(message(&[split(0, 1, 7), LEAF0]).contains("node 0: right child 7 does not exist"));
        assert!(message(&[split(0, -1, 1), LEAF0]).contains("left child -1"));
        assert!(message(&[split(2, 1, 2), LEAF0, LEAF0]).contains("splits on feature 2"));
        let nan = RawNode::Split {
            feature: 0,
            threshold: f64::NAN,
            left: 1,
            right: 2,
            decision: 0,
        };
        assert!(message(&[nan, LEAF0, LEAF0]).contains("node 0: threshold NaN"));
        let inf = RawNode::Leaf {
            value: f64::INFINITY,
        };
        assert!(message(&[split(0, 1, 2), LEAF0, inf]).contains("node 2: leaf value inf"));
        // A chain deeper than the limit: each split's left child is the next split.
        let mut long = Vec::new();
        for i in 0..(MAX_DEPTH as i64 + 2) {
            long.push(split(0, i + 1, (MAX_DEPTH as i64 + 3) + i));
        }
        long.push(LEAF0);
        long.extend(std::iter::repeat_n(LEAF0, MAX_DEPTH + 2));
        assert!(
            message(&long).contains("deeper than the limit"),
            "{}",
            message(&long)
        );
    }

    #[test]
    fn formats_are_told_from_the_content() {
        assert_eq!(detect(br#" {"learner": {}}"#), Ok(Format::Xgboost));
        assert_eq!(detect(b"tree\nversion=v4\n"), Ok(Format::Lightgbm));
        for (bytes, says) in [
            (&b"{\"a\": 1}"[..], "without a \"learner\""),
            (b"\0asm\x01\0\0\0", "modelhost publish"),
            (b"\x08\x07\x12", "ONNX"),
            (b"a,b\n1,2\n", "no XGBoost"),
        ] {
            assert!(detect(bytes).unwrap_err().to_string().contains(says));
        }
    }
}
