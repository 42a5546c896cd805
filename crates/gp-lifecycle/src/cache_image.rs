//! A cache image: `cache = true` layers kept as an OCI image (one layer each, at `/layers/<buildpack>/<layer>`),
//! with their `<layer>.toml` and diff IDs in the `io.buildpacks.lifecycle.cache.metadata` label — for builds on
//! machines that keep nothing between runs (CI jobs, build pods), where a local cache directory is lost.
//!
//! Restore unpacks the group's cached layers from an image already in a layout (pulled from the registry, only
//! missing blobs) and remembers each restored tree in the layer memo, so that saving an unchanged layer again reuses
//! the blob instead of compressing it. Save writes the new cache image into a layout; the caller pushes it (blobs
//! the registry has are not uploaded again).

use std::collections::BTreeMap;
use std::path::Path;

use gp_cnb::{
    BuildpackLayersRecord, CacheMetadata, GroupToml, JsonLabel, LayerName, LayerRecord, TomlFile,
};
use gp_oci::image::{ImageConfig, open_layer, read_image, write_image};
use gp_oci::layer::{LayerInfo, LayerOptions, entries_from_dir};
use gp_oci::layout::{Desc, Layout};
use gp_oci::memo::Memo;

#[derive(Debug, thiserror::Error)]
pub enum CacheImageError {
    #[error("cache image: {0}")]
    Image(String),
    #[error("cache image layer `{layer}`: {message}")]
    Layer { layer: String, message: String },
    #[error("cache image: cannot write `{path}`: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A cache image read from a layout.
#[derive(Debug, Clone)]
pub struct CacheImage {
    pub metadata: CacheMetadata,
    pub layers: Vec<LayerInfo>,
}

impl CacheImage {
    /// The cache image `desc` names; an image without the cache label is an empty cache.
    ///
    /// # Errors
    /// The image cannot be read, or its label is not valid cache metadata.
    pub fn read(layout: &Layout, desc: &Desc) -> Result<Self, CacheImageError> {
        let img = read_image(layout, desc).map_err(|e| CacheImageError::Image(e.to_string()))?;
        let metadata = match img.config.label(CacheMetadata::KEY) {
            Some(label) => CacheMetadata::from_label(label)
                .map_err(|e| CacheImageError::Image(e.to_string()))?,
            None => CacheMetadata::default(),
        };
        let layers = img
            .layer_infos()
            .map_err(|e| CacheImageError::Image(e.to_string()))?;
        Ok(Self { metadata, layers })
    }

