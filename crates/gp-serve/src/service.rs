//! The loop itself: watchers turn changes into queued work with reasons, workers run it through an [`Engine`]
//! (the build, the rebase, the deploy: library calls the CLI provides), the state database records everything,
//! the metrics follow. The engine is a trait so that this loop is tested on its own; `goldenpath serve` passes
//! the real one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::builder::{BuilderNow, BuiltWith};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::{AfterFailure, Job, Queue, Retry};
use crate::reason::{Lane, Reason, Work, work_for};
use crate::state::{App, State, StateError, Succeeded};

/// An app as its contract describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSource {
    pub name: String,
    pub contract: String,
    /// The contract's git URL (what webhooks name).
    pub git_url: String,
    /// Where it is fetched from (`git_rewrite` applied).
    pub fetch_url: String,
    pub branch: String,
    /// The image it is published as (without a tag).
    pub image: String,
}

/// What a build or rebase produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// A reference to the image by digest (what the deploy runs).
    pub reference: String,
    pub digest: String,
    /// The run image digest it is on.
    pub run_image: Option<String>,
    /// What built it (`None` for a rebase: the buildpacks stay those of the last build).
    pub built_with: Option<BuiltWith>,
}

/// What the contracts repository says now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contracts {
    /// The apps of the valid contracts of the environment.
    pub apps: Vec<AppSource>,
    /// Contract files that are invalid now: their apps are left as they were (never stopped for a typo).
    pub invalid: Vec<String>,
}

/// The work the loop asks for. Errors are messages for the build log and the status page.
pub trait Engine: Send + Sync + 'static {
    /// Builds `app` from `revision` of its git source.
    fn build(&self, app: &AppSource, revision: &str, log: &dyn Fn(&str)) -> Result<Built, String>;
    /// Puts the app's last image on the current run image.
    fn rebase(&self, app: &AppSource, last: &str, log: &dyn Fn(&str)) -> Result<Built, String>;
    /// The commit at the head of the app's branch.
    fn head(&self, app: &AppSource) -> Result<String, String>;
    /// The run image's current digest.
    fn run_image(&self) -> Result<String, String>;
    /// What the builder reference holds now (its digest, lifecycle and buildpacks); `None` when the builder is
    /// not an image (a local directory), which has nothing to watch.
    fn builder(&self) -> Result<Option<BuilderNow>, String>;
    /// Makes `built` the running version of `app` (without downtime); its URL. `log` takes lines for the build log.
    fn deploy(&self, app: &AppSource, built: &Built, log: &dyn Fn(&str)) -> Result<String, String>;
    /// After a restart: runs the image `digest` the app last had deployed again; its URL.
    fn redeploy(&self, app: &AppSource, digest: &str) -> Result<String, String>;
    /// Reads the contracts repository again (fetching it first when it is remote).
    fn contracts(&self) -> Result<Contracts, String>;
    /// Stops a deployed app whose contract was removed.
    fn undeploy(&self, app: &AppSource);
    /// After a restart, once every app deployed before it runs again: what the earlier run left and no app uses
    /// can go.
    fn restored(&self) {}
    /// On the worker thread, after each piece of work (a build or rebase and its deploy): the moment to give back
    /// memory the work held, as an idle service should.
    fn after_work(&self) {}
}

struct Shared {
    engine: Box<dyn Engine>,
    state: Mutex<State>,
    queue: Mutex<Queue>,
    wake: Condvar,
    busy: Mutex<HashSet<String>>,
    /// The revision each app's running work builds (a watcher or webhook seeing it again is no news).
    in_flight: Mutex<HashMap<String, String>>,
    /// Interrupted build records to resume, by app.
    resume: Mutex<HashMap<String, i64>>,
    apps: Mutex<Vec<AppSource>>,
    urls: Mutex<HashMap<String, String>>,
    run_image: Mutex<Option<String>>,
    builder: Mutex<Option<BuilderNow>>,
    metrics: Metrics,
    stop: AtomicBool,
    config: Config,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running service; [`Service::stop`] (or drop) ends its threads.
pub struct Service {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("apps", &lock(&self.shared.apps).len())
            .finish_non_exhaustive()
    }
}

