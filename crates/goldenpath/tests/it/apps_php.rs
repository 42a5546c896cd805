//! The PHP example apps through the default builder: `php` (composer.json with a `path` repository, composer.lock,
//! `public/index.php`) builds offline, runs under runc as the CNB user with nginx on `$PORT` in front of php-fpm,
//! answers with its JSON body; a one-line change reuses the runtime, web server and dependency layers; the SBOMs
//! list the Composer package and the Debian PHP packages copied (and syft, reading the image, finds the same
//! Composer package); a plain app (index.php only) runs with every extension; `php-no-lock` fails alike in `goldenpath detect` and in the build.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::apps::{build, copy_app, get, ready, start_image};
use crate::registry::free_port;
use crate::{root, run};

/// The size of an image of an OCI layout: its manifest, config and layers (compressed, as pushed).
fn image_bytes(layout: &Path, tag: &str) -> u64 {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone();
    let manifest: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(blob(desc["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layers: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    layers + manifest["config"]["size"].as_u64().unwrap() + desc["size"].as_u64().unwrap()
}

fn components(file: &Path) -> Vec<String> {
    let bom: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(file).unwrap()).unwrap();
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap().to_owned())
        .collect()
}

/// syft, reading the image from outside, finds the Composer packages our vendor SBOM lists.
fn syft_agrees(tmp: &Path, tag: &str, ours: &[String]) {
    let Some(report) = crate::apps::syft_report(tmp, tag) else {
        return;
    };
    let mut found: Vec<String> = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == "php-composer")
        .filter_map(|a| a["purl"].as_str().map(str::to_owned))
        .collect();
    found.sort();
    found.dedup();
    let mut ours = ours.to_vec();
    ours.sort();
    assert_eq!(found, ours, "Composer packages: syft vs our vendor SBOM");
}

#[test]
#[allow(clippy::too_many_lines)] // one story: build, run, SBOMs, rebuild, the failing app
fn php_apps_build_run_rebuild_and_fail_alike() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // php: a path repository installed offline from composer.lock, nginx + php-fpm.
    let php = copy_app("php", &tmp.join("php"));
    let t = Instant::now();
    let (ok, out) = build(tmp, &php, "php");
    let cold = t.elapsed();
    assert!(ok, "{out}");
    for line in [
        "Installing PHP 8.2.",
        " with php8.2-mbstring from the stack",
        "Installing nginx ",
        "Installing dependencies (composer install --no-dev",
        "  1 packages installed",
        "Start command: nginx on $PORT + php-fpm, document root public (public/)",
    ] {
        assert!(out.contains(line), "{line}\n---\n{out}");
    }
    let port = free_port();
    let app = start_image(&tmp.join("images"), "php", tmp, port);
    let answer = get(port);
    drop(app);
    assert!(
        answer.contains("\"message\":\"Hello from GoldenPath\""),
        "{answer}"
    );
    assert!(answer.contains("\"app\":\"php\""), "{answer}");
    // mbstring came with the runtime layer (the package requires it), and php-fpm answers behind nginx.
    assert!(
        answer.contains("\"loud\":\"HELLO FROM GOLDENPATH\""),
        "{answer}"
    );
    assert!(answer.contains("\"sapi\":\"fpm-fcgi\""), "{answer}");
    assert!(answer.contains("\r\nServer: nginx\r\n"), "{answer}");
    assert!(
        !answer.contains("X-Powered-By"),
        "expose_php is off: {answer}"
    );

    // The SBOMs: the Composer package, and the Debian packages of the runtime and the web server.
    let sboms = tmp.join("bundle-php/rootfs/layers/sbom/launch/io.goldenpath.php");
    let vendor = components(&sboms.join("vendor/sbom.cdx.json"));
    assert_eq!(vendor, ["pkg:composer/goldenpath/greeting@1.0.0"]);
    let runtime = components(&sboms.join("php/sbom.cdx.json"));
    for deb in ["php8.2-fpm", "php8.2-common", "php8.2-mbstring"] {
        assert!(
            runtime
                .iter()
                .any(|p| p.starts_with(&format!("pkg:deb/debian/{deb}@8.2."))),
            "{runtime:?}"
        );
    }
    assert!(
        !runtime.iter().any(|p| p.contains("php8.2-intl")),
        "only the extensions the app needs: {runtime:?}"
    );
    assert!(
        components(&sboms.join("nginx/sbom.cdx.json"))[0]
            .starts_with("pkg:deb/debian/nginx-light@"),
    );
    syft_agrees(tmp, "php", &vendor);

    // A one-line change: the runtime, web server and dependency layers are reused.
    let index = php.join("public/index.php");
    fs_err::write(
        &index,
        fs_err::read_to_string(&index)
            .unwrap()
            .replace("'app' => 'php'", "'app' => 'php', 'changed' => true"),
    )
    .unwrap();
    let t = Instant::now();
    let (ok, out) = build(tmp, &php, "php2");
    let warm = t.elapsed();
    assert!(ok, "{out}");
    for line in [
        "Reusing PHP 8.2.",
        "(runtime layer unchanged)",
        "(web server layer unchanged)",
        "Reusing the dependencies layer (composer.lock unchanged)",
    ] {
        assert!(out.contains(line), "{line}\n---\n{out}");
    }
    assert!(out.contains("*** SBOM: CycloneDX (3 file(s))"), "{out}");
    let port = free_port();
    let app = start_image(&tmp.join("images"), "php2", tmp, port);
    let answer = get(port);
    drop(app);
    assert!(answer.contains("\"changed\":true"), "{answer}");
    eprintln!(
        "php: cold build {:.1} s, one-line change {:.1} s, image {:.1} MB",
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        f64::from(u32::try_from(image_bytes(&tmp.join("images"), "php2") / 1000).unwrap()) / 1000.0
    );

    // A plain app (index.php, no composer.json): served from the app root with every extension of the stack.
    let plain = tmp.join("plain");
    let (ok, out) = run(Command::new("cp")
        .arg("-r")
        .arg(root().join("crates/goldenpath/tests/fixtures/php/plain"))
        .arg(&plain));
    assert!(ok, "{out}");
    let (ok, out) = build(tmp, &plain, "plain");
    assert!(ok, "{out}");
    assert!(
        out.contains("No composer.json: no dependencies to install"),
        "{out}"
    );
    assert!(out.contains("php8.2-intl, php8.2-mbstring"), "{out}");
    let port = free_port();
    let app = start_image(&tmp.join("images"), "plain", tmp, port);
    let answer = get(port);
    drop(app);
    assert!(
        answer.contains(r#"{"app":"php-plain","intl":true,"pdo_sqlite":true,"upper":"PLAIN"}"#),
        "{answer}"
    );

    // php-no-lock: the same error from the preflight and from the build.
    let broken = copy_app("php-no-lock", &tmp.join("php-no-lock"));
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
    assert!(
        error.starts_with(
            "error: composer.json:4: requires `monolog/monolog` but there is no composer.lock"
        ),
        "{preflight}"
    );
    let (ok, out) = build(tmp, &broken, "broken");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&error),
        "the build says what detect said:\n{error}\n---\n{out}"
    );
}
