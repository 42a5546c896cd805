//! `goldenpath rebase`: put an app image on a new run image (new config and manifest only; app layers kept),
//! through [`gp_lifecycle::session::rebase`].
//!
//! In an OCI layout the tag is moved to the rebased image. In a registry (`--publish`) only manifests and configs
//! are fetched; the new run image's layers are mounted from its repository when it is on the same registry (else
//! pulled and pushed once), the app layers are already there, and the new config and manifest are pushed.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use gp_lifecycle::session::{RebaseRequest, rebase};
use gp_oci::reference::ImageRef;

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

/// The arguments as a request: a registry image is rebased in place only with `--publish`, a layout never with it.
fn request(args: &RebaseArgs) -> Result<RebaseRequest, String> {
    let image = args.image.parse::<ImageRef>().map_err(|e| e.to_string())?;
    match (&image, args.publish) {
        (ImageRef::Layout { .. }, true) => {
            Err("`--publish` rebases a registry image: name it as `HOST/NAME:TAG`".into())
        }
        (ImageRef::Registry(_), false) => Err(
            "a registry image is rebased in place: add `--publish` (the new manifest is pushed over the tag)"
                .into(),
        ),
        _ => Ok(RebaseRequest {
            image,
            run_image: args.run_image.clone(),
        }),
    }
}

pub fn run(args: &RebaseArgs) -> ExitCode {
    let started = Instant::now();
    let result = request(args)
        .and_then(|r| rebase(&super::store(&args.insecure), &r).map_err(|e| e.to_string()));
    match result {
        Ok(done) => {
            let detail = if args.publish {
                format!(
                    " ({} blob(s) uploaded, {} mounted, {} already there)",
                    done.uploaded, done.mounted, done.present
                )
            } else {
                String::new()
            };
            eprintln!(
                "rebased {} onto {}: {} -> {} in {} ms{detail}",
                args.image,
                args.run_image,
                done.old,
                done.new,
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
