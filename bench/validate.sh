#!/usr/bin/env bash
# Benchmark: validate 10,000 generated contracts with `goldenpath contract validate` and with check-jsonschema
# (same files, same committed schema), side by side in one run. Prints a markdown table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-10000}
python3 -m pip show -q check-jsonschema >/dev/null 2>&1 || python3 -m pip install -q check-jsonschema
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --locked -q -p goldenpath
gp="$root/target/release/goldenpath"
schema="$root/schemas/requests/app-deployment.schema.json"

key=$(cat bench/gen_contracts.py examples/contracts/goldenpath.toml | sha256sum | cut -c1-12)
tree="$root/.cache/bench/contracts-$N-$key"
if [ ! -d "$tree" ]; then
  echo "generating $N contracts in $tree" >&2
  python3 bench/gen_contracts.py "$N" "$tree" examples/contracts/goldenpath.toml
fi
files=$(find "$tree" -name '*.yaml' | sort)
count=$(echo "$files" | wc -l)

# best wall time of 3 runs and peak RSS (KiB) of a command
measure() {
  local best="" rss=0
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o /tmp/gp-bench-time "$@" >/dev/null 2>&1 || true
    read -r t m < /tmp/gp-bench-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}

"$gp" contract validate "$tree" >/dev/null 2>&1 || { echo "generated contracts do not validate" >&2; "$gp" contract validate "$tree" | tail -5; exit 1; }
read -r gp_t gp_m < <(measure "$gp" contract validate "$tree")
# check-jsonschema gets every path in one invocation (one process, like ours).
echo "$files" > /tmp/gp-bench-files
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
