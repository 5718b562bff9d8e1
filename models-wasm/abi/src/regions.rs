//! Where a kernel's `predict` may read its rows and write its probabilities: the argument
//! checks every kernel runs before it touches memory.

use crate::status;

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
/// `#[inline]`, so a kernel compiles it into its own code as when it was the kernel's function:
/// the committed templates' bytes do not depend on which crate holds it.
#[inline]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
