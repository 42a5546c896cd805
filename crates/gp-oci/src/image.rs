//! Writing a whole image into a layout (layers, config, manifest, tag) and reading one back (platform selection,
//! config, layers), with every blob verified.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::json;

use crate::digest::Digest;
use crate::layer::{Entry, LayerError, LayerInfo, LayerOptions, write_layer};
use crate::layout::{
    Desc, Kind, Layout, LayoutError, MAX_DEPTH, excerpt, excerpt_str, list_excerpt, parse_children,
};
pub use crate::spec::MEDIA_CONFIG;
use crate::spec::{
    ConfigFile, History, LayerCompression, MediaType, RuntimeConfig, WrittenConfig,
    WrittenDescriptor, WrittenManifest, WrittenRootFs,
};

/// The `created` time of every image and history entry we write (reproducible builds).
const CREATED: &str = "1980-01-01T00:00:01Z";

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("`{what}` of {digest} is not valid JSON: {message}")]
    Json {
        what: &'static str,
        digest: Digest,
        message: String,
    },
    #[error("index {digest} has no image for {os}/{arch}; it has: {available}")]
    NoPlatform {
        digest: Digest,
        os: String,
        arch: String,
        available: String,
    },
    #[error(
        "layer {digest} has media type `{media_type}`, which cannot be unpacked (gzip and plain tar can)"
    )]
    LayerMediaType { digest: Digest, media_type: String },
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
}

/// The runtime configuration of an image we write.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
}

pub use gp_cnb::host_arch;

/// Writes one layer straight into the layout's blob store (through a random, exclusive temp file).
pub fn add_layer(
    layout: &Layout,
    entries: &[Entry],
    opts: &LayerOptions,
) -> Result<LayerInfo, ImageError> {
    let tmp = layout.temp_blob()?;
    let tmp_path = tmp.path().to_path_buf();
    let file = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let (info, w) = write_layer(entries, opts, file)?;
    let tmp = w.into_inner().map_err(|e| io(&tmp_path, e.into_error()))?;
    layout.commit_blob(tmp, &info.digest)?;
    Ok(info)
}

/// Writes an existing tar stream (e.g. a root filesystem from a bootstrap tool) as a gzip layer, byte for byte:
/// ownership, modes and times are the archive's. Returns the layer's identity.
pub fn add_tar_layer(
    layout: &Layout,
    mut tar: impl Read,
    level: u32,
) -> Result<LayerInfo, ImageError> {
    use crate::compress::ParallelGzip;
    use crate::digest::HashingWriter;
    let tmp = layout.temp_blob()?;
    let tmp_path = tmp.path().to_path_buf();
    let written = (|| -> std::io::Result<(LayerInfo, tempfile::NamedTempFile)> {
        let file = std::io::BufWriter::with_capacity(1 << 20, tmp);
        let mut w = HashingWriter::new(ParallelGzip::new(HashingWriter::new(file), level));
        std::io::copy(&mut tar, &mut w)?;
        let (diff_id, _, gz) = w.finish();
        let (digest, size, file) = gz.finish()?.finish();
        let tmp = file
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        let info = LayerInfo {
            digest,
            diff_id,
            size,
            media_type: crate::layer::MEDIA_TYPE_GZIP,
        };
        Ok((info, tmp))
    })();
    let (info, tmp) = written.map_err(|e| io(&tmp_path, e))?;
    layout.commit_blob(tmp, &info.digest)?;
    Ok(info)
}

