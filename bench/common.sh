# Shared by the bench scripts: build, generated contract tree, measurement.
# shellcheck shell=bash
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
N=${N:-10000}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --locked -q -p goldenpath
gp="$root/target/release/goldenpath"

# The generated contracts repository, cached by the generator's and the config's content.
contract_tree() {
  local key
  key=$(cat bench/gen_contracts.py examples/contracts/goldenpath.toml | sha256sum | cut -c1-12)
  tree="$root/.cache/bench/contracts-$N-$key"
  if [ ! -d "$tree" ]; then
    echo "generating $N contracts in $tree" >&2
    python3 bench/gen_contracts.py "$N" "$tree" examples/contracts/goldenpath.toml
  fi
}

# best wall time (s) of 3 runs and peak RSS (KiB) of a command; output discarded
measure() {
  local best="" rss=0 t m
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o /tmp/gp-bench-time "$@" >/dev/null 2>&1 || true
    read -r t m < /tmp/gp-bench-time
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  echo "$best $rss"
}
