//! `goldenpath build`: source in, OCI image out, through the CNB phases (detect, restore, build, export).
//!
//! With a builder, detect and build run in the sandbox: the builder's root filesystem (unpacked once per digest),
//! its static `/cnb/lifecycle/lifecycle`, as its CNB user, seeing only `/workspace`, `/layers` and `/platform` of
//! the host. `--sandbox none` runs buildpacks directly, for when goldenpath already runs inside the build image (a
//! kpack-style build pod, a CI container job). Restore, cache and export always run on the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use gp_cnb::{OrderToml, TomlFile};
use gp_lifecycle::analyze::Previous;
use gp_lifecycle::build::{BuildDirs, BuildLog, build};
use gp_lifecycle::detect::{DetectDirs, detect};
use gp_lifecycle::export::{ExportInput, export};
use gp_oci::image::read_image;
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::{cache_dir, exit, registry};

/// Where a build image keeps its buildpacks and order.
const DEFAULT_BUILDPACKS: &str = "/cnb/buildpacks";
const DEFAULT_ORDER: &str = "/cnb/order.toml";

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Where the image goes: `oci:PATH:TAG`, or a name (`app:1`, `registry.example/app:1`): pushed there with
    /// `--publish`, else kept in the embedded store (`$XDG_CACHE_HOME/goldenpath/images`, tag `<name>_<tag>`).
    /// Default: the source directory's name, in the embedded store.
    #[arg(default_value = "")]
    pub image: String,
    /// The application source directory.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// How buildpacks run: `namespaces` (user+mount+PID namespaces in the builder's root filesystem; rootless
    /// works), `runc` (a runc container on the builder's root filesystem; as root), `none` (directly, when already
    /// inside the build image), or `auto`: with a `--builder`, namespaces where the kernel allows them, else runc.
    #[arg(long, value_enum, default_value_t = Sandbox::Auto)]
    pub sandbox: Sandbox,
    /// A builder image (`oci:PATH:TAG` or a registry image, from `goldenpath builder create`): its build image,
    /// buildpacks, order, lifecycle and run image are used (unpacked once per digest into the cache). Default:
    /// `builder` in the user config (`~/.config/goldenpath/config.toml`), else the built-in default builder (made
    /// on first use); inside a build image (with `/cnb/order.toml`) the buildpacks there run directly.
    #[arg(long, env = "GOLDENPATH_BUILDER")]
    pub builder: Option<String>,
    /// The builder's buildpacks (`<id>/<version>/buildpack.toml`).
    #[arg(long, default_value = DEFAULT_BUILDPACKS)]
    pub buildpacks: PathBuf,
    /// The builder's order.
    #[arg(long, default_value = DEFAULT_ORDER)]
    pub order: PathBuf,
    /// Run image to build on (`oci:PATH[:TAG]` or a registry image); default: the builder's. Without one the app
    /// image has only the CNB layers.
    #[arg(long)]
    pub run_image: Option<String>,
    /// The launcher placed at `/cnb/lifecycle/launcher`.
    #[arg(long, default_value = "/cnb/lifecycle/launcher")]
    pub launcher: PathBuf,
    /// Push the image to the registry IMAGE names (it is exported to a local layout first; blobs the registry
    /// already has are not uploaded again).
    #[arg(long)]
    pub publish: bool,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// CA certificates (PEM) buildpacks must trust to reach package registries: passed as a `ca-certificates`
    /// binding and through `SSL_CERT_FILE`, `PIP_CERT`, `REQUESTS_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`.
    /// Default: this machine's trust store (`$SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`). Never
    /// written into images.
    #[arg(long, value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,
    /// Do not pass this machine's CA certificates to buildpacks.
    #[arg(long, conflicts_with = "ca_certs")]
    pub no_host_ca_certs: bool,
    /// Local cache for `cache = true` layers, restored before and saved after the build.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// A registry image as the cache (`registry.example/app-cache:latest`), for machines that keep nothing between
    /// builds: pulled (missing blobs only) and restored before the build, written and pushed after it.
    #[arg(long, value_name = "REF", conflicts_with = "cache")]
    pub cache_image: Option<String>,
    /// Build-time environment variables (`--env NAME=VALUE`), written to the platform directory.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sandbox {
    Auto,
    Namespaces,
    Runc,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    Namespaces,
    Runc,
}

/// What a sandboxed build needs from the builder besides buildpacks and order.
#[derive(Debug, Clone)]
struct BuildImage {
    runner: Runner,
    rootfs: PathBuf,
    env: Vec<(String, String)>,
    uid: u32,
    gid: u32,
}

