//! Detection with the project's own test buildpacks (written from the spec), run directly on this host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use std::path::{Path, PathBuf};

use gp_cnb::{GroupRef, OrderGroup};
use gp_lifecycle::detect::{DetectDirs, DetectError, detect};

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
    std::fs::create_dir_all(&app).unwrap();
    if with_package_json {
        std::fs::write(app.join("package.json"), "{}").unwrap();
    }
    std::fs::create_dir_all(tmp.join("platform")).unwrap();
    DetectDirs {
        buildpacks: fixtures(),
        app,
        platform: tmp.join("platform"),
        scratch: tmp.join("scratch"),
        exec_env: "production".into(),
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
