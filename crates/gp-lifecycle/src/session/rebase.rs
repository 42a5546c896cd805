//! Rebase as a library call: an app image onto a new run image, in a layout (the tag moves) or in a registry
//! (only manifests and configs are fetched; the new run image's layers are mounted when it is on the same
//! registry, else pulled and pushed once; the new manifest is pushed last, over the tag).

use gp_oci::layout::Layout;
use gp_oci::reference::{ImageRef, RegistryRef};
use gp_oci::store::Store;

use crate::rebase::RebaseError;

/// One rebase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebaseRequest {
    /// The app image: `oci:PATH:TAG` or a registry image.
    pub image: ImageRef,
    /// The new run image: `oci:PATH[:TAG]`, or a registry image for a registry app image.
    pub run_image: String,
}

/// A finished rebase: the app image's digest before and after, and what the push did (zero in a layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebased {
    pub old: String,
    pub new: String,
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RebaseFailure {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Layout(#[from] Box<gp_oci::layout::LayoutError>),
    #[error("`{reference}`: {source}")]
    Registry {
        reference: String,
        #[source]
        source: Box<gp_oci::registry::RegistryError>,
    },
    #[error(transparent)]
    Rebase(#[from] RebaseError),
}

impl RebaseFailure {
    /// The registry error underneath, for callers that retry on its kind.
    #[must_use]
    pub fn registry(&self) -> Option<&gp_oci::registry::RegistryError> {
        match self {
            Self::Registry { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<gp_oci::layout::LayoutError> for RebaseFailure {
    fn from(e: gp_oci::layout::LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}

/// Rebases the image `request` names; a registry image is rebased in the registry (the tag is pushed over).
pub fn rebase(store: &Store, request: &RebaseRequest) -> Result<Rebased, RebaseFailure> {
    match &request.image {
        ImageRef::Layout { path, tag } => {
            let tag = tag.as_deref().ok_or_else(|| {
                RebaseFailure::Request("name the app image's tag: `oci:PATH:TAG`".into())
            })?;
            in_layout(path, tag, &request.run_image)
        }
        ImageRef::Registry(app) => in_registry(store, app, &request.run_image),
    }
}

fn in_layout(
    app_path: &std::path::Path,
    tag: &str,
    run_image: &str,
) -> Result<Rebased, RebaseFailure> {
    let (run_path, run_tag) = match run_image.parse::<ImageRef>() {
        Ok(ImageRef::Layout { path, tag }) => (path, tag),
        Ok(ImageRef::Registry(_)) => {
            return Err(RebaseFailure::Request(format!(
                "`{run_image}`: an app image in an OCI layout rebases onto a run image in a layout (`oci:PATH:TAG`)"
            )));
        }
        Err(e) => return Err(RebaseFailure::Request(e.to_string())),
    };
    let app_layout = Layout::open(app_path)?;
    let app = app_layout.resolve(Some(tag))?;
    let run_layout = Layout::open(&run_path)?;
    let run = run_layout.resolve(run_tag.as_deref())?;
    let new = crate::rebase::rebase(&app_layout, &app, &run_layout, &run, run_image, tag)?;
    Ok(Rebased {
        old: app.digest.to_string(),
        new: new.digest.to_string(),
        uploaded: 0,
        mounted: 0,
        present: 0,
    })
}

fn in_registry(
    store: &Store,
    app: &RegistryRef,
    run_image: &str,
) -> Result<Rebased, RebaseFailure> {
    let run = match run_image.parse::<ImageRef>() {
        Ok(ImageRef::Registry(r)) => r,
        Ok(ImageRef::Layout { .. }) => {
            return Err(RebaseFailure::Request(format!(
                "`--run-image {run_image}`: a registry app image needs a registry run image"
            )));
        }
        Err(e) => return Err(RebaseFailure::Request(e.to_string())),
    };
    let registry_err = |reference: &RegistryRef| {
        let reference = reference.to_string();
        move |source| RebaseFailure::Registry {
            reference,
            source: Box::new(source),
        }
    };
    // A private scratch layout: only manifests and configs land in it, and parallel rebases never share an index.
    let scratch = tempfile::tempdir()
        .map_err(|e| RebaseFailure::Request(format!("cannot create a scratch directory: {e}")))?;
    let scratch_layout = Layout::create(scratch.path())?;
    let registry = store.registry(app).map_err(registry_err(app))?;
    let app_desc = registry
        .pull_metadata(app, &scratch_layout)
        .map_err(registry_err(app))?;
    let same_registry = run.registry == app.registry;
    let run_registry = store.registry(&run).map_err(registry_err(&run))?;
    let run_desc = if same_registry {
        run_registry.pull_metadata(&run, &scratch_layout)
    } else {
        run_registry.pull(&run, &scratch_layout)
    }
    .map_err(registry_err(&run))?;
    let new = crate::rebase::rebase(
        &scratch_layout,
        &app_desc,
        &scratch_layout,
        &run_desc,
        run_image,
        "rebased",
    )?;
    let stats = registry
        .push(&scratch_layout, &new, app, same_registry.then_some(&run))
        .map_err(registry_err(app))?;
    Ok(Rebased {
        old: app_desc.digest.to_string(),
        new: new.digest.to_string(),
        uploaded: stats.uploaded,
        mounted: stats.mounted,
        present: stats.present,
    })
}
