//! `goldenpath builder create`: a builder image is the build image plus one layer per buildpack at
//! `/cnb/buildpacks/<id>/<version>` (`/` in ids written as `_`), a layer with `/cnb/order.toml` and
//! `/cnb/run.toml`, and the lifecycle at `/cnb/lifecycle/`, labelled `io.buildpacks.builder.metadata`,
//! `io.buildpacks.buildpack.layers` and `io.buildpacks.buildpack.order`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gp_cnb::{
    BuilderBuildpack, BuilderLifecycle, BuilderMetadata, BuildpackDescriptor, BuildpackLayerInfo,
    BuildpackLayers, BuildpackOrder, CreatedBy, JsonLabel, OrderGroup, OrderToml, RunImageEntry,
    RunImageRef, RunToml, TomlFile,
};
use gp_oci::image::{add_layer, read_image, write_image};
use gp_oci::layer::{Entry, Kind, LayerInfo, LayerOptions, Source, entries_from_dir};
use gp_oci::layout::{Desc, Layout, copy_image};
use gp_oci::reference::ImageRef;
use serde::Deserialize;

/// pack's `builder.toml`, the parts a builder needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuilderToml {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub buildpacks: Vec<BuildpackSource>,
    #[serde(default)]
    pub order: Vec<OrderGroup>,
    #[serde(default)]
    pub build: Option<ImageSection>,
    #[serde(default)]
    pub run: Option<RunSection>,
    /// The older form: `[stack] build-image`, `run-image`, `run-image-mirrors`.
    #[serde(default)]
    pub stack: Option<StackSection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuildpackSource {
    pub uri: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ImageSection {
    pub image: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunSection {
    #[serde(default)]
    pub images: Vec<RunImageSection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunImageSection {
    pub image: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StackSection {
    pub build_image: String,
    pub run_image: String,
    #[serde(default)]
    pub run_image_mirrors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("`{path}`: {message}")]
    Config { path: PathBuf, message: String },
    #[error("buildpack `{uri}`: {message}")]
    Buildpack { uri: String, message: String },
    #[error(
        "the order names `{id}@{version}`, which is not among the builder's buildpacks; add it to `[[buildpacks]]`"
    )]
    MissingBuildpack { id: String, version: String },
    #[error("{0}")]
    Image(String),
}

fn img(e: impl std::fmt::Display) -> BuilderError {
    BuilderError::Image(e.to_string())
}

/// Reads and checks `builder.toml`.
pub fn load(path: &Path) -> Result<BuilderToml, BuilderError> {
    let cfg = |message: String| BuilderError::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| cfg(e.to_string()))?;
    let b: BuilderToml = toml::from_str(&text).map_err(|e| cfg(e.to_string()))?;
    if b.build.is_none() && b.stack.is_none() {
        return Err(cfg(
            "no build image: add `[build] image = \"oci:PATH:TAG\"`".into(),
        ));
    }
    if b.order.is_empty() {
        return Err(cfg(
            "no `[[order]]`: list at least one group of buildpacks".into()
        ));
    }
    Ok(b)
}

/// The programs placed under `/cnb/lifecycle/`.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle<'a> {
    pub launcher: &'a Path,
    /// The inner phases (`lifecycle detect|build`) for sandboxed builds.
    pub lifecycle: Option<&'a Path>,
}

