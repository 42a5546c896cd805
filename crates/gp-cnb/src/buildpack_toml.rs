//! `buildpack.toml`, the buildpack descriptor, for component and composite buildpacks.
//!
//! Differs from `libcnb-data`'s descriptor on purpose: one struct for both kinds (a composite is a
//! descriptor with `[[order]]`), serializable for round trips, unknown keys tolerated (the lifecycle
//! ignores them), `exec-env` support, distro versions optional, and `[metadata]` kept as a
//! free-form TOML table of this workspace's `toml` version.

use serde::{Deserialize, Serialize};

use crate::api::BuildpackApi;
use crate::file::{CnbError, TomlFile, is_false};
use crate::ids::{BuildpackId, BuildpackVersion, StackId};
use crate::order::OrderGroup;
use crate::target::BuildpackTarget;

/// A buildpack descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildpackDescriptor {
    pub api: BuildpackApi,
    pub buildpack: BuildpackInfo,
    /// Present only for composite buildpacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<BuildpackTarget>,
    /// Deprecated since Buildpack API 0.10; still read for older buildpacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    /// Buildpack-specific data, opaque to the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// Whether a descriptor describes a buildpack that runs (`bin/detect`, `bin/build`) or one that
/// only groups others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildpackKind {
    Component,
    Composite,
}

/// Which `bin/build` a component buildpack ships; decides the target inferred when `[[targets]]`
/// is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildExecutable {
    /// `bin/build`: the buildpack is inferred to target `linux`.
    Unix,
    /// `bin/build.bat` or `bin/build.exe`: inferred to target `windows`.
    Windows,
    /// Not known to the caller: no OS is inferred.
    Unknown,
}

/// The `[buildpack]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInfo {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, rename = "clear-env", skip_serializing_if = "is_false")]
    pub clear_env: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(
        default,
        rename = "sbom-formats",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sbom_formats: Vec<SbomFormat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// `[[buildpack.exec-env]]`: execution environments supported; empty means all.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<ExecEnv>,
}

/// One `[[buildpack.licenses]]` entry; at least one of `type` and `uri` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// One `[[buildpack.exec-env]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEnv {
    pub name: String,
}

/// One deprecated `[[stacks]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub id: StackId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixins: Vec<String>,
}

/// An SBOM media type a buildpack declares it writes.
///
/// Media types the spec does not list are kept as [`SbomFormat::Other`] rather than rejected, so
/// that a newer buildpack still parses; the exporter decides what to do with them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SbomFormat {
    CycloneDxJson,
    SpdxJson,
    SyftJson,
    Other(String),
}

impl SbomFormat {
    /// The media type string.
    #[must_use]
    pub fn media_type(&self) -> &str {
        match self {
            Self::CycloneDxJson => "application/vnd.cyclonedx+json",
            Self::SpdxJson => "application/spdx+json",
            Self::SyftJson => "application/vnd.syft+json",
            Self::Other(other) => other,
        }
    }

    /// The `<ext>` of `<layer>.sbom.<ext>` files in this format, for the formats the spec lists.
    #[must_use]
    pub fn file_extension(&self) -> Option<&'static str> {
        match self {
            Self::CycloneDxJson => Some("cdx.json"),
            Self::SpdxJson => Some("spdx.json"),
            Self::SyftJson => Some("syft.json"),
            Self::Other(_) => None,
        }
    }
}

impl From<String> for SbomFormat {
    fn from(value: String) -> Self {
        match value.as_str() {
            "application/vnd.cyclonedx+json" => Self::CycloneDxJson,
            "application/spdx+json" => Self::SpdxJson,
            "application/vnd.syft+json" => Self::SyftJson,
            _ => Self::Other(value),
        }
    }
}

impl From<SbomFormat> for String {
    fn from(value: SbomFormat) -> String {
        value.media_type().to_owned()
    }
}

impl BuildpackDescriptor {
    #[must_use]
    pub fn kind(&self) -> BuildpackKind {
        if self.order.is_empty() {
            BuildpackKind::Component
        } else {
            BuildpackKind::Composite
        }
    }

    /// The targets to match against base images: `[[targets]]` if any, else those implied by
    /// deprecated `[[stacks]]`, else the OS implied by the build executable.
    #[must_use]
    pub fn effective_targets(&self, executable: BuildExecutable) -> Vec<BuildpackTarget> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        if !self.stacks.is_empty() {
            return self
                .stacks
                .iter()
                .map(|s| BuildpackTarget::from_stack(&s.id))
                .collect();
        }
        vec![match executable {
            BuildExecutable::Unix => BuildpackTarget::os("linux"),
            BuildExecutable::Windows => BuildpackTarget::os("windows"),
            BuildExecutable::Unknown => BuildpackTarget::any(),
        }]
    }
}

