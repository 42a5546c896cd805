//! Crate-level tests: the committed schema files are what the types generate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod hostile;

use std::path::Path;

use gp_contract::schema::{app_deployment_schema_json, app_deployment_schema_yaml};

fn check_committed(rel: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    if std::env::var_os("GOLDENPATH_UPDATE_SCHEMAS").is_some() {
        fs_err::write(&path, generated).unwrap();
        return;
    }
    let committed = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "`{rel}` is out of date with the contract types: run `GOLDENPATH_UPDATE_SCHEMAS=1 cargo test -p gp-contract --test it` and commit"
    );
}

#[test]
fn committed_json_schema_matches_types() {
    check_committed(
        "schemas/requests/app-deployment.schema.json",
        &app_deployment_schema_json(),
    );
}

#[test]
fn committed_yaml_schema_matches_types() {
    check_committed(
        "schemas/requests/app-deployment.schema.yaml",
        &app_deployment_schema_yaml(),
    );
}

#[test]
fn yaml_schema_is_the_json_schema() {
    let yaml = app_deployment_schema_yaml();
    // Every line is `"key": value`, `- value` or a bare key: the writer quotes every string.
    assert!(yaml.lines().skip(1).all(|l| {
        let t = l.trim_start();
        t.starts_with('"')
            || t.starts_with('-')
            || t.parse::<f64>().is_ok()
            || ["true", "false", "null"].contains(&t)
    }));
}
