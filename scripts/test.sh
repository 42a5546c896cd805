#!/usr/bin/env bash
# Every test GoldenPath has: formatting, lints, unit/integration/snapshot tests and the real external validators.
# Installs what it needs first (Debian packages, PyPI and npm tools). CI runs exactly this (`.ci/run`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh
export PATH="$root/.cache/tools/node_modules/.bin:$PATH"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy (pedantic, warnings denied)" >&2
cargo clippy --workspace --all-targets --locked -q -- -D warnings
echo "== cargo doc (warnings denied)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked -q
echo "== cargo test --workspace" >&2
cargo test --workspace --locked 2>&1 | tee .cache/test.log | grep -E '^(test result|running|error|failures|---- )|panicked' >&2 || true
if grep -qE '^test result: FAILED|^error(\[|:)' .cache/test.log; then
  echo "tests failed: see .cache/test.log" >&2
  exit 1
fi
passed=$(grep -oE 'test result: ok\. [0-9]+ passed' .cache/test.log | awk '{s+=$4} END {print s+0}')
echo "$passed passed, 0 failed"