fn io(path: &Path, source: std::io::Error) -> ImageError {
    ImageError::Layout(LayoutError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes config and manifest for `layers` (already in the layout) and tags the result.
pub fn write_image(
    layout: &Layout,
    tag: &str,
    layers: &[LayerInfo],
    config: &ImageConfig,
) -> Result<Desc, ImageError> {
    let desc = compose_image(layout, layers, config)?;
    layout.set_tag(tag, &desc)?;
    Ok(desc)
}

/// [`write_image`] without a tag: the config and manifest blobs only, the layout's index untouched (many writers
/// may share one layout this way).
pub fn compose_image(
    layout: &Layout,
    layers: &[LayerInfo],
    config: &ImageConfig,
) -> Result<Desc, ImageError> {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let runtime = RuntimeConfig {
        user: config.user.clone(),
        env: non_empty(&config.env),
        entrypoint: non_empty(&config.entrypoint),
        cmd: non_empty(&config.cmd),
        working_dir: config.working_dir.clone(),
        labels: (!config.labels.is_empty()).then(|| config.labels.clone()),
        extra: serde_json::Map::new(),
    };
    let config_json = WrittenConfig {
        created: CREATED,
        architecture: host_arch(),
        os: "linux",
        config: &runtime,
        rootfs: WrittenRootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.diff_id.as_str()).collect(),
        },
        // One entry per layer: tools that build on our images (buildah, docker) match history to layers.
        history: layers
            .iter()
            .map(|_| History {
                created: CREATED,
                created_by: "goldenpath",
            })
            .collect(),
    };
    let config_bytes = serde_json::to_vec(&config_json).unwrap_or_default();
    let config_digest = layout.write_blob(&config_bytes)?;
    let manifest = WrittenManifest {
        schema_version: 2,
        media_type: &MediaType::OciManifest,
        config: WrittenDescriptor {
            media_type: MEDIA_CONFIG,
            digest: config_digest.as_str(),
            size: config_bytes.len() as u64,
        },
        layers: layers
            .iter()
            .map(|l| WrittenDescriptor {
                media_type: l.media_type,
                digest: l.digest.as_str(),
                size: l.size,
            })
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = layout.write_blob(&manifest_bytes)?;
    Ok(Desc::new(
        MediaType::OciManifest,
        digest,
        manifest_bytes.len() as u64,
    ))
}

/// A resolved single-platform image: its manifest (as the descriptors it holds) and its config.
#[derive(Debug, Clone)]
pub struct Image {
    /// The descriptor the reference named (an index when the image is multi-platform).
    pub top: Desc,
    /// The manifest chosen for this platform.
    pub manifest_desc: Desc,
    /// The manifest's `config` descriptor: its digest is the image ID.
    pub config_desc: Desc,
    /// The config, read leniently (see [`ConfigFile`]).
    pub config: ConfigFile,
    /// The manifest's `layers`, bottom first.
    pub layers: Vec<Desc>,
}

/// Reads the image `desc` names, choosing `linux/<host arch>` from an index (indexes may nest, up to
/// [`MAX_DEPTH`] levels).
pub fn read_image(layout: &Layout, desc: &Desc) -> Result<Image, ImageError> {
    let mut manifest_desc = desc.clone();
    let mut chain = vec![desc.digest.clone()];
    while manifest_desc.media_type.kind() == Some(Kind::Index) {
        let list = layout.children(&manifest_desc)?;
        let arch = host_arch();
        let pick = list.iter().find(|m| {
            m.platform().is_some_and(|p| {
                p.os.as_deref() == Some("linux") && p.architecture.as_deref() == Some(arch)
            })
        });
        let Some(m) = pick else {
            let available: Vec<String> = list
                .iter()
                .map(|m| {
                    let p = m.platform().unwrap_or_default();
                    excerpt_str(&format!(
                        "{}/{}",
                        p.os.as_deref().unwrap_or("?"),
                        p.architecture.as_deref().unwrap_or("?")
                    ))
                })
                .collect();
            return Err(ImageError::NoPlatform {
                digest: manifest_desc.digest.clone(),
                os: "linux".into(),
                arch: arch.into(),
                available: list_excerpt(&available),
            });
        };
        manifest_desc = m.clone();
        chain.push(m.digest.clone());
        if chain.len() > MAX_DEPTH {
            return Err(LayoutError::TooDeep {
                layout: layout.root().to_path_buf(),
                limit: MAX_DEPTH,
                chain: chain
                    .iter()
                    .map(|d| &d.as_str()[..19])
                    .collect::<Vec<_>>()
                    .join(" -> "),
            }
            .into());
        }
    }
    if manifest_desc.media_type.kind().is_none() {
        return Err(LayoutError::MediaType {
            within: format!("image in `{}`", layout.root().display()),
            field: "mediaType".to_owned(),
            digest: manifest_desc.digest.clone(),
            media_type: excerpt(&json!(manifest_desc.media_type.as_str())),
            expected: "a manifest or index media type",
        }
        .into());
    }
    let manifest = layout.read_json(&manifest_desc, "manifest")?;
    let mut parts = parse_children(&manifest, Kind::Manifest, &manifest_desc.digest)?;
    let layers = parts.split_off(1);
    let config_desc = parts.swap_remove(0);
    let config = layout.read_typed(&config_desc, "config")?;
    Ok(Image {
        top: desc.clone(),
        manifest_desc,
        config_desc,
        config,
        layers,
    })
}

impl Image {
    /// The layers with their diff-IDs from the config, ready to be placed under new layers.
    pub fn layer_infos(&self) -> Result<Vec<LayerInfo>, ImageError> {
        let diff_ids = self.config.diff_ids();
        if diff_ids.len() != self.layers.len() {
            return Err(ImageError::Json {
                what: "config",
                digest: self.manifest_desc.digest.clone(),
                message: format!(
                    "{} diff_ids for {} layers",
                    diff_ids.len(),
                    self.layers.len()
                ),
            });
        }
        self.layers
            .iter()
            .zip(diff_ids)
            .map(|(l, d)| {
                let diff_id = d.parse::<Digest>().map_err(|e| ImageError::Json {
                    what: "config",
                    digest: self.manifest_desc.digest.clone(),
                    message: e.to_string(),
                })?;
                let media_type = if l.media_type.layer_compression() == Some(LayerCompression::Gzip)
                {
                    crate::layer::MEDIA_TYPE_GZIP
                } else {
                    crate::layer::MEDIA_TYPE_TAR
                };
                Ok(LayerInfo {
                    digest: l.digest.clone(),
                    diff_id,
                    size: l.size,
                    media_type,
                })
            })
            .collect()
    }

    /// The runtime config (`config.config`) as an [`ImageConfig`] to build on.
    #[must_use]
    pub fn runtime_config(&self) -> ImageConfig {
        let c = &self.config;
        ImageConfig {
            user: c.user().map(str::to_owned),
            env: c.env().to_vec(),
            entrypoint: c.entrypoint().to_vec(),
            cmd: c.cmd().to_vec(),
            working_dir: c.working_dir().map(str::to_owned),
            labels: c.labels().clone(),
        }
    }
}

/// An uncompressing reader over a layer blob, verified against its size and digest first (streamed: the layer is
/// never held in memory).
pub fn open_layer(layout: &Layout, layer: &Desc) -> Result<Box<dyn Read>, ImageError> {
    let mt = layer.media_type.as_str();
    let Some(compression) = layer.media_type.layer_compression() else {
        return Err(ImageError::LayerMediaType {
            digest: layer.digest.clone(),
            media_type: excerpt(&json!(mt)),
        });
    };
    let mut file = std::io::BufReader::with_capacity(1 << 16, layout.open_verified(layer)?);
    // The first bytes tell a mislabelled layer (gzip declared as tar, or the reverse) before any entry is read.
    let head = std::io::BufRead::fill_buf(&mut file)
        .map_err(|e| ImageError::Unpack(crate::unpack::UnpackError::Read(e)))?;
    crate::unpack::check_declared(&layer.digest, mt, head)?;
    if compression == LayerCompression::Gzip {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{MEDIA_TYPE_GZIP, MEDIA_TYPE_TAR};

    /// The config and manifest as they were built before they had types (`json!`, keys in insertion order): the
    /// bytes, and so the digests, must not change.
    #[test]
    fn written_config_and_manifest_are_byte_for_byte_what_they_were() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(tmp.path()).unwrap();
        let layers = [
            LayerInfo {
                digest: Digest::of(b"a"),
                diff_id: Digest::of(b"b"),
                size: 3,
                media_type: MEDIA_TYPE_GZIP,
            },
            LayerInfo {
                digest: Digest::of(b"c"),
                diff_id: Digest::of(b"d"),
                size: 5,
                media_type: MEDIA_TYPE_TAR,
            },
        ];
        let full = ImageConfig {
            user: Some("1000:1000".into()),
            env: vec!["A=1".into(), "PATH=/bin".into()],
            entrypoint: vec!["/cnb/lifecycle/launcher".into()],
            cmd: vec!["web".into()],
            working_dir: Some("/workspace".into()),
            labels: [
                ("z".to_owned(), "1".to_owned()),
                ("a".to_owned(), "{}".to_owned()),
            ]
            .into(),
        };
        for config in [full, ImageConfig::default()] {
            let mut cfg = serde_json::Map::new();
            if let Some(u) = &config.user {
                cfg.insert("User".into(), json!(u));
            }
            if !config.env.is_empty() {
                cfg.insert("Env".into(), json!(config.env));
            }
            if !config.entrypoint.is_empty() {
                cfg.insert("Entrypoint".into(), json!(config.entrypoint));
            }
            if !config.cmd.is_empty() {
                cfg.insert("Cmd".into(), json!(config.cmd));
            }
            if let Some(w) = &config.working_dir {
                cfg.insert("WorkingDir".into(), json!(w));
            }
            if !config.labels.is_empty() {
                cfg.insert("Labels".into(), json!(config.labels));
            }
            let config_json = json!({
                "created": "1980-01-01T00:00:01Z",
                "architecture": host_arch(),
                "os": "linux",
                "config": cfg,
                "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
                "history": layers.iter().map(|_| json!({"created": "1980-01-01T00:00:01Z", "created_by": "goldenpath"})).collect::<Vec<_>>(),
            });
            let config_bytes = serde_json::to_vec(&config_json).unwrap();
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": crate::layout::MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": Digest::of(&config_bytes).as_str(), "size": config_bytes.len()},
                "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size})).collect::<Vec<_>>(),
            });
            let manifest_bytes = serde_json::to_vec(&manifest).unwrap();

            let desc = write_image(&layout, "t", &layers, &config).unwrap();
            assert_eq!(
                String::from_utf8(layout.read_blob(&desc.digest).unwrap()).unwrap(),
                String::from_utf8(manifest_bytes.clone()).unwrap()
            );
            assert_eq!(desc.digest, Digest::of(&manifest_bytes));
            assert_eq!(
                String::from_utf8(layout.read_blob(&Digest::of(&config_bytes)).unwrap()).unwrap(),
                String::from_utf8(config_bytes.clone()).unwrap()
            );

            // A strict reader accepts both.
            oci_spec::image::ImageManifest::from_reader(&manifest_bytes[..]).unwrap();
            oci_spec::image::ImageConfiguration::from_reader(&config_bytes[..]).unwrap();
        }
    }

    #[test]
    fn an_image_reads_back_typed() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::create(tmp.path()).unwrap();
        let layer = add_layer(&layout, &[], &LayerOptions::default()).unwrap();
        let config = ImageConfig {
            user: Some("1001".into()),
            env: vec!["CNB_USER_ID=1001".into()],
            entrypoint: vec!["/bin/sh".into()],
            labels: [("k".to_owned(), "v".to_owned())].into(),
            ..ImageConfig::default()
        };
        let desc = write_image(&layout, "t", std::slice::from_ref(&layer), &config).unwrap();
        let img = read_image(&layout, &desc).unwrap();
        assert_eq!(img.config.label("k"), Some("v"));
        assert_eq!(img.config.env_var("CNB_USER_ID"), Some("1001"));
        assert_eq!(img.config.user(), Some("1001"));
        assert_eq!(img.config.entrypoint(), ["/bin/sh"]);
        assert_eq!(img.config.os(), Some("linux"));
        assert_eq!(img.config.architecture(), Some(host_arch()));
        assert_eq!(img.config.diff_ids(), [layer.diff_id.to_string()]);
        assert_eq!(
            img.config_desc.media_type,
            crate::spec::MediaType::OciConfig
        );
        assert_eq!(img.layer_infos().unwrap(), [layer]);
    }
}
