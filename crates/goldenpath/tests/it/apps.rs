//! The example apps through the default builder (Debian bookworm stack made by mmdebstrap, the built-in Python
//! buildpack): each good app builds from source, runs under runc as a non-root user and answers HTTP on `$PORT`;
//! the failing one fails in `detect` and in `build` with the same message; a source-only change reuses the
//! dependency layer; a rebuilt run image plus `goldenpath rebase` gives a running app without a rebuild.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::registry::free_port;
use crate::{require_tool, root, run};

pub fn ready() -> bool {
    let root_user =
        fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    root_user && require_tool("mmdebstrap") && require_tool("runc") && require_tool("umoci")
}

/// The default builder (`scripts/default-builder.sh`: cached under `.cache/` by its inputs).
pub fn builder() -> &'static str {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| {
        let o = Command::new("bash")
            .arg(root().join("scripts/default-builder.sh"))
            .env("GP", env!("CARGO_BIN_EXE_goldenpath"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    })
}

pub fn copy_app(name: &str, to: &Path) -> PathBuf {
    let (ok, out) = run(Command::new("cp")
        .arg("-r")
        .arg(root().join("examples/apps").join(name))
        .arg(to));
    assert!(ok, "{out}");
    to.to_path_buf()
}

pub fn build(tmp: &Path, app: &Path, tag: &str) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &format!("oci:{}:{tag}", tmp.join("images").display()),
        ])
        .args(["--builder", builder(), "--cache"])
        .arg(tmp.join("layer-cache"))
        .arg("--path")
        .arg(app)
        .env("XDG_CACHE_HOME", tmp.join("cache")))
}

/// A running container, killed and deleted on drop.
pub struct Running {
    child: Child,
    state: PathBuf,
    id: String,
}

impl Running {
    /// Sends SIGTERM to the container's PID 1; whether it exited within `within`.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["kill", &self.id, "TERM"])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["kill", &self.id, "KILL"])
            .status();
        let _ = self.child.wait();
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(["delete", "-f", &self.id])
            .status();
    }
}

/// Unpacks `oci:<tmp>/images:<tag>` with umoci and starts it with runc on the host's network with `PORT`.
fn start(tmp: &Path, tag: &str, port: u16) -> Running {
    start_image(&tmp.join("images"), tag, tmp, port)
}

/// Unpacks `oci:<layout>:<tag>` with umoci (into `scratch`) and starts it with runc on the host's network with
/// `PORT`, checking that it runs as the CNB user.
pub fn start_image(layout: &Path, tag: &str, scratch: &Path, port: u16) -> Running {
    let tmp = scratch;
    let bundle = tmp.join(format!("bundle-{tag}"));
    let (ok, out) = run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle));
    assert!(ok, "{out}");
    let path = bundle.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(c["process"]["user"]["uid"], 1000, "runs as the CNB user");
    c["process"]["terminal"] = false.into();
    c["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(format!("PORT={port}").into());
    let ns: Vec<serde_json::Value> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    c["linux"]["namespaces"] = ns.into();
    fs_err::write(&path, c.to_string()).unwrap();
    let state = tmp.join("runc-state");
    let id = format!("gp-apps-{}-{tag}", std::process::id());
    let child = Command::new("runc")
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running { child, state, id }
}

