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
    let Ok(rd) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<LayerDir> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|path| {
            let meta = LayerContentMetadata::from_path(toml_of(&path)).ok()?;
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some(LayerDir { name, path, meta })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The group's buildpacks that have a record in `records` (image metadata), in group order, with that record.
pub fn recorded<'a>(
    group: &'a gp_cnb::GroupToml,
    records: &'a [gp_cnb::BuildpackLayersRecord],
) -> impl Iterator<Item = (&'a gp_cnb::GroupMember, &'a gp_cnb::BuildpackLayersRecord)> {
    group
        .group
        .iter()
        .filter_map(|m| Some((m, records.iter().find(|r| r.key == m.id)?)))
}

/// The SBOM formats the spec names, by file extension (`<layer>.sbom.<ext>`).
pub const SBOM_EXTENSIONS: [&str; 3] = ["cdx.json", "spdx.json", "syft.json"];

/// The layer SBOM files `<layer>.sbom.<ext>` a buildpack wrote for `layer` in its layers directory `dir`, with
/// their extension.
#[must_use]
pub fn sbom_files(dir: &Path, layer: &str) -> Vec<(&'static str, PathBuf)> {
    SBOM_EXTENSIONS
        .iter()
        .map(|ext| (*ext, dir.join(format!("{layer}.sbom.{ext}"))))
        .filter(|(_, p)| p.symlink_metadata().is_ok_and(|m| m.is_file()))
        .collect()
}

/// `<layers>/<bp>/<layer>.toml` for the layer directory `<layers>/<bp>/<layer>` (layer names may hold dots:
/// `python-3.11` has `python-3.11.toml`, not `python-3.toml`).
#[must_use]
pub fn toml_of(layer_dir: &Path) -> PathBuf {
    let mut name = layer_dir.file_name().unwrap_or_default().to_os_string();
    name.push(".toml");
    layer_dir.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_layer_names_keep_their_whole_name() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("python-3.11")).unwrap();
        fs_err::write(
            tmp.path().join("python-3.11.toml"),
            "[types]\nlaunch = true\n",
        )
        .unwrap();
        assert_eq!(
            toml_of(&tmp.path().join("python-3.11")),
            tmp.path().join("python-3.11.toml")
        );
        let found = layer_dirs(tmp.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "python-3.11");
        assert!(found[0].meta.types().launch);
    }
}
