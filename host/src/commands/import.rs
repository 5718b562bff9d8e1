//! `modelhost import MODEL_FILE`: a model trained elsewhere (an XGBoost JSON model, a LightGBM
//! text model) → a sandboxed `model.wasm` of the tree kernel, written to `--output` or stored
//! and promoted in the registry exactly as `publish` stores a file (history event `import`).
//!
//! The model file is parsed by [`crate::import`] (format from the content or `--format`,
//! every tree checked), the schema is the model's own feature names, all numeric, and the
//! golden pairs are rows built from the model's own split thresholds (values exactly on a
//! threshold included) scored by the native kernel. The artifact is then loaded exactly as the
//! server loads one (checks, compile, self-test in the sandbox) before anything is written.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use modelhost_abi::info::{
    Family, FeatureKind, FeatureSpec, GoldenValue, ModelInfo, TASK_BINARY_CLASSIFICATION,
};
use modelhost_abi::trees::LEAF;
use serde::Serialize;

use super::publish::{Event, PublishReport, store_checked};
use super::{CommandError, RegistryTarget};
use crate::artifact::GoldenInput;
use crate::artifact::trees::{TreeModel, build_tree_artifact};
use crate::import::{self, Format, Imported, MAX_FILE_BYTES};
use crate::model::{Model, sha256_hex};
use modelhost_train::spec::{ModelSpec, SpecKind};

/// What `import` needs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The model file.
    pub file: PathBuf,
    /// Forces the format instead of telling it from the content.
    pub format: Option<Format>,
    /// Write the artifact here instead of into the registry.
    pub output: Option<PathBuf>,
    /// The registry (used without `output`) and the model's name (always).
    pub target: RegistryTarget,
    /// A model spec (docs/SPEC.md) whose features give ranges and integer kinds.
    pub spec: Option<PathBuf>,
}

/// Decision threshold of an imported model: the frameworks' `predict` is `p > 0.5`.
const THRESHOLD: f64 = 0.5;

/// How many golden rows an artifact carries.
const GOLDEN_ROWS: usize = 8;

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub file: PathBuf,
    pub format: Format,
    pub model_name: String,
    pub version: String,
    pub features: Vec<String>,
    pub trees: usize,
    pub nodes: usize,
    pub parameter_bytes: usize,
    pub sha256: String,
    pub size_bytes: u64,
    /// Where the artifact went: `--output`, or `versions/<v>.wasm` in the registry.
    pub artifact: PathBuf,
    /// The registry store, when the artifact went there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PublishReport>,
}

impl super::Report for ImportReport {}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} ({} model: {} trees, {} nodes, {} features)",
            self.file.display(),
            self.format,
            self.trees,
            self.nodes,
            self.features.len()
        )?;
        writeln!(
            f,
            "  {} {} ({} bytes, sha256 {}, parameters {} bytes)",
            self.model_name, self.version, self.size_bytes, self.sha256, self.parameter_bytes
        )?;
        writeln!(f, "  features {}", self.features.join(", "))?;
        match &self.published {
            Some(published) => write!(f, "{published}"),
            None => write!(f, "  wrote {}", self.artifact.display()),
        }
    }
}

/// Reads, converts, checks and writes or stores the model.
pub fn import(options: &ImportOptions) -> Result<ImportReport, CommandError> {
    let file = &options.file;
    let data_error =
        |e: &dyn std::fmt::Display| CommandError::Data(format!("{}: {e}", file.display()));
    let spec = match &options.spec {
        Some(path) => Some(ModelSpec::read(path).map_err(|e| CommandError::Data(e.0))?),
        None => None,
    };
    let source = read_capped(file)?;
    let imported = import::parse(&source, options.format).map_err(|e| data_error(&e))?;
    let features = schema(&imported.feature_names, spec.as_ref()).map_err(|problem| {
        let spec = options.spec.as_deref().unwrap_or(Path::new("")).display();
        CommandError::Data(format!("spec {spec}: {problem}"))
    })?;
    let (bytes, info) =
        build(&imported, &options.target.model_name, features).map_err(|e| data_error(&e))?;

    let runtime = super::runtime()?;
    let model = Model::load(&runtime, &bytes, file.clone()).map_err(|e| {
        CommandError::Failed(format!(
            "{}: the artifact built from it was refused: {}",
            file.display(),
            crate::error::chain(&e)
        ))
    })?;
    let mut report = ImportReport {
        file: file.clone(),
        format: imported.format,
        model_name: info.name.clone(),
        version: info.version.clone(),
        features: imported.feature_names.clone(),
        trees: imported.model.trees.len(),
        nodes: imported.model.n_nodes(),
        parameter_bytes: imported.model.parameter_bytes(),
        sha256: model.sha256.clone(),
        size_bytes: model.size_bytes,
        artifact: PathBuf::new(),
        published: None,
    };
    match &options.output {
        Some(output) => {
            crate::registry::write_atomic(output, &bytes).map_err(CommandError::io(output))?;
            report.artifact = output.clone();
        }
        None => {
            let published = store_checked(&options.target, file, &bytes, &model, Event::Import)?;
            report.artifact = published.artifact.clone();
            report.published = Some(published);
        }
    }
    Ok(report)
}

