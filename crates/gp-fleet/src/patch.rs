//! Planning and patching a fleet. [`Fleet::open`] resolves the run image (and builder) once; [`Fleet::plan`]
//! reads every image (manifest and config, in parallel, through the rate limit) and decides; [`Fleet::patch`]
//! carries the plan out wave by wave (environments in order), with bounded concurrency, whole-image retries with
//! backoff and jitter on top of the registry client's own, and every finished image journaled before it counts.
//! A rebase pushes a new config and manifest (the new base layers mounted from the run image's repository); a
//! rebuild checks the recorded source revision out and builds it with the builder. Either way the tag moves only
//! when the manifest is pushed, after everything it names is in the registry.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_lifecycle::progress::Silent;
use gp_lifecycle::session::{self, BuildRequest, FailureKind, Output, Sandbox};
use gp_oci::layout::{Desc, Layout};
use gp_oci::reference::{ImageRef, RegistryRef};
use gp_oci::store::Store;

use crate::campaign::Campaign;
use crate::facts::BaseFacts;
use crate::inspect::{Clients, InspectError, Inspected, inspect, inspect_base};
use crate::inventory::Target;
use crate::limit::{Counted, Limiter, Limits};
use crate::plan::{Action, Decision, Reason, decide};
use crate::report::{NO_ENV, Outcome, Report, Status};
use crate::source::{app_dir, check_out};

/// The environments' default order: what developers see first is patched first, production last.
pub const DEFAULT_ORDER: &[&str] = &["dev", "test", "staging", "prod"];
/// Images patched at once. Each is a handful of small requests, so eight keep a registry busy without crowding
/// a 2-core machine; the rate limit, not this, is what protects the registry.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Whole-image attempts after the first, for failures worth retrying (429, 5xx, dropped connections, timeouts).
pub const DEFAULT_RETRIES: u32 = 3;
/// The first wait before retrying an image; doubled each time, with jitter, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a campaign runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The new run image (a registry image).
    pub run_image: String,
    /// The builder rebuilds use (a registry image or `oci:PATH:TAG`); `None`: images that need a rebuild fail with the fix.
    pub builder: Option<String>,
    pub insecure: Vec<String>,
    pub limits: Limits,
    pub concurrency: usize,
    pub retries: u32,
    /// Waves: environments in this order; others after them (sorted), images without one last.
    pub order: Vec<String>,
    /// More failures than this in a wave stop the campaign before the next wave.
    pub max_failures: usize,
    /// A pause between waves (time to watch dev before test is patched).
    pub wave_pause: Duration,
    pub dry_run: bool,
    /// For rebuilds: the CA certificates buildpacks trust, the sandbox, and the environment of unsandboxed ones.
    pub ca_certs: Option<PathBuf>,
    pub sandbox: Sandbox,
    pub process_env: std::collections::BTreeMap<String, String>,
}

impl Settings {
    /// Defaults for `run_image`: no builder, the default limits, order, concurrency and retries, stop on the first
    /// failure.
    #[must_use]
    pub fn new(run_image: impl Into<String>) -> Self {
        Self {
            run_image: run_image.into(),
            builder: None,
            insecure: Vec::new(),
            limits: Limits::default(),
            concurrency: DEFAULT_CONCURRENCY,
            retries: DEFAULT_RETRIES,
            order: DEFAULT_ORDER.iter().map(|s| (*s).to_owned()).collect(),
            max_failures: 0,
            wave_pause: Duration::ZERO,
            dry_run: false,
            ca_certs: None,
            sandbox: Sandbox::Auto,
            process_env: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("run image `{reference}`: {message}")]
    RunImage { reference: String, message: String },
    #[error("builder `{reference}`: {message}")]
    Builder { reference: String, message: String },
    #[error(
        "the registry `{registry}` cannot be reached ({message}); check the address and that it is running"
    )]
    Unreachable { registry: String, message: String },
    #[error("cannot use the local image store: {0}")]
    Store(String),
}

