//! The committed JSON Schema and a real JSON-Schema validator agree with us on every example.

use std::process::Command;

use crate::{fixtures, require_tool, root};

const SCHEMA: &str = "schemas/requests/app-deployment.schema.json";

fn yaml_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs_err::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn check_jsonschema(files: &[String]) -> bool {
    Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(SCHEMA)
        .args(files)
        .current_dir(root())
        .output()
        .expect("run check-jsonschema")
        .status
        .success()
}

#[test]
fn check_jsonschema_agrees_on_every_example() {
    if !require_tool("check-jsonschema") {
        return;
    }
    let valid = yaml_files(&root().join("examples/contracts"));
    assert!(valid.len() >= 6);
    assert!(
        check_jsonschema(&valid),
        "check-jsonschema rejects a valid example"
    );
    for f in fixtures() {
        if f.schema == "none" {
            continue;
        }
        let files = yaml_files(&root().join("examples/contracts-invalid").join(&f.name));
        let verdict = if check_jsonschema(&files) {
            "accept"
        } else {
            "reject"
        };
        assert_eq!(
            verdict, f.schema,
            "fixture `{}`: check-jsonschema says {verdict}",
            f.name
        );
    }
}
