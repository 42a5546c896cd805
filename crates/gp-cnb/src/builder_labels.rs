//! Labels on builder images and buildpackages, as `pack` and kpack write and read them:
//! `io.buildpacks.builder.metadata`, `io.buildpacks.buildpack.layers`,
//! `io.buildpacks.buildpack.order` and `io.buildpacks.buildpackage.metadata`.
//!
//! Only the buildpackage label is in the distribution spec; the builder labels are `pack`'s
//! de-facto format, modelled so that builders made here are usable by `pack` and kpack.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{BuildpackApi, PlatformApi};
use crate::buildpack_toml::Stack;
use crate::ids::{BuildpackId, BuildpackVersion};
use crate::labels::JsonLabel;
use crate::order::OrderGroup;
use crate::target::BuildpackTarget;

/// A run image and its mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunImageRef {
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
}

/// The deprecated `stack` key of the builder metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderStack {
    #[serde(rename = "runImage")]
    pub run_image: RunImageRef,
}

/// A buildpack (or extension) a builder contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderBuildpack {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// API versions a lifecycle supports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSet {
    #[serde(default)]
    pub deprecated: Vec<String>,
    #[serde(default)]
    pub supported: Vec<String>,
}

/// `lifecycle.apis`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleApis {
    #[serde(default)]
    pub buildpack: ApiSet,
    #[serde(default)]
    pub platform: ApiSet,
}

/// `lifecycle.api` (older builders: one version each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleApi {
    pub buildpack: BuildpackApi,
    pub platform: PlatformApi,
}

/// The lifecycle a builder ships.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderLifecycle {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<LifecycleApi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apis: Option<LifecycleApis>,
}

/// The tool that made the builder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// `io.buildpacks.builder.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderMetadata {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<BuilderStack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<RunImageRef>,
    #[serde(default)]
    pub buildpacks: Vec<BuilderBuildpack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<BuilderBuildpack>,
    #[serde(default)]
    pub lifecycle: BuilderLifecycle,
    #[serde(rename = "createdBy", default)]
    pub created_by: CreatedBy,
}

impl BuilderMetadata {
    /// The run images: `images`, or the deprecated `stack.runImage`.
    #[must_use]
    pub fn run_images(&self) -> Vec<&RunImageRef> {
        if self.images.is_empty() {
            self.stack.iter().map(|s| &s.run_image).collect()
        } else {
            self.images.iter().collect()
        }
    }
}

impl JsonLabel for BuilderMetadata {
    const KEY: &'static str = "io.buildpacks.builder.metadata";
}

/// What a builder or buildpackage records about one buildpack version it contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackLayerInfo {
    pub api: BuildpackApi,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<BuildpackTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderGroup>,
    /// The diff ID of the layer holding `/cnb/buildpacks/<id>/<version>/`.
    #[serde(rename = "layerDiffID")]
    pub layer_diff_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `io.buildpacks.buildpack.layers`: id → version → layer info.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BuildpackLayers(
    pub BTreeMap<BuildpackId, BTreeMap<BuildpackVersion, BuildpackLayerInfo>>,
);

impl BuildpackLayers {
    #[must_use]
    pub fn get(&self, id: &BuildpackId, version: &BuildpackVersion) -> Option<&BuildpackLayerInfo> {
        self.0.get(id).and_then(|versions| versions.get(version))
    }
}

impl JsonLabel for BuildpackLayers {
    const KEY: &'static str = "io.buildpacks.buildpack.layers";
}

/// `io.buildpacks.buildpack.order`: the builder's default order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BuildpackOrder(pub Vec<OrderGroup>);

impl JsonLabel for BuildpackOrder {
    const KEY: &'static str = "io.buildpacks.buildpack.order";
}

/// `io.buildpacks.buildpackage.metadata`: the entrypoint buildpack of a buildpackage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackageMetadata {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<Stack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<BuildpackTarget>,
}

impl JsonLabel for BuildpackageMetadata {
    const KEY: &'static str = "io.buildpacks.buildpackage.metadata";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_metadata_round_trip() {
        let label = r#"{
          "description": "Noble builder",
          "stack": {"runImage": {"image": "example/run:noble", "mirrors": ["m.example/run:noble"]}},
          "images": [{"image": "example/run:noble"}],
          "buildpacks": [{"id": "heroku/nodejs", "version": "3.0.0", "homepage": "https://x"}],
          "lifecycle": {
            "version": "0.20.0",
            "api": {"buildpack": "0.2", "platform": "0.3"},
            "apis": {
              "buildpack": {"deprecated": [], "supported": ["0.7", "0.12"]},
              "platform": {"deprecated": [], "supported": ["0.7", "0.15"]}
            }
          },
          "createdBy": {"name": "Pack CLI", "version": "0.36.0"}
        }"#;
        let md = BuilderMetadata::from_label(label).unwrap();
        assert_eq!(md.run_images()[0].image, "example/run:noble");
        assert_eq!(
            md.lifecycle.api.as_ref().unwrap().platform,
            PlatformApi::new(0, 3)
        );
        let again = BuilderMetadata::from_label(&md.to_label().unwrap()).unwrap();
        assert_eq!(again, md);
    }

    #[test]
    fn buildpack_layers_and_order() {
        let layers = r#"{
          "heroku/nodejs": {
            "3.0.0": {
              "api": "0.10",
              "order": [{"group": [{"id": "heroku/nodejs-engine", "version": "3.0.0"},
                                   {"id": "heroku/nodejs-npm", "version": "3.0.0", "optional": true}]}],
              "layerDiffID": "sha256:composite",
              "homepage": "https://example.com"
            }
          },
          "heroku/nodejs-engine": {
            "3.0.0": {
              "api": "0.10",
              "targets": [{"os": "linux", "arch": "amd64"}],
              "layerDiffID": "sha256:engine"
            }
          }
        }"#;
        let parsed = BuildpackLayers::from_label(layers).unwrap();
        let info = parsed
            .get(&"heroku/nodejs".parse().unwrap(), &"3.0.0".parse().unwrap())
            .unwrap();
        assert!(info.order[0].group[1].optional);
        let again = BuildpackLayers::from_label(&parsed.to_label().unwrap()).unwrap();
        assert_eq!(again, parsed);

        let order =
            BuildpackOrder::from_label(r#"[{"group":[{"id":"heroku/nodejs","version":"3.0.0"}]}]"#)
                .unwrap();
        assert_eq!(
            order.to_label().unwrap(),
            r#"[{"group":[{"id":"heroku/nodejs","version":"3.0.0"}]}]"#
        );
    }

    #[test]
    fn buildpackage_metadata() {
        let md = BuildpackageMetadata::from_label(
            r#"{"id":"example/java","version":"1.0.0","stacks":[{"id":"*"}]}"#,
        )
        .unwrap();
        assert!(md.stacks[0].id.is_any());
        assert_eq!(
            md.to_label().unwrap(),
            r#"{"id":"example/java","version":"1.0.0","stacks":[{"id":"*"}]}"#
        );
    }
}
