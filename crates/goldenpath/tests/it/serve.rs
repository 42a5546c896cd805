//! `goldenpath serve` end to end, on a local git repository of `examples/apps/python-flask` and its contract: the
//! first build answers on the app's port; a commit switches the answer while a probe every 100 ms sees no
//! failure; a new run image is a rebase (reason STACK, no buildpack) with the app answering throughout; a bad
//! webhook signature gets 401 and builds nothing; `/metrics` passes `promtool` and a real Prometheus scrapes the
//! build count; headless Chromium shows the app running on the status page (screenshot kept under `.cache/`);
//! `kill -9` during a build, then a restart: the build finishes once, one record of it; the contract removed from
//! the contracts repository (itself a git URL): the app stopped.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::apps::{builder, copy_app, ready};
use crate::registry::free_port;
use crate::{require_tool, root, run};

/// A `goldenpath serve` process, stopped with SIGTERM (which stops its apps) when dropped.
struct Serve {
    child: Option<Child>,
}

impl Serve {
    fn start(config: &Path, log: &Path) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("XDG_CACHE_HOME", config.with_file_name("xdg"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Self { child: Some(child) }
    }

    /// SIGKILL: nothing of the service gets to clean up.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.0 exchange on loopback: the status code and body, or `None` when the connection failed.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).ok()?;
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((code, body))
}

fn api(port: u16, path: &str) -> serde_json::Value {
    let (code, body) = http(port, "GET", path, &[], b"").expect("the service answers");
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn builds(port: u16) -> Vec<serde_json::Value> {
    api(port, "/api/apps/flask/builds")
        .as_array()
        .unwrap()
        .clone()
}

/// Waits up to `secs` for `cond`, showing the service log when it never holds.
/// A build's log, through the API.
fn build_log(port: u16, id: &serde_json::Value) -> String {
    http(port, "GET", &format!("/api/builds/{id}/log"), &[], b"")
        .unwrap()
        .1
}

fn wait_for(what: &str, secs: u64, log: &Path, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the service said:\n{}",
            fs_err::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn git(dir: &Path, args: &[&str]) {
    let (ok, out) = run(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
        .args(args));
    assert!(ok, "git {args:?}: {out}");
}

/// Changes the app's greeting to `message` and commits it.
fn commit_greeting(app: &Path, message: &str) {
    let file = app.join("app.py");
    let code = fs_err::read_to_string(&file).unwrap();
    let start = code.find("message=\"").unwrap() + "message=\"".len();
    let end = start + code[start..].find('"').unwrap();
    fs_err::write(
        &file,
        format!("{}{message}{}", &code[..start], &code[end..]),
    )
    .unwrap();
    git(app, &["commit", "-qam", message]);
}

/// Requests the app every 100 ms until stopped: (answers, failures, the first failure).
struct Probe {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match http(port, "GET", "/", &[], b"") {
                    Some((200, body)) if body.contains("\"message\"") => {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    other => f.lock().unwrap().push(format!("{other:?}")),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            ok,
            failed,
            thread: Some(thread),
        }
    }

    /// Stops it: how many requests were answered, and the failures.
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.lock().unwrap().clone(),
        )
    }
}

fn answer(port: u16) -> String {
    http(port, "GET", "/", &[], b"")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

/// Everything the service needs, under `tmp`: the app's git repository, the contracts, the run image in an OCI
/// layout, the secrets and the config. Returns (config, app repository, service port, app port, run image layout).
fn setup(tmp: &Path) -> (PathBuf, PathBuf, u16, u16, PathBuf) {
    fs_err::create_dir_all(tmp.join("git")).unwrap();
    let app = copy_app("python-flask", &tmp.join("git/flask"));
    git(&app, &["init", "-q", "-b", "main"]);
    git(&app, &["add", "-A"]);
    git(&app, &["commit", "-qm", "the app"]);

    let contracts = tmp.join("contracts");
    let tree = contracts.join("docs/20-contracts/app-deployments/dev");
    fs_err::create_dir_all(&tree).unwrap();
    fs_err::copy(
        root().join("examples/contracts/goldenpath.toml"),
        contracts.join("goldenpath.toml"),
    )
    .unwrap();
    fs_err::write(
        tree.join("APP-0001.yaml"),
        "apiVersion: goldenpath.io/v1\nkind: AppDeploymentRequest\nid: APP-0001\nenvironment: dev\n\
         owner: team-a\napplication: flask\nspec:\n  source:\n    git:\n      url: https://github.com/example/flask\n\
         \x20     branch: main\n  build:\n    type: buildpack\n    builder: default\n  runtime:\n    replicas: 1\n\
         \x20   resources:\n      memory: 256Mi\n      cpu: 100m\n",
    )
    .unwrap();
    // The contracts repository is a git repository too, named by its URL (rewritten to the local path).
    git(&contracts, &["init", "-q", "-b", "main"]);
    git(&contracts, &["add", "-A"]);
    git(&contracts, &["commit", "-qm", "contracts"]);

    // The run image: the default stack's, copied into a layout the test can publish a patched one to.
    let (ok, config) = run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(builder()));
    assert!(ok, "{config}");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.builder.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let stack_run = meta["images"][0]["image"].as_str().unwrap();
    let stack = tmp.join("stack");
    let (ok, out) = run(Command::new("skopeo").args([
        "copy",
        "-q",
        stack_run,
        &format!("oci:{}:run", stack.display()),
    ]));
    assert!(ok, "{out}");

    // The builder: the default one, in a layout of the test's own (its blobs hard-linked, its index copied) that
    // the test can publish a changed builder to.
    let cached = builder()
        .strip_prefix("oci:")
        .and_then(|r| r.rsplit_once(':'))
        .unwrap()
        .0;
    let (ok, out) = run(Command::new("cp")
        .arg("-al")
        .arg(cached)
        .arg(tmp.join("builder")));
    assert!(ok, "{out}");
    for f in ["index.json", "index.json.lock"] {
        let _ = fs_err::remove_file(tmp.join("builder").join(f));
        if Path::new(cached).join(f).exists() {
            fs_err::copy(Path::new(cached).join(f), tmp.join("builder").join(f)).unwrap();
        }
    }
    let builder_ref = format!("oci:{}:default", tmp.join("builder").display());

    fs_err::write(tmp.join("webhook-secret"), "s3cret\n").unwrap();
    fs_err::write(tmp.join("api-token"), "t0ken\n").unwrap();
    let (port, app_port) = (free_port(), free_port());
    let config = tmp.join("goldenpath-serve.toml");
    fs_err::write(
        &config,
        format!(
            "contracts = \"https://github.com/example/contracts\"\nenvironment = \"dev\"\nlisten = \"127.0.0.1:{port}\"\nstate = \"state\"\n\
             builder = \"{}\"\nrun_image = \"oci:{}:run\"\npoll_seconds = 1\nstack_poll_seconds = 1\n\
             port_base = {app_port}\nwebhook_secret_file = \"webhook-secret\"\napi_token_file = \"api-token\"\n\n\
             [git_rewrite]\n\"https://github.com/example/flask\" = \"{}\"\n\
             \"https://github.com/example/contracts\" = \"{}\"\n",
            builder_ref,
            stack.display(),
            tmp.join("git/flask").display(),
            contracts.display()
        ),
    )
    .unwrap();
    (config, app, port, app_port, stack)
}

/// Publishes a changed builder at `<layout>:default`: its metadata label names the Python buildpack at 0.1.1.
fn bump_python_buildpack(layout: &Path) {
    let image = format!("oci:{}:default", layout.display());
    let (ok, config) = run(Command::new("skopeo").args(["inspect", "--config", &image]));
    assert!(ok, "{config}");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(
        config["config"]["Labels"]["io.buildpacks.builder.metadata"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    for bp in meta["buildpacks"].as_array_mut().unwrap() {
        if bp["id"] == "io.goldenpath.python" {
            bp["version"] = "0.1.1".into();
        }
    }
    let (ok, out) = run(Command::new("umoci")
        .args([
            "config",
            "--image",
            &format!("{}:default", layout.display()),
        ])
        .arg(format!(
            "--config.label=io.buildpacks.builder.metadata={meta}"
        )));
    assert!(ok, "{out}");
}

/// `promtool check metrics` on what `/metrics` serves, and a real Prometheus scraping it: its query for the
/// build count answers with the number the service reports.
fn prometheus_scrapes(port: u16, tmp: &Path) {
    let (code, metrics) = http(port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let prom_port = free_port();
    let dir = tmp.join("prometheus");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: goldenpath-serve\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut count = None;
    while Instant::now() < deadline && count.is_none() {
        std::thread::sleep(Duration::from_millis(500));
        count = http(
            prom_port,
            "GET",
            "/api/v1/query?query=sum(goldenpath_builds_total)",
            &[],
            b"",
        )
        .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_owned)
        });
    }
    let _ = prom.kill();
    let _ = prom.wait();
    let count = count.expect("Prometheus never scraped goldenpath_builds_total");
    assert!(
        count.parse::<f64>().unwrap() >= 3.0,
        "Prometheus sees {count} builds"
    );
}

/// The status page in headless Chromium: its DOM shows the app running; a screenshot kept under `.cache/`.
fn chromium_shows_running(port: u16, tmp: &Path) {
    let url = format!("http://127.0.0.1:{port}/");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
    ];
    let profile = format!("--user-data-dir={}", tmp.join("chromium").display());
    let o = Command::new("chromium")
        .args(flags)
        .arg(&profile)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains("<td>flask</td>") && dom.contains(">running</td>"),
        "{dom}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let shot = root().join(".cache/serve-status.png");
    fs_err::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = fs_err::remove_file(&shot);
    let o = Command::new("chromium")
        .args(flags)
        .arg(&profile)
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1280,480", &url])
        .output()
        .unwrap();
    let png = fs_err::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one story: first build, commit, stack patch, webhook, metrics, page, crash
fn serve_builds_switches_rebases_and_survives_kill_9() {
    if !(ready()
        && require_tool("git")
        && require_tool("umoci")
        && require_tool("promtool")
        && require_tool("prometheus")
        && require_tool("chromium"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let (config, app, port, app_port, stack) = setup(tmp);
    let log = tmp.join("serve.log");
    let mut serve = Serve::start(&config, &log);

    // The first build, deployed on the app's port.
    wait_for("the first build to run", 900, &log, || {
        http(port, "GET", "/api/apps", &[], b"")
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v[0]["status"] == "running")
    });
    assert!(answer(app_port).contains("Hello from GoldenPath"));
    let first = builds(port);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["reasons"], serde_json::json!(["COMMIT"]));

    // A commit: the new answer within seconds, and no request fails during the switch.
    let probe = Probe::start(app_port);
    commit_greeting(&app, "Hello again");
    let committed = Instant::now();
    wait_for("the commit's answer", 300, &log, || {
        answer(app_port).contains("Hello again")
    });
    eprintln!(
        "commit -> new answer: {:.1} s",
        committed.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));

