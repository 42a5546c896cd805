#!/usr/bin/env bash
# Benchmark: build, rebuild and rebase a sample app with `goldenpath build` (sandboxed, published to a loopback
# registry), side by side with buildah building the equivalent Dockerfile (`bud --layers`, pushed to the same
# registry) on the same busybox base. The buildpack and the Dockerfile do the same work: unpack a 54 MB runtime
# archive (Python's standard library) into a layer, then add the app (one script and 200 static files).
#
# Scenarios: cold (no caches), no change, one app file changed, new run image (goldenpath rebase vs a buildah
# rebuild on the new base). Best of 3 wall-clock runs each. Needs root (buildah with vfs storage, chroot isolation).
set -euo pipefail
source "$(dirname "$0")/common.sh"
command -v buildah >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends buildah >/dev/null; }
bash scripts/install-deps.sh >/dev/null
static=$(bash scripts/static-bins.sh)
b="$root/.cache/bench/build"
rm -rf "$b/work" && mkdir -p "$b/work"
w="$b/work"
ba=(buildah --root "$w/buildah" --runroot "$w/buildah-run" --storage-driver vfs)

# --- the registry (loopback, stopped by PID on exit)
loopback_registry "$w" false

# --- the base: busybox + a CNB user, as run image v1 and v2 (v2 = a patched os-release)
rootfs="$w/rootfs"
mkdir -p "$rootfs"/{bin,etc,home/cnb,tmp,workspace}
cp /bin/busybox "$rootfs/bin/"
for a in sh mkdir printf cp chmod cat echo id head pwd test true ls env rm tar gzip md5sum wc; do ln -sf busybox "$rootfs/bin/$a"; done
[ -e "$rootfs/bin/[" ] || ln -sf busybox "$rootfs/bin/["
printf 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\ncnb:x:1000:\n' > "$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/cnb"
for v in 1 2; do
  printf 'ID=busybox\nVERSION_ID=%s\n' "$v" > "$rootfs/etc/os-release"
  c=$("${ba[@]}" from scratch)
  "${ba[@]}" copy "$c" "$rootfs/" / >/dev/null
  "${ba[@]}" config --env PATH=/bin --env CNB_USER_ID=1000 --env CNB_GROUP_ID=1000 --user 1000:1000 "$c"
  "${ba[@]}" commit -q --format oci "$c" "oci:$w/base:run-v$v" >/dev/null
  "${ba[@]}" rm "$c" >/dev/null
  "$gp" image copy "oci:$w/base:run-v$v" "docker://$reg/run:v$v" 2>/dev/null
done

# --- the runtime archive, the buildpack and the app (200 static files of 20 KB)
tar -czf "$w/runtime.tar.gz" -C /usr/lib/python3.11 .
cp -r bench/build/buildpack "$w/buildpack" && cp "$w/runtime.tar.gz" "$w/buildpack/"
cp -r bench/build/app "$w/app" && mkdir -p "$w/app/static"
for i in $(seq 200); do head -c 20000 /dev/urandom | base64 > "$w/app/static/f$i.txt"; done
cat > "$w/builder.toml" <<TOML
[[buildpacks]]
uri = "$w/buildpack"
[[order]]
[[order.group]]
id = "bench/runtime"
version = "1.0.0"
[build]
image = "oci:$w/base:run-v1"
[[run.images]]
image = "$reg/run:v1"
TOML
"$gp" builder create --config "$w/builder.toml" --tag "oci:$w/builder:bench" \
  --launcher "$static/launcher" --lifecycle "$static/lifecycle" 2>/dev/null

# The equivalent Dockerfile: same base, same archive unpacked into a layer, same app, same user and command.
mkdir -p "$w/ctx" && cp "$w/runtime.tar.gz" "$w/ctx/" && cp -r "$w/app" "$w/ctx/app"
dockerfile() {
  cat > "$w/ctx/Dockerfile" <<DF
FROM $reg/run:v$1
USER root
RUN --mount=type=bind,source=runtime.tar.gz,target=/tmp/runtime.tar.gz mkdir -p /layers/runtime && tar -xzf /tmp/runtime.tar.gz -C /layers/runtime
COPY app/ /workspace/
USER 1000:1000
CMD ["/workspace/app.sh"]
DF
}

export XDG_CACHE_HOME="$w/gp-cache"
ours() {
  "$gp" build "$reg/app:1" --publish --builder "oci:$w/builder:bench" --cache "$w/gp-layer-cache" \
    --path "$1" 2>&1
}
theirs() {
  "${ba[@]}" bud -q --layers --isolation chroot --tls-verify=false -t bench-app -f "$w/ctx/Dockerfile" "$w/ctx" >/dev/null 2>&1
  "${ba[@]}" push -q --tls-verify=false bench-app "docker://$reg/buildah-app:1" >/dev/null 2>&1
}
t() { local s e; s=$(date +%s.%N); "$@" >"$w/last.log" 2>&1 || { echo "failed: $*" >&2; cat "$w/last.log" >&2; exit 1; }; e=$(date +%s.%N); awk "BEGIN{printf \"%.3f\", $e - $s}"; }
best() { local b="" x; for _ in 1 2 3; do x=$(t "$@"); if [ -z "$b" ] || awk "BEGIN{exit !($x < $b)}"; then b=$x; fi; done; echo "$b"; }