/// Creates the builder image from `config` (paths relative to `base_dir`) into `out` with `tag`.
pub fn create(
    config: &BuilderToml,
    base_dir: &Path,
    launcher: &Lifecycle<'_>,
    out: &Layout,
    tag: &str,
) -> Result<Desc, BuilderError> {
    let base = build_image(config, base_dir, out)?;
    let mut layers: Vec<LayerInfo> = base.layer_infos().map_err(img)?;
    let mut bp_labels = BuildpackLayers::default();
    let mut listed = Vec::new();
    for source in &config.buildpacks {
        let (info, entry, layer_info) = buildpack_layer(source, base_dir, out)?;
        bp_labels
            .0
            .entry(entry.id.clone())
            .or_default()
            .insert(entry.version, layer_info);
        listed.push(entry);
        layers.push(info);
    }
    for g in &config.order {
        for r in &g.group {
            if bp_labels.get(&r.id, &r.version).is_none() {
                return Err(BuilderError::MissingBuildpack {
                    id: r.id.to_string(),
                    version: r.version.to_string(),
                });
            }
        }
    }
    let run_images = run_images(config);
    layers.extend(cnb_layers(config, &run_images, launcher, out)?);
    let metadata = BuilderMetadata {
        description: config.description.clone(),
        images: run_images,
        buildpacks: listed,
        lifecycle: BuilderLifecycle {
            version: env!("CARGO_PKG_VERSION").into(),
            ..BuilderLifecycle::default()
        },
        created_by: CreatedBy {
            name: "goldenpath".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        ..BuilderMetadata::default()
    };
    let mut image_config = base.runtime_config();
    let labels: BTreeMap<String, String> = [
        (
            BuilderMetadata::KEY.to_owned(),
            metadata.to_label().map_err(img)?,
        ),
        (
            BuildpackLayers::KEY.to_owned(),
            bp_labels.to_label().map_err(img)?,
        ),
        (
            BuildpackOrder::KEY.to_owned(),
            BuildpackOrder(config.order.clone())
                .to_label()
                .map_err(img)?,
        ),
    ]
    .into();
    image_config.labels.extend(labels);
    write_image(out, tag, &layers, &image_config).map_err(img)
}

/// The build image, copied into `out`.
fn build_image(
    config: &BuilderToml,
    base_dir: &Path,
    out: &Layout,
) -> Result<gp_oci::image::Image, BuilderError> {
    let build_ref = config.build.as_ref().map_or_else(
        || {
            config
                .stack
                .as_ref()
                .map(|s| s.build_image.clone())
                .unwrap_or_default()
        },
        |b| b.image.clone(),
    );
    let ImageRef::Layout { path, tag } = build_ref.parse::<ImageRef>().map_err(img)? else {
        return Err(img(format!(
            "build image `{build_ref}`: this build reads build images from OCI layouts (`oci:PATH:TAG`)"
        )));
    };
    let path = if path.is_absolute() {
        path
    } else {
        base_dir.join(path)
    };
    let layout = Layout::open(&path).map_err(img)?;
    let desc = layout.resolve(tag.as_deref()).map_err(img)?;
    copy_image(&layout, out, &desc).map_err(img)?;
    read_image(&layout, &desc).map_err(img)
}

/// One buildpack directory as a layer at `/cnb/buildpacks/<id>/<version>`.
fn buildpack_layer(
    source: &BuildpackSource,
    base_dir: &Path,
    out: &Layout,
) -> Result<(LayerInfo, BuilderBuildpack, BuildpackLayerInfo), BuilderError> {
    let bp_err = |message: String| BuilderError::Buildpack {
        uri: source.uri.clone(),
        message,
    };
    let path = base_dir.join(source.uri.strip_prefix("file://").unwrap_or(&source.uri));
    let unpacked;
    let dir = if path.is_dir() {
        path
    } else if path.is_file() {
        unpacked = unpack_archive(&path).map_err(bp_err)?;
        unpacked.path().to_path_buf()
    } else if source.uri.contains("://") {
        return Err(bp_err(
            "only local buildpacks are supported here (a directory, or a .tgz/.tar archive of one)"
                .into(),
        ));
    } else {
        return Err(bp_err(format!("`{}` does not exist", path.display())));
    };
    let d = BuildpackDescriptor::from_path(dir.join("buildpack.toml"))
        .map_err(|e| bp_err(e.to_string()))?;
    let id = d.buildpack.id.clone();
    let version = d.buildpack.version;
    let prefix = format!("cnb/buildpacks/{}/{version}", id.as_str().replace('/', "_"));
    let entries = entries_from_dir(&dir, &prefix).map_err(|e| bp_err(e.to_string()))?;
    let info = add_layer(out, &entries, &root()).map_err(img)?;
    let layer_info = BuildpackLayerInfo {
        api: d.api,
        stacks: d.stacks.clone(),
        targets: d.targets.clone(),
        order: d.order.clone(),
        layer_diff_id: info.diff_id.to_string(),
        homepage: d.buildpack.homepage.clone(),
        name: d.buildpack.name.clone(),
    };
    let entry = BuilderBuildpack {
        id,
        version,
        homepage: d.buildpack.homepage.clone(),
        name: d.buildpack.name.clone(),
    };
    Ok((info, entry, layer_info))
}

/// Unpacks a buildpack archive (tar, gzip or not, `buildpack.toml` at its top) into a temporary directory;
/// entries that would leave it are refused.
fn unpack_archive(path: &Path) -> Result<tempfile::TempDir, String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| e.to_string())?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader: Box<dyn std::io::Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    gp_oci::unpack::unpack_layer(reader, dir.path()).map_err(|e| {
        format!("not a buildpack archive (a .tgz or .tar with buildpack.toml at its top): {e}")
    })?;
    if !dir.path().join("buildpack.toml").is_file() {
        return Err(
            "the archive has no buildpack.toml at its top (a `.cnb` buildpackage is an image archive; pass the buildpack's directory or a .tgz of it)"
                .into(),
        );
    }
    Ok(dir)
}

