//! A whole build as one call: analyze → detect → restore → build → export → cache → publish.
//!
//! [`build`] takes a settled [`BuildRequest`], the image [`Store`] it works through and a [`Progress`] that hears
//! every phase, output line and transfer; it returns a [`BuildOutcome`] or a [`SessionError`]. It prints nothing
//! and keeps no state beyond the call, so a service can run several builds at once in one process (each with its
//! own cache; the store is shared safely).
//!
//! With a builder image, detect and build run in the sandbox: the builder's root filesystem (unpacked once per
//! digest), its static `/cnb/lifecycle/lifecycle`, as its CNB user, seeing only `/workspace`, `/layers` and
//! `/platform` of the host. [`Sandbox::None`] runs buildpacks in this process's environment, for when the caller
//! already runs inside the build image. Restore, cache and export always run on the host.

mod builder;
mod caches;
mod early;
mod error;
mod outcome;
mod platform_dir;
pub mod project;
mod rebase;
mod request;
mod sandboxed;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gp_cnb::{GroupToml, OrderToml, TomlFile};
use gp_oci::layout::Layout;
use gp_oci::store::{Opened, Store};

pub use error::{FailureKind, SessionError};
pub use outcome::{BuildOutcome, BuilderImage};
pub use rebase::{RebaseFailure, RebaseRequest, Rebased, rebase};
pub use request::{BuildRequest, Builder, Cache, Output, Sandbox, git_source};

use crate::analyze::Previous;
use crate::build::Built;
use crate::progress::{Direction, Event, Phase, Progress};
use outcome::Clock;

/// Runs the build `request` asks for, through `store`, reporting to `progress`.
pub fn build(
    store: &Store,
    request: &BuildRequest,
    progress: Arc<dyn Progress>,
) -> Result<BuildOutcome, SessionError> {
    request.check()?;
    let session = Session {
        store,
        request,
        clock: Clock::new(progress),
        opened: Mutex::new(BTreeMap::new()),
    };
    let work = scratch_dir()?;
    let result = session.run(&work);
    remove_work(&work);
    result
}

/// One build's state: what it opened (a registry image is resolved once per build), its clock.
struct Session<'a> {
    store: &'a Store,
    request: &'a BuildRequest,
    clock: Clock,
    opened: Mutex<BTreeMap<String, Opened>>,
}

/// Where the exporter writes: the layout, the tag, and the guard that removes a temporary tag.
struct Destination {
    layout_path: PathBuf,
    tag: String,
    publish: Option<gp_oci::reference::RegistryRef>,
    _held: Option<gp_oci::store::Held>,
}

/// The build's directories on the host.
#[derive(Debug, Clone, Copy)]
struct Workdirs<'a> {
    work: &'a Path,
    app: &'a Path,
    layers: &'a Path,
    platform: &'a Path,
    /// The run image's target (`CNB_TARGET_*`), as far as it says.
    target: &'a gp_cnb::Target,
}