pub fn run(args: &BuildArgs) -> ExitCode {
    let started = std::time::Instant::now();
    match resolve_defaults(args).and_then(|args| build_image(&args)) {
        Ok(()) => {
            if let Some(phases) = super::phase::summary() {
                eprintln!("*** Phases: {phases}");
            }
            eprintln!("*** Total: {} ms", started.elapsed().as_millis());
            ExitCode::from(exit::OK)
        }
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// Fills in what the command line left out: the image name (the source directory's) and the builder (the
/// user's or the built-in default, unless this already runs inside a build image).
fn resolve_defaults(args: &BuildArgs) -> Result<BuildArgs, (u8, String)> {
    let mut args = args.clone();
    if args.image.is_empty() {
        args.image = default_image_name(&args.path)?;
    }
    // Buildpacks and order named on the command line, or those of the build image this runs in, are used as
    // they are; only a bare `goldenpath build` on a machine gets a builder.
    let own_buildpacks = args.order != Path::new(DEFAULT_ORDER)
        || args.buildpacks != Path::new(DEFAULT_BUILDPACKS)
        || Path::new(DEFAULT_ORDER).is_file();
    if args.builder.is_none() && !own_buildpacks && args.sandbox != Sandbox::None {
        args.builder = Some(super::default_builder::for_build(&args.insecure).map_err(usage)?);
    }
    Ok(args)
}

/// The image name for an app directory: its name, lower-cased, with anything a tag-less image name cannot hold
/// turned into `-`.
fn default_image_name(path: &Path) -> Result<String, (u8, String)> {
    let dir = fs_err::canonicalize(path).map_err(|e| usage(e.to_string()))?;
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    if name.is_empty() {
        return Err(usage(format!(
            "`{}` gives no image name: name the image (`goldenpath build NAME`)",
            dir.display()
        )));
    }
    Ok(name)
}

fn usage(message: impl Into<String>) -> (u8, String) {
    (exit::USAGE, message.into())
}

fn build_image(args: &BuildArgs) -> Result<(), (u8, String)> {
    let runner = match args.sandbox {
        Sandbox::None => None,
        Sandbox::Auto if args.builder.is_none() => None,
        Sandbox::Auto if gp_lifecycle::sandbox::available() => Some(Runner::Namespaces),
        Sandbox::Auto if gp_lifecycle::sandbox::runc_available() => Some(Runner::Runc),
        Sandbox::Auto => {
            eprintln!(
                "note: neither namespaces nor runc are available here: buildpacks run directly (`--sandbox none`)"
            );
            None
        }
        Sandbox::Namespaces | Sandbox::Runc if args.builder.is_none() => {
            return Err(usage(
                "a sandboxed build runs buildpacks in a builder's root filesystem: pass `--builder`",
            ));
        }
        Sandbox::Namespaces => Some(Runner::Namespaces),
        Sandbox::Runc if !gp_lifecycle::sandbox::runc_available() => {
            return Err(usage(
                "`--sandbox runc` needs `runc` installed and root; use `--sandbox namespaces` (works rootless)",
            ));
        }
        Sandbox::Runc => Some(Runner::Runc),
    };
    if let Some(reference) = &args.cache_image {
        cache_image_at(args, reference)?; // a bad reference fails before any work
    }
    let work = scratch_dir()?;
    let parsed = args
        .image
        .parse::<ImageRef>()
        .map_err(|e| usage(e.to_string()))?;
    let (out_path, tag, target) = match parsed {
        ImageRef::Layout { path, tag } if !args.publish => {
            (path, tag.unwrap_or_else(|| "latest".into()), None)
        }
        // Published images are exported into the local store first: its blobs and the layer memo let the next
        // build skip unchanged layers without reading them.
        ImageRef::Registry(r) if args.publish => (
            cache_dir().join("images"),
            format!("build-{}", std::process::id()),
            Some(r),
        ),
        ImageRef::Layout { .. } => {
            return Err(usage(
                "`--publish` needs a registry image (`docker://HOST/NAME:TAG`)",
            ));
        }
        // Not published: the image goes into the embedded store, tagged with its name (`app:1`, `reg/app:1`).
        ImageRef::Registry(_) => {
            // The name as given, `:` as `_` (a layout reference ends at its last `:`): `app:1` -> `app_1`.
            let name = if args
                .image
                .rsplit('/')
                .next()
                .is_some_and(|l| l.contains(':'))
            {
                args.image.clone()
            } else {
                format!("{}:latest", args.image)
            };
            (cache_dir().join("images"), name.replace(':', "_"), None)
        }
    };
    let resolved;
    let mut build_image = None;
    let args = match &args.builder {
        Some(b) => {
            let (a, image) = from_builder(args, b, runner)?;
            resolved = a;
            build_image = image;
            &resolved
        }
        None => args,
    };
    let order = if build_image.is_some() {
        OrderToml::default() // read inside the sandbox
    } else {
        OrderToml::from_path(&args.order).map_err(|e| usage(e.to_string()))?
    };
    let previous = previous_image(&out_path, &tag, target.as_ref(), &args.insecure);
    let result = phases(
        args,
        build_image.as_ref(),
        &order,
        &work,
        (&out_path, &tag),
        previous.as_ref(),
    )
    .and_then(|()| match &target {
        Some(r) => {
            wait_early_uploads();
            let published = publish(&out_path, &tag, r, &args.insecure);
            if let Ok(store) = Layout::open(&out_path) {
                let _ = store.untag(&tag);
            }
            published
        }
        None => Ok(()),
    });
    wait_early_uploads();
    remove_work(&work);
    result
}

/// The build's scratch space, created exclusively under a random name: a predictable path in a shared temp
/// directory could be planted (a symlink to somewhere the build would then write).
fn scratch_dir() -> Result<std::path::PathBuf, (u8, String)> {
    tempfile::Builder::new()
        .prefix("goldenpath-build-")
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| usage(format!("cannot create the build's scratch directory: {e}")))
}

/// Removes the build's scratch space, including overlay work directories the kernel leaves unreadable.
fn remove_work(work: &std::path::Path) {
    if std::fs::remove_dir_all(work).is_err() {
        use std::os::unix::fs::PermissionsExt;
        for e in walkdir(work) {
            let _ = std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o700));
        }
        let _ = std::fs::remove_dir_all(work);
    }
}

