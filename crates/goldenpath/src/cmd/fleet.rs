//! `goldenpath fleet plan` and `goldenpath fleet patch`: which images a new run image (or builder) touches, and
//! patching them all, through [`gp_fleet`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use gp_fleet::inventory::{self, Target};
use gp_fleet::limit::{Limits, Rate};
use gp_fleet::patch::{DEFAULT_CONCURRENCY, DEFAULT_ORDER, DEFAULT_RETRIES, Fleet, Plan, Settings};
use gp_fleet::report::{Outcome, Report, Status};
use gp_fleet::{Action, Campaign};
use gp_oci::reference::ImageRef;

use super::exit;

/// Exit code of `fleet plan` when some image needs a rebase or rebuild.
pub const PENDING: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Decide, per image, whether a new run image (or builder) means a rebase, a rebuild, nothing, or a skip.
    /// Exits 0 when nothing needs doing, 3 when something does.
    Plan(PlanArgs),
    /// Plan, then patch: rebase or rebuild every image that needs it, in waves by environment, rate-limited,
    /// retried and resumable (run the same command again after a crash).
    Patch(PatchArgs),
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// The new run image (a registry image).
    #[arg(long)]
    pub run_image: String,
    /// The builder rebuilds use (a registry image or `oci:PATH:TAG`); with it, images whose buildpacks or
    /// lifecycle changed in the builder are rebuilt too.
    #[arg(long)]
    pub builder: Option<String>,
    /// A contracts tree or contract files: each contract's image (`<registry prefix>/<application>:<environment>`).
    #[arg(long = "contracts", value_name = "PATH")]
    pub contracts: Vec<PathBuf>,
    /// Platform config for the contracts (default: the nearest `goldenpath.toml` above each file).
    #[arg(long, env = "GOLDENPATH_CONFIG")]
    pub config: Option<PathBuf>,
    /// An image of the fleet (`registry/repository:tag`); repeatable.
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Every tag of every repository under this registry prefix (`host[:port][/path]`, from the catalog API).
    #[arg(long = "registry-prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,
    /// The environments' order (waves); a tag equal to one of them puts a bare image in that environment.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_ORDER.iter().map(|s| (*s).to_owned()))]
    pub order: Vec<String>,
    /// Images read or patched at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Requests per second to each registry, and a burst: `RPS` or `RPS/BURST` (the default suits ECR).
    #[arg(long, env = "GOLDENPATH_FLEET_RATE", default_value = "50/50")]
    pub rate: Rate,
    /// A registry's own limit: `HOST[:PORT]=RPS[/BURST]`; repeatable.
    #[arg(long = "registry-rate", value_name = "HOST=RPS[/BURST]")]
    pub registry_rates: Vec<String>,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The images of a plan saved with `fleet plan --json` (refused if the run image or builder changed since).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Stop before the next wave when more images than this failed in a wave.
    #[arg(long, default_value_t = 0)]
    pub max_failures: usize,
    /// Whole-image retries after the first attempt (on 429, 5xx, dropped connections, timeouts).
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,
    /// Seconds to wait between waves (time to watch one environment before the next is patched).
    #[arg(long, default_value_t = 0)]
    pub wave_pause: u64,
    /// The GitOps tree `contract render` writes: patched digests are pinned there (kustomization `images:`).
    #[arg(long)]
    pub gitops: Option<PathBuf>,
    /// Where campaigns keep their journal and reports (default: `$XDG_STATE_HOME/goldenpath/fleet`).
    #[arg(long, env = "GOLDENPATH_FLEET_STATE")]
    pub state: Option<PathBuf>,
    /// Plan and report what would be done; change nothing anywhere.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(command: FleetCommand) -> ExitCode {
    match command {
        FleetCommand::Plan(args) => plan(&args),
        FleetCommand::Patch(args) => patch(&args),
    }
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::USAGE)
}

/// The fleet's images: contracts, references and registry prefixes, merged.
fn targets(args: &FleetArgs) -> Result<(Vec<Target>, Option<gp_contract::Report>), ExitCode> {
    if args.contracts.is_empty()
        && args.images.is_empty()
        && args.prefixes.is_empty()
        && args.plan.is_none()
    {
        return Err(usage(
            "name the fleet: `--contracts PATH` (a contracts tree), `--image REF`, `--registry-prefix HOST/PATH` \
             or `--plan FILE`",
        ));
    }
    let mut lists = Vec::new();
    if let Some(path) = &args.plan {
        lists.push(saved_plan(path, args)?.targets);
    }
    let mut report = None;
    if !args.contracts.is_empty() {
        let r = super::contract::check_inputs(args.contracts.clone(), args.config.clone())?;
        let invalid = r.files.iter().filter(|f| f.has_errors()).count();
        if invalid > 0 {
            eprintln!(
                "warning: {invalid} contract file(s) have errors and are left out (`goldenpath contract validate` says why)"
            );
        }
        lists.push(inventory::from_contracts(&r));
        report = Some(r);
    }
    lists.push(inventory::from_references(&args.images, &args.order).map_err(usage)?);
    // Registry prefixes are listed once the fleet's rate limit exists (see `open`).
    Ok((inventory::merge(lists), report))
}

