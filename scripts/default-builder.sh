#!/usr/bin/env bash
# Builds the default stack (cached under .cache/stacks/<hash of stack.toml>) and the default builder on it (under
# .cache/builders/<hash of its inputs>). Prints the builder reference (oci:PATH:TAG). Needs root or rootless
# mmdebstrap, and Debian mirrors reachable (the machine's APT sources).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
gp="${GP:-$root/target/release/goldenpath}"
[ -x "$gp" ] || cargo build --release --locked -q -p goldenpath
static=$(bash scripts/static-bins.sh)
stack_key=$(sha256sum stacks/bookworm/stack.toml | cut -c1-16)
stack="$root/.cache/stacks/bookworm-$stack_key"
if [ ! -f "$stack/index.json" ]; then
  echo "default-builder: building the bookworm stack (once per stack.toml; about a minute)" >&2
  rm -rf "$stack.partial"
  "$gp" stack build --config stacks/bookworm/stack.toml --build-tag "oci:$stack.partial:build" --run-tag "oci:$stack.partial:run" >&2
  mv "$stack.partial" "$stack"
fi
bps="$root/.cache/buildpacks"
rm -rf "$bps" && mkdir -p "$bps/python/bin"
cp buildpacks/python/buildpack.toml "$bps/python/"
cp "$static/python-buildpack" "$bps/python/bin/detect"
cp "$static/python-buildpack" "$bps/python/bin/build"
mkdir -p "$bps/nodejs/bin"
cp buildpacks/nodejs/buildpack.toml "$bps/nodejs/"
cp "$static/node-buildpack" "$bps/nodejs/bin/detect"
cp "$static/node-buildpack" "$bps/nodejs/bin/build"
builder_key=$(cat builders/default/builder.toml.in "$bps"/*/buildpack.toml "$static/python-buildpack" "$static/node-buildpack" "$static/launcher" "$static/lifecycle" "$stack/index.json" | sha256sum | cut -c1-16)
builder="$root/.cache/builders/default-$builder_key"
if [ ! -f "$builder/index.json" ]; then
  sed -e "s|@BUILDPACKS@|$bps|" -e "s|@STACK@|$stack|" builders/default/builder.toml.in > "$bps/builder.toml"
  "$gp" builder create --config "$bps/builder.toml" --tag "oci:$builder:default" \
    --launcher "$static/launcher" --lifecycle "$static/lifecycle" >&2
fi
echo "oci:$builder:default"
