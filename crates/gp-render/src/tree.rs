//! Writing the GitOps tree: a record of what we generated (`.goldenpath/rendered.json`), pruning of our own stale
//! files only, and whole-render atomicity through a journal (`journal`). A file we did not write is never
//! overwritten or deleted, and nothing outside the output directory is ever touched: every operation goes through
//! `safe`, which never follows a link below `--out`.

mod journal;
mod safe;

pub use safe::{TEMP_PREFIX, is_temp_name};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::RenderedFile;
use journal::{Journal, Staged};
use safe::{Kind, RelPath, Root, excerpt, temp_name};

/// The record of generated files, relative to the output root.
pub const MANIFEST: &str = ".goldenpath/rendered.json";
/// The directory of the record, the journal and the lock.
pub const META_DIR: &str = ".goldenpath";
const RECORD_NAME: &str = "rendered.json";

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
        "`{record}` lists `{entry}`, which {reason}; render only writes and prunes clean relative paths below the \
         output directory: remove that entry from the record"
    )]
    BadRecordEntry {
        record: PathBuf,
        entry: String,
        reason: &'static str,
    },
    #[error(
        "`{path}` is not a journal written by goldenpath ({message}); move it away, then check the tree against \
         `{MANIFEST}`"
    )]
    BadJournal { path: PathBuf, message: String },
    #[error(
        "`{path}` exists and was not written by goldenpath; move it away or render into another directory"
    )]
    NotOurs { path: PathBuf },
    #[error(
        "`{path}` is {kind}, where render needs a directory; render never writes through links: move it away or \
         render into another directory"
    )]
    NotADirectory { path: PathBuf, kind: &'static str },
    #[error(
        "`{path}` is {kind}, where render writes a generated file; render never writes through links or into \
         special files: move it away or render into another directory"
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("`{path}` is larger than {limit} bytes, so render did not write it: move it away")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error(
        "refusing to render into `{path}`: it {reason}; pass `--out` a dedicated directory for the GitOps tree \
         (e.g. `gitops`)"
    )]
    UnsafeOut { path: PathBuf, reason: &'static str },
    #[error(
        "`{path}` is locked by another goldenpath run on this tree; wait for it to finish, then run again"
    )]
    Locked { path: PathBuf },
    #[error("generated path `{path}` {reason}; this is a bug in goldenpath: please report it")]
    BadPlanPath { path: String, reason: &'static str },
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

/// Refuses an output directory that is the filesystem root (however it is spelled, links resolved) or whose
/// last component is `..`: render creates `apps/`, `argocd/` and `.goldenpath/` there and prunes below it.
pub fn check_out(out: &Path) -> Result<(), TreeError> {
    let refuse = |reason| TreeError::UnsafeOut {
        path: out.to_path_buf(),
        reason,
    };
    if out.as_os_str().is_empty() {
        return Err(refuse("is empty"));
    }
    if matches!(out.components().next_back(), Some(Component::ParentDir)) {
        return Err(refuse("ends in `..`"));
    }
    let abs = std::path::absolute(out).map_err(|e| TreeError::Read {
        path: out.to_path_buf(),
        source: e,
    })?;
    let resolved = fs_err::canonicalize(&abs).unwrap_or(abs);
    if resolved.parent().is_none() {
        return Err(refuse("is the filesystem root"));
    }
    Ok(())
}

fn meta_parts() -> [String; 1] {
    [META_DIR.to_owned()]
}

fn load_manifest(meta: &safe::Dir) -> Result<(Manifest, Option<Vec<u8>>), TreeError> {
    let path = meta.path_of(RECORD_NAME);
    let Some(bytes) = meta.read(RECORD_NAME)? else {
        return Ok((Manifest::default(), None));
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| TreeError::BadManifest {
        path: path.clone(),
        message: excerpt(&e.to_string()),
    })?;
    for key in m.files.keys() {
        let reason = match RelPath::parse(key) {
            Ok(p) if p.first() == META_DIR => "is inside `.goldenpath`",
            Ok(_) => continue,
            Err(reason) => reason,
        };
        return Err(TreeError::BadRecordEntry {
            record: path,
            entry: excerpt(key),
            reason,
        });
    }
    Ok((m, Some(bytes)))
}

/// Finishes or undoes a render that was interrupted in `out` (see `journal`); a no-op when there is none.
pub fn recover(out: &Path) -> Result<(), TreeError> {
    let Some(root) = Root::open(out, false)? else {
        return Ok(());
    };
    let Some(meta) = root.dir(&meta_parts(), false)? else {
        return Ok(());
    };
    meta.lock()?;
    journal::recover(&root, &meta)
}

/// Writes `plan` under `out`; prunes files generated earlier from contracts that are gone, except those whose
/// source is in `keep_sources` (contracts that are invalid right now: their running apps must not disappear).
/// All or nothing: an interrupted run leaves the old tree or the new one, finished by the next run.
pub fn apply(
    out: &Path,
    plan: &[Planned],
    keep_sources: &BTreeSet<String>,
) -> Result<Outcome, TreeError> {
    apply_with(out, plan, &|source| keep_sources.contains(source))
}

/// Writes `plan` under `out` and leaves every other file as it is: rewrites some contracts' files (a fleet pinning
/// the digests it patched) without pruning anything.
pub fn apply_partial(out: &Path, plan: &[Planned]) -> Result<Outcome, TreeError> {
    apply_with(out, plan, &|_| true)
}

fn apply_with(
    out: &Path,
    plan: &[Planned],
    keep: &dyn Fn(&str) -> bool,
) -> Result<Outcome, TreeError> {
    check_out(out)?;
    let root = Root::open(out, true)?.ok_or_else(|| TreeError::Read {
        path: out.to_path_buf(),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    let meta = root
        .dir(&meta_parts(), true)?
        .ok_or_else(|| TreeError::Read {
            path: root.join(&meta_parts()),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
    meta.lock()?;
    journal::recover(&root, &meta)?;
    let (old, old_bytes) = load_manifest(&meta)?;
    let (mut new, targets) = check_plan(out, plan)?;
    let changed = probe(&root, &old, &targets)?;
    let mut outcome = Outcome::default();
    let mut deletes = Vec::new();
    for (key, source) in &old.files {
        if new.files.contains_key(key) {
            continue;
        }
        if keep(source) {
            new.files.insert(key.clone(), source.clone());
            outcome.kept.push(out.join(key));
            continue;
        }
        let rp = RelPath::parse(key).map_err(|reason| TreeError::BadRecordEntry {
            record: meta.path_of(RECORD_NAME),
            entry: excerpt(key),
            reason,
        })?;
        let Some(dir) = root.dir(rp.dir(), false)? else {
            continue;
        };
        // A link where our file was is removed itself (never its target); a directory or a special file is not
        // ours and stays.
        if dir.kind(rp.name()).prunable() {
            outcome.pruned.push(out.join(key));
            deletes.push(key.clone());
        }
    }
    let mut text = serde_json::to_string_pretty(&new).unwrap_or_default();
    text.push('\n');
    let record_changed = old_bytes.as_deref() != Some(text.as_bytes());
    let mut writes = Vec::new();
    for ((rp, key, bytes), changed) in targets.iter().zip(changed) {
        if changed {
            outcome.written.push(out.join(key));
            writes.push((rp, bytes, temp_name()));
        } else {
            outcome.unchanged.push(out.join(key));
        }
    }
    if writes.is_empty() && deletes.is_empty() && !record_changed {
        return Ok(outcome);
    }
    let created_dirs = missing_dirs(&root, &writes)?;
    let mut j = Journal {
        version: 1,
        committed: false,
        writes: writes
            .iter()
            .map(|(rp, _, temp)| Staged {
                path: rp.to_string(),
                temp: temp.clone(),
            })
            .collect(),
        deletes,
        record_temp: record_changed.then(temp_name),
        created_dirs,
    };
    journal::save(&meta, &j)?;
    let staged = stage(&root, &meta, &j, &writes, text.as_bytes());
    if let Err(e) = staged {
        let _ = journal::roll_back(&root, &meta, &j);
        return Err(e);
    }
    j.committed = true;
    journal::save(&meta, &j)?;
    journal::roll_forward(&root, &meta, &j)?;
    Ok(outcome)
}

/// The new record's files and each planned file's checked path, key and bytes.
#[allow(clippy::type_complexity)]
fn check_plan<'a>(
    out: &Path,
    plan: &'a [Planned],
) -> Result<(Manifest, Vec<(RelPath, String, &'a [u8])>), TreeError> {
    let mut new = Manifest {
        version: 1,
        files: BTreeMap::new(),
    };
    let mut targets = Vec::with_capacity(plan.len());
    for p in plan {
        let bad = |reason| TreeError::BadPlanPath {
            path: excerpt(&p.file.path.to_string_lossy()),
            reason,
        };
        let rp = RelPath::from_path(&p.file.path).map_err(bad)?;
        if rp.first() == META_DIR {
            return Err(bad("is inside `.goldenpath`"));
        }
        let key = rp.to_string();
        if let Some(first) = new.files.insert(key.clone(), p.source.clone()) {
            return Err(TreeError::Collision {
                path: out.join(&key),
                first,
                second: p.source.clone(),
            });
        }
        targets.push((rp, key, p.file.contents.as_bytes()));
    }
    Ok((new, targets))
}

/// Creates the journal's directories and temporary files (the new record's too), then syncs them all at once.
fn stage(
    root: &Root,
    meta: &safe::Dir,
    j: &Journal,
    writes: &[(&RelPath, &&[u8], String)],
    record: &[u8],
) -> Result<(), TreeError> {
    for d in &j.created_dirs {
        let parts: Vec<String> = d.split('/').map(str::to_owned).collect();
        root.dir(&parts, true)?;
    }
    writes.par_iter().try_for_each(|(rp, bytes, temp)| {
        let dir = root.dir(rp.dir(), true)?.ok_or_else(|| TreeError::Write {
            path: root.join(rp.dir()),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        dir.write_new(temp, bytes)
    })?;
    if let Some(t) = &j.record_temp {
        meta.write_new(t, record)?;
    }
    // Everything staged is on disk before the journal can say *committed*.
    meta.sync_filesystem()
}

/// Looks at every target before anything is written (in parallel, errors in plan order): whether its bytes change.
fn probe(
    root: &Root,
    old: &Manifest,
    targets: &[(RelPath, String, &[u8])],
) -> Result<Vec<bool>, TreeError> {
    targets
        .par_iter()
        .map(|(rp, key, bytes)| {
            let Some(dir) = root.dir(rp.dir(), false)? else {
                return Ok(true);
            };
            match dir.kind(rp.name()) {
                Kind::Missing => Ok(true),
                Kind::File if !old.files.contains_key(key) => Err(TreeError::NotOurs {
                    path: dir.path_of(rp.name()),
                }),
                Kind::File => Ok(dir.read(rp.name())?.as_deref() != Some(*bytes)),
                Kind::Dir => Err(TreeError::NotAFile {
                    path: dir.path_of(rp.name()),
                    kind: "a directory",
                }),
                Kind::Other(kind) => Err(TreeError::NotAFile {
                    path: dir.path_of(rp.name()),
                    kind,
                }),
            }
        })
        .collect()
}

/// Directories the writes need that do not exist yet, outermost first.
fn missing_dirs(
    root: &Root,
    writes: &[(&RelPath, &&[u8], String)],
) -> Result<Vec<String>, TreeError> {
    let mut created = Vec::new();
    let mut seen = BTreeSet::new();
    for (rp, _, _) in writes {
        for depth in 1..=rp.dir().len() {
            let parts = &rp.dir()[..depth];
            if seen.insert(parts.to_vec()) && root.dir(parts, false)?.is_none() {
                created.push(parts.join("/"));
            }
        }
    }
    Ok(created)
}

/// The digest Argo CD Image Updater pinned in an app's kustomization, to carry over on re-render. Read without
/// following links; anything unreadable counts as no pin.
#[must_use]
pub fn pinned_digest(out: &Path, app_dir: &Path) -> Option<String> {
    let file = RelPath::from_path(&app_dir.join("kustomization.yaml")).ok()?;
    let root = Root::open(out, false).ok()??;
    let bytes = root
        .dir(file.dir(), false)
        .ok()??
        .read(file.name())
        .ok()??;
    let text = String::from_utf8(bytes).ok()?;
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
