use super::*;

fn config(json: &serde_json::Value) -> ConfigFile {
    serde_json::from_value(json.clone()).unwrap()
}

fn rootfs(passwd: &str, group: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(d.path().join("etc")).unwrap();
    fs_err::write(d.path().join("etc/passwd"), passwd).unwrap();
    fs_err::write(d.path().join("etc/group"), group).unwrap();
    d
}

#[test]
fn the_image_process_with_port_added_and_overriding() {
    let c = config(&serde_json::json!({
        "config": {
            "User": "1000:1000",
            "Env": ["PATH=/cnb/process:/usr/bin", "PORT=1", "CNB_APP_DIR=/workspace"],
            "Entrypoint": ["/cnb/process/web"],
            "Cmd": ["--verbose"],
            "WorkingDir": "/workspace"
        }
    }));
    let r = rootfs("", "");
    let p = process_of(&c, r.path(), "img", &[("PORT".into(), "8080".into())]).unwrap();
    assert_eq!(p.args, ["/cnb/process/web", "--verbose"]);
    assert_eq!(
        p.env,
        [
            "PATH=/cnb/process:/usr/bin",
            "CNB_APP_DIR=/workspace",
            "PORT=8080"
        ]
    );
    assert_eq!((p.uid, p.gid, p.cwd.as_str()), (1000, 1000, "/workspace"));
}

#[test]
fn user_names_come_from_the_image_and_unknown_ones_are_refused() {
    let r = rootfs(
        "root:x:0:0::/root:/bin/sh\ncnb:x:1000:1001::/home/cnb:/bin/bash\n",
        "root:x:0:\ncnb:x:1001:\nstaff:x:50:\n",
    );
    let run = |user: &str| {
        let c = config(&serde_json::json!({"config": {"User": user, "Cmd": ["x"]}}));
        process_of(&c, r.path(), "img", &[]).map(|p| (p.uid, p.gid))
    };
    assert_eq!(run("cnb").unwrap(), (1000, 1001));
    assert_eq!(run("cnb:staff").unwrap(), (1000, 50));
    assert_eq!(run("1000").unwrap(), (1000, 1001));
    assert_eq!(run("").unwrap(), (0, 0));
    let e = run("nobody-here").unwrap_err().to_string();
    assert!(e.contains("`nobody-here`") && e.contains("uid:gid"), "{e}");
}

#[test]
fn a_linked_etc_is_not_read() {
    let d = tempfile::tempdir().unwrap();
    let outside = rootfs("cnb:x:4242:4242::/:/bin/sh\n", "");
    fs_err::os::unix::fs::symlink(outside.path().join("etc"), d.path().join("etc")).unwrap();
    let c = config(&serde_json::json!({"config": {"User": "cnb", "Cmd": ["x"]}}));
    assert!(process_of(&c, d.path(), "img", &[]).is_err());
}

#[test]
fn nothing_to_run_names_the_image_and_the_fix() {
    let c = config(&serde_json::json!({"config": {"User": "1000"}}));
    let r = rootfs("", "");
    let e = process_of(&c, r.path(), "oci:/x:app", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`oci:/x:app`") && e.contains("Procfile"), "{e}");
}

#[test]
fn the_runtime_config_has_a_network_namespace_and_the_user() {
    let p = Process {
        args: vec!["/cnb/process/web".into()],
        env: vec!["PORT=8080".into()],
        cwd: "/workspace".into(),
        uid: 1000,
        gid: 1000,
    };
    let s = spec(&p, "goldenpath-app").unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["hostname"], "goldenpath-app");
    assert_eq!(v["root"]["readonly"], false);
    assert_eq!(v["process"]["user"]["uid"], 1000);
    assert_eq!(v["process"]["terminal"], false);
    assert_eq!(v["process"]["cwd"], "/workspace");
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "mount", "ipc", "uts"] {
        assert!(ns.contains(&want), "{ns:?}");
    }
}
