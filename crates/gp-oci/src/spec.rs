//! The OCI (and Docker v2) JSON documents as types: media types, platforms, image configs, and the manifests and
//! configs we write.
//!
//! Why our own types and not `oci-spec`'s: images we must accept are not always what `oci-spec` accepts.
//! - Docker v2 manifests and lists (`application/vnd.docker.distribution.manifest.v2+json`, ...) are common in
//!   registries; `oci_spec::image::MediaType` has no variant for them, so every decision on them would be a string
//!   comparison inside `Other`.
//! - `oci_spec::image::ImageConfiguration` requires `architecture`, `os` and `rootfs` and a string for every label
//!   value, so a whole config is refused for one odd field. The readers here have always treated a missing or
//!   mistyped field as absent (a label that is not a string is skipped, `Env` entries that are not strings are
//!   skipped); [`ConfigFile`] keeps that, field by field.
//! - What we write must stay byte for byte what it was (image digests are asserted reproducible): the key order of
//!   [`WrittenConfig`] and [`WrittenManifest`] is the order of their fields, and `oci-spec`'s structs serialize
//!   optional fields and key orders of their own.
//!
//! `oci-spec` is used where it fits: the tests check that what we write parses as `oci_spec::image::ImageManifest`
//! and `ImageConfiguration`, i.e. that it is valid to a strict reader.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::layout::Kind;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A media type: the ones we decide on, and any other as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerManifestList,
    OciConfig,
    DockerConfig,
    OciLayer,
    OciLayerGzip,
    OciLayerZstd,
    DockerLayerGzip,
    /// Anything else, kept exactly (an artifact, a foreign layer, a typo in a hostile layout).
    Other(String),
}

/// How a layer's bytes are compressed, as its media type declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    None,
    Gzip,
}

impl MediaType {
    const KNOWN: [(&'static str, Self); 10] = [
        (MEDIA_MANIFEST, Self::OciManifest),
        (MEDIA_INDEX, Self::OciIndex),
        (MEDIA_DOCKER_MANIFEST, Self::DockerManifest),
        (MEDIA_DOCKER_LIST, Self::DockerManifestList),
        (MEDIA_CONFIG, Self::OciConfig),
        (MEDIA_DOCKER_CONFIG, Self::DockerConfig),
        (MEDIA_LAYER_TAR, Self::OciLayer),
        (MEDIA_LAYER_GZIP, Self::OciLayerGzip),
        (MEDIA_LAYER_ZSTD, Self::OciLayerZstd),
        (MEDIA_DOCKER_LAYER_GZIP, Self::DockerLayerGzip),
    ];

    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::OciManifest => MEDIA_MANIFEST,
            Self::OciIndex => MEDIA_INDEX,
            Self::DockerManifest => MEDIA_DOCKER_MANIFEST,
            Self::DockerManifestList => MEDIA_DOCKER_LIST,
            Self::OciConfig => MEDIA_CONFIG,
            Self::DockerConfig => MEDIA_DOCKER_CONFIG,
            Self::OciLayer => MEDIA_LAYER_TAR,
            Self::OciLayerGzip => MEDIA_LAYER_GZIP,
            Self::OciLayerZstd => MEDIA_LAYER_ZSTD,
            Self::DockerLayerGzip => MEDIA_DOCKER_LAYER_GZIP,
            Self::Other(s) => s,
        }
    }

    /// Whether the blob names other blobs: a manifest or an index (OCI or Docker); `None` for the rest.
    #[must_use]
    pub fn kind(&self) -> Option<Kind> {
        match self {
            Self::OciManifest | Self::DockerManifest => Some(Kind::Manifest),
            Self::OciIndex | Self::DockerManifestList => Some(Kind::Index),
            _ => None,
        }
    }

    /// Whether the blob is an image config.
    #[must_use]
    pub fn is_config(&self) -> bool {
        match self {
            Self::OciConfig | Self::DockerConfig => true,
            Self::Other(s) => s.contains("config"),
            _ => false,
        }
    }

    /// How a layer of this type is compressed, when we can unpack it: gzip for `…gzip`, none for a plain `….tar`
    /// (any case); `None` for others (zstd, non-layers).
    #[must_use]
    pub fn layer_compression(&self) -> Option<LayerCompression> {
        let s = self.as_str();
        if s.ends_with("gzip") {
            Some(LayerCompression::Gzip)
        } else if s
            .rsplit(['.', '/'])
            .next()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("tar"))
        {
            Some(LayerCompression::None)
        } else {
            None
        }
    }
}

impl From<&str> for MediaType {
    fn from(s: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(k, _)| *k == s)
            .map_or_else(|| Self::Other(s.to_owned()), |(_, m)| m.clone())
    }
}

