#!/usr/bin/env bash
# Benchmark: render 10,000 generated contracts into a fresh GitOps tree (validation included), and a no-change
# re-render. Prints a markdown table. Target: under 2 s on 2 cores.
set -euo pipefail
source "$(dirname "$0")/common.sh"
contract_tree
scratch="$root/.cache/bench/render-runs"
rm -rf "$scratch" && mkdir -p "$scratch"
out="$scratch/warm"
# A fresh output directory per cold run (deleting 74k files is not part of rendering).
cold() { local d; d=$(mktemp -d -p "$scratch" cold-XXXXXX); cd "$tree" && "$gp" contract render --out "$d/gitops"; }
warm() { cd "$tree" && "$gp" contract render --out "$out"; }
export -f cold warm
export gp tree out scratch
read -r c_t c_m < <(measure bash -c cold)
# The same into memory (tmpfs): separates our work from this machine's disk, which is slow to create many files.
shm_t=-; shm_m=0
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm() { local d; d=$(mktemp -d -p /dev/shm gp-render-XXXXXX); cd "$tree" && "$gp" contract render --out "$d/gitops"; rm -rf "$d"; }
  export -f shm
  read -r shm_t shm_m < <(measure bash -c shm)
fi
warm >/dev/null 2>&1
read -r w_t w_m < <(measure bash -c warm)
files=$(find "$out" -type f | wc -l)
rm -rf "$scratch"

echo
echo "Render $N contracts ($(nproc) cores; best of 3 wall-clock runs)"
echo
echo "| run | contracts | files in tree | wall time (s) | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
echo "| fresh tree (disk) | $N | $files | $c_t | $((c_m / 1024)) |"
echo "| fresh tree (tmpfs, includes rm) | $N | $files | $shm_t | $((shm_m / 1024)) |"
echo "| re-render, nothing changed | $N | $files | $w_t | $((w_m / 1024)) |"
