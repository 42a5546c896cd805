//! The Ruby example apps through the default builder: `ruby-puma` (config.ru, puma, gems from `vendor/cache` made
//! at test time from Debian's packaged gems, and a gem of our own whose C extension the build compiles) builds, runs
//! under runc as uid 1000 and answers HTTP; a one-line change reuses the ruby and gems layers; the SBOM lists the
//! gems and syft, reading the image, agrees; a Ruby version the stack lacks is refused with the file and line; `ruby-no-lock`
//! fails alike in `goldenpath detect` and in the build.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::apps::{build, copy_app, get, ready, start_image};
use crate::registry::free_port;
use crate::{require_tool, root, run};

/// The gems the example's lock pins, as the SBOM must list them.
const GEMS: &[(&str, &str)] = &[
    ("gp_greeting", "0.1.0"),
    ("nio4r", "2.5.8"),
    ("puma", "5.6.5"),
    ("rack", "2.2.22"),
];

/// Debian's packaged gems the vendor/cache generator repackages (`apt-get install ruby ruby-rack puma`).
fn host_gems() -> bool {
    if !require_tool("ruby") {
        return false;
    }
    let ok = Command::new("ruby")
        .args([
            "-e",
            "%w[rack nio4r puma].each { |g| Gem::Specification.find_by_name(g) }",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "Debian's ruby-rack and puma are required on CI: run scripts/install-deps.sh"
        );
        eprintln!("note: Debian's ruby-rack and puma are not installed; skipping");
    }
    ok
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

/// The compressed size of the image's layers and config (what a registry stores for it).
fn image_bytes(layout: &Path, tag: &str) -> u64 {
    let blob = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_str(
            &fs_err::read_to_string(layout.join("blobs/sha256").join(hex)).unwrap(),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let manifest = blob(desc["digest"].as_str().unwrap());
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&manifest["config"]))
        .map(|l| l["size"].as_u64().unwrap())
        .sum()
}

