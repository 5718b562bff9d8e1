//! Models as the server sees them: a loaded, self-tested artifact, and the active-model slot.
//!
//! [`Model::load`] is the load pipeline's core: sha256 → ABI checks and compile (in
//! [`runtime`](crate::runtime)) → self-test with the model's golden pairs. [`ActiveModel`] holds
//! the serving model behind an `ArcSwap`, so a request keeps the `Arc<Model>` it started with
//! while a swap installs the next one. [`schema`] turns a JSON request into a matrix row, and
//! [`response`] shapes the answer for one row (for HTTP and batch scoring alike). [`executor`]
//! runs every model call a request or a batch run makes, on dedicated call threads, coalescing
//! the jobs queued for the same model into one call. [`catalog`] holds the served models, one
//! [`Served`] unit (name, slot, drift window) per model.
//!
//! This module does not read the registry or watch files (that is `registry` and `watch`), and
//! knows nothing of HTTP.

pub mod catalog;
pub mod executor;
pub mod response;
pub mod schema;
mod slot;

pub use catalog::{Catalog, Served};
pub use slot::{ActiveModel, RECENT_EVENTS, SlotEvent, SlotStatus};

use std::path::PathBuf;
use std::time::SystemTime;

use modelhost_abi::info::ModelInfo;
use sha2::{Digest, Sha256};

use crate::runtime::{CallError, Guest, LoadError, Runtime};
use schema::prepare_golden;

/// Largest difference between a golden probability and the model's answer that still passes the
/// self-test. Golden pairs are produced by the same kernel code compiled natively, so honest
/// models agree to the last bits; this only absorbs differences in float printing.
pub const SELF_TEST_TOLERANCE: f64 = 1e-9;

/// A model that passed every check and may serve.
pub struct Model {
    guest: Guest,
    /// Hex sha256 of the artifact bytes.
    pub sha256: String,
    /// Where the artifact was read from.
    pub source: PathBuf,
    /// Artifact size in bytes.
    pub size_bytes: u64,
    /// When this process loaded it.
    pub loaded_at: SystemTime,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.info().name)
            .field("version", &self.info().version)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// Hex-encoded sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Model {
    /// Checks, compiles and self-tests an artifact. Blocks; run it off the async executor.
    pub fn load(runtime: &Runtime, bytes: &[u8], source: PathBuf) -> Result<Model, LoadError> {
        let sha256 = sha256_hex(bytes);
        let guest = runtime.load(bytes)?;
        self_test(&guest)?;
        Ok(Model {
            guest,
            sha256,
            source,
            size_bytes: bytes.len() as u64,
            loaded_at: SystemTime::now(),
        })
    }

    /// The model's self-description.
    pub fn info(&self) -> &ModelInfo {
        self.guest.info()
    }

    /// The model's version id.
    pub fn version(&self) -> &str {
        &self.info().version
    }

    /// Scores rows prepared by [`schema`]; one probability per row. Blocks; run it off the
    /// async executor.
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>, CallError> {
        self.guest.predict(rows)
    }

    /// The prediction for a probability, by the model's own threshold.
    pub fn decide(&self, probability: f64) -> u8 {
        u8::from(probability >= self.info().threshold)
    }
}

/// Runs every golden pair through the guest in one batch; any trap or mismatch rejects it.
fn self_test(guest: &Guest) -> Result<(), LoadError> {
    let info = guest.info();
    let mut rows = Vec::with_capacity(info.golden.len() * info.features.len());
    for (i, pair) in info.golden.iter().enumerate() {
        let row = prepare_golden(info, &pair.input)
            .map_err(|problem| LoadError::SelfTest(format!("golden[{i}]: {problem}")))?;
        rows.extend(row);
    }
    let got = guest.predict(&rows).map_err(LoadError::SelfTestCall)?;
    for (i, (pair, got)) in info.golden.iter().zip(got).enumerate() {
        if (pair.probability - got).abs() > SELF_TEST_TOLERANCE {
            return Err(LoadError::SelfTest(format!(
                "golden[{i}]: expected probability {}, model returned {got}",
                pair.probability
            )));
        }
    }
    Ok(())
}
