//! The loop with a scripted engine: first builds, a commit, a new run image (a rebase, no build), a new builder
//! (a rebuild of the apps whose buildpacks changed), a failure retried, a crash resumed — each as the state
//! database and the metrics record it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_serve::builder::{BuilderNow, BuiltWith};
use gp_serve::config::Config;
use gp_serve::service::{AppSource, Built, Contracts, Engine, Service};
use gp_serve::state::BuildStatus;

#[derive(Default)]
struct World {
    head: String,
    run_image: String,
    /// Calls, in order: `build a@rev`, `rebase a`, `deploy a sha`.
    calls: Vec<String>,
    /// Failures to return for the next builds.
    fail: VecDeque<String>,
    built: u32,
    /// What the contracts say (None: the one app of [`app`]).
    contracts: Option<Contracts>,
    /// The sources asked for their head, in order (`url@branch`).
    heads: Vec<String>,
    /// What the builder holds (None: a builder directory, nothing to watch), and how often it was read.
    builder: Option<BuilderNow>,
    builder_reads: u32,
}

/// A builder with `gp/python` and `gp/node` at these versions.
fn builder(digest: &str, lifecycle: &str, python: &str, node: &str) -> BuilderNow {
    BuilderNow {
        digest: digest.into(),
        lifecycle: Some(lifecycle.into()),
        buildpacks: BTreeMap::from([
            ("gp/python".to_owned(), BTreeSet::from([python.to_owned()])),
            ("gp/node".to_owned(), BTreeSet::from([node.to_owned()])),
        ]),
    }
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<World>>);

impl Engine for Fake {
    fn build(&self, app: &AppSource, revision: &str, log: &dyn Fn(&str)) -> Result<Built, String> {
        let mut w = self.0.lock().unwrap();
        w.calls.push(format!("build {}@{revision}", app.name));
        log("building");
        if let Some(e) = w.fail.pop_front() {
            return Err(e);
        }
        w.built += 1;
        // The app is Python: the group that ran is the builder's python buildpack.
        let built_with = w.builder.as_ref().map(|b| BuiltWith {
            builder: b.digest.clone(),
            lifecycle: b.lifecycle.clone(),
            buildpacks: BTreeMap::from([(
                "gp/python".to_owned(),
                b.buildpacks["gp/python"].first().unwrap().clone(),
            )]),
        });
        Ok(Built {
            reference: format!("{}@sha256:{}", app.image, w.built),
            digest: format!("sha256:{}", w.built),
            run_image: Some(w.run_image.clone()),
            built_with,
        })
    }

    fn rebase(&self, app: &AppSource, last: &str, _log: &dyn Fn(&str)) -> Result<Built, String> {
        let mut w = self.0.lock().unwrap();
        w.calls.push(format!("rebase {} {last}", app.name));
        Ok(Built {
            reference: format!("{}@{last}-r", app.image),
            digest: format!("{last}-r"),
            run_image: Some(w.run_image.clone()),
            built_with: None,
        })
    }

    fn head(&self, app: &AppSource) -> Result<String, String> {
        let mut w = self.0.lock().unwrap();
        w.heads.push(format!("{}@{}", app.fetch_url, app.branch));
        Ok(w.head.clone())
    }

    fn run_image(&self) -> Result<String, String> {
        Ok(self.0.lock().unwrap().run_image.clone())
    }

    fn builder(&self) -> Result<Option<BuilderNow>, String> {
        let mut w = self.0.lock().unwrap();
        w.builder_reads += 1;
        Ok(w.builder.clone())
    }