/// The file's bytes, refusing one larger than [`MAX_FILE_BYTES`] without reading it all.
fn read_capped(path: &Path) -> Result<Vec<u8>, CommandError> {
    let file = std::fs::File::open(path).map_err(CommandError::io(path))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(CommandError::io(path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CommandError::Data(format!(
            "{}: {}",
            path.display(),
            import::ImportError::TooLarge {
                size: bytes.len() as u64
            }
        )));
    }
    Ok(bytes)
}

/// The artifact and its info document (without the golden pairs, which only the artifact's
/// copy carries). The version derives from the artifact's content, as a
/// trained model's does: the artifact is built once with a provisional version, hashed, and
/// built again with `v` + the hash's first 12 hex digits.
pub fn build(
    imported: &Imported,
    model_name: &str,
    features: Vec<FeatureSpec>,
) -> Result<(Vec<u8>, ModelInfo), crate::artifact::ArtifactError> {
    let model = &imported.model;
    let mut info = ModelInfo {
        name: model_name.to_string(),
        version: "pending".to_string(),
        task: TASK_BINARY_CLASSIFICATION.to_string(),
        features,
        outputs: vec!["probability".to_string()],
        threshold: THRESHOLD,
        training: Default::default(),
        metrics: Default::default(),
        golden: Vec::new(),
        family: Some(Family {
            name: "trees".to_string(),
            source: Some(imported.format.name().to_string()),
            trees: Some(model.trees.len() as u64),
            nodes: Some(model.n_nodes() as u64),
            parameter_bytes: Some(model.parameter_bytes() as u64),
        }),
    };
    let golden = golden_inputs(model, &info.features);
    let provisional = build_tree_artifact(&info, model, &golden)?;
    info.version = format!("v{}", &sha256_hex(&provisional)[..12]);
    let wasm = build_tree_artifact(&info, model, &golden)?;
    Ok((wasm, info))
}

/// The schema of a model with these feature names: every feature a number of any finite
/// value, unless `spec` names it, when its range (`min`, `max`) and kind (`integer`) apply. A
/// spec feature the model lacks, or a categorical one, is an error naming it.
pub fn schema(names: &[String], spec: Option<&ModelSpec>) -> Result<Vec<FeatureSpec>, String> {
    if let Some(spec) = spec
        && let Some(extra) = spec.features.iter().find(|f| !names.contains(&f.name))
    {
        return Err(format!(
            "feature `{}` is not one of the model's ({})",
            extra.name,
            names.join(", ")
        ));
    }
    names
        .iter()
        .map(|name| {
            let rule = spec.and_then(|spec| spec.feature(name));
            let (min, max) = rule.and_then(|r| r.range()).unwrap_or((f64::MIN, f64::MAX));
            let kind = match rule.map(|r| r.kind) {
                Some(SpecKind::Categorical) => {
                    return Err(format!(
                        "feature `{name}` is categorical; an imported tree model's features are numbers"
                    ));
                }
                Some(SpecKind::Integer) => FeatureKind::Integer { min, max },
                _ => FeatureKind::Number { min, max },
            };
            Ok(FeatureSpec {
                name: name.clone(),
                kind,
            })
        })
        .collect()
}

/// The schema [`schema`] gives without a spec.
pub fn default_schema(names: &[String]) -> Vec<FeatureSpec> {
    schema(names, None).unwrap_or_default()
}

/// Rows for the self-test, drawn from the model's own split thresholds: row `k` gives each
/// feature one of its thresholds (every other row exactly on it, the others just below), the
/// last row all zeros; each value is then brought inside the feature's range (and rounded for
/// an integer feature). A feature no tree splits on is 0.
pub fn golden_inputs(model: &TreeModel, features: &[FeatureSpec]) -> Vec<GoldenInput> {
    let n = model.n_features as usize;
    let mut thresholds: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); n];
    for node in model.trees.iter().flat_map(|t| &t.nodes) {
        if node.feature != LEAF
            && let Some(set) = thresholds.get_mut(node.feature as usize)
        {
            set.insert(node.value.to_bits());
        }
    }
    let thresholds: Vec<Vec<f64>> = thresholds
        .into_iter()
        .map(|set| {
            let mut values: Vec<f64> = set.into_iter().map(f64::from_bits).collect();
            values.sort_by(f64::total_cmp);
            values
        })
        .collect();
    let mut rows: Vec<GoldenInput> = (0..GOLDEN_ROWS - 1)
        .map(|k| {
            thresholds
                .iter()
                .enumerate()
                .map(|(j, values)| {
                    let value = if values.is_empty() {
                        0.0
                    } else {
                        let t = values[(k * 7 + j * 3) % values.len()];
                        if k % 2 == 0 {
                            t
                        } else {
                            t - t.abs().max(1.0) * 1e-3
                        }
                    };
                    GoldenValue::Number(value)
                })
                .collect()
        })
        .collect();
    rows.push(vec![GoldenValue::Number(0.0); n]);
    for row in &mut rows {
        for (value, feature) in row.iter_mut().zip(features) {
            if let GoldenValue::Number(x) = value {
                *x = match feature.kind {
                    FeatureKind::Integer { min, max } => x.round().clamp(min.ceil(), max.floor()),
                    FeatureKind::Number { min, max } => x.clamp(min, max),
                    FeatureKind::Categorical { .. } => *x,
                };
            }
        }
    }
    rows
}
