#!/usr/bin/env python3
"""Names every crate whose features differ between `cargo build` and `cargo test`.

Cargo resolves features without the dev-dependencies for a build and with them for tests; a
crate whose set differs compiles twice, and so does everything above it (serde_derive through
syn, and then wasmtime and cranelift). host/Cargo.toml switches those features on for every
build; this check says which are missing. Exit 1 when any set differs.
"""
import re
import subprocess
import sys


def feature_sets(edges):
    out = subprocess.run(
        ["cargo", "tree", "--workspace", "--locked", "-e", edges, "-f", "{p}|{f}", "--prefix", "none"],
        check=True, capture_output=True, text=True,
    ).stdout
    sets = {}
    for line in out.splitlines():
        line = line.replace(" (*)", "").strip()
        if "|" not in line:
            continue
        package, features = line.split("|", 1)
        package = re.sub(r" \(/[^)]*\)", "", package)  # workspace members' paths
        sets.setdefault(package, set()).update(f for f in features.split(",") if f)
    return sets


build = feature_sets("normal,build")
test = feature_sets("normal,build,dev")
differ = [(p, sorted(test[p] - build[p])) for p in sorted(build) if build[p] != test.get(p, build[p])]
for package, extra in differ:
    print(f"{package}: `cargo test` adds features {', '.join(extra)}")
if differ:
    print(f"{len(differ)} crates would compile twice; add their features in host/Cargo.toml")
    sys.exit(1)
print(f"feature sets: the {len(build)} crates of `cargo build` resolve alike for `cargo test`")
