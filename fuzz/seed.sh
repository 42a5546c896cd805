#!/usr/bin/env bash
# Seeds the fuzz corpora from the example contracts and configs (corpus directories are not committed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/corpus/contract_check" "$here/corpus/platform_config"
find "$here/../examples" -name '*.yaml' -exec cp -t "$here/corpus/contract_check" {} + 2>/dev/null || true
i=0
for f in $(find "$here/../examples" -name '*.yaml' | sort); do i=$((i+1)); cp "$f" "$here/corpus/contract_check/seed-$i.yaml"; done
i=0
for f in $(find "$here/../examples" -name 'goldenpath.toml' | sort); do i=$((i+1)); cp "$f" "$here/corpus/platform_config/seed-$i.toml"; done