fn walkdir(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(rd) = std::fs::read_dir(&out[i]) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                }
            }
        }
        i += 1;
    }
    out
}

/// An image by reference: an OCI layout as it is, or a registry image pulled into the local store (only the blobs
/// it does not have yet).
fn open_image(
    reference: &str,
    flag: &str,
    insecure: &[String],
) -> Result<(Layout, gp_oci::layout::Desc), (u8, String)> {
    // Registry images are resolved once per build (the run image is needed before the build and at export).
    static OPENED: std::sync::Mutex<BTreeMap<String, gp_oci::layout::Desc>> =
        std::sync::Mutex::new(BTreeMap::new());
    if let Some(desc) = OPENED.lock().ok().and_then(|m| m.get(reference).cloned()) {
        let layout = Layout::open(&cache_dir().join("images")).map_err(|e| usage(e.to_string()))?;
        return Ok((layout, desc));
    }
    let opened = open_image_uncached(reference, flag, insecure)?;
    if matches!(reference.parse::<ImageRef>(), Ok(ImageRef::Registry(_)))
        && let Ok(mut m) = OPENED.lock()
    {
        m.insert(reference.to_owned(), opened.1.clone());
    }
    Ok(opened)
}

fn open_image_uncached(
    reference: &str,
    flag: &str,
    insecure: &[String],
) -> Result<(Layout, gp_oci::layout::Desc), (u8, String)> {
    let parsed = reference
        .parse::<ImageRef>()
        .map_err(|e| usage(format!("`{flag} {reference}`: {e}")))?;
    match parsed {
        ImageRef::Layout { path, tag } => {
            let layout = Layout::open(&path).map_err(|e| usage(e.to_string()))?;
            let desc = layout
                .resolve(tag.as_deref())
                .map_err(|e| usage(format!("`{flag} {reference}`: {e}")))?;
            Ok((layout, desc))
        }
        ImageRef::Registry(r) => {
            // A pull before the build is a phase of its own; one during a phase is part of it.
            if super::phase::durations().is_empty() {
                super::phase::start(&format!("PULLING {r}"));
            } else {
                eprintln!("Pulling {r}");
            }
            let layout =
                Layout::create(&cache_dir().join("images")).map_err(|e| usage(e.to_string()))?;
            let registry =
                registry(&r, insecure).map_err(|e| (62, format!("`{flag} {reference}`: {e}")))?;
            let desc = registry
                .pull(&r, &layout)
                .map_err(|e| (62, format!("`{flag} {reference}`: {e}")))?;
            Ok((layout, desc))
        }
    }
}

/// Unpacks `img` into `dest`, beside and then renamed: an interrupted unpack never passes for a complete one.
fn unpack(
    layout: &Layout,
    img: &gp_oci::image::Image,
    dest: &std::path::Path,
) -> Result<(), (u8, String)> {
    let readers = img.layers.iter().map(|l| {
        gp_oci::image::open_layer(layout, l)
            .map_err(|e| gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string())))
    });
    // The unpacker stages into a fresh sibling and renames it into place; when another build unpacked the same
    // builder first, its complete tree is there and is used.
    match gp_oci::unpack::unpack_layers(readers, dest) {
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(usage(format!("cannot unpack the builder: {e}"))),
        Ok(()) => Ok(()),
    }
}

/// Takes buildpacks, order, launcher (and the run image, unless given) from a builder image.
fn from_builder(
    args: &BuildArgs,
    builder: &str,
    runner: Option<Runner>,
) -> Result<(BuildArgs, Option<BuildImage>), (u8, String)> {
    use gp_cnb::{BuilderMetadata, JsonLabel};
    let (layout, desc) = open_image(builder, "--builder", &args.insecure)?;
    let img = read_image(&layout, &desc).map_err(|e| usage(e.to_string()))?;
    let cache = cache_dir().join("builders").join(desc.digest.hex());
    if !cache.is_dir() {
        super::phase::start("UNPACKING the builder (once per builder digest)");
        let _spinner = crate::progress::Activity::spinner("unpacking the builder");
        unpack(&layout, &img, &cache)?;
    }
    let run_image = args.run_image.clone().or_else(|| {
        let label = img.config.label(BuilderMetadata::KEY)?;
        let meta = BuilderMetadata::from_label(label).ok()?;
        meta.images.first().map(|r| r.image.clone())
    });
    let env: Vec<(String, String)> = img
        .config
        .env_vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let id = |name: &str| -> Result<u32, (u8, String)> {
        let value = env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        value
            .ok_or_else(|| {
                usage(format!(
                    "the builder's image config has no `{name}`: a build image must name its CNB user"
                ))
            })?
            .parse()
            .map_err(|_| usage(format!("the builder's `{name}` is not a number")))
    };
    let mut runner = runner;
    if runner.is_some() && !cache.join("cnb/lifecycle/lifecycle").is_file() {
        if args.sandbox != Sandbox::Auto {
            return Err(usage(
                "the builder has no `/cnb/lifecycle/lifecycle` for sandboxed builds: recreate it with `goldenpath builder create --lifecycle`, or build with `--sandbox none` inside the build image",
            ));
        }
        eprintln!(
            "note: the builder has no `/cnb/lifecycle/lifecycle`: buildpacks run directly (`--sandbox none`)"
        );
        runner = None;
    }
    let image = if let Some(runner) = runner {
        Some(BuildImage {
            runner,
            rootfs: cache.clone(),
            uid: id("CNB_USER_ID")?,
            gid: id("CNB_GROUP_ID")?,
            env: env.clone(),
        })
    } else {
        None
    };
    let resolved = BuildArgs {
        image: args.image.clone(),
        path: args.path.clone(),
        sandbox: args.sandbox,
        builder: None,
        buildpacks: cache.join("cnb/buildpacks"),
        order: cache.join("cnb/order.toml"),
        run_image,
        launcher: cache.join("cnb/lifecycle/launcher"),
        publish: args.publish,
        insecure: args.insecure.clone(),
        env: args.env.clone(),
        cache: args.cache.clone(),
        cache_image: args.cache_image.clone(),
        ca_certs: args.ca_certs.clone(),
        no_host_ca_certs: args.no_host_ca_certs,
    };
    Ok((resolved, image))
}