/// A snapshot for the API and the status page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    pub url: Option<String>,
    /// Whether the app is not on the current run image.
    pub behind: bool,
    pub last_build: Option<crate::state::Build>,
    pub queued: Vec<Reason>,
}

impl Service {
    /// Opens the state (resuming builds a crash interrupted), registers the apps and starts the watcher and the
    /// workers.
    pub fn start(
        config: Config,
        apps: Vec<AppSource>,
        engine: Box<dyn Engine>,
    ) -> Result<Self, StateError> {
        fs_err::create_dir_all(&config.state).map_err(|source| StateError::Dir {
            path: config.state.display().to_string(),
            source,
        })?;
        let mut state = State::open(&config.state.join("state.db"))?;
        for a in &apps {
            state.upsert_app(&App {
                name: a.name.clone(),
                contract: a.contract.clone(),
                git_url: Some(a.git_url.clone()),
                branch: Some(a.branch.clone()),
                revision: None,
                image: Some(a.image.clone()),
                digest: None,
                run_image: None,
                status: "new".into(),
                built_with: None,
            })?;
        }
        let now = Instant::now();
        let mut queue = Queue::new(Retry::default());
        let mut resume = HashMap::new();
        for i in state.recover()? {
            for r in &i.reasons {
                queue.push(&i.app, *r, i.revision.as_deref(), now);
            }
            resume.insert(i.app.clone(), i.id);
        }
        // Apps deployed before a restart run their last image again, before any work for them (a resumed build
        // included) is taken: they are busy until then, and they answer while it runs.
        let restore: Vec<(AppSource, String)> = state
            .apps()?
            .into_iter()
            .filter_map(|a| {
                let source = apps.iter().find(|s| s.name == a.name)?.clone();
                Some((source, a.digest?))
            })
            .collect();
        let metrics = Metrics::new();
        metrics
            .apps
            .set(i64::try_from(apps.len()).unwrap_or(i64::MAX));
        let concurrency = config.concurrency;
        let shared = Arc::new(Shared {
            engine,
            state: Mutex::new(state),
            queue: Mutex::new(queue),
            wake: Condvar::new(),
            busy: Mutex::new(restore.iter().map(|(a, _)| a.name.clone()).collect()),
            in_flight: Mutex::new(HashMap::new()),
            resume: Mutex::new(resume),
            apps: Mutex::new(apps),
            urls: Mutex::new(HashMap::new()),
            run_image: Mutex::new(None),
            builder: Mutex::new(None),
            metrics,
            stop: AtomicBool::new(false),
            config,
        });
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(std::thread::spawn(move || {
            for (app, digest) in restore {
                redeploy(&s, &app, &digest);
            }
            s.engine.restored();
        }));
        let s = shared.clone();
        threads.push(std::thread::spawn(move || watch_loop(&s)));
        for _ in 0..concurrency {
            let s = shared.clone();
            threads.push(std::thread::spawn(move || work_loop(&s)));
        }
        Ok(Self { shared, threads })
    }

    /// Queues a build of `app` (reason TRIGGER); false when no such app.
    #[must_use]
    pub fn trigger(&self, app: &str) -> bool {
        if !lock(&self.shared.apps).iter().any(|a| a.name == app) {
            return false;
        }
        lock(&self.shared.queue).push(app, Reason::Trigger, None, Instant::now());
        self.shared.wake.notify_all();
        true
    }

