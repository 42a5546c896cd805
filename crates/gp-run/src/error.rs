//! What can go wrong running an image, each with what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot read the image `{reference}`: {source}")]
    Image {
        reference: String,
        #[source]
        source: Box<gp_oci::image::ImageError>,
    },
    #[error(
        "the image `{reference}` is for {platform}, and this machine runs linux/{host}: build or pull the image for linux/{host}"
    )]
    Platform {
        reference: String,
        platform: String,
        host: String,
    },
    #[error(
        "the image `{reference}` has nothing to run: its config has no entrypoint and no command (a CNB image without a default process: build it with a `web` process, e.g. a Procfile)"
    )]
    NoProcess { reference: String },
    #[error(
        "the image's user `{user}` is not in its /etc/passwd or /etc/group: set the image's user as `uid:gid`"
    )]
    User { user: String },
    #[error("cannot unpack the image into `{}`: {source}", path.display())]
    Unpack {
        path: PathBuf,
        #[source]
        source: Box<gp_oci::unpack::UnpackError>,
    },
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot mount the image's cached layers at `{}` (overlayfs): {source}", path.display())]
    Overlay {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the runtime bundle's config: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("cannot run `runc`: {source} (install it: Debian `apt-get install runc`)")]
    NoRunc {
        #[source]
        source: std::io::Error,
    },
    #[error("`runc {args}` failed ({status}): {stderr}")]
    Runc {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("the app exited before it answered HTTP (its output is in `{}`):\n{tail}", log.display())]
    Exited { log: PathBuf, tail: String },
    #[error(
        "the app did not answer HTTP on its port {port} within {seconds} s (its output is in `{}`):\n{tail}",
        log.display()
    )]
    NotReady {
        port: u16,
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("cannot enter the app's network namespace (goldenpath run needs root): {0}")]
    Netns(#[source] nix::Error),
    #[error("cannot listen on 127.0.0.1:{port}: {source} (choose another port with `--port`)")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}
