//! `goldenpath serve`: the platform loop on one machine. The contracts of one environment are the apps; each is
//! built from its git branch (watched with `git ls-remote`, or told by a signed webhook), rebased when only the
//! run image changed, and run here behind a loopback port, replaced without downtime (`deploy = "local"`). The
//! loop, its state, queue, metrics and HTTP side are `gp_serve`; this file is the engine they drive: builds and
//! rebases through `gp_lifecycle::session`, runs through `gp_run`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::Args;
use gp_cnb::JsonLabel as _;
use gp_lifecycle::progress::{Event, Progress};
use gp_lifecycle::session::{self, BuildRequest, Cache, Output, RebaseRequest};
use gp_oci::reference::ImageRef;
use gp_run::container::Container;
use gp_run::layers::LayerCache;
use gp_run::proxy::{Backend, Connector, Proxy, wait_ready};
use gp_serve::builder::{BuilderNow, BuiltWith};
use gp_serve::config::{Config, Deploy};
use gp_serve::metrics::{RegistryCounter, RegistryLabels};
use gp_serve::service::{AppSource, Built, Contracts, Engine, Service};
use nix::sys::signal::{SigSet, Signal};

use super::exit;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service's settings (every one is documented in docs/serve.md).
    #[arg(long, default_value = "goldenpath-serve.toml")]
    pub config: PathBuf,
}

pub fn run(args: &ServeArgs) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    let config = Config::load(&args.config).map_err(|e| e.to_string())?;
    if config.deploy == Deploy::Local && !nix::unistd::geteuid().is_root() {
        return Err(
            "goldenpath serve with `deploy = \"local\"` needs root (runc and network namespaces)"
                .into(),
        );
    }
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;

    let contracts = read_contracts(&config)?;
    for f in &contracts.invalid {
        eprintln!(
            "warning: {f} has errors and is left out (`goldenpath contract validate` says why)"
        );
    }
    let apps = contracts.apps;
    if apps.is_empty() {
        return Err(format!(
            "no valid contract of environment `{}` in `{}`",
            config.environment,
            config.contracts.display()
        ));
    }
    eprintln!(
        "===> SERVING {} app(s) of `{}` from {}",
        apps.len(),
        config.environment,
        config.contracts.display()
    );
    let secrets = gp_serve::http::Secrets {
        webhook: read_secret(config.webhook_secret_file.as_deref(), "webhook_secret_file")?
            .map(String::into_bytes),
        api_token: read_secret(config.api_token_file.as_deref(), "api_token_file")?,
    };
    let server = Arc::new(
        tiny_http::Server::http(&config.listen)
            .map_err(|e| format!("cannot listen on {} (`listen`): {e}", config.listen))?,
    );
    let gate = Arc::new(ServeGate::new(&config.registry_rate)?);
    let engine = LocalEngine::new(&config, &apps, gate.clone())?;
    let service = Arc::new(
        Service::start(config.clone(), apps, Box::new(engine)).map_err(|e| e.to_string())?,
    );
    let _ = gate.metrics.set((
        service.metrics().registry_requests.clone(),
        service.metrics().registry_throttled.clone(),
    ));
    let (srv, svc) = (server.clone(), service.clone());
    let http = std::thread::spawn(move || gp_serve::http::serve(&srv, &svc, &secrets));
    eprintln!("*** status page: http://{}/", config.listen);
    let sig = signals.wait().map_err(|e| e.to_string())?;
    eprintln!("===> STOPPING ({sig})");
    server.unblock();
    let _ = http.join();
    if let Ok(s) = Arc::try_unwrap(service) {
        s.stop();
    }
    Ok(())
}

/// The secret in the file `key` names (trimmed); an unreadable or empty file is an error naming the setting.
fn read_secret(path: Option<&Path>, key: &str) -> Result<Option<String>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = gp_cnb::read_input_text(path, 64 << 10)
        .map_err(|e| format!("`{key}` = `{}`: {e}", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(format!(
            "`{key}` = `{}` is empty: write the secret into it",
            path.display()
        ));
    }
    Ok(Some(text))
}

