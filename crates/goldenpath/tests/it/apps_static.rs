//! The static-site and .NET example apps through the default builder: each builds, runs under runc as the CNB
//! user and answers HTTP; a one-line change reuses the runtime (and SDK) layers; the failing apps fail alike in
//! `goldenpath detect` and in the build.
//!
//! No .NET SDK is obtainable here, so the .NET app builds with a stand-in SDK made by the test: a tar.gz laid out
//! like the real one (`dotnet`, `sdk/<version>/`, `shared/Microsoft.NETCore.App/<version>/`) whose `dotnet` is a
//! shell script: `restore` checks the project and writes `obj/project.assets.json`, `publish` writes `App.dll`,
//! its runtimeconfig and the page to serve, and `dotnet App.dll` serves it with busybox httpd on the port of
//! `ASPNETCORE_URLS`. It is served to the build over loopback HTTP, as a platform team's mirror would be.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::apps::{builder, copy_app, get, ready, start_image};
use crate::registry::free_port;
use crate::{require_tool, root, run};

/// `goldenpath build` of `app` into `oci:<tmp>/images:<tag>` with the app's own layer cache; success, output and
/// how long it took.
fn build(
    tmp: &Path,
    app: &Path,
    tag: &str,
    cache: &str,
    env: &[String],
) -> (bool, String, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goldenpath"));
    cmd.args([
        "build",
        &format!("oci:{}:{tag}", tmp.join("images").display()),
    ])
    .args(["--builder", builder(), "--cache"])
    .arg(tmp.join(format!("cache-{cache}")))
    .arg("--path")
    .arg(app)
    .env("XDG_CACHE_HOME", tmp.join("xdg"));
    for e in env {
        cmd.args(["--env", e]);
    }
    let (ok, out) = run(&mut cmd);
    (ok, out, started.elapsed())
}

/// `path` on 127.0.0.1:port with extra request headers: the whole response (head and body).
fn request(port: u16, path: &str, headers: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The compressed size of the image `<tmp>/images:<tag>` (config and layers, from its manifest).
fn image_size(tmp: &Path, tag: &str) -> u64 {
    let (ok, out) = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci:{}:{tag}", tmp.join("images").display()),
    ]));
    assert!(ok, "{out}");
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&m["config"]))
        .map(|l| l["size"].as_u64().unwrap_or(0))
        .sum()
}

/// The components `(name, version)` of an SBOM file in an unpacked image.
fn sbom(file: &Path) -> Vec<(String, String)> {
    let bom: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(file).unwrap()).unwrap();
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const STAND_IN_DOTNET: &str = r#"#!/bin/sh
# A stand-in for the .NET SDK's `dotnet`, made by the tests (no SDK is obtainable on CI): restore, publish and
# `dotnet App.dll`, just enough for the buildpack's flow.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
case "$cmd" in
restore)
  proj=${2:-}
  [ -f "$proj" ] || { echo "MSB1009: Project file does not exist: $proj" >&2; exit 1; }
  [ -d "$here/sdk/8.0.100" ] || { echo "no SDK next to this dotnet" >&2; exit 1; }
  grep -q '<TargetFramework>net8.0</TargetFramework>' "$proj" || { echo "NETSDK1045: the target framework is not supported" >&2; exit 1; }
  mkdir -p obj
  libs=$(grep -o 'PackageReference Include="[^"]*" Version="[^"]*"' "$proj" | sed 's/.*Include="\([^"]*\)" Version="\([^"]*\)"/"\1\/\2":{"type":"package"}/' | paste -sd, -)
  printf '{"version":3,"libraries":{%s}}\n' "$libs" > obj/project.assets.json
  echo "  Restored $proj (stand-in)";;
publish)
  proj=$2; out=""; shift 2
  while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift;; esac; shift; done
  [ -f obj/project.assets.json ] || { echo "NETSDK1004: Assets file not found: run a NuGet package restore" >&2; exit 1; }
  name=$(basename "$proj" .csproj)
  mkdir -p "$out/www"
  printf 'stand-in assembly for %s\n' "$name" > "$out/$name.dll"
  printf '{"runtimeOptions":{"tfm":"net8.0","framework":{"name":"Microsoft.AspNetCore.App","version":"8.0.0"}}}\n' > "$out/$name.runtimeconfig.json"
  msg=$(sed -n 's/.*message = "\([^"]*\)".*/\1/p' Program.cs | head -n 1)
  printf '{"app":"dotnet","message":"%s"}' "$msg" > "$out/www/index.html"
  echo "  $name -> $out/ (stand-in)";;
*.dll)
  [ -f "$cmd" ] || { echo "The application to execute does not exist: $cmd" >&2; exit 1; }
  port=${ASPNETCORE_URLS##*:}
  exec "$here/shared/Microsoft.NETCore.App/8.0.11/busybox" httpd -f -p "$port" -h "$(dirname "$cmd")/www";;
*) echo "stand-in dotnet: unsupported: $*" >&2; exit 1;;
esac
"#;