    fn deploy(&self, app: &AppSource, built: &Built, _: &dyn Fn(&str)) -> Result<String, String> {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("deploy {} {}", app.name, built.digest));
        Ok("http://127.0.0.1:1/".into())
    }

    fn contracts(&self) -> Result<Contracts, String> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .contracts
            .clone()
            .unwrap_or_else(|| Contracts {
                apps: vec![app()],
                invalid: Vec::new(),
            }))
    }

    fn undeploy(&self, app: &AppSource) {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("undeploy {}", app.name));
    }

    fn redeploy(&self, app: &AppSource, digest: &str) -> Result<String, String> {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("redeploy {} {digest}", app.name));
        Ok("http://127.0.0.1:1/".into())
    }
}

fn config(state: &Path) -> Config {
    let text = format!(
        "contracts = \"c\"\nstate = \"{}\"\npoll_seconds = 1\nstack_poll_seconds = 1\n",
        state.display()
    );
    Config::parse(&text, Path::new("/x/serve.toml")).unwrap()
}

fn app() -> AppSource {
    AppSource {
        name: "flask".into(),
        contract: "dev/APP-1.yaml".into(),
        git_url: "file:///src/flask".into(),
        fetch_url: "file:///src/flask".into(),
        branch: "main".into(),
        image: "oci:/x/images".into(),
    }
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn commits_build_stack_changes_rebase_and_failures_retry() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut w = fake.0.lock().unwrap();
        w.head = "r1".into();
        w.run_image = "sha256:runA".into();
    }
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    let calls = || fake.0.lock().unwrap().calls.clone();
    wait_for("the first build", || {
        calls().contains(&"deploy flask sha256:1".into())
    });
    let view = &svc.apps().unwrap()[0];
    assert_eq!(view.app.revision.as_deref(), Some("r1"));
    assert_eq!(view.app.status, "running");

    // A commit: built once (the watcher sees r2 every second, the queue holds one entry).
    fake.0.lock().unwrap().head = "r2".into();
    wait_for("the commit's build", || {
        calls().contains(&"deploy flask sha256:2".into())
    });
    // A new run image: a rebase of the last image, no build.
    fake.0.lock().unwrap().run_image = "sha256:runB".into();
    wait_for("the rebase", || {
        calls().contains(&"rebase flask sha256:2".into())
    });
    wait_for("the rebased deploy", || {
        calls().contains(&"deploy flask sha256:2-r".into())
    });
    let builds = svc.builds("flask").unwrap();
    assert_eq!(
        builds[0]
            .reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["STACK"]
    );
    assert_eq!(builds.len(), 3);
    assert!(!svc.apps().unwrap()[0].behind);

    // A failing build is recorded with its error; a trigger then builds again at once.
    fake.0
        .lock()
        .unwrap()
        .fail
        .push_back("the buildpack failed".into());
    assert!(svc.trigger("flask"));
    assert!(!svc.trigger("nope"));
    wait_for("the failure", || {
        svc.builds("flask").unwrap()[0].status == BuildStatus::Failed
    });
    let failed = svc.builds("flask").unwrap()[0].clone();
    assert_eq!(failed.error.as_deref(), Some("the buildpack failed"));
    assert!(
        svc.log(failed.id)
            .unwrap()
            .contains("error: the buildpack failed")
    );
    assert!(svc.trigger("flask"));
    wait_for("the rebuild", || {
        svc.builds("flask").unwrap()[0].status == BuildStatus::Succeeded
    });
    let metrics = svc.metrics().render();
    assert!(
        metrics.contains(
            r#"goldenpath_builds_total{work="rebase",reason="STACK",result="succeeded"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"reason="TRIGGER",result="failed"} 1"#),
        "{metrics}"
    );
    svc.stop();
}