fn publish(
    layout: &std::path::Path,
    tag: &str,
    target: &gp_oci::reference::RegistryRef,
    insecure: &[String],
) -> Result<(), (u8, String)> {
    super::phase::start("PUBLISHING");
    let layout = Layout::open(layout).map_err(|e| usage(e.to_string()))?;
    let desc = layout
        .resolve(Some(tag))
        .map_err(|e| usage(e.to_string()))?;
    let activity = crate::progress::Activity::spinner(&format!("uploading to {target}"));
    let registry = registry(target, insecure)
        .map_err(|e| (62, e.to_string()))?
        .with_progress(activity.reporter());
    let stats = registry
        .push(&layout, &desc, target, None)
        .map_err(|e| (62, e.to_string()))?;
    eprintln!(
        "*** Published {target}@{}: {} blob(s) uploaded, {} mounted, {} already there",
        desc.digest, stats.uploaded, stats.mounted, stats.present
    );
    Ok(())
}

fn io(e: impl std::fmt::Display) -> (u8, String) {
    usage(e.to_string())
}

/// Where buildpacks see the platform directory: `/platform` in the sandbox, the host path otherwise.
fn platform_dir(
    args: &BuildArgs,
    project: &super::project::Project,
    platform: &std::path::Path,
    seen_as: &std::path::Path,
) -> Result<(), (u8, String)> {
    std::fs::create_dir_all(platform.join("env")).map_err(io)?;
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("`--env {kv}`: write NAME=VALUE")))?;
        std::fs::write(platform.join("env").join(k), v).map_err(io)?;
    }
    let host_ca = || {
        std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .or_else(|| {
                let debian = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
                debian.is_file().then_some(debian)
            })
    };
    let ca_certs = match &args.ca_certs {
        Some(c) => Some(c.clone()),
        None if args.no_host_ca_certs => None,
        None => host_ca(),
    };
    if let Some(ca) = &ca_certs {
        let binding = platform.join("bindings/ca-certificates");
        std::fs::create_dir_all(&binding).map_err(io)?;
        std::fs::write(binding.join("type"), "ca-certificates").map_err(io)?;
        std::fs::copy(ca, binding.join("ca.crt"))
            .map_err(|e| usage(format!("`--ca-certs {}`: {e}", ca.display())))?;
        let file = seen_as.join("bindings/ca-certificates/ca.crt");
        for var in [
            "SSL_CERT_FILE",
            "PIP_CERT",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ] {
            std::fs::write(
                platform.join("env").join(var),
                file.as_os_str().as_encoded_bytes(),
            )
            .map_err(io)?;
        }
    }
    for (k, v) in &project.env {
        let file = platform.join("env").join(k);
        if !file.exists() {
            std::fs::write(file, v).map_err(io)?; // `--env` wins over project.toml
        }
    }
    Ok(())
}

/// The image a previous build of the same name left (in the output layout, or in the registry when publishing),
/// for the analyze step; `None` on a first build.
fn previous_image(
    out_path: &std::path::Path,
    tag: &str,
    target: Option<&gp_oci::reference::RegistryRef>,
    insecure: &[String],
) -> Option<Previous> {
    let layout = Layout::open(out_path).ok()?;
    let desc = match target {
        None => layout.resolve(Some(tag)).ok()?,
        Some(r) => registry(r, insecure).ok()?.pull_metadata(r, &layout).ok()?,
    };
    Previous::read(&layout, &desc)
}

