//! The Go example apps through the default builder: the toolchain from the Go module proxy (SHA-256 checked, never
//! in the image), modules from the proxy or from `vendor/` offline, the executable answering HTTP under runc as
//! uid 1000; a one-line change reusing the toolchain, build cache and module cache; the SBOM of the modules
//! compiled in, as syft reads them from the image; and the app without go.sum failing alike in detect and build.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::apps::{build, copy_app, get, ready, start_image};
use crate::registry::free_port;

/// Starts `oci:<tmp>/images:<tag>` (unpacked afresh) and returns its answer to `GET /`.
fn answer(tmp: &Path, tag: &str) -> String {
    let _ = fs_err::remove_dir_all(tmp.join(format!("bundle-{tag}")));
    let port = free_port();
    let running = start_image(&tmp.join("images"), tag, tmp, port);
    let body = get(port);
    drop(running);
    body
}

/// `(name, version)` of the components of a `CycloneDX` file.
fn components(file: &Path) -> BTreeSet<(String, String)> {
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

/// syft, reading the image from outside (Go build info in the executable), finds the modules our SBOM lists; it
/// also lists the app's own module as `(devel)`, which our SBOM leaves out (it is the app, not a dependency).
fn compare_with_syft(tmp: &Path, tag: &str, ours: &BTreeSet<(String, String)>) {
    let Some(report) = crate::apps::syft_report(tmp, tag) else {
        return;
    };
    let seen: BTreeSet<(String, String)> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "go-module" && a["version"] != "(devel)")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(&seen, ours, "Go modules: syft vs our app layer SBOM");
}

#[test]
fn go_apps_build_run_rebuild_and_fail_alike() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // go-modules: github.com/google/uuid from the Go module proxy, checked against go.sum.
    let app = copy_app("go-modules", &tmp.join("modules"));
    let cold = Instant::now();
    let (ok, out) = build(tmp, &app, "gomod");
    let cold = cold.elapsed();
    assert!(ok, "{out}");
    assert!(out.contains("Installing Go 1.27.3 from "), "{out}");
    assert!(
        out.contains("Building . (go1.27.3; CGO_ENABLED=0; modules from "),
        "{out}"
    );
    let body = answer(tmp, "gomod");
    assert!(body.contains("\"app\":\"go-modules\""), "{body}");
    assert!(body.contains("Hello from GoldenPath"), "{body}");
    let rootfs = tmp.join("bundle-gomod/rootfs");
    let layers = rootfs.join("layers/io.goldenpath.go");
    assert!(layers.join("app/bin/go-modules").is_file());
    for cache_only in ["go", "gocache", "gomodcache"] {
        assert!(
            !layers.join(cache_only).exists(),
            "the {cache_only} layer is not in the image"
        );
    }
    let sbom = components(&rootfs.join("layers/sbom/launch/io.goldenpath.go/app/sbom.cdx.json"));
    let expected: BTreeSet<(String, String)> =
        [("github.com/google/uuid", "v1.6.0"), ("stdlib", "go1.27.3")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(sbom, expected);
    compare_with_syft(tmp, "gomod", &sbom);

    // A one-line change: the toolchain, build cache and module cache are reused; only the executable changes.
    let main = app.join("main.go");
    let text = fs_err::read_to_string(&main).unwrap();
    fs_err::write(&main, text.replace("Hello from GoldenPath", "Hello again")).unwrap();
    let warm = Instant::now();
    let (ok, out) = build(tmp, &app, "gomod");
    let warm = warm.elapsed();
    assert!(ok, "{out}");
    for reused in [
        "Reusing Go 1.27.3 (toolchain layer unchanged)",
        "Reusing the build cache (toolchain unchanged)",
        "Reusing the module cache (go.mod and go.sum unchanged)",
    ] {
        assert!(out.contains(reused), "{reused}\n---\n{out}");
    }
    assert!(!out.contains("go: downloading"), "{out}");
    let body = answer(tmp, "gomod");
    assert!(body.contains("Hello again"), "{body}");

    // go-vendored: the dependency only under vendor/, built with -mod=vendor and GOPROXY=off.
    let app = copy_app("go-vendored", &tmp.join("vendored"));
    let vendored = Instant::now();
    let (ok, out) = build(tmp, &app, "govend");
    let vendored = vendored.elapsed();
    assert!(ok, "{out}");
    assert!(out.contains("-mod=vendor, offline"), "{out}");
    let body = answer(tmp, "govend");
    assert!(body.contains("\"app\":\"go-vendored\""), "{body}");
    assert!(body.contains("Hello from GoldenPath (vendored)"), "{body}");
    let sbom = components(
        &tmp.join("bundle-govend/rootfs/layers/sbom/launch/io.goldenpath.go/app/sbom.cdx.json"),
    );
    assert!(
        sbom.contains(&("example.com/greeting".to_owned(), "v0.1.0".to_owned())),
        "{sbom:?}"
    );

    eprintln!(
        "go-modules: cold build {cold:?} (with the builder's first unpacking), one-line change {warm:?}; go-vendored (toolchain cached) {vendored:?}"
    );

    // go-no-sum: a required module without go.sum fails the same way in `goldenpath detect` and in the build.
    let broken = copy_app("go-no-sum", &tmp.join("no-sum"));
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("detect")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let preflight = String::from_utf8_lossy(&o.stdout).into_owned();
    let error = preflight
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_owned();
    assert!(error.starts_with("error: go.mod:5: "), "{preflight}");
    assert!(
        preflight.contains("fix: run `go mod tidy` and commit go.sum"),
        "{preflight}"
    );
    let (ok, out) = build(tmp, &broken, "broken");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&error),
        "the build says what detect said:\n{error}\n---\n{out}"
    );
}
