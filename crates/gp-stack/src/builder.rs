//! `goldenpath builder create`: a builder image is the build image plus one layer per buildpack at
//! `/cnb/buildpacks/<id>/<version>` (`/` in ids written as `_`), a layer with `/cnb/order.toml` and
//! `/cnb/run.toml`, and the lifecycle at `/cnb/lifecycle/`, labelled `io.buildpacks.builder.metadata`,
//! `io.buildpacks.buildpack.layers` and `io.buildpacks.buildpack.order`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gp_cnb::{
    BuilderBuildpack, BuilderLifecycle, BuilderMetadata, BuildpackDescriptor, BuildpackId,
    BuildpackLayerInfo, BuildpackLayers, BuildpackOrder, BuildpackVersion, CreatedBy, GroupRef,
    JsonLabel, OrderGroup, OrderToml, RunImageEntry, RunImageRef, RunToml, TomlFile,
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
    pub order: Vec<BuilderOrderGroup>,
    /// `[[targets]]`: the platforms the builder is for. This machine builds for its own: a list without it is
    /// refused.
    #[serde(default)]
    pub targets: Vec<BuilderTarget>,
    /// `[lifecycle]` (`uri` or `version`): read and ignored, since goldenpath brings its own lifecycle.
    #[serde(default)]
    pub lifecycle: Option<toml::Value>,
    #[serde(default)]
    pub build: Option<ImageSection>,
    #[serde(default)]
    pub run: Option<RunSection>,
    /// The older form: `[stack] build-image`, `run-image`, `run-image-mirrors`.
    #[serde(default)]
    pub stack: Option<StackSection>,
}

/// One `[[order]]` entry of `builder.toml`: like `order.toml`'s, but a version may be left out (pack documents it
/// as optional); it is then the version of that id among the builder's buildpacks, when there is exactly one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BuilderOrderGroup {
    #[serde(default)]
    pub group: Vec<BuilderGroupRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BuilderGroupRef {
    pub id: BuildpackId,
    #[serde(default)]
    pub version: Option<BuildpackVersion>,
    #[serde(default)]
    pub optional: bool,
}

/// A `[[targets]]` entry of `builder.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct BuilderTarget {
    pub os: String,
    #[serde(default)]
    pub arch: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A `[[buildpacks]]` entry: `uri` is a directory, a `.tgz`/`.tar` of one, a `.cnb` buildpackage file, an OCI
/// layout (`oci:PATH:TAG`) or a buildpackage image (`docker://REF`); `image = "REF"` is pack's other spelling of
/// a buildpackage image. Images in registries are pulled into a layout by the caller (the CLI) first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildpackSource {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub image: Option<String>,
    /// pack's builder.toml allows a version beside the uri; the buildpack's own `buildpack.toml` decides.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

impl BuildpackSource {
    /// The registry image this entry names (`docker://REF` or `image = "REF"`), which must be pulled first.
    #[must_use]
    pub fn registry_image(&self) -> Option<&str> {
        self.image
            .as_deref()
            .or_else(|| self.uri.strip_prefix("docker://"))
    }
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
    #[error(
        "the order names `{id}` without a version, and the builder holds {versions}: write `version = \"...\"` in that `[[order.group]]` entry"
    )]
    AmbiguousVersion { id: String, versions: String },
    #[error(
        "`[[targets]]` lists {listed}, not this machine's `{host}`: goldenpath creates builders for the machine it runs on"
    )]
    NoHostTarget { listed: String, host: String },
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
    let text = fs_err::read_to_string(path).map_err(|e| cfg(e.to_string()))?;
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

impl BuilderToml {
    /// What `builder create` reads but does not act on, to tell the user.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.lifecycle.is_some() {
            notes.push(
                "`[lifecycle]` is ignored: goldenpath puts its own lifecycle and launcher into the builder".into(),
            );
        }
        if self.stack.is_some() {
            notes.push(
                "`[stack]` is the older form of `[build] image` and `[[run.images]]`; it is read as those".into(),
            );
        }
        notes
    }

    /// Checks `[[targets]]` against this machine (`linux/<arch>`).
    fn check_targets(&self) -> Result<(), BuilderError> {
        let host_arch = gp_oci::image::host_arch();
        if self.targets.is_empty()
            || self
                .targets
                .iter()
                .any(|t| t.os == "linux" && t.arch.as_deref().is_none_or(|a| a == host_arch))
        {
            return Ok(());
        }
        let listed = self
            .targets
            .iter()
            .map(|t| format!("`{}/{}`", t.os, t.arch.as_deref().unwrap_or("*")))
            .collect::<Vec<_>>()
            .join(", ");
        Err(BuilderError::NoHostTarget {
            listed,
            host: format!("linux/{host_arch}"),
        })
    }
}