fn phases(
    args: &BuildArgs,
    sandbox: Option<&BuildImage>,
    order: &OrderToml,
    work: &std::path::Path,
    (out_path, tag): (&std::path::Path, &str),
    previous: Option<&Previous>,
) -> Result<(), (u8, String)> {
    let abs = |p: &std::path::Path| {
        std::path::absolute(p).map_err(|e| usage(format!("`{}`: {e}", p.display())))
    };
    let source = abs(&args.path)?;
    if !source.is_dir() {
        return Err(usage(format!(
            "`--path {}`: not a directory",
            args.path.display()
        )));
    }
    let project = super::project::load(&source).map_err(usage)?;
    let platform = work.join("platform");
    let seen_as = if sandbox.is_some() {
        PathBuf::from("/platform")
    } else {
        platform.clone()
    };
    platform_dir(args, &project, &platform, &seen_as)?;
    let app = project
        .source_dir(&source, work, true) // buildpacks never write into the source directory
        .map_err(usage)?;
    let layers = work.join("layers");
    std::fs::create_dir_all(&layers).map_err(io)?;

    // The project's own buildpacks (project.toml) replace or wrap the builder's order.
    let (builder_order, builder_bps) = match sandbox {
        Some(image) => (
            OrderToml::from_path(image.rootfs.join("cnb/order.toml")).map_err(io)?,
            image.rootfs.join("cnb/buildpacks"),
        ),
        None => (order.clone(), args.buildpacks.clone()),
    };
    let custom = project
        .order(&builder_order, &builder_bps, work)
        .map_err(usage)?;
    let target = run_image_target(args)?;
    let workdirs = Workdirs {
        work,
        app: &app,
        layers: &layers,
        platform: &platform,
        target: &target,
    };
    let (group, built) = if let Some(image) = sandbox {
        sandboxed(args, previous, image, custom.as_ref(), workdirs)?
    } else {
        let (order, buildpacks) = match &custom {
            Some((o, extra)) => (o.clone(), merged_buildpacks(&builder_bps, extra, work)?),
            None => (order.clone(), args.buildpacks.clone()),
        };
        direct(args, previous, &order, &buildpacks, workdirs)?
    };
    // After the build phase: buildpacks write under `<layers>` and must not choose the project's label.
    project_metadata(&source, &layers)?;
    export_phase(
        args,
        &layers,
        &app,
        &group,
        &built,
        (out_path, tag),
        previous,
    )?;
    // Counted before caching, which moves the layer SBOMs along with their layers.
    let formats = sbom_formats(&layers);
    if args.cache.is_some() || args.cache_image.is_some() {
        super::phase::start("CACHING");
    }
    if let Some(cache) = &args.cache {
        let saved = gp_lifecycle::cache::save(cache, &layers, &group)
            .map_err(|e| (62, format!("cannot save the cache: {e}")))?;
        eprintln!("Cached {} layer(s)", saved.len());
    }
    if let Some(reference) = &args.cache_image {
        save_cache_image(args, reference, &layers, &group)?;
    }
    let processes: Vec<String> = built
        .metadata
        .processes
        .iter()
        .map(|p| p.kind.to_string())
        .collect();
    eprintln!("*** Processes: {}", processes.join(", "));
    if !formats.is_empty() {
        eprintln!("*** SBOM: {}", formats.join(", "));
    }
    Ok(())
}