/// A plan `fleet plan --json` wrote: its images, and the run image and builder digests it was made against.
fn saved_plan(path: &std::path::Path, args: &FleetArgs) -> Result<SavedPlan, ExitCode> {
    #[derive(serde::Deserialize)]
    struct SavedImage {
        #[serde(flatten)]
        target: Target,
        digest: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Saved {
        run_image: String,
        run_image_digest: String,
        builder: Option<String>,
        builder_digest: Option<String>,
        images: Vec<SavedImage>,
    }
    let text = fs_err::read_to_string(path).map_err(usage)?;
    let saved: Saved = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "`{}` is not a plan `goldenpath fleet plan --json` wrote: {e}",
            path.display()
        ))
    })?;
    if saved.run_image != args.run_image || saved.builder != args.builder {
        return Err(usage(format!(
            "`{}` was planned for run image `{}`{}: pass the same `--run-image` and `--builder`, or plan again",
            path.display(),
            saved.run_image,
            saved
                .builder
                .as_ref()
                .map(|b| format!(" and builder `{b}`"))
                .unwrap_or_default()
        )));
    }
    Ok(SavedPlan {
        digests: saved
            .images
            .iter()
            .filter_map(|i| Some((i.target.image.clone(), i.digest.clone()?)))
            .collect(),
        targets: saved.images.into_iter().map(|i| i.target).collect(),
        run_digest: saved.run_image_digest,
        builder_digest: saved.builder_digest,
    })
}

/// What a saved plan holds: its images (and the digest each had), the run image's and builder's digests.
struct SavedPlan {
    targets: Vec<Target>,
    digests: std::collections::BTreeMap<String, String>,
    run_digest: String,
    builder_digest: Option<String>,
}

fn limits(args: &FleetArgs) -> Result<Limits, ExitCode> {
    let mut limits = Limits {
        default: args.rate,
        ..Limits::default()
    };
    for r in &args.registry_rates {
        let Some((host, rate)) = r.split_once('=') else {
            return Err(usage(format!(
                "`--registry-rate {r}`: write HOST[:PORT]=RPS[/BURST]"
            )));
        };
        let rate: Rate = rate
            .parse()
            .map_err(|e| usage(format!("`--registry-rate {r}`: {e}")))?;
        limits.registries.insert(host.to_owned(), rate);
    }
    Ok(limits)
}

fn settings(args: &FleetArgs) -> Result<Settings, ExitCode> {
    if !matches!(
        args.run_image.parse::<ImageRef>(),
        Ok(ImageRef::Registry(_))
    ) {
        return Err(usage(format!(
            "`--run-image {}`: a fleet's run image is a registry image (`registry/repository:tag`); push a \
             layout first with `goldenpath image copy`",
            args.run_image
        )));
    }
    if let Some(b) = &args.builder
        && let Err(e) = b.parse::<ImageRef>()
    {
        return Err(usage(format!("`--builder {b}`: {e}")));
    }
    if args.concurrency == 0 {
        return Err(usage("`--concurrency` is at least 1"));
    }
    Ok(Settings {
        builder: args.builder.clone(),
        insecure: args.insecure.clone(),
        limits: limits(args)?,
        concurrency: args.concurrency,
        order: args.order.clone(),
        ca_certs: super::build::settings::host_ca_certs(),
        process_env: std::env::vars().collect(),
        ..Settings::new(args.run_image.clone())
    })
}

fn open(
    args: &FleetArgs,
    settings: Settings,
) -> Result<(Fleet, Plan, Option<gp_contract::Report>), ExitCode> {
    let (mut targets, report) = targets(args)?;
    let store = super::store(&args.insecure);
    let fleet = Fleet::open(&store, settings).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(exit::INVALID)
    })?;
    if !args.prefixes.is_empty() {
        let mut lists = vec![targets];
        for prefix in &args.prefixes {
            lists.push(fleet.list(prefix).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(exit::INVALID)
            })?);
        }
        targets = inventory::merge(lists);
    }
    let saved = args
        .plan
        .as_ref()
        .map(|p| saved_plan(p, args))
        .transpose()?;
    if let (Some(path), Some(saved)) = (&args.plan, &saved)
        && (saved.run_digest != fleet.run_image().digest
            || saved.builder_digest.as_deref() != fleet.builder().map(|b| b.digest.as_str()))
    {
        eprintln!(
            "error: the run image or builder has changed since `{}` was planned (the tag names another \
             digest now): plan again",
            path.display()
        );
        return Err(ExitCode::from(exit::INVALID));
    }
    let mut plan = fleet.plan(&targets).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(exit::INVALID)
    })?;
    if let Some(saved) = &saved {
        plan.since(&saved.digests);
    }
    Ok((fleet, plan, report))
}

