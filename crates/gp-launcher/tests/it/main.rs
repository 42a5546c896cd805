//! The launcher binary against a layers tree laid out as an exported image has it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

use std::path::Path;
use std::process::{Command, Output};

fn layers(root: &Path) {
    let l = root.join("layers");
    fs_err::create_dir_all(l.join("config")).unwrap();
    fs_err::write(
        l.join("config/metadata.toml"),
        r#"buildpack-default-process-type = "web"

[[buildpacks]]
id = "test/bp"
version = "1.0.0"
api = "0.10"

[[processes]]
type = "web"
command = ["sh", "-c", "echo web:$FOO:$BAR:$EXECD:$(pwd):$CNB_LAYERS_DIR:$*", "web-arg0"]
args = ["default-arg"]
buildpack-id = "test/bp"

[[buildpacks]]
id = "test/old"
version = "1.0.0"
api = "0.8"

[[processes]]
type = "legacy"
command = ["echo $PROF:$APPPROF:$(pwd):$1"]
args = ["a1"]
direct = false
buildpack-id = "test/old"
working-dir = "/tmp"

[[processes]]
type = "worker"
command = ["tool"]
args = ["--queue", "jobs"]
buildpack-id = "test/bp"
working-dir = "/tmp"
"#,
    )
    .unwrap();
    let layer = l.join("test_bp/runtime");
    for d in ["bin", "env", "env.launch/web", "exec.d"] {
        fs_err::create_dir_all(layer.join(d)).unwrap();
    }
    fs_err::write(
        layer.join("bin/tool"),
        "#!/bin/sh\necho tool \"$@\" in $(pwd)\n",
    )
    .unwrap();
    fs_err::write(layer.join("env/FOO.override"), "foo").unwrap();
    fs_err::write(layer.join("env.launch/web/BAR.default"), "bar-for-web").unwrap();
    fs_err::write(
        layer.join("exec.d/set"),
        "#!/bin/sh\necho 'EXECD = \"from-exec-d\"' >&3\n",
    )
    .unwrap();
    for f in ["bin/tool", "exec.d/set"] {
        Command::new("chmod")
            .arg("+x")
            .arg(layer.join(f))
            .status()
            .unwrap();
    }
    fs_err::create_dir_all(root.join("workspace")).unwrap();
}

fn launch(root: &Path, program: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", "/cnb/process:/usr/bin:/bin")
        .env("CNB_LAYERS_DIR", root.join("layers"))
        .env("CNB_APP_DIR", root.join("workspace"))
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[test]
fn default_process_gets_layer_env_exec_d_and_working_dir() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_launcher"));
    let o = launch(tmp.path(), bin, &[], &[]);
    let ws = tmp.path().join("workspace");
    assert_eq!(
        out(&o),
        format!(
            "web:foo:bar-for-web:from-exec-d:{}::default-arg",
            ws.display()
        )
    );
    // User args replace the default args (Buildpack API >= 0.9).
    let o = launch(tmp.path(), bin, &[("CNB_PROCESS_TYPE", "web")], &["mine"]);
    assert!(out(&o).ends_with(":mine"), "{}", out(&o));
}

#[test]
fn process_by_argv0_symlink_with_layer_bin_on_path() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let link = tmp.path().join("process/worker");
    fs_err::create_dir_all(link.parent().unwrap()).unwrap();
    fs_err::os::unix::fs::symlink(env!("CARGO_BIN_EXE_launcher"), &link).unwrap();
    let o = launch(tmp.path(), &link, &[], &[]);
    assert_eq!(out(&o), "tool --queue jobs in /tmp");
}

#[test]
fn unknown_process_types_fail_with_the_list_and_code_82() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let o = launch(
        tmp.path(),
        Path::new(env!("CARGO_BIN_EXE_launcher")),
        &[("CNB_PROCESS_TYPE", "nope")],
        &[],
    );
    assert_eq!(o.status.code(), Some(82));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`nope`") && err.contains("web, legacy, worker"),
        "{err}"
    );
}

#[test]
fn user_commands_run_direct_after_double_dash_or_through_bash() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let bin = Path::new(env!("CARGO_BIN_EXE_launcher"));
    let o = launch(tmp.path(), bin, &[], &["--", "tool", "x"]);
    assert!(out(&o).starts_with("tool x in "), "{}", out(&o));
    let o = launch(tmp.path(), bin, &[], &["echo $FOO-shell"]);
    assert_eq!(out(&o), "foo-shell");
}

#[test]
fn shell_processes_source_profile_d_then_the_app_profile() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let layer = tmp.path().join("layers/test_bp/runtime");
    fs_err::create_dir_all(layer.join("profile.d/legacy")).unwrap();
    fs_err::write(layer.join("profile.d/10-a.sh"), "export PROF=a\n").unwrap();
    fs_err::write(layer.join("profile.d/20-b.sh"), "export PROF=\"$PROF+b\"\n").unwrap();
    fs_err::write(
        layer.join("profile.d/legacy/1.sh"),
        "export PROF=\"$PROF+legacy\"\n",
    )
    .unwrap();
    // Sourced in <app> (a relative path works), after the layers' scripts.
    fs_err::write(
        tmp.path().join("workspace/.profile"),
        "export APPPROF=\"app-$(basename \"$PWD\")\"\n",
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_launcher"));
    // A non-direct process of an older buildpack: profile.d, then profile.d/<type>, .profile, then its working dir.
    let o = launch(tmp.path(), bin, &[("CNB_PROCESS_TYPE", "legacy")], &[]);
    assert_eq!(out(&o), "a+b+legacy:app-workspace:/tmp:a1");
    // A user command through bash gets the general scripts only.
    let o = launch(tmp.path(), bin, &[], &["echo $PROF:$APPPROF"]);
    assert_eq!(out(&o), "a+b:app-workspace");
    // Direct processes never see a shell.
    let o = launch(
        tmp.path(),
        bin,
        &[],
        &["--", "sh", "-c", "echo ${PROF:-none}"],
    );
    assert_eq!(out(&o), "none");
}

/// Platform API launcher: with no process type, no default process and no command, the launcher fails (exit 82,
/// the launch error range) and says so in the reference wording, followed by what to do.
#[test]
fn a_bare_launch_without_a_default_process_fails_with_code_82() {
    let tmp = tempfile::tempdir().unwrap();
    layers(tmp.path());
    let metadata = tmp.path().join("layers/config/metadata.toml");
    let text = fs_err::read_to_string(&metadata).unwrap();
    fs_err::write(
        &metadata,
        text.replace("buildpack-default-process-type = \"web\"\n", ""),
    )
    .unwrap();
    let o = launch(
        tmp.path(),
        Path::new(env!("CARGO_BIN_EXE_launcher")),
        &[],
        &[],
    );
    assert_eq!(o.status.code(), Some(82));
    assert_eq!(o.stdout, b"");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ERROR: failed to launch: no process type was given and the image has no default process; available: web, legacy, worker; run one with `CNB_PROCESS_TYPE=<type>` or pass a command\n"
    );
}
