//! End to end through the sandbox, with real parts: a builder made of a busybox build image, our static launcher
//! and lifecycle and a test buildpack; `goldenpath build --sandbox namespaces --publish` into a loopback registry;
//! `skopeo inspect`, `umoci unpack` and `runc run` of the result as the CNB user; rebuilds that upload nothing (no
//! change) or only the app layer (one file changed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gp_oci::image::{ImageConfig, add_layer, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;

use crate::registry::RegistryServer;
use crate::{require_tool, root, run};

/// The static `launcher` and `lifecycle` (built once per test run by `scripts/static-bins.sh`).
pub fn static_bins() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let o = Command::new("bash")
            .arg(root().join("scripts/static-bins.sh"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
    })
}

const APPLETS: &[&str] = &[
    "sh", "mkdir", "printf", "cp", "chmod", "cat", "echo", "id", "head", "pwd", "test", "[",
    "true", "ls", "env", "rm",
];

/// A tiny Linux image: busybox (static) as `/bin/*`, a CNB user 1000:1000 with a home, `os-release` as given.
/// The same shape serves as build and run image.
pub fn busybox_image(dir: &Path, tag: &str, release: &str) -> String {
    let layout = Layout::create(dir).unwrap();
    let dir_entry = |p: &str| Entry {
        path: p.into(),
        kind: Kind::Dir,
        executable: true,
    };
    let file = |p: &str, text: &str| Entry {
        path: p.into(),
        kind: Kind::File(Source::Bytes(text.as_bytes().to_vec())),
        executable: false,
    };
    let mut entries = vec![
        dir_entry("bin"),
        Entry {
            path: "bin/busybox".into(),
            kind: Kind::File(Source::Path("/bin/busybox".into())),
            executable: true,
        },
    ];
    for a in APPLETS {
        entries.push(Entry {
            path: format!("bin/{a}"),
            kind: Kind::Symlink("busybox".into()),
            executable: false,
        });
    }
    entries.extend([
        dir_entry("etc"),
        file("etc/group", "root:x:0:\ncnb:x:1000:\n"),
        file("etc/os-release", release),
        file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\n",
        ),
        dir_entry("home"),
        dir_entry("tmp"),
    ]);
    let base = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    let home = add_layer(
        &layout,
        &[dir_entry("home"), dir_entry("home/cnb")],
        &LayerOptions {
            uid: 1000,
            gid: 1000,
            ..LayerOptions::default()
        },
    )
    .unwrap();
    let config = ImageConfig {
        user: Some("1000:1000".into()),
        env: vec![
            "PATH=/bin".into(),
            "CNB_USER_ID=1000".into(),
            "CNB_GROUP_ID=1000".into(),
        ],
        labels: [(
            "io.buildpacks.base.distro.name".to_owned(),
            "busybox".to_owned(),
        )]
        .into(),
        ..ImageConfig::default()
    };
    write_image(&layout, tag, &[base, home], &config).unwrap();
    format!("oci:{}:{tag}", dir.display())
}

/// A builder with the `test/hello` buildpack on the busybox image, run image `run-v1` of the same layout.
pub fn hello_builder(tmp: &Path) -> (String, String) {
    let base = tmp.join("base");
    let build_ref = busybox_image(&base, "build", "ID=busybox\nVERSION_ID=1\n");
    let run_ref = busybox_image(&base, "run-v1", "ID=busybox\nVERSION_ID=1\n");
    let bps = root().join("crates/gp-lifecycle/tests/fixtures/buildpacks");
    let config = tmp.join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"{}/test_hello/1.0.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/hello\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"{build_ref}\"\n\n[[run.images]]\nimage = \"{run_ref}\"\n",
            bps.display()
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:hello", tmp.join("builders").display());
    let bins = static_bins();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["builder", "create", "--tag", &builder, "--config"])
        .arg(&config)
        .arg("--launcher")
        .arg(bins.join("launcher"))
        .arg("--lifecycle")
        .arg(bins.join("lifecycle")));
    assert!(ok, "{out}");
    (builder, run_ref)
}

fn published_digest(out: &str) -> String {
    out.lines()
        .find(|l| l.contains("*** Published"))
        .and_then(|l| l.split('@').nth(1))
        .and_then(|d| d.split(':').take(2).collect::<Vec<_>>().join(":").into())
        .unwrap_or_else(|| panic!("no digest in:\n{out}"))
}

/// Pulls `image` with skopeo into an OCI layout, unpacks it with umoci and runs it with runc; returns the output.
fn run_with_runc(tmp: &Path, image: &str, name: &str) -> String {
    let layout = tmp.join(format!("pulled-{name}"));
    let (ok, out) = run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &format!("oci:{}:app", layout.display()),
    ]));
    assert!(ok, "{out}");
    let bundle = tmp.join(format!("bundle-{name}"));
    let (ok, out) = run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:app", layout.display()))
        .arg(&bundle));
    assert!(ok, "{out}");
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&config_path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    fs_err::write(&config_path, config.to_string()).unwrap();
    let state = tmp.join("runc-state");
    let o = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("gp-test-{}-{name}", std::process::id()))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "runc run failed:\n{text}");
    text
}

