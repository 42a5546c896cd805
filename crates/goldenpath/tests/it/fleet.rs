//! `goldenpath fleet` against a real loopback `docker-registry`: small fleets of test-buildpack images on run
//! images made with umoci (faults injected by a proxy in front of the registry; a campaign killed with SIGKILL and
//! run again), and the whole story on the default builder's Debian run image (30 images rebased and pinned into
//! the GitOps tree, one on another distro rebuilt, the results run under runc).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry::RegistryServer;
use crate::{js_order, require_tool, root, run, test_build};

fn gp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_goldenpath"));
    c.env("NO_COLOR", "1");
    c
}

fn ok(cmd: &mut Command) -> String {
    let (ok, out) = run(cmd);
    assert!(ok, "{cmd:?}\n{out}");
    out
}

/// A tiny run image `<layout>:<tag>` made with umoci: one file `/etc/base` holding `content`, the CNB user, and
/// the base-image labels (`extra` added).
fn umoci_run_image(layout: &Path, tag: &str, content: &str, extra: &[&str]) {
    if !layout.join("index.json").exists() {
        ok(Command::new("umoci").args(["init", "--layout"]).arg(layout));
    }
    let image = format!("{}:{tag}", layout.display());
    ok(Command::new("umoci").args(["new", "--image", &image]));
    let rootfs = layout.with_extension(format!("rootfs-{tag}"));
    fs_err::create_dir_all(rootfs.join("etc")).unwrap();
    fs_err::write(rootfs.join("etc/base"), content).unwrap();
    ok(Command::new("umoci")
        .args(["insert", "--image", &image])
        .arg(&rootfs)
        .arg("/"));
    let mut config = Command::new("umoci");
    config.args([
        "config",
        "--image",
        &image,
        "--config.user",
        "1000:1000",
        "--config.env",
        "PATH=/bin",
    ]);
    for label in [
        "io.buildpacks.rebasable=true",
        "io.buildpacks.base.distro.name=debian",
        "io.buildpacks.base.distro.version=12",
    ]
    .iter()
    .chain(extra)
    {
        config.args(["--config.label", label]);
    }
    ok(&mut config);
}

/// Run images `a` and `b` in `host/stack/run`, and `apps` test-buildpack apps built on `a` and published as
/// `host/fleet/app-N:<env>` for each of `envs` (one build per app, promoted to the other environments by copy).
/// Returns the images.
fn small_fleet(tmp: &Path, host: &str, apps: usize, envs: &[&str]) -> Vec<String> {
    let layout = tmp.join("stack");
    umoci_run_image(&layout, "a", "a\n", &[]);
    umoci_run_image(&layout, "b", "b\n", &[]);
    for tag in ["a", "b"] {
        copy(
            tmp,
            &format!("oci:{}:{tag}", layout.display()),
            &format!("{host}/stack/run:{tag}"),
        );
    }
    publish_apps(tmp, host, &format!("{host}/stack/run:a"), apps, envs)
}

fn copy(tmp: &Path, from: &str, to: &str) {
    ok(gp()
        .args(["image", "copy", from, to])
        .env("XDG_CACHE_HOME", tmp.join("cache")));
}

/// `apps` test-buildpack apps built on `run_image`, published as `host/fleet/app-N:<env>` for each of `envs`.
fn publish_apps(
    tmp: &Path,
    host: &str,
    run_image: &str,
    apps: usize,
    envs: &[&str],
) -> Vec<String> {
    let order = js_order(tmp);
    let mut images = Vec::new();
    for i in 0..apps {
        let app = tmp.join(format!("app-{i}"));
        fs_err::create_dir_all(&app).unwrap();
        fs_err::write(app.join("package.json"), "{}").unwrap();
        fs_err::write(app.join("index.js"), format!("// app {i}\n")).unwrap();
        let first = format!("{host}/fleet/app-{i}:{}", envs[0]);
        ok(test_build(&first, &order, &app)
            .args(["--publish", "--run-image", run_image])
            .env("XDG_CACHE_HOME", tmp.join("cache")));
        images.push(first.clone());
        for env in &envs[1..] {
            let to = format!("{host}/fleet/app-{i}:{env}");
            copy(tmp, &first, &to);
            images.push(to);
        }
    }
    images
}

