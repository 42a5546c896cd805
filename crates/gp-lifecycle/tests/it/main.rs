//! Detection with the project's own test buildpacks (written from the spec), run directly on this host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use std::path::{Path, PathBuf};

use gp_cnb::{GroupRef, OrderGroup};
use gp_lifecycle::detect::{DetectDirs, DetectError, detect};

mod session;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildpacks")
}

fn r(id: &str, optional: bool) -> GroupRef {
    GroupRef {
        id: id.parse().unwrap(),
        version: "1.0.0".parse().unwrap(),
        optional,
        exec_env: Vec::new(),
    }
}

fn dirs(tmp: &Path, with_package_json: bool) -> DetectDirs {
    let app = tmp.join("app");
    fs_err::create_dir_all(&app).unwrap();
    if with_package_json {
        fs_err::write(app.join("package.json"), "{}").unwrap();
    }
    fs_err::create_dir_all(tmp.join("platform")).unwrap();
    DetectDirs {
        buildpacks: fixtures(),
        app,
        platform: tmp.join("platform"),
        scratch: tmp.join("scratch"),
        exec_env: "production".into(),
        target: gp_cnb::Target::default(),
    }
}

#[test]
fn composite_order_with_optional_member_resolves_the_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let order = vec![
        OrderGroup {
            group: vec![r("test/error", false)],
        },
        OrderGroup {
            group: vec![r("test/js", false), r("test/optional", true)],
        },
    ];
    let found = detect(&order, &dirs(tmp.path(), true)).unwrap();
    let ids: Vec<&str> = found.group.group.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["test/node", "test/npm"]);
    assert_eq!(found.group.group[0].api.to_string(), "0.10");
    let entry = &found.plan.entries[0];
    assert_eq!(entry.providers[0].id.as_str(), "test/node");
    assert_eq!(
        entry.requires[0].metadata.as_ref().unwrap()["version"].as_str(),
        Some("20")
    );
    assert!(
        found
            .log
            .iter()
            .any(|l| l.contains("test/error") && l.contains("something broke")),
        "{:?}",
        found.log
    );
    assert!(
        found
            .log
            .iter()
            .any(|l| l.contains("test/optional@1.0.0: fail (optional, skipped)")),
        "{:?}",
        found.log
    );
}

#[test]
fn no_group_passing_gives_the_spec_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let order = vec![OrderGroup {
        group: vec![r("test/js", false)],
    }];
    let err = detect(&order, &dirs(tmp.path(), false)).unwrap_err();
    assert_eq!(err.exit_code(), 20, "{err}");
    let order = vec![OrderGroup {
        group: vec![r("test/error", false)],
    }];
    let err = detect(&order, &dirs(tmp.path(), true)).unwrap_err();
    assert_eq!(err.exit_code(), 21, "{err}");
    assert!(matches!(err, DetectError::NoGroup { errored: true, .. }));
}

#[test]
fn unmet_requires_fail_the_group() {
    let tmp = tempfile::tempdir().unwrap();
    let order = vec![OrderGroup {
        group: vec![r("test/npm", false)],
    }];
    let err = detect(&order, &dirs(tmp.path(), true)).unwrap_err();
    assert_eq!(err.exit_code(), 20);
    let DetectError::NoGroup { log, .. } = err else {
        panic!()
    };
    assert!(
        log.iter().any(|l| l.contains("cannot be satisfied")),
        "{log:?}"
    );
}

mod build {
    use std::collections::BTreeMap;

    use gp_lifecycle::build::{BuildDirs, BuildError, BuildLog, build};

    use super::*;

    fn build_dirs(tmp: &Path) -> BuildDirs {
        let d = dirs(tmp, true);
        BuildDirs {
            buildpacks: d.buildpacks,
            layers: tmp.join("layers"),
            app: d.app,
            platform: d.platform,
            exec_env: d.exec_env,
            target: d.target,
        }
    }

