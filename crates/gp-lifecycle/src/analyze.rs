//! Analyze: what the previous image of the same name says about its launch layers. Their `<layer>.toml` are
//! restored (types and metadata, no contents) so that a buildpack can decide to keep a layer as it is — leave the
//! `.toml` and create no directory — and the exporter then reuses the previous image's layer (same diff ID, no
//! re-upload). Layers the local cache restored keep the cache's copy.

use std::path::Path;

use gp_cnb::{GroupToml, JsonLabel, LifecycleMetadata, TomlFile};
use gp_oci::image::read_image;
use gp_oci::layer::LayerInfo;
use gp_oci::layout::{Desc, Layout};

/// The previous image: its lifecycle metadata and its layers.
#[derive(Debug, Clone)]
pub struct Previous {
    pub metadata: LifecycleMetadata,
    pub layers: Vec<LayerInfo>,
}

impl Previous {
    /// Reads the image `desc` names in `layout`; `None` when it is not an image a CNB lifecycle made.
    #[must_use]
    pub fn read(layout: &Layout, desc: &Desc) -> Option<Previous> {
        let img = read_image(layout, desc).ok()?;
        let label = img.config["config"]["Labels"][LifecycleMetadata::KEY].as_str()?;
        let metadata = LifecycleMetadata::from_label(label).ok()?;
        let layers = img.layer_infos().ok()?;
        Some(Previous { metadata, layers })
    }

    /// The previous layer `<buildpack>:<layer>` if the image has it.
    #[must_use]
    pub fn layer(&self, buildpack: &str, layer: &str) -> Option<(LayerInfo, &gp_cnb::LayerRecord)> {
        let record = self
            .metadata
            .buildpacks
            .iter()
            .find(|b| b.key.as_str() == buildpack)?
            .layers
            .iter()
            .find(|(name, _)| name.as_str() == layer)
            .map(|(_, r)| r)?;
        let info = self
            .layers
            .iter()
            .find(|l| l.diff_id.as_str() == record.sha)?
            .clone();
        Some((info, record))
    }
}

/// Writes `<layers>/<buildpack>/<layer>.toml` for the previous image's launch layers of the group's buildpacks
/// (unless the cache restored that layer); returns `<buildpack>:<layer>` names.
pub fn restore_metadata(
    previous: &Previous,
    group: &GroupToml,
    layers: &Path,
) -> std::io::Result<Vec<String>> {
    let mut restored = Vec::new();
    for (member, record) in crate::layers::recorded(group, &previous.metadata.buildpacks) {
        let dir = layers.join(member.id.as_str().replace('/', "_"));
        for (name, layer) in &record.layers {
            let toml_path = dir.join(format!("{}.toml", name.as_str()));
            if !layer.launch || toml_path.exists() {
                continue;
            }
            let meta = layer.to_content();
            let text = meta.to_toml_string().map_err(std::io::Error::other)?;
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&toml_path, text)?;
            restored.push(format!("{}:{}", member.id, name.as_str()));
        }
    }
    Ok(restored)
}
