//! JSON image labels the exporter writes and rebaser/launcher/other tools read:
//! `io.buildpacks.lifecycle.metadata`, `io.buildpacks.build.metadata` and
//! `io.buildpacks.project.metadata` (whose TOML twin is `project-metadata.toml`).
//!
//! Field names follow the spec's examples exactly, including its mixed conventions (`runImage`,
//! `topLayer`, `buildpackID` next to `working-dir` and `exec-env`). Unknown keys are tolerated.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api::BuildpackApi;
use crate::file::TomlFile;
use crate::ids::{BuildpackId, BuildpackVersion, LayerName, ProcessType};
use crate::launch::ProcessCommand;
use crate::layer::LayerContentMetadata;
use crate::platform_files::MetadataProcess;

/// Why a label value did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid `{label}` label: {message}")]
pub struct LabelError {
    pub label: &'static str,
    pub message: String,
}

/// An image label whose value is JSON.
pub trait JsonLabel: Serialize + DeserializeOwned {
    /// The label key.
    const KEY: &'static str;

    fn from_label(value: &str) -> Result<Self, LabelError> {
        serde_json::from_str(value).map_err(|e| LabelError {
            label: Self::KEY,
            message: e.to_string(),
        })
    }

    /// The label value: compact JSON.
    fn to_label(&self) -> Result<String, LabelError> {
        serde_json::to_string(self).map_err(|e| LabelError {
            label: Self::KEY,
            message: e.to_string(),
        })
    }
}

/// A layer identified by the digest of its uncompressed contents (its diff ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSha {
    pub sha: String,
}

/// A buildpack layer as recorded in the lifecycle metadata: its `<layer>.toml` plus its diff ID.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    #[serde(default)]
    pub sha: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    #[serde(default)]
    pub build: bool,
    #[serde(default)]
    pub launch: bool,
    #[serde(default)]
    pub cache: bool,
}

impl LayerRecord {
    /// The `<layer>.toml` this record came from (types and metadata; metadata that is not a JSON object is dropped).
    #[must_use]
    pub fn to_content(&self) -> LayerContentMetadata {
        LayerContentMetadata {
            types: Some(crate::LayerTypes {
                launch: self.launch,
                build: self.build,
                cache: self.cache,
            }),
            metadata: serde_json::from_value::<toml::Table>(self.data.clone()).ok(),
        }
    }

    /// Records `layer` with diff ID `sha`.
    pub fn from_content(
        sha: impl Into<String>,
        layer: &LayerContentMetadata,
    ) -> Result<Self, LabelError> {
        let data = match &layer.metadata {
            Some(table) => serde_json::to_value(table).map_err(|e| LabelError {
                label: LifecycleMetadata::KEY,
                message: format!("layer metadata is not representable as JSON: {e}"),
            })?,
            None => serde_json::Value::Null,
        };
        let types = layer.types();
        Ok(Self {
            sha: sha.into(),
            data,
            build: types.build,
            launch: types.launch,
            cache: types.cache,
        })
    }
}

/// `buildpacks[].store` in the lifecycle metadata: the buildpack's `store.toml` metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreRecord {
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub metadata: serde_json::Value,
}

/// One buildpack's layers in the lifecycle metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildpackLayersRecord {
    /// The buildpack id (the spec calls it `key`).
    pub key: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default)]
    pub layers: BTreeMap<LayerName, LayerRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreRecord>,
}

/// The run image an app image was built on, as the rebaser needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageRecord {
    #[serde(default, rename = "topLayer", skip_serializing_if = "String::is_empty")]
    pub top_layer: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// The deprecated `stack` key: `{"runImage": {"image", "mirrors"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackRecord {
    #[serde(rename = "runImage", default)]
    pub run_image: RunImageRecord,
}

/// `io.buildpacks.lifecycle.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleMetadata {
    /// One entry per app slice layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app: Vec<LayerSha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<LayerSha>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<LayerSha>,
    /// The layer of process-type symlinks the reference lifecycle adds; not in the spec's table.
    #[serde(
        default,
        rename = "process-types",
        skip_serializing_if = "Option::is_none"
    )]
    pub process_types: Option<LayerSha>,
    #[serde(default, rename = "exec-env", skip_serializing_if = "Option::is_none")]
    pub exec_env: Option<String>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayersRecord>,
    #[serde(rename = "runImage", default, skip_serializing_if = "Option::is_none")]
    pub run_image: Option<RunImageRecord>,
    /// Deprecated since Platform API 0.12; read when `runImage` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackRecord>,
}