    fn base_env() -> BTreeMap<String, String> {
        [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into()
    }

    #[test]
    fn build_layers_env_plan_and_processes_flow_through_the_group() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dirs(tmp.path(), true);
        let found = detect(
            &[OrderGroup {
                group: vec![r("test/js", false)],
            }],
            &d,
        )
        .unwrap();
        let mut log = BuildLog::default();
        let built = build(
            &found.group,
            &found.plan,
            &build_dirs(tmp.path()),
            &base_env(),
            &mut log,
        )
        .unwrap();
        assert!(
            log.lines.iter().any(|l| l == "[test/npm] node-tool ok"),
            "{:?}",
            log.lines
        );
        let received =
            fs_err::read_to_string(tmp.path().join("layers/test_node/node/received-plan.toml"))
                .unwrap();
        assert!(
            received.contains("name = \"node\"") && received.contains("version = \"20\""),
            "{received}"
        );
        let m = &built.metadata;
        assert_eq!(
            m.default_process_type
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("web")
        );
        let kinds: Vec<String> = m.processes.iter().map(|p| p.kind.to_string()).collect();
        assert_eq!(kinds, ["web", "worker"]);
        assert_eq!(
            m.processes[1].buildpack_id.as_ref().unwrap().as_str(),
            "test/npm"
        );
        assert_eq!(
            built.labels.get("org.example.built-by").map(String::as_str),
            Some("test/npm")
        );
        assert!(tmp.path().join("layers/config/metadata.toml").is_file());
    }

    #[test]
    fn a_failing_buildpack_is_named_with_its_exit_code_and_output() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dirs(tmp.path(), true);
        // npm alone: its build needs node-tool from test/node, so it fails.
        let found = detect(
            &[OrderGroup {
                group: vec![r("test/js", false)],
            }],
            &d,
        )
        .unwrap();
        let mut only_npm = found.group.clone();
        only_npm.group.retain(|m| m.id.as_str() == "test/npm");
        let err = build(
            &only_npm,
            &found.plan,
            &build_dirs(tmp.path()),
            &base_env(),
            &mut BuildLog::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 51);
        let BuildError::Failed { id, code, tail, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((id.as_str(), *code), ("test/npm", 127));
        assert!(tail.contains("node-tool"), "{tail}");
    }
}

mod export {
    use std::collections::BTreeMap;

    use gp_cnb::{JsonLabel, LifecycleMetadata};
    use gp_lifecycle::build::{BuildDirs, BuildLog, build};
    use gp_lifecycle::export::{ExportInput, export};
    use gp_oci::image::{ImageConfig, add_layer, read_image, write_image};
    use gp_oci::layer::{LayerOptions, entries_from_dir};
    use gp_oci::layout::Layout;

    use super::*;

    fn run_image(tmp: &Path) -> (Layout, gp_oci::layout::Desc) {
        run_image_named(tmp, "run", "ID=test\n", BTreeMap::new())
    }

    fn run_image_named(
        tmp: &Path,
        name: &str,
        os_release: &str,
        labels: BTreeMap<String, String>,
    ) -> (Layout, gp_oci::layout::Desc) {
        let rootfs = tmp.join(format!("{name}-rootfs"));
        fs_err::create_dir_all(rootfs.join("etc")).unwrap();
        fs_err::write(rootfs.join("etc/os-release"), os_release).unwrap();
        let layout = Layout::create(&tmp.join(name)).unwrap();
        let layer = add_layer(
            &layout,
            &entries_from_dir(&rootfs, "").unwrap(),
            &LayerOptions::default(),
        )
        .unwrap();
        let config = ImageConfig {
            env: vec![
                "CNB_USER_ID=1001".into(),
                "CNB_GROUP_ID=1002".into(),
                "PATH=/usr/bin:/bin".into(),
            ],
            labels,
            ..ImageConfig::default()
        };
        let desc = write_image(&layout, "run", &[layer], &config).unwrap();
        (layout, desc)
    }

