//! A local cache directory for `cache = true` layers: saved after a build, restored before the next one so
//! buildpacks can reuse their work (`<cache>/<buildpack>/<layer>/` and `<layer>.toml`).
//!
//! Layers move rather than copy (a rename, when the cache and the build's layers directory share a filesystem):
//! a restored layer leaves the cache and the saved one replaces it, so a no-change rebuild moves no bytes and the
//! files keep their inodes and times, which lets the exporter recognise unchanged layers without reading them.

use std::io;
use std::path::Path;

use gp_cnb::{GroupToml, LayerContentMetadata, TomlFile};

use crate::layers::toml_of;

/// Copies a tree, keeping symlinks as links and file modes.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs_err::create_dir_all(to)?;
    for e in fs_err::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            fs_err::os::unix::fs::symlink(fs_err::read_link(&src)?, &dst)?;
        } else {
            fs_err::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// Moves a tree: a rename where possible, else a copy (then the source is removed).
fn move_tree(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let _ = fs_err::remove_dir_all(to);
    if fs_err::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_tree(from, to)?;
    fs_err::remove_dir_all(from)
}

fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if fs_err::rename(from, to).is_ok() {
        return Ok(());
    }
    fs_err::copy(from, to)?;
    fs_err::remove_file(from)
}

/// Writes the cached `<layer>.toml` back without its `[types]` table, as the spec restores it (a buildpack that
/// wants the layer again declares its types; one that ignores it lets it go).
fn restore_toml(from: &Path, to: &Path) -> io::Result<()> {
    let meta = LayerContentMetadata::from_path(from).map_err(io::Error::other)?;
    let text = meta.restored().to_toml_string().map_err(io::Error::other)?;
    fs_err::write(to, text)?;
    fs_err::remove_file(from)
}

/// Moves the layer SBOM files (`<layer>.sbom.<ext>`) of `layer` along with it: the spec keeps them with the
/// cached layer.
fn move_sboms(from: &Path, to: &Path, layer: &str) -> io::Result<()> {
    for (_, path) in crate::layers::sbom_files(from, layer) {
        if let Some(name) = path.file_name() {
            move_file(&path, &to.join(name))?;
        }
    }
    Ok(())
}

fn cached(dir: &Path) -> Vec<String> {
    crate::layers::layer_dirs(dir)
        .into_iter()
        .filter(|l| l.meta.types().cache)
        .map(|l| l.name)
        .collect()
}

/// Restores every cached layer of the group's buildpacks into `layers`; returns `<bp>:<layer>` names restored.
pub fn restore(cache: &Path, layers: &Path, group: &GroupToml) -> io::Result<Vec<String>> {
    let mut restored = Vec::new();
    for m in &group.group {
        let bp = m.id.dir_name();
        for name in cached(&cache.join(&bp)) {
            let from = cache.join(&bp).join(&name);
            let to = layers.join(&bp).join(&name);
            move_tree(&from, &to)?;
            restore_toml(&toml_of(&from), &toml_of(&to))?;
            move_sboms(&cache.join(&bp), &layers.join(&bp), &name)?;
            restored.push(format!("{}:{name}", m.id));
        }
    }
    Ok(restored)
}

/// Replaces the cache with this build's `cache = true` layers, moving them out of `layers` (call it after the
/// export); returns `<bp>:<layer>` names saved.
pub fn save(cache: &Path, layers: &Path, group: &GroupToml) -> io::Result<Vec<String>> {
    let staging = cache.with_extension("new");
    let _ = fs_err::remove_dir_all(&staging);
    let mut saved = Vec::new();
    for m in &group.group {
        let bp = m.id.dir_name();
        for name in cached(&layers.join(&bp)) {
            let from = layers.join(&bp).join(&name);
            let to = staging.join(&bp).join(&name);
            move_tree(&from, &to)?;
            fs_err::copy(toml_of(&from), toml_of(&to))?;
            move_sboms(&layers.join(&bp), &staging.join(&bp), &name)?;
            saved.push(format!("{}:{name}", m.id));
        }
    }
    fs_err::create_dir_all(&staging)?;
    // Swap in the new cache as a whole: an interrupted save leaves the old cache usable.
    let old = cache.with_extension("old");
    let _ = fs_err::remove_dir_all(&old);
    if cache.exists() {
        fs_err::rename(cache, &old)?;
    }
    fs_err::rename(&staging, cache)?;
    let _ = fs_err::remove_dir_all(&old);
    Ok(saved)
}
