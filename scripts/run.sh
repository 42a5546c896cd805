#!/usr/bin/env bash
# The main job on embedded defaults: build GoldenPath, validate the example contracts repository, render it into a
# GitOps tree (kpack Images, build workflows, Argo CD Applications, runtime manifests) and show what was written.
# Needs no cloud account and no cluster.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --locked -q -p goldenpath
gp="$root/target/release/goldenpath"
out="$root/.cache/demo/gitops"

echo "== goldenpath contract validate   (examples/contracts: the example contracts repository)" >&2
(cd examples/contracts && "$gp" contract validate)

echo >&2
echo "== goldenpath contract render --out $out" >&2
(cd examples/contracts && "$gp" contract render --out "$out")
echo >&2
echo "== the GitOps tree" >&2
(cd "$out" && find . -type f ! -path './.goldenpath/*' | sort | sed 's|^\./|  |') >&2
echo >&2
echo "== $out/apps/dev/payments-api/kpack-image.yaml" >&2
cat "$out/apps/dev/payments-api/kpack-image.yaml" >&2

echo >&2
echo "== a contract with a mistake people make (examples/contracts-invalid/memory-millibytes)" >&2
"$gp" contract validate examples/contracts-invalid/memory-millibytes || echo "(exit $?: invalid, as expected)" >&2