/// The raw manifest (and its layer digests) of `image` (a loopback registry reference), read by skopeo.
fn layers(image: &str) -> Vec<String> {
    let raw = ok(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}")));
    let v: serde_json::Value = serde_json::from_str(raw.trim()).unwrap();
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

fn fleet_cmd(sub: &str, tmp: &Path, images: &[String], run_image: &str) -> Command {
    let mut c = gp();
    c.args(["fleet", sub, "--run-image", run_image])
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .env("XDG_STATE_HOME", tmp.join("state"));
    for i in images {
        c.args(["--image", i]);
    }
    c
}

/// The campaign reports under `<tmp>/state` (one campaign).
fn report(tmp: &Path) -> serde_json::Value {
    let root = tmp.join("state/goldenpath/fleet");
    let dir = fs_err::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&fs_err::read_to_string(dir.join("report.json")).unwrap()).unwrap()
}

fn statuses(report: &serde_json::Value) -> BTreeMap<String, String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["image"].as_str().unwrap().to_owned(),
                o["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The fault-injecting proxy (`tests/fixtures/fault_proxy.py`) in front of `upstream`, faults only while
/// `<dir>/faults-on` exists; stopped by PID on drop.
struct FaultProxy {
    child: Child,
    port: u16,
    log: PathBuf,
    switch: PathBuf,
}

impl FaultProxy {
    fn start(dir: &Path, upstream: u16, faults: &[&str]) -> Self {
        let port_file = dir.join("proxy.port");
        let log = dir.join("proxy.log");
        let switch = dir.join("faults-on");
        let child = Command::new("python3")
            .arg(root().join("crates/goldenpath/tests/fixtures/fault_proxy.py"))
            .args(["--upstream", &format!("127.0.0.1:{upstream}")])
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .arg("--faults-file")
            .arg(&switch)
            .args(faults)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Some(p) = fs_err::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "the proxy did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            port,
            log,
            switch,
        }
    }

    /// (time, method, path, fault) of every request logged.
    fn requests(&self) -> Vec<(f64, String, String, String)> {
        fs_err::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Some((
                    f.first()?.parse().ok()?,
                    (*f.get(1)?).to_owned(),
                    (*f.get(2)?).to_owned(),
                    (*f.get(3)?).to_owned(),
                ))
            })
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A loopback registry, a scratch directory and the registry's `host:port`.
fn setup() -> (RegistryServer, tempfile::TempDir, String) {
    let reg = RegistryServer::start();
    let host = format!("127.0.0.1:{}", reg.port);
    (reg, tempfile::tempdir().unwrap(), host)
}

fn tools() -> bool {
    require_tool("docker-registry")
        && require_tool("umoci")
        && require_tool("skopeo")
        && require_tool("python3")
}

