//! Against a real registry (Debian's `docker-registry`, loopback only, stopped by PID): push, re-push with zero
//! uploads (counted in the registry's access log), pull with identical digests, skopeo both ways, and a connection
//! cut mid-push that must leave no tag behind while a retry completes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gp_oci::image::{ImageConfig, add_layer, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;

use crate::{require_tool, run};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct RegistryServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RegistryServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        fs_err::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        // The access log goes to stdout, the rest to stderr: both into one file.
        let file = fs_err::File::create(&log).unwrap().into_file();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                fs_err::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// The access log's request lines so far (after a moment for the log to settle).
    pub fn log_lines(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        fs_err::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\" ") && l.contains(" /v2/"))
            .map(str::to_owned)
            .collect()
    }

    /// Upload sessions started (`POST .../blobs/uploads/`) according to the access log, once it has settled.
    pub fn post_lines(&self) -> Vec<String> {
        fs_err::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("POST /v2/") || l.contains("PUT /v2/"))
            .map(str::to_owned)
            .collect()
    }

    pub fn uploads(&self) -> usize {
        let count = || {
            fs_err::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    l.contains("POST /v2/")
                        && l.contains("/blobs/uploads/")
                        && !l.contains("mount=")
                })
                .count()
        };
        let mut last = count();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            let now = count();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn image(dir: &Path, content: &[u8]) -> String {
    let layout = Layout::create(&dir.join("ours")).unwrap();
    let entries = vec![
        Entry {
            path: "app".into(),
            kind: Kind::Dir,
            executable: true,
        },
        Entry {
            path: "app/data.bin".into(),
            kind: Kind::File(Source::Bytes(content.to_vec())),
            executable: false,
        },
    ];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    write_image(&layout, "v1", &[layer], &ImageConfig::default())
        .unwrap()
        .digest
        .to_string()
}

fn gp(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn push_pull_and_skopeo_agree_and_repush_uploads_nothing() {
    if !(require_tool("docker-registry") && require_tool("skopeo")) {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let digest = image(tmp.path(), b"payload");
    let src = format!("oci:{}:v1", tmp.path().join("ours").display());
    let remote = format!("127.0.0.1:{}/app:v1", reg.port);
    let (ok, out) = gp(&["image", "copy", &src, &remote]);
    assert!(ok, "{out}");
    let first = reg.uploads();
    assert_eq!(first, 2, "layer and config uploaded");
    let (ok, out) = gp(&["image", "copy", &src, &remote]);
    assert!(ok && out.contains("0 blob(s) uploaded"), "{out}");
    assert_eq!(reg.uploads(), first, "a re-push uploads zero blobs");

    let (ok, raw) = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{remote}"),
    ]));
    assert!(ok, "{raw}");
    assert_eq!(
        gp_oci::digest::Digest::of(raw.trim_end().as_bytes()).to_string(),
        digest
    );

    let pulled = format!("oci:{}:v1", tmp.path().join("pulled").display());
    let (ok, out) = gp(&["image", "copy", &remote, &pulled]);
    assert!(ok, "{out}");
    assert_eq!(
        Layout::open(&tmp.path().join("pulled"))
            .unwrap()
            .resolve(Some("v1"))
            .unwrap()
            .digest
            .to_string(),
        digest
    );

    // skopeo pushes, we pull: same digest.
    let (ok, msg) = run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://127.0.0.1:{}/by-skopeo:v1", reg.port),
    ]));
    assert!(ok, "{msg}");
    let (ok, out) = gp(&[
        "image",
        "copy",
        &format!("127.0.0.1:{}/by-skopeo:v1", reg.port),
        &format!("oci:{}:s", tmp.path().join("from-skopeo").display()),
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        Layout::open(&tmp.path().join("from-skopeo"))
            .unwrap()
            .resolve(Some("s"))
            .unwrap()
            .digest
            .to_string(),
        digest
    );
}

