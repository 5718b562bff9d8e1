//! The artifact builder: fitted parameters + info document → a self-contained `model.wasm`.
//!
//! The logistic-regression kernel is compiled once into a template module, committed as
//! `models-wasm/logreg/template/modelhost_logreg.wasm` (so a build needs no wasm target;
//! `models-wasm/build-template.sh --check` proves it equals a fresh build), whose
//! data segment holds an empty parameter block (see `modelhost_abi::params`). Building an
//! artifact copies the template and overwrites that block in place. Nothing is re-linked or
//! re-encoded and nothing time-dependent is written, so the same parameters always give the same
//! bytes. Golden probabilities are computed here with the native build of the same kernel, so an
//! artifact always carries a self-test it passes.
//!
//! This module knows nothing of wasmtime; the runtime checks artifacts like any other module.

use modelhost_abi::info::{FeatureKind, GoldenPair, GoldenValue, ModelInfo};
use modelhost_abi::params::{BLOCK_SIZE, FittedFeature, MAGIC, ParamView, encode_block};
use modelhost_abi::status;

use crate::model::schema::prepare_golden;

pub mod trees;

/// The compiled kernel template, with an empty parameter block.
pub const KERNEL_TEMPLATE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models-wasm/logreg/template/modelhost_logreg.wasm"
));

/// Why an artifact could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("info document: {0}")]
    Info(String),
    #[error("feature {index} ({name}): {problem}")]
    Feature {
        index: usize,
        name: String,
        problem: String,
    },
    #[error("expected {expected} fitted features for the schema, got {found}")]
    FeatureCount { expected: usize, found: usize },
    #[error("parameter block: {0}")]
    Block(String),
    #[error("the kernel template holds {0} parameter blocks, expected exactly one")]
    Template(usize),
}

/// A golden input row, given in request form (numbers, and categories as strings).
pub type GoldenInput = Vec<GoldenValue>;

/// Builds a `model.wasm` from the kernel template.
///
/// `info.golden` is ignored: the golden pairs are `golden_inputs` scored by the native kernel
/// with the encoded parameters. `info` must otherwise be complete and valid.
pub fn build_artifact(
    info: &ModelInfo,
    intercept: f64,
    features: &[FittedFeature],
    golden_inputs: &[GoldenInput],
) -> Result<Vec<u8>, ArtifactError> {
    if features.len() != info.features.len() {
        return Err(ArtifactError::FeatureCount {
            expected: info.features.len(),
            found: features.len(),
        });
    }
    for (index, (spec, fitted)) in info.features.iter().zip(features).enumerate() {
        let problem = match (&spec.kind, fitted) {
            (
                FeatureKind::Integer { .. } | FeatureKind::Number { .. },
                FittedFeature::Numeric { .. },
            ) => None,
            (FeatureKind::Categorical { vocabulary, .. }, FittedFeature::Categorical { coefs })
                if coefs.len() != vocabulary.len() =>
            {
                Some(format!(
                    "{} coefficients for a vocabulary of {}",
                    coefs.len(),
                    vocabulary.len()
                ))
            }
            (FeatureKind::Categorical { .. }, FittedFeature::Categorical { .. }) => None,
            _ => Some("fitted kind does not match the schema kind".to_string()),
        };
        if let Some(problem) = problem {
            return Err(ArtifactError::Feature {
                index,
                name: spec.name.clone(),
                problem,
            });
        }
    }

    // Score the golden rows with the parameters alone; they do not depend on the info document.
    let params_only = encode_block(intercept, features, b"{}")
        .map_err(|e| ArtifactError::Block(e.to_string()))?;
    let view =
        ParamView::parse(&params_only).map_err(|e| ArtifactError::Block(format!("{e:?}")))?;
    let mut info = info.clone();
    info.golden = Vec::with_capacity(golden_inputs.len());
    for (i, input) in golden_inputs.iter().enumerate() {
        let row = prepare_golden(&info, input)
            .map_err(|problem| ArtifactError::Info(format!("golden input {i}: {problem}")))?;
        let mut out = [0.0];
        let code = modelhost_logreg::predict_rows(&view, &row, row.len(), &mut out);
        if code != status::OK {
            return Err(ArtifactError::Block(status::describe(code).to_string()));
        }
        info.golden.push(GoldenPair {
            input: input.clone(),
            probability: out[0],
        });
    }
    info.validate().map_err(|e| ArtifactError::Info(e.0))?;

    let info_json = serde_json::to_vec(&info).map_err(|e| ArtifactError::Info(e.to_string()))?;
    let block = encode_block(intercept, features, &info_json)
        .map_err(|e| ArtifactError::Block(e.to_string()))?;
    let offset = template_block_offset()?;
    let mut wasm = KERNEL_TEMPLATE.to_vec();
    wasm[offset..offset + BLOCK_SIZE].copy_from_slice(&block);
    Ok(wasm)
}

/// Where the parameter block starts in the template; it must occur exactly once.
fn template_block_offset() -> Result<usize, ArtifactError> {
    let hits: Vec<usize> = KERNEL_TEMPLATE
        .windows(MAGIC.len())
        .enumerate()
        .filter(|(_, window)| *window == MAGIC)
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [offset] if offset + BLOCK_SIZE <= KERNEL_TEMPLATE.len() => Ok(*offset),
        _ => Err(ArtifactError::Template(hits.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_holds_exactly_one_block() {
        let offset = template_block_offset().unwrap();
        assert_eq!(&KERNEL_TEMPLATE[offset..offset + 16], &MAGIC);
    }
}
