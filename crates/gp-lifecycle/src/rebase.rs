//! Rebase: put an app image on a new run image without rebuilding. The app layers (everything above the old run
//! image's top layer, as `io.buildpacks.lifecycle.metadata` records it) are kept byte for byte; only a new config
//! and manifest are written.

use gp_cnb::{JsonLabel, LifecycleMetadata, RunImageRecord};
use gp_oci::image::{compose_image, read_image};
use gp_oci::layer::LayerInfo;
use gp_oci::layout::{Desc, Layout, copy_image};

#[derive(Debug, thiserror::Error)]
pub enum RebaseError {
    #[error(
        "the app image has no `io.buildpacks.lifecycle.metadata` label with a run image; it was not built by a CNB lifecycle"
    )]
    NotCnb,
    #[error(
        "the app image's run image top layer {0} is not among its layers; the image was changed after it was built"
    )]
    TopLayerMissing(String),
    #[error(
        "the new run image is labelled `io.buildpacks.rebasable=false`; rebuild the app instead"
    )]
    NotRebasable,
    #[error(
        "the new run image is {new}, the app image is {old}: a rebase cannot change the platform"
    )]
    Platform { old: String, new: String },
    #[error("{0}")]
    Image(String),
}

fn img_err(e: impl std::fmt::Display) -> RebaseError {
    RebaseError::Image(e.to_string())
}

/// Rebases `app` (in `layout`) onto `run` (in `run_layout`, named `run_ref` in the metadata); tags the result.
pub fn rebase(
    layout: &Layout,
    app: &Desc,
    run_layout: &Layout,
    run: &Desc,
    run_ref: &str,
    tag: &str,
) -> Result<Desc, RebaseError> {
    let desc = rebased(layout, app, run_layout, run, run_ref)?;
    layout.set_tag(tag, &desc).map_err(img_err)?;
    Ok(desc)
}

/// [`rebase`] without a tag: the new config and manifest are written as blobs only, so concurrent rebases can share
/// one layout.
pub fn rebased(
    layout: &Layout,
    app: &Desc,
    run_layout: &Layout,
    run: &Desc,
    run_ref: &str,
) -> Result<Desc, RebaseError> {
    let app_img = read_image(layout, app).map_err(img_err)?;
    let run_img = read_image(run_layout, run).map_err(img_err)?;
    if run_img.config.label("io.buildpacks.rebasable") == Some("false") {
        return Err(RebaseError::NotRebasable);
    }
    if app_img.config.platform() != run_img.config.platform() {
        return Err(RebaseError::Platform {
            old: app_img.config.platform(),
            new: run_img.config.platform(),
        });
    }
    let mut meta = app_img
        .config
        .label(LifecycleMetadata::KEY)
        .and_then(|l| LifecycleMetadata::from_label(l).ok())
        .ok_or(RebaseError::NotCnb)?;
    let top = meta
        .run_image()
        .map(|r| r.top_layer.clone())
        .filter(|t| !t.is_empty())
        .ok_or(RebaseError::NotCnb)?;
    let app_layers = app_img.layer_infos().map_err(img_err)?;
    let cut = app_layers
        .iter()
        .position(|l| l.diff_id.as_str() == top)
        .ok_or_else(|| RebaseError::TopLayerMissing(top.clone()))?;
    let new_base = run_img.layer_infos().map_err(img_err)?;
    if run_layout.root() != layout.root() {
        copy_image(run_layout, layout, run).map_err(img_err)?;
    }

    let new_top = new_base
        .last()
        .map(|l| l.diff_id.to_string())
        .unwrap_or_default();
    meta.run_image = Some(RunImageRecord {
        top_layer: new_top,
        reference: crate::export::run_image_reference(run_ref, &run_img),
        image: run_ref.to_owned(),
        mirrors: Vec::new(),
    });
    meta.stack = None;
    let mut config = app_img.runtime_config();
    config.labels.insert(
        LifecycleMetadata::KEY.into(),
        meta.to_label().map_err(img_err)?,
    );
    let layers: Vec<LayerInfo> = new_base
        .into_iter()
        .chain(app_layers.into_iter().skip(cut + 1))
        .collect();
    compose_image(layout, &layers, &config).map_err(img_err)
}
