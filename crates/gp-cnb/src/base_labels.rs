//! Plain-string labels of build and run images: `io.buildpacks.base.*`, the deprecated
//! `io.buildpacks.stack.*`, and `io.buildpacks.rebasable`.

use std::collections::BTreeMap;

use crate::ids::{StackId, TargetId};
use crate::labels::LabelError;
use crate::target::{Distro, Target};

pub const BASE_ID: &str = "io.buildpacks.base.id";
pub const BASE_DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
pub const BASE_DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";
pub const BASE_MAINTAINER: &str = "io.buildpacks.base.maintainer";
pub const BASE_HOMEPAGE: &str = "io.buildpacks.base.homepage";
pub const BASE_RELEASED: &str = "io.buildpacks.base.released";
pub const BASE_DESCRIPTION: &str = "io.buildpacks.base.description";
pub const BASE_METADATA: &str = "io.buildpacks.base.metadata";
pub const STACK_ID: &str = "io.buildpacks.stack.id";
pub const STACK_MIXINS: &str = "io.buildpacks.stack.mixins";
pub const REBASABLE: &str = "io.buildpacks.rebasable";

/// The CNB labels of a base (build or run) image. Other labels are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImageLabels {
    pub id: Option<TargetId>,
    pub distro_name: Option<String>,
    pub distro_version: Option<String>,
    pub maintainer: Option<String>,
    pub homepage: Option<String>,
    pub released: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
    /// Deprecated since Platform API 0.12.
    pub stack_id: Option<StackId>,
    /// Deprecated since Platform API 0.12; stored as a JSON array.
    pub stack_mixins: Vec<String>,
    /// `io.buildpacks.rebasable`; `None` when the label is absent.
    pub rebasable: Option<bool>,
}

impl BaseImageLabels {
    /// Reads the CNB labels from an image config's label map.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Self, LabelError> {
        let text = |key: &str| labels.get(key).cloned();
        let id = labels
            .get(BASE_ID)
            .map(|v| v.parse::<TargetId>())
            .transpose()
            .map_err(|e| LabelError {
                label: BASE_ID,
                message: e.to_string(),
            })?;
        let stack_id = labels
            .get(STACK_ID)
            .map(|v| v.parse::<StackId>())
            .transpose()
            .map_err(|e| LabelError {
                label: STACK_ID,
                message: e.to_string(),
            })?;
        let stack_mixins = match labels.get(STACK_MIXINS) {
            Some(v) => serde_json::from_str(v).map_err(|e| LabelError {
                label: STACK_MIXINS,
                message: format!("expected a JSON array of mixin names: {e}"),
            })?,
            None => Vec::new(),
        };
        let rebasable = match labels.get(REBASABLE).map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(LabelError {
                    label: REBASABLE,
                    message: format!("expected `true` or `false`, found `{other}`"),
                });
            }
        };
        Ok(Self {
            id,
            distro_name: text(BASE_DISTRO_NAME),
            distro_version: text(BASE_DISTRO_VERSION),
            maintainer: text(BASE_MAINTAINER),
            homepage: text(BASE_HOMEPAGE),
            released: text(BASE_RELEASED),
            description: text(BASE_DESCRIPTION),
            metadata: text(BASE_METADATA),
            stack_id,
            stack_mixins,
            rebasable,
        })
    }

    /// The labels to set on an image config.
    #[must_use]
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                out.insert(key.to_owned(), value);
            }
        };
        put(BASE_ID, self.id.as_ref().map(ToString::to_string));
        put(BASE_DISTRO_NAME, self.distro_name.clone());
        put(BASE_DISTRO_VERSION, self.distro_version.clone());
        put(BASE_MAINTAINER, self.maintainer.clone());
        put(BASE_HOMEPAGE, self.homepage.clone());
        put(BASE_RELEASED, self.released.clone());
        put(BASE_DESCRIPTION, self.description.clone());
        put(BASE_METADATA, self.metadata.clone());
        put(STACK_ID, self.stack_id.as_ref().map(ToString::to_string));
        if !self.stack_mixins.is_empty() {
            put(STACK_MIXINS, serde_json::to_string(&self.stack_mixins).ok());
        }
        put(REBASABLE, self.rebasable.map(|b| b.to_string()));
        out
    }

    /// The image's target, from its config's `os`/`architecture`/`variant` and these labels.
    /// Images labelled only with the bionic stack id get the target the spec assigns to it.
    #[must_use]
    pub fn target(&self, os: &str, arch: &str, variant: Option<&str>) -> Target {
        let distro = match (&self.distro_name, &self.distro_version) {
            (None, None) if self.stack_id.as_ref().is_some_and(|s| s == StackId::BIONIC) => {
                Target::bionic().distro
            }
            (None, None) => None,
            (name, version) => Some(Distro {
                name: name.clone(),
                version: version.clone(),
            }),
        };
        Target {
            id: self.id.as_ref().map(ToString::to_string),
            os: Some(os.to_owned()),
            arch: Some(arch.to_owned()),
            variant: variant.map(ToOwned::to_owned),
            distro,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn round_trip() {
        let labels = map(&[
            (BASE_ID, "io.goldenpath.stacks.debian"),
            (BASE_DISTRO_NAME, "debian"),
            (BASE_DISTRO_VERSION, "12"),
            (BASE_MAINTAINER, "GoldenPath"),
            (BASE_RELEASED, "2026-11-01T00:00:00Z"),
            (STACK_ID, "io.goldenpath.stacks.debian"),
            (STACK_MIXINS, r#"["ca-certificates","build:git"]"#),
            (REBASABLE, "true"),
            ("org.opencontainers.image.title", "not ours"),
        ]);
        let parsed = BaseImageLabels::from_labels(&labels).unwrap();
        assert_eq!(parsed.rebasable, Some(true));
        assert_eq!(parsed.stack_mixins, ["ca-certificates", "build:git"]);
        let mut expected = labels.clone();
        expected.remove("org.opencontainers.image.title");
        assert_eq!(parsed.to_labels(), expected);
        let target = parsed.target("linux", "arm64", Some("v8"));
        assert_eq!(target.distro, Some(Distro::new("debian", "12")));
        assert_eq!(target.variant.as_deref(), Some("v8"));
    }

    #[test]
    fn bionic_inference_and_errors() {
        let bionic = BaseImageLabels::from_labels(&map(&[(STACK_ID, StackId::BIONIC)])).unwrap();
        assert_eq!(
            bionic.target("linux", "amd64", None).distro,
            Target::bionic().distro
        );
        assert_eq!(
            BaseImageLabels::from_labels(&map(&[(REBASABLE, "yes")]))
                .unwrap_err()
                .to_string(),
            "invalid `io.buildpacks.rebasable` label: expected `true` or `false`, found `yes`"
        );
        let err = BaseImageLabels::from_labels(&map(&[(STACK_MIXINS, "git")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid `io.buildpacks.stack.mixins` label: expected a JSON array"),
            "{err}"
        );
    }
}