/// One image's plan.
#[derive(Debug, Clone)]
pub struct PlanItem {
    pub target: Target,
    pub inspected: Option<Inspected>,
    pub decision: Decision,
    /// Registry requests reading it took.
    pub requests: u64,
    /// The digest an earlier, saved plan found, when the tag names another image now.
    pub moved_from: Option<String>,
}

/// A fleet's plan: one item per image, in target order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    pub seconds: f64,
}

impl Plan {
    /// Compares with a plan saved earlier (image -> digest then): images whose tag moved since are marked, so the
    /// report says they were planned again.
    pub fn since(&mut self, saved: &std::collections::BTreeMap<String, String>) {
        for item in &mut self.items {
            let now = item.inspected.as_ref().map(|f| &f.facts.digest);
            if let Some(then) = saved.get(&item.target.image)
                && now != Some(then)
            {
                item.moved_from = Some(then.clone());
            }
        }
    }

    /// Images that could not be read because their registry failed for a while (429, 5xx, timeouts).
    #[must_use]
    pub fn unreadable(&self) -> usize {
        self.items
            .iter()
            .filter(|i| {
                matches!(
                    i.decision.reason,
                    Reason::Unreadable {
                        transient: true,
                        ..
                    }
                )
            })
            .count()
    }

    /// Images that need work (rebase or rebuild).
    #[must_use]
    pub fn work(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.decision.action.is_work())
            .count()
    }
}

/// A fleet ready to plan and patch against one run image (and builder).
#[derive(Debug)]
pub struct Fleet {
    settings: Settings,
    store: Store,
    layout: Layout,
    limiter: Arc<Limiter>,
    run_ref: RegistryRef,
    run_desc: Desc,
    run: BaseFacts,
    builder: Option<BaseFacts>,
    started: Instant,
    /// Workers' registry clients, kept between phases (connections and the registry's auth answer are reused).
    pool: Mutex<Vec<(Clients, Arc<Counted>)>>,
    /// A dry run reads into a scratch layout of its own (the image store is not written either).
    _scratch: Option<tempfile::TempDir>,
}

fn registry_ref(reference: &str) -> Option<RegistryRef> {
    match reference.parse::<ImageRef>() {
        Ok(ImageRef::Registry(r)) => Some(r),
        _ => None,
    }
}

impl Fleet {
    /// Resolves the run image and builder (manifest and config; failing fast when their registry is unreachable).
    pub fn open(store: &Store, settings: Settings) -> Result<Self, FleetError> {
        let store_err = |e: &dyn std::fmt::Display| FleetError::Store(e.to_string());
        let (layout, scratch) = if settings.dry_run {
            let dir = tempfile::tempdir().map_err(|e| store_err(&e))?;
            (
                Layout::create(dir.path()).map_err(|e| store_err(&e))?,
                Some(dir),
            )
        } else {
            (store.images().map_err(|e| store_err(&e))?, None)
        };
        let limiter = Arc::new(Limiter::new(settings.limits.clone()));
        let mut clients = Clients::new(&settings.insecure, limiter.clone());
        let run_err = |e: InspectError| {
            if e.unreachable {
                FleetError::Unreachable {
                    registry: registry_ref(&settings.run_image)
                        .map(|r| r.registry)
                        .unwrap_or_default(),
                    message: e.message,
                }
            } else {
                FleetError::RunImage {
                    reference: settings.run_image.clone(),
                    message: e.message,
                }
            }
        };
        // Its layers too (once; the store keeps them): they are mounted where the registry allows, and uploaded
        // where it does not (another registry, a token without pull rights on the run image's repository).
        let (run_desc, run) = inspect_base(
            &mut clients,
            &layout,
            &settings.run_image,
            !settings.dry_run,
        )
        .map_err(run_err)?;
        let run_ref = registry_ref(&settings.run_image).ok_or_else(|| FleetError::RunImage {
            reference: settings.run_image.clone(),
            message: "not a registry image".into(),
        })?;
        let builder = match &settings.builder {
            None => None,
            Some(b) => {
                let (_, facts) = inspect_base(&mut clients, &layout, b, false).map_err(|e| {
                    FleetError::Builder {
                        reference: b.clone(),
                        message: e.message,
                    }
                })?;
                if facts.builder.is_none() {
                    return Err(FleetError::Builder {
                        reference: b.clone(),
                        message: "has no `io.buildpacks.builder.metadata` label; name a CNB builder image".into(),
                    });
                }
                Some(facts)
            }
        };
        Ok(Self {
            settings,
            store: store.clone(),
            layout,
            limiter,
            run_ref,
            run_desc,
            run,
            builder,
            started: Instant::now(),
            pool: Mutex::new(Vec::new()),
            _scratch: scratch,
        })
    }

