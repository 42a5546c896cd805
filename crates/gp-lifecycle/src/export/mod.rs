//! The exporter: the run image's layers, then one layer per launch layer, the app layer, the launcher, the
//! process-type links and `metadata.toml`, with the CNB labels pack and kpack read. Written into an OCI layout;
//! identical layers give identical digests, so unchanged layers are never stored (or later pushed) twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gp_cnb::{
    BuildpackLayersRecord, GroupToml, LayerContentMetadata, LayerName, LayerRecord, LayerSha,
    LifecycleMetadata, RunImageRecord, TomlFile,
};
use gp_oci::image::{ImageConfig, add_layer, read_image};
use gp_oci::layer::{Compression, Entry, Kind, LayerInfo, LayerOptions, Source, entries_from_dir};
use gp_oci::layout::{Desc, Layout, copy_image};
use gp_oci::memo::Memo;
use gp_oci::spec::ConfigFile;

use crate::build::Built;
use crate::layers::SBOM_EXTENSIONS;

mod labels;

pub use labels::run_image_reference;
use labels::{build_metadata, image_labels, store_record};

pub const LAYERS_DIR: &str = "/layers";
pub const APP_DIR: &str = "/workspace";
/// The Platform API this exporter implements.
pub const PLATFORM_API: &str = "0.15";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the run image: {0}")]
    RunImage(String),
    #[error("cannot write layer `{what}`: {message}")]
    Layer { what: String, message: String },
    #[error("cannot write the image: {0}")]
    Image(String),
    #[error("`{path}` is not a valid `project-metadata.toml`: {message}")]
    ProjectMetadata { path: PathBuf, message: String },
    #[error("`{path}` is not a valid `store.toml` (a `[metadata]` table): {message}")]
    Store { path: PathBuf, message: String },
    #[error(
        "buildpack `{buildpack}` kept layer `{layer}` (a `{layer}.toml` with launch = true and no directory), but the previous image has no such layer to reuse"
    )]
    NoPreviousLayer { buildpack: String, layer: String },
}

/// Where the build left things and where the image goes.
#[derive(Clone)]
pub struct ExportInput<'a> {
    pub layers: &'a Path,
    pub app: &'a Path,
    pub group: &'a GroupToml,
    pub built: &'a Built,
    /// The launcher binary to place at `/cnb/lifecycle/launcher`.
    pub launcher: &'a Path,
    /// The run image, already in a layout, and how to name it in the metadata.
    pub run_image: Option<(&'a Layout, Desc, String)>,
    pub out: &'a Layout,
    pub tag: &'a str,
    /// Recognises layers unchanged since an earlier export into `out` (no re-tar, no re-compress).
    pub memo: Option<&'a Memo>,
    /// The previous image of the same name: launch layers a buildpack kept (`.toml` only) are taken from it.
    pub previous: Option<&'a crate::analyze::Previous>,
    /// Hears the exporter's notices (the default process, slices that match nothing).
    pub progress: &'a dyn crate::progress::Progress,
}

impl ExportInput<'_> {
    fn add(
        &self,
        entries: &[Entry],
        opts: &LayerOptions,
    ) -> Result<LayerInfo, gp_oci::image::ImageError> {
        match self.memo {
            Some(m) => m.add_layer(self.out, entries, opts).map(|(info, _)| info),
            None => add_layer(self.out, entries, opts),
        }
    }
}

impl std::fmt::Debug for ExportInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportInput")
            .field("layers", &self.layers)
            .field("app", &self.app)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// Layers by role, in image order.
pub type NamedLayers = Vec<(String, LayerInfo)>;

#[derive(Debug, Clone)]
pub struct Exported {
    pub manifest: Desc,
    /// Our layers by role (`app`, `launcher`, `config`, `process-types`, `<bp>:<layer>`), with their identity.
    pub layers: NamedLayers,
}

