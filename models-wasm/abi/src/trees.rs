//! The tree-ensemble parameter block: trees, nodes and the `info` document of a gradient-boosted
//! tree model (XGBoost, LightGBM), read by the tree kernel (`models-wasm/trees`).
//!
//! A tree model can hold thousands of nodes, so its block has no fixed size. The kernel's
//! template carries only a small [`Locator`] (magic, then the block's address and length in
//! linear memory, both zero in the template); the artifact builder appends the block as one
//! more active data segment past the template's memory, grows the declared memory to hold it,
//! and writes its address and length into the locator. The kernel trusts none of it: every
//! length, offset, node and child index is checked before it is used, and a block that fails a
//! check makes `predict` return [`status::BAD_PARAMS`](crate::status::BAD_PARAMS).
//!
//! Byte layout of the block (all integers and floats little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 16 | [`MAGIC`] |
//! | 16 | 4 | `n_features` (u32) |
//! | 20 | 4 | `n_trees` (u32) |
//! | 24 | 4 | `n_nodes`: nodes of all trees (u32) |
//! | 28 | 4 | `info_len` (u32) |
//! | 32 | 8 | `base`: the margin every row starts from (f64) |
//! | 40 | 8 | `scale`: the margin is multiplied by it before the sigmoid (f64) |
//! | 48 | 4 | `flags` (u32): bit 0 [`FLAG_F32_SUM`], bit 1 [`FLAG_SIGMOID`] |
//! | 52 | 4 | reserved, zero |
//! | 56 | 8·n_trees | per tree: `first` node (u32), `count` of nodes (u32) |
//! | … | 24·n_nodes | nodes, each [`NODE_SIZE`] bytes (below) |
//! | … | info_len | the `info` JSON document, UTF-8 |
//!
//! A node is `feature` (u32; [`LEAF`] for a leaf), `left` and `right` (u32, indices relative to
//! the tree's `first` node), `decision` (u32, below) and `value` (f64: the threshold, or the
//! leaf's value). A tree's root is its node 0, and a child's index is always greater than its
//! parent's, so a walk from the root ends after at most `count` steps whatever the block holds.
//!
//! `decision` bits: bit 0 [`DEFAULT_LEFT`]; bits 1–2 the comparison ([`CMP_F32_LT`]: `x < t`
//! in float32, as XGBoost compares; [`CMP_F64_LE`]: `x <= t` in float64, as LightGBM does);
//! bits 3–4 the missing-value track ([`MISSING_NAN`]: NaN goes to the default child, as
//! XGBoost; [`MISSING_NONE`], [`MISSING_ZERO`], [`MISSING_LGBM_NAN`]: LightGBM's
//! `missing_type` None, Zero and NaN).

/// Marks the start of a tree block.
pub const MAGIC: [u8; 16] = *b"modelhost-trees1";

/// Marks the locator in the template; appears exactly once in it.
pub const LOCATOR_MAGIC: [u8; 16] = *b"modelhost-locatr";

/// Size of the locator: magic, block address (u32), block length (u32), 8 reserved bytes.
pub const LOCATOR_SIZE: usize = 32;

/// Size of the block's header, before the tree table.
pub const HEADER_SIZE: usize = 56;

/// Size of one node.
pub const NODE_SIZE: usize = 24;

/// Size of one tree-table entry.
pub const TREE_SIZE: usize = 8;

/// `feature` of a leaf.
pub const LEAF: u32 = u32::MAX;

/// Leaf values are summed in float32 (XGBoost); otherwise in float64 (LightGBM).
pub const FLAG_F32_SUM: u32 = 1;
/// The probability is `sigmoid(scale · margin)`; without it the block is refused (ABI v1
/// models output probabilities).
pub const FLAG_SIGMOID: u32 = 2;

/// A row whose value is missing goes to the left child.
pub const DEFAULT_LEFT: u32 = 1;
/// `x < threshold`, both as float32.
pub const CMP_F32_LT: u32 = 0 << 1;
/// `x <= threshold` in float64.
pub const CMP_F64_LE: u32 = 1 << 1;
const CMP_MASK: u32 = 3 << 1;
/// NaN is missing and goes to the default child (XGBoost).
pub const MISSING_NAN: u32 = 0 << 3;
/// LightGBM `missing_type` None: NaN is read as 0, and compared.
pub const MISSING_NONE: u32 = 1 << 3;
/// LightGBM `missing_type` Zero: NaN is read as 0; 0 (|x| ≤ 1e-35) goes to the default child.
pub const MISSING_ZERO: u32 = 2 << 3;
/// LightGBM `missing_type` NaN: NaN goes to the default child.
pub const MISSING_LGBM_NAN: u32 = 3 << 3;
const MISSING_MASK: u32 = 3 << 3;
const DECISION_MASK: u32 = DEFAULT_LEFT | CMP_MASK | MISSING_MASK;

