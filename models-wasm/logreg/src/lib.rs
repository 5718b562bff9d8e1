//! The logistic-regression kernel: standardisation + one-hot + logistic regression, `no_std`.
//!
//! The same code builds two ways. Natively it is an ordinary library ([`predict_rows`]), which
//! the host's tests use as the reference. For `wasm32` the [`guest`] module adds the ABI v1
//! exports around it, reading the fitted parameters from [`PARAMS`], a fixed-size block that the
//! artifact builder overwrites in a copy of the compiled template. This crate knows nothing of
//! the host or of any wasm runtime.

#![no_std]

use modelhost_abi::params::{BLOCK_SIZE, FeatureParams, MAGIC, ParamView};
pub use modelhost_abi::regions::{Regions, checked_regions};
use modelhost_abi::status;

/// The parameter block. The template carries only the magic; each artifact carries its model.
/// Kept as one `#[used]` static so it lands, whole and once, in the module's data segment.
#[used]
pub static PARAMS: ParamBlock = ParamBlock(template_block());

/// Wrapper that fixes the block's alignment, so the header's `u32`s could be read directly.
#[repr(C, align(8))]
pub struct ParamBlock(pub [u8; BLOCK_SIZE]);

const fn template_block() -> [u8; BLOCK_SIZE] {
    let mut block = [0u8; BLOCK_SIZE];
    let mut i = 0;
    while i < MAGIC.len() {
        block[i] = MAGIC[i];
        i += 1;
    }
    block
}

/// Numerically stable logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + libm::exp(-z))
    } else {
        let e = libm::exp(z);
        e / (1.0 + e)
    }
}

/// Scores `rows` (row-major, `params.n_features()` columns) into `out`, one probability per
/// row. Categorical columns hold a vocabulary index; any value that is not a valid index
/// (−1 for an unknown category, or anything else) contributes nothing, like an all-zero one-hot.
/// Returns a [`status`] code.
pub fn predict_rows(params: &ParamView<'_>, rows: &[f64], n_cols: usize, out: &mut [f64]) -> i32 {
    if n_cols != params.n_features() || rows.len() != out.len() * n_cols {
        return status::BAD_SHAPE;
    }
    if n_cols == 0 {
        out.fill(sigmoid(params.intercept()));
        return status::OK;
    }
    for (row, prob) in rows.chunks_exact(n_cols).zip(out.iter_mut()) {
        let mut logit = params.intercept();
        for (x, feature) in row.iter().zip(params.features()) {
            match feature {
                FeatureParams::Numeric { mean, scale, coef } => logit += (x - mean) / scale * coef,
                FeatureParams::Categorical { coefs } => {
                    if *x >= 0.0 && *x == libm::trunc(*x) {
                        logit += coefs.get(*x as usize).unwrap_or(0.0);
                    }
                }
            }
        }
        *prob = sigmoid(logit);
    }
    status::OK
}

/// The ABI v1 exports; compiled only for wasm.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub mod guest {
    use super::*;
    use core::arch::wasm32;

    /// Reads the block through a pointer the optimiser cannot see through. Without this, the
    /// compiler would constant-fold the template's (empty) block into the code, and rewriting
    /// the data segment would change nothing.
    fn params_bytes() -> &'static [u8] {
        let ptr: *const u8 = PARAMS.0.as_ptr();
        // SAFETY: a volatile read of a local copy of a valid pointer; it yields that same pointer.
        let opaque = unsafe { core::ptr::read_volatile(&ptr) };
        // SAFETY: `opaque` is `PARAMS.0.as_ptr()`, valid for BLOCK_SIZE bytes for the whole
        // program, and the block is never written at run time.
        unsafe { core::slice::from_raw_parts(opaque, BLOCK_SIZE) }
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn abi_version() -> i32 {
        modelhost_abi::ABI_VERSION
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn info() -> i64 {
        match ParamView::parse(params_bytes()) {
            Ok(view) => {
                let info = view.info();
                modelhost_abi::pack_ptr_len(info.as_ptr() as u32, info.len() as u32)
            }
            Err(_) => 0,
        }
    }

    /// Bytes served from a static scratch area before memory is grown: a request of up to
    /// about 2,800 rows (input and output) fits, so most calls never grow memory at all.
    const SCRATCH_BYTES: usize = 128 << 10;

    #[repr(C, align(8))]
    struct Scratch([u8; SCRATCH_BYTES]);

    static mut SCRATCH: Scratch = Scratch([0; SCRATCH_BYTES]);
    static mut SCRATCH_USED: usize = 0;

    /// Each instance serves one request and is then dropped, so a bump allocator is all a kernel
    /// needs: first from the scratch area (8-byte aligned, in memory the instance already has),
    /// then by growing memory (fresh pages are zeroed and 64 KiB aligned).
    #[unsafe(no_mangle)]
    pub extern "C" fn alloc(n_bytes: i32) -> i32 {
        if n_bytes < 0 {
            return 0;
        }
        let n = (n_bytes as usize).div_ceil(8) * 8;
        // SAFETY: wasm32 guests are single-threaded and each instance serves one request, so
        // nothing else touches these statics while `alloc` runs.
        unsafe {
            let used = core::ptr::addr_of!(SCRATCH_USED).read();
            if used + n <= SCRATCH_BYTES {
                core::ptr::addr_of_mut!(SCRATCH_USED).write(used + n);
                return (core::ptr::addr_of_mut!(SCRATCH) as usize + used) as i32;
            }
        }
        let pages = (n_bytes as usize).div_ceil(65536).max(1);
        let previous = wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return 0;
        }
        (previous * 65536) as i32
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn predict(rows_ptr: i32, n_rows: i32, n_cols: i32, out_ptr: i32) -> i32 {
        let Ok(view) = ParamView::parse(params_bytes()) else {
            return status::BAD_PARAMS;
        };
        // `memory_size` is at most 65536 pages, so in `u64` the byte count cannot wrap (in a
        // 32-bit `usize` a full 4 GiB memory would read as 0).
        let memory_bytes = wasm32::memory_size(0) as u64 * 65536;
        let regions = match checked_regions(
            memory_bytes,
            view.n_features(),
            rows_ptr,
            n_rows,
            n_cols,
            out_ptr,
        ) {
            Ok(regions) => regions,
            Err(status) => return status,
        };
        // SAFETY: `checked_regions` established, with checked arithmetic, that both regions
        // are non-null, 8-byte aligned (so aligned for `f64`), lie wholly inside linear memory
        // (which is readable and writable for the whole call: nothing shrinks it), and do not
        // overlap, so the shared and the mutable slice never alias. Any bit pattern is a valid
        // `f64`, so whatever the host wrote there may be read.
        let rows =
            unsafe { core::slice::from_raw_parts(regions.rows_at as *const f64, regions.in_len) };
        // SAFETY: as above; no other reference to the output region exists during the call.
        let out =
            unsafe { core::slice::from_raw_parts_mut(regions.out_at as *mut f64, regions.n_rows) };
        predict_rows(&view, rows, view.n_features(), out)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        wasm32::unreachable()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn sigmoid_is_stable_and_symmetric() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(3.0) + sigmoid(-3.0) - 1.0).abs() < 1e-15);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn template_block_carries_only_the_magic() {
        assert_eq!(&PARAMS.0[..16], &MAGIC);
        assert!(PARAMS.0[16..].iter().all(|b| *b == 0));
        assert!(ParamView::parse(&PARAMS.0).is_err());
    }
}