#[test]
fn a_builder_change_rebuilds_the_apps_whose_buildpacks_or_lifecycle_changed() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut w = fake.0.lock().unwrap();
        w.head = "r1".into();
        w.run_image = "sha256:runA".into();
        w.builder = Some(builder("sha256:b1", "0.20.0", "1.0.0", "1.0.0"));
    }
    let calls = || fake.0.lock().unwrap().calls.clone();
    let builds = |svc: &Service| {
        svc.builds("flask")
            .unwrap()
            .iter()
            .filter(|b| b.status == BuildStatus::Succeeded)
            .count()
    };
    let reasons = |svc: &Service| {
        let b = &svc.builds("flask").unwrap()[0];
        (
            b.reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            svc.log(b.id).unwrap(),
        )
    };
    // Two reads of the builder after `n`: the watcher has seen what the fake holds now.
    let read_twice = || {
        let n = fake.0.lock().unwrap().builder_reads;
        wait_for("two builder reads", || {
            fake.0.lock().unwrap().builder_reads >= n + 2
        });
    };
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the first build", || builds(&svc) == 1);

    // Only a buildpack the app does not use changed: nothing to do.
    fake.0.lock().unwrap().builder = Some(builder("sha256:b2", "0.20.0", "1.0.0", "1.1.0"));
    read_twice();
    assert_eq!(builds(&svc), 1, "{:?}", calls());

    // Its buildpack changed: rebuilt from the same revision (BUILDPACK), never rebased.
    fake.0.lock().unwrap().builder = Some(builder("sha256:b3", "0.20.0", "1.1.0", "1.1.0"));
    wait_for("the BUILDPACK build", || builds(&svc) == 2);
    let (why, log) = reasons(&svc);
    assert_eq!(why, "BUILDPACK");
    assert!(
        log.contains("the builder changed (sha256:b1 → sha256:b3): gp/python 1.0.0 → 1.1.0"),
        "{log}"
    );
    assert!(calls().contains(&"build flask@r1".into()), "{:?}", calls());

    // A new lifecycle and a new run image at once: one build for both (a rebase would keep the old lifecycle).
    {
        let mut w = fake.0.lock().unwrap();
        w.builder = Some(builder("sha256:b4", "0.21.0", "1.1.0", "1.1.0"));
        w.run_image = "sha256:runB".into();
    }
    wait_for("the LIFECYCLE build", || builds(&svc) == 3);
    read_twice();
    assert_eq!(builds(&svc), 3, "one build for both: {:?}", calls());
    let (why, _) = reasons(&svc);
    assert!(why.contains("LIFECYCLE"), "{why}");
    assert!(
        !calls().iter().any(|c| c.starts_with("rebase")),
        "{:?}",
        calls()
    );
    assert!(!svc.apps().unwrap()[0].behind);
    svc.stop();

    // Changed while the service was down: the first check after the start compares with what built the app.
    fake.0.lock().unwrap().builder = Some(builder("sha256:b5", "0.21.0", "1.2.0", "1.1.0"));
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the BUILDPACK build after the restart", || {
        builds(&svc) == 4
    });
    assert_eq!(reasons(&svc).0, "BUILDPACK");
    let metrics = svc.metrics().render();
    assert!(
        metrics.contains(
            r#"goldenpath_builds_total{work="build",reason="BUILDPACK",result="succeeded"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("goldenpath_builder_ready 1"), "{metrics}");
    svc.stop();
}

#[test]
fn apps_of_one_repository_and_branch_ask_it_once_per_check() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    let named = |name: &str, url: &str| AppSource {
        name: name.into(),
        contract: format!("dev/{name}.yaml"),
        git_url: url.into(),
        fetch_url: url.into(),
        ..app()
    };
    // Two apps of a monorepo, one of its own.
    let apps = vec![
        named("web", "file:///src/mono"),
        named("api", "file:///src/mono"),
        named("docs", "file:///src/docs"),
    ];
    fake.0.lock().unwrap().head = "r1".into();
    fake.0.lock().unwrap().contracts = Some(Contracts {
        apps: apps.clone(),
        invalid: Vec::new(),
    });
    let svc = Service::start(config(d.path()), apps, Box::new(fake.clone())).unwrap();
    wait_for("three checks of each source", || {
        let w = fake.0.lock().unwrap();
        w.heads
            .iter()
            .filter(|h| h.starts_with("file:///src/docs@"))
            .count()
            >= 3
    });
    svc.stop();
    let w = fake.0.lock().unwrap();
    let count = |url: &str| w.heads.iter().filter(|h| h.starts_with(url)).count();
    let (mono, docs) = (count("file:///src/mono@"), count("file:///src/docs@"));
    assert!(
        mono.abs_diff(docs) <= 1,
        "monorepo asked {mono} times, docs {docs}: {:?}",
        w.heads
    );
    // Both of the monorepo's apps were built from what that one answer said.
    for name in ["web", "api"] {
        assert!(
            w.calls.contains(&format!("build {name}@r1")),
            "{:?}",
            w.calls
        );
    }
}

