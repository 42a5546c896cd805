//! Analyze: what the previous image of the same name says about its launch layers. The `<layer>.toml` of each
//! launch-only layer (`launch = true`, neither `build` nor `cache`) is restored without its `[types]` table (the
//! metadata only, no contents), so that a buildpack can decide to keep the layer as it is — add `launch = true` under
//! `[types]` and create no directory — and the exporter then reuses the previous image's layer (same diff ID, no
//! re-upload). Cached layers come from the cache or not at all (the spec's layer-type table).

use std::collections::BTreeMap;
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
    /// The files of its SBOM layer (`sbom.sha`), by path (`layers/sbom/launch/<buildpack>/<layer>/sbom.<ext>`);
    /// empty when it has none or its blob is not in the layout (an image pulled for its metadata only).
    pub sbom: BTreeMap<String, Vec<u8>>,
}

/// SBOM files are JSON of a few kilobytes to a few megabytes each; more than this in all is not read.
const SBOM_MAX: u64 = 64 * 1024 * 1024;

/// The regular files of the SBOM layer `diff_id` of the image, by path.
fn sbom_files(
    layout: &Layout,
    layers: &[Desc],
    infos: &[LayerInfo],
    diff_id: &str,
) -> BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    let Some(i) = infos.iter().position(|l| l.diff_id.as_str() == diff_id) else {
        return out;
    };
    let Some(reader) = layers
        .get(i)
        .and_then(|d| gp_oci::image::open_layer(layout, d).ok())
    else {
        return out;
    };
    let mut archive = tar::Archive::new(reader);
    let Ok(entries) = archive.entries() else {
        return out;
    };
    let mut total = 0u64;
    for mut entry in entries.flatten() {
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Ok(path) = entry
            .path()
            .map(|p| p.to_string_lossy().trim_start_matches("./").to_owned())
        else {
            continue;
        };
        // Only layer SBOMs are restored; nothing else of the layer is read, and no more than `SBOM_MAX` in all.
        let is_sbom = crate::layers::SBOM_EXTENSIONS
            .iter()
            .any(|ext| path.ends_with(&format!("/sbom.{ext}")));
        if !path.starts_with("layers/sbom/launch/") || !is_sbom {
            continue;
        }
        let mut bytes = Vec::new();
        if entry
            .by_ref()
            .take(SBOM_MAX.saturating_sub(total))
            .read_to_end(&mut bytes)
            .is_ok()
        {
            total += bytes.len() as u64;
            out.insert(path, bytes);
        }
        if total >= SBOM_MAX {
            break;
        }
    }
    out
}

impl Previous {
    /// Reads the image `desc` names in `layout`; `None` when it is not an image a CNB lifecycle made.
    #[must_use]
    pub fn read(layout: &Layout, desc: &Desc) -> Option<Previous> {
        let img = read_image(layout, desc).ok()?;
        let label = img.config.label(LifecycleMetadata::KEY)?;
        let metadata = LifecycleMetadata::from_label(label).ok()?;
        let layers = img.layer_infos().ok()?;
        let sbom = metadata
            .sbom
            .as_ref()
            .map(|s| sbom_files(layout, &img.layers, &layers, &s.sha))
            .unwrap_or_default();
        Some(Previous {
            metadata,
            layers,
            sbom,
        })
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
        let dir = layers.join(member.id.dir_name());
        if let Some(store) = &record.store {
            // The buildpack's persistent metadata, as the spec restores it (whatever else is restored).
            let toml = gp_cnb::StoreToml {
                metadata: serde_json::from_value::<toml::Table>(store.metadata.clone()).ok(),
            };
            let text = toml.to_toml_string().map_err(std::io::Error::other)?;
            fs_err::create_dir_all(&dir)?;
            fs_err::write(dir.join(gp_cnb::StoreToml::FILE), text)?;
            restored.push(format!("{}:store.toml", member.id));
        }
        for (name, layer) in &record.layers {
            let toml_path = dir.join(format!("{}.toml", name.as_str()));
            if !layer.launch || layer.build || layer.cache || toml_path.exists() {
                continue;
            }
            let meta = layer.to_content().restored();
            let text = meta.to_toml_string().map_err(std::io::Error::other)?;
            fs_err::create_dir_all(&dir)?;
            fs_err::write(&toml_path, text)?;
            // And its layer SBOM, as the previous image has it.
            let bp = member.id.dir_name();
            for ext in crate::layers::SBOM_EXTENSIONS {
                let key = format!("layers/sbom/launch/{bp}/{}/sbom.{ext}", name.as_str());
                if let Some(bytes) = previous.sbom.get(&key) {
                    fs_err::write(dir.join(format!("{}.sbom.{ext}", name.as_str())), bytes)?;
                }
            }
            restored.push(format!("{}:{}", member.id, name.as_str()));
        }
    }
    Ok(restored)
}
