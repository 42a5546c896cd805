//! `goldenpath builder create`: a builder image from pack's `builder.toml`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
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
    let request = gp_stack::create::CreateRequest {
        config: config_path.to_path_buf(),
        out: path.clone(),
        tag: tag.clone(),
        launcher,
        lifecycle: Some(lifecycle),
    };
    let on_pull = |line: &str| eprintln!("===> {line}");
    let created = gp_stack::create::create_builder(&super::store(insecure), &request, &on_pull)
        .map_err(|e| e.to_string())?;
    for note in &created.notes {
        eprintln!("note: {}: {note}", config_path.display());
    }
    Ok(format!(
        "oci:{}:{tag}@{} ({} buildpacks)",
        path.display(),
        created.desc.digest,
        created.buildpacks
    ))
}
