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

# A docker-registry on a free loopback port, data under $1, access log on when $2 is `true` (into $1/registry.log);
# stopped by PID when the script exits. Sets `reg` (host:port).
loopback_registry() {
  local dir=$1 access=${2:-false} port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: $([ "$access" = true ] && echo false || echo true)}}
storage: {filesystem: {rootdirectory: $dir/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  reg_pid=$!
  trap 'kill $reg_pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  reg="127.0.0.1:$port"
}
