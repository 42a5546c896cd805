#!/usr/bin/env bash
# Benchmark: export a ~200 MB tree of many small files as a gzip layer (tar + gzip + sha256 of both streams) with
# gp-oci, side by side with `tar -cf - DIR | gzip -6 | sha256sum` on the same tree. Prints a markdown table.
set -euo pipefail
source "$(dirname "$0")/common.sh"
SIZE_MB=${SIZE_MB:-200}
cargo build --release --locked -q -p gp-oci --example layer_export
ours="$root/target/release/examples/layer_export"
key=$(sha256sum bench/gen_tree.py | cut -c1-12)
tree="$root/.cache/bench/tree-$SIZE_MB-$key"
if [ ! -d "$tree" ]; then
  echo "generating a ${SIZE_MB} MB tree in $tree" >&2
  python3 bench/gen_tree.py "$tree.tmp" "$SIZE_MB" >/dev/null && mv "$tree.tmp" "$tree"
fi
files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
out="$root/.cache/bench/layer.tar.gz"
cat "$(find "$tree" -type f | head -1)" >/dev/null   # warm the page cache for both sides alike
tar -cf - -C "$tree" . >/dev/null

read -r o_t o_m < <(measure "$ours" "$tree" "$out")
ours_size=$(stat -c %s "$out")
read -r p_t p_m < <(measure sh -c "tar -cf - -C '$tree' . | gzip -6 | sha256sum")
peer_size=$(tar -cf - -C "$tree" . | gzip -6 | wc -c)
ratio=$(awk "BEGIN{printf \"%.2f\", $p_t / ($o_t > 0 ? $o_t : 0.01)}")
rm -f "$out"

echo
echo "Layer export of $files files, $((bytes / 1048576)) MiB ($(nproc) cores; best of 3 wall-clock runs)"
echo
echo "| tool | wall time (s) | peak RSS (MiB) | output (MiB) | speed-up |"
echo "|---|---|---|---|---|"
echo "| gp-oci layer (tar + parallel gzip -6 + diff-ID + digest) | $o_t | $((o_m / 1024)) | $((ours_size / 1048576)) | ${ratio}x |"
echo "| tar -cf - \| gzip -6 \| sha256sum | $p_t | $((p_m / 1024)) (largest process) | $((peer_size / 1048576)) | 1.00x |"
echo
echo "targets: >= 1.5x faster, peak RSS < 64 MiB"