/// The builder's order with every version filled in from its buildpacks.
fn resolve_order(
    order: &[BuilderOrderGroup],
    buildpacks: &BuildpackLayers,
) -> Result<Vec<OrderGroup>, BuilderError> {
    order
        .iter()
        .map(|g| {
            let group = g
                .group
                .iter()
                .map(|r| {
                    let version = match &r.version {
                        Some(v) if buildpacks.get(&r.id, v).is_some() => *v,
                        Some(v) => {
                            return Err(BuilderError::MissingBuildpack {
                                id: r.id.to_string(),
                                version: v.to_string(),
                            });
                        }
                        None => only_version(&r.id, buildpacks)?,
                    };
                    let mut entry = GroupRef::new(r.id.clone(), version);
                    entry.optional = r.optional;
                    Ok(entry)
                })
                .collect::<Result<_, _>>()?;
            Ok(OrderGroup { group })
        })
        .collect()
}

fn only_version(
    id: &BuildpackId,
    buildpacks: &BuildpackLayers,
) -> Result<BuildpackVersion, BuilderError> {
    let versions: Vec<&BuildpackVersion> = buildpacks
        .0
        .get(id)
        .map(|v| v.keys().collect())
        .unwrap_or_default();
    match versions.as_slice() {
        [one] => Ok(**one),
        [] => Err(BuilderError::MissingBuildpack {
            id: id.to_string(),
            version: "(any version)".into(),
        }),
        many => Err(BuilderError::AmbiguousVersion {
            id: id.to_string(),
            versions: many
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
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
    config.check_targets()?;
    let base = build_image(config, base_dir, out)?;
    let mut layers: Vec<LayerInfo> = base.layer_infos().map_err(img)?;
    let mut bp_labels = BuildpackLayers::default();
    let mut listed = Vec::new();
    for source in &config.buildpacks {
        for (info, entry, layer_info) in buildpack_layers(source, base_dir, out)? {
            let versions = bp_labels.0.entry(entry.id.clone()).or_default();
            if versions.contains_key(&entry.version) {
                continue; // brought by two sources (a composite's buildpackage and the part itself)
            }
            versions.insert(entry.version, layer_info);
            listed.push(entry);
            layers.push(info);
        }
    }
    let order = resolve_order(&config.order, &bp_labels)?;
    let run_images = run_images(config);
    layers.extend(cnb_layers(&order, &run_images, launcher, out)?);
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
            BuildpackOrder(order).to_label().map_err(img)?,
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

/// A buildpack's layers (one per buildpack; several for a buildpackage holding a composite and its parts).
type BuildpackPart = (LayerInfo, BuilderBuildpack, BuildpackLayerInfo);

/// The layers one `[[buildpacks]]` entry brings: a directory (or an archive of one) becomes a layer at
/// `/cnb/buildpacks/<id>/<version>`; a buildpackage (`.cnb` file or OCI layout) brings its layers as they are.
fn buildpack_layers(
    source: &BuildpackSource,
    base_dir: &Path,
    out: &Layout,
) -> Result<Vec<BuildpackPart>, BuilderError> {
    let uri = source.image.as_deref().unwrap_or(&source.uri);
    let bp_err = |message: String| BuilderError::Buildpack {
        uri: uri.to_owned(),
        message,
    };
    if let Ok(ImageRef::Layout { path, tag }) = uri.parse::<ImageRef>()
        && uri.starts_with("oci:")
    {
        let layout = Layout::open(&base_dir.join(path)).map_err(|e| bp_err(e.to_string()))?;
        let desc = layout
            .resolve(tag.as_deref())
            .map_err(|e| bp_err(e.to_string()))?;
        return buildpackage_layers(&layout, &desc, out).map_err(bp_err);
    }
    if uri.contains("://") && !uri.starts_with("file://") {
        return Err(bp_err(
            "not a local buildpack: use a directory, a .tgz/.tar of one, a .cnb file, `oci:PATH:TAG` or `docker://REF`"
                .into(),
        ));
    }
    let path = base_dir.join(uri.strip_prefix("file://").unwrap_or(uri));
    let unpacked;
    let dir = if path.is_dir() {
        path
    } else if path.is_file() {
        unpacked = unpack_archive(&path).map_err(bp_err)?;
        unpacked.path().to_path_buf()
    } else {
        return Err(bp_err(format!("`{}` does not exist", path.display())));
    };
    if dir.join("oci-layout").is_file() {
        let layout = Layout::open(&dir).map_err(|e| bp_err(e.to_string()))?;
        let desc = layout.resolve(None).map_err(|e| bp_err(e.to_string()))?;
        return buildpackage_layers(&layout, &desc, out).map_err(bp_err);
    }
    if !dir.join("buildpack.toml").is_file() {
        return Err(bp_err(
            "no buildpack.toml at its top, and not a buildpackage (`.cnb`): pass the buildpack's directory, a .tgz of it, or a buildpackage"
                .into(),
        ));
    }
    buildpack_dir_layer(&dir, out, &bp_err).map(|part| vec![part])
}

/// One buildpack directory as a layer at `/cnb/buildpacks/<id>/<version>`.
pub(crate) fn buildpack_dir_layer(
    dir: &Path,
    out: &Layout,
    bp_err: &dyn Fn(String) -> BuilderError,
) -> Result<BuildpackPart, BuilderError> {
    let d = BuildpackDescriptor::from_path(dir.join("buildpack.toml"))
        .map_err(|e| bp_err(e.to_string()))?;
    let id = d.buildpack.id.clone();
    let version = d.buildpack.version;
    let prefix = format!("cnb/buildpacks/{}/{version}", id.dir_name());
    let entries = entries_from_dir(dir, &prefix).map_err(|e| bp_err(e.to_string()))?;
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

/// The buildpacks of a buildpackage image (`io.buildpacks.buildpack.layers`), their layers copied as they are.
fn buildpackage_layers(
    layout: &Layout,
    desc: &Desc,
    out: &Layout,
) -> Result<Vec<BuildpackPart>, String> {
    let image = read_image(layout, desc).map_err(|e| e.to_string())?;
    let label = image.config.label(BuildpackLayers::KEY).ok_or_else(|| {
        format!(
            "image {} has no `{}` label: it is not a buildpackage",
            desc.digest,
            BuildpackLayers::KEY
        )
    })?;
    let listed = BuildpackLayers::from_label(label).map_err(|e| e.to_string())?;
    let layers = image.layer_infos().map_err(|e| e.to_string())?;
    copy_image(layout, out, desc).map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    for (id, versions) in listed.0 {
        for (version, info) in versions {
            let layer = layers
                .iter()
                .find(|l| l.diff_id.as_str() == info.layer_diff_id)
                .ok_or_else(|| {
                    format!(
                        "`{id}@{version}` names layer {}, which image {} does not have",
                        info.layer_diff_id, desc.digest
                    )
                })?;
            let entry = BuilderBuildpack {
                id: id.clone(),
                version,
                homepage: info.homepage.clone(),
                name: info.name.clone(),
            };
            parts.push((layer.clone(), entry, info));
        }
    }
    Ok(parts)
}

/// Unpacks a buildpack archive (tar, gzip or not, `buildpack.toml` at its top) into a temporary directory;
/// entries that would leave it are refused.
fn unpack_archive(path: &Path) -> Result<tempfile::TempDir, String> {
    use std::io::Read as _;
    let mut file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| e.to_string())?;
    let file = fs_err::File::open(path).map_err(|e| e.to_string())?;
    let reader: Box<dyn std::io::Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    gp_oci::unpack::unpack_layer(reader, dir.path()).map_err(|e| {
        format!("not a buildpack archive (a .tgz or .tar with buildpack.toml at its top, or a .cnb): {e}")
    })?;
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
    order: &[OrderGroup],
    run_images: &[RunImageRef],
    programs: &Lifecycle<'_>,
    out: &Layout,
) -> Result<Vec<LayerInfo>, BuilderError> {
    let order_toml = OrderToml {
        order: order.to_vec(),
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
