//! CNB conformance, end to end through `goldenpath build --sandbox none`: the lifecycle's test buildpacks, written
//! from the Buildpack API 0.12 and Platform API 0.15 specifications, each assert one rule (what a buildpack sees,
//! what survives a rebuild, what the image's labels say). `docs/lifecycle.md` lists which test covers which rule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gp_oci::image::{ImageConfig, add_layer, read_image, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;

use crate::run;

/// A run image in a layout at `dir` (tag `run`): one layer with `etc/os-release`, and `labels`.
fn run_image(dir: &Path, os_release: &str, labels: &[(&str, &str)]) -> String {
    let layout = Layout::create(dir).unwrap();
    let entries = vec![
        Entry {
            path: "etc".into(),
            kind: Kind::Dir,
            executable: true,
        },
        Entry {
            path: "etc/os-release".into(),
            kind: Kind::File(Source::Bytes(os_release.as_bytes().to_vec())),
            executable: false,
        },
    ];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    let config = ImageConfig {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ImageConfig::default()
    };
    write_image(&layout, "run", &[layer], &config).unwrap();
    format!("oci:{}:run", dir.display())
}

/// An app with `files` and an order of the one test buildpack `id`.
fn app_for(tmp: &Path, id: &str, files: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let app = tmp.join("app");
    std::fs::create_dir_all(&app).unwrap();
    for (name, text) in files {
        std::fs::write(app.join(name), text).unwrap();
    }
    let order = tmp.join("order.toml");
    std::fs::write(
        &order,
        format!("[[order]]\n[[order.group]]\nid = \"{id}\"\nversion = \"1.0.0\"\n"),
    )
    .unwrap();
    (app, order)
}

fn arch() -> &'static str {
    gp_oci::image::host_arch()
}

/// The one line of `out` that starts with `[<id>] <prefix>`, without the buildpack prefix.
fn line<'a>(out: &'a str, id: &str, prefix: &str) -> &'a str {
    let start = format!("[{id}] {prefix}");
    out.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("[{id}] "))
                .filter(|_| l.starts_with(&start))
        })
        .unwrap_or_else(|| panic!("no line `{start}` in:\n{out}"))
}

/// A label of the image tagged `tag` in the layout at `dir`, as JSON when it parses.
fn label(dir: &Path, tag: &str, key: &str) -> Option<String> {
    let layout = Layout::open(dir).unwrap();
    let desc = layout.resolve(Some(tag)).unwrap();
    let img = read_image(&layout, &desc).unwrap();
    img.config["config"]["Labels"][key]
        .as_str()
        .map(str::to_owned)
}

/// Buildpack API "Targets": detect and build both see every `CNB_TARGET_*` the run image defines, from its
/// `io.buildpacks.base.distro.*` labels.
#[test]
fn target_variables_come_from_the_run_image_labels_in_detect_and_build() {
    let tmp = tempfile::tempdir().unwrap();
    let run_ref = run_image(
        &tmp.path().join("run"),
        "ID=alpine\nVERSION_ID=3.20\n",
        &[
            ("io.buildpacks.base.distro.name", "debian"),
            ("io.buildpacks.base.distro.version", "12"),
        ],
    );
    let (app, order) = app_for(tmp.path(), "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &run_ref]));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=debian CNB_TARGET_DISTRO_VERSION=12",
        arch()
    );
    assert_eq!(
        line(&out, "test/target", "detect saw: "),
        format!("detect saw: {want}")
    );
    assert_eq!(
        line(&out, "test/target", "build saw: "),
        format!("build saw: {want}")
    );
}

/// Platform API `run-image.target`: a run image without distribution labels has them inferred from its
/// `/etc/os-release`.
#[test]
fn target_distribution_falls_back_to_the_run_image_os_release() {
    let tmp = tempfile::tempdir().unwrap();
    let run_ref = run_image(
        &tmp.path().join("run"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=\"3.20.1\"\n",
        &[],
    );
    let (app, order) = app_for(tmp.path(), "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &run_ref]));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=alpine CNB_TARGET_DISTRO_VERSION=3.20.1",
        arch()
    );
    assert_eq!(
        line(&out, "test/target", "detect saw: "),
        format!("detect saw: {want}")
    );
    assert_eq!(
        line(&out, "test/target", "build saw: "),
        format!("build saw: {want}")
    );
}
