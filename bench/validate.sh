#!/usr/bin/env bash
# Benchmark: validate 10,000 generated contracts with `goldenpath contract validate` and with check-jsonschema
# (same files, same committed schema), side by side in one run. Prints a markdown table.
set -euo pipefail
source "$(dirname "$0")/common.sh"
python3 -m pip show -q check-jsonschema >/dev/null 2>&1 || python3 -m pip install -q check-jsonschema
schema="$root/schemas/requests/app-deployment.schema.json"
contract_tree
find "$tree" -name '*.yaml' | sort > /tmp/gp-bench-files
count=$(wc -l < /tmp/gp-bench-files)

"$gp" contract validate "$tree" >/dev/null 2>&1 || { echo "generated contracts do not validate" >&2; exit 1; }
read -r gp_t gp_m < <(measure "$gp" contract validate "$tree")
# check-jsonschema gets every path in one invocation (one process, like ours).
read -r cj_t cj_m < <(measure sh -c "xargs -a /tmp/gp-bench-files check-jsonschema --schemafile '$schema'")
ratio=$(awk "BEGIN{printf \"%.1f\", $cj_t / ($gp_t > 0 ? $gp_t : 0.01)}")

echo
echo "Validate $count contracts ($(nproc) cores; best of 3 wall-clock runs)"
echo
echo "| tool | files | wall time (s) | peak RSS (MiB) | ratio |"
echo "|---|---|---|---|---|"
echo "| goldenpath contract validate | $count | $gp_t | $((gp_m / 1024)) | 1.0x |"
echo "| check-jsonschema (same schema, one process) | $count | $cj_t | $((cj_m / 1024)) | goldenpath is ${ratio}x faster |"
echo
echo "goldenpath also checks what the schema cannot (policy, uniqueness, file layout); targets: < 1 s, >= 20x."