#[test]
fn sandboxed_build_publishes_an_image_that_runs_as_the_cnb_user() {
    if !require_tool("docker-registry")
        || !require_tool("skopeo")
        || !require_tool("umoci")
        || !require_tool("runc")
        || !Path::new("/bin/busybox").is_file()
    {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _run_ref) = hello_builder(tmp.path());
    // The run image in the registry, and a patched one to rebase onto later.
    let run_v1 = format!("127.0.0.1:{}/run:v1", reg.port);
    let run_v2 = format!("127.0.0.1:{}/run:v2", reg.port);
    let patched = busybox_image(
        &tmp.path().join("base"),
        "run-v2",
        "ID=busybox\nVERSION_ID=2\n",
    );
    for (from, to) in [
        (
            format!("oci:{}:run-v1", tmp.path().join("base").display()),
            &run_v1,
        ),
        (patched, &run_v2),
    ] {
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath")).args([
            "image",
            "copy",
            &from,
            &format!("docker://{to}"),
        ]));
        assert!(ok, "{out}");
    }
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("hello.txt"), "world").unwrap();
    let image = format!("127.0.0.1:{}/hello:1", reg.port);
    let build = || {
        let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args([
                "build",
                &image,
                "--publish",
                "--sandbox",
                "namespaces",
                "--builder",
                &builder,
                "--run-image",
                &run_v1,
                "--path",
            ])
            .arg(&app)
            .env("XDG_CACHE_HOME", tmp.path().join("cache")));
        assert!(ok, "{out}");
        out
    };
    let first = build();
    eprintln!("{first}");
    assert!(
        first.contains("[test/hello] building as uid 1000 gid 1000 in /workspace"),
        "{first}"
    );
    // The source directory is not touched by the build.
    assert_eq!(fs_err::read_dir(&app).unwrap().count(), 1);

    let (ok, inspect) = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]));
    assert!(ok, "{inspect}");
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert!(
        v["Labels"]["io.buildpacks.lifecycle.metadata"].is_string(),
        "{v:#}"
    );
    assert_eq!(v["Digest"], published_digest(&first).as_str());

    let output = run_with_runc(tmp.path(), &image, "v1");
    assert!(
        output.contains("hello world from uid 1000 greeting=launched"),
        "{output}"
    );

    let after_first = reg.uploads();
    let second = build();
    assert_eq!(published_digest(&first), published_digest(&second));
    assert_eq!(
        reg.uploads(),
        after_first,
        "no change, no upload:\n{second}"
    );
    assert!(second.contains("0 blob(s) uploaded"), "{second}");

    fs_err::write(app.join("hello.txt"), "again").unwrap();
    let third = build();
    assert_eq!(
        reg.uploads() - after_first,
        2,
        "only the app layer and the config are new:\n{third}"
    );
    let output = run_with_runc(tmp.path(), &image, "v2");
    assert!(output.contains("hello again from uid 1000"), "{output}");

    rebase_in_the_registry(&reg, tmp.path(), &image, &run_v1, &run_v2);
}

fn rebase_in_the_registry(
    reg: &RegistryServer,
    tmp: &Path,
    image: &str,
    run_v1: &str,
    run_v2: &str,
) {
    // Rebase in the registry onto the patched run image: only a config and a manifest are uploaded, the run
    // image's layers are mounted, the app layers stay byte for byte, and the image runs on the new base.
    let inspect = |image: &str| -> serde_json::Value {
        let (ok, out) = run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ]));
        assert!(ok, "{out}");
        serde_json::from_str(&out).unwrap()
    };
    let before = inspect(image);
    let uploads = reg.uploads();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath")).args([
        "rebase",
        image,
        "--run-image",
        run_v2,
        "--publish",
    ]));
    assert!(ok, "{out}");
    assert_eq!(
        reg.uploads() - uploads,
        1,
        "only the config: {out}\n{}",
        reg.post_lines().join("\n")
    );
    assert!(out.contains("1 mounted"), "{out}");
    let after = inspect(image);
    let layers = |v: &serde_json::Value| -> Vec<String> {
        v["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_owned())
            .collect()
    };
    let base = layers(&inspect(run_v1)).len();
    assert_eq!(
        layers(&before)[base..],
        layers(&after)[base..],
        "app layers kept"
    );
    assert_eq!(layers(&after)[..base], layers(&inspect(run_v2))[..]);
    let meta: serde_json::Value = serde_json::from_str(
        after["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["runImage"]["image"], run_v2);
    // The reference identifies the run image uniquely: a digest reference.
    let digest_ref = format!("127.0.0.1:{}/run@sha256:", reg.port);
    assert!(
        meta["runImage"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with(&digest_ref)),
        "{meta}"
    );
    let output = run_with_runc(tmp, image, "rebased");
    assert!(output.contains("hello again from uid 1000"), "{output}");
    let release = fs_err::read_to_string(tmp.join("bundle-rebased/rootfs/etc/os-release")).unwrap();
    assert!(release.contains("VERSION_ID=2"), "{release}");
}

/// The same build by an unprivileged user: the sandbox maps the CNB user onto it in a user namespace.
#[test]
fn rootless_sandboxed_build() {
    let root_user =
        fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root_user || !require_tool("setpriv") || !Path::new("/bin/busybox").is_file() {
        return; // run as root in CI: then we can drop to an unprivileged user here
    }
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = hello_builder(tmp.path());
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("hello.txt"), "rootless").unwrap();
    let home = tmp.path().join("home");
    fs_err::create_dir_all(&home).unwrap();
    let (ok, out) = run(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(tmp.path()));
    assert!(ok, "{out}");
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &image,
            "--sandbox",
            "namespaces",
            "--builder",
            &builder,
            "--path",
        ])
        .arg(&app)
        .env("HOME", &home)
        .env("TMPDIR", tmp.path())
        .env_remove("XDG_CACHE_HOME"));
    eprintln!("{out}");
    assert!(ok, "{out}");
    assert!(
        out.contains("[test/hello] building as uid 1000 gid 1000 in /workspace"),
        "{out}"
    );
}