    /// Queues a build for a push to `branch` of the repository at one of `urls` (a webhook); the apps it matched.
    #[must_use]
    pub fn pushed(&self, urls: &[String], branch: &str, revision: &str) -> Vec<String> {
        let matched: Vec<String> = lock(&self.shared.apps)
            .iter()
            .filter(|a| {
                a.branch == branch
                    && urls
                        .iter()
                        .any(|u| crate::webhook::same_repository(u, &a.git_url))
            })
            .map(|a| a.name.clone())
            .collect();
        for app in &matched {
            if is_news(&self.shared, app, revision) {
                lock(&self.shared.queue).push(app, Reason::Commit, Some(revision), Instant::now());
            }
        }
        self.shared.wake.notify_all();
        matched
    }

    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Every app with what is known about it.
    pub fn apps(&self) -> Result<Vec<AppView>, StateError> {
        let state = lock(&self.shared.state);
        let current = lock(&self.shared.run_image).clone();
        let urls = lock(&self.shared.urls).clone();
        let queue = lock(&self.shared.queue);
        let mut out = Vec::new();
        let served = lock(&self.shared.apps).clone();
        for app in state.apps()? {
            if !served.iter().any(|a| a.name == app.name) {
                continue;
            }
            let last_build = state.builds(&app.name, 1)?.into_iter().next();
            out.push(AppView {
                url: urls.get(&app.name).cloned(),
                behind: current.is_some() && app.digest.is_some() && app.run_image != current,
                queued: queue
                    .get(&app.name)
                    .map(|p| p.reasons.iter().copied().collect())
                    .unwrap_or_default(),
                last_build,
                app,
            });
        }
        Ok(out)
    }

    /// An app's builds, newest first.
    pub fn builds(&self, app: &str) -> Result<Vec<crate::state::Build>, StateError> {
        lock(&self.shared.state).builds(app, crate::state::HISTORY)
    }

    /// A build's log.
    pub fn log(&self, id: i64) -> Result<String, StateError> {
        lock(&self.shared.state).log(id)
    }

    /// Ends the watcher and the workers (a running build finishes first).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks sources, the run image and the builder when they are due; queues what changed.
fn watch_loop(s: &Shared) {
    let mut next_source: HashMap<String, Instant> = HashMap::new();
    // The head each branch had at the last check: only a change is news (a webhook may already have queued a
    // newer revision than the one a slower check still sees).
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut next_stack = Instant::now();
    // Read at start already: the first check again is one interval later.
    let mut next_contracts = Instant::now() + s.config.poll();
    // Invalid contract files already reported (each is said once until it changes state).
    let mut warned: HashSet<String> = HashSet::new();
    // The builder's read failure is said once until it can be read again.
    let mut builder_warned = false;
    while !s.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= next_stack {
            next_stack = now + s.config.stack_poll();
            check_platform(s, &mut builder_warned);
        }
        if now >= next_contracts {
            next_contracts = now + s.config.poll();
            match s.engine.contracts() {
                Ok(c) => reconcile(s, &c, &mut warned),
                Err(e) => eprintln!(
                    "warning: the contracts cannot be read again ({e}): apps left as they were"
                ),
            }
        }
        let apps = lock(&s.apps).clone();
        // Apps built from one repository and branch (a monorepo's) are due together: asked once per tick.
        let mut heads: HashMap<(&str, &str), Option<String>> = HashMap::new();
        for app in &apps {
            if next_source.get(&app.name).is_some_and(|t| *t > now) {
                continue;
            }
            next_source.insert(app.name.clone(), now + s.config.poll());
            let head = heads
                .entry((&app.fetch_url, &app.branch))
                .or_insert_with(|| s.engine.head(app).ok());
            let Some(head) = head.clone() else {
                continue;
            };
            if seen.get(&app.name) == Some(&head) {
                continue;
            }
            seen.insert(app.name.clone(), head.clone());
            if is_news(s, &app.name, &head) {
                lock(&s.queue).push(&app.name, Reason::Commit, Some(&head), Instant::now());
                s.wake.notify_all();
            }
        }
        let q = lock(&s.queue);
        s.metrics.depth(Lane::Developer, q.depth(Lane::Developer));
        s.metrics.depth(Lane::Platform, q.depth(Lane::Platform));
        // Woken early by stop; otherwise a tick a second.
        let _ = s.wake.wait_timeout(q, Duration::from_secs(1));
    }
}

