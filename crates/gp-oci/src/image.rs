//! Writing a whole image into a layout (layers, config, manifest, tag) and reading one back (platform selection,
//! config, layers), with every blob verified.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::layer::{Entry, LayerError, LayerInfo, LayerOptions, write_layer};
use crate::layout::{
    Desc, Kind, Layout, LayoutError, MAX_DEPTH, MEDIA_MANIFEST, excerpt, excerpt_str, list_excerpt,
    parse_children,
};

pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

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
        // One entry per layer: tools that build on our images (buildah, docker) match history to layers.
        "history": layers.iter().map(|_| json!({"created": "1980-01-01T00:00:01Z", "created_by": "goldenpath"})).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config_json).unwrap_or_default();
    let config_digest = layout.write_blob(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest.as_str(), "size": config_bytes.len()},
        "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest.as_str(), "size": l.size})).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let digest = layout.write_blob(&manifest_bytes)?;
    let desc = Desc::new(MEDIA_MANIFEST, digest, manifest_bytes.len() as u64);
    layout.set_tag(tag, &desc)?;
    Ok(desc)
}

/// A resolved single-platform image.
#[derive(Debug, Clone)]
pub struct Image {
    /// The descriptor the reference named (an index when the image is multi-platform).
    pub top: Desc,
    pub manifest_desc: Desc,
    pub manifest: Value,
    pub config: Value,
    pub layers: Vec<Desc>,
}

/// Reads the image `desc` names, choosing `linux/<host arch>` from an index (indexes may nest, up to
/// [`MAX_DEPTH`] levels).
pub fn read_image(layout: &Layout, desc: &Desc) -> Result<Image, ImageError> {
    let mut manifest_desc = desc.clone();
    let mut chain = vec![desc.digest.clone()];
    while Kind::of_media_type(&manifest_desc.media_type) == Some(Kind::Index) {
        let list = layout.children(&manifest_desc)?;
        let arch = host_arch();
        let pick = list.iter().find(|m| {
            m.raw["platform"]["os"] == "linux" && m.raw["platform"]["architecture"] == arch
        });
        let Some(m) = pick else {
            let available: Vec<String> = list
                .iter()
                .map(|m| {
                    excerpt_str(&format!(
                        "{}/{}",
                        m.raw["platform"]["os"].as_str().unwrap_or("?"),
                        m.raw["platform"]["architecture"].as_str().unwrap_or("?")
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
    if Kind::of_media_type(&manifest_desc.media_type).is_none() {
        return Err(LayoutError::MediaType {
            within: format!("image in `{}`", layout.root().display()),
            field: "mediaType".to_owned(),
            digest: manifest_desc.digest.clone(),
            media_type: excerpt(&json!(manifest_desc.media_type)),
            expected: "a manifest or index media type",
        }
        .into());
    }
    let manifest = layout.read_json(&manifest_desc, "manifest")?;
    let mut parts = parse_children(&manifest, Kind::Manifest, &manifest_desc.digest)?;
    let layers = parts.split_off(1);
    let config = layout.read_json(&parts[0], "config")?;
    Ok(Image {
        top: desc.clone(),
        manifest_desc,
        manifest,
        config,
        layers,
    })
}

impl Image {
    /// The layers with their diff-IDs from the config, ready to be placed under new layers.
    pub fn layer_infos(&self) -> Result<Vec<LayerInfo>, ImageError> {
        let diff_ids: Vec<&str> = self.config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
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
                let media_type = if l.media_type.ends_with("gzip") {
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
        let cfg = &self.config["config"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        ImageConfig {
            user: cfg["User"].as_str().map(str::to_owned),
            env: strings(&cfg["Env"]),
            entrypoint: strings(&cfg["Entrypoint"]),
            cmd: strings(&cfg["Cmd"]),
            working_dir: cfg["WorkingDir"].as_str().map(str::to_owned),
            labels: cfg["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// An uncompressing reader over a layer blob, verified against its size and digest first (streamed: the layer is
/// never held in memory).
pub fn open_layer(layout: &Layout, layer: &Desc) -> Result<Box<dyn Read>, ImageError> {
    let mt = layer.media_type.as_str();
    let gzip = mt.ends_with("gzip");
    let tar = mt
        .rsplit(['.', '/'])
        .next()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("tar"));
    if !gzip && !tar {
        return Err(ImageError::LayerMediaType {
            digest: layer.digest.clone(),
            media_type: excerpt(&json!(layer.media_type)),
        });
    }
    let mut file = std::io::BufReader::with_capacity(1 << 16, layout.open_verified(layer)?);
    // The first bytes tell a mislabelled layer (gzip declared as tar, or the reverse) before any entry is read.
    let head = std::io::BufRead::fill_buf(&mut file)
        .map_err(|e| ImageError::Unpack(crate::unpack::UnpackError::Read(e)))?;
    crate::unpack::check_declared(&layer.digest, mt, head)?;
    if gzip {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}