    // A patched run image: a rebase (STACK, no buildpack ran), the app answering throughout.
    let patch = tmp.join("patch");
    fs_err::create_dir_all(patch.join("etc")).unwrap();
    fs_err::write(patch.join("etc/goldenpath-patch"), "1\n").unwrap();
    let (ok, out) = run(Command::new("umoci")
        .args(["insert", "--image", &format!("{}:run", stack.display())])
        .arg(&patch)
        .arg("/"));
    assert!(ok, "{out}");
    wait_for("the rebase", 300, &log, || {
        builds(port).first().is_some_and(|b| {
            b["reasons"] == serde_json::json!(["STACK"]) && b["status"] == "succeeded"
        })
    });
    let rebase = builds(port)[0].clone();
    assert_eq!(rebase["work"], "rebase");
    let rebase_log = build_log(port, &rebase["id"]);
    assert!(rebase_log.contains("rebased: "), "{rebase_log}");
    assert!(!rebase_log.contains("===> BUILDING"), "{rebase_log}");
    assert!(answer(app_port).contains("Hello again"));
    std::thread::sleep(Duration::from_millis(500));
    let (answered, failures) = probe.finish();
    assert!(
        failures.is_empty(),
        "{} failed of {answered}: {failures:?}",
        failures.len()
    );
    assert!(answered > 20, "{answered}");
    eprintln!("probe: {answered} requests every 100 ms, none failed");

