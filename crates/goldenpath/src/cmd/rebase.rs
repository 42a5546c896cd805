//! `goldenpath rebase`: put an app image on a new run image (new config and manifest only; app layers kept).
//!
//! In an OCI layout the tag is moved to the rebased image. In a registry (`--publish`) only manifests and configs
//! are fetched; the new run image's layers are mounted from its repository when it is on the same registry (else
//! pulled and pushed once), the app layers are already there, and the new config and manifest are pushed.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use gp_lifecycle::rebase::rebase;
use gp_oci::layout::Layout;
use gp_oci::reference::{ImageRef, RegistryRef};

use super::exit;

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app image: `oci:PATH:TAG` (the tag is moved) or a registry image with `--publish`.
    pub image: String,
    /// The new run image (`oci:PATH[:TAG]` or, with a registry app image, a registry image).
    #[arg(long)]
    pub run_image: String,
    /// Push the rebased image to the registry the app image is in.
    #[arg(long)]
    pub publish: bool,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

fn layout(r: &str) -> Result<(std::path::PathBuf, Option<String>), String> {
    match r.parse::<ImageRef>().map_err(|e| e.to_string())? {
        ImageRef::Layout { path, tag } => Ok((path, tag)),
        ImageRef::Registry(_) => Err(format!(
            "`{r}`: an app image in an OCI layout rebases onto a run image in a layout (`oci:PATH:TAG`)"
        )),
    }
}

pub fn run(args: &RebaseArgs) -> ExitCode {
    let started = Instant::now();
    let result = match args.image.parse::<ImageRef>() {
        Err(e) => Err(e.to_string()),
        Ok(ImageRef::Layout { .. }) if args.publish => {
            Err("`--publish` rebases a registry image: name it as `HOST/NAME:TAG`".into())
        }
        Ok(ImageRef::Layout { path, tag }) => in_layout(args, &path, tag),
        Ok(ImageRef::Registry(_)) if !args.publish => Err(
            "a registry image is rebased in place: add `--publish` (the new manifest is pushed over the tag)"
                .into(),
        ),
        Ok(ImageRef::Registry(app)) => in_registry(args, &app),
    };
    match result {
        Ok((old, new, detail)) => {
            eprintln!(
                "rebased {} onto {}: {old} -> {new} in {} ms{detail}",
                args.image,
                args.run_image,
                started.elapsed().as_millis()
            );
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

type Outcome = Result<(String, String, String), String>;

fn in_layout(args: &RebaseArgs, app_path: &std::path::Path, tag: Option<String>) -> Outcome {
    let tag = tag.ok_or("name the app image's tag: `oci:PATH:TAG`")?;
    let (run_path, run_tag) = layout(&args.run_image)?;
    let app_layout = Layout::open(app_path).map_err(|e| e.to_string())?;
    let app = app_layout.resolve(Some(&tag)).map_err(|e| e.to_string())?;
    let run_layout = Layout::open(&run_path).map_err(|e| e.to_string())?;
    let run = run_layout
        .resolve(run_tag.as_deref())
        .map_err(|e| e.to_string())?;
    let new = rebase(&app_layout, &app, &run_layout, &run, &args.run_image, &tag)
        .map_err(|e| e.to_string())?;
    Ok((
        app.digest.to_string(),
        new.digest.to_string(),
        String::new(),
    ))
}

fn in_registry(args: &RebaseArgs, app: &RegistryRef) -> Outcome {
    let run = match args
        .run_image
        .parse::<ImageRef>()
        .map_err(|e| e.to_string())?
    {
        ImageRef::Registry(r) => r,
        ImageRef::Layout { .. } => {
            return Err(format!(
                "`--run-image {}`: a registry app image needs a registry run image",
                args.run_image
            ));
        }
    };
    // A private scratch layout: only manifests and configs land in it, and parallel rebases never share an index.
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Layout::create(scratch.path()).map_err(|e| e.to_string())?;
    let registry = super::registry(app, &args.insecure).map_err(|e| e.to_string())?;
    let app_desc = registry
        .pull_metadata(app, &store)
        .map_err(|e| e.to_string())?;
    let same_registry = run.registry == app.registry;
    let run_registry = super::registry(&run, &args.insecure).map_err(|e| e.to_string())?;
    let run_desc = if same_registry {
        run_registry.pull_metadata(&run, &store)
    } else {
        run_registry.pull(&run, &store)
    }
    .map_err(|e| e.to_string())?;
    let tag = "rebased";
    let new = rebase(&store, &app_desc, &store, &run_desc, &args.run_image, tag)
        .map_err(|e| e.to_string())?;
    let stats = registry
        .push(&store, &new, app, same_registry.then_some(&run))
        .map_err(|e| e.to_string())?;
    Ok((
        app_desc.digest.to_string(),
        new.digest.to_string(),
        format!(
            " ({} blob(s) uploaded, {} mounted, {} already there)",
            stats.uploaded, stats.mounted, stats.present
        ),
    ))
}