/// Applies what the contracts say now: new apps are registered (the watcher builds them), changed ones
/// (another repository, branch or image) rebuilt with reason CONFIG, removed ones stopped and no longer served.
/// An app whose contract file is invalid now is left as it was.
fn reconcile(s: &Shared, now: &Contracts, warned: &mut HashSet<String>) {
    warned.retain(|f| now.invalid.contains(f));
    let before = lock(&s.apps).clone();
    let mut after = Vec::new();
    for app in &before {
        if let Some(new) = now.apps.iter().find(|n| n.name == app.name) {
            after.push(new.clone());
        } else if now.invalid.contains(&app.contract) {
            if warned.insert(app.contract.clone()) {
                eprintln!(
                    "warning: {} is invalid now (`goldenpath contract validate` says why): {} is left as it was until it is fixed",
                    app.contract, app.name
                );
            }
            after.push(app.clone());
        } else {
            eprintln!(
                "===> REMOVED {} (its contract {} is gone)",
                app.name, app.contract
            );
            lock(&s.queue).remove(&app.name);
            s.engine.undeploy(app);
            lock(&s.urls).remove(&app.name);
            let _ = lock(&s.state).set_status(&app.name, "removed");
        }
    }
    for new in &now.apps {
        let old = before.iter().find(|a| a.name == new.name);
        if old == Some(new) {
            continue;
        }
        let state = lock(&s.state);
        let _ = state.upsert_app(&App {
            name: new.name.clone(),
            contract: new.contract.clone(),
            git_url: Some(new.git_url.clone()),
            branch: Some(new.branch.clone()),
            revision: None,
            image: Some(new.image.clone()),
            digest: None,
            run_image: None,
            status: "new".into(),
            built_with: None,
        });
        drop(state);
        if old.is_some() {
            eprintln!("===> CHANGED {} ({}): rebuilt", new.name, new.contract);
            lock(&s.queue).push(&new.name, Reason::Config, None, Instant::now());
        } else {
            eprintln!("===> ADDED {} ({})", new.name, new.contract);
            // An app removed earlier and added again has a record but nothing running: rebuild it.
            let known = lock(&s.state)
                .apps()
                .unwrap_or_default()
                .iter()
                .any(|a| a.name == new.name && a.digest.is_some());
            if known {
                lock(&s.queue).push(&new.name, Reason::Config, None, Instant::now());
            }
            after.push(new.clone());
        }
    }
    s.metrics
        .apps
        .set(i64::try_from(after.len()).unwrap_or(i64::MAX));
    *lock(&s.apps) = after;
    s.wake.notify_all();
}

/// Runs an app's last image again after a restart; a failure is on the status page and the next change rebuilds.
fn redeploy(s: &Shared, app: &AppSource, digest: &str) {
    match s.engine.redeploy(app, digest) {
        Ok(url) => {
            let _ = lock(&s.state).deployed(&app.name, digest, &url);
            lock(&s.urls).insert(app.name.clone(), url);
        }
        Err(e) => {
            eprintln!("warning: {} could not be started again: {e}", app.name);
            let _ = lock(&s.state).set_status(&app.name, "failed");
        }
    }
    lock(&s.busy).remove(&app.name);
    s.wake.notify_all();
}

/// Whether `revision` of `app` still needs a build: not the one built last, not the one queued, not the one
/// being built (after a restart, the first check sees the revision a resumed build is already building).
fn is_news(s: &Shared, app: &str, revision: &str) -> bool {
    let known = lock(&s.state)
        .apps()
        .ok()
        .and_then(|apps| apps.into_iter().find(|a| a.name == app))
        .and_then(|a| a.revision);
    let pending = lock(&s.queue).get(app).and_then(|p| p.revision.clone());
    let building = lock(&s.in_flight).get(app).cloned();
    [known, pending, building]
        .iter()
        .all(|r| r.as_deref() != Some(revision))
}

