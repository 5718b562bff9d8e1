//! The tree-ensemble artifact builder: trees + info document → a self-contained `model.wasm`.
//!
//! The tree kernel is compiled once into a template, committed as
//! `models-wasm/trees/template/modelhost_trees.wasm` (`models-wasm/build-template.sh --check`
//! proves it equals a fresh build). Its data holds a small locator and no model: a tree model
//! has no size bound a fixed block could meet. Building an artifact appends the tree block
//! (`modelhost_abi::trees`) as one more active data segment at the first page past the
//! template's memory, grows the declared memory (initial and, if declared, maximum) by the
//! block's pages, bumps the data count, and writes the block's address and length into the
//! locator. Every other section is copied byte for byte, so the same trees give the same
//! bytes. Golden probabilities come from the native build of the same kernel.

use modelhost_abi::info::{GoldenPair, ModelInfo};
use modelhost_abi::status;
use modelhost_abi::trees::{EncodedTree, LOCATOR_MAGIC, TreeView, encode_trees};
use wasm_encoder::{ConstExpr, DataCountSection, DataSection, MemorySection, MemoryType};
use wasmparser::{Parser, Payload};

use super::{ArtifactError, GoldenInput};
use crate::model::schema::prepare_golden;

/// The compiled tree kernel, with an empty locator.
pub const TREES_TEMPLATE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models-wasm/trees/template/modelhost_trees.wasm"
));

const PAGE: u64 = 65536;

/// A tree ensemble in the kernel's terms: what the importers produce.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeModel {
    pub n_features: u32,
    /// The margin every row starts from.
    pub base: f64,
    /// Applied to the margin before the sigmoid.
    pub scale: f64,
    /// `modelhost_abi::trees::FLAG_*`.
    pub flags: u32,
    pub trees: Vec<EncodedTree>,
}

impl TreeModel {
    /// Number of nodes, all trees together.
    pub fn n_nodes(&self) -> usize {
        self.trees.iter().map(|t| t.nodes.len()).sum()
    }

    /// Bytes of the block without an info document: the header, the tree table and the nodes.
    pub fn parameter_bytes(&self) -> usize {
        self.block(&[]).len()
    }

    /// The encoded block with `info_json`.
    pub fn block(&self, info_json: &[u8]) -> Vec<u8> {
        encode_trees(
            self.n_features,
            self.base,
            self.scale,
            self.flags,
            &self.trees,
            info_json,
        )
    }

    /// Scores `rows` (row-major; NaN is missing) with the native kernel: the reference the
    /// golden pairs and the tests use.
    pub fn score(&self, rows: &[f64]) -> Result<Vec<f64>, ArtifactError> {
        let block = self.block(b"{}");
        let view = TreeView::parse(&block)
            .map_err(|e| ArtifactError::Block(format!("tree block: {e:?}")))?;
        let n_cols = self.n_features as usize;
        let n_rows = rows.len().checked_div(n_cols).unwrap_or(1);
        let mut out = vec![0.0; n_rows];
        let code = modelhost_trees::predict_rows(&view, rows, n_cols, &mut out);
        if code != status::OK {
            return Err(ArtifactError::Block(status::describe(code).to_string()));
        }
        Ok(out)
    }
}

/// Builds a `model.wasm` from the tree template. `info.golden` is replaced by `golden_inputs`
/// scored by the native kernel; `info` must otherwise be complete and valid.
pub fn build_tree_artifact(
    info: &ModelInfo,
    model: &TreeModel,
    golden_inputs: &[GoldenInput],
) -> Result<Vec<u8>, ArtifactError> {
    if info.features.len() != model.n_features as usize {
        return Err(ArtifactError::FeatureCount {
            expected: info.features.len(),
            found: model.n_features as usize,
        });
    }
    let mut info = info.clone();
    info.golden = Vec::with_capacity(golden_inputs.len());
    for (i, input) in golden_inputs.iter().enumerate() {
        let row = prepare_golden(&info, input)
            .map_err(|problem| ArtifactError::Info(format!("golden input {i}: {problem}")))?;
        let probability = model.score(&row)?[0];
        info.golden.push(GoldenPair {
            input: input.clone(),
            probability,
        });
    }
    info.validate().map_err(|e| ArtifactError::Info(e.0))?;
    let info_json = serde_json::to_vec(&info).map_err(|e| ArtifactError::Info(e.to_string()))?;
    append_block(TREES_TEMPLATE, &model.block(&info_json))
}

