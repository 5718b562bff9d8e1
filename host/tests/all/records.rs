//! Registry records and history lines written by earlier versions of modelhost still read:
//! `tests/fixtures/registry-v1` holds one of each kind, and what `versions` printed for it.

use std::path::{Path, PathBuf};

use crate::train::cli;

fn fixture_registry() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry-v1")
}

#[test]
fn versions_prints_the_fixture_registry_as_it_did_when_it_was_written() {
    let registry = fixture_registry();
    for (args, expected) in [
        (&[][..], "versions.txt"),
        (&["--json"][..], "versions.json"),
    ] {
        let mut all = vec!["versions", "--registry-dir", registry.to_str().unwrap()];
        all.extend_from_slice(args);
        let run = cli(&all);
        assert_eq!(run.code, Some(0), "{run:?}");
        let expected = std::fs::read_to_string(registry.join(expected)).unwrap();
        assert_eq!(run.stdout, expected, "versions {args:?}");
    }
}
