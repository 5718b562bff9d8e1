//! The logistic-regression kernel: standardisation + one-hot + logistic regression, `no_std`.
//!
//! The same code builds two ways. Natively it is an ordinary library ([`predict_rows`]), which
//! the host's tests use as the reference. For `wasm32` the [`guest`] module adds the ABI v1
//! exports around it, reading the fitted parameters from [`PARAMS`], a fixed-size block that the
//! artifact builder overwrites in a copy of the compiled template. This crate knows nothing of
//! the host or of any wasm runtime.

#![no_std]

use modelhost_abi::params::{BLOCK_SIZE, FeatureParams, MAGIC, ParamView};
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

/// Where `predict` may read its rows and write its probabilities, as byte offsets into linear
/// memory and element counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    /// Offset of the first input `f64`.
    pub rows_at: usize,
    /// Number of input `f64`s (`n_rows * n_cols`).
    pub in_len: usize,
    /// Offset of the first output `f64`.
    pub out_at: usize,
    /// Number of output `f64`s (`n_rows`).
    pub n_rows: usize,
}

/// Checks `predict`'s arguments against the model and a linear memory of `memory_bytes`, in
/// this order: a negative count or a column count other than the model's is [`status::BAD_SHAPE`];
/// a null or misaligned pointer is [`status::BAD_POINTER`]; so is a region that does not lie
/// inside memory, or input and output regions that overlap. Sizes are computed in `u64` with
/// checked arithmetic, so a length that would wrap a 32-bit `usize` (`n_rows * 8` for
/// `n_rows` ≥ 2²⁹, say) is refused instead of passing as a small one; a size beyond `u64` is
/// [`status::BAD_SHAPE`].
///
/// The same code runs natively (the tests) and in the guest, so what the tests check is what
/// the guest checks.
pub fn checked_regions(
    memory_bytes: u64,
    n_features: usize,
    rows_ptr: i32,
    n_rows: i32,
    n_cols: i32,
    out_ptr: i32,
) -> Result<Regions, i32> {
    if n_rows < 0 || n_cols < 0 || n_cols as u64 != n_features as u64 {
        return Err(status::BAD_SHAPE);
    }
    if rows_ptr <= 0 || out_ptr <= 0 || rows_ptr % 8 != 0 || out_ptr % 8 != 0 {
        return Err(status::BAD_POINTER);
    }
    let (n_rows, n_cols) = (n_rows as u64, n_cols as u64);
    let (rows_at, out_at) = (rows_ptr as u64, out_ptr as u64);
    let in_len = n_rows.checked_mul(n_cols).ok_or(status::BAD_SHAPE)?;
    let in_bytes = in_len.checked_mul(8).ok_or(status::BAD_SHAPE)?;
    let out_bytes = n_rows.checked_mul(8).ok_or(status::BAD_SHAPE)?;
    // Neither end can overflow: both terms are below 2^31 * 2^34.
    let (in_end, out_end) = (rows_at + in_bytes, out_at + out_bytes);
    if in_end > memory_bytes || out_end > memory_bytes {
        return Err(status::BAD_POINTER);
    }
    let disjoint = in_bytes == 0 || out_bytes == 0 || in_end <= out_at || out_end <= rows_at;
    if !disjoint {
        return Err(status::BAD_POINTER);
    }
    // Every value is at most `memory_bytes`, itself at most 2^32 on wasm32, and the counts are
    // an eighth of byte sizes below it: all fit a `usize`, checked rather than assumed.
    let fit = |x: u64| usize::try_from(x).map_err(|_| status::BAD_POINTER);
    Ok(Regions {
        rows_at: fit(rows_at)?,
        in_len: fit(in_len)?,
        out_at: fit(out_at)?,
        n_rows: fit(n_rows)?,
    })
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
    fn lengths_that_would_wrap_a_32_bit_usize_are_refused() {
        const PAGE: u64 = 65536;
        let ok = checked_regions(PAGE, 5, 8, 10, 5, 8 + 10 * 5 * 8);
        assert_eq!(
            ok,
            Ok(Regions {
                rows_at: 8,
                in_len: 50,
                out_at: 408,
                n_rows: 10
            })
        );
        // n_rows * 8 = 2^32 + 8, which a 32-bit usize wraps to 8: the output would "fit".
        let n_rows = (1 << 29) + 1;
        assert_eq!(
            checked_regions(PAGE, 1, 8, n_rows, 1, 16),
            Err(status::BAD_POINTER)
        );
        // in_len * 8 = 2^32 exactly (2^28 rows of 2 columns), which wraps to 0.
        assert_eq!(
            checked_regions(PAGE, 2, 8, 1 << 28, 2, 16),
            Err(status::BAD_POINTER)
        );
        // i32::MAX rows of i32::MAX columns is more bytes than a u64 counts: a shape error.
        assert_eq!(
            checked_regions(1 << 32, i32::MAX as usize, 8, i32::MAX, i32::MAX, 16),
            Err(status::BAD_SHAPE)
        );
        // A full 4 GiB memory (65536 pages) is 2^32 bytes, not 0: a region inside it fits.
        assert!(checked_regions(1 << 32, 1, 8, 1 << 20, 1, 16 << 20).is_ok());
    }

    #[test]
    fn the_column_count_is_checked_first_and_regions_must_be_disjoint() {
        const PAGE: u64 = 65536;
        // A wrong column count is a shape error even when the pointers are bad too.
        assert_eq!(checked_regions(PAGE, 5, 0, 1, 4, 3), Err(status::BAD_SHAPE));
        assert_eq!(
            checked_regions(PAGE, 5, 8, -1, 5, 8),
            Err(status::BAD_SHAPE)
        );
        assert_eq!(
            checked_regions(PAGE, 5, 8, 1, -5, 8),
            Err(status::BAD_SHAPE)
        );
        for (rows_ptr, out_ptr) in [(0, 64), (64, 0), (12, 64), (64, 12), (-8, 64)] {
            assert_eq!(
                checked_regions(PAGE, 1, rows_ptr, 1, 1, out_ptr),
                Err(status::BAD_POINTER),
                "{rows_ptr} {out_ptr}"
            );
        }
        // Output overlapping the input, or ending past memory.
        assert_eq!(
            checked_regions(PAGE, 2, 8, 4, 2, 40),
            Err(status::BAD_POINTER)
        );
        assert_eq!(
            checked_regions(PAGE, 1, 8, 1, 1, PAGE as i32),
            Err(status::BAD_POINTER)
        );
        assert!(checked_regions(PAGE, 1, 8, 1, 1, PAGE as i32 - 8).is_ok());
        // No rows: empty regions anywhere inside memory.
        assert!(checked_regions(PAGE, 3, 8, 0, 3, 8).is_ok());
    }

    #[test]
    fn template_block_carries_only_the_magic() {
        assert_eq!(&PARAMS.0[..16], &MAGIC);
        assert!(PARAMS.0[16..].iter().all(|b| *b == 0));
        assert!(ParamView::parse(&PARAMS.0).is_err());
    }
}
