#!/usr/bin/env python3
"""Names every crate that `cargo test` would compile again after `cargo build` (or `cargo run`).

Two ways a dependency compiles twice, and with it everything above it (serde_derive through
syn, and then wasmtime and cranelift):

1. Its features differ. Cargo resolves features without the dev-dependencies for a build and
   with them for tests. host/Cargo.toml switches those features on for every build; this check
   says which are missing.
2. A build needs it only at build time (under a build script or a proc macro) and a test at run
   time too. Cargo builds the first with the `build-override` profile and the second with the
   package profile: different units. The fix is to keep such dev-dependencies out of the
   workspace (tools/grpc-codegen is its own workspace for that reason).

Exit 1 when either is found.
"""
import re
import subprocess
import sys


def cargo_tree(edges, fmt):
    return subprocess.run(
        ["cargo", "tree", "--workspace", "--locked", "-e", edges, "-f", fmt, "--prefix", "none"],
        check=True, capture_output=True, text=True,
    ).stdout


def packages(edges):
    """Every package reachable over `edges`, as name and version."""
    names = set()
    for line in cargo_tree(edges, "{p}").splitlines():
        line = re.sub(r" \((\*|proc-macro|/[^)]*)\)", "", line).strip()
        if line:
            names.add(line)
    return names


def feature_sets(edges):
    out = cargo_tree(edges, "{p}|{f}")
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
build_time_only = packages("normal,build") - packages("normal,no-proc-macro")
run_time_in_tests = packages("normal,dev,no-proc-macro")
twice = sorted(build_time_only & run_time_in_tests)
for package in twice:
    print(f"{package}: a build needs it only to build; a dev-dependency needs it at run time")
if differ:
    print(f"{len(differ)} crates would compile twice; add their features in host/Cargo.toml")
if twice:
    print(f"{len(twice)} crates would compile twice; move the dev-dependency that runs them "
          "out of the workspace")
if differ or twice:
    sys.exit(1)
print(f"feature sets: the {len(build)} crates of `cargo build` resolve alike for `cargo test`, "
      f"and none of its {len(build_time_only)} build-time crates runs in a test")
