//! A buildpack's layers directory: each `<layer>/` with its `<layer>.toml`, in name order.

use std::path::{Path, PathBuf};

use gp_cnb::{LayerContentMetadata, TomlFile};

#[derive(Debug, Clone)]
pub struct LayerDir {
    pub name: String,
    pub path: PathBuf,
    pub meta: LayerContentMetadata,
}

/// The layers under `dir` that have a readable `<layer>.toml` (others are not layers the lifecycle keeps).
#[must_use]
pub fn layer_dirs(dir: &Path) -> Vec<LayerDir> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<LayerDir> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|path| {
            let meta = LayerContentMetadata::from_path(path.with_extension("toml")).ok()?;
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some(LayerDir { name, path, meta })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
