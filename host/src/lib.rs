//! modelhost: serve machine-learning models compiled to WebAssembly, hot-swapped from a registry.
//!
//! Layout, along the data flow (trainer → registry → watcher → loader → active slot → HTTP):
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`cli`]: the command line; each subcommand calls one library function.
//! - [`artifact`]: fitted parameters → a self-contained `model.wasm` (the kernel template);
//!   `artifact::trees` for tree ensembles.
//! - [`import`]: XGBoost and LightGBM model files → tree ensembles, checked node by node.
//! - [`registry`]: the registry directory's layout and file reads.
//! - [`watch`]: notices a new artifact and hands it to the load pipeline.
//! - [`runtime`]: the wasmtime sandbox: engine, checks, compile, bounded calls. The only module
//!   that knows wasmtime.
//! - [`model`]: a loaded, self-tested model; the active-model slot; request schemas; the
//!   executor every model call runs on.
//! - [`http`]: router, handlers, JSON errors. Knows nothing of wasmtime.
//! - [`serve`]: wires the above into a running server.
//! - [`commands`]: every subcommand besides `serve`: `train` (the lab's pipeline, ending in a
//!   published artifact), `inspect` (checks an artifact without serving it), `rollback`,
//!   `versions`, `publish` (registry upkeep), `predict` (batch scoring through the same sandbox)
//!   and `drift`.
//! - [`telemetry`]: logging setup.
//! - [`error`]: how an error and its causes are printed, once each.
//! - [`output`]: standard output that ends quietly when its reader goes away.

pub mod artifact;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod import;
pub mod model;
pub mod output;
pub mod registry;
pub mod runtime;
pub mod serve;
pub mod telemetry;
pub mod watch;
