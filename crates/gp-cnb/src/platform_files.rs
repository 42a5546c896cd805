//! Files the platform and lifecycle phases hand each other: `analyzed.toml`, `report.toml`,
//! `metadata.toml` (the launcher's config), `run.toml` and the legacy `stack.toml`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::file::{CnbError, TomlFile, is_false};
use crate::ids::{BuildpackId, ProcessType};
use crate::labels::LifecycleMetadata;
use crate::launch::{Process, ProcessCommand, Slice};
use crate::order::GroupMember;
use crate::plan::BomEntry;
use crate::target::Target;

/// An image named by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReference {
    pub reference: String,
}

/// `[run-image]` of `analyzed.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedRunImage {
    /// The platform- or extension-provided name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// A digest reference, daemon image id or layout path; cleared when an extension switches
    /// the run image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub extend: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// `[build-image]` of `analyzed.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzedBuildImage {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub extend: bool,
}

/// `analyzed.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalyzedToml {
    /// The previous app image, when there is one.
    #[serde(default, rename = "image", skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<ImageReference>,
    /// The previous image's `io.buildpacks.lifecycle.metadata`, in TOML (same keys as the label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<LifecycleMetadata>,
    #[serde(default, rename = "run-image", skip_serializing_if = "Option::is_none")]
    pub run_image: Option<AnalyzedRunImage>,
    #[serde(
        default,
        rename = "build-image",
        skip_serializing_if = "Option::is_none"
    )]
    pub build_image: Option<AnalyzedBuildImage>,
}

impl TomlFile for AnalyzedToml {
    const FILE: &'static str = "analyzed.toml";
}

/// `[image]` of `report.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportImage {
    #[serde(default)]
    pub tags: Vec<String>,
    /// Set when exported to a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Set when exported to a docker daemon.
    #[serde(default, rename = "image-id", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Set when exported to a registry. Written as an integer (as the reference lifecycle does);
    /// read from an integer or from the string the spec's example shows.
    #[serde(
        default,
        rename = "manifest-size",
        deserialize_with = "size_from_int_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub manifest_size: Option<u64>,
}

fn size_from_int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct SizeVisitor;
    impl Visitor<'_> for SizeVisitor {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a size in bytes (integer or decimal string)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("manifest size must not be negative"))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.parse()
                .map(Some)
                .map_err(|_| E::custom(format!("`{v}` is not a size in bytes")))
        }
    }
    d.deserialize_any(SizeVisitor)
}

/// `report.toml`, written by the exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportToml {
    #[serde(default)]
    pub image: ReportImage,
}

impl TomlFile for ReportToml {
    const FILE: &'static str = "report.toml";
}

/// A process in `metadata.toml`: a `launch.toml` process plus who contributed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataProcess {
    #[serde(rename = "type")]
    pub kind: ProcessType,
    pub command: ProcessCommand,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(
        default,
        rename = "buildpack-id",
        skip_serializing_if = "Option::is_none"
    )]
    pub buildpack_id: Option<BuildpackId>,
    /// `["*"]` or absent: every execution environment.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// A `launch.toml` process as `metadata.toml` lists it, before its contributor is known
/// (`buildpack_id` is `None`); `direct` absent means `false`. `default` is not a process field
/// here: it becomes [`MetadataToml::default_process_type`].
impl From<Process> for MetadataProcess {
    fn from(p: Process) -> Self {
        Self {
            kind: p.kind,
            command: p.command,
            args: p.args,
            direct: p.direct.unwrap_or(false),
            working_dir: p.working_dir,
            buildpack_id: None,
            exec_env: p.exec_env,
        }
    }
}

impl MetadataProcess {
    /// Whether the process may run in execution environment `env`.
    #[must_use]
    pub fn applies_to(&self, env: &str) -> bool {
        self.exec_env.is_empty() || self.exec_env.iter().any(|e| e == "*" || e == env)
    }
}

/// `<layers>/config/metadata.toml`: what the launcher reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataToml {
    #[serde(
        default,
        rename = "buildpack-default-process-type",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_process_type: Option<ProcessType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buildpacks: Vec<GroupMember>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<GroupMember>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<MetadataProcess>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<Slice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bom: Vec<BomEntry>,
    /// Image labels from the buildpacks' `launch.toml`, later buildpacks winning on the same key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<crate::Label>,
}

impl MetadataToml {
    #[must_use]
    pub fn process(&self, kind: &str) -> Option<&MetadataProcess> {
        self.processes.iter().find(|p| p.kind == kind)
    }
}

impl TomlFile for MetadataToml {
    const FILE: &'static str = "metadata.toml";

    fn validate(&self) -> Result<(), CnbError> {
        if let Some(default) = &self.default_process_type
            && self.process(default.as_str()).is_none()
        {
            return Err(CnbError::field(
                Self::FILE,
                "buildpack-default-process-type",
                format!("names `{default}`, which is not among `processes`"),
            ));
        }
        Ok(())
    }
}

/// One `[[images]]` entry of `run.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// `run.toml`: the run images a builder offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunToml {
    #[serde(default)]
    pub images: Vec<RunImageEntry>,
}

impl RunToml {
    /// The entry whose image or one of whose mirrors is `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<&RunImageEntry> {
        self.images
            .iter()
            .find(|e| e.image.as_deref() == Some(name) || e.mirrors.iter().any(|m| m == name))
    }
}

impl TomlFile for RunToml {
    const FILE: &'static str = "run.toml";

    fn validate(&self) -> Result<(), CnbError> {
        for (i, entry) in self.images.iter().enumerate() {
            if entry.image.is_none() && !entry.mirrors.is_empty() {
                return Err(CnbError::field(
                    Self::FILE,
                    format!("images[{i}].mirrors"),
                    "must not be set without `image`",
                ));
            }
        }
        Ok(())
    }
}

/// An image and its mirrors, as in `stack.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackImage {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// The legacy `stack.toml` (Platform API < 0.12), superseded by `run.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackToml {
    #[serde(default, rename = "run-image")]
    pub run_image: StackImage,
    #[serde(
        default,
        rename = "build-image",
        skip_serializing_if = "Option::is_none"
    )]
    pub build_image: Option<StackImage>,
}

impl StackToml {
    /// The equivalent `run.toml`.
    #[must_use]
    pub fn to_run_toml(&self) -> RunToml {
        RunToml {
            images: vec![RunImageEntry {
                image: Some(self.run_image.image.clone()),
                mirrors: self.run_image.mirrors.clone(),
            }],
        }
    }
}

impl TomlFile for StackToml {
    const FILE: &'static str = "stack.toml";
}

#[cfg(test)]
mod tests;