/// Forwards loopback connections to the registry; while `cut` is set, drops any connection that starts a blob
/// data upload, as a registry dying mid-push would.
fn proxy(target: u16, cut: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let cut = cut.clone();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    let upload = chunk.windows(6).any(|w| w == b"PATCH " || w == b"PUT /v")
                        && String::from_utf8_lossy(chunk).contains("/blobs/uploads/");
                    if upload && cut.load(Ordering::SeqCst) {
                        let _ = c_read.shutdown(Shutdown::Both);
                        let _ = s_write.shutdown(Shutdown::Both);
                        return;
                    }
                    if s_write.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_push_cut_mid_upload_leaves_no_tag_and_a_retry_completes() {
    if !(require_tool("docker-registry") && require_tool("skopeo")) {
        return;
    }
    let reg = RegistryServer::start();
    let cut = Arc::new(AtomicBool::new(true));
    let port = proxy(reg.port, cut.clone());
    let tmp = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..3_000_000u32)
        .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap())
        .collect();
    let digest = image(tmp.path(), &content);
    let src = format!("oci:{}:v1", tmp.path().join("ours").display());
    let remote = format!("127.0.0.1:{port}/app:v1");
    let (ok, out) = gp(&["image", "copy", &src, &remote]);
    assert!(!ok, "the push must fail while uploads are cut: {out}");
    assert!(out.contains("upload blob"), "{out}");
    let direct = format!("docker://127.0.0.1:{}/app:v1", reg.port);
    let (ok, _) =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &direct]));
    assert!(!ok, "the tag must not exist after a failed push");
    cut.store(false, Ordering::SeqCst);
    let (ok, out) = gp(&["image", "copy", &src, &remote]);
    assert!(ok, "{out}");
    let (ok, raw) =
        run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &direct]));
    assert!(ok, "{raw}");
    assert_eq!(
        gp_oci::digest::Digest::of(raw.trim_end().as_bytes()).to_string(),
        digest
    );
}

#[test]
fn credential_helpers_from_the_docker_config_are_used() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    image(tmp.path(), b"x");
    let bin = tmp.path().join("bin");
    fs_err::create_dir_all(&bin).unwrap();
    let marker = tmp.path().join("helper-called");
    let helper = bin.join("docker-credential-fake");
    fs_err::write(
        &helper,
        format!("#!/bin/sh\nread host\necho \"$1 $host\" > {}\necho '{{\"Username\":\"ci\",\"Secret\":\"token\"}}'\n", marker.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
    let config = tmp.path().join("docker");
    fs_err::create_dir_all(&config).unwrap();
    fs_err::write(
        config.join("config.json"),
        format!(
            "{{\"credHelpers\": {{\"127.0.0.1:{}\": \"fake\"}}}}",
            reg.port
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "image",
            "copy",
            &format!("oci:{}:v1", tmp.path().join("ours").display()),
            &format!("127.0.0.1:{}/app:v1", reg.port),
        ])
        .env("DOCKER_CONFIG", &config)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs_err::read_to_string(&marker).unwrap().trim(),
        format!("get 127.0.0.1:{}", reg.port)
    );
}

#[test]
fn build_publish_reuses_unchanged_layers() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    fs_err::write(app.join("server.js"), "v1").unwrap();
    fs_err::create_dir_all(app.join("static")).unwrap();
    fs_err::write(app.join("static/logo.svg"), "<svg/>").unwrap();
    let order = crate::js_order(tmp.path());
    let image = format!("127.0.0.1:{}/app:latest", reg.port);
    let build_as = |image: &str| {
        let o = crate::test_build(image, &order, &app)
            .args(["--publish"])
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{text}");
        text
    };
    let build = || build_as(&image);
    let first = build();
    let after_first = reg.uploads();
    let second = build();
    assert_eq!(
        reg.uploads(),
        after_first,
        "a rebuild with no change uploads nothing"
    );
    let digest = |t: &str| {
        t.lines()
            .find(|l| l.contains("*** Published"))
            .and_then(|l| l.split('@').nth(1))
            .map(|d| d.split(':').take(2).collect::<Vec<_>>().join(":"))
            .unwrap()
    };
    assert_eq!(digest(&first), digest(&second));
    assert!(second.contains("0 blob(s) uploaded"), "{second}");
    fs_err::write(app.join("server.js"), "v2").unwrap();
    let third = build();
    assert_eq!(
        reg.uploads() - after_first,
        2,
        "only the app layer and the config are new: {third}"
    );
    // The static files are a slice: a layer of their own, listed in the lifecycle metadata before the app layer.
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "inspect", &image, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        v["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["app"].as_array().unwrap().len(), 2, "{meta}");
    let after_third = reg.uploads();
    fs_err::write(app.join("static/logo.svg"), "<svg>v2</svg>").unwrap();
    let fourth = build();
    assert_eq!(
        reg.uploads() - after_third,
        2,
        "only the slice layer and the config are new: {fourth}"
    );
    // The same app under another name in the same registry: its layers are mounted from `app`, only the config
    // (never mounted) is uploaded.
    let other = build_as(&format!("127.0.0.1:{}/other-app:latest", reg.port));
    assert!(
        other.contains("1 blob(s) uploaded, 7 mounted, 0 already there"),
        "{other}"
    );
}