/// `GET /` on 127.0.0.1:port, retried until the app is up (30 s).
/// syft's JSON report of the image `oci:<tmp>/images:<tag>`, read from outside (copied alone into a layout of its
/// own first: syft reads a layout's single image); `None` when syft is not installed.
pub fn syft_report(tmp: &Path, tag: &str) -> Option<serde_json::Value> {
    if !crate::require_tool("syft") {
        return None;
    }
    let single = tmp.join(format!("syft-{tag}"));
    let (ok, out) = crate::run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:{tag}", tmp.join("images").display()),
        &format!("oci:{}:{tag}", single.display()),
    ]));
    assert!(ok, "{out}");
    let o = Command::new("syft")
        .args(["scan", "-q", "-o", "json"])
        .arg(format!("oci-dir:{}", single.display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

pub fn get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            if s.read_to_string(&mut body).is_ok() && body.starts_with("HTTP/1") {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the app never answered on {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one story: build, run, rebuild, rebase, compare SBOMs
fn example_apps_build_run_rebuild_and_rebase() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // python-flask: requirements.txt + Procfile (gunicorn).
    let flask = copy_app("python-flask", &tmp.join("flask"));
    let (ok, out) = build(tmp, &flask, "flask");
    assert!(ok, "{out}");
    assert!(
        out.contains("Installing dependencies (-r requirements.txt)"),
        "{out}"
    );
    let port = free_port();
    let app = start(tmp, "flask", port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"python-flask\""), "{answer}");
    drop(app);
    compare_with_syft(tmp, "flask");
    run_with_goldenpath(tmp, "flask", "\"app\":\"python-flask\"");

    // A source-only change: the dependency layer is reused, only the app changes.
    let text = fs_err::read_to_string(flask.join("app.py")).unwrap();
    fs_err::write(
        flask.join("app.py"),
        text.replace("Hello from GoldenPath", "Hello again"),
    )
    .unwrap();
    let (ok, out) = build(tmp, &flask, "flask");
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing the dependencies layer (requirements.txt unchanged)"),
        "{out}"
    );
    assert!(out.contains("Reusing Python"), "{out}");
    // The reused layers still carry their SBOMs into the new image.
    assert!(out.contains("*** SBOM: CycloneDX (2 file(s))"), "{out}");

    // python-fastapi: pyproject.toml (PEP 621), uvicorn detected.
    let fastapi = copy_app("python-fastapi", &tmp.join("fastapi"));
    let (ok, out) = build(tmp, &fastapi, "fastapi");
    assert!(ok, "{out}");
    assert!(
        out.contains("uvicorn main:app --host 0.0.0.0 --port $PORT"),
        "{out}"
    );
    let port = free_port();
    let app = start(tmp, "fastapi", port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"python-fastapi\""), "{answer}");
    drop(app);

    // python-package: the ASGI app inside a package (hello_api/main.py), no Procfile.
    let package = copy_app("python-package", &tmp.join("package"));
    let (ok, out) = build(tmp, &package, "package");
    assert!(ok, "{out}");
    assert!(
        out.contains("uvicorn hello_api.main:app --host 0.0.0.0 --port $PORT"),
        "{out}"
    );
    let port = free_port();
    let app = start(tmp, "package", port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"python-package\""), "{answer}");
    drop(app);

    // node-express: package-lock.json, Node.js and npm from the registry, `scripts.start`.
    let node = copy_app("node-express", &tmp.join("node"));
    let (ok, out) = build(tmp, &node, "node");
    assert!(ok, "{out}");
    assert!(
        out.contains("Installing dependencies (npm ci --omit=dev)"),
        "{out}"
    );
    let port = free_port();
    let mut app = start(tmp, "node", port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"node-express\""), "{answer}");
    // As PID 1, Node.js would ignore SIGTERM without the buildpack's preload: a stop would wait for SIGKILL.
    assert!(
        app.terminate(Duration::from_secs(5)),
        "node-express as PID 1 did not exit on SIGTERM"
    );
    drop(app);
    compare_with_syft(tmp, "node");
    fs_err::write(
        node.join("server.js"),
        fs_err::read_to_string(node.join("server.js")).unwrap() + "\n// changed\n",
    )
    .unwrap();
    let (ok, out) = build(tmp, &node, "node");
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing the dependencies layer (package-lock.json unchanged)"),
        "{out}"
    );

    // A rebuilt run image (one more package) and a rebase: the app runs without being rebuilt.
    let stack = tmp.join("stack.toml");
    fs_err::write(
        &stack,
        fs_err::read_to_string(root().join("stacks/bookworm/stack.toml"))
            .unwrap()
            .replace("\"libatomic1\"]", "\"libatomic1\", \"netbase\"]"),
    )
    .unwrap();
    let run2 = format!("oci:{}:run", tmp.join("stack2").display());
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["stack", "build", "--config"])
        .arg(&stack)
        .args(["--run-tag", &run2]));
    assert!(ok, "{out}");
    let image = format!("oci:{}:flask", tmp.join("images").display());
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath")).args([
        "rebase",
        &image,
        "--run-image",
        &run2,
    ]));
    assert!(ok, "{out}");
    let _ = fs_err::remove_dir_all(tmp.join("bundle-flask"));
    let port = free_port();
    let app = start(tmp, "flask", port);
    let answer = get(port);
    assert!(answer.contains("Hello again"), "{answer}");
    assert!(
        fs_err::read_to_string(tmp.join("bundle-flask/rootfs/var/lib/dpkg/status"))
            .unwrap()
            .contains("Package: netbase"),
        "the rebased image has the new run image"
    );
    drop(app);
}

/// Yarn (classic) and pnpm lockfiles install with their own tools, fetched from the npm registry.
#[test]
fn yarn_and_pnpm_apps_build_and_run() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    for (name, tool) in [("node-yarn", "yarn"), ("node-pnpm", "pnpm")] {
        let (ok, out) = run(Command::new("cp")
            .arg("-r")
            .arg(
                root()
                    .join("crates/goldenpath/tests/fixtures/apps")
                    .join(name),
            )
            .arg(tmp.join(name)));
        assert!(ok, "{out}");
        let (ok, out) = build(tmp, &tmp.join(name), name);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!(
                "Installing dependencies ({tool} install --frozen-lockfile"
            )),
            "{out}"
        );
        let port = free_port();
        let app = start(tmp, name, port);
        let answer = get(port);
        assert!(
            answer.contains(&format!("\"app\":\"{name}\",\"ms\":\"1m\"")),
            "{answer}"
        );
        drop(app);
    }
}

