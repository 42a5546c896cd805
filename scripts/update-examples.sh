#!/usr/bin/env bash
# Regenerates examples/platform/ (a platform repository as `goldenpath scaffold` + `goldenpath contract render`
# produce it from examples/contracts/). A test fails when the committed tree drifts from what the code generates.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build -q --locked -p goldenpath
gp="$root/target/debug/goldenpath"
out="$root/examples/platform"
"$gp" scaffold --out "$out" --config examples/contracts/goldenpath.toml
(cd examples/contracts && "$gp" contract render --out "$out/gitops")
