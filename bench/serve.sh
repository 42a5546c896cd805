#!/usr/bin/env bash
# Benchmark: `goldenpath serve`.
#  1. Overhead of the loop: a signed push webhook to the new version answering through the app's port, minus the
#     same one-line-change build run alone (`goldenpath build` with the same builder, run image and a copy of the
#     same layer cache). What is left is the service's own share: webhook, queue, checkout, start of the new
#     container, readiness wait, switch. Target: under 1 s. Three rounds, alternating, medians.
#  2. Idle cost: 100 apps (static sites from one repository, each its own contract), built and running; then two
#     minutes with nothing changing at the default intervals (`git ls-remote` per app every 60 s, the run image
#     every 60 s). CPU of the service process (its own and its `git` children's) over the window, and its memory.
#     Target: under 1% of a core, under 100 MiB. The apps' own containers are not the service and are not counted.
# Needs root (runc). Prints a markdown table.
set -euo pipefail
source "$(dirname "$0")/common.sh"
bash scripts/install-deps.sh >/dev/null
export GOLDENPATH_CACHE_DIR="${GOLDENPATH_CACHE_DIR:-$root/.cache/goldenpath}"
w="$root/.cache/bench/serve"
rm -rf "$w" && mkdir -p "$w"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
git_c() { git -C "$1" -c user.name=bench -c user.email=bench@example.com "${@:2}"; }
contract() { # dir id app url
  cat > "$1/APP-$2.yaml" <<YAML
apiVersion: goldenpath.io/v1
kind: AppDeploymentRequest
id: APP-$2
environment: dev
owner: bench
application: $3
spec:
  source:
    git:
      url: $4
      branch: main
  build:
    type: buildpack
  runtime:
    replicas: 1
YAML
}
serve_pid=""
stop_serve() {
  [ -n "$serve_pid" ] && { kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true; }
  serve_pid=""
}
trap stop_serve EXIT
wait_apps() { # port count
  for _ in $(seq 3600); do
    n=$(curl -fsS "http://127.0.0.1:$1/api/apps" 2>/dev/null | python3 -c 'import json,sys; print(sum(a["status"]=="running" for a in json.load(sys.stdin)))' 2>/dev/null || echo 0)
    [ "$n" -ge "$2" ] && return 0
    kill -0 "$serve_pid" 2>/dev/null || { tail -20 "$w"/*.log >&2; exit 1; }
    sleep 1
  done
  echo "the apps did not come up" >&2; exit 1
}

# --- 1. webhook -> new version, minus the build alone
mkdir -p "$w/one/git" "$w/one/contracts/docs/20-contracts/app-deployments/dev"
cp examples/contracts/goldenpath.toml "$w/one/contracts/"
cp -r examples/apps/python-flask "$w/one/git/flask"
git_c "$w/one/git/flask" init -q -b main && git_c "$w/one/git/flask" add -A && git_c "$w/one/git/flask" commit -qm app
contract "$w/one/contracts/docs/20-contracts/app-deployments/dev" 0001 flask https://github.com/bench/flask
echo bench-secret > "$w/one/secret"
port=$(free_port) app_port=$(free_port)
cat > "$w/one/serve.toml" <<TOML
contracts = "contracts"
listen = "127.0.0.1:$port"
state = "state"
poll_seconds = 3600
port_base = $app_port
webhook_secret_file = "secret"
[git_rewrite]
"https://github.com/bench/" = "$w/one/git/"
TOML
"$gp" serve --config "$w/one/serve.toml" > "$w/one.log" 2>&1 &
serve_pid=$!
echo "serve: first build of the Flask app" >&2
wait_apps "$port" 1
builder=$(GP="$gp" bash scripts/default-builder.sh)
loop_s=() alone_s=()
for round in 1 2 3; do
  # Through the service: commit, signed webhook, until the new answer.
  sed -i "s/message=\"[^\"]*\"/message=\"round $round\"/" "$w/one/git/flask/app.py"
  git_c "$w/one/git/flask" commit -qam "round $round"
  rev=$(git -C "$w/one/git/flask" rev-parse HEAD)
  body="{\"ref\":\"refs/heads/main\",\"after\":\"$rev\",\"repository\":{\"clone_url\":\"https://github.com/bench/flask.git\"}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac bench-secret | sed 's/^.* //')
  s=$(now)
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/webhook" -H "X-GitHub-Event: push" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body"
  until curl -fsS "http://127.0.0.1:$app_port/" 2>/dev/null | grep -q "round $round"; do sleep 0.02; done
  e=$(now)
  loop_s+=("$(awk "BEGIN{printf \"%.2f\", $e - $s}")")
  # The same kind of change built alone: the next revision, the service's layer cache copied, same builder.
  sed -i "s/message=\"[^\"]*\"/message=\"alone $round\"/" "$w/one/git/flask/app.py"
  git_c "$w/one/git/flask" commit -qam "alone $round"
  rm -rf "$w/alone-src" "$w/alone-cache"
  git clone -q "$w/one/git/flask" "$w/alone-src"
  cp -a "$w/one/state/cache/flask" "$w/alone-cache"
  s=$(now)
  "$gp" build "oci:$w/alone-images:flask" --builder "$builder" --cache "$w/alone-cache" --path "$w/alone-src" \
    > "$w/alone.log" 2>&1
  e=$(now)
  alone_s+=("$(awk "BEGIN{printf \"%.2f\", $e - $s}")")
  # Let the service see that revision too, so the next round starts from the same state.
  git_c "$w/one/git/flask" reset -q --hard HEAD~1
done
stop_serve
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
loop_m=$(median "${loop_s[@]}") alone_m=$(median "${alone_s[@]}")
overhead=$(awk "BEGIN{printf \"%.2f\", $loop_m - $alone_m}")

# --- 2. 100 apps idle
N=${SERVE_APPS:-100}
mkdir -p "$w/many/git" "$w/many/contracts/docs/20-contracts/app-deployments/dev"
cp examples/contracts/goldenpath.toml "$w/many/contracts/"
cp -r examples/apps/static "$w/many/git/site"
git_c "$w/many/git/site" init -q -b main && git_c "$w/many/git/site" add -A && git_c "$w/many/git/site" commit -qm site
for i in $(seq 1 "$N"); do
  contract "$w/many/contracts/docs/20-contracts/app-deployments/dev" "$(printf %04d "$i")" "site-$i" "https://github.com/bench/site"
done
port=$(free_port) app_port=$(free_port)
cat > "$w/many/serve.toml" <<TOML
contracts = "contracts"
listen = "127.0.0.1:$port"
state = "state"
port_base = $app_port
[git_rewrite]
"https://github.com/bench/" = "$w/many/git/"
TOML
"$gp" serve --config "$w/many/serve.toml" > "$w/many.log" 2>&1 &
serve_pid=$!
s=$(now)
echo "serve: building and starting $N apps" >&2
wait_apps "$port" "$N"
e=$(now)
up_s=$(awk "BEGIN{printf \"%.0f\", $e - $s}")
sleep 5
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15 + $16 + $17}' "/proc/$serve_pid/stat"; }
c0=$(cpu) t0=$(now)
window=${SERVE_IDLE_SECONDS:-120}
sleep "$window"
c1=$(cpu) t1=$(now)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status")
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$serve_pid/status")
anon_kib=$(awk '/^RssAnon/ {print $2}' "/proc/$serve_pid/status")
file_kib=$(awk '/^RssFile/ {print $2}' "/proc/$serve_pid/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$serve_pid/status")
cpu_pct=$(awk "BEGIN{printf \"%.2f\", 100 * ($c1 - $c0) / $ticks / ($t1 - $t0)}")
stop_serve

echo
echo "### goldenpath serve (\`bench/serve.sh\`), $(date -u +%Y-%m-%d), $(nproc) cores"
echo
echo "| | value | target |"
echo "|---|---|---|"
echo "| webhook -> new version answering (median of 3; s) | $loop_m (${loop_s[*]}) | - |"
echo "| the same build alone (median of 3; s) | $alone_m (${alone_s[*]}) | - |"
echo "| service overhead (s) | $overhead | < 1 |"
echo "| $N apps: built and running after (s) | $up_s | - |"
echo "| $N apps idle: CPU of the service, ${window} s window (% of one core) | $cpu_pct | < 1 |"
echo "| $N apps idle: service memory, RSS now / peak (MiB) | $((rss_kib / 1024)) / $((hwm_kib / 1024)) | < 100 |"
echo "| $N apps idle: of that RSS, anonymous / file-backed (MiB); threads | $((anon_kib / 1024)) / $((file_kib / 1024)); $threads | - |"
