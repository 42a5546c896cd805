#!/usr/bin/env bash
# The main job on embedded defaults, end to end, with no cloud account and no cluster:
#  1. the contracts: validate the example contracts repository and render it into a GitOps tree;
#  2. the platform loop: `goldenpath serve` on a contracts repository for examples/apps/python-flask and
#     examples/apps/node-express (each a local git repository): it builds the default stack and builder (once;
#     cached after), builds both apps from source (no Dockerfile), runs them under runc as the CNB user behind
#     loopback ports, and shows them on its status page; a commit to the Flask app is built and switched to
#     without downtime; the answer, the image digest and an SBOM summary are printed;
#  3. the GitOps side: render the app's contract with the image pinned by that digest.
# GOLDENPATH_DEMO_KEEP=1 keeps the service running at the end (Ctrl-C stops it and its apps).
# Installs what it needs (apt/pip/npm tools) first. Needs root for runc and the stack's mmdebstrap.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
cargo build --release --locked -q -p goldenpath
gp="$root/target/release/goldenpath"
demo="$root/.cache/demo"
mkdir -p "$demo"
out="$demo/gitops"

echo "== 1. goldenpath contract validate + render   (examples/contracts)" >&2
(cd examples/contracts && "$gp" contract validate)
(cd examples/contracts && "$gp" contract render --out "$out")
echo "   a contract with a mistake people make (examples/contracts-invalid/memory-millibytes):" >&2
"$gp" contract validate examples/contracts-invalid/memory-millibytes || echo "   (exit $?: invalid, as expected)" >&2

echo >&2
echo "== 2. preflight: goldenpath detect examples/apps/python-flask" >&2
"$gp" detect examples/apps/python-flask >&2

demo_git="$demo/git"
contracts="$demo/contracts"
state="$demo/serve-state"
rm -rf "$demo_git" "$contracts" "$state"
mkdir -p "$demo_git" "$contracts/docs/20-contracts/app-deployments/dev"
cp examples/contracts/goldenpath.toml "$contracts/"
n=100
for app in python-flask node-express; do
  cp -r "examples/apps/$app" "$demo_git/$app"
  git -C "$demo_git/$app" init -q -b main
  git -C "$demo_git/$app" add -A
  git -C "$demo_git/$app" -c user.name=dev -c user.email=dev@example.com commit -qm "$app"
  cat > "$contracts/docs/20-contracts/app-deployments/dev/APP-0$n.yaml" <<YAML
apiVersion: goldenpath.io/v1
kind: AppDeploymentRequest
id: APP-0$n
environment: dev
owner: web-team
application: $app
spec:
  source:
    git:
      url: https://github.com/goldenpath-io/$app
      branch: main
  build:
    type: buildpack
  runtime:
    replicas: 1
YAML
  n=$((n + 1))
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
app_port=$(free_port)
cat > "$demo/goldenpath-serve.toml" <<TOML
contracts = "contracts"
environment = "dev"
listen = "127.0.0.1:$port"
state = "serve-state"
poll_seconds = 2
stack_poll_seconds = 10
port_base = $app_port

[git_rewrite]
"https://github.com/goldenpath-io/" = "$demo_git/"
TOML

echo >&2
echo "== 3. goldenpath serve --config $demo/goldenpath-serve.toml" >&2
GOLDENPATH_CACHE_DIR="${GOLDENPATH_CACHE_DIR:-$root/.cache/goldenpath}" \
  "$gp" serve --config "$demo/goldenpath-serve.toml" >"$demo/serve.log" 2>&1 &
serve_pid=$!
cleanup() {
  # SIGTERM: the service stops its apps (their containers deleted) and exits.
  kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
}
trap cleanup EXIT
api() { curl -fsS "http://127.0.0.1:$port$1" 2>/dev/null; }
echo "   status page: http://127.0.0.1:$port/   (log: $demo/serve.log)" >&2
echo "   building the stack and builder (first run only), then both apps..." >&2
for _ in $(seq 1800); do
  kill -0 "$serve_pid" 2>/dev/null || { echo "goldenpath serve stopped:" >&2; cat "$demo/serve.log" >&2; exit 1; }
  running=$(api /api/apps | python3 -c 'import json,sys; print(sum(a["status"]=="running" for a in json.load(sys.stdin)))' 2>/dev/null || echo 0)
  [ "$running" = 2 ] && break
  failed=$(api /api/apps | python3 -c 'import json,sys; print(",".join(a["name"] for a in json.load(sys.stdin) if a["status"]=="failed"))' 2>/dev/null || true)
  [ -z "$failed" ] || { echo "a build failed ($failed):" >&2; cat "$demo/serve.log" >&2; exit 1; }
  sleep 1