    fn build_and_export(tmp: &Path, out: &Layout) -> gp_lifecycle::export::Exported {
        let d = dirs(tmp, true);
        let found = detect(
            &[OrderGroup {
                group: vec![r("test/js", false)],
            }],
            &d,
        )
        .unwrap();
        let bd = BuildDirs {
            buildpacks: d.buildpacks,
            layers: tmp.join("layers"),
            app: d.app.clone(),
            platform: d.platform,
            exec_env: d.exec_env,
            target: d.target,
        };
        let env: BTreeMap<String, String> =
            [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into();
        let built = build(
            &found.group,
            &found.plan,
            &bd,
            &env,
            &mut BuildLog::default(),
        )
        .unwrap();
        let (run, run_desc) = run_image(tmp);
        export(&ExportInput {
            layers: &bd.layers,
            app: &d.app,
            group: &found.group,
            built: &built,
            launcher: Path::new("/bin/true"),
            run_image: Some((&run, run_desc, "registry.example/run:base".into())),
            out,
            tag: "app",
            memo: None,
            previous: None,
            progress: &gp_lifecycle::progress::Silent,
        })
        .unwrap()
    }

    #[test]
    fn image_has_cnb_layers_labels_and_entrypoint_and_is_reproducible() {
        let tmp = tempfile::tempdir().unwrap();
        let out = Layout::create(&tmp.path().join("out")).unwrap();
        let first = build_and_export(tmp.path(), &out);
        let img = read_image(&out, &first.manifest).unwrap();
        assert_eq!(
            img.layers.len(),
            1 + 6,
            "run layer + node layer, app, launcher, process types, config, sbom"
        );
        assert_eq!(img.config.entrypoint()[0], "/cnb/process/web");
        assert_eq!(img.config.user(), Some("1001:1002"));
        let lm = LifecycleMetadata::from_label(img.config.label(LifecycleMetadata::KEY).unwrap())
            .unwrap();
        assert_eq!(lm.buildpacks[0].key.as_str(), "test/node");
        assert!(lm.buildpacks[0].layers.keys().any(|k| k.as_str() == "node"));
        assert!(lm.sbom.is_some(), "the SBOM layer is recorded");
        // `image` is the name given; `reference` identifies the run image uniquely (a digest reference).
        let (_, run_desc) = run_image(tmp.path());
        let run = lm.run_image.unwrap();
        assert_eq!(run.image, "registry.example/run:base");
        assert_eq!(
            run.reference,
            format!("registry.example/run@{}", run_desc.digest)
        );
        assert_eq!(img.config.label("org.example.built-by"), Some("test/npm"));

        // Same inputs, a fresh build: the same image digest.
        let tmp2 = tempfile::tempdir().unwrap();
        let out2 = Layout::create(&tmp2.path().join("out")).unwrap();
        assert_eq!(
            build_and_export(tmp2.path(), &out2).manifest.digest,
            first.manifest.digest
        );

        // One app file changed: only the app layer (and what names it) changes.
        let tmp3 = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp3.path().join("app")).unwrap();
        fs_err::write(tmp3.path().join("app/server.js"), "changed").unwrap();
        let out3 = Layout::create(&tmp3.path().join("out")).unwrap();
        let third = build_and_export(tmp3.path(), &out3);
        let changed: Vec<&str> = first
            .layers
            .iter()
            .zip(&third.layers)
            .filter(|(a, b)| a.1.digest != b.1.digest)
            .map(|(a, _)| a.0.as_str())
            .collect();
        assert_eq!(changed, ["app"]);
    }

    #[test]
    fn rebase_swaps_the_run_image_and_keeps_app_layers_byte_identical() {
        use gp_lifecycle::rebase::{RebaseError, rebase};
        let tmp = tempfile::tempdir().unwrap();
        let out = Layout::create(&tmp.path().join("out")).unwrap();
        let built = build_and_export(tmp.path(), &out);
        let before = read_image(&out, &built.manifest).unwrap();
        let (run2, run2_desc) = run_image_named(
            tmp.path(),
            "run2",
            "ID=test\nVERSION=patched\n",
            BTreeMap::new(),
        );
        let rebased = rebase(
            &out,
            &built.manifest,
            &run2,
            &run2_desc,
            "registry.example/run:patched",
            "app",
        )
        .unwrap();
        let after = read_image(&out, &rebased).unwrap();
        let new_base = read_image(&run2, &run2_desc).unwrap();
        assert_eq!(after.layers[0].digest, new_base.layers[0].digest);
        assert_ne!(after.layers[0].digest, before.layers[0].digest);
        assert_eq!(
            after.layers[1..],
            before.layers[1..],
            "app layers are untouched"
        );
        let lm = LifecycleMetadata::from_label(after.config.label(LifecycleMetadata::KEY).unwrap())
            .unwrap();
        let run = lm.run_image.unwrap();
        assert_eq!(run.image, "registry.example/run:patched");
        assert_eq!(
            run.reference,
            format!("registry.example/run@{}", run2_desc.digest)
        );
        assert_eq!(run.top_layer, new_base.config.diff_ids()[0]);
        assert_eq!(after.config.entrypoint(), before.config.entrypoint());

        let no = BTreeMap::from([("io.buildpacks.rebasable".to_owned(), "false".to_owned())]);
        let (run3, run3_desc) = run_image_named(tmp.path(), "run3", "ID=other\n", no);
        let err = rebase(&out, &rebased, &run3, &run3_desc, "x", "app2").unwrap_err();
        assert!(matches!(err, RebaseError::NotRebasable), "{err}");
    }
}