/// Writes `<layers>/project-metadata.toml` (the exporter's `io.buildpacks.project.metadata`) from the app's
/// `project.toml`; an app without one gets an empty label.
fn project_metadata(
    source: &std::path::Path,
    layers: &std::path::Path,
) -> Result<(), (u8, String)> {
    let out = layers.join(gp_cnb::ProjectMetadata::FILE);
    let _ = std::fs::remove_file(&out);
    let path = source.join("project.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| usage(format!("`{}`: {e}", path.display())))?;
    let descriptor = gp_cnb::ProjectDescriptor::from_toml_str(&gp_cnb::upgrade_schema_01(&text))
        .map_err(|e| usage(e.with_path(&path).to_string()))?;
    let text = gp_cnb::ProjectMetadata::from_project(&descriptor)
        .to_toml_string()
        .map_err(io)?;
    std::fs::write(&out, text).map_err(io)
}

/// The SBOM formats buildpacks wrote (`<layer>.sbom.<ext>`, `launch.sbom.<ext>`), with how many files each.
fn sbom_formats(layers: &std::path::Path) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::new();
    for bp in std::fs::read_dir(layers).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(bp.path()).into_iter().flatten().flatten() {
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
    counts
        .into_iter()
        .map(|(f, n)| format!("{f} ({n} file(s))"))
        .collect()
}

fn restore(
    args: &BuildArgs,
    layers: &std::path::Path,
    group: &gp_cnb::GroupToml,
    previous: Option<&Previous>,
) -> Result<(), (u8, String)> {
    if args.cache.is_some() || args.cache_image.is_some() || previous.is_some() {
        super::phase::start("RESTORING");
    }
    if let Some(reference) = &args.cache_image {
        restore_cache_image(args, reference, layers, group)?;
    }
    if let Some(cache) = &args.cache {
        let restored = gp_lifecycle::cache::restore(cache, layers, group)
            .map_err(|e| (42, format!("cannot restore the cache: {e}")))?;
        for r in &restored {
            eprintln!("Restored {r}");
        }
    }
    if let Some(p) = previous {
        let restored = gp_lifecycle::analyze::restore_metadata(p, group, layers)
            .map_err(|e| (42, format!("cannot restore layer metadata: {e}")))?;
        for r in &restored {
            eprintln!("Restored metadata of {r} (from the previous image)");
        }
    }
    Ok(())
}

/// The cache image's reference, the local store and memo its layers go through, and its registry.
struct CacheImageAt {
    reference: gp_oci::reference::RegistryRef,
    store: Layout,
    memo: gp_oci::memo::Memo,
    registry: gp_oci::registry::Registry,
}

fn cache_image_at(args: &BuildArgs, reference: &str) -> Result<CacheImageAt, (u8, String)> {
    let r = match reference.parse::<ImageRef>() {
        Ok(ImageRef::Registry(r)) => r,
        Ok(ImageRef::Layout { .. }) => {
            return Err(usage(format!(
                "`--cache-image {reference}`: a cache image lives in a registry; for a local cache use `--cache DIR`"
            )));
        }
        Err(e) => return Err(usage(format!("`--cache-image {reference}`: {e}"))),
    };
    let store = Layout::create(&cache_dir().join("images")).map_err(|e| usage(e.to_string()))?;
    let registry = registry(&r, &args.insecure)
        .map_err(|e| (62, format!("`--cache-image {reference}`: {e}")))?;
    Ok(CacheImageAt {
        reference: r,
        store,
        memo: gp_oci::memo::Memo::new(&cache_dir().join("layer-memo")),
        registry,
    })
}

/// Who owns the files of our layers: the run image's CNB user (as the exporter writes them).
fn layer_options(args: &BuildArgs) -> Result<gp_oci::layer::LayerOptions, (u8, String)> {
    let run = match &args.run_image {
        Some(r) => Some(open_image(r, "--run-image", &args.insecure)?),
        None => None,
    };
    Ok(gp_lifecycle::export::layer_options(
        run.as_ref().map(|(l, d)| (l, d)),
    ))
}

/// Pulls the cache image (a first build has none: noted, not an error) and restores the group's layers from it.
fn restore_cache_image(
    args: &BuildArgs,
    reference: &str,
    layers: &std::path::Path,
    group: &gp_cnb::GroupToml,
) -> Result<(), (u8, String)> {
    use gp_lifecycle::cache_image::{CacheImage, restore};
    let at = cache_image_at(args, reference)?;
    let desc = match at.registry.pull(&at.reference, &at.store) {
        Ok(d) => d,
        Err(e) => {
            let text = e.to_string();
            let absent = [
                "manifest unknown",
                "MANIFEST_UNKNOWN",
                "NAME_UNKNOWN",
                "not found",
                "404",
            ]
            .iter()
            .any(|m| text.contains(m));
            if absent {
                eprintln!("No cache image to restore from yet ({reference})");
            } else {
                // Building without the cache is still right; the push at the end will say if access is the problem.
                eprintln!("warning: cannot pull the cache image, building without it: {text}");
            }
            return Ok(());
        }
    };
    let image = CacheImage::read(&at.store, &desc)
        .map_err(|e| (42, format!("`--cache-image {reference}`: {e}")))?;
    let opts = layer_options(args)?;
    let restored = restore(&image, &at.store, layers, group, Some((&at.memo, &opts)))
        .map_err(|e| (42, format!("cannot restore the cache image: {e}")))?;
    for name in &restored {
        eprintln!("Restored {name} (from the cache image)");
    }
    Ok(())
}

/// Writes the cache image of this build's `cache = true` layers and pushes it.
fn save_cache_image(
    args: &BuildArgs,
    reference: &str,
    layers: &std::path::Path,
    group: &gp_cnb::GroupToml,
) -> Result<(), (u8, String)> {
    let at = cache_image_at(args, reference)?;
    let tag = format!("cache-{}", std::process::id());
    let (desc, names) = gp_lifecycle::cache_image::save(
        &at.store,
        &tag,
        layers,
        group,
        Some(&at.memo),
        &layer_options(args)?,
    )
    .map_err(|e| (62, format!("cannot write the cache image: {e}")))?;
    let r = &at.reference;
    let pushed = at.registry.push(&at.store, &desc, r, None);
    let _ = at.store.untag(&tag);
    let stats = pushed.map_err(|e| (62, format!("cannot push the cache image: {e}")))?;
    eprintln!(
        "*** Cache image: {r}@{} ({} layer(s); {} blob(s) uploaded, {} mounted, {} already there)",
        desc.digest,
        names.len(),
        stats.uploaded,
        stats.mounted,
        stats.present
    );
    Ok(())
}

/// Detect and build in this process (`--sandbox none`).
/// For `--sandbox none`: a buildpacks directory with the builder's buildpacks (linked) and the project's.
fn merged_buildpacks(
    builder: &std::path::Path,
    extra: &[super::project::ExtraBuildpack],
    work: &std::path::Path,
) -> Result<PathBuf, (u8, String)> {
    let merged = work.join("buildpacks");
    let link = |from: &std::path::Path, to: &std::path::Path| -> Result<(), (u8, String)> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(std::path::absolute(from).map_err(io)?, to).map_err(io)
    };
    for id in std::fs::read_dir(builder).map_err(io)?.flatten() {
        for version in std::fs::read_dir(id.path()).map_err(io)?.flatten() {
            link(
                &version.path(),
                &merged.join(id.file_name()).join(version.file_name()),
            )?;
        }
    }
    for e in extra {
        link(
            &e.dir,
            &merged.join(e.id.replace('/', "_")).join(&e.version),
        )?;
    }
    Ok(merged)
}

/// The build's directories on the host.
#[derive(Debug, Clone, Copy)]
struct Workdirs<'a> {
    work: &'a std::path::Path,
    app: &'a std::path::Path,
    layers: &'a std::path::Path,
    platform: &'a std::path::Path,
    /// The run image's target (`CNB_TARGET_*`), as far as it says.
    target: &'a gp_cnb::Target,
}

/// The run image's target, for `CNB_TARGET_*` in detect and build.
fn run_image_target(args: &BuildArgs) -> Result<gp_cnb::Target, (u8, String)> {
    let Some(r) = &args.run_image else {
        return Ok(gp_cnb::Target::default());
    };
    let (layout, desc) = open_image(r, "--run-image", &args.insecure)?;
    Ok(gp_lifecycle::target::of_image(&layout, &desc).unwrap_or_default())
}

