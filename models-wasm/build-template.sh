#!/usr/bin/env bash
# Builds the kernels (models-wasm/logreg, models-wasm/trees) for wasm32-unknown-unknown and
# compares them with, or writes them to, the committed templates that artifacts are built from:
#
#   models-wasm/build-template.sh --check   # exit 1 if committed bytes differ from a fresh build
#   models-wasm/build-template.sh --write   # after a change to a kernel or the ABI crate
#
# The templates are committed so that a plain `cargo build` needs no wasm target. Building
# them needs one: `rustup target add wasm32-unknown-unknown --toolchain 1.95.0` (the toolchain pinned
# in rust-toolchain.toml; another rustc would give other bytes). Source paths are remapped so
# the bytes are the same on every machine and in every checkout.
set -euo pipefail
mode=${1:-}
if [[ $mode != --check && $mode != --write ]]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 64
fi
workspace=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${KERNEL_TARGET_DIR:-${CARGO_TARGET_DIR:-$workspace/target}/kernel-template}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "build-template: the wasm32-unknown-unknown target is not installed;" \
    "add it with: rustup target add wasm32-unknown-unknown --toolchain 1.95.0" >&2
  exit 2
fi

# One argument per line of CARGO_ENCODED_RUSTFLAGS (0x1f-separated), as cargo expects.
flags=(
  "--remap-path-prefix=$workspace=/modelhost"
  "--remap-path-prefix=$cargo_home=/cargo"
  # A kernel needs a few KiB of shadow stack; a smaller initial memory makes every fresh
  # instance cheaper.
  "-Clink-arg=-zstack-size=65536"
)
encoded=$(IFS=$'\x1f'; echo "${flags[*]}")

cd "$workspace"
status=0
for kernel in logreg trees; do
  name=modelhost_$kernel
  committed=$workspace/models-wasm/$kernel/template/$name.wasm
  env -u RUSTFLAGS -u RUSTC_WRAPPER -u RUSTC_WORKSPACE_WRAPPER -u CARGO_BUILD_TARGET \
    CARGO_ENCODED_RUSTFLAGS="$encoded" \
    cargo rustc --package "modelhost-$kernel" --lib --crate-type cdylib \
    --target wasm32-unknown-unknown --profile wasm-kernel --locked --quiet \
    --target-dir "$target_dir"
  fresh=$target_dir/wasm32-unknown-unknown/wasm-kernel/$name.wasm

  if [[ $mode == --write ]]; then
    cp "$fresh" "$committed"
    echo "build-template: wrote $(wc -c <"$committed") bytes to ${committed#"$workspace"/}" \
      "(sha256 $(sha256sum "$committed" | cut -c1-16))"
  elif cmp -s "$fresh" "$committed"; then
    echo "build-template: ${committed#"$workspace"/} equals a fresh build" \
      "($(wc -c <"$committed") bytes, sha256 $(sha256sum "$committed" | cut -c1-16))"
  else
    echo "build-template: ${committed#"$workspace"/} differs from a fresh build" \
      "(committed $(wc -c <"$committed" 2>/dev/null || echo 0) bytes, fresh $(wc -c <"$fresh"));" \
      "run models-wasm/build-template.sh --write and commit the result" >&2
    status=1
  fi
done
exit $status
