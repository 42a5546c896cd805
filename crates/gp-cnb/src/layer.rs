//! Layer content metadata: `<layers>/<layer>.toml`.

use serde::{Deserialize, Serialize};

use crate::file::{CnbError, TomlFile, is_false};

/// `[types]`: where a layer is available. All `false` when the table is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerTypes {
    #[serde(default, skip_serializing_if = "is_false")]
    pub launch: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub build: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cache: bool,
}

impl LayerTypes {
    /// A layer with no type: a scratch directory renamed to `<layer>.ignore` after the build.
    #[must_use]
    pub fn is_ignored(self) -> bool {
        !(self.launch || self.build || self.cache)
    }

    /// Whether the lifecycle restores this layer's metadata (and SBOM) before a rebuild, per the
    /// spec's layer-type table.
    #[must_use]
    pub fn restores_metadata(self) -> bool {
        self.cache || (self.launch && !self.build)
    }

    /// Whether the lifecycle restores the layer directory itself (always from the cache).
    #[must_use]
    pub fn restores_contents(self) -> bool {
        self.cache
    }
}

/// `<layer>.toml`.
///
/// Unlike `libcnb-data`'s type, unknown top-level keys are tolerated (the pre-0.6 top-level
/// `launch`/`build`/`cache` flags are ignored, as the lifecycle does for current APIs), and the
/// metadata is a free-form table rather than a generic parameter, so that the platform can carry
/// it into image labels without knowing its shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerContentMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<LayerTypes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

impl LayerContentMetadata {
    /// The layer types, treating an absent `[types]` as all `false`.
    #[must_use]
    pub fn types(&self) -> LayerTypes {
        self.types.unwrap_or_default()
    }

    /// The `exec-env` list inside `[metadata]`; empty means all execution environments.
    #[must_use]
    pub fn exec_env(&self) -> Vec<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("exec-env"))
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default()
    }

    /// What the lifecycle writes back before a rebuild: the metadata without `[types]`.
    #[must_use]
    pub fn restored(&self) -> Self {
        Self {
            types: None,
            metadata: self.metadata.clone(),
        }
    }
}

impl TomlFile for LayerContentMetadata {
    const FILE: &'static str = "layer content metadata (<layer>.toml)";

    fn validate(&self) -> Result<(), CnbError> {
        if let Some(exec_env) = self.metadata.as_ref().and_then(|m| m.get("exec-env")) {
            let ok = exec_env
                .as_array()
                .is_some_and(|a| a.iter().all(toml::Value::is_str));
            if !ok {
                return Err(CnbError::field(
                    Self::FILE,
                    "metadata.exec-env",
                    "must be an array of strings",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = r#"
[types]
launch = true
cache = true

[metadata]
version = "3.3.1"
exec-env = ["production", "test"]
[metadata.checksums]
"ruby.tgz" = "sha256:abc"
"#;

    #[test]
    fn round_trip() {
        let layer = LayerContentMetadata::from_toml_str(LAYER).unwrap();
        assert!(layer.types().launch && layer.types().cache && !layer.types().build);
        assert_eq!(layer.exec_env(), ["production", "test"]);
        let text = layer.to_toml_string().unwrap();
        assert_eq!(LayerContentMetadata::from_toml_str(&text).unwrap(), layer);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn missing_types_means_ignored_and_restore_drops_types() {
        let layer = LayerContentMetadata::from_toml_str("[metadata]\nv = 1\n").unwrap();
        assert!(layer.types().is_ignored());
        let full = LayerContentMetadata::from_toml_str(LAYER).unwrap();
        assert_eq!(
            full.restored().to_toml_string().unwrap(),
            "[metadata]\nexec-env = [\"production\", \"test\"]\nversion = \"3.3.1\"\n\n[metadata.checksums]\n\"ruby.tgz\" = \"sha256:abc\"\n"
        );
        // Legacy top-level flags are ignored, not errors.
        let legacy = LayerContentMetadata::from_toml_str("launch = true\n").unwrap();
        assert!(legacy.types().is_ignored());
    }

    #[test]
    fn restore_table() {
        let t = |build, cache, launch| LayerTypes {
            launch,
            build,
            cache,
        };
        // (build, cache, launch) -> (metadata restored, layer restored), from the spec's table.
        let rows = [
            (t(true, true, true), true, true),
            (t(true, true, false), true, true),
            (t(true, false, true), false, false),
            (t(true, false, false), false, false),
            (t(false, true, true), true, true),
            (t(false, true, false), true, true),
            (t(false, false, true), true, false),
            (t(false, false, false), false, false),
        ];
        for (types, metadata, contents) in rows {
            assert_eq!(types.restores_metadata(), metadata, "{types:?}");
            assert_eq!(types.restores_contents(), contents, "{types:?}");
        }
    }

    #[test]
    fn bad_exec_env() {
        assert_eq!(
            LayerContentMetadata::from_toml_str("[metadata]\nexec-env = \"test\"\n")
                .unwrap_err()
                .to_string(),
            "invalid layer content metadata (<layer>.toml): `metadata.exec-env` must be an array of strings"
        );
    }
}
