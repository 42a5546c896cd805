//! `goldenpath build`: source in, OCI image out, through the CNB phases (detect, build, export).
//!
//! This build runs buildpacks directly (`--sandbox none`): for when goldenpath already runs inside the build
//! image (a kpack-style build pod, a CI container job), with the builder's `/cnb/buildpacks` and `/cnb/order.toml`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use gp_cnb::{OrderToml, TomlFile};
use gp_lifecycle::build::{BuildDirs, BuildLog, build};
use gp_lifecycle::detect::{DetectDirs, detect};
use gp_lifecycle::export::{ExportInput, export};
use gp_oci::image::read_image;
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Where the image goes: `oci:PATH:TAG`.
    pub image: String,
    /// The application source directory.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// How buildpacks run.
    #[arg(long, value_enum, default_value_t = Sandbox::None)]
    pub sandbox: Sandbox,
    /// A builder image (`oci:PATH:TAG`, from `goldenpath builder create`): its buildpacks, order, launcher and
    /// run image are used (unpacked once per digest into the cache).
    #[arg(long)]
    pub builder: Option<String>,
    /// The builder's buildpacks (`<id>/<version>/buildpack.toml`).
    #[arg(long, default_value = "/cnb/buildpacks")]
    pub buildpacks: PathBuf,
    /// The builder's order.
    #[arg(long, default_value = "/cnb/order.toml")]
    pub order: PathBuf,
    /// Run image to build on (`oci:PATH[:TAG]`); without one the app image has only the CNB layers.
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
    #[arg(long, value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,
    /// Local cache for `cache = true` layers, restored before and saved after the build.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Build-time environment variables (`--env NAME=VALUE`), written to the platform directory.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Sandbox {
    Auto,
    Namespaces,
    Runc,
    None,
}

