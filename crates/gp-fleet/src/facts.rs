//! What the planner knows about an image, read from its manifest digest and config alone (no layer is pulled):
//! platform, base-image labels, the CNB lifecycle, build and project metadata, and its layers' diff IDs.

use gp_cnb::{
    BaseImageLabels, BuildMetadata, BuilderMetadata, JsonLabel, LifecycleMetadata, ProjectMetadata,
};
use gp_oci::spec::ConfigFile;

/// Where an image's source came from, as its `io.buildpacks.project.metadata` records it (type `git`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceRevision {
    /// A git URL, `file://` URL or local path.
    pub repository: String,
    pub commit: String,
    /// The app's directory inside the repository (`None`: its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl SourceRevision {
    /// The git source `project` records, if any.
    #[must_use]
    pub fn from_project(project: &ProjectMetadata) -> Option<Self> {
        let source = project.source.as_ref()?;
        if source.kind.as_deref() != Some("git") {
            return None;
        }
        let text = |m: &Option<serde_json::Map<String, serde_json::Value>>, key: &str| {
            m.as_ref()?.get(key)?.as_str().map(str::to_owned)
        };
        Some(Self {
            repository: text(&source.metadata, "repository")?,
            commit: text(&source.version, "commit")?,
            path: text(&source.metadata, "path").filter(|p| !p.is_empty() && p != "."),
        })
    }
}

/// An image's platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The distro a base image declares (`io.buildpacks.base.distro.*`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Distro {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for Distro {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// An app image as found in its registry.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// The manifest digest the tag names now.
    pub digest: String,
    pub platform: Platform,
    pub distro: Option<Distro>,
    pub labels: BaseImageLabels,
    pub lifecycle: Result<Option<LifecycleMetadata>, String>,
    pub build: Option<BuildMetadata>,
    pub source: Option<SourceRevision>,
    pub diff_ids: Vec<String>,
    /// The tag names a multi-platform index (the facts are this machine's platform's manifest).
    pub index: bool,
}

/// A run image or a builder as the planner compares against it.
#[derive(Debug, Clone)]
pub struct BaseFacts {
    /// The reference given (the one rebased images record).
    pub reference: String,
    pub digest: String,
    pub platform: Platform,
    pub distro: Option<Distro>,
    pub labels: BaseImageLabels,
    pub diff_ids: Vec<String>,
    /// For a builder: its buildpacks and lifecycle.
    pub builder: Option<BuilderMetadata>,
}

fn platform(config: &ConfigFile) -> Platform {
    Platform {
        os: config.os().unwrap_or("linux").to_owned(),
        arch: config.architecture().unwrap_or("amd64").to_owned(),
        variant: config.variant().map(str::to_owned),
    }
}

fn distro(labels: &BaseImageLabels) -> Option<Distro> {
    Some(Distro {
        name: labels.distro_name.clone()?,
        version: labels.distro_version.clone().unwrap_or_default(),
    })
}

/// What a label that does not parse is worth: the base labels as far as they go (a broken one is left out).
fn base_labels(config: &ConfigFile) -> BaseImageLabels {
    let mut labels = config.labels().clone();
    loop {
        match BaseImageLabels::from_labels(&labels) {
            Ok(l) => return l,
            Err(e) => {
                if labels.remove(e.label).is_none() {
                    return BaseImageLabels::default();
                }
            }
        }
    }
}

impl ImageFacts {
    /// The facts of the app image whose manifest digest is `digest` and whose config is `config`.
    #[must_use]
    pub fn read(digest: String, config: &ConfigFile) -> Self {
        let labels = base_labels(config);
        let lifecycle = config
            .label(LifecycleMetadata::KEY)
            .map(LifecycleMetadata::from_label)
            .transpose()
            .map_err(|e| e.to_string());
        let build = config
            .label(BuildMetadata::KEY)
            .and_then(|l| BuildMetadata::from_label(l).ok());
        let source = config
            .label(ProjectMetadata::KEY)
            .and_then(|l| ProjectMetadata::from_label(l).ok())
            .and_then(|p| SourceRevision::from_project(&p));
        Self {
            digest,
            platform: platform(config),
            distro: distro(&labels),
            labels,
            lifecycle,
            build,
            source,
            diff_ids: config.diff_ids().to_vec(),
            index: false,
        }
    }
}

impl BaseFacts {
    /// The facts of a run image or builder `reference` (manifest `digest`, `config`).
    #[must_use]
    pub fn read(reference: String, digest: String, config: &ConfigFile) -> Self {
        let labels = base_labels(config);
        Self {
            reference,
            digest,
            platform: platform(config),
            distro: distro(&labels),
            labels,
            diff_ids: config.diff_ids().to_vec(),
            builder: config
                .label(BuilderMetadata::KEY)
                .and_then(|l| BuilderMetadata::from_label(l).ok()),
        }
    }

    /// The top layer's diff ID (what rebased images record as `runImage.topLayer`).
    #[must_use]
    pub fn top_layer(&self) -> Option<&str> {
        self.diff_ids.last().map(String::as_str)
    }
}
