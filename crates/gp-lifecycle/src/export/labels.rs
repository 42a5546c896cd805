//! The exporter's labels: `io.buildpacks.lifecycle.metadata` (with `runImage.reference` and each buildpack's
//! `store.toml`), `io.buildpacks.build.metadata` and `io.buildpacks.project.metadata`, over the run image's and the
//! buildpacks' own labels.

use std::collections::BTreeMap;
use std::path::Path;

use gp_cnb::{
    BuildMetadata, BuildpackRecord, JsonLabel, LifecycleMetadata, ProcessRecord, ProjectMetadata,
    TomlFile,
};

use super::{ExportError, ExportInput};

/// What identifies the run image named `name` uniquely, for `runImage.reference`: a digest reference
/// (`<registry>/<repository>@sha256:…`, the manifest `read_image` picked) for a registry image, and the image ID
/// (the config's digest) for one in a layout (the spec allows either).
#[must_use]
pub fn run_image_reference(name: &str, img: &gp_oci::image::Image) -> String {
    match name.parse::<gp_oci::reference::ImageRef>() {
        Ok(gp_oci::reference::ImageRef::Registry(r)) => {
            format!(
                "{}/{}@{}",
                r.registry, r.repository, img.manifest_desc.digest
            )
        }
        _ => img.config_desc.digest.to_string(),
    }
}

/// `<layers>/<buildpack>/store.toml`, kept in the lifecycle metadata for the next build (`buildpacks[].store`);
/// `None` when the buildpack wrote none.
pub(super) fn store_record(dir: &Path) -> Result<Option<gp_cnb::StoreRecord>, ExportError> {
    let path = dir.join(gp_cnb::StoreToml::FILE);
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return Ok(None);
    }
    let invalid = |message: String| ExportError::Store {
        path: path.clone(),
        message,
    };
    let store = gp_cnb::StoreToml::from_path(&path).map_err(|e| invalid(e.to_string()))?;
    let metadata = match &store.metadata {
        Some(table) => serde_json::to_value(table).map_err(|e| invalid(e.to_string()))?,
        None => serde_json::Value::Null,
    };
    Ok(Some(gp_cnb::StoreRecord { metadata }))
}

/// The run image's labels, the buildpacks' labels, then the lifecycle's two metadata labels.
pub(super) fn image_labels(
    base: &gp_oci::spec::ConfigFile,
    input: &ExportInput<'_>,
    lifecycle: &LifecycleMetadata,
    build: &BuildMetadata,
) -> Result<BTreeMap<String, String>, ExportError> {
    let mut labels: BTreeMap<String, String> = base.labels().clone();
    labels.extend(input.built.labels.clone());
    let label_err = |e: gp_cnb::LabelError| ExportError::Image(e.to_string());
    labels.insert(
        LifecycleMetadata::KEY.into(),
        lifecycle.to_label().map_err(label_err)?,
    );
    labels.insert(
        BuildMetadata::KEY.into(),
        build.to_label().map_err(label_err)?,
    );
    // Always present (the spec lists it among the labels an image MUST have): `{}` without project metadata.
    let project = project_metadata(input.layers)?;
    labels.insert(
        ProjectMetadata::KEY.into(),
        project.to_label().map_err(label_err)?,
    );
    Ok(labels)
}

/// `<layers>/project-metadata.toml` (the Platform API's default `<project-metadata>`), which the platform writes
/// from the app's `project.toml`; empty when there is none.
fn project_metadata(layers: &Path) -> Result<ProjectMetadata, ExportError> {
    let path = layers.join(ProjectMetadata::FILE);
    if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return Ok(ProjectMetadata::default());
    }
    ProjectMetadata::from_path(&path).map_err(|e| ExportError::ProjectMetadata {
        path: path.clone(),
        message: e.to_string(),
    })
}

/// `launcher` of `io.buildpacks.build.metadata`: this lifecycle's version and where its source is (the launcher
/// it places comes from the same release; `GOLDENPATH_GIT_COMMIT`, when set at compile time, names the commit).
fn launcher_record() -> gp_cnb::LauncherRecord {
    gp_cnb::LauncherRecord {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        source: gp_cnb::LauncherSource {
            git: gp_cnb::GitSource {
                repository: env!("CARGO_PKG_REPOSITORY").to_owned(),
                commit: option_env!("GOLDENPATH_GIT_COMMIT")
                    .unwrap_or_default()
                    .to_owned(),
            },
        },
    }
}

pub(super) fn build_metadata(input: &ExportInput<'_>) -> BuildMetadata {
    let m = &input.built.metadata;
    BuildMetadata {
        processes: m
            .processes
            .iter()
            .filter_map(|p| ProcessRecord::try_from(p).ok())
            .collect(),
        buildpacks: input
            .group
            .group
            .iter()
            .map(|b| BuildpackRecord {
                id: b.id.clone(),
                version: b.version,
                homepage: b.homepage.clone(),
                api: Some(b.api),
            })
            .collect(),
        launcher: launcher_record(),
        ..BuildMetadata::default()
    }
}