    fn blob(&self, sha: &str) -> Option<&LayerInfo> {
        self.layers.iter().find(|l| l.diff_id.as_str() == sha)
    }
}

/// Unpacks the group's cached layers into `layers` (`<buildpack>/<layer>/` and `<layer>.toml`) from `cache` in
/// `layout`; returns `<buildpack>:<layer>` names. Layers whose buildpack is not in the group are skipped, as are
/// layers the image lacks (a partial cache is still a cache).
///
/// # Errors
/// A layer blob that cannot be read or unpacked, or a file that cannot be written.
pub fn restore(
    cache: &CacheImage,
    layout: &Layout,
    layers: &Path,
    group: &GroupToml,
    memo: Option<(&Memo, &LayerOptions)>,
) -> Result<Vec<String>, CacheImageError> {
    let mut restored = Vec::new();
    let staging = layers.join(".cache-image");
    let sboms = cache_sboms(cache, layout)?;
    for (member, record) in crate::layers::recorded(group, &cache.metadata.buildpacks) {
        let bp = member.id.dir_name();
        for (name, layer) in &record.layers {
            let Some(info) = layer.cache.then(|| cache.blob(&layer.sha)).flatten() else {
                continue;
            };
            let what = format!("{}:{}", member.id, name.as_str());
            let lerr = |message: String| CacheImageError::Layer {
                layer: what.clone(),
                message,
            };
            let _ = fs_err::remove_dir_all(&staging);
            let desc = Desc::new(info.media_type, info.digest.clone(), info.size);
            let tar = open_layer(layout, &desc).map_err(|e| lerr(e.to_string()))?;
            gp_oci::unpack::unpack_layer(tar, &staging).map_err(|e| lerr(e.to_string()))?;
            let unpacked = staging.join("layers").join(&bp).join(name.as_str());
            let target = layers.join(&bp).join(name.as_str());
            let werr = |path: &Path| {
                let path = path.to_path_buf();
                move |source| CacheImageError::Write { path, source }
            };
            fs_err::create_dir_all(layers.join(&bp)).map_err(werr(&target))?;
            let _ = fs_err::remove_dir_all(&target);
            if unpacked.is_dir() {
                fs_err::rename(&unpacked, &target).map_err(werr(&target))?;
            } else {
                fs_err::create_dir_all(&target).map_err(werr(&target))?; // an empty layer
            }
            // The spec restores a layer's metadata without its `[types]`: a buildpack that wants the layer again
            // says so; one that ignores it lets it go.
            let meta = layer.to_content().restored();
            let toml_path = crate::layers::toml_of(&target);
            let text = meta
                .to_toml_string()
                .map_err(|e| lerr(format!("its metadata is not TOML: {e}")))?;
            fs_err::write(&toml_path, text).map_err(werr(&toml_path))?;
            for ext in crate::layers::SBOM_EXTENSIONS {
                let key = format!("layers/sbom/cache/{bp}/{}/sbom.{ext}", name.as_str());
                if let Some(bytes) = sboms.get(&key) {
                    let path = layers
                        .join(&bp)
                        .join(format!("{}.sbom.{ext}", name.as_str()));
                    fs_err::write(&path, bytes).map_err(werr(&path))?;
                }
            }
            // Remembered only when the restored tree is exactly what this exporter would write for it (same
            // tar, same diff ID, same owner): a cache image written by another tool, or with another owner, is
            // used for its files but its blob is never put into an app image.
            if let Some((memo, opts)) = memo
                && let Ok(entries) =
                    entries_from_dir(&target, &format!("layers/{bp}/{}", name.as_str()))
            {
                let plain = LayerOptions {
                    compression: gp_oci::layer::Compression::None,
                    ..*opts
                };
                let same = gp_oci::layer::write_layer(&entries, &plain, std::io::sink())
                    .is_ok_and(|(tar, _)| tar.diff_id == info.diff_id);
                if same {
                    memo.remember(&entries, opts, info);
                }
            }
            restored.push(what);
        }
    }
    let _ = fs_err::remove_dir_all(&staging);
    Ok(restored)
}

/// Writes the cache image of the group's `cache = true` layers into `out`, tagged `tag`; returns it and the
/// `<buildpack>:<layer>` names it holds. Layers are written as the exporter writes launch layers (same owner,
/// same bytes), so a layer that is both launch and cache is stored once.
///
/// # Errors
/// A layer that cannot be read or written.
pub fn save(
    out: &Layout,
    tag: &str,
    layers: &Path,
    group: &GroupToml,
    memo: Option<&Memo>,
    opts: &LayerOptions,
) -> Result<(Desc, Vec<String>), CacheImageError> {
    let mut infos = Vec::new();
    let mut names = Vec::new();
    let mut metadata = CacheMetadata::default();
    for member in &group.group {
        let bp = member.id.dir_name();
        let mut record = BuildpackLayersRecord {
            key: member.id.clone(),
            version: member.version,
            layers: BTreeMap::new(),
            store: None,
        };
        for l in crate::layers::layer_dirs(&layers.join(&bp)) {
            if !l.meta.types().cache {
                continue;
            }
            let what = format!("{}:{}", member.id, l.name);
            let lerr = |message: String| CacheImageError::Layer {
                layer: what.clone(),
                message,
            };
            let entries = entries_from_dir(&l.path, &format!("layers/{bp}/{}", l.name))
                .map_err(|e| lerr(e.to_string()))?;
            let info = match memo {
                Some(m) => m.add_layer(out, &entries, opts).map(|(i, _)| i),
                None => gp_oci::image::add_layer(out, &entries, opts),
            }
            .map_err(|e| lerr(e.to_string()))?;
            let Ok(name) = l.name.parse::<LayerName>() else {
                continue;
            };
            let rec = LayerRecord::from_content(info.diff_id.to_string(), &l.meta)
                .map_err(|e| lerr(e.to_string()))?;
            record.layers.insert(name, rec);
            infos.push(info);
            names.push(what);
        }
        if !record.layers.is_empty() {
            metadata.buildpacks.push(record);
        }
    }
    if let Some(info) = sbom_layer(out, layers, &metadata, memo, opts)? {
        metadata.sbom = Some(gp_cnb::LayerSha {
            sha: info.diff_id.to_string(),
        });
        infos.push(info);
    }
    let label = metadata
        .to_label()
        .map_err(|e| CacheImageError::Image(e.to_string()))?;
    let config = ImageConfig {
        labels: BTreeMap::from([(CacheMetadata::KEY.to_owned(), label)]),
        ..ImageConfig::default()
    };
    let desc = write_image(out, tag, &infos, &config)
        .map_err(|e| CacheImageError::Image(e.to_string()))?;
    Ok((desc, names))
}

/// The cached layers' SBOM files (`<layer>.sbom.<ext>`) as one layer at `layers/sbom/cache/<buildpack>/<layer>/`;
/// `None` when they have none.
fn sbom_layer(
    out: &Layout,
    layers: &Path,
    metadata: &CacheMetadata,
    memo: Option<&Memo>,
    opts: &LayerOptions,
) -> Result<Option<LayerInfo>, CacheImageError> {
    use gp_oci::layer::{Entry, Kind, Source};
    let mut files = Vec::new();
    for record in &metadata.buildpacks {
        let bp = record.key.dir_name();
        for name in record.layers.keys() {
            for (ext, path) in crate::layers::sbom_files(&layers.join(&bp), name.as_str()) {
                files.push((
                    format!("layers/sbom/cache/{bp}/{}/sbom.{ext}", name.as_str()),
                    path,
                ));
            }
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in &files {
        let mut at = path.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            dirs.insert(parent.to_owned());
            at = parent;
        }
    }
    let mut entries: Vec<Entry> = dirs
        .into_iter()
        .map(|d| Entry {
            path: d,
            kind: Kind::Dir,
            executable: true,
        })
        .chain(files.into_iter().map(|(p, f)| Entry {
            path: p,
            kind: Kind::File(Source::Path(f)),
            executable: false,
        }))
        .collect();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let info = match memo {
        Some(m) => m.add_layer(out, &entries, opts).map(|(i, _)| i),
        None => gp_oci::image::add_layer(out, &entries, opts),
    }
    .map_err(|e| CacheImageError::Layer {
        layer: "sbom".into(),
        message: e.to_string(),
    })?;
    Ok(Some(info))
}

/// The files of the cache image's SBOM layer, by path; empty when it has none.
fn cache_sboms(
    cache: &CacheImage,
    layout: &Layout,
) -> Result<BTreeMap<String, Vec<u8>>, CacheImageError> {
    use std::io::Read;
    let mut out = BTreeMap::new();
    let Some(info) = cache
        .metadata
        .sbom
        .as_ref()
        .and_then(|s| cache.blob(&s.sha))
    else {
        return Ok(out);
    };
    let lerr = |e: &dyn std::fmt::Display| CacheImageError::Layer {
        layer: "sbom".into(),
        message: e.to_string(),
    };
    let desc = Desc::new(info.media_type, info.digest.clone(), info.size);
    let tar = open_layer(layout, &desc).map_err(|e| lerr(&e))?;
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(|e| lerr(&e))? {
        let mut entry = entry.map_err(|e| lerr(&e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| lerr(&e))?;
        let path = path.to_string_lossy().trim_start_matches("./").to_owned();
        let mut bytes = Vec::new();
        // SBOM files are JSON documents; a cache image is not trusted to hold only that.
        entry
            .by_ref()
            .take(64 * 1024 * 1024)
            .read_to_end(&mut bytes)
            .map_err(|e| lerr(&e))?;
        out.insert(path, bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> GroupToml {
        gp_cnb::GroupToml::from_toml_str(
            "[[group]]\nid = \"test/node\"\nversion = \"1.0.0\"\napi = \"0.12\"\n",
        )
        .unwrap()
    }

    #[test]
    fn save_then_restore_gives_the_layers_back_and_an_unchanged_save_reuses_the_blob() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let bp = layers.join("test_node");
        fs_err::create_dir_all(bp.join("deps/bin")).unwrap();
        fs_err::write(bp.join("deps/bin/tool"), "#!/bin/sh\n").unwrap();
        fs_err::write(
            bp.join("deps.toml"),
            "[types]\ncache = true\n[metadata]\nkey = \"abc\"\n",
        )
        .unwrap();
        fs_err::create_dir_all(bp.join("scratch")).unwrap();
        fs_err::write(bp.join("scratch.toml"), "[types]\nbuild = true\n").unwrap();
        let out = Layout::create(&tmp.path().join("oci")).unwrap();
        let memo = Memo::new(&tmp.path().join("memo"));
        let opts = LayerOptions::default();
        let (desc, names) = save(&out, "cache", &layers, &group(), Some(&memo), &opts).unwrap();
        assert_eq!(names, ["test/node:deps"]);

        let image = CacheImage::read(&out, &desc).unwrap();
        assert_eq!(image.layers.len(), 1);
        let fresh = tmp.path().join("fresh");
        let restored = restore(&image, &out, &fresh, &group(), Some((&memo, &opts))).unwrap();
        assert_eq!(restored, ["test/node:deps"]);
        assert_eq!(
            fs_err::read_to_string(fresh.join("test_node/deps/bin/tool")).unwrap(),
            "#!/bin/sh\n"
        );
        let meta =
            gp_cnb::LayerContentMetadata::from_path(fresh.join("test_node/deps.toml")).unwrap();
        assert_eq!(meta.types, None, "restored without `[types]`");
        assert_eq!(meta.metadata.unwrap()["key"].as_str(), Some("abc"));
        assert_eq!(
            fs_err::read_to_string(fresh.join("test_node/deps.toml")).unwrap(),
            "[metadata]\nkey = \"abc\"\n"
        );
        assert!(!fresh.join(".cache-image").exists());
        // Ignored, the layer would not be saved again; the buildpack wants it and declares its types again.
        fs_err::write(
            fresh.join("test_node/deps.toml"),
            "[types]\ncache = true\n[metadata]\nkey = \"abc\"\n",
        )
        .unwrap();

        // The restored tree is known to the memo: saving it again is a hit, and the image is the same.
        let entries =
            entries_from_dir(&fresh.join("test_node/deps"), "layers/test_node/deps").unwrap();
        assert!(memo.add_layer(&out, &entries, &opts).unwrap().1);
        let (again, _) = save(&out, "cache2", &fresh, &group(), Some(&memo), &opts).unwrap();
        assert_eq!(again.digest, desc.digest);
        // Restored for another owner (another run image's CNB user): the files are used, the blob is not
        // remembered for that owner.
        let other = LayerOptions { uid: 42, ..opts };
        let again = tmp.path().join("again");
        restore(&image, &out, &again, &group(), Some((&memo, &other))).unwrap();
        let entries =
            entries_from_dir(&again.join("test_node/deps"), "layers/test_node/deps").unwrap();
        assert!(!memo.add_layer(&out, &entries, &other).unwrap().1);
        // Without the memo the bytes are the same too (the tar is reproducible).
        let (plain, _) = save(&out, "cache3", &fresh, &group(), None, &opts).unwrap();
        assert_eq!(plain.digest, desc.digest);
    }

    #[test]
    fn layer_sboms_of_cached_layers_travel_with_the_cache_image() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let bp = layers.join("test_node");
        fs_err::create_dir_all(bp.join("deps")).unwrap();
        fs_err::write(bp.join("deps/f"), "x").unwrap();
        fs_err::write(bp.join("deps.toml"), "[types]\ncache = true\n").unwrap();
        fs_err::write(
            bp.join("deps.sbom.spdx.json"),
            "{\"spdxVersion\":\"SPDX-2.3\"}",
        )
        .unwrap();
        let out = Layout::create(&tmp.path().join("oci")).unwrap();
        let (desc, _) = save(&out, "c", &layers, &group(), None, &LayerOptions::default()).unwrap();
        let image = CacheImage::read(&out, &desc).unwrap();
        assert!(image.metadata.sbom.is_some());
        assert_eq!(image.layers.len(), 2, "the layer and the SBOM layer");
        let fresh = tmp.path().join("fresh");
        restore(&image, &out, &fresh, &group(), None).unwrap();
        assert_eq!(
            fs_err::read_to_string(fresh.join("test_node/deps.sbom.spdx.json")).unwrap(),
            "{\"spdxVersion\":\"SPDX-2.3\"}"
        );
    }

    #[test]
    fn a_buildpack_outside_the_group_is_not_restored() {
        let tmp = tempfile::tempdir().unwrap();
        let out = Layout::create(&tmp.path().join("oci")).unwrap();
        let (desc, _) = save(
            &out,
            "empty",
            &tmp.path().join("none"),
            &group(),
            None,
            &LayerOptions::default(),
        )
        .unwrap();
        let image = CacheImage::read(&out, &desc).unwrap();
        assert!(image.metadata.buildpacks.is_empty());
        let restored = restore(&image, &out, &tmp.path().join("l"), &group(), None).unwrap();
        assert!(restored.is_empty());
    }
}