fn direct(
    args: &BuildArgs,
    previous: Option<&Previous>,
    order: &OrderToml,
    buildpacks: &std::path::Path,
    dirs: Workdirs<'_>,
) -> Result<(gp_cnb::GroupToml, gp_lifecycle::build::Built), (u8, String)> {
    let Workdirs {
        work,
        app,
        layers,
        platform,
        target,
    } = dirs;
    // Here the phases run in the build image itself: it completes what the run image does not say.
    let target = gp_lifecycle::target::or_running(target.clone(), std::path::Path::new("/"));
    let buildpacks = std::path::absolute(buildpacks).map_err(io)?;
    super::phase::start("DETECTING");
    let dirs = DetectDirs {
        buildpacks: buildpacks.clone(),
        app: app.to_path_buf(),
        platform: platform.to_path_buf(),
        scratch: work.join("detect"),
        exec_env: "production".into(),
        target: target.clone(),
    };
    let detected = detect(&order.order, &dirs).map_err(|e| {
        if let gp_lifecycle::detect::DetectError::NoGroup { log, .. } = &e {
            for l in log {
                eprintln!("{l}");
            }
        }
        (e.exit_code(), e.to_string())
    })?;
    for m in &detected.group.group {
        eprintln!("{} {}", m.id, m.version);
    }
    restore(args, layers, &detected.group, previous)?;
    super::phase::start("BUILDING");
    let bd = BuildDirs {
        buildpacks,
        layers: layers.to_path_buf(),
        app: app.to_path_buf(),
        platform: platform.to_path_buf(),
        exec_env: "production".into(),
        target,
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut log = BuildLog {
        echo: true,
        ..BuildLog::default()
    };
    let early = early_export(args, layers)?;
    let built = build(&detected.group, &detected.plan, &bd, &env, &mut log);
    report_early(early);
    let built = built.map_err(|e| (e.exit_code(), e.to_string()))?;
    let total: u128 = log.timings.iter().map(|(_, d)| d.as_millis()).sum();
    eprintln!("*** Buildpacks ran for {total} ms");
    Ok((detected.group, built))
}

/// Detect and build inside the builder's root filesystem, as its CNB user.
fn sandboxed(
    args: &BuildArgs,
    previous: Option<&Previous>,
    image: &BuildImage,
    custom: Option<&(OrderToml, Vec<super::project::ExtraBuildpack>)>,
    dirs: Workdirs<'_>,
) -> Result<(gp_cnb::GroupToml, gp_lifecycle::build::Built), (u8, String)> {
    use gp_lifecycle::sandbox::{Mount, Spec, run};
    let Workdirs {
        work,
        app,
        layers,
        platform,
        target,
    } = dirs;
    let exe = std::env::current_exe().map_err(io)?;
    let mut env = image.env.clone();
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), home_of(&image.rootfs, image.uid)));
    }
    env.push(("CNB_PLATFORM_API".into(), "0.15".into()));
    // The lifecycle completes these from the build image (`/etc/os-release`, its architecture).
    env.retain(|(k, _)| !k.starts_with("CNB_TARGET_"));
    env.extend(
        gp_lifecycle::target::env_vars(target)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let mut extra_mounts = Vec::new();
    if let Some((order, extra)) = custom {
        // The spec's `<layers>/order.toml` takes precedence over the builder's `/cnb/order.toml`.
        let text = order.to_toml_string().map_err(io)?;
        std::fs::write(layers.join("order.toml"), text).map_err(io)?;
        for e in extra {
            extra_mounts.push(Mount {
                host: std::path::absolute(&e.dir).map_err(io)?,
                target: format!("/cnb/buildpacks/{}/{}", e.id.replace('/', "_"), e.version),
                read_only: true,
            });
        }
    }
    let spec = |phase: &str| Spec {
        rootfs: image.rootfs.clone(),
        scratch: work.join(format!("sandbox-{phase}")),
        mounts: vec![
            Mount {
                host: app.to_path_buf(),
                target: "/workspace".into(),
                read_only: false,
            },
            Mount {
                host: layers.to_path_buf(),
                target: "/layers".into(),
                read_only: false,
            },
            Mount {
                host: platform.to_path_buf(),
                target: "/platform".into(),
                read_only: true,
            },
        ]
        .into_iter()
        .chain(extra_mounts.iter().cloned())
        .collect(),
        uid: image.uid,
        gid: image.gid,
        argv: vec!["/cnb/lifecycle/lifecycle".into(), phase.into()],
        env: env.clone(),
        cwd: "/workspace".into(),
    };
    let phase = |name: &str| -> Result<(), (u8, String)> {
        let spec = spec(name);
        let status = match image.runner {
            Runner::Namespaces => run(&exe, &spec),
            Runner::Runc => gp_lifecycle::sandbox::run_runc(&spec),
        }
        .map_err(|e| (62, e.to_string()))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => Err((
                u8::try_from(code).unwrap_or(1),
                format!("the {name} phase failed with exit code {code} (its output is above)"),
            )),
            None => Err((1, format!("the {name} phase was killed"))),
        }
    };
    give_to(app, image)?;
    give_to(layers, image)?;
    super::phase::start("DETECTING");
    phase("detect")?;
    let group = gp_cnb::GroupToml::from_path(layers.join("group.toml")).map_err(io)?;
    restore(args, layers, &group, previous)?;
    give_to(layers, image)?;
    super::phase::start("BUILDING");
    let early = early_export(args, layers)?;
    let result = phase("build");
    report_early(early);
    result?;
    let built = gp_lifecycle::build::Built::from_layers(layers).map_err(io)?;
    Ok((group, built))
}