/// Makes the stand-in SDK archive under `dir`; its path and SHA-512.
fn stand_in_sdk(dir: &Path) -> (std::path::PathBuf, String) {
    let sdk = dir.join("stand-in-sdk");
    for d in [
        "sdk/8.0.100",
        "shared/Microsoft.NETCore.App/8.0.11",
        "shared/Microsoft.AspNetCore.App/8.0.11",
        "host/fxr/8.0.11",
        "packs",
    ] {
        fs_err::create_dir_all(sdk.join(d)).unwrap();
    }
    fs_err::write(sdk.join("dotnet"), STAND_IN_DOTNET).unwrap();
    fs_err::write(sdk.join("sdk/8.0.100/README"), "stand-in SDK\n").unwrap();
    fs_err::copy(
        "/bin/busybox",
        sdk.join("shared/Microsoft.NETCore.App/8.0.11/busybox"),
    )
    .unwrap();
    let (ok, out) = run(Command::new("chmod").arg("755").arg(sdk.join("dotnet")));
    assert!(ok, "{out}");
    let archive = dir.join("dotnet-sdk-8.0.100-linux-x64.tar.gz");
    let (ok, out) = run(Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&sdk)
        .arg("."));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("sha512sum").arg(&archive));
    assert!(ok, "{out}");
    (archive, out.split_whitespace().next().unwrap().to_owned())
}

/// Serves `file` to every GET on a loopback port (a platform team's mirror); the port.
fn serve_file(file: &Path) -> u16 {
    let bytes = fs_err::read(file).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/gzip\r\nconnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = s.write_all(&bytes);
        }
    });
    port
}

/// The error line `goldenpath detect` prints for `app` (it must fail).
fn detect_error(app: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("detect")
        .arg(app)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{text}");
    text.lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_owned()
}

