//! The builder `goldenpath build` uses when none is named, and the user settings that choose it.
//!
//! Which builder, first match wins: `--builder`, `GOLDENPATH_BUILDER`, `builder` in the user config
//! (`$XDG_CONFIG_HOME/goldenpath/config.toml`, else `~/.config/goldenpath/config.toml`), the platform's default
//! builder image when `GOLDENPATH_CONFIG` names its `goldenpath.toml`, else the built-in default:
//! the default stack (Debian bookworm, built with mmdebstrap on first use, or the build and run images the settings
//! name) with the built-in buildpacks, made on first use and cached under `<cache>/builders/default-<key>`, the key
//! being the digest of everything that goes into it.

use std::path::{Path, PathBuf};

use gp_oci::digest::Digest;
use gp_oci::layout::{Layout, copy_image};
use gp_oci::reference::ImageRef;
use serde::Deserialize;

use crate::embedded;

/// `config.toml`: a user's settings for builds on this machine.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserConfig {
    /// The builder for `goldenpath build` without `--builder`.
    pub builder: Option<String>,
    /// Stack images for the built-in default builder, instead of building the default stack here.
    #[serde(default)]
    pub default_builder: StackImages,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StackImages {
    pub build_image: Option<String>,
    pub run_image: Option<String>,
}

/// The user config's path.
pub fn user_config_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("goldenpath/config.toml"))
}

/// Reads the user config; a missing file is the empty config, anything else unreadable is an error naming it.
pub fn user_config() -> Result<UserConfig, String> {
    let Some(path) = user_config_path() else {
        return Ok(UserConfig::default());
    };
    match fs_err::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "`{}` is not a regular file: the user config must be a TOML file",
                path.display()
            ));
        }
        Ok(_) => {}
    }
    let text = fs_err::read_to_string(&path).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// The builder a build without `--builder` uses: the user's, else the platform's (`GOLDENPATH_CONFIG`), else the
/// built-in default (made if needed).
pub fn for_build(insecure: &[String]) -> Result<String, String> {
    let config = user_config()?;
    if let Some(b) = config.builder {
        return Ok(b);
    }
    if let Some(b) = platform_builder()? {
        return Ok(b);
    }
    ensure_with(&config.default_builder, insecure)
}

/// The platform's default builder image when `GOLDENPATH_CONFIG` names its `goldenpath.toml`: the image its kpack
/// `ClusterBuilder` for the `default` builder writes, `<registry>/goldenpath-builders/<name>`.
fn platform_builder() -> Result<Option<String>, String> {
    let Some(path) = std::env::var_os("GOLDENPATH_CONFIG").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let config = gp_contract::PlatformConfig::load(&path).map_err(|diags| {
        let first = diags
            .first()
            .map_or_else(String::new, |d| format!(": {}", d.message));
        format!(
            "`GOLDENPATH_CONFIG` `{}` is not a valid platform config{first}",
            path.display()
        )
    })?;
    Ok(config
        .builders
        .get(&gp_contract::model::default_builder())
        .map(|name| format!("{}/goldenpath-builders/{name}", config.registry)))
}

/// The built-in default builder, made on first use: `oci:PATH:default`.
pub fn ensure(insecure: &[String]) -> Result<String, String> {
    ensure_with(&user_config()?.default_builder, insecure)
}

fn stack_images(config: &StackImages) -> Result<Option<(String, String)>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let build = var("GOLDENPATH_STACK_BUILD_IMAGE").or_else(|| config.build_image.clone());
    let run = var("GOLDENPATH_STACK_RUN_IMAGE").or_else(|| config.run_image.clone());
    match (build, run) {
        (Some(b), Some(r)) => Ok(Some((b, r))),
        (None, None) => Ok(None),
        _ => Err(
            "name both stack images for the default builder (`GOLDENPATH_STACK_BUILD_IMAGE` and \
             `GOLDENPATH_STACK_RUN_IMAGE`, or `build-image` and `run-image` under `[default-builder]` in the user \
             config), or neither to build the default stack here"
                .into(),
        ),
    }
}

