//! The wasm sandbox: one wasmtime `Engine`, modules compiled from wasm bytes, and bounded calls.
//!
//! This module owns everything that touches wasmtime. It turns artifact bytes into a
//! [`Guest`] (checked against ABI v1, compiled once, its `info` document read and validated) and
//! runs `predict` on a fresh `Store` and instance per call, under a memory cap (pooling allocator
//! plus a store limiter) and a time cap (epoch interruption driven by a background ticker).
//! Every pointer and length the guest hands back is bounds-checked here.
//!
//! It must not know about HTTP, the registry layout or request schemas, and every function here
//! blocks: callers on an async executor must use `spawn_blocking`.

mod check;
mod guest;

pub use check::{MAX_ARTIFACT_BYTES, MAX_TABLE_ELEMENTS, is_cut_short};
pub use guest::{CallError, CallReason, Guest};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use strum::IntoEnumIterator;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the background ticker advances the engine's epoch. The time limit is enforced
/// with this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Per-call resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory a guest may have, in bytes.
    pub memory_bytes: usize,
    /// Longest a single wasm call (instantiation included) may run.
    pub timeout: Duration,
    /// Instances that may exist at once; the pooling allocator reserves this many slots.
    pub max_instances: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_millis(50),
            max_instances: 128,
        }
    }
}

impl Limits {
    /// Epoch ticks a call may run before it is interrupted (rounded up, plus one for the tick
    /// already in progress when the call starts).
    fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_micros();
        (self.timeout.as_micros().div_ceil(tick) as u64).max(1) + 1
    }
}

/// Why a module could not be loaded; each message names the problem and says its cause, which
/// is therefore not also exposed as a source (see [`crate::error::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("empty file: a model must be a wasm module")]
    Empty,
    #[error("file is {size} bytes, above the {MAX_ARTIFACT_BYTES}-byte limit for an artifact")]
    TooLarge { size: usize },
    #[error("not a wasm core module: {0}")]
    NotWasm(&'static str),
    #[error("invalid wasm: {0}")]
    Invalid(String),
    #[error("module imports `{module}::{name}`; a model must not import anything")]
    Import { module: String, name: String },
    #[error("module has a start function; a model must not run code when instantiated")]
    StartFunction,
    #[error("module {0}; a model has exactly one memory")]
    Memories(String),
    #[error("memory declares {declared} bytes initially, above the {limit}-byte memory limit")]
    MemoryTooLarge { declared: u64, limit: usize },
    #[error(
        "table declares {declared} elements initially, above the limit of {MAX_TABLE_ELEMENTS}"
    )]
    TableTooLarge { declared: u64 },
    #[error("missing export `{0}`")]
    MissingExport(&'static str),
    #[error("export `{name}` is {found}, expected {expected}")]
    ExportType {
        name: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("abi_version() returned {0}; this host speaks ABI version 1")]
    AbiVersion(i32),
    #[error("info document: {0}")]
    Info(String),
    #[error("{export}() failed: {error}")]
    Call {
        export: &'static str,
        error: CallError,
    },
    #[error("self-test failed: {0}")]
    SelfTest(String),
    /// The self-test's `predict` call failed; labelled by the call's own reason (`timeout`,
    /// `trap`, …), so a model that loops in its self-test is counted as a timeout.
    #[error("self-test failed: {0}")]
    SelfTestCall(CallError),
}

impl LoadError {
    /// A short, stable label for the cause, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        let reason = match self {
            LoadError::Empty => LoadReason::Empty,
            LoadError::TooLarge { .. } => LoadReason::TooLarge,
            LoadError::NotWasm(_) => LoadReason::NotWasm,
            LoadError::Invalid(_) => LoadReason::InvalidWasm,
            LoadError::Import { .. } => LoadReason::Import,
            LoadError::StartFunction => LoadReason::StartFunction,
            LoadError::Memories(_) | LoadError::MemoryTooLarge { .. } => LoadReason::Memory,
            LoadError::TableTooLarge { .. } => LoadReason::Table,
            LoadError::MissingExport(_) | LoadError::ExportType { .. } => LoadReason::Exports,
            LoadError::AbiVersion(_) => LoadReason::AbiVersion,
            LoadError::Info(_) => LoadReason::Info,
            LoadError::Call { error, .. } => return error.reason(),
            LoadError::SelfTest(_) => LoadReason::SelfTest,
            LoadError::SelfTestCall(source) => return source.reason(),
        };
        reason.label()
    }

    /// Every label [`reason`](Self::reason) can return, once each: the load checks' own, then
    /// the call reasons a failed `info` or self-test call is labelled with.
    pub fn reasons() -> impl Iterator<Item = &'static str> {
        LoadReason::iter()
            .map(LoadReason::label)
            .chain(CallError::reasons())
    }
}