#[test]
fn a_restart_runs_the_last_image_again_and_catches_up_with_a_run_image_published_meanwhile() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut w = fake.0.lock().unwrap();
        w.head = "r1".into();
        w.run_image = "sha256:runA".into();
    }
    let calls = || fake.0.lock().unwrap().calls.clone();
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the first build", || {
        calls().contains(&"deploy flask sha256:1".into())
    });
    svc.stop();

    fake.0.lock().unwrap().run_image = "sha256:runB".into();
    fake.0.lock().unwrap().calls.clear();
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the rebased deploy", || {
        calls().contains(&"deploy flask sha256:1-r".into())
    });
    // Started again first, then rebased; never rebuilt (the revision is the one built).
    assert_eq!(
        calls(),
        [
            "redeploy flask sha256:1",
            "rebase flask sha256:1",
            "deploy flask sha256:1-r"
        ]
    );
    assert_eq!(svc.builds("flask").unwrap().len(), 2);
    svc.stop();
}

#[test]
fn contracts_added_changed_removed_and_broken_are_followed() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    {
        let mut w = fake.0.lock().unwrap();
        w.head = "r1".into();
        w.run_image = "sha256:runA".into();
    }
    let calls = || fake.0.lock().unwrap().calls.clone();
    let names = |svc: &Service| -> Vec<String> {
        svc.apps()
            .unwrap()
            .iter()
            .map(|a| a.app.name.clone())
            .collect()
    };
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the first build", || {
        calls().contains(&"deploy flask sha256:1".into())
    });

    // A new contract: the app is served and built.
    let api = AppSource {
        name: "api".into(),
        contract: "dev/APP-2.yaml".into(),
        ..app()
    };
    fake.0.lock().unwrap().contracts = Some(Contracts {
        apps: vec![app(), api.clone()],
        invalid: Vec::new(),
    });
    wait_for("the new app's build", || {
        calls().contains(&"build api@r1".into())
    });
    wait_for("the new app listed", || names(&svc) == ["api", "flask"]);

    // flask's contract now names another branch: rebuilt with reason CONFIG.
    let moved = AppSource {
        branch: "release".into(),
        ..app()
    };
    fake.0.lock().unwrap().contracts = Some(Contracts {
        apps: vec![moved, api.clone()],
        invalid: Vec::new(),
    });
    wait_for("the CONFIG build", || {
        svc.builds("flask").unwrap()[0]
            .reasons
            .iter()
            .any(|r| r.to_string() == "CONFIG")
            && svc.builds("flask").unwrap()[0].status == BuildStatus::Succeeded
    });

    // api's contract removed, flask's broken: api stopped and gone, flask left running.
    fake.0.lock().unwrap().contracts = Some(Contracts {
        apps: Vec::new(),
        invalid: vec!["dev/APP-1.yaml".into()],
    });
    wait_for("api stopped", || calls().contains(&"undeploy api".into()));
    wait_for("api gone", || names(&svc) == ["flask"]);
    assert!(!calls().contains(&"undeploy flask".into()));
    assert_eq!(svc.apps().unwrap()[0].app.status, "running");
    assert_eq!(
        svc.metrics()
            .render()
            .lines()
            .find(|l| l.starts_with("goldenpath_apps "))
            .unwrap(),
        "goldenpath_apps 1"
    );
    svc.stop();
}