#[test]
fn a_cache_image_carries_cached_layers_to_a_fresh_machine() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (app, order) = crate::js_app(tmp.path());
    let cache_image = format!("127.0.0.1:{}/app-cache:latest", reg.port);
    // Each build on a machine of its own: nothing local survives between them.
    let build = |machine: &str| {
        let image = format!("oci:{}:{machine}", tmp.path().join("out").display());
        let o = crate::test_build(&image, &order, &app)
            .args(["--cache-image", &cache_image])
            .env("XDG_CACHE_HOME", tmp.path().join(machine))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{text}");
        text
    };
    let first = build("one");
    assert!(
        first.contains("No cache image to restore from yet")
            // The layer, the SBOM layer of its `node.sbom.cdx.json`, the config.
            && first.contains("(1 layer(s); 3 blob(s) uploaded")
            && !first.contains("reusing cached node layer"),
        "{first}"
    );
    let second = build("two");
    assert!(
        second.contains("Restored test/node:node (from the cache image)")
            && second.contains("reusing cached node layer")
            && second.contains("(1 layer(s); 0 blob(s) uploaded, 0 mounted, 3 already there)"),
        "{second}"
    );
    let (ok, inspect) = gp(&["image", "inspect", &cache_image]);
    assert!(
        ok && inspect.contains("io.buildpacks.lifecycle.cache.metadata"),
        "{inspect}"
    );
    // A local path is refused with the flag that fits.
    let (ok, msg) = gp(&[
        "build",
        "oci:/nonexistent:x",
        "--cache-image",
        "oci:/tmp/cache",
        "--path",
        app.to_str().unwrap(),
        "--order",
        order.to_str().unwrap(),
        "--buildpacks",
        crate::root()
            .join("crates/gp-lifecycle/tests/fixtures/buildpacks")
            .to_str()
            .unwrap(),
    ]);
    assert!(!ok && msg.contains("use `--cache DIR`"), "{msg}");
}

#[test]
fn builder_create_pulls_a_registry_build_image() {
    if !require_tool("docker-registry") {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    image(&tmp.path().join("build"), b"build image");
    let local = format!("oci:{}:v1", tmp.path().join("build/ours").display());
    let remote = format!("127.0.0.1:{}/build:1", reg.port);
    let (ok, out) = gp(&["image", "copy", &local, &format!("docker://{remote}")]);
    assert!(ok, "{out}");
    let bp = crate::test_buildpacks().join("test_node/1.0.0");
    let config = tmp.path().join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"{}\"\n\n[[order]]\n[[order.group]]\nid = \"test/node\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"{remote}\"\n",
            bp.display()
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:b", tmp.path().join("builder").display());
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .args([
            "builder",
            "create",
            "--launcher",
            "/bin/true",
            "--tag",
            &builder,
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("===> PULLING"), "{err}");
    // The build image's layer is the builder's first.
    let layers = |r: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args(["image", "inspect", "--json", r])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["layers"].clone()
    };
    assert_eq!(layers(&builder)[0], layers(&local)[0]);
    // The pulled image is not left tagged in the store.
    let store = tmp.path().join("cache/goldenpath/images/index.json");
    let index = fs_err::read_to_string(store).unwrap();
    assert!(!index.contains("builder-create-"), "{index}");
}
