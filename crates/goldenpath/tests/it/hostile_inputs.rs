//! Hostile user input files through the binary: links to secrets, FIFOs, directories where files belong, binary
//! Procfiles, oversized pattern lists, and buildpacks writing where they must not. Each is refused by name with an
//! exact message; no planted secret reaches the output; nothing hangs; the source directory is left as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A value that must never reach any output.
const MARKER: &str = "GP_SECRET_MARKER_5f1c";

/// Runs `cmd` to completion within a minute (killing it and failing otherwise): exit code, stdout + stderr.
fn run_within(cmd: &mut Command) -> (i32, String) {
    let mut child = cmd
        .env_remove("GOLDENPATH_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_mins(1) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command blocked: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn goldenpath(dir: &Path, args: &[&str]) -> (i32, String) {
    run_within(
        Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args(args)
            .current_dir(dir),
    )
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Every file under `dir` (not following links) with its content, or the link target.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = path.symlink_metadata().unwrap();
        if meta.is_dir() {
            out.insert(path.clone(), "(directory)".to_owned());
            out.extend(tree(&path));
        } else if meta.is_symlink() {
            out.insert(
                path.clone(),
                format!("-> {}", fs_err::read_link(&path).unwrap().display()),
            );
        } else if meta.is_file() {
            out.insert(
                path.clone(),
                fs_err::read_to_string(&path).unwrap_or_default(),
            );
        } else {
            out.insert(path, "(special)".to_owned());
        }
    }
    out
}

/// A contracts tree in `<tmp>/app-deployments/dev`, and a secret file beside it.
fn contracts() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(tmp.path().join("app-deployments/dev")).unwrap();
    let secret = tmp.path().join("secret.env");
    fs_err::write(&secret, format!("TOKEN={MARKER}\n")).unwrap();
    (tmp, secret)
}

#[test]
fn symlinked_contract_is_refused_in_every_format_without_its_content() {
    let (tmp, secret) = contracts();
    fs_err::os::unix::fs::symlink(
        &secret,
        tmp.path().join("app-deployments/dev/APP-0001.yaml"),
    )
    .unwrap();
    let before = tree(tmp.path());
    let (code, human) = goldenpath(tmp.path(), &["contract", "validate", "app-deployments"]);
    assert_eq!(code, 2, "{human}");
    assert_eq!(
        human,
        "error[io]: `app-deployments/dev/APP-0001.yaml` is a symbolic link; inputs are read only from regular files: replace the link with the file itself\n--> app-deployments/dev/APP-0001.yaml:1:1\n = help: contracts are reviewed as files of the repository: commit the file itself, not a link\n\nchecked 0 files (0 contracts): 0 valid, 0 invalid; 1 error, 0 warnings\n"
    );
    for format in ["json", "github", "sarif"] {
        let (code, out) = goldenpath(
            tmp.path(),
            &[
                "contract",
                "validate",
                "--format",
                format,
                "app-deployments",
            ],
        );
        assert_eq!(code, 2, "{format}: {out}");
        assert!(!out.contains(MARKER), "{format}: {out}");
        assert!(out.contains("is a symbolic link"), "{format}: {out}");
    }
    assert_eq!(tree(tmp.path()), before);
}

#[test]
fn contract_linked_to_proc_environ_prints_no_environment() {
    let (tmp, _) = contracts();
    fs_err::os::unix::fs::symlink(
        "/proc/self/environ",
        tmp.path().join("app-deployments/dev/APP-0001.yaml"),
    )
    .unwrap();
    let (code, out) = run_within(
        Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args([
                "contract",
                "validate",
                "--format",
                "json",
                "app-deployments",
            ])
            .current_dir(tmp.path())
            .env("GP_PLANTED", MARKER),
    );
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains(MARKER), "{out}");
}

#[test]
fn fifo_contract_and_fifo_or_directory_config_are_refused_without_blocking() {
    let (tmp, _) = contracts();
    mkfifo(&tmp.path().join("app-deployments/dev/APP-0001.yaml"));
    let (code, out) = goldenpath(tmp.path(), &["contract", "validate", "app-deployments"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("error[io]: `app-deployments/dev/APP-0001.yaml` is a FIFO (named pipe), not a regular file: replace it with a regular file (or remove it)\n"),
        "{out}"
    );

    for kind in ["dir", "fifo"] {
        let (tmp, _) = contracts();
        fs_err::write(
            tmp.path().join("app-deployments/dev/APP-0001.yaml"),
            "apiVersion: goldenpath.io/v1\n",
        )
        .unwrap();
        let config = tmp.path().join("goldenpath.toml");
        let what = if kind == "dir" {
            fs_err::create_dir(&config).unwrap();
            "a directory"
        } else {
            mkfifo(&config);
            "a FIFO (named pipe)"
        };
        let (code, out) = goldenpath(tmp.path(), &["contract", "validate", "app-deployments"]);
        assert_eq!(code, 2, "{kind}: {out}");
        assert!(
            out.starts_with(&format!("error[io]: `goldenpath.toml` is {what}, not a regular file: replace it with a regular file (or remove it)\n")),
            "{kind}: {out}"
        );
        assert!(
            out.contains("not checked: `goldenpath.toml` is invalid"),
            "{out}"
        );
    }
}

#[test]
fn config_option_naming_a_directory_says_so() {
    let (tmp, _) = contracts();
    fs_err::write(
        tmp.path().join("app-deployments/dev/APP-0001.yaml"),
        "apiVersion: goldenpath.io/v1\n",
    )
    .unwrap();
    fs_err::create_dir(tmp.path().join("platform")).unwrap();
    let (code, out) = goldenpath(
        tmp.path(),
        &[
            "contract",
            "validate",
            "--config",
            "platform",
            "app-deployments",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        out,
        "error: `--config platform` is a directory; it takes the platform config file\n  = help: pass the file, e.g. `--config platform/goldenpath.toml`\n"
    );
}

#[test]
fn binary_procfile_fails_detect_naming_the_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir(&app).unwrap();
    fs_err::write(app.join("requirements.txt"), "flask\n").unwrap();
    fs_err::write(app.join("app.py"), "import flask\n").unwrap();
    fs_err::write(app.join("Procfile"), b"web: \x7fELF\x02\x01\x01\x00\x00").unwrap();
    let (code, out) = goldenpath(tmp.path(), &["detect", "app"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: Procfile: `app/Procfile` holds a NUL byte (line 1, byte offset 12): it must be text; remove the byte\n"),
        "{out}"
    );
    assert!(!out.contains("ok: the build has what it needs"), "{out}");
}

#[test]
fn symlinked_procfile_fails_detect_without_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir(&app).unwrap();
    fs_err::write(app.join("requirements.txt"), "flask\n").unwrap();
    fs_err::write(app.join("app.py"), "import flask\n").unwrap();
    fs_err::write(tmp.path().join("secret"), format!("web: {MARKER}\n")).unwrap();
    fs_err::os::unix::fs::symlink(tmp.path().join("secret"), app.join("Procfile")).unwrap();
    let (code, out) = goldenpath(tmp.path(), &["detect", "app"]);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains(MARKER), "{out}");
    assert!(
        out.contains("error: Procfile: `app/Procfile` is a symbolic link; inputs are read only from regular files: replace the link with the file itself\n"),
        "{out}"
    );
}