impl TomlFile for BuildpackDescriptor {
    const FILE: &'static str = "buildpack.toml";

    fn validate(&self) -> Result<(), CnbError> {
        let err = |field: String, message: String| CnbError::field(Self::FILE, field, message);
        if !self.order.is_empty() && !self.stacks.is_empty() {
            return Err(err(
                "stacks".into(),
                "must not be set when `order` is (a composite buildpack's stacks come from its members)"
                    .into(),
            ));
        }
        for (i, license) in self.buildpack.licenses.iter().enumerate() {
            if license.kind.is_none() && license.uri.is_none() {
                return Err(err(
                    format!("buildpack.licenses[{i}]"),
                    "needs a `type` or a `uri`".into(),
                ));
            }
        }
        for (i, stack) in self.stacks.iter().enumerate() {
            if stack.id.is_any() && !stack.mixins.is_empty() {
                return Err(err(
                    format!("stacks[{i}].mixins"),
                    "must be empty when the stack id is `*`".into(),
                ));
            }
        }
        for (o, group) in self.order.iter().enumerate() {
            if group.group.is_empty() {
                return Err(err(
                    format!("order[{o}].group"),
                    "must list at least one buildpack".into(),
                ));
            }
        }
        Ok(())
    }
}

/// `extension.toml`, the image extension descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionDescriptor {
    pub api: BuildpackApi,
    pub extension: ExtensionInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<BuildpackTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// The `[extension]` table. Extension ids follow the buildpack id rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionInfo {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
}

impl TomlFile for ExtensionDescriptor {
    const FILE: &'static str = "extension.toml";