fn layer_err(what: &str) -> impl Fn(gp_oci::image::ImageError) -> ExportError + '_ {
    move |e| ExportError::Layer {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

/// Base image: its layers (as `LayerInfo`), runtime config, and top layer digest.
struct Base {
    layers: Vec<LayerInfo>,
    config: ConfigFile,
    /// `runImage.reference`: what identifies the run image uniquely.
    reference: String,
}

fn base(input: &ExportInput<'_>) -> Result<Base, ExportError> {
    let Some((layout, desc, name)) = &input.run_image else {
        return Ok(Base {
            layers: Vec::new(),
            config: ConfigFile::default(),
            reference: String::new(),
        });
    };
    let rerr = |e: &dyn std::fmt::Display| ExportError::RunImage(e.to_string());
    copy_image(layout, input.out, desc).map_err(|e| rerr(&e))?;
    let img = read_image(layout, desc).map_err(|e| rerr(&e))?;
    let layers = img.layer_infos().map_err(|e| rerr(&e))?;
    let reference = run_image_reference(name, &img);
    Ok(Base {
        layers,
        config: img.config,
        reference,
    })
}

fn ids(base: &ConfigFile) -> (u64, u64) {
    // The first value that is a number wins, as it always has.
    let get = |k: &str| {
        base.env()
            .iter()
            .find_map(|e| e.strip_prefix(&format!("{k}="))?.parse().ok())
    };
    (
        get("CNB_USER_ID").unwrap_or(1000),
        get("CNB_GROUP_ID").unwrap_or(1000),
    )
}

/// The gzip level of the layers the exporter writes. Measured on Python's standard library (54 MB, 2 cores):
/// level 6 takes 0.78 s for 15.5 MB, level 2 0.46 s for 17.1 MB, level 1 0.35 s for 20.8 MB. Export time is
/// build time on every build while the bytes are pulled once per node; level 2 keeps most of the speed for 10%
/// more bytes. (The reference lifecycle writes level 1.) Stacks and builders, built rarely, keep level 6.
pub const COMPRESSION: Compression = Compression::Gzip { level: 2 };

/// The options the exporter writes buildpack and app layers with: owned by the run image's CNB user
/// (`CNB_USER_ID`/`CNB_GROUP_ID` in its environment; 1000:1000 without a run image or those variables).
#[must_use]
pub fn layer_options(run_image: Option<(&Layout, &Desc)>) -> LayerOptions {
    let config = run_image
        .and_then(|(l, d)| read_image(l, d).ok())
        .map(|img| img.config)
        .unwrap_or_default();
    let (uid, gid) = ids(&config);
    LayerOptions {
        uid,
        gid,
        compression: COMPRESSION,
    }
}

/// Exports the image and tags it in `input.out`.
pub fn export(input: &ExportInput<'_>) -> Result<Exported, ExportError> {
    let base = base(input)?;
    let (uid, gid) = ids(&base.config);
    let opts = LayerOptions {
        uid,
        gid,
        compression: COMPRESSION,
    };
    let root_opts = LayerOptions {
        uid: 0,
        gid: 0,
        compression: COMPRESSION,
    };
    let (mut ours, records) = buildpack_layers(input, &opts)?;
    let (app, launcher, process_types, config) = lifecycle_layers(input, &opts, &root_opts)?;
    let sbom = sbom_layer(input, &opts)?;
    let sha = |i: &LayerInfo| {
        Some(LayerSha {
            sha: i.diff_id.to_string(),
        })
    };
    let lifecycle = LifecycleMetadata {
        app: app
            .iter()
            .map(|l| LayerSha {
                sha: l.diff_id.to_string(),
            })
            .collect(),
        config: sha(&config),
        launcher: sha(&launcher),
        process_types: process_types.as_ref().and_then(&sha),
        sbom: sbom.as_ref().and_then(&sha),
        buildpacks: records,
        run_image: input
            .run_image
            .as_ref()
            .map(|(_, _, reference)| RunImageRecord {
                top_layer: base
                    .layers
                    .last()
                    .map(|l| l.diff_id.to_string())
                    .unwrap_or_default(),
                reference: base.reference.clone(),
                image: reference.clone(),
                mirrors: Vec::new(),
            }),
        ..LifecycleMetadata::default()
    };
    let build_metadata = build_metadata(input);
    let labels = image_labels(&base.config, input, &lifecycle, &build_metadata)?;

    let slices = app.len() - 1;
    for (i, l) in app.into_iter().enumerate() {
        let role = if i < slices {
            format!("app slice {}", i + 1)
        } else {
            "app".into()
        };
        ours.push((role, l));
    }
    ours.push(("launcher".into(), launcher));
    if let Some(process_types) = process_types {
        ours.push(("process-types".into(), process_types));
    }
    if let Some(t) = &input.built.metadata.default_process_type {
        // The reference exporter's line, which buildpack test suites match on.
        let line = format!("Setting default process type '{t}'");
        input.progress.event(crate::progress::Event::notice(line));
    }
    ours.push(("config".into(), config));
    if let Some(sbom) = sbom {
        ours.push(("sbom".into(), sbom));
    }
    let all: Vec<LayerInfo> = base
        .layers
        .iter()
        .cloned()
        .chain(ours.iter().map(|(_, l)| l.clone()))
        .collect();
    let image_config = ImageConfig {
        user: Some(format!("{uid}:{gid}")),
        env: runtime_env(&base.config),
        entrypoint: vec![
            input
                .built
                .metadata
                .default_process_type
                .as_ref()
                .map_or_else(
                    || "/cnb/lifecycle/launcher".to_owned(),
                    |t| format!("/cnb/process/{t}"),
                ),
        ],
        cmd: Vec::new(),
        working_dir: Some(APP_DIR.into()),
        labels,
    };
    let manifest = gp_oci::image::write_image(input.out, input.tag, &all, &image_config)
        .map_err(|e| ExportError::Image(e.to_string()))?;
    Ok(Exported {
        manifest,
        layers: ours,
    })
}

/// One layer per launch layer of each buildpack, and the records for `io.buildpacks.lifecycle.metadata`.
fn buildpack_layers(
    input: &ExportInput<'_>,
    opts: &LayerOptions,
) -> Result<(NamedLayers, Vec<BuildpackLayersRecord>), ExportError> {
    let mut ours: Vec<(String, LayerInfo)> = Vec::new();
    let mut records = Vec::new();
    for member in &input.group.group {
        let bp = member.id.dir_name();
        let dir = input.layers.join(&bp);
        let mut record = BuildpackLayersRecord {
            key: member.id.clone(),
            version: member.version,
            layers: BTreeMap::new(),
            store: store_record(&dir)?,
        };
        for (name, path, meta) in launch_layers(&dir) {
            let entries = entries_from_dir(&path, &format!("layers/{bp}/{name}")).map_err(|e| {
                ExportError::Layer {
                    what: name.clone(),
                    message: e.to_string(),
                }
            })?;
            let info = input.add(&entries, opts).map_err(layer_err(&name))?;
            let types = meta.types();
            if let Ok(layer_name) = name.parse::<LayerName>() {
                record.layers.insert(
                    layer_name,
                    LayerRecord {
                        sha: info.diff_id.to_string(),
                        data: meta.metadata.as_ref().map_or(serde_json::Value::Null, |t| {
                            serde_json::to_value(t).unwrap_or_default()
                        }),
                        build: types.build,
                        launch: types.launch,
                        cache: types.cache,
                    },
                );
            }
            ours.push((format!("{}:{name}", member.id), info));
        }
        // Launch layers the buildpack kept from the previous image: a `.toml`, no directory.
        for (name, meta) in kept_layers(&dir) {
            let reused = input
                .previous
                .and_then(|p| p.layer(member.id.as_str(), &name))
                .ok_or_else(|| ExportError::NoPreviousLayer {
                    buildpack: member.id.to_string(),
                    layer: name.clone(),
                })?;
            let (info, previous) = reused;
            if let Ok(layer_name) = name.parse::<LayerName>() {
                let types = meta.types();
                record.layers.insert(
                    layer_name,
                    LayerRecord {
                        sha: info.diff_id.to_string(),
                        data: meta.metadata.as_ref().map_or_else(
                            || previous.data.clone(),
                            |t| serde_json::to_value(t).unwrap_or_default(),
                        ),
                        build: types.build,
                        launch: true,
                        cache: types.cache,
                    },
                );
            }
            ours.push((format!("{}:{name} (reused)", member.id), info));
        }
        records.push(record);
    }

    Ok((ours, records))
}

/// The app, launcher, process-type (none without processes) and config layers.
fn lifecycle_layers(
    input: &ExportInput<'_>,
    opts: &LayerOptions,
    root_opts: &LayerOptions,
) -> Result<(Vec<LayerInfo>, LayerInfo, Option<LayerInfo>, LayerInfo), ExportError> {
    let app_entries = entries_from_dir(input.app, "workspace").map_err(|e| ExportError::Layer {
        what: "app".into(),
        message: e.to_string(),
    })?;
    let host_app = input.app.to_string_lossy();
    let (parts, rest, empty) = crate::slices::split(
        &app_entries,
        "workspace",
        input.app,
        &input.built.metadata.slices,
        &[APP_DIR, &host_app],
    )
    .map_err(|e| ExportError::Layer {
        what: "app".into(),
        message: e.to_string(),
    })?;
    for i in empty {
        input
            .progress
            .event(crate::progress::Event::warning(format!(
                "slice {} ({}) matches no files; no layer for it",
                i + 1,
                input.built.metadata.slices[i].paths.join(", ")
            )));
    }
    let mut app = Vec::with_capacity(parts.len() + 1);
    for part in parts.iter().chain(std::iter::once(&rest)) {
        app.push(input.add(part, opts).map_err(layer_err("app"))?);
    }
    let dir = |p: &str| Entry {
        path: p.into(),
        kind: Kind::Dir,
        executable: true,
    };
    let launcher_entries = vec![
        dir("cnb"),
        dir("cnb/lifecycle"),
        Entry {
            path: "cnb/lifecycle/launcher".into(),
            kind: Kind::File(Source::Path(input.launcher.to_path_buf())),
            executable: true,
        },
    ];
    let launcher = input
        .add(&launcher_entries, root_opts)
        .map_err(layer_err("launcher"))?;
    // `/cnb/process/<type>` links to the launcher by its absolute path, as the reference exporter writes them.
    let mut process_entries = vec![dir("cnb"), dir("cnb/process")];
    for p in &input.built.metadata.processes {
        process_entries.push(Entry {
            path: format!("cnb/process/{}", p.kind),
            kind: Kind::Symlink("/cnb/lifecycle/launcher".into()),
            executable: false,
        });
    }
    let process_types = if input.built.metadata.processes.is_empty() {
        None
    } else {
        Some(
            input
                .add(&process_entries, root_opts)
                .map_err(layer_err("process-types"))?,
        )
    };
    let metadata_toml = input
        .built
        .metadata
        .to_toml_string()
        .map_err(|e| ExportError::Image(e.to_string()))?;
    let config_entries = vec![
        dir("layers"),
        dir("layers/config"),
        Entry {
            path: "layers/config/metadata.toml".into(),
            kind: Kind::File(Source::Bytes(metadata_toml.into_bytes())),
            executable: false,
        },
    ];
    let config = input
        .add(&config_entries, opts)
        .map_err(layer_err("config"))?;

    Ok((app, launcher, process_types, config))
}

/// The launch SBOM files buildpacks wrote (`launch.sbom.<ext>`, `<layer>.sbom.<ext>` of launch layers), as one layer
/// under `/layers/sbom/launch/<buildpack>/[<layer>/]sbom.<ext>`; `None` when there are none.
fn sbom_layer(
    input: &ExportInput<'_>,
    opts: &LayerOptions,
) -> Result<Option<LayerInfo>, ExportError> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for member in &input.group.group {
        let bp = member.id.dir_name();
        let dir = input.layers.join(&bp);
        for ext in SBOM_EXTENSIONS {
            let f = dir.join(format!("launch.sbom.{ext}"));
            if f.is_file() {
                files.push((format!("layers/sbom/launch/{bp}/sbom.{ext}"), f));
            }
            // Launch layers, rebuilt or kept from the previous image: the SBOM present after the build.
            let launch = launch_layers(&dir).into_iter().map(|(name, _, _)| name);
            let kept = kept_layers(&dir).into_iter().map(|(name, _)| name);
            for name in launch.chain(kept) {
                let f = dir.join(format!("{name}.sbom.{ext}"));
                if f.is_file() {
                    files.push((format!("layers/sbom/launch/{bp}/{name}/sbom.{ext}"), f));
                }
            }
        }
    }
    if files.is_empty() {
        return Ok(None);
    }
    files.sort();
    let mut entries: Vec<Entry> = Vec::new();
    let mut dirs: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (path, _) in &files {
        let mut acc = String::new();
        for part in path.split('/').take(path.split('/').count() - 1) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.insert(acc.clone());
        }
    }
    entries.extend(dirs.into_iter().map(|d| Entry {
        path: d,
        kind: Kind::Dir,
        executable: true,
    }));
    entries.extend(files.into_iter().map(|(p, f)| Entry {
        path: p,
        kind: Kind::File(Source::Path(f)),
        executable: false,
    }));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    input
        .add(&entries, opts)
        .map(Some)
        .map_err(layer_err("sbom"))
}