/// Reads the run image and the builder in one go and queues what changed in both at once: a new run image and
/// a new lifecycle are one build, not a rebase a worker may already have taken and then a build. The first check
/// after a start compares with what each app was built on and with: a change published while the service was
/// down is a change too.
fn check_platform(s: &Shared, builder_warned: &mut bool) {
    let run_image = s.engine.run_image();
    let builder = s.engine.builder();
    let mut work: Vec<(String, Reason)> = Vec::new();
    if let Ok(digest) = &run_image {
        let previous = lock(&s.run_image).replace(digest.clone());
        if previous.as_deref() != Some(digest.as_str()) {
            work.extend(stack_work(s, digest));
        }
    }
    match &builder {
        Ok(Some(b)) => {
            *builder_warned = false;
            let previous = lock(&s.builder).replace(b.clone());
            if previous.as_ref().map(|p| &p.digest) != Some(&b.digest) {
                work.extend(builder_work(s, b));
            }
        }
        Ok(None) => {}
        Err(e) => {
            if !*builder_warned {
                *builder_warned = true;
                eprintln!(
                    "warning: the builder cannot be read ({e}): its changes are noticed once it can"
                );
            }
        }
    }
    if !work.is_empty() {
        let mut q = lock(&s.queue);
        for (app, reason) in &work {
            q.push(app, *reason, None, Instant::now());
        }
        drop(q);
        s.wake.notify_all();
    }
    if let Ok(digest) = &run_image {
        update_behind(s, digest);
    }
    s.metrics
        .builder_ready
        .set(i64::from(run_image.is_ok() && builder.is_ok()));
}

/// A new builder: every app whose last build used a buildpack or lifecycle it changed gets BUILDPACK or
/// LIFECYCLE. Apps built before their builder was recorded are left (nothing to compare).
fn builder_work(s: &Shared, now: &BuilderNow) -> Vec<(String, Reason)> {
    let apps = lock(&s.state).apps().unwrap_or_default();
    let mut out = Vec::new();
    for a in apps {
        let Some(was) = a.built_with.as_ref().filter(|_| a.digest.is_some()) else {
            continue;
        };
        for r in crate::builder::reasons(was, now) {
            out.push((a.name.clone(), r));
        }
    }
    out
}

/// A new run image: every app that has an image and is not on it gets STACK.
fn stack_work(s: &Shared, digest: &str) -> Vec<(String, Reason)> {
    lock(&s.state)
        .apps()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.digest.is_some() && a.run_image.as_deref() != Some(digest))
        .map(|a| (a.name, Reason::Stack))
        .collect()
}

fn update_behind(s: &Shared, digest: &str) {
    let behind = lock(&s.state)
        .apps()
        .unwrap_or_default()
        .iter()
        .filter(|a| a.digest.is_some() && a.run_image.as_deref() != Some(digest))
        .count();
    s.metrics
        .apps_behind_run_image
        .set(i64::try_from(behind).unwrap_or(i64::MAX));
}