    fn validate(&self) -> Result<(), CnbError> {
        for (i, license) in self.extension.licenses.iter().enumerate() {
            if license.kind.is_none() && license.uri.is_none() {
                return Err(CnbError::field(
                    Self::FILE,
                    format!("extension.licenses[{i}]"),
                    "needs a `type` or a `uri`",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Distro, Target};

    const COMPONENT: &str = r#"
api = "0.10"

[buildpack]
id = "examples/ruby"
name = "Ruby Buildpack"
version = "0.0.1"
homepage = "https://github.com/example/ruby-buildpack"
clear-env = true
description = "Installs Ruby and gems"
keywords = ["ruby", "bundler"]
sbom-formats = ["application/vnd.cyclonedx+json", "application/x-future+json"]

[[buildpack.licenses]]
type = "Apache-2.0"

[[buildpack.licenses]]
uri = "https://example.com/LICENSE"

[[buildpack.exec-env]]
name = "production"

[[targets]]
os = "linux"
arch = "amd64"

[[targets.distros]]
name = "ubuntu"
version = "22.04"

[[targets]]
os = "linux"
arch = "arm64"
variant = "v8"

[metadata]
default-version = "3.3"
[[metadata.dependencies]]
name = "ruby"
version = "3.3.1"
future-key = "ignored by the platform"
"#;

    const COMPOSITE: &str = r#"
api = "0.12"

[buildpack]
id = "examples/java"
version = "1.2.0"
name = "Java"

[[order]]
[[order.group]]
id = "examples/jdk"
version = "17.0.1"

[[order.group]]
id = "examples/maven"
version = "3.0.0"
optional = true

[[order]]
[[order.group]]
id = "examples/gradle"
version = "2.0.0"
"#;

    #[test]
    fn component_round_trip() {
        let d = BuildpackDescriptor::from_toml_str(COMPONENT).unwrap();
        assert_eq!(d.kind(), BuildpackKind::Component);
        assert!(d.buildpack.clear_env);
        assert_eq!(
            d.buildpack.sbom_formats[0].file_extension(),
            Some("cdx.json")
        );
        assert_eq!(
            d.buildpack.sbom_formats[1],
            SbomFormat::Other("application/x-future+json".into())
        );
        assert_eq!(d.targets[1].variant.as_deref(), Some("v8"));
        let text = d.to_toml_string().unwrap();
        assert_eq!(BuildpackDescriptor::from_toml_str(&text).unwrap(), d);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn composite_round_trip() {
        let d = BuildpackDescriptor::from_toml_str(COMPOSITE).unwrap();
        assert_eq!(d.kind(), BuildpackKind::Composite);
        assert_eq!(d.order.len(), 2);
        assert!(d.order[0].group[1].optional);
        let text = d.to_toml_string().unwrap();
        assert_eq!(BuildpackDescriptor::from_toml_str(&text).unwrap(), d);
    }

    #[test]
    fn legacy_stacks_and_inferred_targets() {
        let text = r#"
api = "0.7"
[buildpack]
id = "examples/legacy"
version = "0.1.0"
[[stacks]]
id = "io.buildpacks.stacks.bionic"
mixins = ["build:git"]
"#;
        let d = BuildpackDescriptor::from_toml_str(text).unwrap();
        let targets = d.effective_targets(BuildExecutable::Unix);
        assert!(targets[0].satisfies(&Target::bionic()));
        let mut noble = Target::bionic();
        noble.distro = Some(Distro::new("ubuntu", "24.04"));
        assert!(!targets[0].satisfies(&noble));

        let bare = BuildpackDescriptor::from_toml_str(
            "api = \"0.12\"\n[buildpack]\nid = \"a/b\"\nversion = \"1.0.0\"\n",
        )
        .unwrap();
        assert_eq!(
            bare.effective_targets(BuildExecutable::Windows),
            vec![BuildpackTarget::os("windows")]
        );
    }

    #[test]
    fn unknown_keys_are_tolerated() {
        let text = "api = \"0.12\"\nfuture = 1\n[buildpack]\nid = \"a/b\"\nversion = \"1.0.0\"\nclear_env = true\n[metadata]\nfree = 1\n";
        let (d, unknown) = BuildpackDescriptor::from_toml_str_with_unknown_keys(text).unwrap();
        assert!(!d.buildpack.clear_env);
        assert_eq!(unknown, ["buildpack.clear_env", "future"]);
        let (_, none) = BuildpackDescriptor::from_toml_str_with_unknown_keys(COMPONENT).unwrap();
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn errors_name_file_and_field() {
        let bad_id = "api = \"0.12\"\n[buildpack]\nid = \"sbom\"\nversion = \"1.0.0\"\n";
        let err = BuildpackDescriptor::from_toml_str(bad_id)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid buildpack.toml: TOML parse error at line 3, column 6"),
            "{err}"
        );
        assert!(
            err.contains("invalid buildpack id `sbom`: `sbom` is reserved by the lifecycle"),
            "{err}"
        );

        let bad_api = "api = \"0.x\"\n[buildpack]\nid = \"a/b\"\nversion = \"1.0.0\"\n";
        let err = BuildpackDescriptor::from_toml_str(bad_api)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid Buildpack API version `0.x`"), "{err}");

        let both = format!("{COMPOSITE}\n[[stacks]]\nid = \"*\"\n");
        assert_eq!(
            BuildpackDescriptor::from_toml_str(&both)
                .unwrap_err()
                .to_string(),
            "invalid buildpack.toml: `stacks` must not be set when `order` is (a composite buildpack's stacks come from its members)"
        );

        let license = "api = \"0.12\"\n[buildpack]\nid = \"a/b\"\nversion = \"1.0.0\"\n[[buildpack.licenses]]\n";
        assert_eq!(
            BuildpackDescriptor::from_toml_str(license)
                .unwrap_err()
                .to_string(),
            "invalid buildpack.toml: `buildpack.licenses[0]` needs a `type` or a `uri`"
        );
    }

    #[test]
    fn extension_round_trip() {
        let text = r#"
api = "0.10"
[extension]
id = "samples/curl"
version = "0.0.1"
name = "Curl"
keywords = ["curl"]
[[extension.licenses]]
type = "MIT"
[[targets]]
os = "linux"
[metadata]
note = "adds curl to the run image"
"#;
        let ext = ExtensionDescriptor::from_toml_str(text).unwrap();
        assert_eq!(ext.extension.id, "samples/curl");
        let again = ExtensionDescriptor::from_toml_str(&ext.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, ext);
        let bad = "api = \"0.10\"\n[extension]\nid = \"x\"\nversion = \"1.0.0\"\n[[extension.licenses]]\n";
        assert_eq!(
            ExtensionDescriptor::from_toml_str(bad)
                .unwrap_err()
                .to_string(),
            "invalid extension.toml: `extension.licenses[0]` needs a `type` or a `uri`"
        );
    }

    #[test]
    fn parse_error_message_is_exact() {
        let text = "api = \"0.10\"\n[buildpack]\nid = \"examples/ruby\"\nversion = \"1.0\"\n";
        let err = BuildpackDescriptor::from_toml_str(text).unwrap_err();
        insta::assert_snapshot!(err.to_string());
    }

    #[test]
    fn from_path_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buildpack.toml");
        let err = BuildpackDescriptor::from_path(&path).unwrap_err();
        assert!(matches!(err, CnbError::CannotRead { .. }));
        assert!(err.to_string().contains("buildpack.toml"), "{err}");
        fs_err::write(&path, "api = 1").unwrap();
        let err = BuildpackDescriptor::from_path(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("invalid buildpack.toml at `{}`:", path.display())),
            "{err}"
        );
        fs_err::write(&path, COMPOSITE).unwrap();
        assert!(BuildpackDescriptor::from_path(&path).is_ok());
    }
}