fn plan(args: &PlanArgs) -> ExitCode {
    let settings = match settings(&args.fleet) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (fleet, plan, _) = match open(&args.fleet, settings) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let text = if args.fleet.json {
        plan_json(&fleet, &plan)
    } else {
        plan_table(&fleet, &plan)
    };
    let code = super::write_stdout(&text);
    if code != ExitCode::SUCCESS {
        return code;
    }
    if plan.unreadable() > 0 {
        eprintln!(
            "error: {} image(s) could not be read (their registry kept failing); plan again later",
            plan.unreadable()
        );
        ExitCode::from(exit::INVALID)
    } else if plan.work() > 0 {
        ExitCode::from(PENDING)
    } else {
        ExitCode::SUCCESS
    }
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    let end = hex.char_indices().nth(12).map_or(hex.len(), |(i, _)| i);
    &hex[..end]
}

fn requests(fleet: &Fleet) -> u64 {
    fleet.requests().values().sum()
}

/// The plan for people: grouped by action, then environment.
fn plan_table(fleet: &Fleet, plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet plan: {} image(s) against run image {} ({}){} in {:.2} s, {} registry requests",
        plan.items.len(),
        fleet.run_image().reference,
        short(&fleet.run_image().digest),
        fleet
            .builder()
            .map(|b| format!(" and builder {}", b.reference))
            .unwrap_or_default(),
        plan.seconds,
        requests(fleet),
    );
    let width = plan
        .items
        .iter()
        .map(|i| i.target.image.len())
        .max()
        .unwrap_or(0);
    for action in [
        Action::Rebase,
        Action::Rebuild,
        Action::UpToDate,
        Action::Skip,
    ] {
        let items: Vec<_> = plan
            .items
            .iter()
            .filter(|i| i.decision.action == action)
            .collect();
        let _ = writeln!(out, "\n{action} ({})", items.len());
        for wave in fleet.waves(plan) {
            let in_wave: Vec<_> = items
                .iter()
                .filter(|i| {
                    i.target
                        .environment
                        .as_deref()
                        .unwrap_or(gp_fleet::report::NO_ENV)
                        == wave
                })
                .collect();
            if in_wave.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {wave}");
            for i in in_wave {
                let hint = if action == Action::Rebuild && fleet.builder().is_none() {
                    " (patching it needs `--builder`)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    {:width$}  {}{hint}",
                    i.target.image, i.decision.reason
                );
            }
        }
    }
    out
}