/// `goldenpath build --sandbox none` of `app` with the test buildpacks' `test/js` order.
fn build_none(tmp: &Path, app: &Path) -> (i32, String) {
    let order = crate::js_order(tmp);
    let image = format!("oci:{}:app", tmp.join("out").display());
    run_within(
        crate::test_build(&image, &order, app)
            .args(["--sandbox", "none"])
            .env("XDG_CACHE_HOME", tmp.join("cache")),
    )
}

#[test]
fn symlinked_project_toml_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = crate::js_app(tmp.path());
    fs_err::write(
        tmp.path().join("secret.toml"),
        format!("[_]\nschema-version = \"{MARKER}\"\n"),
    )
    .unwrap();
    fs_err::os::unix::fs::symlink(tmp.path().join("secret.toml"), app.join("project.toml"))
        .unwrap();
    let (code, out) = build_none(tmp.path(), &app);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains(MARKER), "{out}");
    assert!(
        out.contains(&format!(
            "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
            app.join("project.toml").display()
        )),
        "{out}"
    );
}

#[test]
fn fifo_in_a_filtered_source_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = crate::js_app(tmp.path());
    fs_err::write(
        app.join("project.toml"),
        "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [\"*.log\"]\n",
    )
    .unwrap();
    mkfifo(&app.join("pipe"));
    let (code, out) = build_none(tmp.path(), &app);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "copying the source: `{}` is a FIFO (named pipe): the app source may hold only regular files, directories and symbolic links; remove it or exclude it in project.toml",
            app.join("pipe").display()
        )),
        "{out}"
    );
}

#[test]
fn huge_exclude_lists_are_refused_with_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = crate::js_app(tmp.path());
    let project = app.join("project.toml");
    let write = |n: usize| {
        let patterns: Vec<String> = (0..n).map(|i| format!("\"f{i}\"")).collect();
        fs_err::write(
            &project,
            format!(
                "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [{}]\n",
                patterns.join(",")
            ),
        )
        .unwrap();
    };
    write(200_000);
    let (code, out) = build_none(tmp.path(), &app);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "`{}` is 1888945 bytes, over the limit of 1048576 bytes",
            project.display()
        )),
        "{out}"
    );
    write(5000);
    let (code, out) = build_none(tmp.path(), &app);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "invalid project.toml at `{}`: `io.buildpacks.exclude` has 5000 patterns, over the limit of 1000: use directory patterns (`dir/`) and wildcards (`*.log`) instead of listing files",
            project.display()
        )),
        "{out}"
    );
}

#[test]
fn project_buildpack_outside_the_app_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = crate::js_app(tmp.path());
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(
        outside.join("buildpack.toml"),
        format!("api = \"{MARKER}\"\n"),
    )
    .unwrap();
    for uri in ["../outside", "file:///etc"] {
        fs_err::write(
            app.join("project.toml"),
            format!("[_]\nschema-version = \"0.2\"\n\n[[io.buildpacks.group]]\nuri = \"{uri}\"\n"),
        )
        .unwrap();
        let (code, out) = build_none(tmp.path(), &app);
        assert_eq!(code, 2, "{out}");
        assert!(!out.contains(MARKER), "{out}");
        assert!(
            out.contains(&format!(
                "project.toml `io.buildpacks.group[0]`: `uri = \"{uri}\"`: a local buildpack is a directory inside the app; use a relative path without `..`"
            )),
            "{uri}: {out}"
        );
    }
}

#[test]
fn buildpacks_without_a_sandbox_do_not_write_into_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, _) = crate::js_app(tmp.path());
    fs_err::write(
        app.join("project.toml"),
        "[_]\nschema-version = \"0.2\"\n\n[[io.buildpacks.group]]\nid = \"test/writer\"\n[io.buildpacks.group.script]\napi = \"0.10\"\ninline = \"echo overwritten > package.json && echo new > from-buildpack.txt && mkdir -p node_modules\"\n",
    )
    .unwrap();
    let before = tree(&app);
    let (code, out) = build_none(tmp.path(), &app);
    assert_eq!(code, 0, "{out}");
    assert_eq!(tree(&app), before, "{out}");
}
