//! `goldenpath builder create`: a builder image from pack's `builder.toml`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Create a builder image: the build image, buildpacks, order, run image and lifecycle.
    Create(CreateArgs),
    /// The built-in default builder (the default stack with the built-in buildpacks): made on first use, cached by
    /// its inputs, and printed (`oci:PATH:TAG`); with `--tag`, also copied there (e.g. a registry, for kpack).
    Default(DefaultArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// pack's `builder.toml` (`[[buildpacks]] uri`, `[[order]]`, `[build] image`, `[[run.images]]`).
    #[arg(long)]
    pub config: PathBuf,
    /// Where the builder goes: `oci:PATH:TAG`. (`[build] image` may be an OCI layout or a registry image.)
    #[arg(long)]
    pub tag: String,
    /// The launcher to include, instead of the one goldenpath carries. It runs in app images, so it should be
    /// static (`scripts/static-bins.sh` builds one).
    #[arg(long)]
    pub launcher: Option<PathBuf>,
    /// The lifecycle that runs detect and build inside the build image for sandboxed builds, instead of the one
    /// goldenpath carries (static, like the launcher).
    #[arg(long)]
    pub lifecycle: Option<PathBuf>,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DefaultArgs {
    /// Also copy the builder here: `oci:PATH:TAG` or a registry image (`registry.example/builders/default:1`).
    #[arg(long)]
    pub tag: Option<String>,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

pub fn run(cmd: BuilderCommand) -> ExitCode {
    let result = match cmd {
        BuilderCommand::Create(args) => create(&args),
        BuilderCommand::Default(args) => default(&args),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

fn default(args: &DefaultArgs) -> Result<(), String> {
    let builder = super::default_builder::ensure(&args.insecure)?;
    if let Some(tag) = &args.tag {
        super::default_builder::copy_to(&builder, tag, &args.insecure)?;
        eprintln!("copied the default builder to {tag}");
    }
    super::write_stdout(&format!("{builder}\n"));
    Ok(())
}

fn create(args: &CreateArgs) -> Result<(), String> {
    let created = create_from(
        &args.config,
        &args.tag,
        args.launcher.as_deref(),
        args.lifecycle.as_deref(),
        &args.insecure,
    )?;
    eprintln!("created builder {created}");
    Ok(())
}

/// `builder create`: the launcher and lifecycle default to the ones goldenpath carries. Returns what was created
/// (`oci:PATH:TAG@DIGEST (N buildpacks)`).
pub fn create_from(
    config_path: &Path,
    tag: &str,
    launcher: Option<&Path>,
    lifecycle: Option<&Path>,
    insecure: &[String],
) -> Result<String, String> {
    let ImageRef::Layout { path, tag } = tag.parse::<ImageRef>().map_err(|e| e.to_string())? else {
        return Err("write the builder to an OCI layout: `--tag oci:PATH:TAG`".into());
    };
    let tag = tag.unwrap_or_else(|| "latest".into());
    let carried = crate::embedded::materialize(&super::cache_dir()).map_err(|e| {
        format!("cannot write out the launcher and lifecycle goldenpath carries: {e}")
    })?;
    let launcher = launcher.map_or_else(|| carried.launcher(), Path::to_path_buf);
    if !launcher.is_file() {
        return Err(format!(
            "launcher `{}` not found: pass an existing file to `--launcher`, or leave it out to use the one goldenpath carries",
            launcher.display()
        ));
    }
    let lifecycle = lifecycle.map_or_else(|| carried.lifecycle(), Path::to_path_buf);
    if !lifecycle.is_file() {
        return Err(format!(
            "lifecycle `{}` not found: pass an existing file to `--lifecycle`, or leave it out to use the one goldenpath carries",
            lifecycle.display()
        ));
    }
    let lifecycle = Some(lifecycle);
    let mut config = gp_stack::builder::load(config_path).map_err(|e| e.to_string())?;
    for note in config.notes() {
        eprintln!("note: {}: {note}", config_path.display());
    }
    let mut pulled_buildpacks = Vec::new();
    let base_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    for (n, source) in config.buildpacks.iter_mut().enumerate() {
        let image = source
            .registry_image()
            .map(str::to_owned)
            .or_else(|| plain_registry_reference(&source.uri, &base_dir));
        if let Some(image) = image {
            let (store, reference) = pull_to_store(&image, &format!("buildpack-{n}"), insecure)?;
            source.uri = reference;
            source.image = None;
            pulled_buildpacks.push(store);
        }
    }
    // A build image in a registry is pulled into the local store (missing blobs only) and read from there.
    let pulled_tag = format!("builder-create-{}", std::process::id());
    let build_ref = match (&mut config.build, &mut config.stack) {
        (Some(b), _) => Some(&mut b.image),
        (None, Some(s)) => Some(&mut s.build_image),
        (None, None) => None,
    };
    let mut pulled = None;
    if let Some(reference) = build_ref
        && let Ok(ImageRef::Registry(r)) = reference.parse::<ImageRef>()
    {
        let activity = crate::progress::Activity::start(&format!("PULLING {r}"));
        let store_path = super::cache_dir().join("images");
        let store = Layout::create(&store_path).map_err(|e| e.to_string())?;
        let desc = super::registry(&r, insecure)
            .and_then(|reg| reg.with_progress(activity.reporter()).pull(&r, &store))
            .map_err(|e| format!("build image `{reference}`: {e}"))?;
        drop(activity);
        store
            .set_tag(&pulled_tag, &desc)
            .map_err(|e| e.to_string())?;
        *reference = format!("oci:{}:{pulled_tag}", store_path.display());
        pulled = Some(store);
    }
    let out = Layout::create(&path).map_err(|e| e.to_string())?;
    let desc = gp_stack::builder::create(
        &config,
        &base_dir,
        &gp_stack::builder::Lifecycle {
            launcher: &launcher,
            lifecycle: lifecycle.as_deref(),
        },
        &out,
        &tag,
    )
    .map_err(|e| e.to_string());
    if let Some(store) = &pulled {
        let _ = store.untag(&pulled_tag);
    }
    for (store, tag) in &pulled_buildpacks {
        let _ = store.untag(tag);
    }
    let desc = desc?;
    Ok(format!(
        "oci:{}:{tag}@{} ({} buildpacks)",
        path.display(),
        desc.digest,
        config.buildpacks.len()
    ))
}

/// Pulls a registry image into the local store under a tag of this process; returns the store, the tag and the
/// image as `oci:STORE:TAG`.
fn pull_to_store(
    image: &str,
    what: &str,
    insecure: &[String],
) -> Result<((Layout, String), String), String> {
    let ImageRef::Registry(r) = image
        .parse::<ImageRef>()
        .map_err(|e| format!("`{image}`: {e}"))?
    else {
        return Err(format!("`{image}` is not a registry image"));
    };
    let activity = crate::progress::Activity::start(&format!("PULLING {r}"));
    let store_path = super::cache_dir().join("images");
    let store = Layout::create(&store_path).map_err(|e| e.to_string())?;
    let desc = super::registry(&r, insecure)
        .and_then(|reg| reg.with_progress(activity.reporter()).pull(&r, &store))
        .map_err(|e| format!("`{image}`: {e}"))?;
    drop(activity);
    let tag = format!("builder-create-{what}-{}", gp_oci::layout::unique_suffix());
    store.set_tag(&tag, &desc).map_err(|e| e.to_string())?;
    let reference = format!("oci:{}:{tag}", store_path.display());
    Ok(((store, tag), reference))
}

/// A `[[buildpacks]] uri` written as a plain registry reference (`registry.example/bp/python:1`): no scheme, no
/// such local path, and an explicit registry host.
fn plain_registry_reference(uri: &str, base_dir: &Path) -> Option<String> {
    if uri.contains("://") || uri.starts_with("oci:") || base_dir.join(uri).exists() {
        return None;
    }
    let host = uri.split('/').next()?;
    let explicit_host =
        uri.contains('/') && (host.contains('.') || host.contains(':') || host == "localhost");
    (explicit_host && matches!(uri.parse::<ImageRef>(), Ok(ImageRef::Registry(_))))
        .then(|| uri.to_owned())
}