impl From<String> for MediaType {
    fn from(s: String) -> Self {
        match Self::from(s.as_str()) {
            Self::Other(_) => Self::Other(s),
            known => known,
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for MediaType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for MediaType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for MediaType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MediaType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// The `platform` of an index entry; fields that are missing or not strings are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default, deserialize_with = "lenient::string")]
    pub os: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub architecture: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub variant: Option<String>,
}

impl Platform {
    /// Reads a platform leniently: anything that is not an object is no platform.
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Self> {
        v.is_object().then(|| Self::deserialize(v).ok()).flatten()
    }
}

/// An image config blob (`application/vnd.oci.image.config.v1+json` or Docker's), as read.
///
/// Lenient by design (see the module comment): a known field that is missing or of the wrong type reads as absent,
/// as the string-indexed readers before it did. Fields we do not model (`created`, `history`, ...) are kept in
/// `extra`, in their order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub architecture: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub os: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    pub config: RuntimeConfig,
    #[serde(default, deserialize_with = "lenient::object")]
    pub rootfs: RootFs,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `config` object of an image config: what a container of the image runs with. Unmodelled fields
/// (`ExposedPorts`, `Volumes`, `StopSignal`, ...) are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(
        rename = "User",
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub user: Option<String>,
    #[serde(
        rename = "Env",
        default,
        deserialize_with = "lenient::strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        deserialize_with = "lenient::strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        rename = "Cmd",
        default,
        deserialize_with = "lenient::strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "WorkingDir",
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(
        rename = "Labels",
        default,
        deserialize_with = "lenient::labels",
        skip_serializing_if = "Option::is_none"
    )]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `rootfs`: the diff-IDs of the layers, bottom first (entries that are not strings are skipped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient::string",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub diff_ids: Option<Vec<String>>,
}

impl ConfigFile {
    /// The label `key`, when it is set (to a string).
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// All labels (string-valued ones), sorted by key.
    #[must_use]
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.config.labels.as_ref().unwrap_or(&NONE)
    }

    /// `Env`, as `KEY=value` strings in order.
    #[must_use]
    pub fn env(&self) -> &[String] {
        self.config.env.as_deref().unwrap_or_default()
    }

    /// `Env` split at the first `=` (entries without one are skipped), in order.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env().iter().filter_map(|e| e.split_once('='))
    }

    /// The value of the environment variable `key`, the first time `Env` sets it.
    #[must_use]
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env_vars().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.config.user.as_deref()
    }

    #[must_use]
    pub fn working_dir(&self) -> Option<&str> {
        self.config.working_dir.as_deref()
    }

    #[must_use]
    pub fn entrypoint(&self) -> &[String] {
        self.config.entrypoint.as_deref().unwrap_or_default()
    }

    #[must_use]
    pub fn cmd(&self) -> &[String] {
        self.config.cmd.as_deref().unwrap_or_default()
    }

    #[must_use]
    pub fn os(&self) -> Option<&str> {
        self.os.as_deref()
    }

    #[must_use]
    pub fn architecture(&self) -> Option<&str> {
        self.architecture.as_deref()
    }

    #[must_use]
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// `<os>/<architecture>`, `?` for what is not set.
    #[must_use]
    pub fn platform(&self) -> String {
        format!(
            "{}/{}",
            self.os().unwrap_or("?"),
            self.architecture().unwrap_or("?")
        )
    }

    /// The layers' diff-IDs, bottom first, as written (not yet parsed as digests).
    #[must_use]
    pub fn diff_ids(&self) -> &[String] {
        self.rootfs.diff_ids.as_deref().unwrap_or_default()
    }
}

/// A manifest or an index as a registry serves it, before its descriptors are checked one by one (they stay JSON
/// values so that [`crate::layout::Desc::parse`] can say which field of which one is wrong). Lenient like
/// [`ConfigFile`]: a field of the wrong type reads as absent, and so does everything when the body is not an object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestOrIndex {
    #[serde(default, deserialize_with = "lenient::media_type")]
    pub media_type: Option<MediaType>,
    #[serde(default, deserialize_with = "lenient::array")]
    pub manifests: Option<Vec<Value>>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default, deserialize_with = "lenient::array")]
    pub layers: Option<Vec<Value>>,
}

impl ManifestOrIndex {
    #[must_use]
    pub fn from_value(v: &Value) -> Self {
        if v.is_object() {
            Self::deserialize(v).unwrap_or_default()
        } else {
            Self::default()
        }
    }

    /// The declared media type; without one, an index when it has a `manifests` list, else a manifest.
    #[must_use]
    pub fn media_type_or_guess(&self) -> MediaType {
        self.media_type
            .clone()
            .unwrap_or(if self.manifests.is_some() {
                MediaType::OciIndex
            } else {
                MediaType::OciManifest
            })
    }
}