impl Session<'_> {
    fn progress(&self) -> &dyn Progress {
        self.clock.progress()
    }

    fn run(&self, work: &Path) -> Result<BuildOutcome, SessionError> {
        let runner = self.runner()?;
        if let Cache::Image(r) = &self.request.cache {
            // A registry the cache cannot reach fails before any work.
            self.store
                .registry(r)
                .map_err(|source| SessionError::Registry {
                    reference: format!("--cache-image {r}"),
                    source: Box::new(source),
                })?;
        }
        let dest = self.destination()?;
        let resolved = builder::resolve(self, runner)?;
        let previous = self.previous_image(&dest);
        let (early, built) = self.phases(&resolved, work, &dest, previous.as_ref())?;
        let mut outcome = built;
        if let Some(target) = &dest.publish {
            early.wait();
            let stats = self.publish(&dest, target)?;
            outcome.reference = target.to_string();
            outcome.uploaded = stats.uploaded;
            outcome.mounted = stats.mounted;
            outcome.present = stats.present;
        }
        // Early uploads only run when publishing; they were waited for before the push (and `Uploads` waits on drop).
        outcome.phases = self.clock.durations();
        Ok(outcome)
    }

    /// Which sandbox runs the inner phases (`None`: directly).
    fn runner(&self) -> Result<Option<sandboxed::Runner>, SessionError> {
        use sandboxed::Runner;
        let has_builder = matches!(self.request.builder, Builder::Image(_));
        Ok(match self.request.sandbox {
            Sandbox::None => None,
            Sandbox::Auto if !has_builder => None,
            Sandbox::Auto if crate::sandbox::available() => Some(Runner::Namespaces),
            Sandbox::Auto if crate::sandbox::runc_available() => Some(Runner::Runc),
            Sandbox::Auto => {
                self.clock.event(Event::note(
                    "neither namespaces nor runc are available here: buildpacks run directly (`--sandbox none`)",
                ));
                None
            }
            Sandbox::Namespaces => Some(Runner::Namespaces),
            Sandbox::Runc if !crate::sandbox::runc_available() => {
                return Err(SessionError::Request(
                    "`--sandbox runc` needs `runc` installed and root; use `--sandbox namespaces` (works rootless)"
                        .into(),
                ));
            }
            Sandbox::Runc => Some(Runner::Runc),
        })
    }

    fn destination(&self) -> Result<Destination, SessionError> {
        Ok(match &self.request.output {
            Output::Layout { path, tag } => Destination {
                layout_path: path.clone(),
                tag: tag.clone(),
                publish: None,
                _held: None,
            },
            Output::Store { tag } => Destination {
                layout_path: self.store.images_path(),
                tag: tag.clone(),
                publish: None,
                _held: None,
            },
            // Published images are exported into the store first: its blobs and the layer memo let the next build
            // skip unchanged layers without reading them.
            Output::Registry(r) => {
                let held = self.store.reserve("build")?;
                Destination {
                    layout_path: self.store.images_path(),
                    tag: held.tag().to_owned(),
                    publish: Some(r.clone()),
                    _held: Some(held),
                }
            }
        })
    }

    /// An image by reference, opened once per build: a layout where it is, a registry image pulled into the store
    /// (only the blobs it lacks). `setting` names it in errors (`--run-image REF`).
    fn open(&self, reference: &str, setting: &str) -> Result<Opened, SessionError> {
        if let Some(o) = self
            .opened
            .lock()
            .ok()
            .and_then(|m| m.get(reference).cloned())
        {
            return Ok(o);
        }
        let is_registry = matches!(
            reference.parse::<gp_oci::reference::ImageRef>(),
            Ok(gp_oci::reference::ImageRef::Registry(_))
        );
        if is_registry {
            // A pull before the build is a phase of its own; one during a phase is part of it.
            if self.clock.started() {
                self.clock
                    .event(Event::notice(format!("Pulling {reference}")));
            } else {
                self.clock.start(Phase::Pulling, Some(reference.to_owned()));
            }
        }
        let progress = self.clock.progress_arc();
        let target = reference.to_owned();
        let reporter: gp_oci::registry::Progress = Box::new(move |step| {
            progress.event(Event::Transfer {
                direction: Direction::Pull,
                target: target.clone(),
                step: step.to_string(),
                bytes: step.bytes(),
            });
        });
        let opened = self
            .store
            .open(reference, Some(reporter))
            .map_err(|source| SessionError::Open {
                setting: format!("{setting} {reference}"),
                source,
            })?;
        if is_registry && let Ok(mut m) = self.opened.lock() {
            m.insert(reference.to_owned(), opened.clone());
        }
        Ok(opened)
    }

    /// The run image (as the request or the builder names it), opened.
    fn run_image(
        &self,
        resolved: &builder::Resolved,
    ) -> Result<Option<(Opened, String)>, SessionError> {
        match &resolved.run_image {
            Some(r) => Ok(Some((self.open(r, "--run-image")?, r.clone()))),
            None => Ok(None),
        }
    }

    /// Who owns the files of our layers: the run image's CNB user (as the exporter writes them).
    fn layer_options(
        &self,
        resolved: &builder::Resolved,
    ) -> Result<gp_oci::layer::LayerOptions, SessionError> {
        let run = self.run_image(resolved)?;
        Ok(crate::export::layer_options(
            run.as_ref().map(|(o, _)| (&o.layout, &o.desc)),
        ))
    }

    /// The image a previous build of the same name left (in the output layout, or in the registry when
    /// publishing), for the analyze step; `None` on a first build.
    fn previous_image(&self, dest: &Destination) -> Option<Previous> {
        let layout = Layout::open(&dest.layout_path).ok()?;
        let image = match &dest.publish {
            None => layout.resolve(Some(&dest.tag)).ok()?,
            Some(r) => self
                .store
                .registry(r)
                .ok()?
                .pull_metadata(r, &layout)
                .ok()?,
        };
        Previous::read(&layout, &image)
    }

    #[allow(clippy::too_many_lines)] // the phases in order, each a few lines
    fn phases(
        &self,
        resolved: &builder::Resolved,
        work: &Path,
        dest: &Destination,
        previous: Option<&Previous>,
    ) -> Result<(early::Uploads, BuildOutcome), SessionError> {
        let source = std::path::absolute(&self.request.app)
            .map_err(SessionError::io("resolve", &self.request.app))?;
        let project = project::load(&source)?;
        let platform = work.join("platform");
        let seen_as = if resolved.build_image.is_some() {
            PathBuf::from("/platform")
        } else {
            platform.clone()
        };
        platform_dir::write(self.request, &project, &platform, &seen_as)?;
        let app = project
            .source_dir(&source, work, true) // buildpacks never write into the source directory
            ?;
        let layers = work.join("layers");
        fs_err::create_dir_all(&layers).map_err(SessionError::io("create", &layers))?;

        // The project's own buildpacks (project.toml) replace or wrap the builder's order.
        let builder_order =
            OrderToml::from_path(&resolved.order).map_err(|source| SessionError::PhaseOutput {
                path: resolved.order.clone(),
                source: Box::new(source),
            })?;
        let custom = project.order(&builder_order, &resolved.buildpacks, work)?;
        let target = match self.run_image(resolved)? {
            Some((o, _)) => crate::target::of_image(&o.layout, &o.desc).unwrap_or_default(),
            None => gp_cnb::Target::default(),
        };
        let dirs = Workdirs {
            work,
            app: &app,
            layers: &layers,
            platform: &platform,
            target: &target,
        };
        let uploads = early::Uploads::default();
        let (group, built) = if let Some(image) = &resolved.build_image {
            sandboxed::run(
                self,
                resolved,
                previous,
                image,
                custom.as_ref(),
                dirs,
                &uploads,
            )?
        } else {
            let (order, buildpacks) = match &custom {
                Some((o, extra)) => (
                    o.clone(),
                    sandboxed::merged_buildpacks(&resolved.buildpacks, extra, work)?,
                ),
                None => (builder_order, resolved.buildpacks.clone()),
            };
            self.direct(resolved, previous, &order, &buildpacks, dirs, &uploads)?
        };
        // After the build phase: buildpacks write under `<layers>` and must not choose the project's label.
        project_metadata(&source, &layers, self.request.source.as_ref())?;
        let mut outcome = self.export(resolved, &layers, &app, &group, &built, dest, previous)?;
        // Counted before caching, which moves the layer SBOMs along with their layers.
        outcome.sbom = sbom_formats(&layers);
        caches::save(self, resolved, &layers, &group)?;
        outcome.processes = built
            .metadata
            .processes
            .iter()
            .map(|p| p.kind.to_string())
            .collect();
        Ok((uploads, outcome))
    }

    /// Detect and build in this process (`--sandbox none`), the same sequence the `lifecycle` binary runs.
    fn direct(
        &self,
        resolved: &builder::Resolved,
        previous: Option<&Previous>,
        order: &OrderToml,
        buildpacks: &Path,
        dirs: Workdirs<'_>,
        uploads: &early::Uploads,
    ) -> Result<(GroupToml, Built), SessionError> {
        // Here the phases run in the build image itself: it completes what the run image does not say.
        let target = crate::target::or_running(dirs.target.clone(), Path::new("/"));
        let buildpacks =
            std::path::absolute(buildpacks).map_err(SessionError::io("resolve", buildpacks))?;
        self.clock.start(Phase::Detecting, None);
        let detect_dirs = crate::detect::DetectDirs {
            buildpacks: buildpacks.clone(),
            app: dirs.app.to_path_buf(),
            platform: dirs.platform.to_path_buf(),
            scratch: dirs.work.join("detect"),
            exec_env: "production".into(),
            target: target.clone(),
        };
        let detected = crate::phases::detect_phase(&order.order, &detect_dirs, self.progress())?;
        caches::restore(self, resolved, dirs.layers, &detected.group, previous)?;
        self.clock.start(Phase::Building, None);
        let build_dirs = crate::build::BuildDirs {
            buildpacks,
            layers: dirs.layers.to_path_buf(),
            app: dirs.app.to_path_buf(),
            platform: dirs.platform.to_path_buf(),
            exec_env: "production".into(),
            target,
        };
        let early = early::start(self, resolved, dirs.layers, uploads)?;
        let built = crate::phases::build_phase(
            &detected.group,
            &detected.plan,
            &build_dirs,
            &self.request.process_env,
            self.progress(),
        );
        early::finish(self, early);
        Ok((detected.group, built?))
    }

    /// Exports into the destination layout; the outcome so far.
    #[allow(clippy::too_many_arguments)]
    fn export(
        &self,
        resolved: &builder::Resolved,
        layers: &Path,
        app: &Path,
        group: &GroupToml,
        built: &Built,
        dest: &Destination,
        previous: Option<&Previous>,
    ) -> Result<BuildOutcome, SessionError> {
        self.clock.start(Phase::Exporting, None);
        let out = Layout::create(&dest.layout_path)?;
        let run = self.run_image(resolved)?;
        let mut memo = self.store.memo();
        if dest.layout_path != self.store.images_path()
            && let Ok(store) = Layout::open(&self.store.images_path())
        {
            memo = memo.with_fallback(store);
        }
        let exported = crate::export::export(&crate::export::ExportInput {
            layers,
            app,
            group,
            built,
            launcher: &resolved.launcher,
            run_image: run
                .as_ref()
                .map(|(o, r)| (&o.layout, o.desc.clone(), r.clone())),
            out: &out,
            tag: &dest.tag,
            memo: Some(&memo),
            previous,
            progress: self.progress(),
        })?;
        let img = gp_oci::image::read_image(&out, &exported.manifest)?;
        let reference = format!("oci:{}:{}", dest.layout_path.display(), dest.tag);
        let from_run_image = img.layers.len() - exported.layers.len();
        let reused = previous.map_or(0, |p| {
            exported
                .layers
                .iter()
                .filter(|(_, l)| p.layers.iter().any(|q| q.digest == l.digest))
                .count()
        });
        self.clock.event(Event::Exported {
            reference: dest.publish.is_none().then(|| reference.clone()),
            digest: exported.manifest.digest.to_string(),
            layers: img.layers.len(),
            from_run_image,
        });
        Ok(BuildOutcome {
            reference,
            digest: exported.manifest.digest.to_string(),
            layers: img.layers.len(),
            from_run_image,
            reused,
            uploaded: 0,
            mounted: 0,
            present: 0,
            processes: Vec::new(),
            sbom: Vec::new(),
            phases: Vec::new(),
            buildpacks: group
                .group
                .iter()
                .map(|m| (m.id.to_string(), m.version.to_string()))
                .collect(),
            builder: resolved.image.clone(),
        })
    }

    fn publish(
        &self,
        dest: &Destination,
        target: &gp_oci::reference::RegistryRef,
    ) -> Result<gp_oci::registry::PushStats, SessionError> {
        self.clock.start(Phase::Publishing, None);
        let layout = Layout::open(&dest.layout_path)?;
        let manifest = layout.resolve(Some(&dest.tag))?;
        self.clock.event(Event::Activity {
            label: format!("uploading to {target}"),
            done: false,
        });
        let progress = self.clock.progress_arc();
        let name = target.to_string();
        let registry = self
            .store
            .registry(target)
            .map_err(|e| SessionError::Push(Box::new(e)))?
            .with_progress(move |step| {
                progress.event(Event::Transfer {
                    direction: Direction::Push,
                    target: name.clone(),
                    step: step.to_string(),
                    bytes: step.bytes(),
                });
            });
        let pushed = registry.push(&layout, &manifest, target, None);
        self.clock.event(Event::Activity {
            label: format!("uploading to {target}"),
            done: true,
        });
        let stats = pushed.map_err(|e| SessionError::Push(Box::new(e)))?;
        self.clock.event(Event::Pushed {
            reference: target.to_string(),
            digest: manifest.digest.to_string(),
            uploaded: stats.uploaded,
            mounted: stats.mounted,
            present: stats.present,
            cache: false,
            layers: 0,
        });
        Ok(stats)
    }
}