# cold: every cache emptied before each run (the base images stay in the registry)
cold_ours() { rm -rf "$w/gp-cache" "$w/gp-layer-cache"; ours "$w/app"; }
cold_theirs() { "${ba[@]}" rmi -a -f >/dev/null 2>&1 || true; dockerfile 1; theirs; }
o_cold=$(best cold_ours); p_cold=$(best cold_theirs)
# the share of a cold build spent inside buildpacks
out=$(cold_ours)
total_ms=$(sed -n 's/^\*\*\* Total: \([0-9]*\) ms/\1/p' <<<"$out")
bp_ms=$(sed -n 's/^\*\*\* Buildpacks ran for \([0-9]*\) ms.*/\1/p' <<<"$out")
overhead=$(awk "BEGIN{printf \"%.0f\", 100 * ($total_ms - $bp_ms) / $total_ms}")
# the same for a new app on a machine that has used the builder before (builder unpacked; no layer cache, no memo,
# no previous image; a new repository, so the app's layers are uploaded)
cold_app_ours() {
  rm -rf "$w/gp-layer-cache" "$w/gp-cache/layer-memo"
  "$gp" build "$reg/new-app-$RANDOM:1" --publish --builder "oci:$w/builder:bench" --cache "$w/gp-layer-cache" \
    --path "$w/app" 2>&1
}
out=$(cold_app_ours)
app_total_ms=$(sed -n 's/^\*\*\* Total: \([0-9]*\) ms/\1/p' <<<"$out")
app_bp_ms=$(sed -n 's/^\*\*\* Buildpacks ran for \([0-9]*\) ms.*/\1/p' <<<"$out")
app_phases=$(sed -n 's/^\*\*\* Phases: //p' <<<"$out")
app_overhead=$(awk "BEGIN{printf \"%.0f\", 100 * ($app_total_ms - $app_bp_ms) / $app_total_ms}")
# no change
o_same=$(best ours "$w/app"); p_same=$(best theirs)
# one app file changed (a different one each run)
n=0
change_ours() { n=$((n + 1)); echo "change $n $RANDOM" >> "$w/app/static/f1.txt"; ours "$w/app"; }
change_theirs() { n=$((n + 1)); echo "change $n $RANDOM" >> "$w/ctx/app/static/f1.txt"; theirs; }
o_one=$(best change_ours); p_one=$(best change_theirs)
# new run image: rebase (ours) vs rebuild on the new base (buildah)
ours "$w/app" >/dev/null
rebase_ours() { "$gp" rebase "$reg/app:1" --run-image "$reg/run:v$1" --publish 2>&1; }
rebase_pair() { rebase_ours 2 && rebase_ours 1; }
rebuild_theirs() { dockerfile "$1"; theirs; }
rebuild_pair() { rebuild_theirs 2 && rebuild_theirs 1; }
# each timed run goes to v2 and back to v1: halved
o_rebase=$(best rebase_pair); o_rebase=$(awk "BEGIN{printf \"%.3f\", $o_rebase / 2}")
p_rebase=$(best rebuild_pair); p_rebase=$(awk "BEGIN{printf \"%.3f\", $p_rebase / 2}")

ratio() { awk "BEGIN{printf \"%.1fx\", $2 / ($1 > 0 ? $1 : 0.001)}"; }
echo
echo "Sample app build ($(nproc) cores; best of 3 wall-clock runs; both push to the same loopback registry)"
echo
echo "| scenario | goldenpath build (s) | buildah bud --layers + push (s) | buildah / goldenpath |"
echo "|---|---|---|---|"
echo "| cold (no caches) | $o_cold | $p_cold | $(ratio "$o_cold" "$p_cold") |"
echo "| rebuild, no change | $o_same | $p_same | $(ratio "$o_same" "$p_same") |"
echo "| rebuild, one app file changed | $o_one | $p_one | $(ratio "$o_one" "$p_one") |"
echo "| new run image (rebase vs rebuild) | $o_rebase | $p_rebase | $(ratio "$o_rebase" "$p_rebase") |"
echo
echo "cold build: ${total_ms} ms in all, ${bp_ms} ms inside the buildpack: goldenpath's own share ${overhead}%"
echo "new app, builder already unpacked: ${app_total_ms} ms in all, ${app_bp_ms} ms inside the buildpack: own share ${app_overhead}%"
echo "  phases: ${app_phases}"
echo "targets: no-change rebuild < 1 s, rebase < 0.2 s, own share of a cold build < 10%"
