#!/usr/bin/env bash
# Benchmark: peak memory of `goldenpath image copy` and `goldenpath image unpack` on an image with one 1 GiB layer
# of random data (an uncompressed tar, written by this script as a hand-made OCI layout), side by side with
# `skopeo copy` and `umoci unpack` when installed. The target: under 64 MiB RSS each (layers are streamed).
# Prints a markdown table. SIZE_MB=1024 by default.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SIZE_MB=${SIZE_MB:-1024}
w="$root/.cache/bench/oci-memory"
src="$w/src-$SIZE_MB"
if [ ! -f "$src/index.json" ]; then
  echo "writing a layout with a ${SIZE_MB} MiB layer in $src" >&2
  rm -rf "$src" "$w/data" && mkdir -p "$src/blobs/sha256" "$w/data"
  head -c "$((SIZE_MB << 20))" /dev/urandom > "$w/data/random.bin"
  tar -cf "$w/layer.tar" -C "$w/data" random.bin && rm -rf "$w/data"
  layer=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$w/layer.tar")
  mv "$w/layer.tar" "$src/blobs/sha256/$layer"
  blob() { # JSON on stdin -> blob; prints "digest size"
    local tmp d
    tmp=$(mktemp "$src/blobs/sha256/.new.XXXXXX") # one per call: process substitutions run concurrently
    cat > "$tmp"; d=$(sha256sum "$tmp" | cut -d' ' -f1); echo "$d $(stat -c %s "$tmp")"; mv "$tmp" "$src/blobs/sha256/$d"
  }
  read -r cfg cfg_size < <(printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$layer" | blob)
  read -r man man_size < <(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$cfg" "$cfg_size" "$layer" "$layer_size" | blob)
  printf '{"imageLayoutVersion":"1.0.0"}' > "$src/oci-layout"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' "$man" "$man_size" > "$src/index.json"
fi

# wall time (s) and peak RSS (MiB) of one run, from `/usr/bin/time -v`; the command must succeed
run() {
  /usr/bin/time -v -o "$w/time.txt" "$@" >/dev/null 2>"$w/stderr.txt" || { cat "$w/stderr.txt" >&2; exit 1; }
  local t m
  t=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$w/time.txt")
  m=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$w/time.txt")
  echo "$t $m"
}

rm -rf "$w/copy" "$w/unpack" "$w/skopeo" "$w/umoci"
read -r gc_t gc_m < <(run "$gp" image copy "oci:$src:v1" "oci:$w/copy:v1")
read -r gu_t gu_m < <(run "$gp" image unpack "oci:$src:v1" "$w/unpack")
sc="n/a"; uu="n/a"
if command -v skopeo >/dev/null; then read -r sc_t sc_m < <(run skopeo copy "oci:$src:v1" "oci:$w/skopeo:v1"); sc="$sc_m MiB, ${sc_t} s"; fi
if command -v umoci >/dev/null; then read -r uc_t uc_m < <(run umoci unpack --rootless --image "$src:v1" "$w/umoci"); uu="$uc_m MiB, ${uc_t} s"; fi
rm -rf "$w/copy" "$w/unpack" "$w/skopeo" "$w/umoci"

echo
echo "Peak RSS with one ${SIZE_MB} MiB layer ($(nproc) cores; one run each; target: under 64 MiB)"
echo
echo "| operation | goldenpath | peer |"
echo "|---|---|---|"
echo "| copy layout to layout | $gc_m MiB, ${gc_t} s | skopeo copy: $sc |"
echo "| unpack | $gu_m MiB, ${gu_t} s | umoci unpack: $uu |"