pub fn run(args: &BuildArgs) -> ExitCode {
    match build_image(args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn usage(message: impl Into<String>) -> (u8, String) {
    (exit::USAGE, message.into())
}

fn build_image(args: &BuildArgs) -> Result<(), (u8, String)> {
    if !matches!(args.sandbox, Sandbox::None) {
        return Err(usage(
            "only `--sandbox none` is available in this build: run goldenpath inside the build image",
        ));
    }
    let work = std::env::temp_dir().join(format!("goldenpath-build-{}", std::process::id()));
    let parsed = args
        .image
        .parse::<ImageRef>()
        .map_err(|e| usage(e.to_string()))?;
    let (out_path, tag, target) = match parsed {
        ImageRef::Layout { path, tag } if !args.publish => {
            (path, tag.unwrap_or_else(|| "latest".into()), None)
        }
        ImageRef::Registry(r) if args.publish => (work.join("image"), "image".to_owned(), Some(r)),
        ImageRef::Layout { .. } => {
            return Err(usage(
                "`--publish` needs a registry image (`docker://HOST/NAME:TAG`)",
            ));
        }
        ImageRef::Registry(_) => {
            return Err(usage(
                "a registry image needs `--publish`; or write to a layout: `oci:PATH:TAG`",
            ));
        }
    };
    let resolved;
    let args = match &args.builder {
        Some(b) => {
            resolved = from_builder(args, b)?;
            &resolved
        }
        None => args,
    };
    let order = OrderToml::from_path(&args.order).map_err(|e| usage(e.to_string()))?;
    let result = phases(args, &order, &work, &out_path, &tag).and_then(|()| match &target {
        Some(r) => publish(&out_path, &tag, r, &args.insecure),
        None => Ok(()),
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Takes buildpacks, order, launcher (and the run image, unless given) from a builder image.
fn from_builder(args: &BuildArgs, builder: &str) -> Result<BuildArgs, (u8, String)> {
    use gp_cnb::{BuilderMetadata, JsonLabel};
    let ImageRef::Layout { path, tag } = builder
        .parse::<ImageRef>()
        .map_err(|e| usage(e.to_string()))?
    else {
        return Err(usage(
            "`--builder` must be an OCI layout reference here: `oci:PATH:TAG`",
        ));
    };
    let layout = Layout::open(&path).map_err(|e| usage(e.to_string()))?;
    let desc = layout
        .resolve(tag.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    let img = read_image(&layout, &desc).map_err(|e| usage(e.to_string()))?;
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("goldenpath/builders")
        .join(desc.digest.hex());
    if !cache.is_dir() {
        let readers = img.layers.iter().map(|l| {
            gp_oci::image::open_layer(&layout, l).map_err(|e| {
                gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string()))
            })
        });
        gp_oci::unpack::unpack_layers(readers, &cache)
            .map_err(|e| usage(format!("cannot unpack the builder: {e}")))?;
    }
    let run_image = args.run_image.clone().or_else(|| {
        let label = img.config["config"]["Labels"][BuilderMetadata::KEY].as_str()?;
        let meta = BuilderMetadata::from_label(label).ok()?;
        meta.images
            .first()
            .map(|r| r.image.clone())
            .filter(|r| r.starts_with("oci:"))
    });
    Ok(BuildArgs {
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
        ca_certs: args.ca_certs.clone(),
    })
}

fn publish(
    layout: &std::path::Path,
    tag: &str,
    target: &gp_oci::reference::RegistryRef,
    insecure: &[String],
) -> Result<(), (u8, String)> {
    eprintln!("===> PUBLISHING");
    let layout = Layout::open(layout).map_err(|e| usage(e.to_string()))?;
    let desc = layout
        .resolve(Some(tag))
        .map_err(|e| usage(e.to_string()))?;
    let registry =
        gp_oci::registry::Registry::new(target, insecure).map_err(|e| (62, e.to_string()))?;
    let stats = registry
        .push(&layout, &desc, target, None)
        .map_err(|e| (62, e.to_string()))?;
    eprintln!(
        "*** Published {target}@{}: {} layer(s) uploaded, {} reused",
        desc.digest, stats.uploaded, stats.present
    );
    Ok(())
}

fn phases(
    args: &BuildArgs,
    order: &OrderToml,
    work: &std::path::Path,
    out_path: &std::path::Path,
    tag: &str,
) -> Result<(), (u8, String)> {
    let platform = work.join("platform");
    std::fs::create_dir_all(platform.join("env")).map_err(|e| usage(e.to_string()))?;
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("`--env {kv}`: write NAME=VALUE")))?;
        std::fs::write(platform.join("env").join(k), v).map_err(|e| usage(e.to_string()))?;
    }
    if let Some(ca) = &args.ca_certs {
        let binding = platform.join("bindings/ca-certificates");
        std::fs::create_dir_all(&binding).map_err(|e| usage(e.to_string()))?;
        std::fs::write(binding.join("type"), "ca-certificates")
            .map_err(|e| usage(e.to_string()))?;
        std::fs::copy(ca, binding.join("ca.crt"))
            .map_err(|e| usage(format!("`--ca-certs {}`: {e}", ca.display())))?;
        let file = binding.join("ca.crt").to_string_lossy().into_owned();
        for var in [
            "SSL_CERT_FILE",
            "PIP_CERT",
            "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ] {
            std::fs::write(platform.join("env").join(var), &file)
                .map_err(|e| usage(e.to_string()))?;
        }
    }
    let abs = |p: &std::path::Path| {
        std::path::absolute(p).map_err(|e| usage(format!("`{}`: {e}", p.display())))
    };
    let source = abs(&args.path)?;
    let project = super::project::load(&source).map_err(usage)?;
    for (k, v) in &project.env {
        let file = platform.join("env").join(k);
        if !file.exists() {
            std::fs::write(file, v).map_err(|e| usage(e.to_string()))?; // `--env` wins over project.toml
        }
    }
    let app = project.source_dir(&source, work).map_err(usage)?;
    let buildpacks = abs(&args.buildpacks)?;
    eprintln!("===> DETECTING");
    let dirs = DetectDirs {
        buildpacks: buildpacks.clone(),
        app: app.clone(),
        platform: platform.clone(),
        scratch: work.join("detect"),
        exec_env: "production".into(),
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
    let layers = work.join("layers");
    if let Some(cache) = &args.cache {
        eprintln!("===> RESTORING");
        let restored = gp_lifecycle::cache::restore(cache, &layers, &detected.group)
            .map_err(|e| (42, format!("cannot restore the cache: {e}")))?;
        for r in &restored {
            eprintln!("Restored {r}");
        }
    }
    eprintln!("===> BUILDING");
    let bd = BuildDirs {
        buildpacks,
        layers: layers.clone(),
        app: app.clone(),
        platform,
        exec_env: "production".into(),
    };
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let mut log = BuildLog::default();
    let built = build(&detected.group, &detected.plan, &bd, &env, &mut log);
    for l in &log.lines {
        eprintln!("{l}");
    }
    let built = built.map_err(|e| (e.exit_code(), e.to_string()))?;
    if let Some(cache) = &args.cache {
        let saved = gp_lifecycle::cache::save(cache, &layers, &detected.group)
            .map_err(|e| (62, format!("cannot save the cache: {e}")))?;
        eprintln!("Cached {} layer(s)", saved.len());
    }
    export_phase(args, &layers, &app, &detected.group, &built, out_path, tag)?;
    let processes: Vec<String> = built
        .metadata
        .processes
        .iter()
        .map(|p| p.kind.to_string())
        .collect();
    eprintln!("*** Processes: {}", processes.join(", "));
    Ok(())
}

/// Exports into the layout at `out_path` and prints the summary.
fn export_phase(
    args: &BuildArgs,
    layers: &std::path::Path,
    app: &std::path::Path,
    group: &gp_cnb::GroupToml,
    built: &gp_lifecycle::build::Built,
    out_path: &std::path::Path,
    tag: &str,
) -> Result<(), (u8, String)> {
    eprintln!("===> EXPORTING");
    let out = Layout::create(out_path).map_err(|e| usage(e.to_string()))?;
    let run = match &args.run_image {
        Some(r) => {
            let ImageRef::Layout { path, tag } =
                r.parse::<ImageRef>().map_err(|e| usage(e.to_string()))?
            else {
                return Err(usage(
                    "`--run-image` must be an OCI layout reference here: `oci:PATH[:TAG]`",
                ));
            };
            let layout = Layout::open(&path).map_err(|e| usage(e.to_string()))?;
            let desc = layout
                .resolve(tag.as_deref())
                .map_err(|e| usage(e.to_string()))?;
            Some((layout, desc, r.clone()))
        }
        None => None,
    };
    let exported = export(&ExportInput {
        layers,
        app,
        group,
        built,
        launcher: &args.launcher,
        run_image: run.as_ref().map(|(l, d, r)| (l, d.clone(), r.clone())),
        out: &out,
        tag,
    })
    .map_err(|e| (62, e.to_string()))?;
    let img = read_image(&out, &exported.manifest).map_err(|e| usage(e.to_string()))?;
    eprintln!(
        "*** Image: oci:{}:{tag}@{}",
        out_path.display(),
        exported.manifest.digest
    );
    eprintln!(
        "*** Layers: {} ({} from the run image)",
        img.layers.len(),
        img.layers.len() - exported.layers.len()
    );
    Ok(())
}
