//! `goldenpath stack build`: build and run images from Debian packages (mmdebstrap), with the CNB user, base
//! labels and a package SBOM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Subcommand)]
pub enum StackCommand {
    /// Build the stack's build and/or run image.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The stack definition (`id`, `[debian] suite/mirrors`, `[user]`, `[build] packages`, `[run] packages`).
    #[arg(long)]
    pub config: PathBuf,
    /// Where the build image goes: `oci:PATH:TAG`.
    #[arg(long)]
    pub build_tag: Option<String>,
    /// Where the run image goes: `oci:PATH:TAG`.
    #[arg(long)]
    pub run_tag: Option<String>,
}

pub fn run(cmd: StackCommand) -> ExitCode {
    let StackCommand::Build(args) = cmd;
    match build(&args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

fn build(args: &BuildArgs) -> Result<(), String> {
    let stack = gp_stack::stack::load(&args.config).map_err(|e| e.to_string())?;
    if args.build_tag.is_none() && args.run_tag.is_none() {
        return Err("name at least one image to build: `--build-tag oci:PATH:TAG` and/or `--run-tag oci:PATH:TAG`".into());
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    for (which, target) in [("build", &args.build_tag), ("run", &args.run_tag)] {
        let Some(target) = target else { continue };
        let ImageRef::Layout { path, tag } =
            target.parse::<ImageRef>().map_err(|e| e.to_string())?
        else {
            return Err(format!(
                "`--{which}-tag {target}`: write stack images to an OCI layout (`oci:PATH:TAG`), then `goldenpath image copy` them"
            ));
        };
        let tag = tag.unwrap_or_else(|| which.to_owned());
        let out = Layout::create(&path).map_err(|e| e.to_string())?;
        eprintln!(
            "===> {} IMAGE ({} {})",
            which.to_uppercase(),
            stack.id,
            stack.debian.suite
        );
        let started = std::time::Instant::now();
        let built = gp_stack::stack::build_image(&stack, which, scratch.path(), &out, &tag)
            .map_err(|e| e.to_string())?;
        eprintln!(
            "*** {which} image oci:{}:{tag}@{}: {} (SBOM at /{}), {} s",
            path.display(),
            built.desc.digest,
            built.summary(),
            gp_stack::stack::SBOM_PATH,
            started.elapsed().as_secs()
        );
    }
    Ok(())
}
