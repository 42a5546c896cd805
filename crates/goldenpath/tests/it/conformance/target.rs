//! Buildpack API "Targets": the `CNB_TARGET_*` variables detect and build see.

use super::{app_for, arch, line, run_image};
use crate::run;

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

/// Buildpack API "Targets" in the sandbox: the static `lifecycle` in the build image hands the run image's target to
/// detect and build (the run image's distro label, its os-release for the version).
#[test]
fn target_variables_reach_sandboxed_detect_and_build() {
    let root_user =
        fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root_user || !std::path::Path::new("/bin/busybox").is_file() {
        return; // the sandboxed tests run as root in CI, with busybox
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let build_ref = crate::sandbox::busybox_image(&base, "build", "ID=busybox\nVERSION_ID=1\n");
    let run_ref = crate::sandbox::busybox_image(&base, "run", "ID=busybox\nVERSION_ID=1.36\n");
    let config = tmp.path().join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"{}/test_target/1.0.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/target\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"{build_ref}\"\n\n[[run.images]]\nimage = \"{run_ref}\"\n",
            crate::test_buildpacks().display()
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:target", tmp.path().join("builders").display());
    let bins = crate::sandbox::static_bins();
    let (ok, out) = run(std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["builder", "create", "--tag", &builder, "--config"])
        .arg(&config)
        .arg("--launcher")
        .arg(bins.join("launcher"))
        .arg("--lifecycle")
        .arg(bins.join("lifecycle")));
    assert!(ok, "{out}");
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("target.txt"), "").unwrap();
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["build", &image, "--builder", &builder, "--path"])
        .arg(&app));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=busybox CNB_TARGET_DISTRO_VERSION=1.36",
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