fn ensure_with(config: &StackImages, insecure: &[String]) -> Result<String, String> {
    let cache = super::cache_dir();
    let files = embedded::materialize(&cache)
        .map_err(|e| format!("cannot write out the buildpacks goldenpath carries: {e}"))?;
    let (build_image, run_image) = if let Some(images) = stack_images(config)? {
        images
    } else {
        let stack = default_stack(&cache)?;
        (
            format!("oci:{}:build", stack.display()),
            format!("oci:{}:run", stack.display()),
        )
    };
    let stack_identity = image_identity(&build_image)? + &image_identity(&run_image)?;
    let key = Digest::of(format!("{}\n{stack_identity}", files.digest).as_bytes());
    let builder = cache
        .join("builders")
        .join(format!("default-{}", &key.hex()[..16]));
    let reference = format!("oci:{}:default", builder.display());
    if builder.join("index.json").is_file() {
        return Ok(reference);
    }
    let activity = crate::progress::Activity::start(&format!(
        "CREATING THE DEFAULT BUILDER (once; cached under {})",
        builder.display()
    ));
    let parent = builder.parent().unwrap_or(&cache);
    fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    let stage = tempfile::Builder::new()
        .prefix(".default-builder-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in `{}`: {e}", parent.display()))?;
    let toml = embedded::BUILDER_TOML
        .replace(
            "@BUILDPACKS@",
            &files.dir.join("buildpacks").display().to_string(),
        )
        .replace("\"oci:@STACK@:build\"", &toml_string(&build_image))
        .replace("\"oci:@STACK@:run\"", &toml_string(&run_image));
    let config_path = stage.path().join("builder.toml");
    fs_err::write(&config_path, toml).map_err(|e| e.to_string())?;
    let layout = stage.path().join("image");
    super::builder::create_from(
        &config_path,
        &format!("oci:{}:default", layout.display()),
        None,
        None,
        insecure,
    )?;
    drop(activity);
    match fs_err::rename(&layout, &builder) {
        Ok(()) => {
            eprintln!("*** default builder {reference}");
            Ok(reference)
        }
        Err(_) if builder.join("index.json").is_file() => Ok(reference), // made by another build meanwhile
        Err(e) => Err(e.to_string()),
    }
}

/// What names an image's content for the cache key: a layout's `index.json` digest, a registry reference as written.
fn image_identity(reference: &str) -> Result<String, String> {
    match reference.parse::<ImageRef>().map_err(|e| e.to_string())? {
        ImageRef::Layout { path, .. } => {
            let index = fs_err::read(path.join("index.json")).map_err(|e| e.to_string())?;
            Ok(Digest::of(&index).to_string())
        }
        ImageRef::Registry(r) => Ok(r.to_string()),
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The default stack's images, built with mmdebstrap once per stack definition: `<cache>/stacks/bookworm-<key>`.
fn default_stack(cache: &Path) -> Result<PathBuf, String> {
    let key = Digest::of(embedded::STACK_TOML.as_bytes());
    let dir = cache
        .join("stacks")
        .join(format!("bookworm-{}", &key.hex()[..16]));
    if dir.join("index.json").is_file() {
        return Ok(dir);
    }
    let stack = gp_stack::stack::parse(embedded::STACK_TOML, Path::new("<built-in stack.toml>"))
        .map_err(|e| e.to_string())?;
    let parent = dir.parent().unwrap_or(cache);
    fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    let stage = tempfile::Builder::new()
        .prefix(".stack-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in `{}`: {e}", parent.display()))?;
    let out_dir = stage.path().join("image");
    let out = Layout::create(&out_dir).map_err(|e| e.to_string())?;
    for which in ["build", "run"] {
        let activity = crate::progress::Activity::start(&format!(
            "BUILDING THE DEFAULT STACK'S {} IMAGE ({} {}, with mmdebstrap; once, a few minutes)",
            which.to_uppercase(),
            stack.id,
            stack.debian.suite
        ));
        let started = std::time::Instant::now();
        let built =
            gp_stack::stack::build_image(&stack, which, &stage.path().join("scratch"), &out, which)
                .map_err(|e| format!("the default stack: {e}"))?;
        drop(activity);
        eprintln!(
            "*** {which} image {}: {}, {} s",
            built.desc.digest,
            built.summary(),
            started.elapsed().as_secs()
        );
    }
    let _ = fs_err::remove_dir_all(stage.path().join("scratch"));
    match fs_err::rename(&out_dir, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.join("index.json").is_file() => Ok(dir),
        Err(e) => Err(e.to_string()),
    }
}

/// Copies the builder (`oci:PATH:TAG`) to `target`: another layout, or a registry.
pub fn copy_to(builder: &str, target: &str, insecure: &[String]) -> Result<(), String> {
    let ImageRef::Layout { path, tag } = builder.parse::<ImageRef>().map_err(|e| e.to_string())?
    else {
        return Err(format!("`{builder}` is not an OCI layout reference"));
    };
    let src = Layout::open(&path).map_err(|e| e.to_string())?;
    let desc = src.resolve(tag.as_deref()).map_err(|e| e.to_string())?;
    match target
        .parse::<ImageRef>()
        .map_err(|e| format!("`--tag {target}`: {e}"))?
    {
        ImageRef::Layout { path, tag } => {
            let dst = Layout::create(&path).map_err(|e| e.to_string())?;
            copy_image(&src, &dst, &desc).map_err(|e| e.to_string())?;
            dst.set_tag(tag.as_deref().unwrap_or("latest"), &desc)
                .map_err(|e| e.to_string())?;
        }
        ImageRef::Registry(r) => {
            super::registry(&r, insecure)
                .and_then(|reg| reg.push(&src, &desc, &r, None))
                .map_err(|e| format!("`--tag {target}`: {e}"))?;
        }
    }
    Ok(())
}
