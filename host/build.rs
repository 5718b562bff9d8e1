//! Builds the logistic-regression kernel (`models-wasm/logreg`) for `wasm32-unknown-unknown` and
//! hands its path to the crate as `KERNEL_TEMPLATE_WASM`, so that a plain `cargo build` on a clean
//! clone produces everything, the wasm template included.
//!
//! The kernel is built by a nested `cargo rustc` into its own target directory (sharing the
//! outer one would deadlock on cargo's build lock). Source paths are remapped so the template —
//! and therefore every artifact built from it — has the same bytes on every machine.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let kernel_dir = workspace.join("models-wasm");
    println!("cargo:rerun-if-changed={}", kernel_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let out_dir = PathBuf::from(env("OUT_DIR"));
    let target_dir = out_dir.join("kernel-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));

    let rustflags = [
        format!("--remap-path-prefix={}=/modelhost", workspace.display()),
        format!("--remap-path-prefix={cargo_home}=/cargo"),
        // Keep the shadow stack small: a kernel needs a few KiB, and a smaller initial memory
        // makes every fresh instance cheaper.
        "-Clink-arg=-zstack-size=65536".to_string(),
    ]
    .join("\x1f");

    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "rustc",
            "--package",
            "modelhost-logreg",
            "--lib",
            "--crate-type",
            "cdylib",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-kernel",
            "--locked",
            "--quiet",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    // Variables the outer build sets for this build script must not leak into the inner build.
    for var in [
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("failed to run cargo for the wasm kernel");
    if !status.success() {
        panic!(
            "building the wasm kernel failed; is the wasm32-unknown-unknown target installed? \
             (rust-toolchain.toml lists it; `rustup target add wasm32-unknown-unknown` adds it by hand)"
        );
    }
    let wasm = target_dir.join("wasm32-unknown-unknown/wasm-kernel/modelhost_logreg.wasm");
    assert_file(&wasm);
    println!("cargo:rustc-env=KERNEL_TEMPLATE_WASM={}", wasm.display());
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

fn assert_file(path: &Path) {
    if !path.is_file() {
        panic!("the kernel build did not produce {}", path.display());
    }
}