/// The config blob we write. Its fields are in the order they have always been written: image digests depend on
/// it.
#[derive(Debug, Serialize)]
pub struct WrittenConfig<'a> {
    pub created: &'a str,
    pub architecture: &'a str,
    pub os: &'a str,
    pub config: &'a RuntimeConfig,
    pub rootfs: WrittenRootFs<'a>,
    pub history: Vec<History<'a>>,
}

#[derive(Debug, Serialize)]
pub struct WrittenRootFs<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub diff_ids: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct History<'a> {
    pub created: &'a str,
    pub created_by: &'a str,
}

/// The image manifest we write (`schemaVersion`, `mediaType`, `config`, `layers`, in that order: digests depend on
/// it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenManifest<'a> {
    pub schema_version: u32,
    pub media_type: &'a MediaType,
    pub config: WrittenDescriptor<'a>,
    pub layers: Vec<WrittenDescriptor<'a>>,
}

/// A descriptor as we write it: `mediaType`, `digest`, `size`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenDescriptor<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
}

/// Deserializers that read a field of the wrong type as absent (and skip list or map entries that are not
/// strings) instead of refusing the whole document.
mod lenient {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            _ => None,
        })
    }

    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(a) => Some(
                a.into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    pub fn media_type<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<super::MediaType>, D::Error> {
        Ok(string(d)?.map(super::MediaType::from))
    }

    pub fn array<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(a) => Some(a),
            _ => None,
        })
    }

    pub fn labels<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<BTreeMap<String, String>>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Object(m) => Some(
                m.into_iter()
                    .filter_map(|(k, v)| match v {
                        Value::String(s) => Some((k, s)),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    /// An object read leniently itself; anything else (or an object that does not read) is the default.
    pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: serde::de::DeserializeOwned + Default,
    {
        let v = Value::deserialize(d)?;
        Ok(if v.is_object() {
            T::deserialize(v).unwrap_or_default()
        } else {
            T::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_types_round_trip_and_keep_unknown_ones() {
        for (s, _) in MediaType::KNOWN {
            let m = MediaType::from(s);
            assert!(!matches!(m, MediaType::Other(_)), "{s}");
            assert_eq!(m.as_str(), s);
        }
        let odd = MediaType::from("application/x-thing");
        assert_eq!(odd, MediaType::Other("application/x-thing".into()));
        assert_eq!(
            serde_json::to_string(&odd).unwrap(),
            "\"application/x-thing\""
        );
        let back: MediaType =
            serde_json::from_str("\"application/vnd.oci.image.index.v1+json\"").unwrap();
        assert_eq!(back, MediaType::OciIndex);
        assert_eq!(back.kind(), Some(Kind::Index));
        assert_eq!(MediaType::DockerManifest.kind(), Some(Kind::Manifest));
        assert_eq!(
            MediaType::DockerLayerGzip.layer_compression(),
            Some(LayerCompression::Gzip)
        );
        assert_eq!(
            MediaType::from("application/x.TAR").layer_compression(),
            Some(LayerCompression::None)
        );
        assert_eq!(MediaType::OciLayerZstd.layer_compression(), None);
    }

    #[test]
    fn configs_read_leniently_and_keep_what_they_do_not_model() {
        let v = json!({
            "architecture": 7,
            "os": "linux",
            "created": "2020-01-01T00:00:00Z",
            "config": {
                "Env": ["A=1", 3, "B=2=3", "NOEQ"],
                "Labels": {"a": "x", "n": 1},
                "User": ["root"],
                "ExposedPorts": {"80/tcp": {}},
            },
            "rootfs": "layers",
        });
        let c: ConfigFile = serde_json::from_value(v).unwrap();
        assert_eq!(c.architecture(), None);
        assert_eq!(c.os(), Some("linux"));
        assert_eq!(c.env(), ["A=1", "B=2=3", "NOEQ"]);
        assert_eq!(c.env_var("B"), Some("2=3"));
        assert_eq!(c.label("a"), Some("x"));
        assert_eq!(c.label("n"), None);
        assert_eq!(c.user(), None);
        assert!(c.diff_ids().is_empty());
        assert_eq!(c.extra["created"], "2020-01-01T00:00:00Z");
        assert_eq!(c.config.extra["ExposedPorts"], json!({"80/tcp": {}}));
        let empty: ConfigFile = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, ConfigFile::default());
        assert!(serde_json::from_str::<ConfigFile>("[]").is_err());
    }

    #[test]
    fn platforms_read_leniently() {
        let p = Platform::from_value(&json!({"os": "linux", "architecture": 1})).unwrap();
        assert_eq!(p.os.as_deref(), Some("linux"));
        assert_eq!(p.architecture, None);
        assert_eq!(Platform::from_value(&json!("linux/amd64")), None);
    }
}