/// The contracts directory: `contracts` itself, or the git repository it names, fetched into the state
/// directory (its branch's head, checked out clean).
fn contracts_dir(config: &Config) -> Result<PathBuf, String> {
    let Some(url) = config.contracts_url() else {
        return Ok(config.contracts.clone());
    };
    let dir = config.state.join("contracts");
    let fetch = config.fetch_url(&url);
    let git = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "the contracts repository {} (`contracts`, branch `{}`): git {} failed: {}",
                gp_serve::watch::redact(&url),
                config.contracts_branch,
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    if !dir.join(".git").is_dir() {
        fs_err::create_dir_all(&dir).map_err(|e| e.to_string())?;
        git(&["init", "-q"])?;
    }
    git(&[
        "fetch",
        "-q",
        "--depth",
        "1",
        "--",
        &fetch,
        &config.contracts_branch,
    ])?;
    git(&["checkout", "-q", "--force", "--detach", "FETCH_HEAD"])?;
    git(&["clean", "-q", "-fdx"])?;
    Ok(dir)
}

/// Whether any `*.yaml`/`*.yml` file is below `dir` (`.git` left out; links not followed).
fn has_yaml(dir: &Path) -> bool {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        let Ok(kind) = e.file_type() else {
            return false;
        };
        if kind.is_dir() {
            e.file_name() != ".git" && has_yaml(&path)
        } else {
            kind.is_file() && path.extension().is_some_and(|x| x == "yaml" || x == "yml")
        }
    })
}

