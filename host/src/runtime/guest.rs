//! A compiled, checked model module and the bounded calls into it.
//!
//! Each call gets a fresh `Store` and instance from a pre-linked `InstancePre`, so no state
//! survives between requests and a guest that corrupts its own memory harms only the call that
//! did it. The guest's memory is read and written only through bounds-checked ranges.

use std::ops::Range;
use std::sync::Arc;

use modelhost_abi::info::{MAX_INFO_BYTES, ModelInfo};
use modelhost_abi::{exports, status};
use strum::IntoEnumIterator;
use wasmtime::{
    Engine, InstancePre, Linker, Memory, Module, ModuleExport, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};

use super::{Limits, LoadError, MAX_TABLE_ELEMENTS, Ticker};

/// Why a call into the guest failed.
///
/// [`CallReason`] names each variant without its data; it is what [`CallError::reason`] labels
/// and what [`CallError::reasons`] enumerates, so the metric labels can never miss a variant.
#[derive(Debug, Clone, PartialEq, thiserror::Error, strum::EnumDiscriminants)]
#[strum_discriminants(
    name(CallReason),
    derive(strum::EnumIter),
    doc = "The cause of a [`CallError`], without its details."
)]
pub enum CallError {
    #[error("exceeded the {0} ms time limit")]
    Timeout(u128),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("no free instance slot; too many concurrent calls")]
    Capacity,
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("alloc({0}) returned no memory (memory limit reached?)")]
    AllocFailed(usize),
    #[error("{export}() returned {detail}")]
    OutOfBounds {
        export: &'static str,
        detail: String,
    },
    #[error("predict returned status {code} ({})", status::describe(*code))]
    Status { code: i32 },
    #[error("returned {value} for row {row}, which is not a probability in [0, 1]")]
    BadOutput { row: usize, value: f64 },
    #[error("input of {n_rows} rows x {n_cols} columns is too large")]
    InputTooLarge { n_rows: usize, n_cols: usize },
}

impl CallError {
    /// A short, stable label for the cause, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        CallReason::from(self).label()
    }

    /// Every label [`reason`](Self::reason) can return, once each.
    pub fn reasons() -> impl Iterator<Item = &'static str> {
        CallReason::iter().map(CallReason::label)
    }
}

impl CallReason {
    /// The metric label of this cause.
    pub fn label(self) -> &'static str {
        match self {
            CallReason::Timeout => "timeout",
            CallReason::Trap => "trap",
            CallReason::Capacity => "capacity",
            CallReason::Instantiate => "instantiate",
            CallReason::AllocFailed => "alloc_failed",
            CallReason::OutOfBounds => "out_of_bounds",
            CallReason::Status => "status",
            CallReason::BadOutput => "bad_output",
            CallReason::InputTooLarge => "input_too_large",
        }
    }
}

/// Per-store data: only the resource limiter.
struct CallState {
    limits: StoreLimits,
}

/// A module that passed the ABI checks, with its parsed `info` document.
pub struct Guest {
    engine: Engine,
    pre: InstancePre<CallState>,
    exports: Exports,
    limits: Limits,
    info: ModelInfo,
    /// Keeps the epoch advancing while this guest can be called (see [`super::Ticker`]).
    _ticker: Arc<Ticker>,
}

/// The exports every call uses, resolved once per module: an instance then finds each by index
/// instead of by name.
struct Exports {
    memory: ModuleExport,
    alloc: ModuleExport,
    predict: ModuleExport,
}

impl Exports {
    fn new(module: &Module) -> Result<Self, LoadError> {
        let find = |name: &'static str| {
            module
                .get_export_index(name)
                .ok_or(LoadError::MissingExport(name))
        };
        Ok(Exports {
            memory: find(exports::MEMORY)?,
            alloc: find(exports::ALLOC)?,
            predict: find(exports::PREDICT)?,
        })
    }
}

/// An instantiated guest for the duration of one call.
struct Call {
    store: Store<CallState>,
    memory: Memory,
    instance: wasmtime::Instance,
    timeout_ms: u128,
}