    #[must_use]
    pub fn run_image(&self) -> &BaseFacts {
        &self.run
    }

    #[must_use]
    pub fn builder(&self) -> Option<&BaseFacts> {
        self.builder.as_ref()
    }

    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Registry requests so far, by registry.
    #[must_use]
    pub fn requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.limiter.requests()
    }

    /// Every tag of every repository under `prefix` (`host[:port][/path]`), listed through the campaign's rate
    /// limit; tags equal to an environment of the order put images in that environment.
    pub fn list(&self, prefix: &str) -> Result<Vec<Target>, crate::inventory::InventoryError> {
        let (host, path) = prefix.split_once('/').unwrap_or((prefix, ""));
        let probe = RegistryRef {
            registry: host.to_owned(),
            repository: "library".into(),
            tag: None,
            digest: None,
        };
        let registry = gp_oci::registry::Registry::new(&probe, &self.settings.insecure)
            .map_err(|e| crate::inventory::InventoryError::Catalog {
                prefix: prefix.to_owned(),
                source: Box::new(e),
            })?
            .with_gate(self.limiter.clone());
        crate::inventory::from_registry(&registry, host, path, &self.settings.order)
    }

    /// Reads every target and decides what to do with it.
    pub fn plan(&self, targets: &[Target]) -> Result<Plan, FleetError> {
        let started = Instant::now();
        let results = self.in_parallel(targets.iter().collect(), |clients, gate, target| {
            let before = gate.count();
            let Some(r) = target.reference() else {
                return Ok(item(
                    target,
                    None,
                    Decision {
                        action: Action::Skip,
                        reason: Reason::Unreadable {
                            error: "not a registry image reference".into(),
                            transient: false,
                        },
                    },
                    0,
                ));
            };
            match inspect(clients, &self.layout, &r) {
                Ok(found) => {
                    let decision = decide(&found.facts, &self.run, self.builder.as_ref());
                    Ok(item(target, Some(found), decision, gate.count() - before))
                }
                Err(e) if e.unreachable => Err(FleetError::Unreachable {
                    registry: r.registry.clone(),
                    message: e.message,
                }),
                Err(e) => Ok(item(
                    target,
                    None,
                    Decision {
                        action: Action::Skip,
                        reason: Reason::Unreadable {
                            error: e.message,
                            transient: e.retryable,
                        },
                    },
                    gate.count() - before,
                )),
            }
        });
        let items = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            items,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Runs `job` over `inputs` on [`Settings::concurrency`] threads, each with its own registry clients and its
    /// own request count; results come back in input order.
    fn in_parallel<I: Send, T: Send>(
        &self,
        inputs: Vec<I>,
        job: impl Fn(&mut Clients, &Arc<Counted>, I) -> T + Sync,
    ) -> Vec<T> {
        let n = inputs.len();
        let queue: Mutex<VecDeque<(usize, I)>> =
            Mutex::new(inputs.into_iter().enumerate().collect());
        let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
        let workers = self.settings.concurrency.clamp(1, n.max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
                    let (mut clients, gate) = pooled.unwrap_or_else(|| {
                        let gate = Arc::new(Counted::new(self.limiter.clone()));
                        (Clients::new(&self.settings.insecure, gate.clone()), gate)
                    });
                    loop {
                        let next = queue.lock().map(|mut q| q.pop_front()).ok().flatten();
                        let Some((i, input)) = next else { break };
                        let out = job(&mut clients, &gate, input);
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(out);
                        }
                    }
                    if let Ok(mut p) = self.pool.lock() {
                        p.push((clients, gate));
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }

    /// The waves of `plan`, in order.
    #[must_use]
    pub fn waves(&self, plan: &Plan) -> Vec<String> {
        let present: BTreeSet<&str> = plan
            .items
            .iter()
            .map(|i| i.target.environment.as_deref().unwrap_or(NO_ENV))
            .collect();
        let mut waves: Vec<String> = self
            .settings
            .order
            .iter()
            .filter(|e| present.contains(e.as_str()))
            .cloned()
            .collect();
        waves.extend(
            present
                .iter()
                .filter(|e| **e != NO_ENV && !self.settings.order.iter().any(|o| o == *e))
                .map(|e| (*e).to_owned()),
        );
        if present.contains(NO_ENV) {
            waves.push(NO_ENV.to_owned());
        }
        waves
    }

    /// Carries `plan` out (nothing is changed with [`Settings::dry_run`]); `campaign` journals each finished image
    /// and supplies what an earlier run finished; `progress` hears each outcome as it is settled.
    pub fn patch(
        &self,
        plan: &Plan,
        campaign: Option<&Campaign>,
        progress: &(dyn Fn(&Outcome) + Sync),
    ) -> Report {
        let waves = self.waves(plan);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; plan.items.len()];
        let mut stopped = None;
        for (w, wave) in waves.iter().enumerate() {
            let in_wave: Vec<usize> = (0..plan.items.len())
                .filter(|i| {
                    plan.items[*i]
                        .target
                        .environment
                        .as_deref()
                        .unwrap_or(NO_ENV)
                        == wave
                })
                .collect();
            let mut work = Vec::new();
            for i in in_wave {
                let item = &plan.items[i];
                match settled(item, campaign) {
                    Some(o) => {
                        if o.earlier
                            && o.status == Status::Patched
                            && campaign.is_some_and(|c| c.finished(&o.image).is_none())
                            && let Some(c) = campaign
                        {
                            let _ = c.record(&o);
                        }
                        progress(&o);
                        outcomes[i] = Some(o);
                    }
                    None if stopped.is_some() || self.settings.dry_run => {
                        outcomes[i] = Some(Outcome {
                            status: Status::NotRun,
                            ..base_outcome(item)
                        });
                    }
                    None => work.push(i),
                }
            }
            if stopped.is_some() {
                continue;
            }
            let results = self.in_parallel(work.clone(), |clients, gate, i| {
                let o = self.execute(clients, gate, &plan.items[i], campaign);
                if let Some(c) = campaign
                    && let Err(e) = c.record(&o)
                {
                    let mut o = o;
                    o.status = Status::Failed;
                    o.error = Some(format!("the campaign journal cannot be written: {e}"));
                    progress(&o);
                    return o;
                }
                progress(&o);
                o
            });
            let failures = results
                .iter()
                .filter(|o| o.status == Status::Failed)
                .count();
            for (i, o) in work.into_iter().zip(results) {
                outcomes[i] = Some(o);
            }
            if failures > self.settings.max_failures && !self.settings.dry_run {
                stopped = Some(format!(
                    "{failures} image(s) failed in wave `{wave}` (more than `--max-failures {}`); later waves were \
                     not patched. Fix the failures and run the same command again: finished images are not \
                     patched twice",
                    self.settings.max_failures
                ));
            } else if w + 1 < waves.len()
                && !self.settings.wave_pause.is_zero()
                && !self.settings.dry_run
            {
                std::thread::sleep(self.settings.wave_pause);
            }
        }
        Report {
            campaign: campaign.map(|c| c.id().to_owned()).unwrap_or_default(),
            run_image: self.settings.run_image.clone(),
            run_image_digest: self.run.digest.clone(),
            builder: self.settings.builder.clone(),
            dry_run: self.settings.dry_run,
            waves,
            stopped,
            seconds: self.started.elapsed().as_secs_f64(),
            requests: self.limiter.requests(),
            images: outcomes.into_iter().flatten().collect(),
        }
    }

    /// Rebases or rebuilds one image, retrying whole attempts that failed in a way worth retrying.
    fn execute(
        &self,
        clients: &mut Clients,
        gate: &Arc<Counted>,
        planned: &PlanItem,
        campaign: Option<&Campaign>,
    ) -> Outcome {
        let started = Instant::now();
        let before = gate.count();
        let mut item = planned.clone();
        // The manifest a rebase attempt pushed (or tried to): an answer lost on the way still counts as patched
        // when the tag names it afterwards.
        let mut pushed: Option<String> = None;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let result = self.attempt(clients, gate, &mut item, campaign, &mut pushed);
            match result {
                Err(e) if e.retryable && attempt <= self.settings.retries => {
                    std::thread::sleep(backoff(attempt));
                }
                other => break other,
            }
        };
        let mut outcome = base_outcome(&item);
        outcome.attempts = attempt;
        outcome.seconds = started.elapsed().as_secs_f64();
        outcome.requests = planned.requests + gate.count() - before;
        match result {
            Ok(Some(digest)) => {
                outcome.status = Status::Patched;
                outcome.new_digest = Some(digest);
                outcome.new_run_image = Some(self.run_reference());
            }
            Ok(None) => {
                outcome.status = if item.decision.action == Action::UpToDate {
                    Status::UpToDate
                } else {
                    Status::Skipped
                };
            }
            Err(e) => {
                outcome.status = Status::Failed;
                outcome.error = Some(e.message);
            }
        }
        outcome
    }

    /// One attempt: check the tag, journal the start, rebase or rebuild. `Some(digest)` when patched, `None` when
    /// there was nothing to do after all.
    fn attempt(
        &self,
        clients: &mut Clients,
        gate: &Arc<Counted>,
        item: &mut PlanItem,
        campaign: Option<&Campaign>,
        pushed: &mut Option<String>,
    ) -> Result<Option<String>, JobError> {
        match self.recheck(clients, item, pushed.as_deref())? {
            Tag::Landed(digest) => return Ok(Some(digest)),
            Tag::Moved if !item.decision.action.is_work() => return Ok(None),
            Tag::Moved | Tag::AsPlanned => {}
        }
        if let (Some(c), Some(found)) = (campaign, &item.inspected) {
            // Marks the image as being patched from this digest: a push that lands just before a crash is
            // recognised on the rerun. Without that record, nothing is pushed.
            c.record(&Outcome {
                status: Status::NotRun,
                old_digest: Some(found.facts.digest.clone()),
                ..base_outcome(item)
            })
            .map_err(|e| JobError::fatal(format!("the campaign journal cannot be written: {e}")))?;
        }
        match item.decision.action {
            Action::Rebase => self.rebase(clients, item, pushed).map(Some),
            Action::Rebuild => self.rebuild(gate, item).map(Some),
            Action::UpToDate | Action::Skip => Ok(None),
        }
    }

    /// The new run image as rebased images record it: its repository and digest.
    fn run_reference(&self) -> String {
        format!(
            "{}/{}@{}",
            self.run_ref.registry, self.run_ref.repository, self.run.digest
        )
    }

    /// Just before patching: if the tag no longer names the image that was planned (a build landed meanwhile),
    /// reads it again and decides again, so that a newer image is never replaced by the planned one; if it names
    /// what an earlier attempt pushed, that attempt landed.
    fn recheck(
        &self,
        clients: &mut Clients,
        item: &mut PlanItem,
        pushed: Option<&str>,
    ) -> Result<Tag, JobError> {
        let (Some(r), Some(found)) = (item.target.reference(), &item.inspected) else {
            return Ok(Tag::AsPlanned);
        };
        let registry = clients.get(&r).map_err(|e| JobError::registry(&e))?;
        let now = registry
            .current_digest(&r)
            .map_err(|e| JobError::registry(&e))?
            .to_string();
        if now == found.facts.digest {
            return Ok(Tag::AsPlanned);
        }
        if pushed == Some(now.as_str()) {
            return Ok(Tag::Landed(now));
        }
        let fresh = inspect(clients, &self.layout, &r).map_err(|e| JobError {
            message: e.message,
            retryable: e.retryable || e.unreachable,
        })?;
        item.decision = decide(&fresh.facts, &self.run, self.builder.as_ref());
        item.moved_from = Some(found.facts.digest.clone());
        item.inspected = Some(fresh);
        Ok(Tag::Moved)
    }

    fn rebase(
        &self,
        clients: &mut Clients,
        item: &PlanItem,
        pushed: &mut Option<String>,
    ) -> Result<String, JobError> {
        let (Some(app), Some(found)) = (item.target.reference(), &item.inspected) else {
            return Err(JobError::fatal("the image was not read".into()));
        };
        let new = gp_lifecycle::rebase::rebased(
            &self.layout,
            &found.desc,
            &self.layout,
            &self.run_desc,
            &self.settings.run_image,
        )
        .map_err(|e| JobError::fatal(e.to_string()))?;
        let present: HashSet<_> = found.layers.iter().map(|l| l.digest.clone()).collect();
        let same_registry = self.run_ref.registry == app.registry;
        let registry = clients.get(&app).map_err(|e| JobError::registry(&e))?;
        *pushed = Some(new.digest.to_string());
        registry
            .push_onto(
                &self.layout,
                &new,
                &app,
                same_registry.then_some(&self.run_ref),
                &present,
            )
            .map_err(|e| JobError::registry(&e))?;
        Ok(new.digest.to_string())
    }

    fn rebuild(&self, gate: &Arc<Counted>, item: &PlanItem) -> Result<String, JobError> {
        let Some(builder) = &self.settings.builder else {
            return Err(JobError::fatal(
                "a rebuild needs a builder: pass `--builder REF` (the builder image the app is built with)".into(),
            ));
        };
        let (Some(app), Some(found)) = (item.target.reference(), &item.inspected) else {
            return Err(JobError::fatal("the image was not read".into()));
        };
        let Some(source) = &found.facts.source else {
            return Err(JobError::fatal(format!(
                "no source revision is recorded in its `io.buildpacks.project.metadata`{}; rebuild it from its \
                 source once with `goldenpath build` (from a clean git checkout) so later campaigns can",
                item.target
                    .git
                    .as_ref()
                    .map(|g| format!(" (the contract names {g})"))
                    .unwrap_or_default()
            )));
        };
        let checkout = tempfile::tempdir()
            .map_err(|e| JobError::fatal(format!("cannot create a checkout: {e}")))?;
        let dir = checkout.path().join("src");
        let app_dir = app_dir(&dir, source.path.as_deref())?;
        check_out(source, &dir)?;
        let request = BuildRequest {
            run_image: Some(self.settings.run_image.clone()),
            sandbox: self.settings.sandbox,
            ca_certs: self.settings.ca_certs.clone(),
            process_env: self.settings.process_env.clone(),
            source: Some(source.to_project_source()),
            ..BuildRequest::new(
                app_dir,
                session::Builder::Image(builder.clone()),
                Output::Registry(app),
            )
        };
        let store = self.store.clone().with_gate(gate.clone());
        let built = session::build(&store, &request, Arc::new(Silent)).map_err(|e| JobError {
            retryable: e.kind() == FailureKind::Registry,
            message: e.to_string(),
        })?;
        Ok(built.digest)
    }
}