fn plan_json(fleet: &Fleet, plan: &Plan) -> String {
    let images: Vec<serde_json::Value> = plan
        .items
        .iter()
        .map(|i| {
            serde_json::json!({
                "image": i.target.image,
                "environment": i.target.environment,
                "application": i.target.application,
                "digest": i.inspected.as_ref().map(|f| &f.facts.digest),
                "action": i.decision.action,
                "reason": i.decision.reason.to_string(),
                "detail": i.decision.reason,
            })
        })
        .collect();
    let count = |a: Action| plan.items.iter().filter(|i| i.decision.action == a).count();
    let doc = serde_json::json!({
        "run_image": fleet.run_image().reference,
        "run_image_digest": fleet.run_image().digest,
        "builder": fleet.builder().map(|b| &b.reference),
        "builder_digest": fleet.builder().map(|b| &b.digest),
        "seconds": plan.seconds,
        "requests": requests(fleet),
        "counts": {
            "rebase": count(Action::Rebase),
            "rebuild": count(Action::Rebuild),
            "up-to-date": count(Action::UpToDate),
            "skip": count(Action::Skip),
        },
        "waves": fleet.waves(plan),
        "images": images,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn state_root() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("goldenpath/fleet")
}

fn patch(args: &PatchArgs) -> ExitCode {
    if args.gitops.is_some() && args.fleet.contracts.is_empty() {
        return usage("`--gitops` pins digests of contracts' images: pass `--contracts PATH` too");
    }
    let settings = match settings(&args.fleet) {
        Ok(s) => Settings {
            max_failures: args.max_failures,
            retries: args.retries,
            wave_pause: Duration::from_secs(args.wave_pause),
            dry_run: args.dry_run,
            ..s
        },
        Err(code) => return code,
    };
    let (fleet, plan, contracts) = match open(&args.fleet, settings) {
        Ok(v) => v,
        Err(code) => return code,
    };
    eprintln!(
        "fleet: {} image(s), {} to patch, run image {} ({}){}",
        plan.items.len(),
        plan.work(),
        fleet.run_image().reference,
        short(&fleet.run_image().digest),
        if args.dry_run {
            "; dry run, nothing is changed"
        } else {
            ""
        }
    );
    let targets: Vec<Target> = plan.items.iter().map(|i| i.target.clone()).collect();
    let id = gp_fleet::campaign::campaign_id(
        &targets,
        &fleet.run_image().digest,
        fleet.builder().map(|b| b.digest.as_str()),
    );
    let campaign = if args.dry_run {
        None
    } else {
        let root = args.state.clone().unwrap_or_else(state_root);
        match Campaign::open(&root, &id) {
            Ok(c) => {
                if c.resumed() {
                    eprintln!("fleet: continuing campaign {id} (`{}`)", c.dir().display());
                }
                Some(c)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::USAGE);
            }
        }
    };
    let mut report = fleet.patch(&plan, campaign.as_ref(), &print_outcome);
    report.campaign = id;
    let mut code = if report.count(Status::Failed) > 0 || report.stopped.is_some() {
        ExitCode::from(exit::INVALID)
    } else {
        ExitCode::SUCCESS
    };
    if let (Some(out), Some(contracts), false) = (&args.gitops, &contracts, args.dry_run)
        && let Err(c) = pin(out, contracts, &report)
    {
        code = c;
    }
    if let Some(c) = &campaign {
        for (name, text) in [
            ("report.json", report.to_json()),
            ("report.md", report.to_markdown()),
        ] {
            match c.write_file(name, text.as_bytes()) {
                Ok(path) => eprintln!("fleet: wrote {}", path.display()),
                Err(e) => {
                    eprintln!("error: {e}");
                    code = ExitCode::from(exit::USAGE);
                }
            }
        }
    }
    summary(&report);
    if args.fleet.json {
        let _ = super::write_stdout(&report.to_json());
    } else if args.dry_run {
        let _ = super::write_stdout(&report.to_markdown());
    }
    code
}

/// One line per settled image, on stderr.
fn print_outcome(o: &Outcome) {
    if o.status == Status::NotRun {
        return;
    }
    let digests = match (&o.old_digest, &o.new_digest) {
        (Some(a), Some(b)) if a != b => format!(" {} -> {}", short(a), short(b)),
        _ => String::new(),
    };
    let detail = match (&o.error, o.status) {
        (Some(e), _) => format!(": {e}"),
        (None, Status::Skipped) => format!(": {}", o.reason),
        _ => String::new(),
    };
    eprintln!(
        "  {:10} {}{digests}{}{detail}",
        o.status.as_str(),
        o.image,
        if o.earlier { " (earlier run)" } else { "" }
    );
}

/// Pins every patched contract image's new digest into the GitOps tree, as `contract render --pin` does.
fn pin(
    out: &std::path::Path,
    contracts: &gp_contract::Report,
    report: &Report,
) -> Result<(), ExitCode> {
    let mut pins = gp_render::contracts::Pins::default();
    let named: std::collections::BTreeSet<String> = inventory::from_contracts(contracts)
        .into_iter()
        .map(|t| t.image)
        .collect();
    let mut n = 0;
    for o in &report.images {
        if let (Status::Patched, Some(env), Some(app), Some(digest), true) = (
            o.status,
            &o.environment,
            &o.application,
            &o.new_digest,
            named.contains(&o.image),
        ) {
            pins.env_app(env, app, digest);
            n += 1;
        }
    }
    if let Err(e) = gp_render::tree::check_out(out) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(exit::USAGE));
    }
    match gp_render::contracts::pin_report(contracts, out, &pins) {
        Ok(r) => {
            for e in &r.errors {
                eprintln!("error: {e}");
            }
            eprintln!(
                "fleet: pinned {n} digest(s) into `{}` ({} file(s) written)",
                out.display(),
                r.outcome.written.len()
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot pin digests into `{}`: {e}", out.display());
            Err(ExitCode::from(exit::USAGE))
        }
    }
}

fn summary(report: &Report) {
    eprintln!("fleet: {}", report.summary());
    if let Some(why) = &report.stopped {
        eprintln!("fleet: stopped: {why}");
    }
}