impl Guest {
    pub(super) fn new(
        engine: &Engine,
        module: Module,
        limits: Limits,
        ticker: Arc<Ticker>,
    ) -> Result<Self, LoadError> {
        let exports = Exports::new(&module)?;
        let linker = Linker::new(engine);
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let mut call =
            start_call(engine, &pre, &exports.memory, limits).map_err(|error| LoadError::Call {
                export: "instantiate",
                error,
            })?;
        let version = call
            .typed::<(), i32>(exports::ABI_VERSION)
            .and_then(|f| call.run(|store| f.call(store, ())))
            .map_err(|error| LoadError::Call {
                export: exports::ABI_VERSION,
                error,
            })?;
        if version != modelhost_abi::ABI_VERSION {
            return Err(LoadError::AbiVersion(version));
        }
        let packed = call
            .typed::<(), i64>(exports::INFO)
            .and_then(|f| call.run(|store| f.call(store, ())))
            .map_err(|error| LoadError::Call {
                export: exports::INFO,
                error,
            })?;
        let (ptr, len) = modelhost_abi::unpack_ptr_len(packed);
        if len as usize > MAX_INFO_BYTES {
            return Err(LoadError::Info(format!(
                "{len} bytes, above the {MAX_INFO_BYTES}-byte limit"
            )));
        }
        let range = call
            .region(exports::INFO, ptr, len as usize)
            .map_err(|e| LoadError::Info(e.to_string()))?;
        let info: ModelInfo = serde_json::from_slice(&call.memory.data(&call.store)[range])
            .map_err(|e| LoadError::Info(format!("not valid JSON of the ABI's shape: {e}")))?;
        info.validate().map_err(|e| LoadError::Info(e.0))?;
        Ok(Guest {
            engine: engine.clone(),
            pre,
            exports,
            limits,
            info,
            _ticker: ticker,
        })
    }

    /// The model's self-description.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Scores `rows` (row-major, one column per schema feature) in one fresh instance, and
    /// returns one probability per row. Blocks; never call it on an async executor thread.
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>, CallError> {
        let n_cols = self.info.features.len();
        let n_rows = rows.len() / n_cols;
        debug_assert_eq!(rows.len(), n_rows * n_cols);
        let too_large = || CallError::InputTooLarge { n_rows, n_cols };
        let in_bytes = rows.len().checked_mul(8).ok_or_else(too_large)?;
        let out_bytes = n_rows * 8;
        let (n_rows_i32, n_cols_i32, in_i32, out_i32) = (
            i32::try_from(n_rows).map_err(|_| too_large())?,
            i32::try_from(n_cols).map_err(|_| too_large())?,
            i32::try_from(in_bytes).map_err(|_| too_large())?,
            i32::try_from(out_bytes).map_err(|_| too_large())?,
        );

        let mut call = self.start()?;
        let alloc = call.typed_at::<i32, i32>(exports::ALLOC, &self.exports.alloc)?;
        let predict =
            call.typed_at::<(i32, i32, i32, i32), i32>(exports::PREDICT, &self.exports.predict)?;

        let in_ptr = call.run(|store| alloc.call(store, in_i32))?;
        let in_range = call.allocated(in_ptr, in_bytes)?;
        let out_ptr = call.run(|store| alloc.call(store, out_i32))?;
        let out_range = call.allocated(out_ptr, out_bytes)?;
        if in_range.start < out_range.end && out_range.start < in_range.end {
            return Err(CallError::OutOfBounds {
                export: exports::ALLOC,
                detail: format!(
                    "a region {out_range:?} overlapping the input rows at {in_range:?}"
                ),
            });
        }

        let memory = call.memory.data_mut(&mut call.store);
        for (dst, value) in memory[in_range].chunks_exact_mut(8).zip(rows) {
            dst.copy_from_slice(&value.to_le_bytes());
        }
        let code =
            call.run(|store| predict.call(store, (in_ptr, n_rows_i32, n_cols_i32, out_ptr)))?;
        if code != status::OK {
            return Err(CallError::Status { code });
        }
        let memory = call.memory.data(&call.store);
        memory[out_range]
            .chunks_exact(8)
            .enumerate()
            .map(|(row, raw)| {
                let value = f64::from_le_bytes(raw.try_into().expect("8-byte chunk"));
                if (0.0..=1.0).contains(&value) {
                    Ok(value)
                } else {
                    Err(CallError::BadOutput { row, value })
                }
            })
            .collect()
    }

