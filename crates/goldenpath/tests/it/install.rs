//! The installed binary alone: `cargo install --root` into an empty directory, then, with nothing but that
//! binary and a fresh `HOME`, a bare `goldenpath build` in an app directory builds a running image on the built-in
//! default builder, and `builder create` takes a pack-style `builder.toml` (order entries without versions, a
//! `.cnb` buildpack made by `goldenpath buildpack package`, `[lifecycle]` and `[[targets]]`).
//!
//! The default stack is the one thing handed in from outside, the way a platform team configures it
//! (`GOLDENPATH_STACK_BUILD_IMAGE`/`GOLDENPATH_STACK_RUN_IMAGE`): the stack the other tests built with mmdebstrap,
//! so that it is not built a second time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::apps::{copy_app, get, ready, start_image};
use crate::registry::free_port;
use crate::{root, run};

fn install(into: &Path) -> PathBuf {
    let (ok, out) = run(Command::new(env!("CARGO"))
        .args([
            "install",
            "--debug",
            "--locked",
            "--offline",
            "--quiet",
            "--root",
        ])
        .arg(into)
        .arg("--path")
        .arg(root().join("crates/goldenpath"))
        // The test build's own target directory: the debug build is already there, so this only copies it.
        .arg("--target-dir")
        .arg(root().join("target")));
    assert!(ok, "{out}");
    let bin = into.join("bin/goldenpath");
    assert!(bin.is_file());
    assert_eq!(
        fs_err::read_dir(into.join("bin")).unwrap().count(),
        1,
        "the binary alone is installed"
    );
    bin
}

/// The default stack's layout, as built by `goldenpath builder default` for the other tests.
fn default_stack() -> PathBuf {
    let _ = crate::apps::builder();
    let stacks = root().join(".cache/goldenpath/stacks");
    fs_err::read_dir(&stacks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("index.json").is_file())
        .expect("the default stack")
}

/// The installed binary with only a fresh `HOME` and the system's `PATH`.
fn alone(bin: &Path, home: &Path, stack: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("NO_COLOR", "1")
        .env(
            "GOLDENPATH_STACK_BUILD_IMAGE",
            format!("oci:{}:build", stack.display()),
        )
        .env(
            "GOLDENPATH_STACK_RUN_IMAGE",
            format!("oci:{}:run", stack.display()),
        )
        .current_dir(dir);
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "npm_config_registry",
        "PIP_INDEX_URL",
    ] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd
}

#[test]
fn the_installed_binary_alone_builds_with_no_flags_and_takes_pack_style_builders() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let bin = install(&tmp.join("install"));
    let home = tmp.join("home");
    fs_err::create_dir_all(&home).unwrap();
    let stack = default_stack();

    // `goldenpath build`, no arguments at all, in the app's directory.
    let app = copy_app("node-express", &tmp.join("node-express"));
    let (ok, out) = run(alone(&bin, &home, &stack, &app).arg("build"));
    assert!(ok, "{out}");
    assert!(out.contains("CREATING THE DEFAULT BUILDER"), "{out}");
    let store = home.join(".cache/goldenpath/images");
    assert!(
        out.contains(&format!(
            "oci:{}:node-express_latest@sha256:",
            store.display()
        )),
        "{out}"
    );
    let port = free_port();
    let running = start_image(&store, "node-express_latest", tmp, port);
    assert!(get(port).contains("node-express"), "the app answers");
    drop(running);

    // A pack-style builder.toml: a `.cnb` buildpack, order entries without versions.
    let embedded = fs_err::read_dir(home.join(".cache/goldenpath/embedded"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("complete").is_file())
        .expect("the buildpacks the binary carries, written out");
    let (ok, out) = run(alone(&bin, &home, &stack, tmp)
        .args(["buildpack", "package", "node.cnb", "--path"])
        .arg(embedded.join("buildpacks/nodejs")));
    assert!(ok, "{out}");
    fs_err::write(
        tmp.join("builder.toml"),
        format!(
            r#"description = "a pack-style builder"
[[buildpacks]]
uri = "node.cnb"
[[buildpacks]]
uri = "file://{python}"
[[order]]
[[order.group]]
id = "io.goldenpath.nodejs"
[[order]]
[[order.group]]
id = "io.goldenpath.python"
[lifecycle]
version = "0.20.0"
[[targets]]
os = "linux"
arch = "amd64"
[build]
image = "oci:{stack}:build"
[[run.images]]
image = "oci:{stack}:run"
"#,
            python = embedded.join("buildpacks/python").display(),
            stack = stack.display()
        ),
    )
    .unwrap();
    let (ok, out) = run(alone(&bin, &home, &stack, tmp).args([
        "builder",
        "create",
        "--config",
        "builder.toml",
        "--tag",
        "oci:builder:pack-style",
    ]));
    assert!(ok, "{out}");
    assert!(out.contains("`[lifecycle]` is ignored"), "{out}");
    let (ok, out) = run(alone(&bin, &home, &stack, &app).args([
        "build",
        "oci:../out:app",
        "--builder",
        "oci:../builder:pack-style",
    ]));
    assert!(ok, "{out}");
    let port = free_port();
    fs_err::create_dir_all(tmp.join("second")).unwrap();
    let running = start_image(&tmp.join("out"), "app", &tmp.join("second"), port);
    assert!(get(port).contains("node-express"), "the app answers");
    drop(running);
}