/// LightGBM's `kZeroThreshold`: values within it of zero are zero.
pub const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Why a block could not be read or walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeError {
    /// The block does not start with [`MAGIC`], or its flags are unknown.
    BadMagic,
    /// A length or offset points outside the block.
    Truncated,
    /// A tree's node range, a node's feature, child or decision is out of range.
    BadNode,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let chunk = bytes.get(at..at.checked_add(4)?)?;
    let mut raw = [0u8; 4];
    raw.copy_from_slice(chunk);
    Some(u32::from_le_bytes(raw))
}

fn f64_at(bytes: &[u8], at: usize) -> Option<f64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    let mut raw = [0u8; 8];
    raw.copy_from_slice(chunk);
    Some(f64::from_le_bytes(raw))
}

/// The block's address and length, as the locator in the template's data holds them.
pub fn read_locator(locator: &[u8]) -> Option<(u32, u32)> {
    if locator.get(..16)? != LOCATOR_MAGIC {
        return None;
    }
    Some((u32_at(locator, 16)?, u32_at(locator, 20)?))
}

/// A checked view of a tree block: the header and the table are validated by
/// [`TreeView::parse`]; nodes are checked as they are walked.
#[derive(Debug, Clone, Copy)]
pub struct TreeView<'a> {
    n_features: usize,
    n_trees: usize,
    base: f64,
    scale: f64,
    flags: u32,
    table: &'a [u8],
    nodes: &'a [u8],
    n_nodes: usize,
    info: &'a [u8],
}

/// One node, as read from the block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub left: u32,
    pub right: u32,
    pub decision: u32,
    pub value: f64,
}

impl<'a> TreeView<'a> {
    /// Checks the header, the sizes and the tree table.
    pub fn parse(block: &'a [u8]) -> Result<Self, TreeError> {
        if block.get(..16) != Some(&MAGIC[..]) {
            return Err(TreeError::BadMagic);
        }
        let field = |at| u32_at(block, at).map(|v| v as usize);
        let (Some(n_features), Some(n_trees), Some(n_nodes), Some(info_len)) =
            (field(16), field(20), field(24), field(28))
        else {
            return Err(TreeError::Truncated);
        };
        let (Some(base), Some(scale), Some(flags)) =
            (f64_at(block, 32), f64_at(block, 40), u32_at(block, 48))
        else {
            return Err(TreeError::Truncated);
        };
        if flags & !(FLAG_F32_SUM | FLAG_SIGMOID) != 0 || flags & FLAG_SIGMOID == 0 {
            return Err(TreeError::BadMagic);
        }
        if !base.is_finite() || !scale.is_finite() {
            return Err(TreeError::BadNode);
        }
        let table_end = n_trees
            .checked_mul(TREE_SIZE)
            .and_then(|n| n.checked_add(HEADER_SIZE))
            .ok_or(TreeError::Truncated)?;
        let nodes_end = n_nodes
            .checked_mul(NODE_SIZE)
            .and_then(|n| n.checked_add(table_end))
            .ok_or(TreeError::Truncated)?;
        let info_end = nodes_end
            .checked_add(info_len)
            .ok_or(TreeError::Truncated)?;
        if info_end > block.len() {
            return Err(TreeError::Truncated);
        }
        let view = TreeView {
            n_features,
            n_trees,
            base,
            scale,
            flags,
            table: &block[HEADER_SIZE..table_end],
            nodes: &block[table_end..nodes_end],
            n_nodes,
            info: &block[nodes_end..info_end],
        };
        for tree in 0..n_trees {
            view.tree(tree)?;
        }
        Ok(view)
    }

    /// Columns per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }

    /// Number of nodes, all trees together.
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// The margin every row starts from.
    pub fn base(&self) -> f64 {
        self.base
    }

    /// The factor applied to the margin before the sigmoid.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Whether leaf values are summed in float32.
    pub fn f32_sum(&self) -> bool {
        self.flags & FLAG_F32_SUM != 0
    }

