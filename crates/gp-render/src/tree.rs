//! Writing the GitOps tree: atomic writes, a record of what we generated (`.goldenpath/rendered.json`), and pruning
//! of our own stale files only. A file we did not write is never overwritten or deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::RenderedFile;

/// The record of generated files, relative to the output root.
pub const MANIFEST: &str = ".goldenpath/rendered.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    /// Generated path -> the contract file it came from.
    files: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{path}` is not a record written by goldenpath ({message}); move it away to render into this directory"
    )]
    BadManifest { path: PathBuf, message: String },
    #[error(
        "`{path}` exists and was not written by goldenpath; move it away or render into another directory"
    )]
    NotOurs { path: PathBuf },
    #[error("`{path}` would be generated from both `{first}` and `{second}`")]
    Collision {
        path: PathBuf,
        first: String,
        second: String,
    },
}

/// What changed on disk.
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    pub pruned: Vec<PathBuf>,
    /// Files of contracts that are invalid now, left as they were.
    pub kept: Vec<PathBuf>,
}

/// A file to write and the contract it came from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub source: String,
    pub file: RenderedFile,
}

fn rel(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn load_manifest(out: &Path) -> Result<Manifest, TreeError> {
    let path = out.join(MANIFEST);
    match fs_err::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| TreeError::BadManifest {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(TreeError::Read { path, source: e }),
    }
}

/// Writes `plan` under `out`; prunes files generated earlier from contracts that are gone, except those whose
/// source is in `keep_sources` (contracts that are invalid right now: their running apps must not disappear).
pub fn apply(
    out: &Path,
    plan: &[Planned],
    keep_sources: &BTreeSet<String>,
) -> Result<Outcome, TreeError> {
    let old = load_manifest(out)?;
    let mut new = Manifest {
        version: 1,
        files: BTreeMap::new(),
    };
    for p in plan {
        let key = rel(&p.file.path);
        if let Some(first) = new.files.insert(key.clone(), p.source.clone()) {
            return Err(TreeError::Collision {
                path: out.join(&key),
                first,
                second: p.source.clone(),
            });
        }
        let target = out.join(&key);
        if target.exists() && !old.files.contains_key(&key) {
            return Err(TreeError::NotOurs { path: target });
        }
    }
    let mut outcome = Outcome::default();
    // Directories once, up front; then the files need no per-file directory checks.
    let dirs: BTreeSet<PathBuf> = plan
        .iter()
        .filter_map(|p| out.join(&p.file.path).parent().map(Path::to_path_buf))
        .collect();
    for d in &dirs {
        fs_err::create_dir_all(d).map_err(|e| TreeError::Write {
            path: d.clone(),
            source: e,
        })?;
    }
    // Independent files: compare and write in parallel; results keep the plan's order.
    let results: Vec<Result<(PathBuf, bool), TreeError>> = plan
        .par_iter()
        .map(|p| {
            let target = out.join(&p.file.path);
            if std::fs::read(&target).is_ok_and(|cur| cur == p.file.contents.as_bytes()) {
                return Ok((target, false));
            }
            write_in_existing_dir(&target, p.file.contents.as_bytes())?;
            Ok((target, true))
        })
        .collect();
    for r in results {
        match r? {
            (target, true) => outcome.written.push(target),
            (target, false) => outcome.unchanged.push(target),
        }
    }
    for (key, source) in &old.files {
        if new.files.contains_key(key) {
            continue;
        }
        let target = out.join(key);
        if keep_sources.contains(source) {
            new.files.insert(key.clone(), source.clone());
            outcome.kept.push(target);
            continue;
        }
        match fs_err::remove_file(&target) {
            Ok(()) => outcome.pruned.push(target.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(TreeError::Write {
                    path: target,
                    source: e,
                });
            }
        }
        remove_empty_parents(out, &target);
    }
    let mut text = serde_json::to_string_pretty(&new).unwrap_or_default();
    text.push('\n');
    let manifest_path = out.join(MANIFEST);
    if fs_err::read_to_string(&manifest_path).ok().as_deref() != Some(text.as_str()) {
        write_atomic(&manifest_path, text.as_bytes())?;
    }
    Ok(outcome)
}

/// Temp file in the same directory, then rename: readers never see a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TreeError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(|e| TreeError::Write {
        path: path.to_path_buf(),
        source: e,
    })?;
    write_in_existing_dir(path, bytes)
}

fn write_in_existing_dir(path: &Path, bytes: &[u8]) -> Result<(), TreeError> {
    let err = |e| TreeError::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    fs_err::write(&tmp, bytes).map_err(err)?;
    fs_err::rename(&tmp, path).map_err(|e| {
        let _ = fs_err::remove_file(&tmp);
        err(e)
    })
}

fn remove_empty_parents(out: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == out || !d.starts_with(out) || fs_err::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// The digest Argo CD Image Updater pinned in an app's kustomization, to carry over on re-render.
#[must_use]
pub fn pinned_digest(out: &Path, app_dir: &Path) -> Option<String> {
    let text = fs_err::read_to_string(out.join(app_dir).join("kustomization.yaml")).ok()?;
    text.lines().find_map(|l| {
        let v = l
            .trim()
            .strip_prefix("digest:")?
            .trim()
            .trim_matches(['"', '\'']);
        let hex = v.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_owned())
    })
}