fn item(
    target: &Target,
    inspected: Option<Inspected>,
    decision: Decision,
    requests: u64,
) -> PlanItem {
    PlanItem {
        target: target.clone(),
        inspected,
        decision,
        requests,
        moved_from: None,
    }
}

/// The outcome fields the plan already knows.
fn base_outcome(item: &PlanItem) -> Outcome {
    let facts = item.inspected.as_ref().map(|f| &f.facts);
    Outcome {
        image: item.target.image.clone(),
        environment: item.target.environment.clone(),
        application: item.target.application.clone(),
        action: item.decision.action,
        reason: match &item.moved_from {
            Some(_) => format!(
                "the tag moved after planning; now: {}",
                item.decision.reason
            ),
            None => item.decision.reason.to_string(),
        },
        old_digest: facts.map(|f| f.digest.clone()),
        old_run_image: facts.and_then(|f| {
            let r = f.lifecycle.as_ref().ok()?.as_ref()?.run_image()?;
            Some(
                [&r.reference, &r.image, &r.top_layer]
                    .into_iter()
                    .find(|s| !s.is_empty())?
                    .clone(),
            )
        }),
        requests: item.requests,
        ..Outcome::default()
    }
}

/// What needs no work now: finished by an earlier run (from the journal), patched by an earlier run that crashed
/// before journaling it (its tag now names an image on the new run image), up to date, or skipped.
fn settled(item: &PlanItem, campaign: Option<&Campaign>) -> Option<Outcome> {
    let base = base_outcome(item);
    // Trusted only while the tag still names what the earlier run left there (it may have moved since).
    if let Some(done) = campaign.and_then(|c| c.finished(&item.target.image))
        && done.status == Status::Patched
        && done.new_digest == base.old_digest
    {
        return Some(Outcome {
            earlier: true,
            ..done.clone()
        });
    }
    match item.decision.action {
        Action::UpToDate => {
            let started = campaign.and_then(|c| c.started(&item.target.image));
            Some(match started.and_then(|s| s.old_digest.clone()) {
                Some(old) if Some(&old) != base.old_digest.as_ref() => Outcome {
                    status: Status::Patched,
                    old_digest: Some(old),
                    new_digest: base.old_digest.clone(),
                    old_run_image: started.and_then(|s| s.old_run_image.clone()),
                    new_run_image: base.old_run_image.clone(),
                    earlier: true,
                    ..base
                },
                _ => Outcome {
                    status: Status::UpToDate,
                    ..base
                },
            })
        }
        // A registry that failed for a while: reported as a failure (the exit code says so), tried again by a
        // rerun.
        Action::Skip
            if matches!(
                item.decision.reason,
                Reason::Unreadable {
                    transient: true,
                    ..
                }
            ) =>
        {
            Some(Outcome {
                status: Status::Failed,
                error: Some(item.decision.reason.to_string()),
                ..base
            })
        }
        Action::Skip => Some(Outcome {
            status: Status::Skipped,
            ..base
        }),
        Action::Rebase | Action::Rebuild => None,
    }
}

/// What the tag names just before a patch.
enum Tag {
    /// The image that was planned.
    AsPlanned,
    /// Another image (read and decided again).
    Moved,
    /// What an earlier attempt pushed: it landed.
    Landed(String),
}

/// One failed attempt at an image.
#[derive(Debug)]
pub(crate) struct JobError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl JobError {
    pub(crate) fn fatal(message: String) -> Self {
        Self {
            message,
            retryable: false,
        }
    }

    fn registry(e: &gp_oci::registry::RegistryError) -> Self {
        Self {
            message: e.to_string(),
            retryable: e.kind().is_some_and(gp_oci::registry::ErrorKind::retryable),
        }
    }
}

/// The wait before whole-image attempt `attempt + 1`: doubling from [`FIRST_BACKOFF`], between half and all of it
/// (jitter, so images that failed together do not retry together), capped at [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    full.mul_f64(0.5 + fastrand::f64() * 0.5)
}