    /// The info JSON document.
    pub fn info(&self) -> &'a [u8] {
        self.info
    }

    /// Tree `index`'s (first node, node count), checked against the node array.
    pub fn tree(&self, index: usize) -> Result<(usize, usize), TreeError> {
        let at = index.checked_mul(TREE_SIZE).ok_or(TreeError::Truncated)?;
        let first = u32_at(self.table, at).ok_or(TreeError::Truncated)? as usize;
        let count = u32_at(self.table, at + 4).ok_or(TreeError::Truncated)? as usize;
        match first.checked_add(count) {
            Some(end) if count > 0 && end <= self.n_nodes => Ok((first, count)),
            _ => Err(TreeError::BadNode),
        }
    }

    /// Node `index` of the whole node array.
    pub fn node(&self, index: usize) -> Result<Node, TreeError> {
        let at = index.checked_mul(NODE_SIZE).ok_or(TreeError::BadNode)?;
        let word = |k: usize| u32_at(self.nodes, at + 4 * k).ok_or(TreeError::BadNode);
        Ok(Node {
            feature: word(0)?,
            left: word(1)?,
            right: word(2)?,
            decision: word(3)?,
            value: f64_at(self.nodes, at + 16).ok_or(TreeError::BadNode)?,
        })
    }

    /// The value of the leaf that `row` reaches in tree `index`. Every step moves to a child
    /// with a greater index inside the tree, so the walk ends; any index or decision out of
    /// range is [`TreeError::BadNode`].
    pub fn leaf(&self, index: usize, row: &[f64]) -> Result<f64, TreeError> {
        let (first, count) = self.tree(index)?;
        let mut at = 0usize;
        loop {
            let node = self.node(first + at)?;
            if node.feature == LEAF {
                return Ok(node.value);
            }
            let x = *row.get(node.feature as usize).ok_or(TreeError::BadNode)?;
            let next = if go_left(node.decision, x, node.value)? {
                node.left
            } else {
                node.right
            } as usize;
            if next <= at || next >= count {
                return Err(TreeError::BadNode);
            }
            at = next;
        }
    }
}

/// Whether `x` goes left at a split on `threshold` with these `decision` bits.
pub fn go_left(decision: u32, x: f64, threshold: f64) -> Result<bool, TreeError> {
    if decision & !DECISION_MASK != 0 {
        return Err(TreeError::BadNode);
    }
    let default_left = decision & DEFAULT_LEFT != 0;
    let mut x = x;
    match decision & MISSING_MASK {
        MISSING_NAN | MISSING_LGBM_NAN if x.is_nan() => return Ok(default_left),
        MISSING_NONE if x.is_nan() => x = 0.0,
        MISSING_ZERO => {
            if x.is_nan() {
                x = 0.0;
            }
            if (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x) {
                return Ok(default_left);
            }
        }
        _ => {}
    }
    match decision & CMP_MASK {
        CMP_F32_LT => Ok((x as f32) < (threshold as f32)),
        CMP_F64_LE => Ok(x <= threshold),
        _ => Err(TreeError::BadNode),
    }
}

#[cfg(feature = "host")]
pub use encode::{EncodedTree, encode_trees};

#[cfg(feature = "host")]
mod encode {
    use super::*;
    use alloc::vec::Vec;

    /// One tree, nodes in an order where every child follows its parent (root first).
    #[derive(Debug, Clone, PartialEq)]
    pub struct EncodedTree {
        pub nodes: Vec<Node>,
    }

