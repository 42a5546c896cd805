//! `project.toml` (project descriptor 0.2) for builds: `[[io.buildpacks.build.env]]` variables and the
//! `include`/`exclude` patterns (`.gitignore` syntax) that decide which source files the build sees.

use std::path::{Path, PathBuf};

use gp_cnb::{ProjectDescriptor, TomlFile};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// What the descriptor asks for.
#[derive(Debug, Default)]
pub struct Project {
    pub env: Vec<(String, String)>,
    filter: Option<(Gitignore, bool)>,
}

/// Reads `<app>/project.toml` when present.
pub fn load(app: &Path) -> Result<Project, String> {
    let path = app.join("project.toml");
    if !path.is_file() {
        return Ok(Project::default());
    }
    let d = ProjectDescriptor::from_path(&path).map_err(|e| e.to_string())?;
    let Some(bp) = d.io.and_then(|io| io.buildpacks) else {
        return Ok(Project::default());
    };
    let env = bp
        .build
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let (patterns, include) = match (bp.include.is_empty(), bp.exclude.is_empty()) {
        (true, true) => return Ok(Project { env, filter: None }),
        (false, true) => (bp.include, true),
        (true, false) => (bp.exclude, false),
        (false, false) => {
            return Err(format!(
                "`{}`: `include` and `exclude` cannot both be set",
                path.display()
            ));
        }
    };
    let mut b = GitignoreBuilder::new(app);
    for p in &patterns {
        b.add_line(None, p)
            .map_err(|e| format!("`{}`: pattern `{p}`: {e}", path.display()))?;
    }
    let gi = b
        .build()
        .map_err(|e| format!("`{}`: {e}", path.display()))?;
    Ok(Project {
        env,
        filter: Some((gi, include)),
    })
}

impl Project {
    /// The directory the build should see: `app` itself, or a filtered copy under `work`.
    /// The directory the build sees as its app: `app` itself, or a copy at `<work>/app` of what project.toml's
    /// include/exclude lets through (always a copy when `copy`: sandboxed builds hand buildpacks their own).
    pub fn source_dir(&self, app: &Path, work: &Path, copy: bool) -> Result<PathBuf, String> {
        let dest = work.join("app");
        let copied = match &self.filter {
            Some((gi, include)) => copy_filtered(app, app, &dest, gi, *include),
            None if copy => copy_filtered(app, app, &dest, &Gitignore::empty(), false),
            None => return Ok(app.to_path_buf()),
        };
        copied.map_err(|e| format!("copying the source: {e}"))?;
        Ok(dest)
    }
}

fn copy_filtered(
    root: &Path,
    dir: &Path,
    dest_root: &Path,
    gi: &Gitignore,
    include: bool,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dest_root.join(dir.strip_prefix(root).unwrap_or(dir)))?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let ft = e.file_type()?;
        let matched = gi
            .matched_path_or_any_parents(&path, ft.is_dir())
            .is_ignore();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if ft.is_dir() {
            // With `include`, a directory is walked when it or anything below might match.
            if !include && matched {
                continue;
            }
            copy_filtered(root, &path, dest_root, gi, include)?;
            continue;
        }
        if matched != include {
            continue;
        }
        let to = dest_root.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&path)?, &to)?;
        } else {
            std::fs::copy(&path, &to)?;
        }
    }
    Ok(())
}