#[test]
#[allow(clippy::too_many_lines)] // one story per language: build, run, headers, rebuild, failing apps
fn static_and_dotnet_apps_build_run_and_rebuild() {
    if !ready() || !require_tool("skopeo") || !require_tool("busybox") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    let started = Instant::now();
    builder();
    eprintln!("default builder: {:.1}s", started.elapsed().as_secs_f64());

    // static: public/index.html, a stylesheet and a fingerprinted script, served by our own server.
    let site = copy_app("static", &tmp.join("static"));
    let (ok, out, cold) = build(tmp, &site, "static", "static", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("Installing the static server"), "{out}");
    assert!(
        out.contains("Precompressed 2 text file(s) with gzip"),
        "{out}"
    );
    let port = free_port();
    let app = start_image(&tmp.join("images"), "static", tmp, port);
    let answer = get(port);
    assert!(answer.contains("Hello from GoldenPath static"), "{answer}");
    assert_eq!(
        header(&answer, "cache-control"),
        Some("no-cache"),
        "{answer}"
    );
    let index = request(port, "/", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(header(&index, "content-encoding"), Some("gzip"), "{index}");
    assert_eq!(header(&index, "vary"), Some("Accept-Encoding"), "{index}");
    let etag = header(&index, "etag").unwrap().to_owned();
    let again = request(
        port,
        "/",
        &format!("Accept-Encoding: gzip\r\nIf-None-Match: {etag}\r\n"),
    );
    assert!(again.starts_with("HTTP/1.1 304 "), "{again}");
    let js = request(port, "/app.3f2a1c.js", "");
    assert!(js.starts_with("HTTP/1.1 200 "), "{js}");
    assert_eq!(
        header(&js, "cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{js}"
    );
    assert!(request(port, "/../../etc/passwd", "").starts_with("HTTP/1.1 400 "));
    assert!(request(port, "/nope.css", "").starts_with("HTTP/1.1 404 "));
    drop(app);
    let listed =
        sbom(&tmp.join(
            "bundle-static/rootfs/layers/sbom/launch/io.goldenpath.static/server/sbom.cdx.json",
        ));
    assert_eq!(
        listed,
        [(
            "goldenpath-static".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned()
        )]
    );
    let static_size = image_size(tmp, "static");
    // A one-line change: the server layer is reused, the page changes.
    let page = site.join("public/index.html");
    let text = fs_err::read_to_string(&page).unwrap();
    fs_err::write(
        &page,
        text.replace("Hello from GoldenPath static", "Hello again, static"),
    )
    .unwrap();
    let (ok, out, warm) = build(tmp, &site, "static2", "static", &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing the static server (runtime layer unchanged)"),
        "{out}"
    );
    let port = free_port();
    let app = start_image(&tmp.join("images"), "static2", tmp, port);
    assert!(get(port).contains("Hello again, static"));
    drop(app);
    eprintln!(
        "static: cold build {:.1}s, one-line change {:.1}s, image {} MB",
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        static_size / 1_000_000
    );

    // An app with its own nginx.conf: Debian's nginx on $PORT as the CNB user.
    let nginx = tmp.join("nginx");
    let (ok, out) = run(Command::new("cp")
        .arg("-r")
        .arg(root().join("crates/goldenpath/tests/fixtures/static/nginx"))
        .arg(&nginx));
    assert!(ok, "{out}");
    let (ok, out, _) = build(tmp, &nginx, "nginx", "nginx", &[]);
    assert!(ok, "{out}");
    assert!(out.contains("Installing nginx"), "{out}");
    let port = free_port();
    let app = start_image(&tmp.join("images"), "nginx", tmp, port);
    let answer = get(port);
    assert!(answer.contains("Hello from GoldenPath nginx"), "{answer}");
    assert!(request(port, "/health", "").contains("nginx ok"));
    drop(app);
    eprintln!("nginx: image {} MB", image_size(tmp, "nginx") / 1_000_000);

    // A site built by a Node.js build script (no start command): the group [nodejs, static] builds and serves it.
    let site = copy_app("node-static-site", &tmp.join("node-static-site"));
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("detect")
        .arg(&site)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("a static site"), "{said}");
    let (ok, out, _) = build(tmp, &site, "node-site", "node-site", &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("io.goldenpath.nodejs") && out.contains("io.goldenpath.static"),
        "{out}"
    );
    assert!(out.contains("wrote dist/index.html"), "{out}");
    let port = free_port();
    let app = start_image(&tmp.join("images"), "node-site", tmp, port);
    let answer = get(port);
    assert!(
        answer.contains("<h1>Built by Node.js, served as static files</h1>"),
        "{answer}"
    );
    // The single-page-app fallback: an unknown route is the site's index.html.
    assert!(request(port, "/some/route", "").contains("<div id=\"root\">"));
    drop(app);

    // dotnet: a real minimal ASP.NET Core project, built with the stand-in SDK from a loopback "mirror".
    let (archive, sha) = stand_in_sdk(tmp);
    let mirror = serve_file(&archive);
    let env = [
        format!("BP_DOTNET_SDK_URL=http://127.0.0.1:{mirror}/dotnet-sdk-8.0.100-linux-x64.tar.gz"),
        format!("BP_DOTNET_SDK_SHA512={sha}"),
    ];
    let dotnet = copy_app("dotnet", &tmp.join("dotnet"));
    let (ok, out, cold) = build(tmp, &dotnet, "dotnet", "dotnet", &env);
    assert!(ok, "{out}");
    assert!(
        out.contains("Installing the .NET SDK from http://127.0.0.1:"),
        "{out}"
    );
    assert!(
        out.contains(".NET SDK 8.0.100; project App.csproj"),
        "{out}"
    );
    assert!(out.contains("Installing the .NET runtime"), "{out}");
    let port = free_port();
    let app = start_image(&tmp.join("images"), "dotnet", tmp, port);
    let answer = get(port);
    assert!(
        answer.contains("{\"app\":\"dotnet\",\"message\":\"Hello from GoldenPath\"}"),
        "{answer}"
    );
    drop(app);
    let runtime = sbom(&tmp.join(
        "bundle-dotnet/rootfs/layers/sbom/launch/io.goldenpath.dotnet/runtime/sbom.cdx.json",
    ));
    assert!(
        runtime.contains(&("Microsoft.NETCore.App".to_owned(), "8.0.11".to_owned())),
        "{runtime:?}"
    );
    assert!(
        !tmp.join("bundle-dotnet/rootfs/layers/io.goldenpath.dotnet/sdk")
            .exists(),
        "the SDK is not in the image"
    );
    let dotnet_size = image_size(tmp, "dotnet");
    let program = dotnet.join("Program.cs");
    let text = fs_err::read_to_string(&program).unwrap();
    fs_err::write(
        &program,
        text.replace("Hello from GoldenPath", "Hello again"),
    )
    .unwrap();
    let (ok, out, warm) = build(tmp, &dotnet, "dotnet2", "dotnet", &env);
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing the .NET SDK (sdk layer unchanged"),
        "{out}"
    );
    assert!(
        out.contains("Reusing the .NET runtime (runtime layer unchanged)"),
        "{out}"
    );
    let port = free_port();
    let app = start_image(&tmp.join("images"), "dotnet2", tmp, port);
    assert!(get(port).contains("\"message\":\"Hello again\""));
    drop(app);
    eprintln!(
        "dotnet (stand-in SDK): cold build {:.1}s, one-line change {:.1}s, image {} MB",
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        dotnet_size / 1_000_000
    );

    // Failing apps: the build says what preflight said.
    for name in ["static-missing-asset", "dotnet-no-project"] {
        let app = copy_app(name, &tmp.join(name));
        let error = detect_error(&app);
        let (ok, out, _) = build(tmp, &app, "broken", "broken", &env);
        assert!(!ok, "{out}");
        assert!(
            out.contains(&error),
            "{name}: the build says what detect said:\n{error}\n---\n{out}"
        );
    }
    // No SDK configured: preflight warns, and the build fails with the same words.
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("detect")
        .arg(&dotnet)
        .env_remove("BP_DOTNET_SDK_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning: App.csproj: no .NET SDK is configured"))
        .unwrap_or_else(|| panic!("{text}"));
    let (ok, out, _) = build(tmp, &dotnet, "nosdk", "nosdk", &[]);
    assert!(!ok, "{out}");
    let said = warning.replacen("warning: ", "error: ", 1);
    assert!(out.contains(&said), "{said}\n---\n{out}");
}
