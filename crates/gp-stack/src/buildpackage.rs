//! `goldenpath buildpack package`: a buildpackage image -- one layer per buildpack at
//! `/cnb/buildpacks/<id>/<version>`, labelled `io.buildpacks.buildpackage.metadata` (the buildpack it packages) and
//! `io.buildpacks.buildpack.layers` (every buildpack in it), the shape pack writes and pack and kpack read (a kpack
//! `ClusterStore` lists such images). A `.cnb` file is the same image as an OCI layout in a tar.

use std::collections::BTreeMap;
use std::path::Path;

use gp_cnb::{BuildpackDescriptor, BuildpackLayers, JsonLabel, TomlFile};
use gp_oci::image::{ImageConfig, write_image};
use gp_oci::layout::{Desc, Layout};
use serde::Serialize;

use crate::builder::{BuilderError, buildpack_dir_layer};

/// `io.buildpacks.buildpackage.metadata`.
#[derive(Debug, Serialize)]
struct PackageMetadata {
    id: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stacks: Vec<serde_json::Value>,
}

/// The label key of the buildpackage metadata.
pub const METADATA_LABEL: &str = "io.buildpacks.buildpackage.metadata";

/// Packages the buildpack in `main` (and, for a composite, the buildpacks of `dependencies`) into `out` as `tag`.
pub fn package(
    main: &Path,
    dependencies: &[&Path],
    out: &Layout,
    tag: &str,
) -> Result<Desc, BuilderError> {
    let err = |dir: &Path| {
        let uri = dir.display().to_string();
        move |message: String| BuilderError::Buildpack {
            uri: uri.clone(),
            message,
        }
    };
    let descriptor = BuildpackDescriptor::from_path(main.join("buildpack.toml"))
        .map_err(|e| err(main)(e.to_string()))?;
    let mut labels = BuildpackLayers::default();
    let mut layers = Vec::new();
    for dir in std::iter::once(main).chain(dependencies.iter().copied()) {
        let (info, entry, layer_info) = buildpack_dir_layer(dir, out, &err(dir))?;
        labels
            .0
            .entry(entry.id)
            .or_default()
            .insert(entry.version, layer_info);
        layers.push(info);
    }
    let metadata = PackageMetadata {
        id: descriptor.buildpack.id.to_string(),
        version: descriptor.buildpack.version.to_string(),
        homepage: descriptor.buildpack.homepage.clone(),
        stacks: descriptor
            .stacks
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect(),
    };
    let config = ImageConfig {
        labels: BTreeMap::from([
            (
                METADATA_LABEL.to_owned(),
                serde_json::to_string(&metadata).map_err(|e| BuilderError::Image(e.to_string()))?,
            ),
            (
                BuildpackLayers::KEY.to_owned(),
                labels
                    .to_label()
                    .map_err(|e| BuilderError::Image(e.to_string()))?,
            ),
        ]),
        ..ImageConfig::default()
    };
    write_image(out, tag, &layers, &config).map_err(|e| BuilderError::Image(e.to_string()))
}

/// Writes the OCI layout at `layout_dir` as a `.cnb` file (a tar of the layout, entries sorted).
pub fn write_cnb(layout_dir: &Path, file: &Path) -> Result<(), BuilderError> {
    let io = |e: std::io::Error| BuilderError::Image(format!("`{}`: {e}", file.display()));
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".cnb-")
        .tempfile_in(parent)
        .map_err(io)?;
    let mut tar = tar::Builder::new(tmp.as_file());
    tar.mode(tar::HeaderMode::Deterministic);
    let mut paths = Vec::new();
    collect(layout_dir, Path::new(""), &mut paths).map_err(io)?;
    paths.sort();
    for rel in paths {
        tar.append_path_with_name(layout_dir.join(&rel), &rel)
            .map_err(io)?;
    }
    tar.finish().map_err(io)?;
    drop(tar);
    tmp.persist(file).map_err(|e| io(e.error))?;
    Ok(())
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(root.join(rel))? {
        let entry = entry?;
        let rel = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            collect(root, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}