/// project.toml brings its own buildpacks: schema 0.1 with a local buildpack directory (as pack's samples do),
/// and schema 0.2 with an inline script wrapped around the builder's buildpack by `post`.
#[test]
fn project_buildpacks_replace_or_wrap_the_builders_order() {
    if !Path::new("/bin/busybox").is_file() || !require_tool("unshare") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = hello_builder(tmp.path());
    let build = |app: &Path| {
        run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args([
                "build",
                &format!("oci:{}:app", tmp.path().join("out").display()),
            ])
            .args(["--sandbox", "namespaces", "--builder", &builder, "--path"])
            .arg(app)
            .env("XDG_CACHE_HOME", tmp.path().join("cache")))
    };

    let v01 = tmp.path().join("v01");
    let bp = v01.join("my-bp");
    fs_err::create_dir_all(bp.join("bin")).unwrap();
    fs_err::write(
        bp.join("buildpack.toml"),
        "api = \"0.10\"\n[buildpack]\nid = \"app/local\"\nversion = \"0.0.1\"\n",
    )
    .unwrap();
    for (name, body) in [
        ("detect", "exit 0"),
        (
            "build",
            "echo \"local buildpack sees: $(ls | tr '\\n' ' ')\"",
        ),
    ] {
        let path = bp.join("bin").join(name);
        fs_err::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    fs_err::write(
        v01.join("project.toml"),
        "[project]\nid = \"x\"\n\n[build]\nexclude = [\"my-bp\", \"README.md\"]\n\n[[build.buildpacks]]\nuri = \"my-bp/\"\n",
    )
    .unwrap();
    fs_err::write(v01.join("README.md"), "docs").unwrap();
    fs_err::write(v01.join("main.sh"), "echo").unwrap();
    let (ok, out) = build(&v01);
    assert!(ok, "{out}");
    assert!(
        out.contains("[app/local] local buildpack sees: main.sh project.toml"),
        "{out}"
    );

    let v02 = tmp.path().join("v02");
    fs_err::create_dir_all(&v02).unwrap();
    fs_err::write(v02.join("hello.txt"), "there").unwrap();
    fs_err::write(
        v02.join("project.toml"),
        "[_]\nschema-version = \"0.2\"\n\n[[io.buildpacks.post.group]]\nid = \"app/after\"\n\n[io.buildpacks.post.group.script]\napi = \"0.10\"\ninline = \"echo after hello: $(ls /layers)\"\n",
    )
    .unwrap();
    let (ok, out) = build(&v02);
    assert!(ok, "{out}");
    let hello = out.find("[test/hello] building").unwrap_or(usize::MAX);
    let after = out.find("[app/after] after hello:").unwrap_or(0);
    assert!(
        hello < after,
        "the inline buildpack runs after the builder's:\n{out}"
    );
}

/// `--sandbox runc`: the same build as a runc container on the builder's root filesystem (read-only).
#[test]
fn runc_sandboxed_build() {
    let root_user =
        fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root_user || !require_tool("runc") || !Path::new("/bin/busybox").is_file() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (builder, _) = hello_builder(tmp.path());
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("hello.txt"), "runc").unwrap();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &format!("oci:{}:app", tmp.path().join("out").display()),
        ])
        .args(["--sandbox", "runc", "--builder", &builder, "--path"])
        .arg(&app)
        .env("XDG_CACHE_HOME", tmp.path().join("cache")));
    assert!(ok, "{out}");
    assert!(
        out.contains("[test/hello] building as uid 1000 gid 1000 in /workspace"),
        "{out}"
    );
    // Nothing detects: the phase's exit code (20) and the reason reach the user.
    fs_err::remove_file(app.join("hello.txt")).unwrap();
    fs_err::write(app.join("other.txt"), "x").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &format!("oci:{}:app", tmp.path().join("out").display()),
        ])
        .args(["--sandbox", "runc", "--builder", &builder, "--path"])
        .arg(&app)
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(20), "{err}");
    assert!(err.contains("no buildpack group passed detection"), "{err}");
}
