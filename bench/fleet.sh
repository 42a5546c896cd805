#!/usr/bin/env bash
# Benchmark: a fleet of N (default 1000) small images on a loopback registry, patched onto a new run image by
# `goldenpath fleet` (one process: plan, then patch), side by side with a shell loop that runs `goldenpath rebase`
# once per image (one process per image, as kpack runs one pod per rebase). Both do the same work per image: mount
# the new run image's layer, push a new config and a new manifest over the tag.
#
# The fleet: N distinct images (10 test-buildpack apps built on run image a, each image with a config of its own),
# one repository each, tags dev, test, staging, prod in turn. The fleet patches a -> b, the loop then b -> c (the
# same work onto a newer base).
# The fleet runs without a rate limit here (`--rate 100000`): the default (50 requests a second, for ECR) would
# make this a measurement of the limit. Requests are counted from the registry's access log.
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${FLEET_N:-1000}
bash scripts/install-deps.sh >/dev/null
w="$root/.cache/bench/fleet"
rm -rf "$w" && mkdir -p "$w"

# --- the registry (loopback, access log on, stopped by PID on exit)
loopback_registry "$w" true
export XDG_CACHE_HOME="$w/cache" XDG_STATE_HOME="$w/state"

# --- run images a, b, c: one small file each, the CNB user and base-image labels (made with umoci)
umoci init --layout "$w/stack"
for v in a b c; do
  umoci new --image "$w/stack:$v"
  mkdir -p "$w/rootfs-$v/etc" && echo "$v" > "$w/rootfs-$v/etc/base"
  umoci insert --image "$w/stack:$v" "$w/rootfs-$v" /
  umoci config --image "$w/stack:$v" --config.user 1000:1000 --config.env PATH=/bin \
    --config.label io.buildpacks.rebasable=true --config.label io.buildpacks.base.distro.name=debian \
    --config.label io.buildpacks.base.distro.version=12
  "$gp" image copy "oci:$w/stack:$v" "$reg/stack/run:$v" >/dev/null 2>&1
done

# --- the fleet: 10 apps built on run image a, then N distinct images (each its own config: a label with its
# number), every one in its own repository
printf '[[order]]\n[[order.group]]\nid = "test/js"\nversion = "1.0.0"\n' > "$w/order.toml"
envs=(dev test staging prod)
for a in $(seq 0 9); do
  mkdir -p "$w/app-$a" && echo '{}' > "$w/app-$a/package.json" && echo "// app $a" > "$w/app-$a/index.js"
  "$gp" build "oci:$w/apps:app-$a" --launcher /bin/true --order "$w/order.toml" \
    --buildpacks crates/gp-lifecycle/tests/fixtures/buildpacks --path "$w/app-$a" \
    --run-image "$reg/stack/run:a" >/dev/null 2>&1
done
echo "making $N distinct images" >&2
images=()
for i in $(seq 0 $((N - 1))); do
  umoci config --image "$w/apps:app-$((i % 10))" --tag "img-$i" --config.label "io.goldenpath.bench.n=$i"
  images+=("$reg/fleet/app-$(printf %04d "$i"):${envs[$((i % 4))]}")
done
for i in $(seq 0 $((N - 1))); do echo "oci:$w/apps:img-$i ${images[$i]}"; done |
  xargs -P "$(nproc)" -n 2 "$gp" image copy >/dev/null 2>&1

requests_since() { tail -n +"$1" "$w/registry.log" | grep -c '"[A-Z]* /v2/' || true; }
now() { date +%s.%N; }
args=()
for i in "${images[@]}"; do args+=(--image "$i"); done

# --- goldenpath fleet: plan alone (first with a store that has never seen these images, then again: every tag is
# read again, the configs it names are in the store by digest), then patch (which plans again)
reg_cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$reg_pid/stat"; }
# One plan, timed: prints its wall time, the registry's CPU over it and its request count.
plan() {
  local mark c0 c1 s e
  mark=$(($(wc -l < "$w/registry.log") + 1))
  c0=$(reg_cpu) s=$(now)
  "$gp" fleet plan --run-image "$reg/stack/run:b" --rate 100000 --json "${args[@]}" > "$w/plan.json" || [ $? -eq 3 ]
  e=$(now) c1=$(reg_cpu)
  echo "$(awk "BEGIN{printf \"%.2f %.2f\", $e - $s, $c1 - $c0}") $(requests_since "$mark")"
}
# (Assigned first: a failed plan stops the script, which a process substitution would not.)
first=$(plan)
read -r plan_s plan_reg_cpu plan_req <<< "$first"
again=$(plan)
read -r plan2_s plan2_reg_cpu plan2_req <<< "$again"
mark=$(($(wc -l < "$w/registry.log") + 1))
s=$(now)
"$gp" fleet patch --run-image "$reg/stack/run:b" --rate 100000 "${args[@]}" 2> "$w/patch.log"
e=$(now)
patch_s=$(awk "BEGIN{printf \"%.2f\", $e - $s}")
sleep 1
patch_req=$(requests_since "$mark")
grep -q "$N patched, 0 up to date, 0 skipped, 0 failed" "$w/patch.log" || { tail -5 "$w/patch.log" >&2; exit 1; }

# --- the loop: one `goldenpath rebase` process per image (b -> c)
mark=$(($(wc -l < "$w/registry.log") + 1))
s=$(now)
for i in "${images[@]}"; do
  "$gp" rebase "$i" --run-image "$reg/stack/run:c" --publish >/dev/null 2>&1
done
e=$(now)
loop_s=$(awk "BEGIN{printf \"%.2f\", $e - $s}")
sleep 1
loop_req=$(requests_since "$mark")

per() { awk "BEGIN{printf \"%.1f\", $1 / $N}"; }
ratio() { awk "BEGIN{printf \"%.1fx\", $2 / ($1 > 0 ? $1 : 0.001)}"; }
echo
echo "Fleet patch of $N images on a loopback registry ($(nproc) cores; one run each)"
echo
echo "| | goldenpath fleet | loop of goldenpath rebase | loop / fleet |"
echo "|---|---|---|---|"
echo "| plan, first (s) | $plan_s | - | - |"
echo "| plan, again (s) | $plan2_s | - | - |"
echo "| registry CPU during the plan, first / again (s) | $plan_reg_cpu / $plan2_reg_cpu | - | - |"
echo "| plan + patch (s) | $patch_s | $loop_s | $(ratio "$patch_s" "$loop_s") |"
echo "| registry requests per image (plan, first / again) | $(per "$plan_req") / $(per "$plan2_req") | - | - |"
echo "| registry requests per image (patch) | $(per "$patch_req") | $(per "$loop_req") | $(ratio "$patch_req" "$loop_req") |"