    /// Encodes a block. The caller has checked the trees (the importer refuses cycles,
    /// dangling children and non-finite values with a reason naming the tree and the node);
    /// the kernel checks them again as it walks.
    pub fn encode_trees(
        n_features: u32,
        base: f64,
        scale: f64,
        flags: u32,
        trees: &[EncodedTree],
        info_json: &[u8],
    ) -> Vec<u8> {
        let n_nodes: usize = trees.iter().map(|t| t.nodes.len()).sum();
        let mut block = Vec::with_capacity(
            HEADER_SIZE + TREE_SIZE * trees.len() + NODE_SIZE * n_nodes + info_json.len(),
        );
        block.extend_from_slice(&MAGIC);
        for word in [n_features, trees.len() as u32, n_nodes as u32] {
            block.extend_from_slice(&word.to_le_bytes());
        }
        block.extend_from_slice(&(info_json.len() as u32).to_le_bytes());
        block.extend_from_slice(&base.to_le_bytes());
        block.extend_from_slice(&scale.to_le_bytes());
        block.extend_from_slice(&flags.to_le_bytes());
        block.extend_from_slice(&0u32.to_le_bytes());
        let mut first = 0u32;
        for tree in trees {
            block.extend_from_slice(&first.to_le_bytes());
            block.extend_from_slice(&(tree.nodes.len() as u32).to_le_bytes());
            first += tree.nodes.len() as u32;
        }
        for node in trees.iter().flat_map(|t| &t.nodes) {
            for word in [node.feature, node.left, node.right, node.decision] {
                block.extend_from_slice(&word.to_le_bytes());
            }
            block.extend_from_slice(&node.value.to_le_bytes());
        }
        block.extend_from_slice(info_json);
        block
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use alloc::vec;

    fn split(feature: u32, threshold: f64, decision: u32) -> Node {
        Node {
            feature,
            left: 1,
            right: 2,
            decision,
            value: threshold,
        }
    }

    fn leaf(value: f64) -> Node {
        Node {
            feature: LEAF,
            left: 0,
            right: 0,
            decision: 0,
            value,
        }
    }

    fn block(nodes: alloc::vec::Vec<Node>) -> alloc::vec::Vec<u8> {
        encode_trees(1, 0.5, 1.0, FLAG_SIGMOID, &[EncodedTree { nodes }], b"{}")
    }

    #[test]
    fn a_stump_walks_and_round_trips() {
        let bytes = block(vec![split(0, 2.0, CMP_F32_LT), leaf(-1.0), leaf(1.0)]);
        let view = TreeView::parse(&bytes).unwrap();
        assert_eq!((view.n_trees(), view.n_nodes(), view.base()), (1, 3, 0.5));
        assert_eq!(view.info(), b"{}");
        assert_eq!(view.leaf(0, &[1.0]), Ok(-1.0));
        // float32 `<`: the threshold itself goes right.
        assert_eq!(view.leaf(0, &[2.0]), Ok(1.0));
        // NaN goes to the default child (right, as DEFAULT_LEFT is clear).
        assert_eq!(view.leaf(0, &[f64::NAN]), Ok(1.0));
    }

    #[test]
    fn lightgbm_tracks_follow_missing_type() {
        let le = CMP_F64_LE;
        // `<=`: the threshold itself goes left.
        assert_eq!(go_left(le | MISSING_NONE, 2.0, 2.0), Ok(true));
        // None: NaN is read as 0.
        assert_eq!(go_left(le | MISSING_NONE, f64::NAN, 1.0), Ok(true));
        assert_eq!(go_left(le | MISSING_NONE, f64::NAN, -1.0), Ok(false));
        // Zero: 0 and NaN go to the default child.
        assert_eq!(go_left(le | MISSING_ZERO, 0.0, -1.0), Ok(false));
        assert_eq!(
            go_left(le | MISSING_ZERO | DEFAULT_LEFT, f64::NAN, -1.0),
            Ok(true)
        );
        // NaN: NaN to the default child, 0 compared.
        assert_eq!(go_left(le | MISSING_LGBM_NAN, f64::NAN, -1.0), Ok(false));
        assert_eq!(go_left(le | MISSING_LGBM_NAN, 0.0, 1.0), Ok(true));
        assert_eq!(go_left(3 << 1, 0.0, 1.0), Err(TreeError::BadNode));
        assert_eq!(go_left(1 << 7, 0.0, 1.0), Err(TreeError::BadNode));
    }

    #[test]
    fn corrupt_blocks_are_errors_never_panics() {
        // A child pointing back at its parent, past the tree, or a feature past the row.
        let mut back = split(0, 2.0, 0);
        back.left = 0;
        for (nodes, x) in [
            (vec![back, leaf(0.0), leaf(1.0)], 1.0),
            (
                vec![
                    Node {
                        right: 9,
                        ..split(0, 2.0, 0)
                    },
                    leaf(0.0),
                    leaf(1.0),
                ],
                3.0,
            ),
            (vec![split(5, 2.0, 0), leaf(0.0), leaf(1.0)], 3.0),
        ] {
            let bytes = block(nodes);
            let view = TreeView::parse(&bytes).unwrap();
            assert_eq!(view.leaf(0, &[x]), Err(TreeError::BadNode));
        }
        let good = block(vec![split(0, 2.0, 0), leaf(-1.0), leaf(1.0)]);
        // Every truncation, and a node count larger than the block.
        for len in 0..good.len() {
            assert!(TreeView::parse(&good[..len]).is_err(), "{len}");
        }
        let mut lying = good.clone();
        lying[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(TreeView::parse(&lying).unwrap_err(), TreeError::Truncated);
        let mut no_sigmoid = good.clone();
        no_sigmoid[48..52].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            TreeView::parse(&no_sigmoid).unwrap_err(),
            TreeError::BadMagic
        );
    }
}
