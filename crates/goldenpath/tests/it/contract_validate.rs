use serde_json::Value;

use crate::{fixtures, goldenpath, root};

#[test]
fn every_valid_example_passes() {
    let out = goldenpath(&[
        "contract",
        "validate",
        "examples/contracts",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["diagnostics"], serde_json::json!([]), "{v:#}");
    assert!(v["summary"]["contracts"].as_u64().unwrap() >= 6);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_invalid_fixture_fails_with_located_fixable_errors() {
    let all = fixtures();
    assert!(all.len() >= 30, "at least 30 invalid fixtures");
    let on_disk = fs_err::read_dir(root().join("examples/contracts-invalid"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count();
    assert_eq!(
        on_disk,
        all.len(),
        "fixtures.toml lists every fixture directory"
    );
    for f in &all {
        let dir = format!("examples/contracts-invalid/{}", f.name);
        let human = goldenpath(&["contract", "validate", &dir, "--color", "never"]);
        assert_eq!(human.status.code(), Some(1), "{}: exit code", f.name);
        let text = String::from_utf8(human.stderr).unwrap();
        insta::assert_snapshot!(f.name.as_str(), text);

        let json = goldenpath(&["contract", "validate", &dir, "--format", "json"]);
        let v: Value = serde_json::from_slice(&json.stdout).unwrap();
        let errors: Vec<&Value> = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error")
            .collect();
        assert!(!errors.is_empty(), "{}: no error reported", f.name);
        for d in errors {
            let ctx = format!("{}: {d:#}", f.name);
            assert!(d["file"].as_str().unwrap().starts_with(&dir), "{ctx}");
            assert!(
                d["line"].as_u64().unwrap() >= 1 && d["column"].as_u64().unwrap() >= 1,
                "{ctx}"
            );
            assert!(
                d["hint"].as_str().is_some_and(|h| !h.is_empty()),
                "{ctx}: no fix"
            );
            let fieldless = ["yaml-syntax", "empty-file"].contains(&d["code"].as_str().unwrap());
            assert!(
                fieldless || d["field"].as_str().is_some_and(|p| !p.is_empty()),
                "{ctx}: no field path"
            );
        }
    }
}

#[test]
fn machine_formats_are_stable() {
    let dir = "examples/contracts-invalid/duplicate-host";
    for format in ["json", "github", "sarif"] {
        let out = goldenpath(&["contract", "validate", dir, "--format", format]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8(out.stdout)
            .unwrap()
            .replace(env!("CARGO_PKG_VERSION"), "[version]");
        insta::assert_snapshot!(format!("format-{format}"), text);
    }
}

#[test]
fn sarif_is_well_formed() {
    let out = goldenpath(&[
        "contract",
        "validate",
        "examples/contracts-invalid/binding-duplicate",
        "--format",
        "sarif",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    for r in run["results"].as_array().unwrap() {
        let idx = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(
            region["endColumn"].as_u64() > region["startColumn"].as_u64()
                || region["endLine"].as_u64() > region["startLine"].as_u64()
        );
    }
}

#[test]
fn usage_and_io_errors_exit_2() {
    let out = goldenpath(&["contract", "validate", "does/not/exist"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does/not/exist"));
    let out = goldenpath(&["contract", "validate", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = goldenpath(&[
        "contract",
        "validate",
        "examples/contracts",
        "--config",
        "nope.toml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn default_tree_is_used_from_the_repo_root() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["contract", "validate"])
        .current_dir(root().join("examples/contracts"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["contract", "validate"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_file_and_every_error_is_reported_in_one_run() {
    let out = goldenpath(&[
        "contract",
        "validate",
        "examples/contracts-invalid/memory-policy",
        "examples/contracts-invalid/cpu-policy",
        "examples/contracts-invalid/binding-ref",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 3);
    let mut files: Vec<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    files.dedup();
    assert_eq!(files.len(), 3, "each file's errors are reported");
    // The three fixtures share an id, application and host in `dev`: those cross-file errors are reported too.
    assert!(
        v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "duplicate-id")
    );
}
