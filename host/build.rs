//! No build step of its own: the kernel template is committed
//! (`models-wasm/logreg/template/`, rebuilt and checked by `models-wasm/build-template.sh`).
//!
//! This script exists because cargo only resolves `[build-dependencies]` for a package that has
//! one, and those entries in `Cargo.toml` pin the proc-macro side of the feature unification
//! described there.

fn main() {}
