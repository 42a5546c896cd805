#!/usr/bin/env bash
# The main job on embedded defaults: build GoldenPath, validate the example contracts repository, and show what a
# broken contract looks like. Needs no cloud account and no cluster.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -q -p goldenpath
gp="$root/target/release/goldenpath"

echo "== goldenpath contract validate  (examples/contracts: the example contracts repository)" >&2
(cd examples/contracts && "$gp" contract validate)

echo >&2
echo "== a contract with mistakes people make (examples/contracts-invalid/memory-millibytes)" >&2
"$gp" contract validate examples/contracts-invalid/memory-millibytes || echo "(exit $?: invalid, as expected)" >&2