done
[ "$running" = 2 ] || { echo "the apps did not come up:" >&2; cat "$demo/serve.log" >&2; exit 1; }
api /api/apps | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    b = a["last_build"]
    line = "   %-13s %-8s %s  build #%s %s %s" % (a["name"], a["status"], a["url"], b["id"], "+".join(b["reasons"]), a["digest"][:19])
    print(line)
' >&2
flask_url=$(api /api/apps | python3 -c 'import json,sys; print([a["url"] for a in json.load(sys.stdin) if a["name"]=="python-flask"][0])')
echo "   GET $flask_url -> $(curl -fsS "$flask_url")"

echo >&2
echo "== 4. a commit to python-flask: built, then switched to without downtime" >&2
flask_digest() { api /api/apps | python3 -c 'import json,sys; print([a["digest"] for a in json.load(sys.stdin) if a["name"]=="python-flask"][0])'; }
first=$(flask_digest)
sed -i 's/message="Hello from GoldenPath"/message="Hello again from GoldenPath"/' "$demo_git/python-flask/app.py"
git -C "$demo_git/python-flask" -c user.name=dev -c user.email=dev@example.com commit -qam "a new greeting"
started=$(date +%s.%N)
fails=0
answer=""
for _ in $(seq 3000); do
  answer=$(curl -fsS "$flask_url" 2>/dev/null) || fails=$((fails + 1))
  case "$answer" in *"Hello again"*) break ;; esac
  sleep 0.1
done
case "$answer" in *"Hello again"*) ;; *) echo "the new version never answered:" >&2; cat "$demo/serve.log" >&2; exit 1 ;; esac
echo "   GET $flask_url -> $answer"
echo "   (commit to new answer: $(python3 -c "import time; print(round(time.time() - $started, 1))") s; failed requests during the switch: $fails)"
# The record follows once the old version's connections have drained.
for _ in $(seq 600); do digest=$(flask_digest); [ "$digest" != "$first" ] && break; sleep 0.1; done
image="oci:$state/images:python-flask"
echo "   image: $image@$digest"
rm -rf "$demo/rootfs"
"$gp" image unpack "$image" "$demo/rootfs" 2>/dev/null
python3 - "$demo/rootfs" <<'PY'
import json, os, sys, glob
root = sys.argv[1]
deb = json.load(open(os.path.join(root, "usr/share/goldenpath/sbom.cdx.json")))["components"]
py = []
for f in glob.glob(os.path.join(root, "layers/sbom/launch/**/*.cdx.json"), recursive=True):
    py += json.load(open(f)).get("components", [])
names = ", ".join(sorted(c["name"] + " " + c["version"] for c in py))
print(f"   SBOM: {len(deb)} Debian packages (run image), {len(py)} Python packages: {names}")
PY

echo >&2
echo "== 5. goldenpath contract render, the app's image pinned by digest (what reaches Argo CD)" >&2
(cd "$contracts" && "$gp" contract render --out "$demo/app-gitops" --pin "python-flask=$digest")
grep -rn "$digest" "$demo/app-gitops/apps/dev/python-flask" | sed "s|$demo/||; s|^|   |"

if [ "${GOLDENPATH_DEMO_KEEP:-}" = 1 ]; then
  echo >&2
  echo "*** serving: status page http://127.0.0.1:$port/, python-flask at $flask_url (Ctrl-C stops)" >&2
  wait "$serve_pid"
fi
echo "   status page was at http://127.0.0.1:$port/ (GOLDENPATH_DEMO_KEEP=1 keeps it running)" >&2
