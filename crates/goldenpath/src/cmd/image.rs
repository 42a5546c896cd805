//! `goldenpath image ...`: copy, inspect and unpack images in OCI image layouts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gp_oci::image::{open_layer, read_image};
use gp_oci::layout::{Layout, copy_image};
use gp_oci::reference::{ImageRef, RegistryRef};
use gp_oci::registry::Registry;
use gp_oci::unpack::unpack_layers;
use serde_json::json;
use tempfile::TempDir;

use super::exit;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Copy an image (every blob verified; blobs the destination has are skipped).
    Copy(CopyArgs),
    /// Show an image's manifest, config, layers and CNB labels.
    Inspect(InspectArgs),
    /// Unpack an image's layers into a new directory (whiteouts applied, hostile entries refused).
    Unpack(UnpackArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source: `oci:PATH[:TAG]`, `docker://REF` or a plain registry reference.
    pub src: String,
    /// Destination, same forms.
    pub dst: String,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    pub image: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnpackArgs {
    pub image: String,
    /// New directory to create.
    pub dir: PathBuf,
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
}

fn layout_ref(s: &str) -> Result<(PathBuf, Option<String>), String> {
    match s.parse::<ImageRef>().map_err(|e| e.to_string())? {
        ImageRef::Layout { path, tag } => Ok((path, tag)),
        ImageRef::Registry(r) => Err(format!(
            "`{r}` is a registry reference; this build reads and writes OCI image layouts only (`oci:PATH[:TAG]`)"
        )),
    }
}

pub fn run(cmd: ImageCommand) -> ExitCode {
    let result = match cmd {
        ImageCommand::Copy(a) => copy(&a),
        ImageCommand::Inspect(a) => inspect(&a),
        ImageCommand::Unpack(a) => unpack(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn copy(a: &CopyArgs) -> Result<ExitCode, String> {
    let src: ImageRef = a
        .src
        .parse()
        .map_err(|e: gp_oci::reference::RefError| e.to_string())?;
    let dst: ImageRef = a
        .dst
        .parse()
        .map_err(|e: gp_oci::reference::RefError| e.to_string())?;
    match (&src, &dst) {
        (ImageRef::Layout { .. }, ImageRef::Layout { .. }) => copy_layouts(a),
        (ImageRef::Layout { path, tag }, ImageRef::Registry(target)) => {
            let layout = Layout::open(path).map_err(|e| e.to_string())?;
            let desc = layout.resolve(tag.as_deref()).map_err(|e| e.to_string())?;
            push(&layout, &desc, target, None, &a.insecure)
        }
        (ImageRef::Registry(source), ImageRef::Layout { path, tag }) => {
            let (layout, created) = create_layout(path)?;
            let pulled = (|| -> Result<_, String> {
                let registry = connect(source, &a.insecure)?;
                let desc = registry.pull(source, &layout).map_err(|e| e.to_string())?;
                let tag = tag
                    .clone()
                    .or_else(|| source.tag.clone())
                    .unwrap_or_else(|| "latest".to_owned());
                layout.set_tag(&tag, &desc).map_err(|e| e.to_string())?;
                Ok((desc, tag))
            })();
            let (desc, tag) = pulled.inspect_err(|_| created.undo(path))?;
            eprintln!("pulled {} into oci:{}:{tag}", desc.digest, path.display());
            Ok(ExitCode::from(exit::OK))
        }
        (ImageRef::Registry(source), ImageRef::Registry(target)) => {
            let staging = staging_dir(&std::env::temp_dir())?;
            let layout = Layout::create(staging.path()).map_err(|e| e.to_string())?;
            let registry = connect(source, &a.insecure)?;
            let desc = registry.pull(source, &layout).map_err(|e| e.to_string())?;
            let mount = (source.registry == target.registry).then_some(source);
            push(&layout, &desc, target, mount, &a.insecure)
        }
    }
}

fn connect(r: &RegistryRef, insecure: &[String]) -> Result<Registry, String> {
    Ok(super::registry(r, insecure)
        .map_err(|e| e.to_string())?
        .with_progress(|step| eprintln!("  {step}")))
}

/// A layout holding the image: the layout itself, or a temporary one the registry image was pulled into.
fn materialize(
    image: &str,
    insecure: &[String],
) -> Result<(Layout, gp_oci::layout::Desc, Option<TempDir>), String> {
    match image.parse::<ImageRef>().map_err(|e| e.to_string())? {
        ImageRef::Layout { path, tag } => {
            let layout = Layout::open(&path).map_err(|e| e.to_string())?;
            let desc = layout.resolve(tag.as_deref()).map_err(|e| e.to_string())?;
            Ok((layout, desc, None))
        }
        ImageRef::Registry(r) => {
            let dir = staging_dir(&std::env::temp_dir())?;
            let layout = Layout::create(dir.path()).map_err(|e| e.to_string())?;
            let desc = connect(&r, insecure)?
                .pull(&r, &layout)
                .map_err(|e| e.to_string())?;
            Ok((layout, desc, Some(dir)))
        }
    }
}

/// A new private directory under `base` with a random name, created exclusively (a name planted there, or a link,
/// is never reused); removed when dropped.
fn staging_dir(base: &Path) -> Result<TempDir, String> {
    tempfile::Builder::new()
        .prefix("goldenpath-copy-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(base)
        .map_err(|e| {
            format!(
                "cannot create a temporary directory in `{}`: {e}; set `TMPDIR` to a writable directory",
                base.display()
            )
        })
}

/// What [`create_layout`] added, so that a failed copy can take it back (a layout that existed is never removed).
#[derive(Debug, Clone, Copy)]
enum Created {
    /// The layout was there already.
    Nothing,
    /// The directory did not exist.
    Dir,
    /// The directory existed, empty.
    Contents,
}

impl Created {
    fn undo(self, path: &Path) {
        match self {
            Self::Nothing => {}
            Self::Dir => {
                let _ = fs_err::remove_dir_all(path);
            }
            Self::Contents => {
                for name in [
                    "blobs",
                    "oci-layout",
                    "index.json",
                    gp_oci::layout::LOCK_FILE,
                ] {
                    let p = path.join(name);
                    let _ = if name == "blobs" {
                        fs_err::remove_dir_all(p)
                    } else {
                        fs_err::remove_file(p)
                    };
                }
            }
        }
    }
}

/// Opens the destination layout `path`, creating it when absent or empty; says what it created.
fn create_layout(path: &Path) -> Result<(Layout, Created), String> {
    let created = match fs_err::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Created::Dir,
        Ok(m) if m.is_dir() && fs_err::read_dir(path).is_ok_and(|mut d| d.next().is_none()) => {
            Created::Contents
        }
        _ => Created::Nothing,
    };
    match Layout::create(path) {
        Ok(l) => Ok((l, created)),
        Err(e) => {
            created.undo(path);
            Err(e.to_string())
        }
    }
}

fn push(
    layout: &Layout,
    desc: &gp_oci::layout::Desc,
    target: &RegistryRef,
    mount: Option<&RegistryRef>,
    insecure: &[String],
) -> Result<ExitCode, String> {
    let registry = connect(target, insecure)?;
    let stats = registry
        .push(layout, desc, target, mount)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "pushed {} to {target}: {} blob(s) uploaded ({} bytes), {} already present, {} mounted",
        desc.digest, stats.uploaded, stats.bytes, stats.present, stats.mounted
    );
    Ok(ExitCode::from(exit::OK))
}

fn copy_layouts(a: &CopyArgs) -> Result<ExitCode, String> {
    let (src_path, src_tag) = layout_ref(&a.src)?;
    let (dst_path, dst_tag) = layout_ref(&a.dst)?;
    let src = Layout::open(&src_path).map_err(|e| e.to_string())?;
    let desc = src.resolve(src_tag.as_deref()).map_err(|e| e.to_string())?;
    // The source is checked whole before the destination is touched: a bad source leaves nothing behind.
    src.check_image(&desc).map_err(|e| e.to_string())?;
    let (dst, created) = create_layout(&dst_path)?;
    let tag = dst_tag.or(src_tag).unwrap_or_else(|| "latest".to_owned());
    let copied = copy_image(&src, &dst, &desc)
        .and_then(|n| dst.set_tag(&tag, &desc).map(|()| n))
        .map_err(|e| {
            created.undo(&dst_path);
            e.to_string()
        })?;
    eprintln!(
        "copied {} to oci:{}:{tag} ({copied} blob(s) written)",
        desc.digest,
        dst_path.display()
    );
    Ok(ExitCode::from(exit::OK))
}

fn inspect(a: &InspectArgs) -> Result<ExitCode, String> {
    let (layout, desc, tmp) = materialize(&a.image, &a.insecure)?;
    let img = read_image(&layout, &desc);
    drop(tmp);
    let img = img.map_err(|e| e.to_string())?;
    let cnb: serde_json::Map<String, serde_json::Value> = img
        .config
        .labels()
        .iter()
        .filter(|(k, _)| k.starts_with("io.buildpacks."))
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v).unwrap_or_else(|_| json!(v)),
            )
        })
        .collect();
    let layers: Vec<_> = img
        .layers
        .iter()
        .map(|l| json!({"digest": l.digest.as_str(), "size": l.size, "mediaType": l.media_type.as_str()}))
        .collect();
    let out = json!({
        "digest": desc.digest.as_str(),
        "mediaType": desc.media_type.as_str(),
        "manifestDigest": img.manifest_desc.digest.as_str(),
        "os": img.config.os(),
        "architecture": img.config.architecture(),
        "config": img.config.config,
        "layers": layers,
        "buildpacks": cnb,
    });
    if a.json {
        let text = serde_json::to_string_pretty(&out).unwrap_or_default() + "\n";
        return Ok(super::write_stdout(&text));
    }
    let total: u64 = img.layers.iter().map(|l| l.size).sum();
    eprintln!("image     {}", a.image);
    eprintln!("digest    {}", desc.digest);
    eprintln!("platform  {}", img.config.platform());
    eprintln!("layers    {} ({total} bytes)", img.layers.len());
    for l in &img.layers {
        eprintln!("  {}  {:>12}  {}", l.digest, l.size, l.media_type);
    }
    let runtime = &img.config.config;
    let shown = [
        ("user", runtime.user.as_ref().map(|v| json!(v))),
        ("workingdir", runtime.working_dir.as_ref().map(|v| json!(v))),
        ("entrypoint", runtime.entrypoint.as_ref().map(|v| json!(v))),
        ("cmd", runtime.cmd.as_ref().map(|v| json!(v))),
    ];
    for (key, v) in shown {
        if let Some(v) = v {
            eprintln!("{key:<9} {v}");
        }
    }
    for (k, v) in &cnb {
        eprintln!("label     {k} = {v}");
    }
    Ok(ExitCode::from(exit::OK))
}

fn unpack(a: &UnpackArgs) -> Result<ExitCode, String> {
    let (layout, desc, tmp) = materialize(&a.image, &a.insecure)?;
    let result = unpack_from(&layout, &desc, &a.dir);
    drop(tmp);
    result
}

fn unpack_from(
    layout: &Layout,
    desc: &gp_oci::layout::Desc,
    a_dir: &std::path::Path,
) -> Result<ExitCode, String> {
    let img = read_image(layout, desc).map_err(|e| e.to_string())?;
    let readers = img.layers.iter().map(|l| {
        open_layer(layout, l)
            .map_err(|e| gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string())))
    });
    unpack_layers(readers, a_dir).map_err(|e| e.to_string())?;
    eprintln!(
        "unpacked {} ({} layers) into {}",
        desc.digest,
        img.layers.len(),
        a_dir.display()
    );
    Ok(ExitCode::from(exit::OK))
}
