#!/usr/bin/env bash
# The main job on embedded defaults, end to end, with no cloud account and no cluster:
#  1. the contracts: validate the example contracts repository and render it into a GitOps tree;
#  2. the build: start a loopback registry, build the default stack and builder (once; cached after), build
#     examples/apps/python-flask from source (no Dockerfile) and publish it, run the image with `goldenpath run` (as
#     the CNB user, in namespaces of its own, on a loopback port), request / and print the answer, the image
#     digest and an SBOM summary;
#  3. the GitOps side: render the app's contract with the image pinned by that digest.
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

# A loopback registry on a free port, stopped by PID on exit.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$demo/registry" && mkdir -p "$demo/registry"
cat > "$demo/registry.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $demo/registry/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$demo/registry.yml" >"$demo/registry.log" 2>&1 &
reg_pid=$!
run_pid=""
cleanup() {
  # `goldenpath run` stops and deletes its container on SIGTERM.
  [ -n "$run_pid" ] && { kill -TERM "$run_pid" 2>/dev/null; wait "$run_pid" 2>/dev/null || true; }
  kill "$reg_pid" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
reg="127.0.0.1:$port"

echo >&2
echo "== 3. the default stack and builder (built once, then cached under .cache/)" >&2
builder=$(GP="$gp" bash scripts/default-builder.sh)
echo "   builder: $builder" >&2

echo >&2
echo "== 4. goldenpath build $reg/python-flask:demo --publish --path examples/apps/python-flask" >&2
"$gp" build "$reg/python-flask:demo" --publish --builder "$builder" --cache "$demo/layer-cache" \
  --path examples/apps/python-flask 2>&1 | tee "$demo/build.log" >&2
digest=$(sed -n 's/^\*\*\* Published [^@]*@\(sha256:[0-9a-f]*\).*/\1/p' "$demo/build.log")

echo >&2
echo "== 5. goldenpath run $reg/python-flask@$digest   (as the CNB user, its own namespaces, on 127.0.0.1)" >&2
app_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gp" run "$reg/python-flask@$digest" --insecure-registry "$reg" --port "$app_port" 2>"$demo/run.log" &
run_pid=$!
answer=""
for _ in $(seq 300); do
  answer=$(curl -fsS "http://127.0.0.1:$app_port/" 2>/dev/null) && break
  kill -0 "$run_pid" 2>/dev/null || break
  sleep 0.2
done
[ -n "$answer" ] || { echo "the app did not answer:" >&2; cat "$demo/run.log" >&2; exit 1; }
sed 's/^/   /' "$demo/run.log" >&2
echo "   GET http://127.0.0.1:$app_port/ -> $answer"
echo "   image: $reg/python-flask@$digest"
rm -rf "$demo/rootfs"
"$gp" image unpack "$reg/python-flask@$digest" "$demo/rootfs" --insecure-registry "$reg" 2>/dev/null
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
echo "== 6. goldenpath contract render, the app's image pinned by digest" >&2
contracts="$demo/contracts"
rm -rf "$contracts" && mkdir -p "$contracts/docs/20-contracts/app-deployments/dev"
cp examples/contracts/goldenpath.toml "$contracts/"
cat > "$contracts/docs/20-contracts/app-deployments/dev/APP-0100.yaml" <<YAML
apiVersion: goldenpath.io/v1
kind: AppDeploymentRequest
id: APP-0100
environment: dev
owner: web-team
application: python-flask
spec:
  source:
    git:
      url: https://github.com/goldenpath-io/python-flask
  build:
    type: buildpack
  runtime:
    replicas: 1
YAML
(cd "$contracts" && "$gp" contract render --out "$demo/app-gitops" --pin "python-flask=$digest")
grep -rn "$digest" "$demo/app-gitops/apps/dev/python-flask" | sed "s|$demo/||; s|^|   |"