impl LifecycleMetadata {
    /// The run image: `runImage`, or the deprecated `stack.runImage`.
    #[must_use]
    pub fn run_image(&self) -> Option<&RunImageRecord> {
        self.run_image
            .as_ref()
            .or_else(|| self.stack.as_ref().map(|s| &s.run_image))
    }
}

impl JsonLabel for LifecycleMetadata {
    const KEY: &'static str = "io.buildpacks.lifecycle.metadata";
}

/// `io.buildpacks.lifecycle.cache.metadata`: what a registry cache image holds, one record per buildpack (each
/// layer's `<layer>.toml` and diff ID, as in the lifecycle metadata).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheMetadata {
    #[serde(default)]
    pub buildpacks: Vec<BuildpackLayersRecord>,
    /// The layer of the cached layers' SBOM files (`/layers/sbom/cache/<buildpack>/<layer>/sbom.<ext>`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<LayerSha>,
}

impl JsonLabel for CacheMetadata {
    const KEY: &'static str = "io.buildpacks.lifecycle.cache.metadata";
}

/// A process in `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    #[serde(rename = "type")]
    pub kind: ProcessType,
    pub command: ProcessCommand,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub direct: bool,
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "buildpackID")]
    pub buildpack_id: BuildpackId,
    /// `["*"]` (or absent) means every execution environment.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// A `metadata.toml` process that names no contributing buildpack, which
/// `io.buildpacks.build.metadata` requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("process `{kind}` names no buildpack")]
pub struct NoBuildpackId {
    pub kind: ProcessType,
}

/// A `metadata.toml` process as `io.buildpacks.build.metadata` records it; fails when the process
/// names no buildpack.
impl TryFrom<&MetadataProcess> for ProcessRecord {
    type Error = NoBuildpackId;
    fn try_from(p: &MetadataProcess) -> Result<Self, NoBuildpackId> {
        let Some(buildpack_id) = p.buildpack_id.clone() else {
            return Err(NoBuildpackId {
                kind: p.kind.clone(),
            });
        };
        Ok(Self {
            kind: p.kind.clone(),
            command: p.command.clone(),
            args: p.args.clone(),
            direct: p.direct,
            working_dir: p.working_dir.clone(),
            buildpack_id,
            exec_env: p.exec_env.clone(),
        })
    }
}

/// A buildpack or extension in `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRecord {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<BuildpackApi>,
}

/// Where the launcher came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherRecord {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub source: LauncherSource,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LauncherSource {
    #[serde(default)]
    pub git: GitSource,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSource {
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub commit: String,
}

/// `io.buildpacks.build.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildMetadata {
    #[serde(default)]
    pub processes: Vec<ProcessRecord>,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<BuildpackRecord>,
    #[serde(default)]
    pub launcher: LauncherRecord,
    /// Legacy bill of materials (Buildpack API < 0.7 buildpacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bom: Vec<serde_json::Value>,
}

impl JsonLabel for BuildMetadata {
    const KEY: &'static str = "io.buildpacks.build.metadata";
}

/// Where the app source came from: `[source]` of `project-metadata.toml`, and the JSON label
/// `io.buildpacks.project.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectSource {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `project-metadata.toml` and the `io.buildpacks.project.metadata` label (same shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ProjectSource>,
}

impl ProjectMetadata {
    /// What a `project.toml` says about the source: `type = "project"`, `version.declared` from `[_].version` and
    /// `metadata.url` from `[_].source-url` (the shape pack records); nothing when it declares neither.
    #[must_use]
    pub fn from_project(project: &crate::ProjectDescriptor) -> Self {
        let Some(section) = &project.project else {
            return Self::default();
        };
        if section.version.is_none() && section.source_url.is_none() {
            return Self::default();
        }
        let one = |key: &str, value: &Option<String>| {
            value.as_ref().map(|v| {
                serde_json::Map::from_iter([(key.to_owned(), serde_json::Value::String(v.clone()))])
            })
        };
        Self {
            source: Some(ProjectSource {
                kind: Some("project".to_owned()),
                version: one("declared", &section.version),
                metadata: one("url", &section.source_url),
            }),
        }
    }
}

impl JsonLabel for ProjectMetadata {
    const KEY: &'static str = "io.buildpacks.project.metadata";
}

impl TomlFile for ProjectMetadata {
    const FILE: &'static str = "project-metadata.toml";
}

#[cfg(test)]
mod tests;