/// `template` with `block` appended as an active data segment past its memory, the memory grown
/// to hold it, and the locator pointing at it.
pub fn append_block(template: &[u8], block: &[u8]) -> Result<Vec<u8>, ArtifactError> {
    let bad = |what: String| ArtifactError::Block(format!("tree template: {what}"));
    // First pass: the memory's initial size decides where the block goes.
    let mut initial = None;
    for payload in Parser::new(0).parse_all(template) {
        if let Payload::MemorySection(reader) = payload.map_err(|e| bad(e.to_string()))? {
            let memories: Vec<_> = reader
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            match memories.as_slice() {
                [memory] if !memory.memory64 && memory.page_size_log2.is_none() => {
                    initial = Some(*memory)
                }
                _ => return Err(bad("expected one 32-bit memory of 64 KiB pages".into())),
            }
        }
    }
    let memory = initial.ok_or_else(|| bad("no memory section".into()))?;
    let at = memory.initial * PAGE;
    let pages = (block.len() as u64).div_ceil(PAGE).max(1);
    let (Ok(at32), Ok(len32)) = (u32::try_from(at), u32::try_from(block.len())) else {
        return Err(bad("the block does not fit a 32-bit memory".into()));
    };

    let mut patched = template.to_vec();
    let locator = locator_offset(template)?;
    patched[locator + 16..locator + 20].copy_from_slice(&at32.to_le_bytes());
    patched[locator + 20..locator + 24].copy_from_slice(&len32.to_le_bytes());

    let mut module = wasm_encoder::Module::new();
    let mut saw_data = false;
    for payload in Parser::new(0).parse_all(&patched) {
        let payload = payload.map_err(|e| bad(e.to_string()))?;
        match &payload {
            Payload::MemorySection(_) => {
                let mut section = MemorySection::new();
                section.memory(MemoryType {
                    minimum: memory.initial + pages,
                    maximum: memory.maximum.map(|max| max + pages),
                    memory64: false,
                    shared: memory.shared,
                    page_size_log2: None,
                });
                module.section(&section);
            }
            Payload::DataCountSection { count, .. } => {
                module.section(&DataCountSection { count: count + 1 });
            }
            Payload::DataSection(reader) => {
                let mut section = DataSection::new();
                for data in reader.clone() {
                    let data = data.map_err(|e| bad(e.to_string()))?;
                    section.raw(&patched[data.range]);
                }
                let offset = ConstExpr::i32_const(at32 as i32);
                section.active(0, &offset, block.iter().copied());
                module.section(&section);
                saw_data = true;
            }
            Payload::End(_) => break,
            other => {
                if let Some((id, range)) = other.as_section() {
                    module.section(&wasm_encoder::RawSection {
                        id,
                        data: &patched[range],
                    });
                }
            }
        }
    }
    if !saw_data {
        return Err(bad("no data section holds the locator".into()));
    }
    Ok(module.finish())
}

/// Where the locator starts in the template; it must occur exactly once.
fn locator_offset(template: &[u8]) -> Result<usize, ArtifactError> {
    let hits: Vec<usize> = template
        .windows(LOCATOR_MAGIC.len())
        .enumerate()
        .filter(|(_, window)| *window == LOCATOR_MAGIC)
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [offset] if offset + modelhost_abi::trees::LOCATOR_SIZE <= template.len() => Ok(*offset),
        _ => Err(ArtifactError::Template(hits.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_holds_exactly_one_locator() {
        let offset = locator_offset(TREES_TEMPLATE).unwrap();
        assert_eq!(
            modelhost_abi::trees::read_locator(&TREES_TEMPLATE[offset..]),
            Some((0, 0))
        );
    }

    #[test]
    fn appending_grows_memory_and_keeps_the_module_valid() {
        let block = vec![7u8; 100_000];
        let wasm = append_block(TREES_TEMPLATE, &block).unwrap();
        wasmparser::Validator::new().validate_all(&wasm).unwrap();
        let offset = locator_offset(&wasm).unwrap();
        let (at, len) = modelhost_abi::trees::read_locator(&wasm[offset..]).unwrap();
        assert_eq!(len as usize, block.len());
        assert_eq!(at as u64 % PAGE, 0);
        // Deterministic: the same block, the same bytes.
        assert_eq!(wasm, append_block(TREES_TEMPLATE, &block).unwrap());
    }
}
