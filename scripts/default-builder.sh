#!/usr/bin/env bash
# The default builder for the tests, benchmarks and the main job: `goldenpath builder default` with its cache
# (the default stack, made with mmdebstrap once per stack definition, and the builder, once per input) kept
# under .cache/goldenpath in the checkout. Prints the builder reference (oci:PATH:TAG). Needs root or rootless
# mmdebstrap, and Debian mirrors reachable (the machine's APT sources).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
gp="${GP:-$root/target/release/goldenpath}"
[ -x "$gp" ] || cargo build --release --locked -q -p goldenpath
GOLDENPATH_CACHE_DIR="$root/.cache/goldenpath" "$gp" builder default