    fn start(&self) -> Result<Call, CallError> {
        start_call(&self.engine, &self.pre, &self.exports.memory, self.limits)
    }
}

/// Instantiates the module in a fresh store with the call limits applied.
fn start_call(
    engine: &Engine,
    pre: &InstancePre<CallState>,
    memory: &ModuleExport,
    limits: Limits,
) -> Result<Call, CallError> {
    let timeout_ms = limits.timeout.as_millis();
    let deadline = limits.deadline_ticks();
    let limits = StoreLimitsBuilder::new()
        .memory_size(limits.memory_bytes)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .instances(1)
        .memories(1)
        .tables(1)
        .build();
    let mut store = Store::new(engine, CallState { limits });
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(deadline);
    store.epoch_deadline_trap();
    let instance = pre.instantiate(&mut store).map_err(|e| {
        if e.is::<wasmtime::PoolConcurrencyLimitError>() {
            CallError::Capacity
        } else {
            classify(e, timeout_ms).unwrap_or_else(CallError::Instantiate)
        }
    })?;
    let memory = instance
        .get_module_export(&mut store, memory)
        .and_then(wasmtime::Extern::into_memory)
        .ok_or_else(|| CallError::Instantiate("no exported memory".into()))?;
    Ok(Call {
        store,
        memory,
        instance,
        timeout_ms,
    })
}

impl Call {
    /// The function export `name`, found by its index in the module.
    fn typed_at<P, R>(
        &mut self,
        name: &str,
        export: &ModuleExport,
    ) -> Result<wasmtime::TypedFunc<P, R>, CallError>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        self.instance
            .get_module_export(&mut self.store, export)
            .and_then(wasmtime::Extern::into_func)
            .ok_or_else(|| CallError::Instantiate(format!("export `{name}` is not a function")))?
            .typed::<P, R>(&self.store)
            .map_err(|e| CallError::Instantiate(format!("export `{name}`: {e}")))
    }

    fn typed<P, R>(&mut self, name: &str) -> Result<wasmtime::TypedFunc<P, R>, CallError>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| CallError::Instantiate(format!("export `{name}`: {e}")))
    }

    /// Runs one guest call and maps a trap to a [`CallError`].
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let timeout_ms = self.timeout_ms;
        f(&mut self.store).map_err(|e| match classify(e, timeout_ms) {
            Ok(err) => err,
            Err(message) => CallError::Trap(message),
        })
    }

    /// The byte range `ptr..ptr+len` that `export` returned, if it lies inside the guest's
    /// memory.
    fn region(
        &self,
        export: &'static str,
        ptr: u32,
        len: usize,
    ) -> Result<Range<usize>, CallError> {
        let size = self.memory.data_size(&self.store);
        let start = ptr as usize;
        match start.checked_add(len) {
            Some(end) if end <= size => Ok(start..end),
            _ => Err(CallError::OutOfBounds {
                export,
                detail: format!(
                    "an out-of-bounds region: {len} bytes at {ptr:#x} in a memory of {size} bytes"
                ),
            }),
        }
    }

    /// Like [`Call::region`] for a pointer returned by `alloc`, where 0 means failure.
    fn allocated(&self, ptr: i32, len: usize) -> Result<Range<usize>, CallError> {
        if ptr == 0 {
            return Err(CallError::AllocFailed(len));
        }
        self.region(exports::ALLOC, ptr as u32, len)
    }
}

/// Maps a wasmtime error to the trap it carries, if any; otherwise returns the message.
fn classify(error: wasmtime::Error, timeout_ms: u128) -> Result<CallError, String> {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Ok(CallError::Timeout(timeout_ms)),
        // `Trap`'s text starts with "wasm trap: "; the variant already says it trapped.
        Some(trap) => {
            let text = trap.to_string();
            let text = text.strip_prefix("wasm trap: ").unwrap_or(&text);
            Ok(CallError::Trap(text.to_string()))
        }
        None => Err(format!("{error:#}")),
    }
}
