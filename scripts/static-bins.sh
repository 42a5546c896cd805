#!/usr/bin/env bash
# Builds the programs that go into images — `launcher`, `lifecycle` and the built-in buildpacks — as static
# executables (glibc statically linked), so that they run on any build or run image whatever its libc. Prints
# their directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$(rustc -vV | sed -n 's/^host: //p')"
dir="$root/target/static"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --config profile.release.debug=false --config profile.release.strip=true --manifest-path "$root/Cargo.toml" \
  --target "$target" --target-dir "$dir" -p gp-launcher --bin launcher >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --config profile.release.debug=false --config profile.release.strip=true --manifest-path "$root/Cargo.toml" \
  --target "$target" --target-dir "$dir" -p gp-lifecycle --no-default-features --bin lifecycle >&2
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release --config profile.release.debug=false --config profile.release.strip=true --manifest-path "$root/Cargo.toml" \
  --target "$target" --target-dir "$dir" -p gp-buildpacks --bin python-buildpack --bin node-buildpack --bin java-buildpack --bin go-buildpack --bin dotnet-buildpack --bin ruby-buildpack --bin php-buildpack --bin static-buildpack >&2
echo "$dir/$target/release"
