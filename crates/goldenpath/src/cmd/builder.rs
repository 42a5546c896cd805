//! `goldenpath builder create`: a builder image from pack's `builder.toml`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Create a builder image: the build image, buildpacks, order, run image and lifecycle.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// pack's `builder.toml` (`[[buildpacks]] uri`, `[[order]]`, `[build] image`, `[[run.images]]`).
    #[arg(long)]
    pub config: PathBuf,
    /// Where the builder goes: `oci:PATH:TAG`. (`[build] image` may be an OCI layout or a registry image.)
    #[arg(long)]
    pub tag: String,
    /// The launcher to include (default: the `launcher` installed next to goldenpath). It runs in app images, so
    /// it should be static (`scripts/static-bins.sh` builds one).
    #[arg(long)]
    pub launcher: Option<PathBuf>,
    /// The lifecycle that runs detect and build inside the build image for sandboxed builds (default: the
    /// `lifecycle` installed next to goldenpath; static, like the launcher). Without one the builder can only be
    /// used with `--sandbox none`.
    #[arg(long)]
    pub lifecycle: Option<PathBuf>,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

pub fn run(cmd: BuilderCommand) -> ExitCode {
    let BuilderCommand::Create(args) = cmd;
    match create(&args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

fn create(args: &CreateArgs) -> Result<(), String> {
    let ImageRef::Layout { path, tag } = args.tag.parse::<ImageRef>().map_err(|e| e.to_string())?
    else {
        return Err("write the builder to an OCI layout: `--tag oci:PATH:TAG`".into());
    };
    let tag = tag.unwrap_or_else(|| "latest".into());
    let launcher = match &args.launcher {
        Some(l) => l.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("launcher"),
    };
    if !launcher.is_file() {
        return Err(format!(
            "launcher `{}` not found; build it (`cargo build -p gp-launcher`) or pass `--launcher`",
            launcher.display()
        ));
    }
    let lifecycle = match &args.lifecycle {
        Some(l) if !l.is_file() => {
            return Err(format!(
                "lifecycle `{}` not found; build it with `scripts/static-bins.sh`",
                l.display()
            ));
        }
        Some(l) => Some(l.clone()),
        None => {
            let next = launcher.with_file_name("lifecycle");
            if next.is_file() {
                Some(next)
            } else {
                eprintln!(
                    "warning: no `lifecycle` next to the launcher and no `--lifecycle`: this builder can only be used with `--sandbox none`"
                );
                None
            }
        }
    };
    let mut config = gp_stack::builder::load(&args.config).map_err(|e| e.to_string())?;
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
        eprintln!("===> PULLING {r}");
        let store_path = super::cache_dir().join("images");
        let store = Layout::create(&store_path).map_err(|e| e.to_string())?;
        let desc = super::registry(&r, &args.insecure)
            .and_then(|reg| reg.pull(&r, &store))
            .map_err(|e| format!("build image `{reference}`: {e}"))?;
        store
            .set_tag(&pulled_tag, &desc)
            .map_err(|e| e.to_string())?;
        *reference = format!("oci:{}:{pulled_tag}", store_path.display());
        pulled = Some(store);
    }
    let base_dir = args
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
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
    let desc = desc?;
    eprintln!(
        "created builder oci:{}:{tag}@{} ({} buildpacks)",
        path.display(),
        desc.digest,
        config.buildpacks.len()
    );
    Ok(())
}