/// The valid contracts of the configured environment, as apps, and the contract files that are invalid.
fn read_contracts(config: &Config) -> Result<Contracts, String> {
    let dir = contracts_dir(config)?;
    if dir.is_dir() && !has_yaml(&dir) {
        // Every contract removed: no app (a tree that cannot be read is an error instead, below).
        return Ok(Contracts::default());
    }
    let report = super::contract::check_inputs(vec![dir.clone()], None).map_err(|_| {
        format!(
            "the contracts `{}` cannot be read (see above)",
            config.contracts.display()
        )
    })?;
    let mut apps = Vec::new();
    let mut invalid = Vec::new();
    for file in &report.files {
        if file.has_errors() {
            invalid.push(file.source.path().display().to_string());
            continue;
        }
        let Some(platform) = &file.config else {
            continue;
        };
        for c in file.contracts() {
            if c.environment.as_str() != config.environment {
                continue;
            }
            let Some(env) = platform.environments.get(&c.environment) else {
                continue;
            };
            let app = gp_render::App {
                contract: c,
                config: platform,
                env,
                source: "",
            };
            apps.push(AppSource {
                name: c.application.as_str().to_owned(),
                contract: file.source.path().display().to_string(),
                git_url: c.spec.source.git.url.to_string(),
                fetch_url: config.fetch_url(&c.spec.source.git.url.to_string()),
                branch: c.spec.source.git.branch.to_string(),
                image: app.image_tag(),
            });
        }
    }
    Ok(Contracts { apps, invalid })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One running version of an app.
struct Running {
    container: Container,
    /// Its bundle (the overlay root it holds is unmounted after the container stops).
    bundle: Option<gp_run::bundle::Bundle>,
    dir: PathBuf,
}

/// An app's local deployment: its proxy (a fixed port) and what runs behind it.
struct Deployment {
    proxy: Proxy,
    running: Running,
}

struct LocalEngine {
    state: PathBuf,
    builder: String,
    run_image: String,
    insecure: Vec<String>,
    config: Config,
    /// Each app's local port, kept in `<state>/ports.json` so that an app keeps its port across restarts and
    /// contract changes.
    ports: Mutex<BTreeMap<String, u16>>,
    deployments: Mutex<HashMap<String, Deployment>>,
    /// Old versions finishing their connections and stopping (joined when the engine is dropped).
    retiring: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// GitOps renders and commits, one at a time.
    gitops_lock: Mutex<()>,
    gate: Arc<ServeGate>,
    generation: std::sync::atomic::AtomicU64,
    /// Image layers unpacked once, shared by the running versions' roots (`<state>/layers`); `None` when overlayfs
    /// is not usable here, and each version's image is unpacked whole.
    layers: Mutex<Option<Arc<LayerCache>>>,
    /// The builder as last read: a registry builder whose digest is the same is not fetched again.
    builder_now: Mutex<Option<BuilderNow>>,
}

impl Drop for LocalEngine {
    fn drop(&mut self) {
        // Every app stops at once: each may take its grace period (an app that ignores SIGTERM, all of it), and
        // one after another that would be a hundred grace periods for a hundred apps.
        let deployments: Vec<Deployment> =
            lock(&self.deployments).drain().map(|(_, d)| d).collect();
        std::thread::scope(|scope| {
            for d in deployments {
                scope.spawn(move || drop(d));
            }
        });
        if let Ok(mut r) = self.retiring.lock() {
            for t in r.drain(..) {
                let _ = t.join();
            }
        }
    }
}

impl LocalEngine {
    fn new(config: &Config, apps: &[AppSource], gate: Arc<ServeGate>) -> Result<Self, String> {
        let builder = if config.builder == "default" {
            super::default_builder::ensure(&config.insecure_registries)?
        } else {
            config.builder.clone()
        };
        let run_image = if config.run_image.is_empty() {
            builder_run_image(&builder, &config.insecure_registries)?
        } else {
            config.run_image.clone()
        };
        if config.deploy == Deploy::Gitops
            && matches!(run_image.parse::<ImageRef>(), Ok(ImageRef::Layout { .. }))
        {
            return Err(format!(
                "`deploy = \"gitops\"` publishes images to the contracts' registry, so the run image must be a registry image too: set `run_image` (it is `{run_image}`)"
            ));
        }
        remove_leftovers(&config.state.join("run"));
        let layers = match LayerCache::open(&config.state.join("layers")) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("warning: {e}; each version's image is unpacked whole");
                None
            }
        };
        let ports: BTreeMap<String, u16> = fs_err::read_to_string(config.state.join("ports.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let engine = Self {
            state: config.state.clone(),
            builder,
            run_image,
            insecure: config.insecure_registries.clone(),
            config: config.clone(),
            ports: Mutex::new(ports),
            deployments: Mutex::new(HashMap::new()),
            retiring: Mutex::new(Vec::new()),
            gitops_lock: Mutex::new(()),
            gate,
            generation: std::sync::atomic::AtomicU64::new(0),
            layers: Mutex::new(layers),
            builder_now: Mutex::new(None),
        };
        for app in apps {
            engine.port(&app.name)?;
        }
        Ok(engine)
    }

    /// The app's local port: the one it had, or the first free one from `port_base`.
    fn port(&self, app: &str) -> Result<u16, String> {
        let mut ports = self
            .ports
            .lock()
            .map_err(|_| "the port table is poisoned".to_owned())?;
        if let Some(p) = ports.get(app) {
            return Ok(*p);
        }
        let taken: std::collections::BTreeSet<u16> = ports.values().copied().collect();
        let port = (self.config.port_base..=u16::MAX)
            .find(|p| !taken.contains(p))
            .ok_or_else(|| format!("no port left from `port_base` {}", self.config.port_base))?;
        ports.insert(app.to_owned(), port);
        let file = self.state.join("ports.json");
        let tmp = file.with_extension("json.tmp");
        fs_err::create_dir_all(&self.state).map_err(|e| e.to_string())?;
        fs_err::write(
            &tmp,
            serde_json::to_string_pretty(&*ports).map_err(|e| e.to_string())?,
        )
        .and_then(|()| fs_err::rename(&tmp, &file))
        .map_err(|e| e.to_string())?;
        Ok(port)
    }

    /// The local store, its registry requests counted and rate-limited.
    fn store(&self) -> gp_oci::store::Store {
        super::store(&self.insecure).with_gate(self.gate.clone())
    }

    /// The manifest digest `reference` names now: its layout's index, or a HEAD to its registry.
    fn digest_of(&self, reference: &str) -> Result<String, String> {
        match reference.parse::<ImageRef>().map_err(|e| e.to_string())? {
            ImageRef::Layout { path, tag } => {
                let layout = gp_oci::layout::Layout::open(&path).map_err(|e| e.to_string())?;
                let desc = layout.resolve(tag.as_deref()).map_err(|e| e.to_string())?;
                Ok(desc.digest.to_string())
            }
            ImageRef::Registry(r) => {
                let registry = self.store().registry(&r).map_err(|e| e.to_string())?;
                Ok(registry
                    .current_digest(&r)
                    .map_err(|e| e.to_string())?
                    .to_string())
            }
        }
    }

    fn images(&self) -> PathBuf {
        self.state.join("images")
    }

    fn gitops(&self) -> bool {
        self.config.deploy == Deploy::Gitops
    }

    /// Where the app's image goes: the state's layout (local deploy), or the contract's registry image (GitOps:
    /// Argo CD's cluster pulls it from there).
    fn reference(&self, app: &AppSource) -> String {
        if self.gitops() {
            app.image.clone()
        } else {
            format!("oci:{}:{}", self.images().display(), app.name)
        }
    }

    fn output(&self, app: &AppSource) -> Result<Output, String> {
        if self.gitops() {
            match app.image.parse::<ImageRef>().map_err(|e| e.to_string())? {
                ImageRef::Registry(r) => Ok(Output::Registry(r)),
                ImageRef::Layout { .. } => Err(format!(
                    "{}: `deploy = \"gitops\"` publishes to a registry, and the image is `{}`",
                    app.contract, app.image
                )),
            }
        } else {
            Ok(Output::Layout {
                path: self.images(),
                tag: app.name.clone(),
            })
        }
    }

    /// The contracts rendered again into the GitOps working copy (a removed contract's files pruned), committed.
    fn pin_none(&self) -> Result<String, String> {
        self.render_commit(None)
    }

    /// GitOps deploy: the contracts rendered into the GitOps working copy with `app` pinned to `digest` (the
    /// other apps keep their pins), committed. Returns what the status page shows: the commit.
    fn pin(&self, app: &AppSource, digest: &str) -> Result<String, String> {
        self.render_commit(Some((app, digest)))
    }

    /// Renders the contracts into the GitOps working copy (with one pin, or none) and commits what changed.
    fn render_commit(&self, pin: Option<(&AppSource, &str)>) -> Result<String, String> {
        let _one_at_a_time = self
            .gitops_lock
            .lock()
            .map_err(|_| "a GitOps commit panicked".to_owned())?;
        let gitops = self
            .config
            .gitops
            .clone()
            .ok_or_else(|| "`deploy = \"gitops\"` needs `gitops`".to_owned())?;
        let contracts = contracts_dir(&self.config)?;
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find goldenpath itself: {e}"))?;
        let mut render = Command::new(exe);
        render
            .current_dir(&contracts)
            .args(["contract", "render", "--out"])
            .arg(&gitops);
        if let Some((app, digest)) = pin {
            render.args(["--pin", &format!("{}={digest}", app.name)]);
        }
        let out = render
            .output()
            .map_err(|e| format!("cannot run goldenpath contract render: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "goldenpath contract render --out {} failed: {}",
                gitops.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let git = |args: &[&str]| -> Result<std::process::Output, String> {
            Command::new("git")
                .arg("-C")
                .arg(&gitops)
                .args([
                    "-c",
                    "user.name=goldenpath serve",
                    "-c",
                    "user.email=serve@goldenpath.invalid",
                ])
                .args(args)
                .output()
                .map_err(|e| format!("cannot run git: {e}"))
        };
        let check = |o: std::process::Output, what: &str| -> Result<std::process::Output, String> {
            if o.status.success() {
                Ok(o)
            } else {
                Err(format!(
                    "the GitOps working copy {} (`gitops`): git {what} failed: {}",
                    gitops.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
        };
        check(git(&["add", "-A"])?, "add")?;
        if !git(&["diff", "--cached", "--quiet"])?.status.success() {
            let message = match pin {
                Some((app, digest)) => format!(
                    "{}: pin {} (goldenpath serve)",
                    app.name,
                    &digest[..digest.len().min(19)]
                ),
                None => "contracts changed: rendered again (goldenpath serve)".to_owned(),
            };
            check(git(&["commit", "-qm", &message])?, "commit")?;
        }
        let head = check(git(&["rev-parse", "--short", "HEAD"])?, "rev-parse")?;
        Ok(format!(
            "gitops {}",
            String::from_utf8_lossy(&head.stdout).trim()
        ))
    }

    /// A clean working copy of `revision`, fetched into `<state>/src/<app>`.
    fn checkout(
        &self,
        app: &AppSource,
        revision: &str,
        log: &dyn Fn(&str),
    ) -> Result<PathBuf, String> {
        let dir = self.state.join("src").join(&app.name);
        let git = |args: &[&str], cwd: Option<&Path>| -> Result<(), String> {
            let mut cmd = Command::new("git");
            if let Some(d) = cwd {
                cmd.arg("-C").arg(d);
            }
            let out = cmd
                .args(args)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .map_err(|e| format!("cannot run git: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "git {} failed: {}",
                    args.first().unwrap_or(&""),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        if !dir.join(".git").is_dir() {
            let _ = fs_err::remove_dir_all(&dir);
            fs_err::create_dir_all(&dir).map_err(|e| e.to_string())?;
            git(&["init", "-q"], Some(&dir))?;
        }
        let started = Instant::now();
        log(&format!(
            "fetching {} {}",
            gp_serve::watch::redact(&app.fetch_url),
            revision
        ));
        git(&["fetch", "-q", "--", &app.fetch_url, revision], Some(&dir)).or_else(|_| {
            git(
                &["fetch", "-q", "--", &app.fetch_url, &app.branch],
                Some(&dir),
            )
        })?;
        git(
            &["checkout", "-q", "--force", "--detach", revision],
            Some(&dir),
        )?;
        git(&["clean", "-q", "-fdx"], Some(&dir))?;
        log(&format!(
            "checked out in {} ms",
            started.elapsed().as_millis()
        ));
        Ok(dir)
    }

    fn start_version(
        &self,
        app: &AppSource,
        reference: &str,
        digest: &str,
        log: &dyn Fn(&str),
    ) -> Result<(Running, Connector), String> {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("gp-{}-{}-{generation}", app.name, std::process::id());
        let dir = self.state.join("run").join(&name);
        let store = self.store();
        let opened = store.open(reference, None).map_err(|e| e.to_string())?;
        let desc = by_digest(&opened, reference, digest)?;
        let started = Instant::now();
        let env = [("PORT".into(), gp_run::APP_PORT.to_string())];
        let prepare = |layers: Option<&Arc<LayerCache>>| {
            gp_run::bundle::prepare_on(
                layers,
                &opened.layout,
                &desc,
                reference,
                &dir.join("bundle"),
                &env,
                &app.name,
            )
        };
        let cache = lock(&self.layers).clone();
        let bundle = match cache.as_ref().map(|c| prepare(Some(c))) {
            Some(Ok(b)) => b,
            other => {
                if let Some(Err(e)) = other {
                    log(&format!("{e}: unpacking the image whole instead"));
                    // A mount that fails will fail for every version: from now on images are unpacked whole.
                    // Anything else (a layer this image cannot have on its own) is this image's alone.
                    if matches!(e, gp_run::RunError::Overlay { .. }) {
                        eprintln!(
                            "warning: {e}; each version's image is unpacked whole from now on"
                        );
                        *lock(&self.layers) = None;
                    }
                }
                prepare(None).map_err(|e| e.to_string())?
            }
        };
        log(&match &bundle.mounted {
            Some(m) => format!(
                "root filesystem in {} ms: {} layer(s) kept from before, {} unpacked",
                started.elapsed().as_millis(),
                m.cached,
                m.unpacked
            ),
            None => format!(
                "root filesystem unpacked in {} ms",
                started.elapsed().as_millis()
            ),
        });
        let started = Instant::now();
        let container = Container::start(
            &bundle,
            &name,
            &dir.join("runc"),
            &dir.with_extension("log"),
        )
        .map_err(|e| e.to_string())?;
        let connector = Connector::new(container.netns()).map_err(|e| e.to_string())?;
        let running = Running {
            container,
            bundle: Some(bundle),
            dir,
        };
        wait_ready(
            &running.container,
            &connector,
            gp_run::APP_PORT,
            Duration::from_mins(2),
        )
        .map_err(|e| e.to_string())?;
        log(&format!(
            "started; answered HTTP after {} ms",
            started.elapsed().as_millis()
        ));
        Ok((running, connector))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.container.stop(Duration::from_secs(10));
        // Unmounts the root (when it is an overlay) before its directory goes.
        drop(self.bundle.take());
        let _ = fs_err::remove_dir_all(&self.dir);
    }
}

/// The image `digest` in the layout `opened` came from: its tag's, or (when the tag has moved since) the manifest
/// with that digest, whose blobs a layout keeps.
fn by_digest(
    opened: &gp_oci::store::Opened,
    reference: &str,
    digest: &str,
) -> Result<gp_oci::layout::Desc, String> {
    if opened.desc.digest.to_string() == digest {
        return Ok(opened.desc.clone());
    }
    let d: gp_oci::digest::Digest = digest
        .parse()
        .map_err(|_| format!("`{digest}` is not a digest"))?;
    let bytes = opened.layout.read_blob(&d).map_err(|e| {
        format!(
            "{reference} is {} now, and the image {digest} is no longer in the layout: {e}",
            opened.desc.digest
        )
    })?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the manifest {digest}: {e}"))?;
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json");
    gp_oci::layout::Desc::parse_in(
        &serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}),
        reference,
        "the deployed image",
    )
    .map_err(|e| e.to_string())
}

/// Containers (and their directories) a killed earlier run of the service left under `run`.
fn remove_leftovers(run: &Path) {
    let Ok(entries) = fs_err::read_dir(run) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.is_dir() {
            for id in gp_run::container::remove_leftovers(&dir.join("runc")) {
                eprintln!(
                    "===> REMOVED container {id}, left running by an earlier run of the service"
                );
            }
            // Its root may still be mounted (overlayfs): removing through the mount would be wrong.
            if gp_run::layers::unmount(&dir.join("bundle/rootfs")).is_ok() {
                let _ = fs_err::remove_dir_all(&dir);
            }
        }
        let _ = fs_err::remove_file(dir.with_extension("log"));
    }
}

/// What a builder holds (`io.buildpacks.builder.metadata`): its lifecycle and buildpacks.
fn builder_now(
    reference: &str,
    layout: &gp_oci::layout::Layout,
    desc: &gp_oci::layout::Desc,
) -> Result<BuilderNow, String> {
    let img = gp_oci::image::read_image(layout, desc).map_err(|e| e.to_string())?;
    let meta = img
        .config
        .label(gp_cnb::BuilderMetadata::KEY)
        .ok_or_else(|| {
            format!(
                "`{reference}` has no `{}` label: it is not a builder (set `builder` in the serve config)",
                gp_cnb::BuilderMetadata::KEY
            )
        })
        .and_then(|l| {
            gp_cnb::BuilderMetadata::from_label(l).map_err(|e| format!("`{reference}`: {e}"))
        })?;
    let mut buildpacks: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for bp in &meta.buildpacks {
        buildpacks
            .entry(bp.id.to_string())
            .or_default()
            .insert(bp.version.to_string());
    }
    Ok(BuilderNow {
        digest: desc.digest.to_string(),
        lifecycle: Some(meta.lifecycle.version).filter(|v| !v.is_empty()),
        buildpacks,
    })
}

/// The run image a builder names (`io.buildpacks.builder.metadata`).
fn builder_run_image(builder: &str, insecure: &[String]) -> Result<String, String> {
    let store = super::store(insecure);
    let opened = store.open(builder, None).map_err(|e| e.to_string())?;
    let img = gp_oci::image::read_image(&opened.layout, &opened.desc).map_err(|e| e.to_string())?;
    img.config
        .label(gp_cnb::BuilderMetadata::KEY)
        .and_then(|l| gp_cnb::BuilderMetadata::from_label(l).ok())
        .and_then(|m| m.images.first().map(|r| r.image.clone()))
        .ok_or_else(|| {
            format!(
                "the builder `{builder}` names no run image: set `run_image` in the serve config"
            )
        })
}

/// Every registry request of the service's builds, rebases and digest checks: counted in the metrics (429s too)
/// and held to `registry_rate` per registry, the fleet's token buckets.
struct ServeGate {
    limiter: gp_fleet::limit::Limiter,
    /// Requests and 429s, set once the service (which owns the metrics) has started.
    metrics: std::sync::OnceLock<(RegistryCounter, RegistryCounter)>,
}

impl ServeGate {
    fn new(rate: &str) -> Result<Self, String> {
        let default: gp_fleet::limit::Rate =
            rate.parse().map_err(|e| format!("`registry_rate` {e}"))?;
        Ok(Self {
            limiter: gp_fleet::limit::Limiter::new(gp_fleet::limit::Limits {
                default,
                registries: BTreeMap::new(),
            }),
            metrics: std::sync::OnceLock::new(),
        })
    }

    fn labels(registry: &str) -> RegistryLabels {
        RegistryLabels {
            registry: registry.to_owned(),
        }
    }
}

impl gp_oci::registry::Gate for ServeGate {
    fn admit(&self, registry: &str) {
        if let Some((requests, _)) = self.metrics.get() {
            requests.get_or_create(&Self::labels(registry)).inc();
        }
        self.limiter.admit(registry);
    }

    fn throttled(&self, registry: &str) {
        if let Some((_, throttled)) = self.metrics.get() {
            throttled.get_or_create(&Self::labels(registry)).inc();
        }
    }
}

/// Build events as log lines, sent to the thread that writes the build log.
struct Lines(Mutex<mpsc::Sender<String>>);

impl Progress for Lines {
    fn event(&self, event: Event) {
        if let Ok(tx) = self.0.lock() {
            for line in event.lines() {
                let _ = tx.send(line);
            }
        }
    }
}

impl Engine for LocalEngine {
    fn build(&self, app: &AppSource, revision: &str, log: &dyn Fn(&str)) -> Result<Built, String> {
        let dir = self.checkout(app, revision, log)?;
        let mut request = BuildRequest::new(
            dir.clone(),
            session::Builder::Image(self.builder.clone()),
            self.output(app)?,
        );
        request.run_image = Some(self.run_image.clone());
        request.cache = Cache::Dir(self.state.join("cache").join(&app.name));
        request.ca_certs = super::build::settings::host_ca_certs();
        request.source = session::git_source(&dir);
        let store = self.store();
        let (tx, rx) = mpsc::channel();
        let progress: Arc<dyn Progress> = Arc::new(Lines(Mutex::new(tx)));
        let outcome = std::thread::scope(|scope| {
            let build = scope.spawn(move || session::build(&store, &request, progress));
            for line in rx {
                log(&line);
            }
            build.join()
        });
        let outcome = outcome
            .map_err(|_| "the build panicked".to_owned())?
            .map_err(|e| e.to_string())?;
        let built_with = outcome.builder.map(|b| BuiltWith {
            builder: b.digest,
            lifecycle: b.lifecycle,
            buildpacks: outcome.buildpacks.into_iter().collect(),
        });
        Ok(Built {
            reference: self.reference(app),
            digest: outcome.digest,
            run_image: self.run_image().ok(),
            built_with,
        })
    }

    fn rebase(&self, app: &AppSource, last: &str, log: &dyn Fn(&str)) -> Result<Built, String> {
        log(&format!(
            "rebasing {} ({last}) onto {}",
            app.name, self.run_image
        ));
        let image = self
            .reference(app)
            .parse::<ImageRef>()
            .map_err(|e| e.to_string())?;
        let store = self.store();
        let rebased = session::rebase(
            &store,
            &RebaseRequest {
                image,
                run_image: self.run_image.clone(),
            },
        )
        .map_err(|e| e.to_string())?;
        log(&format!("rebased: {} -> {}", rebased.old, rebased.new));
        Ok(Built {
            reference: self.reference(app),
            digest: rebased.new,
            run_image: self.run_image().ok(),
            built_with: None,
        })
    }

    fn head(&self, app: &AppSource) -> Result<String, String> {
        gp_serve::watch::head(&app.fetch_url, &app.branch, Duration::from_mins(1))
            .map_err(|e| e.to_string())
    }

    fn run_image(&self) -> Result<String, String> {
        self.digest_of(&self.run_image)
    }

    fn builder(&self) -> Result<Option<BuilderNow>, String> {
        // The digest each check (a HEAD for a registry builder); its manifest and config only when it moved.
        let digest = self.digest_of(&self.builder)?;
        if let Some(known) = lock(&self.builder_now)
            .as_ref()
            .filter(|b| b.digest == digest)
        {
            return Ok(Some(known.clone()));
        }
        let now = match self
            .builder
            .parse::<ImageRef>()
            .map_err(|e| e.to_string())?
        {
            ImageRef::Layout { path, tag } => {
                let layout = gp_oci::layout::Layout::open(&path).map_err(|e| e.to_string())?;
                let desc = layout.resolve(tag.as_deref()).map_err(|e| e.to_string())?;
                builder_now(&self.builder, &layout, &desc)?
            }
            ImageRef::Registry(r) => {
                let store = self.store();
                let layout = store.images().map_err(|e| e.to_string())?;
                let desc = store
                    .registry(&r)
                    .and_then(|registry| registry.pull_metadata(&r, &layout))
                    .map_err(|e| e.to_string())?;
                builder_now(&self.builder, &layout, &desc)?
            }
        };
        *lock(&self.builder_now) = Some(now.clone());
        Ok(Some(now))
    }

    fn contracts(&self) -> Result<Contracts, String> {
        read_contracts(&self.config)
    }

    fn restored(&self) {
        if let Some(c) = lock(&self.layers).clone() {
            let n = c.prune();
            if n > 0 {
                eprintln!("===> REMOVED {n} unpacked layer(s) no app uses any more");
            }
        }
        crate::release_free_memory();
    }

    fn after_work(&self) {
        crate::release_free_memory();
    }

    fn undeploy(&self, app: &AppSource) {
        if self.gitops() {
            // Rendering again prunes the removed contract's files from the GitOps tree.
            if let Err(e) = self.pin_none() {
                eprintln!("warning: {} stays in the GitOps tree: {e}", app.name);
            }
            return;
        }
        let gone = self
            .deployments
            .lock()
            .ok()
            .and_then(|mut d| d.remove(&app.name));
        // Dropping it stops the proxy and the container.
        drop(gone);
    }

    fn redeploy(&self, app: &AppSource, digest: &str) -> Result<String, String> {
        if self.gitops() {
            // Nothing runs here: the pin is already committed (pinning it again changes nothing).
            return self.pin(app, digest);
        }
        // The tag may have moved since (a build killed after it wrote the image): the digest is what ran.
        let reference = format!("oci:{}:{}", self.images().display(), app.name);
        self.deploy(
            app,
            &Built {
                reference,
                digest: digest.to_owned(),
                run_image: None,
                built_with: None,
            },
            &|_| {},
        )
    }

    fn deploy(&self, app: &AppSource, built: &Built, log: &dyn Fn(&str)) -> Result<String, String> {
        if self.gitops() {
            return self.pin(app, &built.digest);
        }
        let (running, connector) = self.start_version(app, &built.reference, &built.digest, log)?;
        let mut deployments = self
            .deployments
            .lock()
            .map_err(|_| "a deploy panicked".to_owned())?;
        let port = self.port(&app.name)?;
        if let Some(Deployment {
            proxy,
            running: old,
        }) = deployments.remove(&app.name)
        {
            // The new version answers: switch, let the old one's connections finish, stop it.
            let previous = proxy.switch(Backend::new(connector, gp_run::APP_PORT));
            let url = format!("http://{}/", proxy.addr());
            deployments.insert(app.name.clone(), Deployment { proxy, running });
            drop(deployments);
            // The old version retires in the background: its open connections finish, then it stops. The new
            // one is deployed (and recorded) as soon as the switch is made.
            let retire = std::thread::spawn(move || {
                let _ = previous.drain(Duration::from_secs(30));
                drop(old);
            });
            if let Ok(mut r) = self.retiring.lock() {
                r.retain(|t| !t.is_finished());
                r.push(retire);
            }
            Ok(url)
        } else {
            let proxy = Proxy::listen(port, Backend::new(connector, gp_run::APP_PORT))
                .map_err(|e| e.to_string())?;
            let url = format!("http://{}/", proxy.addr());
            deployments.insert(app.name.clone(), Deployment { proxy, running });
            Ok(url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gp_oci::registry::Gate;

    #[test]
    fn the_gate_counts_requests_and_429s_by_registry() {
        let gate = ServeGate::new("1000/10").unwrap();
        // Before the service has started there is nothing to count into; the limit holds all the same.
        gate.admit("registry.example:5000");
        let (requests, throttled) = (RegistryCounter::default(), RegistryCounter::default());
        assert!(
            gate.metrics
                .set((requests.clone(), throttled.clone()))
                .is_ok()
        );
        gate.admit("registry.example:5000");
        gate.admit("registry.example:5000");
        gate.throttled("registry.example:5000");
        gate.admit("ghcr.io");
        let count =
            |c: &RegistryCounter, host: &str| c.get_or_create(&ServeGate::labels(host)).get();
        assert_eq!(count(&requests, "registry.example:5000"), 2);
        assert_eq!(count(&throttled, "registry.example:5000"), 1);
        assert_eq!(count(&requests, "ghcr.io"), 1);
        assert_eq!(count(&throttled, "ghcr.io"), 0);
    }

    #[test]
    fn the_gate_holds_requests_to_the_rate() {
        // A burst of 2 at 20 a second: the 2 pass at once, the next 4 wait 50 ms each.
        let gate = ServeGate::new("20/2").unwrap();
        let start = std::time::Instant::now();
        for _ in 0..6 {
            gate.admit("registry.example:5000");
        }
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_bad_rate_names_the_setting() {
        let e = ServeGate::new("fast").err().unwrap();
        assert!(e.starts_with("`registry_rate` "), "{e}");
    }
}