/// syft reads the gemspecs of the image: those in the gems layer are exactly the gems our SBOM lists; those in the
/// ruby layer are Debian's default gems and Bundler, of which our ruby layer's SBOM lists Bundler.
fn compare_with_syft(tmp: &Path, tag: &str, ours: &BTreeSet<(String, String)>, rootfs: &Path) {
    let Some(report) = crate::apps::syft_report(tmp, tag) else {
        return;
    };
    let gems_in = |prefix: &str| -> BTreeSet<(String, String)> {
        report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"] == "gem")
            .filter(|a| {
                a["locations"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|p| p["path"].as_str().is_some_and(|p| p.starts_with(prefix)))
                })
            })
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        &gems_in("/layers/io.goldenpath.ruby/gems/"),
        ours,
        "gems: syft vs our gems layer SBOM"
    );
    let runtime = gems_in("/layers/io.goldenpath.ruby/ruby/");
    let listed =
        components(&rootfs.join("layers/sbom/launch/io.goldenpath.ruby/ruby/sbom.cdx.json"));
    let bundler: BTreeSet<_> = listed
        .iter()
        .filter(|(n, _)| n == "bundler")
        .cloned()
        .collect();
    assert_eq!(bundler.len(), 1, "{listed:?}");
    assert!(
        bundler.is_subset(&runtime),
        "syft finds Debian's Bundler in the ruby layer: {runtime:?}"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one story: build, run, SBOMs, rebuild, refusals
fn ruby_apps_build_run_rebuild_and_fail_alike() {
    if !ready() || !host_gems() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let app = copy_app("ruby-puma", &tmp.join("puma"));
    let _ = fs_err::remove_dir_all(app.join("vendor/cache"));
    let (ok, out) = run(Command::new("ruby")
        .arg(root().join("crates/goldenpath/tests/fixtures/ruby/make-vendor-cache.rb"))
        .arg(app.join("vendor/cache")));
    assert!(ok, "{out}");

    let t = Instant::now();
    let (ok, out) = build(tmp, &app, "puma");
    let cold = t.elapsed();
    assert!(ok, "{out}");
    assert!(out.contains("Installing Ruby 3.1"), "{out}");
    assert!(
        out.contains("Installing gems (bundle install --jobs 2 --local; frozen, without development:test, from vendor/cache)"),
        "{out}"
    );
    assert!(
        out.contains("Installing gp_greeting 0.1.0 with native extensions"),
        "the C extension compiles:\n{out}"
    );
    assert!(
        out.contains("Start command: bundle exec puma -b tcp://0.0.0.0:$PORT"),
        "{out}"
    );
    let port = free_port();
    let running = start_image(&tmp.join("images"), "puma", tmp, port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"ruby-puma\""), "{answer}");
    assert!(
        answer.contains("\"greeting\":\"Hello, GoldenPath, from C\""),
        "{answer}"
    );
    drop(running);
    let rootfs = tmp.join("bundle-puma/rootfs");
    let ours = components(&rootfs.join("layers/sbom/launch/io.goldenpath.ruby/gems/sbom.cdx.json"));
    let want: BTreeSet<(String, String)> = GEMS
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(ours, want, "the gems layer's SBOM");
    let bom = fs_err::read_to_string(
        rootfs.join("layers/sbom/launch/io.goldenpath.ruby/gems/sbom.cdx.json"),
    )
    .unwrap();
    assert!(bom.contains("\"pkg:gem/puma@5.6.5\""), "{bom}");
    compare_with_syft(tmp, "puma", &ours, &rootfs);
    let size = image_bytes(&tmp.join("images"), "puma");

    // A one-line change: the ruby and gems layers are reused.
    let text = fs_err::read_to_string(app.join("config.ru")).unwrap();
    fs_err::write(
        app.join("config.ru"),
        text.replace("ruby: RUBY_VERSION)", "ruby: RUBY_VERSION, changed: true)"),
    )
    .unwrap();
    let t = Instant::now();
    let (ok, out) = build(tmp, &app, "puma");
    let warm = t.elapsed();
    assert!(ok, "{out}");
    assert!(out.contains("Reusing Ruby 3.1"), "{out}");
    assert!(
        out.contains("Reusing the gems layer (Gemfile.lock unchanged)"),
        "{out}"
    );
    assert!(!out.contains("Installing gp_greeting"), "{out}");
    assert!(out.contains("*** SBOM: CycloneDX (2 file(s))"), "{out}");
    let _ = fs_err::remove_dir_all(tmp.join("bundle-puma"));
    let port = free_port();
    let running = start_image(&tmp.join("images"), "puma", tmp, port);
    let answer = get(port);
    assert!(answer.contains("\"changed\":true"), "{answer}");
    drop(running);
    eprintln!(
        "ruby-puma: cold build {:.1} s, one-line change {:.1} s, image {}.{} MB (compressed layers)",
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        size / 1_000_000,
        size / 100_000 % 10
    );

    // A Ruby the stack lacks: refused with the Gemfile's line and the fix.
    let old = copy_app("ruby-puma", &tmp.join("old"));
    let text = fs_err::read_to_string(old.join("Gemfile")).unwrap();
    fs_err::write(
        old.join("Gemfile"),
        text.replace("ruby \"~> 3.1\"", "ruby \"2.7.8\""),
    )
    .unwrap();
    let (ok, out) = build(tmp, &old, "old");
    assert!(!ok, "{out}");
    assert!(
        out.contains("Gemfile:3: Ruby `2.7.8` is requested, but this stack provides Ruby 3.1"),
        "{out}"
    );
    assert!(out.contains("fix: request `3.1`"), "{out}");

    // No Gemfile.lock: the same error in detect and in the build.
    let broken = copy_app("ruby-no-lock", &tmp.join("no-lock"));
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
        error.contains("error: Gemfile: no Gemfile.lock"),
        "{preflight}"
    );
    assert!(preflight.contains("bundle lock"), "{preflight}");
    let (ok, out) = build(tmp, &broken, "broken");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&error),
        "the build says what detect said:\n{error}\n---\n{out}"
    );
}
