//! The tree-ensemble kernel: gradient-boosted decision trees (XGBoost, LightGBM), `no_std`.
//!
//! Like the logistic kernel, the same code builds two ways: natively an ordinary library
//! ([`predict_rows`], the reference the importer computes its golden pairs with), and for
//! `wasm32` with the ABI v1 exports of [`guest`] around it. The model is not compiled in: the
//! template holds a [`LOCATOR`] that the artifact builder fills with the address and length of
//! a tree block (`modelhost_abi::trees`) it appends to the module's memory. Nothing of the
//! block is trusted: the view checks the header, the tree table and every node it walks.

#![no_std]

use modelhost_abi::status;
use modelhost_abi::trees::{LOCATOR_MAGIC, LOCATOR_SIZE, TreeView};

/// Where the tree block is: magic, address and length (zero in the template). Kept as one
/// `#[used]` static so it lands, whole and once, in the module's data segment.
#[used]
pub static LOCATOR: Locator = Locator(template_locator());

/// Wrapper that fixes the locator's alignment.
#[repr(C, align(8))]
pub struct Locator(pub [u8; LOCATOR_SIZE]);

const fn template_locator() -> [u8; LOCATOR_SIZE] {
    let mut locator = [0u8; LOCATOR_SIZE];
    let mut i = 0;
    while i < LOCATOR_MAGIC.len() {
        locator[i] = LOCATOR_MAGIC[i];
        i += 1;
    }
    locator
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

/// The margin of one row: the base plus every tree's leaf, summed in float32 or float64 as the
/// block says (in the framework's order: base first, then tree by tree).
pub fn margin(view: &TreeView<'_>, row: &[f64]) -> Option<f64> {
    if view.f32_sum() {
        let mut sum = view.base() as f32;
        for tree in 0..view.n_trees() {
            sum += view.leaf(tree, row).ok()? as f32;
        }
        Some(sum as f64)
    } else {
        let mut sum = view.base();
        for tree in 0..view.n_trees() {
            sum += view.leaf(tree, row).ok()?;
        }
        Some(sum)
    }
}

/// Scores `rows` (row-major, `view.n_features()` columns; NaN is a missing value) into `out`,
/// one probability per row. Returns a [`status`] code: a node the walk cannot follow is
/// [`status::BAD_PARAMS`], never a trap.
pub fn predict_rows(view: &TreeView<'_>, rows: &[f64], n_cols: usize, out: &mut [f64]) -> i32 {
    if n_cols != view.n_features() || Some(rows.len()) != out.len().checked_mul(n_cols) {
        return status::BAD_SHAPE;
    }
    if n_cols == 0 {
        // A model with no features scores every row the same; there are no columns to walk.
        let Some(m) = margin(view, &[]) else {
            return status::BAD_PARAMS;
        };
        out.fill(sigmoid(view.scale() * m));
        return status::OK;
    }
    for (row, prob) in rows.chunks_exact(n_cols).zip(out.iter_mut()) {
        let Some(m) = margin(view, row) else {
            return status::BAD_PARAMS;
        };
        *prob = sigmoid(view.scale() * m);
    }
    status::OK
}

/// The ABI v1 exports; compiled only for wasm.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub mod guest {
    use super::*;
    use core::arch::wasm32;
    use modelhost_abi::regions::checked_regions;
    use modelhost_abi::trees::read_locator;

    fn memory_bytes() -> u64 {
        // At most 65536 pages, so in `u64` the byte count cannot wrap.
        wasm32::memory_size(0) as u64 * 65536
    }

    /// The tree block the locator names, if it lies inside linear memory.
    fn block() -> Option<&'static [u8]> {
        let ptr: *const u8 = LOCATOR.0.as_ptr();
        // SAFETY: a volatile read of a local copy of a valid pointer; it yields that same
        // pointer, which the optimiser cannot see through, so the template's empty locator is
        // not folded into the code.
        let opaque = unsafe { core::ptr::read_volatile(&ptr) };
        // SAFETY: `opaque` is `LOCATOR.0.as_ptr()`, valid for LOCATOR_SIZE bytes for the whole
        // program, and the locator is never written at run time.
        let locator = unsafe { core::slice::from_raw_parts(opaque, LOCATOR_SIZE) };
        let (at, len) = read_locator(locator)?;
        if at == 0 || u64::from(at) + u64::from(len) > memory_bytes() {
            return None;
        }
        // SAFETY: the region [at, at + len) is non-null and inside linear memory, which is
        // readable for the whole call (nothing shrinks it); nothing writes the block (the
        // allocator hands out scratch below it and grown pages above it).
        Some(unsafe { core::slice::from_raw_parts(at as usize as *const u8, len as usize) })
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn abi_version() -> i32 {
        modelhost_abi::ABI_VERSION
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn info() -> i64 {
        match block().map(TreeView::parse) {
            Some(Ok(view)) => {
                let info = view.info();
                modelhost_abi::pack_ptr_len(info.as_ptr() as u32, info.len() as u32)
            }
            _ => 0,
        }
    }

    /// Bytes served from a static scratch area before memory is grown.
    const SCRATCH_BYTES: usize = 128 << 10;

    #[repr(C, align(8))]
    struct Scratch([u8; SCRATCH_BYTES]);

    static mut SCRATCH: Scratch = Scratch([0; SCRATCH_BYTES]);
    static mut SCRATCH_USED: usize = 0;

    /// A bump allocator, as the logistic kernel's: each instance serves one call and is
    /// dropped. First from the scratch area, then by growing memory (fresh pages, zeroed, 64 KiB
    /// aligned, above the tree block).
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
        let Some(Ok(view)) = block().map(TreeView::parse) else {
            return status::BAD_PARAMS;
        };
        let regions = match checked_regions(
            memory_bytes(),
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
        // are non-null, 8-byte aligned, lie wholly inside linear memory and do not overlap, so
        // the shared and the mutable slice never alias. Any bit pattern is a valid `f64`.
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
    use modelhost_abi::trees::*;
    use std::vec;

    fn node(feature: u32, left: u32, right: u32, decision: u32, value: f64) -> Node {
        Node {
            feature,
            left,
            right,
            decision,
            value,
        }
    }

    fn leaf(value: f64) -> Node {
        node(LEAF, 0, 0, 0, value)
    }

    #[test]
    fn sums_trees_from_the_base_and_applies_the_sigmoid() {
        let stump = |t: f64, lo: f64, hi: f64| EncodedTree {
            nodes: vec![node(0, 1, 2, CMP_F64_LE, t), leaf(lo), leaf(hi)],
        };
        let trees = [stump(1.0, -1.0, 1.0), stump(2.0, -0.5, 0.5)];
        let block = encode_trees(1, 0.25, 1.0, FLAG_SIGMOID, &trees, b"{}");
        let view = TreeView::parse(&block).unwrap();
        let rows = [0.0, 1.0, 1.5, 2.0, 3.0, f64::NAN];
        let mut out = [0.0; 6];
        assert_eq!(predict_rows(&view, &rows, 1, &mut out), status::OK);
        let want = [
            0.25 - 1.5,
            0.25 - 1.5,
            0.25 + 0.5,
            0.25 + 0.5,
            0.25 + 1.5,
            // NaN under MISSING_NAN without DEFAULT_LEFT: right, right.
            0.25 + 1.5,
        ];
        for (p, m) in out.iter().zip(want) {
            assert!((p - sigmoid(m)).abs() < 1e-15, "{p} {m}");
        }
        assert_eq!(
            predict_rows(&view, &rows, 2, &mut out[..3]),
            status::BAD_SHAPE
        );
    }

    #[test]
    fn a_corrupt_node_is_bad_params() {
        let trees = [EncodedTree {
            nodes: vec![node(3, 1, 2, 0, 1.0), leaf(0.0), leaf(1.0)],
        }];
        let block = encode_trees(1, 0.0, 1.0, FLAG_SIGMOID, &trees, b"{}");
        let view = TreeView::parse(&block).unwrap();
        let mut out = [0.0];
        assert_eq!(predict_rows(&view, &[0.0], 1, &mut out), status::BAD_PARAMS);
    }

    #[test]
    fn template_locator_carries_only_the_magic() {
        assert_eq!(&LOCATOR.0[..16], &LOCATOR_MAGIC);
        assert_eq!(read_locator(&LOCATOR.0), Some((0, 0)));
    }
}