/// Launch layers of one buildpack (those whose `<layer>.toml` says `launch = true`), by name.
/// `<layer>.toml` files with `launch = true` and no layer directory.
fn kept_layers(dir: &Path) -> Vec<(String, LayerContentMetadata)> {
    let mut out: Vec<(String, LayerContentMetadata)> = fs_err::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let layer = name.strip_suffix(".toml")?.to_owned();
            if ["launch", "build", "store"].contains(&layer.as_str()) || dir.join(&layer).exists() {
                return None;
            }
            let meta = LayerContentMetadata::from_path(e.path()).ok()?;
            meta.types().launch.then_some((layer, meta))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn launch_layers(dir: &Path) -> Vec<(String, PathBuf, LayerContentMetadata)> {
    crate::layers::layer_dirs(dir)
        .into_iter()
        .filter(|l| l.meta.types().launch)
        .map(|l| (l.name, l.path, l.meta))
        .collect()
}

fn runtime_env(base: &ConfigFile) -> Vec<String> {
    let mut env: BTreeMap<String, String> = base
        .env_vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let path = env
        .get("PATH")
        .cloned()
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    env.insert("PATH".into(), format!("/cnb/process:/cnb/lifecycle:{path}"));
    env.insert("CNB_LAYERS_DIR".into(), LAYERS_DIR.into());
    env.insert("CNB_APP_DIR".into(), APP_DIR.into());
    // As the reference exporter sets them: the Platform API the image was made for, and quiet deprecations.
    env.insert("CNB_PLATFORM_API".into(), PLATFORM_API.into());
    env.insert("CNB_DEPRECATION_MODE".into(), "quiet".into());
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}
