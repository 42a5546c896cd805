//! `goldenpath buildpack package`: a buildpack (or a composite with its parts) as a buildpackage, the form pack
//! and kpack take buildpacks in: a `.cnb` file, an OCI layout or a registry image.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Subcommand)]
pub enum BuildpackCommand {
    /// Package a buildpack: `OUT.cnb` (a file), `oci:PATH:TAG`, or a registry image (pushed).
    Package(PackageArgs),
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Where the buildpackage goes: a path ending in `.cnb`, `oci:PATH:TAG`, or a registry image.
    pub out: String,
    /// The buildpack's directory (with `buildpack.toml`).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// For a composite buildpack: the directory of a buildpack its order names (repeat for each).
    #[arg(long = "dependency", value_name = "DIR")]
    pub dependencies: Vec<PathBuf>,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

pub fn run(cmd: BuildpackCommand) -> ExitCode {
    let BuildpackCommand::Package(args) = cmd;
    match package(&args) {
        Ok(done) => {
            eprintln!("{done}");
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

fn package(args: &PackageArgs) -> Result<String, String> {
    let deps: Vec<&std::path::Path> = args.dependencies.iter().map(PathBuf::as_path).collect();
    let make = |layout: &Layout, tag: &str| {
        gp_stack::buildpackage::package(&args.path, &deps, layout, tag).map_err(|e| e.to_string())
    };
    if std::path::Path::new(&args.out)
        .extension()
        .is_some_and(|e| e == "cnb")
    {
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let layout = Layout::create(scratch.path()).map_err(|e| e.to_string())?;
        let desc = make(&layout, "latest")?;
        gp_stack::buildpackage::write_cnb(scratch.path(), std::path::Path::new(&args.out))
            .map_err(|e| e.to_string())?;
        return Ok(format!("packaged {}@{}", args.out, desc.digest));
    }
    match args
        .out
        .parse::<ImageRef>()
        .map_err(|e| format!("`{}`: {e}", args.out))?
    {
        ImageRef::Layout { path, tag } => {
            let layout = Layout::create(&path).map_err(|e| e.to_string())?;
            let tag = tag.unwrap_or_else(|| "latest".into());
            let desc = make(&layout, &tag)?;
            Ok(format!(
                "packaged oci:{}:{tag}@{}",
                path.display(),
                desc.digest
            ))
        }
        ImageRef::Registry(r) => {
            let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
            let layout = Layout::create(scratch.path()).map_err(|e| e.to_string())?;
            let desc = make(&layout, "latest")?;
            super::registry(&r, &args.insecure)
                .and_then(|reg| reg.push(&layout, &desc, &r, None))
                .map_err(|e| format!("`{}`: {e}", args.out))?;
            Ok(format!("packaged and pushed {r}@{}", desc.digest))
        }
    }
}
