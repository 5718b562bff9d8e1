//! Model ABI v1: the contract between the modelhost host and a model compiled to WebAssembly.
//!
//! This crate owns the names, types and byte layouts both sides must agree on, and nothing else.
//! It is `no_std` and dependency-free for guests; the `host` feature adds the `info` document
//! types (serde) and the parameter-block encoder the artifact builder uses. It must never depend
//! on a wasm runtime. The prose version of the contract lives in `docs/ABI.md`.
//!
//! Layout:
//! - the constants below: ABI version, export names, status codes, limits;
//! - [`params`]: the fixed-size parameter block embedded in the logistic-regression kernel;
//! - [`trees`]: the tree-ensemble block, appended to the tree kernel's module, and its walk;
//! - [`info`] (feature `host`): the JSON document returned by the `info` export.

#![no_std]

#[cfg(feature = "host")]
extern crate alloc;

#[cfg(feature = "host")]
pub mod info;
pub mod params;
pub mod regions;
pub mod trees;

/// The ABI version this crate describes; returned by the guest's `abi_version` export.
pub const ABI_VERSION: i32 = 1;

/// Export names a model module must provide, with their core wasm signatures.
pub mod exports {
    /// The guest's linear memory (`memory`).
    pub const MEMORY: &str = "memory";
    /// `abi_version() -> i32`.
    pub const ABI_VERSION: &str = "abi_version";
    /// `info() -> i64`: a packed pointer/length of the UTF-8 JSON info document.
    pub const INFO: &str = "info";
    /// `alloc(n_bytes: i32) -> i32`: an 8-byte aligned region of `n_bytes`, or 0 on failure.
    pub const ALLOC: &str = "alloc";
    /// `predict(rows_ptr: i32, n_rows: i32, n_cols: i32, out_ptr: i32) -> i32`: writes `n_rows`
    /// little-endian `f64` probabilities at `out_ptr` and returns a [`status`](crate::status) code.
    pub const PREDICT: &str = "predict";
}

/// Status codes returned by `predict`.
pub mod status {
    /// Every row was scored.
    pub const OK: i32 = 0;
    /// `n_cols` is not the number of features the model expects.
    pub const BAD_SHAPE: i32 = 1;
    /// A pointer was null or misaligned.
    pub const BAD_POINTER: i32 = 2;
    /// The model's embedded parameters are missing or corrupt.
    pub const BAD_PARAMS: i32 = 3;

    /// A short description of a status code, for host error messages.
    pub fn describe(code: i32) -> &'static str {
        match code {
            OK => "ok",
            BAD_SHAPE => "wrong number of columns",
            BAD_POINTER => "null or misaligned pointer",
            BAD_PARAMS => "embedded parameters missing or corrupt",
            _ => "unknown status code",
        }
    }
}

/// The value a categorical column carries for a category outside the model's vocabulary.
/// The kernel encodes it as an all-zero one-hot vector (scikit-learn's `handle_unknown="ignore"`).
pub const UNKNOWN_CATEGORY: f64 = -1.0;

/// Packs a guest pointer and length into the `i64` that `info` returns: pointer in the low
/// 32 bits, length in the high 32 bits.
pub const fn pack_ptr_len(ptr: u32, len: u32) -> i64 {
    ((len as u64) << 32 | ptr as u64) as i64
}

/// Splits an `i64` returned by `info` into (pointer, length). The host must still bounds-check
/// both against the guest's memory: nothing a guest returns is trusted.
pub const fn unpack_ptr_len(packed: i64) -> (u32, u32) {
    let bits = packed as u64;
    (bits as u32, (bits >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_len_round_trips_including_extremes() {
        for (ptr, len) in [(0, 0), (8, 1234), (u32::MAX, u32::MAX), (1 << 31, 7)] {
            assert_eq!(unpack_ptr_len(pack_ptr_len(ptr, len)), (ptr, len));
        }
    }
}