#[test]
fn a_webhook_push_queues_the_apps_of_that_repository_and_branch() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.0.lock().unwrap().head = "r1".into();
    let svc = Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap();
    wait_for("the first build", || {
        fake.0
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "deploy flask sha256:1")
    });
    // The push is announced before the next check of the branch would see it.
    let urls = vec!["file:///src/flask.git".to_owned()];
    assert_eq!(svc.pushed(&urls, "main", "r9"), ["flask"]);
    assert!(svc.pushed(&urls, "other", "r9").is_empty());
    wait_for("the pushed revision", || {
        fake.0
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "build flask@r9")
    });
    svc.stop();
}

fn request(addr: std::net::SocketAddr, raw: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_http_side_checks_signatures_and_tokens() {
    let d = tempfile::tempdir().unwrap();
    let fake = Fake::default();
    fake.0.lock().unwrap().head = "r1".into();
    let svc =
        Arc::new(Service::start(config(d.path()), vec![app()], Box::new(fake.clone())).unwrap());
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    let secrets = gp_serve::http::Secrets {
        webhook: Some(b"hook-secret".to_vec()),
        api_token: Some("tok".into()),
    };
    let (srv, s2) = (server.clone(), svc.clone());
    let thread = std::thread::spawn(move || gp_serve::http::serve(&srv, &s2, &secrets));
    wait_for("the first build", || {
        fake.0
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "deploy flask sha256:1")
    });

    assert!(request(addr, "GET /healthz HTTP/1.0\r\n\r\n").ends_with("ok\n"));
    let page = request(addr, "GET / HTTP/1.0\r\n\r\n");
    assert!(
        page.contains("<td>flask</td><td class=\"running\">running</td>"),
        "{page}"
    );
    assert!(page.contains("http://127.0.0.1:1/"), "{page}");
    let metrics = request(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(metrics.contains("goldenpath_builds_total"), "{metrics}");

    let body = r#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"clone_url":"file:///src/flask"}}"#;
    let post = |sig: Option<&str>| {
        let sig = sig
            .map(|s| format!("X-Hub-Signature-256: {s}\r\n"))
            .unwrap_or_default();
        request(
            addr,
            &format!(
                "POST /webhook HTTP/1.0\r\nX-GitHub-Event: push\r\n{sig}Content-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    };
    assert!(
        post(None).starts_with("HTTP/1.0 401") || post(None).starts_with("HTTP/1.1 401"),
        "{}",
        post(None)
    );
    let bad = gp_serve::webhook::sign(b"wrong", body.as_bytes());
    assert!(post(Some(&bad)).contains(" 401 "), "{}", post(Some(&bad)));
    let builds_before = svc.builds("flask").unwrap().len();
    assert_eq!(builds_before, 1, "a refused webhook builds nothing");
    let good = gp_serve::webhook::sign(b"hook-secret", body.as_bytes());
    let answer = post(Some(&good));
    assert!(
        answer.contains(" 202 ") && answer.contains("queued: flask"),
        "{answer}"
    );
    wait_for("the pushed build", || {
        fake.0
            .lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c == "build flask@0123456789abcdef0123456789abcdef01234567")
    });

    let trigger = |auth: &str| {
        request(
            addr,
            &format!("POST /api/apps/flask/build HTTP/1.0\r\n{auth}Content-Length: 0\r\n\r\n"),
        )
    };
    assert!(trigger("").contains(" 401 "));
    assert!(trigger("Authorization: Bearer nope\r\n").contains(" 401 "));
    assert!(trigger("Authorization: Bearer tok\r\n").contains(" 202 "));
    let apps = request(addr, "GET /api/apps HTTP/1.0\r\n\r\n");
    assert!(apps.contains("\"name\": \"flask\""), "{apps}");
    server.unblock();
    thread.join().unwrap();
}