#[test]
fn failing_apps_fail_alike_in_detect_and_build() {
    if !ready() {
        return;
    }
    for name in ["python-no-requirements", "node-no-lockfile"] {
        let tmp = tempfile::tempdir().unwrap();
        let app = copy_app(name, &tmp.path().join("app"));
        let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .arg("detect")
            .arg(&app)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}");
        let preflight = String::from_utf8_lossy(&o.stdout).into_owned();
        let error = preflight
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap()
            .to_owned();
        let (ok, out) = build(tmp.path(), &app, "broken");
        assert!(!ok, "{out}");
        assert!(
            out.contains(&error),
            "{name}: the build says what detect said:\n{error}\n---\n{out}"
        );
    }
    // No language at all: every built-in buildpack says what it looked for, not only `fail`.
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("README.md"), "notes\n").unwrap();
    let (ok, out) = build(tmp.path(), &app, "nothing");
    assert!(!ok, "{out}");
    for said in [
        "not a Go app: looked for go.mod and found none",
        "not a Java app: looked for pom.xml",
        "not a Python app: looked for requirements.txt",
        "not a Node.js app: looked for package.json and found none",
        "no buildpack group passed detection",
    ] {
        assert!(out.contains(said), "{said}\n---\n{out}");
    }
}

/// `goldenpath run`: the image answers through the loopback proxy, from a network namespace of its own (its
/// hostname is its own), and SIGTERM stops it and removes its copy of the filesystem.
fn run_with_goldenpath(tmp: &Path, tag: &str, expect: &str) {
    let port = free_port();
    let cache = tmp.join("run-cache");
    let mut child = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "run",
            &format!("oci:{}:{tag}", tmp.join("images").display()),
        ])
        .args(["--port", &port.to_string()])
        .env("GOLDENPATH_CACHE_DIR", &cache)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answer = get(port);
    assert!(answer.contains(expect), "{answer}");
    assert!(answer.contains("\"host\":\"goldenpath-app\""), "{answer}");
    nix_kill(child.id());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("as uid 1000:1000") && err.contains("STOPPING (SIGTERM)"),
        "{err}"
    );
    let left: Vec<_> = fs_err::read_dir(cache.join("run"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "the run's directory is removed: {left:?}");
}

fn nix_kill(pid: u32) {
    let (ok, out) = run(Command::new("kill").args(["-TERM", &pid.to_string()]));
    assert!(ok, "{out}");
}

/// syft, reading the image from outside, finds the Debian packages and the Python packages our SBOMs list.
fn compare_with_syft(tmp: &Path, tag: &str) {
    use std::collections::BTreeSet;
    if !require_tool("syft") {
        return;
    }
    let single = tmp.join(format!("syft-{tag}"));
    let (ok, out) = run(Command::new("skopeo").args([
        "copy",
        &format!("oci:{}:{tag}", tmp.join("images").display()),
        &format!("oci:{}:{tag}", single.display()),
    ]));
    assert!(ok, "{out}");
    let o = Command::new("syft")
        .args(["scan", "-q", "-o", "json"])
        .arg(format!("oci-dir:{}", single.display()))
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = |kind: &str| -> BTreeSet<(String, String)> {
        report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["type"] == kind)
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_ascii_lowercase(),
                    a["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let rootfs = tmp.join(format!("bundle-{tag}/rootfs"));
    let ours = |file: &Path| -> BTreeSet<(String, String)> {
        let bom: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(file).unwrap()).unwrap();
        bom["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_ascii_lowercase(),
                    c["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let debs = ours(&rootfs.join("usr/share/goldenpath/sbom.cdx.json"));
    assert_eq!(
        found("deb"),
        debs,
        "Debian packages: syft vs our stack SBOM"
    );
    let launch = rootfs.join("layers/sbom/launch");
    let (kind, sboms) = if tag == "node" {
        (
            "npm",
            vec![
                launch.join("io.goldenpath.nodejs/node/sbom.cdx.json"),
                launch.join("io.goldenpath.nodejs/modules/sbom.cdx.json"),
            ],
        )
    } else {
        (
            "python",
            vec![launch.join("io.goldenpath.python/packages/sbom.cdx.json")],
        )
    };
    let mut listed = BTreeSet::new();
    for f in &sboms {
        listed.extend(ours(f));
    }
    // syft also reports the app's own package.json as a package; our SBOMs list what the app depends on.
    let mut seen = found(kind);
    seen.remove(&("node-express".to_owned(), "0.1.0".to_owned()));
    assert_eq!(seen, listed, "{kind} packages: syft vs our layer SBOMs");
}