#[test]
fn faults_slow_a_campaign_down_but_lose_nothing_and_the_rate_holds() {
    if !tools() {
        return;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let proxy = FaultProxy::start(
        tmp,
        reg.port,
        &[
            "--seed",
            "11",
            "--p429",
            "0.08",
            "--retry-after",
            "1",
            "--p500",
            "0.08",
            "--pcut",
            "0.06",
        ],
    );
    let host = format!("127.0.0.1:{}", proxy.port);
    let images = small_fleet(tmp, &host, 4, &["dev", "staging", "prod"]);
    let old: Vec<Vec<String>> = images.iter().map(|i| layers(i)).collect();
    fs_err::write(&proxy.switch, "").unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let out = ok(
        fleet_cmd("patch", tmp, &images, &format!("{host}/stack/run:b")).args([
            "--rate",
            "20/5",
            "--retries",
            "6",
        ]),
    );
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    fs_err::remove_file(&proxy.switch).unwrap();
    assert!(
        out.contains("12 patched, 0 up to date, 0 skipped, 0 failed"),
        "{out}"
    );

    let seen = proxy.requests();
    for fault in ["429", "500", "cut"] {
        assert!(
            seen.iter().any(|r| r.3 == fault),
            "no `{fault}` was injected:\n{out}"
        );
    }
    // The limit: 20 per second with a burst of 5, so no second holds more than 25 requests (one of slack for the
    // time between a request leaving and the proxy stamping it).
    let during: Vec<f64> = seen
        .iter()
        .map(|r| r.0)
        .filter(|t| *t >= started && *t <= ended)
        .collect();
    for (i, t) in during.iter().enumerate() {
        let in_window = during[i..].iter().take_while(|u| **u < t + 1.0).count();
        assert!(
            in_window <= 26,
            "{in_window} requests within one second from {t}"
        );
    }

    // Every tag names a whole image (skopeo pulls every blob and checks its digest), its base is run image b and
    // its app layers are the ones it had.
    let base_b = layers(&format!("{host}/stack/run:b"));
    let base_a = layers(&format!("{host}/stack/run:a"));
    for (image, before) in images.iter().zip(&old) {
        let direct = image.replace(&host, &format!("127.0.0.1:{}", reg.port));
        let dest = tmp.join("pulled");
        let _ = fs_err::remove_dir_all(&dest);
        ok(Command::new("skopeo")
            .args([
                "copy",
                "--src-tls-verify=false",
                &format!("docker://{direct}"),
            ])
            .arg(format!("oci:{}:x", dest.display())));
        let now = layers(&direct);
        assert_eq!(now[..base_b.len()], base_b[..], "{image}");
        assert_eq!(
            now[base_b.len()..],
            before[base_a.len()..],
            "{image}: app layers unchanged"
        );
    }
}

#[test]
fn a_campaign_killed_mid_way_finishes_on_the_rerun_without_pushing_anything_twice() {
    if !tools() {
        return;
    }
    let (reg, dir, host) = setup();
    let tmp = dir.path();
    let images = small_fleet(tmp, &host, 5, &["dev", "test", "staging", "prod"]);
    let mark = reg.log_lines().len();
    let run_b = format!("{host}/stack/run:b");
    // Slow enough (8 requests a second) to be killed in the middle.
    let mut first = fleet_cmd("patch", tmp, &images, &run_b)
        .args(["--rate", "8/1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal_root = tmp.join("state/goldenpath/fleet");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let patched = fs_err::read_dir(&journal_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| fs_err::read_to_string(d.path().join("journal.jsonl")).ok())
            .map(|t| t.matches("\"status\":\"patched\"").count())
            .sum::<usize>();
        if patched >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the campaign made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    let out = ok(fleet_cmd("patch", tmp, &images, &run_b).args(["--rate", "200/50"]));
    assert!(out.contains("continuing campaign"), "{out}");
    assert!(out.contains("20 patched, 0 up to date"), "{out}");
    let report = report(tmp);
    assert!(
        statuses(&report).values().all(|s| s == "patched"),
        "{report:#}"
    );
    assert!(
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["earlier"] == true)
    );
    // The registry's access log: each tag's manifest was pushed once by the two runs together.
    let log = reg.log_lines();
    let mut pushes: BTreeMap<String, usize> = BTreeMap::new();
    for l in &log[mark..] {
        if let Some(p) = l.split('"').nth(1).and_then(|r| r.strip_prefix("PUT /v2/"))
            && let Some((repo, tag)) = p.split_once("/manifests/")
        {
            *pushes
                .entry(format!("{repo}:{}", tag.split(' ').next().unwrap()))
                .or_default() += 1;
        }
    }
    assert_eq!(pushes.len(), 20, "{pushes:?}");
    assert!(pushes.values().all(|n| *n == 1), "{pushes:?}");
}

#[test]
#[allow(clippy::too_many_lines)] // one error after another, each with its fix
fn bad_input_is_named_with_the_fix() {
    if !tools() {
        return;
    }
    let (reg, dir, host) = setup();
    let tmp = dir.path();
    let mut images = small_fleet(tmp, &host, 1, &["dev"]);
    // A not_cnb image that is not CNB, and one that does not exist.
    let not_cnb = format!("{host}/not_cnb/nginx:dev");
    ok(gp()
        .args(["image", "copy"])
        .arg(format!("oci:{}:a", tmp.join("stack").display()))
        .arg(&not_cnb)
        .env("XDG_CACHE_HOME", tmp.join("cache")));
    images.push(not_cnb.clone());
    images.push(format!("{host}/missing/app:dev"));
    // A run image for another architecture.
    umoci_run_image(&tmp.join("stack"), "arm", "arm\n", &[]);
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:arm", tmp.join("stack").display()),
        "--architecture",
        "arm64",
    ]));
    ok(gp()
        .args(["image", "copy"])
        .arg(format!("oci:{}:arm", tmp.join("stack").display()))
        .arg(format!("{host}/stack/run:arm"))
        .env("XDG_CACHE_HOME", tmp.join("cache")));

    let o = fleet_cmd("plan", tmp, &images, &format!("{host}/stack/run:b"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "work to do");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_image: BTreeMap<&str, (&str, &str)> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap(),
                (i["action"].as_str().unwrap(), i["reason"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(by_image[not_cnb.as_str()].0, "skip");
    assert!(
        by_image[not_cnb.as_str()].1.contains("not a CNB image"),
        "{plan:#}"
    );
    let missing = by_image[format!("{host}/missing/app:dev").as_str()];
    assert_eq!(missing.0, "skip");
    assert!(missing.1.contains("cannot be read"), "{plan:#}");

    // Another architecture: refused before any push.
    let mark = reg.log_lines().len();
    let (_, out) = run(&mut fleet_cmd(
        "patch",
        tmp,
        &images[..1],
        &format!("{host}/stack/run:arm"),
    ));
    assert!(
        out.contains("refused; name a run image for linux/amd64"),
        "{out}"
    );
    assert!(
        !reg.log_lines()[mark..].iter().any(|l| l.contains("\"PUT ")),
        "nothing was pushed"
    );

    // An unreachable registry fails fast, with its address.
    let started = Instant::now();
    let o = fleet_cmd(
        "plan",
        tmp,
        &["127.0.0.1:9/fleet/app:dev".to_owned()],
        "127.0.0.1:9/stack/run:b",
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "fails fast");

    // No fleet named, a digest reference, a layout run image.
    let (okay, out) = run(gp().args(["fleet", "plan", "--run-image", "r.example/run:b"]));
    assert!(!okay && out.contains("name the fleet"), "{out}");
    let (okay, out) = run(gp().args([
        "fleet",
        "plan",
        "--run-image",
        "r.example/run:b",
        "--image",
        &format!("r.example/app@sha256:{}", "0".repeat(64)),
    ]));
    assert!(!okay && out.contains("name the tag"), "{out}");
    let (okay, out) = run(gp().args([
        "fleet",
        "plan",
        "--run-image",
        "oci:/tmp/x:run",
        "--image",
        "r.example/a:dev",
    ]));
    assert!(!okay && out.contains("goldenpath image copy"), "{out}");

    // A dry run changes nothing.
    let mark = reg.log_lines().len();
    let out = ok(
        fleet_cmd("patch", tmp, &images[..1], &format!("{host}/stack/run:b"))
            .arg("--dry-run")
            .env("XDG_STATE_HOME", tmp.join("dry-state")),
    );
    assert!(out.contains("dry run"), "{out}");
    assert!(
        !reg.log_lines()[mark..]
            .iter()
            .any(|l| l.contains("\"PUT ") || l.contains("\"POST "))
    );
    assert!(
        !tmp.join("dry-state").exists(),
        "no campaign state for a dry run"
    );
}

/// A contracts tree naming `apps` in `envs` with images under `prefix` (`goldenpath.toml` + one contract each).
fn contracts(dir: &Path, prefix: &str, apps: &[String], envs: &[&str]) -> PathBuf {
    let config = fs_err::read_to_string(root().join("examples/contracts/goldenpath.toml"))
        .unwrap()
        .replace("123456789012.dkr.ecr.eu-west-2.amazonaws.com", prefix);
    fs_err::create_dir_all(dir).unwrap();
    fs_err::write(dir.join("goldenpath.toml"), config).unwrap();
    let tree = dir.join("docs/20-contracts/app-deployments");
    for env in envs {
        fs_err::create_dir_all(tree.join(env)).unwrap();
        for (n, app) in apps.iter().enumerate() {
            let id = format!("APP-{:04}", n + 1);
            fs_err::write(
                tree.join(env).join(format!("{id}.yaml")),
                format!(
                    "apiVersion: goldenpath.io/v1\nkind: AppDeploymentRequest\nid: {id}\nenvironment: {env}\n\
                     owner: team-a\napplication: {app}\nspec:\n  source:\n    git: https://github.com/example/{app}\n\
                     \x20 build:\n    type: buildpack\n    builder: default\n  runtime:\n    replicas: 2\n\
                     \x20   resources:\n      memory: 256Mi\n      cpu: 100m\n"
                ),
            )
            .unwrap();
        }
    }
    tree
}

/// Copies `image` out of the registry into `<scratch>/pulled:<tag>` and runs `script` in it under runc (as the
/// image's user, which must be the CNB user); returns its output.
fn run_in(image: &str, tag: &str, scratch: &Path, script: &str) -> String {
    let layout = scratch.join("pulled");
    ok(Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{image}"),
        ])
        .arg(format!("oci:{}:{tag}", layout.display())));
    let bundle = scratch.join(format!("bundle-{tag}"));
    ok(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:{tag}", layout.display())])
        .arg(&bundle));
    let path = bundle.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        c["process"]["user"]["uid"], 1000,
        "{image} runs as the CNB user"
    );
    c["process"]["terminal"] = false.into();
    c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
    fs_err::write(&path, c.to_string()).unwrap();
    let id = format!("gp-fleet-{}-{tag}", std::process::id());
    ok(Command::new("runc")
        .arg("--root")
        .arg(scratch.join("runc-state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id))
}

#[test]
#[allow(clippy::too_many_lines)] // one story: a fleet on the Debian run image, patched, checked, run, pinned
fn thirty_images_on_the_default_stack_are_rebased_run_and_pinned_and_one_is_rebuilt() {
    if !(crate::apps::ready() && tools() && require_tool("git")) {
        return;
    }
    let (_reg, dir, host) = setup();
    let tmp = dir.path();
    let builder = crate::apps::builder();

    // Run image A: the default stack's. B: A plus a patch file. C: A labelled as another distro.
    let config = ok(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(builder));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.builder.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let stack_run = meta["images"][0]["image"].as_str().unwrap().to_owned();
    let local = tmp.join("stack");
    copy(tmp, &stack_run, &format!("oci:{}:a", local.display()));
    let patch = tmp.join("patch");
    fs_err::create_dir_all(patch.join("etc")).unwrap();
    fs_err::write(patch.join("etc/goldenpath-patch"), "B\n").unwrap();
    ok(Command::new("umoci")
        .args([
            "insert",
            "--image",
            &format!("{}:a", local.display()),
            "--tag",
            "b",
        ])
        .arg(&patch)
        .arg("/"));
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{}:a", local.display()),
        "--tag",
        "c",
        "--config.label",
        "io.buildpacks.base.distro.version=13",
    ]));
    for tag in ["a", "b", "c"] {
        copy(
            tmp,
            &format!("oci:{}:{tag}", local.display()),
            &format!("{host}/stack/run:{tag}"),
        );
    }
    let run_a = format!("{host}/stack/run:a");
    let envs = ["dev", "staging", "prod"];

    // The fleet: the example Flask app (a git checkout) by the default builder, promoted through three
    // environments; nine test-buildpack apps in three environments; the Flask app once more on run image C.
    let flask = crate::apps::copy_app("python-flask", &tmp.join("flask"));
    for args in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "app",
        ],
    ] {
        ok(Command::new("git").arg("-C").arg(&flask).args(args));
    }
    let build = |image: &str, run_image: &str| {
        ok(gp()
            .args([
                "build",
                image,
                "--publish",
                "--builder",
                builder,
                "--run-image",
                run_image,
                "--path",
            ])
            .arg(&flask)
            .arg("--cache")
            .arg(tmp.join("layer-cache"))
            .env("XDG_CACHE_HOME", tmp.join("cache")));
    };
    build(&format!("{host}/fleet/flask:dev"), &run_a);
    let mut images = vec![format!("{host}/fleet/flask:dev")];
    for env in &envs[1..] {
        copy(tmp, &images[0], &format!("{host}/fleet/flask:{env}"));
        images.push(format!("{host}/fleet/flask:{env}"));
    }
    images.extend(publish_apps(tmp, &host, &run_a, 9, &envs));
    assert_eq!(images.len(), 30);
    let other = format!("{host}/fleet/flask-c:dev");
    build(&other, &format!("{host}/stack/run:c"));
    let before: BTreeMap<String, Vec<String>> =
        images.iter().map(|i| (i.clone(), layers(i))).collect();

    // The contracts name the thirty; the GitOps tree is rendered before the campaign.
    let mut names = vec!["flask".to_owned()];
    names.extend((0..9).map(|i| format!("app-{i}")));
    let tree = contracts(
        &tmp.join("contracts"),
        &format!("{host}/fleet"),
        &names,
        &envs,
    );
    let gitops = tmp.join("gitops");
    ok(gp()
        .args(["contract", "render"])
        .arg(&tree)
        .arg("--out")
        .arg(&gitops));

    let fleet = |sub: &str| {
        let mut c = fleet_cmd(
            sub,
            tmp,
            std::slice::from_ref(&other),
            &format!("{host}/stack/run:b"),
        );
        c.arg("--contracts")
            .arg(&tree)
            .args(["--builder", builder, "--rate", "500/100"]);
        c
    };
    let o = fleet("plan").arg("--json").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["counts"]["rebase"], 30, "{plan:#}");
    assert_eq!(plan["counts"]["rebuild"], 1, "{plan:#}");
    let rebuild = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "rebuild")
        .unwrap();
    assert_eq!(rebuild["image"], other.as_str());
    assert!(
        rebuild["reason"]
            .as_str()
            .unwrap()
            .contains("debian 13, the new one debian 12: another distro"),
        "{rebuild}"
    );
    let (_, table) = run(&mut fleet("plan"));
    assert!(
        table.contains("rebase (30)") && table.contains("rebuild (1)"),
        "{table}"
    );

    let out = ok(fleet("patch").arg("--gitops").arg(&gitops));
    assert!(
        out.contains("31 patched, 0 up to date, 0 skipped, 0 failed"),
        "{out}"
    );
    assert!(out.contains("pinned 30 digest(s)"), "{out}");

    // From outside: every image's base layers are B's, its app layers the ones it had.
    let base_a = layers(&run_a);
    let base_b = layers(&format!("{host}/stack/run:b"));
    let report = report(tmp);
    let new_digest: BTreeMap<String, String> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_ne!(o["old_digest"], o["new_digest"], "{o}");
            (
                o["image"].as_str().unwrap().to_owned(),
                o["new_digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(new_digest.len(), 31);
    for (image, old) in &before {
        let now = layers(image);
        assert_eq!(now[..base_b.len()], base_b[..], "{image}");
        assert_eq!(
            now[base_b.len()..],
            old[base_a.len()..],
            "{image}: app layers byte-identical"
        );
    }
    assert_eq!(
        layers(&other)[..base_b.len()],
        base_b[..],
        "the rebuilt image is on B"
    );

    // The GitOps tree pins each contract image's new digest.
    for image in &images {
        let (repo, env) = image.rsplit_once(':').unwrap();
        let app = repo.rsplit('/').next().unwrap();
        let k = fs_err::read_to_string(
            gitops
                .join("apps")
                .join(env)
                .join(app)
                .join("kustomization.yaml"),
        )
        .unwrap();
        assert!(k.contains(&new_digest[image]), "{image}:\n{k}");
    }

    // Every image runs on B as the CNB user (each distinct digest once: promoted tags share theirs), and the Flask
    // images answer HTTP.
    let scratch = tmp.join("run");
    fs_err::create_dir_all(&scratch).unwrap();
    let mut distinct: BTreeMap<&str, &str> = BTreeMap::new();
    for (image, digest) in &new_digest {
        distinct.entry(digest.as_str()).or_insert(image.as_str());
    }
    assert_eq!(
        distinct.len(),
        11,
        "nine test apps, the Flask app, the rebuilt one"
    );
    for (n, (_, image)) in distinct.iter().enumerate() {
        let tag = format!("image-{n}");
        let said = run_in(image, &tag, &scratch, "id -u; cat /etc/goldenpath-patch");
        assert!(
            said.contains("1000") && said.contains('B'),
            "{image}: {said}"
        );
        if image.contains("/flask") {
            let _ = fs_err::remove_dir_all(scratch.join(format!("bundle-{tag}")));
            let port = crate::registry::free_port();
            let app = crate::apps::start_image(&scratch.join("pulled"), &tag, &scratch, port);
            let answer = crate::apps::get(port);
            assert!(
                answer.contains("\"app\":\"python-flask\""),
                "{image}: {answer}"
            );
            drop(app);
        }
    }
}

#[test]
fn a_saved_plan_is_carried_out_and_a_tag_that_moved_since_is_planned_again() {
    if !tools() {
        return;
    }
    let (_reg, dir, host) = setup();
    let tmp = dir.path();
    let images = small_fleet(tmp, &host, 2, &["dev"]);
    let run_b = format!("{host}/stack/run:b");
    let o = fleet_cmd("plan", tmp, &images, &run_b)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let saved = tmp.join("plan.json");
    fs_err::write(&saved, &o.stdout).unwrap();

    // A developer's build lands on app-0 after the plan was made.
    fs_err::write(tmp.join("app-0/index.js"), "// a newer app 0\n").unwrap();
    ok(test_build(&images[0], &js_order(tmp), &tmp.join("app-0"))
        .args(["--publish", "--run-image", &format!("{host}/stack/run:a")])
        .env("XDG_CACHE_HOME", tmp.join("cache")));
    let newer = layers(&images[0]);

    let mut patch = gp();
    patch
        .args(["fleet", "patch", "--run-image", &run_b, "--plan"])
        .arg(&saved)
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .env("XDG_STATE_HOME", tmp.join("state"));
    let out = ok(&mut patch);
    assert!(out.contains("2 patched"), "{out}");
    let report = report(tmp);
    let moved = &report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["image"] == images[0].as_str())
        .unwrap();
    assert!(
        moved["reason"]
            .as_str()
            .unwrap()
            .starts_with("the tag moved after planning"),
        "{moved}"
    );
    // The newer app, not the planned one, is what got the new base.
    let base_a = layers(&format!("{host}/stack/run:a")).len();
    let base_b = layers(&run_b).len();
    assert_eq!(layers(&images[0])[base_b..], newer[base_a..]);

    // A plan made against another run image digest is refused.
    copy(tmp, &format!("{host}/stack/run:a"), &run_b);
    let (okay, out) = run(&mut patch);
    assert!(!okay && out.contains("has changed since"), "{out}");
}