/// Takes jobs as they become due and runs them.
fn work_loop(s: &Shared) {
    loop {
        let job = {
            let mut q = lock(&s.queue);
            loop {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let busy = lock(&s.busy).clone();
                if let Some(job) = q.next(Instant::now(), |app| busy.contains(app)) {
                    lock(&s.busy).insert(job.app.clone());
                    break job;
                }
                q = s
                    .wake
                    .wait_timeout(q, Duration::from_millis(500))
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
        };
        run_job(s, job);
        s.engine.after_work();
    }
}

/// The revision a job builds: the one it names, else the last built; a changed contract (CONFIG) builds the
/// head of its branch (`None`), which may be another branch now.
fn revision_for(job: &Job, last: Option<&App>) -> Option<String> {
    job.revision.clone().or_else(|| {
        if job.reasons.contains(&Reason::Config) {
            None
        } else {
            last.and_then(|a| a.revision.clone())
        }
    })
}

/// Records a build or rebase that is deployed now.
fn deployed(s: &Shared, app: &str, id: i64, built: &Built, url: String) {
    let mut state = lock(&s.state);
    let _ = state.finish_build(
        id,
        Ok(Succeeded {
            digest: &built.digest,
            run_image: built.run_image.as_deref(),
            built_with: built.built_with.as_ref(),
        }),
    );
    let _ = state.deployed(app, &built.digest, &url);
    drop(state);
    requeue_if_builder_moved(s, app, built.built_with.as_ref());
    lock(&s.urls).insert(app.to_owned(), url);
    if let Some(current) = lock(&s.run_image).clone() {
        update_behind(s, &current);
    }
}

/// For BUILDPACK or LIFECYCLE work: what changed in the builder since the app's last build, for its log.
fn builder_change(s: &Shared, job: &Job, last: Option<&App>) -> Option<String> {
    if !job
        .reasons
        .iter()
        .any(|r| matches!(r, Reason::Buildpack | Reason::Lifecycle))
    {
        return None;
    }
    let was = last?.built_with.as_ref()?;
    let builder = lock(&s.builder);
    let now = builder.as_ref()?;
    Some(format!(
        "the builder changed ({} → {}): {}",
        was.builder,
        now.digest,
        crate::builder::changes(was, now)
    ))
}

/// A builder that changed while the app built (the build used the one it resolved at its start): queued again.
fn requeue_if_builder_moved(s: &Shared, app: &str, built_with: Option<&BuiltWith>) {
    let Some(was) = built_with else { return };
    let reasons = lock(&s.builder)
        .as_ref()
        .map(|now| crate::builder::reasons(was, now))
        .unwrap_or_default();
    for r in reasons {
        lock(&s.queue).push(app, r, None, Instant::now());
    }
}

fn run_job(s: &Shared, job: Job) {
    let Some(app) = lock(&s.apps).iter().find(|a| a.name == job.app).cloned() else {
        lock(&s.busy).remove(&job.app);
        return;
    };
    let lane = job
        .reasons
        .iter()
        .map(|r| r.lane())
        .min()
        .unwrap_or(Lane::Platform);
    s.metrics.waited(lane, job.queued_at.elapsed());
    let last = lock(&s.state)
        .apps()
        .ok()
        .and_then(|apps| apps.into_iter().find(|a| a.name == app.name));
    let last_digest = last.as_ref().and_then(|a| a.digest.clone());
    let mut work = work_for(&job.reasons);
    if last_digest.is_none() {
        work = Work::Build;
    }
    let revision = revision_for(&job, last.as_ref());
    let resume = lock(&s.resume).remove(&app.name);
    if let (Work::Build, Some(rev)) = (work, &revision) {
        lock(&s.in_flight).insert(app.name.clone(), rev.clone());
    }
    let started_build = lock(&s.state).start_build(
        &app.name,
        work,
        &job.reasons,
        revision.as_deref(),
        job.attempt,
        resume,
    );
    let Ok(id) = started_build else {
        lock(&s.busy).remove(&app.name);
        return;
    };
    let _ = lock(&s.state).set_status(&app.name, "building");
    let started = Instant::now();
    let log = |line: &str| {
        let _ = lock(&s.state).append_log(id, &format!("{line}\n"));
    };
    if let Some(note) = builder_change(s, &job, last.as_ref()) {
        log(&note);
    }
    let result = match work {
        Work::Rebase => s
            .engine
            .rebase(&app, last_digest.as_deref().unwrap_or(""), &log),
        Work::Build => match &revision {
            Some(rev) => s.engine.build(&app, rev, &log),
            None => s
                .engine
                .head(&app)
                .and_then(|rev| s.engine.build(&app, &rev, &log)),
        },
    };
    let took = started.elapsed();
    let result = result.and_then(|built| {
        if !lock(&s.apps).iter().any(|a| a.name == app.name) {
            return Err("its contract was removed while it built: not deployed".to_owned());
        }
        log(&format!("deploying {}", built.reference));
        s.engine.deploy(&app, &built, &log).map(|url| (built, url))
    });
    let ok = result.is_ok();
    s.metrics.finished(work, &job.reasons, ok, took);
    match result {
        Ok((built, url)) => deployed(s, &app.name, id, &built, url),
        Err(e) => {
            log(&format!("error: {e}"));
            let mut state = lock(&s.state);
            let _ = state.finish_build(id, Err(&e));
            let _ = state.set_status(&app.name, "failed");
            drop(state);
            let reasons: BTreeSet<Reason> = job.reasons.clone();
            let after = lock(&s.queue).failed(
                Job {
                    reasons,
                    revision,
                    ..job
                },
                Instant::now(),
            );
            if after == AfterFailure::GaveUp {
                log("giving up until something changes (a commit, a new run image, a trigger)");
            }
        }
    }
    lock(&s.in_flight).remove(&app.name);
    lock(&s.busy).remove(&app.name);
    s.wake.notify_all();
}