/// The causes a load refusal is labelled with, besides a failed call's own [`CallError`]
/// reason. Several [`LoadError`] variants may share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum LoadReason {
    Empty,
    TooLarge,
    NotWasm,
    InvalidWasm,
    Import,
    StartFunction,
    Memory,
    Table,
    Exports,
    AbiVersion,
    Info,
    SelfTest,
}

impl LoadReason {
    /// The metric label of this cause.
    pub fn label(self) -> &'static str {
        match self {
            LoadReason::Empty => "empty",
            LoadReason::TooLarge => "too_large",
            LoadReason::NotWasm => "not_wasm",
            LoadReason::InvalidWasm => "invalid_wasm",
            LoadReason::Import => "import",
            LoadReason::StartFunction => "start_function",
            LoadReason::Memory => "memory",
            LoadReason::Table => "table",
            LoadReason::Exports => "exports",
            LoadReason::AbiVersion => "abi_version",
            LoadReason::Info => "info",
            LoadReason::SelfTest => "self_test",
        }
    }
}

/// The process-wide engine and its epoch ticker. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    ticker: Arc<Ticker>,
}

/// Keeps the epoch ticker thread running. The runtime and every guest it loaded hold one, so the
/// epoch advances as long as anything can still call a guest: a call still running when the
/// runtime is dropped keeps its time limit instead of running unbounded.
pub(crate) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Bytes of each memory slot kept mapped between instances (see [`Tuning`]).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// How instance slots are recycled between calls: the settings that decide what a fresh
/// instance costs, none of which lets any guest state survive a call (wasmtime resets a slot's
/// memory to the module's initial image, or zeroes or unmaps it, before it is used again).
/// [`Tuning::default`] is what the server runs; `host/benches/instance.rs` measures the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Bytes at the start of each memory slot that are reset in place (memset, or only the
    /// dirty pages with `pagemap_scan`) rather than unmapped and faulted in again.
    pub memory_keep_resident: usize,
    /// The same for each table slot.
    pub table_keep_resident: usize,
    /// Reset only the pages a guest dirtied, found with the `PAGEMAP_SCAN` ioctl (Linux ≥ 6.7).
    pub pagemap_scan: bool,
    /// Map a module's initial memory copy-on-write from an image instead of copying its data
    /// segments into every instance.
    pub memory_init_cow: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            memory_keep_resident: KEEP_RESIDENT_BYTES,
            table_keep_resident: 0,
            pagemap_scan: true,
            memory_init_cow: true,
        }
    }
}

fn enabled(on: bool) -> wasmtime::Enabled {
    if on {
        wasmtime::Enabled::Auto
    } else {
        wasmtime::Enabled::No
    }
}

impl Runtime {
    /// Builds the engine: pooling allocator sized from `limits`, epoch interruption on, and a
    /// ticker thread that advances the epoch every [`EPOCH_TICK`] until the runtime and every guest
    /// it loaded are dropped.
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        Self::with_tuning(limits, Tuning::default())
    }

    /// [`Runtime::new`] with slot recycling set by `tuning` (for measurements).
    pub fn with_tuning(limits: Limits, tuning: Tuning) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(limits.max_instances)
            .total_memories(limits.max_instances)
            .total_tables(limits.max_instances)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .table_elements(MAX_TABLE_ELEMENTS as usize)
            .max_memory_size(limits.memory_bytes)
            // A slot's first pages are reset in place (memset) instead of being unmapped and
            // faulted in again on the next instance: with one fresh instance per request, that
            // halves the cost of a one-row call. On Linux ≥ 6.7 pagemap scanning resets only the
            // pages a guest dirtied.
            .linear_memory_keep_resident(tuning.memory_keep_resident)
            .table_keep_resident(tuning.table_keep_resident)
            .pagemap_scan(enabled(tuning.pagemap_scan));
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Reserve only what a guest may use (plus guard pages); 4 GiB per slot would reserve
            // terabytes of address space for a large pool.
            .memory_reservation(limits.memory_bytes as u64)
            .memory_reservation_for_growth(0)
            .memory_init_cow(tuning.memory_init_cow)
            .max_wasm_stack(512 << 10);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("cannot create the wasm engine: {e}"))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let stop = ticker_stop.clone();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("modelhost-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticking.increment_epoch();
                }
            })?;
        Ok(Runtime {
            engine,
            limits,
            ticker: Arc::new(Ticker { stop: ticker_stop }),
        })
    }

    /// The engine every module is compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Checks `bytes` against ABI v1, compiles them (never deserialises precompiled code),
    /// and reads and validates the guest's `info` document. Blocks for the compile.
    pub fn load(&self, bytes: &[u8]) -> Result<Guest, LoadError> {
        check::check_module_bytes(bytes, self.limits.memory_bytes)?;
        let module = wasmtime::Module::from_binary(&self.engine, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        check::check_exports(&module)?;
        Guest::new(&self.engine, module, self.limits, self.ticker.clone())
    }
}
