//! `goldenpath detect` on the example apps: what each good app is, and the exact error each failing one gets
//! (snapshots), with exit codes 0 and 1; `--json` for machines.

use std::process::Command;

use crate::root;

fn detect(app: &str, json: bool) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_goldenpath"));
    cmd.arg("detect")
        .arg(root().join("examples/apps").join(app));
    if json {
        cmd.arg("--json");
    }
    let o = cmd.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn example_apps_preflight() {
    for (app, code) in [
        ("python-flask", 0),
        ("python-fastapi", 0),
        ("node-express", 0),
        ("python-no-requirements", 1),
        ("node-no-lockfile", 1),
    ] {
        let (got, out) = detect(app, false);
        assert_eq!(got, code, "{app}:\n{out}");
        insta::assert_snapshot!(format!("detect-{app}"), out);
    }
}

#[test]
fn json_report_names_language_and_findings() {
    let (code, out) = detect("node-no-lockfile", true);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["language"], "node");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert_eq!(v["findings"][0]["file"], "package.json");
    let (code, out) = detect("python-flask", true);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runtime"]["value"], "3.11");
    assert_eq!(v["start"]["source"], "Procfile");
}
