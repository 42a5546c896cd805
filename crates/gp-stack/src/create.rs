//! `builder create` as a library call: reads `builder.toml`, fetches what it names from registries into the
//! store (buildpackages, the build image; only the blobs the store lacks), and writes the builder image. Pulled
//! images are held in the store under tags of their own only while the builder is written.

use std::path::{Path, PathBuf};

use gp_oci::layout::{Desc, Layout};
use gp_oci::reference::ImageRef;
use gp_oci::store::{Held, Store};

use crate::builder::{BuilderError, Lifecycle, create, load};

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// pack's `builder.toml`; relative paths in it are read from its directory.
    pub config: PathBuf,
    /// The layout and tag the builder goes to.
    pub out: PathBuf,
    pub tag: String,
    /// Placed at `/cnb/lifecycle/launcher` (static: it runs in app images).
    pub launcher: PathBuf,
    /// Placed at `/cnb/lifecycle/lifecycle`, for sandboxed builds.
    pub lifecycle: Option<PathBuf>,
}

/// A created builder.
#[derive(Debug, Clone)]
pub struct Created {
    pub desc: Desc,
    pub buildpacks: usize,
    /// Remarks on `builder.toml` (fields read differently from pack's, versions filled in).
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    Builder(#[from] BuilderError),
    #[error("{what} `{reference}`: {source}")]
    Pull {
        what: &'static str,
        reference: String,
        #[source]
        source: Box<gp_oci::store::StoreError>,
    },
    #[error(transparent)]
    Layout(#[from] Box<gp_oci::layout::LayoutError>),
}

impl From<gp_oci::layout::LayoutError> for CreateError {
    fn from(e: gp_oci::layout::LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}

/// Creates the builder `request` describes; `on_pull` hears each image pulled (`PULLING <ref>`) and each of its
/// blobs.
pub fn create_builder(
    store: &Store,
    request: &CreateRequest,
    on_pull: &(dyn Fn(&str) + Sync),
) -> Result<Created, CreateError> {
    let mut config = load(&request.config)?;
    let notes = config.notes();
    let base_dir = request
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut held: Vec<Held> = Vec::new();
    let mut pull = |reference: &str, what: &'static str| -> Result<String, CreateError> {
        on_pull(&format!("PULLING {reference}"));
        let opened = store
            .open(reference, None)
            .map_err(|source| CreateError::Pull {
                what,
                reference: reference.to_owned(),
                source: Box::new(source),
            })?;
        let h = store.hold("builder-create", &opened.desc)?;
        let local = h.reference();
        held.push(h);
        Ok(local)
    };
    for source in &mut config.buildpacks {
        let image = source
            .registry_image()
            .map(str::to_owned)
            .or_else(|| plain_registry_reference(&source.uri, &base_dir));
        if let Some(image) = image {
            source.uri = pull(&image, "buildpack")?;
            source.image = None;
        }
    }
    // A build image in a registry is pulled into the store and read from there.
    let build_ref = match (&mut config.build, &mut config.stack) {
        (Some(b), _) => Some(&mut b.image),
        (None, Some(s)) => Some(&mut s.build_image),
        (None, None) => None,
    };
    if let Some(reference) = build_ref
        && matches!(reference.parse::<ImageRef>(), Ok(ImageRef::Registry(_)))
    {
        *reference = pull(reference, "build image")?;
    }
    let out = Layout::create(&request.out)?;
    let desc = create(
        &config,
        &base_dir,
        &Lifecycle {
            launcher: &request.launcher,
            lifecycle: request.lifecycle.as_deref(),
        },
        &out,
        &request.tag,
    )?;
    drop(held);
    Ok(Created {
        desc,
        buildpacks: config.buildpacks.len(),
        notes,
    })
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