/// Starts writing settled launch layers while buildpacks run (see `gp_lifecycle::speculate`), into the embedded
/// store: a layer that changes after it was written early leaves an unreferenced blob, which a cache may hold but a
/// layout the user named should not. The exporter's memo takes them from there (`Memo::with_fallback`).
fn early_export(
    args: &BuildArgs,
    layers: &std::path::Path,
) -> Result<Option<gp_lifecycle::speculate::Speculator>, (u8, String)> {
    let layout = Layout::create(&cache_dir().join("images")).map_err(|e| usage(e.to_string()))?;
    let memo = gp_oci::memo::Memo::new(&cache_dir().join("layer-memo"));
    // Publishing: each early layer is also uploaded right away, on a thread of its own that may go on while the
    // export runs; the push at the end waits for it and then finds those blobs there.
    let upload: Option<gp_lifecycle::speculate::AfterWrite> = match args.image.parse::<ImageRef>() {
        Ok(ImageRef::Registry(target)) if args.publish => {
            let (tx, rx) = std::sync::mpsc::channel::<gp_oci::layout::Desc>();
            let insecure = args.insecure.clone();
            let store = layout.clone();
            let uploader = std::thread::spawn(move || {
                let Ok(reg) = registry(&target, &insecure) else {
                    return;
                };
                for desc in rx {
                    let _ = reg.push_blobs(&store, &[desc], &target); // a failure here is retried by the push
                }
            });
            if let Ok(mut pending) = EARLY_UPLOADS.lock() {
                pending.push(uploader);
            }
            Some(Box::new(
                move |_: &Layout, info: &gp_oci::layer::LayerInfo| {
                    let desc =
                        gp_oci::layout::Desc::new(info.media_type, info.digest.clone(), info.size);
                    let _ = tx.send(desc);
                },
            ))
        }
        _ => None,
    };
    Ok(Some(gp_lifecycle::speculate::Speculator::start_with(
        layers,
        layout,
        memo,
        layer_options(args)?,
        upload,
    )))
}

/// Uploads of layers written early, still going when the build phase ends.
static EARLY_UPLOADS: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits for the early uploads (before the image is pushed).
fn wait_early_uploads() {
    let pending = EARLY_UPLOADS
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    for h in pending {
        let _ = h.join();
    }
}

fn report_early(early: Option<gp_lifecycle::speculate::Speculator>) {
    let n = early.map_or(0, gp_lifecycle::speculate::Speculator::finish);
    if n > 0 {
        eprintln!("Wrote {n} settled launch layer(s) while buildpacks ran");
    }
}

/// The CNB user's home directory from the build image's `/etc/passwd` (`/` when it has none).
fn home_of(rootfs: &std::path::Path, uid: u32) -> String {
    std::fs::read_to_string(rootfs.join("etc/passwd"))
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2] == uid.to_string()).then(|| f[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".into())
}

/// As root, hands `dir` (recursively) to the CNB user, who writes it in the sandbox. Rootless, the calling user
/// already is the CNB user inside.
fn give_to(dir: &std::path::Path, image: &BuildImage) -> Result<(), (u8, String)> {
    if !nix_root() {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&d).map_err(io)?;
        // Only where needed: a chown changes nothing else, but skipping it keeps a no-change rebuild cheap.
        if (meta.uid(), meta.gid()) != (image.uid, image.gid) {
            std::os::unix::fs::lchown(&d, Some(image.uid), Some(image.gid))
                .map_err(|e| usage(format!("cannot chown {}: {e}", d.display())))?;
        }
        if !meta.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&d).map_err(io)?.flatten() {
            stack.push(e.path());
        }
    }
    Ok(())
}

fn nix_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Exports into the layout at `out_path` and prints the summary.
fn export_phase(
    args: &BuildArgs,
    layers: &std::path::Path,
    app: &std::path::Path,
    group: &gp_cnb::GroupToml,
    built: &gp_lifecycle::build::Built,
    (out_path, tag): (&std::path::Path, &str),
    previous: Option<&Previous>,
) -> Result<(), (u8, String)> {
    super::phase::start("EXPORTING");
    let out = Layout::create(out_path).map_err(|e| usage(e.to_string()))?;
    let run = match &args.run_image {
        Some(r) => {
            let (layout, desc) = open_image(r, "--run-image", &args.insecure)?;
            Some((layout, desc, r.clone()))
        }
        None => None,
    };
    let mut memo = gp_oci::memo::Memo::new(&cache_dir().join("layer-memo"));
    if out_path != cache_dir().join("images")
        && let Ok(store) = Layout::open(&cache_dir().join("images"))
    {
        memo = memo.with_fallback(store);
    }
    let exported = export(&ExportInput {
        layers,
        app,
        group,
        built,
        launcher: &args.launcher,
        run_image: run.as_ref().map(|(l, d, r)| (l, d.clone(), r.clone())),
        out: &out,
        tag,
        memo: Some(&memo),
        previous,
    })
    .map_err(|e| (62, e.to_string()))?;
    let img = read_image(&out, &exported.manifest).map_err(|e| usage(e.to_string()))?;
    if !args.publish {
        eprintln!(
            "*** Image: oci:{}:{tag}@{}",
            out_path.display(),
            exported.manifest.digest
        );
    }
    eprintln!(
        "*** Layers: {} ({} from the run image)",
        img.layers.len(),
        img.layers.len() - exported.layers.len()
    );
    Ok(())
}