#[test]
fn pinning_a_subset_of_contracts_leaves_the_other_apps_files_alone() {
    if !tools() {
        return;
    }
    let (_reg, dir, host) = setup();
    let tmp = dir.path();
    let images = small_fleet(tmp, &host, 1, &["dev"]);
    // Two apps in the tree; the campaign is given only app-0's contract.
    let tree = contracts(
        &tmp.join("contracts"),
        &format!("{host}/fleet"),
        &["app-0".to_owned(), "other".to_owned()],
        &["dev"],
    );
    let gitops = tmp.join("gitops");
    ok(gp()
        .args(["contract", "render"])
        .arg(&tree)
        .arg("--out")
        .arg(&gitops));
    let other = gitops.join("apps/dev/other/kustomization.yaml");
    let before = fs_err::read_to_string(&other).unwrap();
    let out = ok(fleet_cmd("patch", tmp, &[], &format!("{host}/stack/run:b"))
        .arg("--contracts")
        .arg(tree.join("dev/APP-0001.yaml"))
        .arg("--gitops")
        .arg(&gitops));
    assert!(out.contains("1 patched"), "{out}");
    assert!(out.contains("pinned 1 digest(s)"), "{out}");
    let digest = report(tmp)["images"][0]["new_digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let pinned = fs_err::read_to_string(gitops.join("apps/dev/app-0/kustomization.yaml")).unwrap();
    assert!(pinned.contains(&digest), "{pinned}");
    assert_eq!(
        fs_err::read_to_string(&other).unwrap(),
        before,
        "the other app is untouched"
    );
    assert_eq!(images.len(), 1);
}
