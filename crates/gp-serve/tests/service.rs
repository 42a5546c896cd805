//! The loop with a scripted engine: first builds, a commit, a new run image (a rebase, no build), a failure
//! retried, a crash resumed — each as the state database and the metrics record it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_serve::config::Config;
use gp_serve::service::{AppSource, Built, Engine, Service};
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
        Ok(Built {
            reference: format!("{}@sha256:{}", app.image, w.built),
            digest: format!("sha256:{}", w.built),
            run_image: Some(w.run_image.clone()),
        })
    }

    fn rebase(&self, app: &AppSource, last: &str, _log: &dyn Fn(&str)) -> Result<Built, String> {
        let mut w = self.0.lock().unwrap();
        w.calls.push(format!("rebase {} {last}", app.name));
        Ok(Built {
            reference: format!("{}@{last}-r", app.image),
            digest: format!("{last}-r"),
            run_image: Some(w.run_image.clone()),
        })
    }

    fn head(&self, _app: &AppSource) -> Result<String, String> {
        Ok(self.0.lock().unwrap().head.clone())
    }

    fn run_image(&self) -> Result<String, String> {
        Ok(self.0.lock().unwrap().run_image.clone())
    }

    fn deploy(&self, app: &AppSource, built: &Built) -> Result<String, String> {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("deploy {} {}", app.name, built.digest));
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