fn root() -> LayerOptions {
    LayerOptions {
        uid: 0,
        gid: 0,
        ..LayerOptions::default()
    }
}

fn run_images(config: &BuilderToml) -> Vec<RunImageRef> {
    match (&config.run, &config.stack) {
        (Some(run), _) => run
            .images
            .iter()
            .map(|i| RunImageRef {
                image: i.image.clone(),
                mirrors: i.mirrors.clone(),
            })
            .collect(),
        (None, Some(s)) => vec![RunImageRef {
            image: s.run_image.clone(),
            mirrors: s.run_image_mirrors.clone(),
        }],
        (None, None) => Vec::new(),
    }
}

/// `/cnb/order.toml` and `/cnb/run.toml` in one layer, the lifecycle in another.
fn cnb_layers(
    config: &BuilderToml,
    run_images: &[RunImageRef],
    programs: &Lifecycle<'_>,
    out: &Layout,
) -> Result<Vec<LayerInfo>, BuilderError> {
    let order_toml = OrderToml {
        order: config.order.clone(),
        ..OrderToml::default()
    }
    .to_toml_string()
    .map_err(img)?;
    let run_toml = RunToml {
        images: run_images
            .iter()
            .map(|r| RunImageEntry {
                image: Some(r.image.clone()),
                mirrors: r.mirrors.clone(),
            })
            .collect(),
    }
    .to_toml_string()
    .map_err(img)?;
    let file = |p: &str, bytes: Vec<u8>| Entry {
        path: p.into(),
        kind: Kind::File(Source::Bytes(bytes)),
        executable: false,
    };
    let dir = |p: &str| Entry {
        path: p.into(),
        kind: Kind::Dir,
        executable: true,
    };
    let config_layer = add_layer(
        out,
        &[
            dir("cnb"),
            file("cnb/order.toml", order_toml.into_bytes()),
            file("cnb/run.toml", run_toml.into_bytes()),
        ],
        &root(),
    )
    .map_err(img)?;
    let program = |name: &str, path: &Path| Entry {
        path: format!("cnb/lifecycle/{name}"),
        kind: Kind::File(Source::Path(path.to_path_buf())),
        executable: true,
    };
    let mut lifecycle = vec![
        dir("cnb"),
        dir("cnb/lifecycle"),
        program("launcher", programs.launcher),
    ];
    if let Some(l) = programs.lifecycle {
        lifecycle.push(program("lifecycle", l));
    }
    let lifecycle_layer = add_layer(out, &lifecycle, &root()).map_err(img)?;
    Ok(vec![config_layer, lifecycle_layer])
}