/// The build's scratch space, created exclusively under a random name: a predictable path in a shared temp
/// directory could be planted (a symlink to somewhere the build would then write).
fn scratch_dir() -> Result<PathBuf, SessionError> {
    tempfile::Builder::new()
        .prefix("goldenpath-build-")
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(SessionError::io("create", std::env::temp_dir()))
}

/// Removes the build's scratch space, including overlay work directories the kernel leaves unreadable.
fn remove_work(work: &Path) {
    if fs_err::remove_dir_all(work).is_err() {
        use std::os::unix::fs::PermissionsExt;
        let mut dirs = vec![work.to_path_buf()];
        let mut i = 0;
        while i < dirs.len() {
            let _ = fs_err::set_permissions(&dirs[i], std::fs::Permissions::from_mode(0o700));
            if let Ok(rd) = fs_err::read_dir(&dirs[i]) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        dirs.push(e.path());
                    }
                }
            }
            i += 1;
        }
        let _ = fs_err::remove_dir_all(work);
    }
}

/// Writes `<layers>/project-metadata.toml` (the exporter's `io.buildpacks.project.metadata`): the source the
/// platform recorded (a git revision), else what the app's `project.toml` declares; an app with neither gets an
/// empty label.
fn project_metadata(
    source: &Path,
    layers: &Path,
    recorded: Option<&gp_cnb::ProjectSource>,
) -> Result<(), SessionError> {
    let out = layers.join(gp_cnb::ProjectMetadata::FILE);
    let _ = fs_err::remove_file(&out);
    if let Some(recorded) = recorded {
        let text = gp_cnb::ProjectMetadata {
            source: Some(recorded.clone()),
        }
        .to_toml_string()
        .map_err(|e| project::ProjectError::Parse(Box::new(e)))?;
        return fs_err::write(&out, text).map_err(SessionError::io("write", &out));
    }
    let path = source.join("project.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text = fs_err::read_to_string(&path).map_err(SessionError::io("read", &path))?;
    let descriptor = gp_cnb::ProjectDescriptor::from_toml_str(&gp_cnb::upgrade_schema_01(&text))
        .map_err(|e| project::ProjectError::Parse(Box::new(e.with_path(&path))))?;
    let text = gp_cnb::ProjectMetadata::from_project(&descriptor)
        .to_toml_string()
        .map_err(|e| project::ProjectError::Parse(Box::new(e)))?;
    fs_err::write(&out, text).map_err(SessionError::io("write", &out))
}

/// The SBOM formats buildpacks wrote (`<layer>.sbom.<ext>`, `launch.sbom.<ext>`), with how many files each.
fn sbom_formats(layers: &Path) -> Vec<(String, usize)> {
    let mut counts = BTreeMap::new();
    for bp in fs_err::read_dir(layers).into_iter().flatten().flatten() {
        for f in fs_err::read_dir(bp.path()).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let format = if name.ends_with(".sbom.cdx.json") {
                "CycloneDX"
            } else if name.ends_with(".sbom.spdx.json") {
                "SPDX"
            } else if name.ends_with(".sbom.syft.json") {
                "Syft"
            } else {
                continue;
            };
            *counts.entry(format).or_insert(0) += 1;
        }
    }
    counts.into_iter().map(|(f, n)| (f.to_owned(), n)).collect()
}
