//! `goldenpath rebase`: put an app image on a new run image (new config and manifest only; app layers kept).

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use gp_lifecycle::rebase::rebase;
use gp_oci::layout::Layout;
use gp_oci::reference::ImageRef;

use super::exit;

#[derive(Debug, Args)]
pub struct RebaseArgs {
    /// The app image (`oci:PATH:TAG`); the tag is moved to the rebased image.
    pub image: String,
    /// The new run image (`oci:PATH[:TAG]`).
    #[arg(long)]
    pub run_image: String,
}

fn layout(r: &str) -> Result<(std::path::PathBuf, Option<String>), String> {
    match r.parse::<ImageRef>().map_err(|e| e.to_string())? {
        ImageRef::Layout { path, tag } => Ok((path, tag)),
        ImageRef::Registry(_) => Err(format!(
            "`{r}`: this build rebases images in OCI layouts (`oci:PATH:TAG`)"
        )),
    }
}

pub fn run(args: &RebaseArgs) -> ExitCode {
    let started = Instant::now();
    let result = (|| -> Result<(String, String, String), String> {
        let (app_path, tag) = layout(&args.image)?;
        let tag = tag.ok_or("name the app image's tag: `oci:PATH:TAG`")?;
        let (run_path, run_tag) = layout(&args.run_image)?;
        let app_layout = Layout::open(&app_path).map_err(|e| e.to_string())?;
        let app = app_layout.resolve(Some(&tag)).map_err(|e| e.to_string())?;
        let run_layout = Layout::open(&run_path).map_err(|e| e.to_string())?;
        let run = run_layout
            .resolve(run_tag.as_deref())
            .map_err(|e| e.to_string())?;
        let new = rebase(&app_layout, &app, &run_layout, &run, &args.run_image, &tag)
            .map_err(|e| e.to_string())?;
        Ok((app.digest.to_string(), new.digest.to_string(), tag))
    })();
    match result {
        Ok((old, new, tag)) => {
            eprintln!(
                "rebased `{tag}` onto {}: {old} -> {new} in {} ms",
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
