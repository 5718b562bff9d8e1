//! Fuzzing the ABI boundary: mutated and random module bytes into the loader, and generated
//! guests that hand back arbitrary pointers, statuses, outputs and info regions.

use std::sync::OnceLock;

use modelhost::model::Model;
use proptest::prelude::*;

use super::{cases, runtime};
use crate::common::{churn_artifact, fixture};

/// Valid modules to mutate: the real kernel, a served hostile model, and a small fixture.
fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        vec![
            churn_artifact("v-seed", 0.0),
            fixture("hostile/selective.wat"),
            fixture("hostile/predict_status.wat"),
        ]
    })
}

/// A seed with a few bytes overwritten, inserted or cut.
fn mutated_module() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0u8..4);
    (
        0..seeds().len(),
        prop::collection::vec(edit, 1..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(seed, edits, cut)| {
            let mut bytes = seeds()[seed].clone();
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len());
                match kind {
                    0 | 1 => bytes[i] = byte,
                    2 => bytes.insert(i, byte),
                    _ => bytes[i] ^= 1 << (byte % 8),
                }
            }
            // Now and then, truncate too.
            if cut.index(4) == 0 {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn fuzz_module_bytes_are_loaded_or_refused_never_a_crash(bytes in prop_oneof![
        4 => mutated_module(),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|tail| [b"\0asm\x01\0\0\0".as_slice(), &tail].concat()),
    ]) {
        match Model::load(runtime(), &bytes, "fuzz.wasm".into()) {
            Ok(model) => {
                // Whatever loaded passed its self-test; it may still fail on other rows, but
                // only with an error.
                let n = model.info().features.len();
                if let Ok(out) = model.predict(&vec![0.0; n]) {
                    prop_assert!(out.iter().all(|p| (0.0..=1.0).contains(p)));
                }
            }
            Err(error) => {
                prop_assert!(!error.reason().is_empty());
                prop_assert!(!error.to_string().is_empty());
            }
        }
    }
}

/// What a generated guest hands back.
#[derive(Debug, Clone)]
struct GuestAnswers {
    in_ptr: i32,
    out_ptr: i32,
    status: i32,
    output_bits: u64,
}

/// Pointers around the interesting places of a one-page memory, and anything else.
fn guest_pointer() -> impl Strategy<Value = i32> {
    prop_oneof![
        1 => Just(0),
        4 => (1i32..8192).prop_map(|p| p * 8),
        1 => 65_500i32..65_600,
        1 => any::<i32>(),
    ]
}

fn guest_answers() -> impl Strategy<Value = GuestAnswers> {
    (
        guest_pointer(),
        guest_pointer(),
        prop_oneof![4 => Just(0), 1 => any::<i32>()],
        prop_oneof![
            (0.0..=1.0f64).prop_map(f64::to_bits),
            prop::sample::select(vec![
                f64::NAN,
                f64::INFINITY,
                -0.0,
                -1e-300,
                1.0 + f64::EPSILON
            ])
            .prop_map(f64::to_bits),
            any::<u64>(),
        ],
    )
        .prop_map(|(in_ptr, out_ptr, status, output_bits)| GuestAnswers {
            in_ptr,
            out_ptr,
            status,
            output_bits,
        })
}

const MINIMAL_INFO: &str = r#"{"name":"fuzz","version":"v-fuzz","task":"binary-classification","features":[{"name":"x","kind":"number","min":0,"max":1}],"outputs":["p"],"threshold":0.5,"golden":[{"input":[0.5],"probability":0.5}]}"#;

/// A one-page guest whose `alloc` returns `in_ptr` then `out_ptr`, whose `predict` stores
/// `output_bits` at the output (trapping if that is outside memory) and returns `status`, and
/// whose `info` returns `info` (pointer, length).
fn guest_wat(answers: &GuestAnswers, info: (u32, u32)) -> String {
    let escaped = MINIMAL_INFO.replace('"', "\\\"");
    let packed = (u64::from(info.1) << 32) | u64::from(info.0);
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 1024) "{escaped}")
  (global $calls (mut i32) (i32.const 0))
  (func (export "abi_version") (result i32) i32.const 1)
  (func (export "info") (result i64) i64.const {packed})
  (func (export "alloc") (param i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.eq (global.get $calls) (i32.const 1))
      (then i32.const {in_ptr})
      (else i32.const {out_ptr})))
  (func (export "predict") (param i32 i32 i32 i32) (result i32)
    (i64.store (local.get 3) (i64.const {bits}))
    i32.const {status}))"#,
        in_ptr = answers.in_ptr,
        out_ptr = answers.out_ptr,
        bits = answers.output_bits as i64,
        status = answers.status,
    )
}

/// The reason the host must give for `answers` on a one-row, one-column call, or `None` when
/// the answer is a valid probability.
fn expected_reason(answers: &GuestAnswers) -> Option<&'static str> {
    let address = |ptr: i32| i64::from(ptr as u32);
    let inside = |ptr: i32| address(ptr) + 8 <= 65_536;
    let value = f64::from_bits(answers.output_bits);
    if answers.in_ptr == 0 {
        Some("alloc_failed")
    } else if !inside(answers.in_ptr) {
        Some("out_of_bounds")
    } else if answers.out_ptr == 0 {
        Some("alloc_failed")
    } else if !inside(answers.out_ptr)
        || (address(answers.in_ptr) - address(answers.out_ptr)).abs() < 8
    {
        Some("out_of_bounds")
    } else if answers.status != 0 {
        Some("status")
    } else if !(0.0..=1.0).contains(&value) {
        Some("bad_output")
    } else {
        None
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn fuzz_guest_pointers_statuses_and_outputs_are_checked(answers in guest_answers()) {
        let wasm = wat::parse_str(guest_wat(&answers, (1024, MINIMAL_INFO.len() as u32))).unwrap();
        let guest = runtime().load(&wasm).unwrap();
        let result = guest.predict(&[0.5]);
        match (expected_reason(&answers), result) {
            (None, Ok(out)) => prop_assert_eq!(out, vec![f64::from_bits(answers.output_bits)]),
            (Some(reason), Err(error)) => prop_assert_eq!(reason, error.reason(), "{}", error),
            (expected, got) => prop_assert!(false, "expected {:?}, got {:?}", expected, got),
        }
    }

    #[test]
    fn fuzz_info_pointers_are_bounds_checked(
        ptr in prop_oneof![Just(1024u32), 0u32..70_000, any::<u32>()],
        len in prop_oneof![Just(MINIMAL_INFO.len() as u32), 0u32..70_000, any::<u32>()],
    ) {
        let answers = GuestAnswers { in_ptr: 8, out_ptr: 16, status: 0, output_bits: 0 };
        let wasm = wat::parse_str(guest_wat(&answers, (ptr, len))).unwrap();
        match runtime().load(&wasm) {
            Ok(guest) => prop_assert_eq!(guest.info().version.as_str(), "v-fuzz"),
            Err(error) => {
                prop_assert_eq!(error.reason(), "info", "{}", error);
                prop_assert!((ptr, len) != (1024, MINIMAL_INFO.len() as u32), "{}", error);
            }
        }
    }
}