    // A new builder whose Python buildpack moved: rebuilt (BUILDPACK: a build, not a rebase), still answering.
    bump_python_buildpack(&tmp.join("builder"));
    wait_for("the BUILDPACK build", 600, &log, || {
        builds(port).first().is_some_and(|b| {
            b["reasons"] == serde_json::json!(["BUILDPACK"]) && b["status"] == "succeeded"
        })
    });
    let rebuilt = builds(port)[0].clone();
    assert_eq!(rebuilt["work"], "build");
    let rebuilt_log = build_log(port, &rebuilt["id"]);
    assert!(
        rebuilt_log.contains("the builder changed")
            && rebuilt_log.contains("io.goldenpath.python 0.1.0 → 0.1.1"),
        "{rebuilt_log}"
    );
    assert!(answer(app_port).contains("Hello again"));

    // A bad webhook signature: 401, nothing built.
    let before = builds(port).len();
    let body = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"clone_url":"https://github.com/example/flask.git"}}"#;
    let (code, said) = http(
        port,
        "POST",
        "/webhook",
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", "sha256=00"),
        ],
        body,
    )
    .unwrap();
    assert_eq!(code, 401, "{said}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(builds(port).len(), before);

    prometheus_scrapes(port, tmp);
    chromium_shows_running(port, tmp);

    // kill -9 during a build, then a restart: the build finishes once, and one record of it.
    commit_greeting(&app, "Hello after a crash");
    wait_for("the build to start", 120, &log, || {
        builds(port).first().is_some_and(|b| {
            b["status"] == "running" && b["reasons"] == serde_json::json!(["COMMIT"])
        })
    });
    // Killed while the new version starts: its image is written (the tag has moved), it is not deployed yet.
    let id = builds(port)[0]["id"].clone();
    let deadline = Instant::now() + Duration::from_mins(5);
    while !http(port, "GET", &format!("/api/builds/{id}/log"), &[], b"")
        .is_some_and(|(_, log)| log.contains("\ndeploying "))
    {
        assert!(
            Instant::now() < deadline,
            "the build never reached its deploy"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    serve.kill9();
    let serve = Serve::start(&config, &log);
    wait_for("the crashed build's answer", 600, &log, || {
        answer(app_port).contains("Hello after a crash")
    });
    let said = fs_err::read_to_string(&log).unwrap();
    assert!(
        said.contains("left running by an earlier run")
            && !said.contains("could not be started again"),
        "the restart removes the orphaned container and runs the last image again:\n{said}"
    );
    let all = builds(port);
    let head = all[0]["revision"].clone();
    let records: Vec<_> = all.iter().filter(|b| b["revision"] == head).collect();
    assert_eq!(records.len(), 1, "{all:#?}");
    assert_eq!(records[0]["status"], "succeeded");
    assert_eq!(records[0]["resumed"], true);
    assert_eq!(all.len(), before + 1, "{all:#?}");

    // The contract removed from the contracts repository: the app is stopped and no longer served.
    let contracts = tmp.join("contracts");
    git(
        &contracts,
        &[
            "rm",
            "-q",
            "docs/20-contracts/app-deployments/dev/APP-0001.yaml",
        ],
    );
    git(&contracts, &["commit", "-qm", "flask retired"]);
    wait_for("the app to be removed", 60, &log, || {
        api(port, "/api/apps").as_array().is_some_and(Vec::is_empty)
    });
    wait_for("the app's port to close", 30, &log, || {
        TcpStream::connect(("127.0.0.1", app_port)).is_err()
    });
    drop(serve);
}

/// `deploy = "gitops"`: the build is published to the contract's registry image, and the GitOps working copy gets
/// a commit pinning exactly that digest (the render's kustomization `images:`); a new commit of the app, a new pin.
#[test]
fn serve_with_gitops_deploy_publishes_and_commits_the_pin() {
    if !(ready()
        && require_tool("git")
        && require_tool("docker-registry")
        && require_tool("skopeo"))
    {
        return;
    }
    let reg = crate::registry::RegistryServer::start();
    let host = format!("127.0.0.1:{}", reg.port);
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let (config, app, port, _, stack) = setup(tmp);
    // The contracts' registry is the loopback one; the run image is published there too.
    let contracts = tmp.join("contracts");
    let platform = fs_err::read_to_string(contracts.join("goldenpath.toml"))
        .unwrap()
        .replace("123456789012.dkr.ecr.eu-west-2.amazonaws.com", &host);
    fs_err::write(contracts.join("goldenpath.toml"), platform).unwrap();
    git(&contracts, &["commit", "-qam", "loopback registry"]);
    let (ok, out) = run(Command::new("skopeo").args([
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &format!("oci:{}:run", stack.display()),
        &format!("docker://{host}/stack/run:latest"),
    ]));
    assert!(ok, "{out}");
    let gitops = tmp.join("gitops");
    fs_err::create_dir_all(&gitops).unwrap();
    git(&gitops, &["init", "-q", "-b", "main"]);
    git(&gitops, &["commit", "-q", "--allow-empty", "-m", "empty"]);
    let text = fs_err::read_to_string(&config)
        .unwrap()
        .replace(
            &format!("run_image = \"oci:{}:run\"", stack.display()),
            &format!(
                "run_image = \"{host}/stack/run:latest\"\ndeploy = \"gitops\"\ngitops = \"gitops\"\ninsecure_registries = [\"{host}\"]"
            ),
        );
    fs_err::write(&config, text).unwrap();
    let log = tmp.join("serve.log");
    let serve = Serve::start(&config, &log);

    let pinned = |n: usize| {
        let builds: Vec<serde_json::Value> = http(port, "GET", "/api/apps/flask/builds", &[], b"")
            .and_then(|(_, b)| serde_json::from_str(&b).ok())
            .unwrap_or_default();
        // The newest build only: the pin is committed before its build is marked done, so an
        // older succeeded build may still be the newest *succeeded* one for a moment.
        let digest = builds
            .first()
            .filter(|b| b["status"] == "succeeded")
            .and_then(|b| b["digest"].as_str().map(str::to_owned));
        let commits = Command::new("git")
            .arg("-C")
            .arg(&gitops)
            .args(["rev-list", "--count", "HEAD"])
            .output()
            .unwrap();
        let count: usize = String::from_utf8_lossy(&commits.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        (count == n + 1).then_some(digest).flatten()
    };
    let mut first = None;
    wait_for("the first pin", 900, &log, || {
        first = pinned(1);
        first.is_some()
    });
    let first = first.unwrap();
    let kustomization = gitops.join("apps/dev/flask/kustomization.yaml");
    let text = fs_err::read_to_string(&kustomization).unwrap();
    assert!(text.contains(&format!("digest: {first}")), "{text}");
    // The registry has that image under the contract's tag.
    let (ok, out) = run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{host}/flask:dev"),
    ]));
    assert!(ok, "{out}");
    assert_eq!(out.trim(), first);
    let status = api(port, "/api/apps");
    assert_eq!(status[0]["status"], "running", "{status:#}");
    assert!(
        status[0]["url"].as_str().unwrap().starts_with("gitops "),
        "{status:#}"
    );

    // A commit of the app: a new image, a new pin.
    commit_greeting(&app, "Hello from GitOps");
    let mut second = None;
    wait_for("the second pin", 300, &log, || {
        second = pinned(2);
        second.is_some()
    });
    let second = second.unwrap();
    assert_ne!(first, second);
    let text = fs_err::read_to_string(&kustomization).unwrap();
    assert!(text.contains(&format!("digest: {second}")), "{text}");
    drop(serve);
}
