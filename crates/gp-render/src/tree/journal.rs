//! The journal that makes a whole render atomic. A render first records its intent (`staged`: the temporary
//! names it is about to create and the directories it will make), writes every changed file and the new record
//! under those names, then marks the journal `committed`, renames everything into place, prunes, and removes the
//! journal. A later run that finds a journal finishes a committed one (roll forward) or undoes a staged one (roll
//! back), so after any interruption the tree and the record are the old ones or the new ones.

use serde::{Deserialize, Serialize};

use super::safe::{Dir, Kind, RelPath, Root, excerpt, is_temp_name};
use super::{META_DIR, RECORD_NAME, TreeError};

/// The journal's name inside `.goldenpath/`.
pub const JOURNAL_NAME: &str = "journal.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub version: u32,
    /// Set once every temporary file exists: from then on the render rolls forward.
    pub committed: bool,
    pub writes: Vec<Staged>,
    /// Generated files to prune.
    pub deletes: Vec<String>,
    /// The new record's temporary name in `.goldenpath/`, when the record changes.
    pub record_temp: Option<String>,
    /// Directories this render creates, outermost first (removed again, when empty, on roll back).
    pub created_dirs: Vec<String>,
}

/// A generated file and the temporary name it is staged under, in the same directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staged {
    pub path: String,
    pub temp: String,
}

/// Writes the journal atomically and syncs `.goldenpath/`.
pub fn save(meta: &Dir, journal: &Journal) -> Result<(), TreeError> {
    let mut text = serde_json::to_string_pretty(journal).map_err(|e| TreeError::Write {
        path: meta.path_of(JOURNAL_NAME),
        source: e.into(),
    })?;
    text.push('\n');
    meta.replace(JOURNAL_NAME, text.as_bytes())?;
    meta.sync()
}

fn parse(meta: &Dir, bytes: &[u8]) -> Result<Journal, TreeError> {
    let bad = |message: String| TreeError::BadJournal {
        path: meta.path_of(JOURNAL_NAME),
        message,
    };
    let j: Journal = serde_json::from_slice(bytes).map_err(|e| bad(excerpt(&e.to_string())))?;
    if j.version != 1 {
        return Err(bad(format!("version {} is not 1", j.version)));
    }
    let check = |p: &str| match RelPath::parse(p) {
        Ok(r) if r.first() == META_DIR => {
            Err(bad(format!("`{}` is inside `{META_DIR}`", excerpt(p))))
        }
        Ok(_) => Ok(()),
        Err(reason) => Err(bad(format!("`{}` {reason}", excerpt(p)))),
    };
    for w in &j.writes {
        check(&w.path)?;
        if !is_temp_name(&w.temp) {
            return Err(bad(format!(
                "`{}` is not a temporary name of goldenpath",
                excerpt(&w.temp)
            )));
        }
    }
    for p in j.deletes.iter().chain(&j.created_dirs) {
        check(p)?;
    }
    if let Some(t) = &j.record_temp
        && !is_temp_name(t)
    {
        return Err(bad(format!(
            "`{}` is not a temporary name of goldenpath",
            excerpt(t)
        )));
    }
    Ok(j)
}

/// A journal path (checked by `parse`, or built from checked paths).
fn rel(meta: &Dir, p: &str) -> Result<RelPath, TreeError> {
    RelPath::parse(p).map_err(|reason| TreeError::BadJournal {
        path: meta.path_of(JOURNAL_NAME),
        message: format!("`{}` {reason}", excerpt(p)),
    })
}

/// Finishes or undoes an interrupted render, then removes stray temporary files of `.goldenpath/` itself.
pub fn recover(root: &Root, meta: &Dir) -> Result<(), TreeError> {
    if let Some(bytes) = meta.read(JOURNAL_NAME)? {
        let j = parse(meta, &bytes)?;
        if j.committed {
            roll_forward(root, meta, &j)?;
        } else {
            roll_back(root, meta, &j)?;
        }
    }
    for stray in meta.temp_files() {
        meta.unlink(&stray)?;
    }
    Ok(())
}

/// Renames the staged files into place, prunes, installs the record, removes the journal. Safe to repeat.
pub fn roll_forward(root: &Root, meta: &Dir, j: &Journal) -> Result<(), TreeError> {
    let mut touched = std::collections::BTreeSet::new();
    for w in &j.writes {
        let p = rel(meta, &w.path)?;
        if let Some(dir) = root.dir(p.dir(), false)? {
            dir.rename(&w.temp, p.name())?;
            touched.insert(p.dir().to_vec());
        }
    }
    for d in &j.deletes {
        let p = rel(meta, d)?;
        let Some(dir) = root.dir(p.dir(), false)? else {
            continue;
        };
        // A file or a link (the link itself goes, never what it points to); anything else was not ours.
        if dir.kind(p.name()).prunable() {
            dir.unlink(p.name())?;
        }
        remove_empty_parents(root, &p)?;
    }
    // The renames and removals in every touched directory, flushed in one call.
    if !touched.is_empty() {
        meta.sync_filesystem()?;
    }
    if let Some(t) = &j.record_temp {
        meta.rename(t, RECORD_NAME)?;
    }
    meta.sync()?;
    meta.unlink(JOURNAL_NAME)?;
    meta.sync()
}

/// Removes the staged files and the directories this render created (when empty), then the journal.
pub fn roll_back(root: &Root, meta: &Dir, j: &Journal) -> Result<(), TreeError> {
    for w in &j.writes {
        let p = rel(meta, &w.path)?;
        if let Some(dir) = root.dir(p.dir(), false)?
            && dir.kind(&w.temp) == Kind::File
        {
            dir.unlink(&w.temp)?;
        }
    }
    if let Some(t) = &j.record_temp
        && meta.kind(t) == Kind::File
    {
        meta.unlink(t)?;
    }
    for d in j.created_dirs.iter().rev() {
        let p = rel(meta, d)?;
        if let Some(parent) = root.dir(p.dir(), false)? {
            parent.rmdir_if_empty(p.name());
        }
    }
    meta.unlink(JOURNAL_NAME)?;
    meta.sync()
}

/// Removes the directories above a pruned file that it left empty, never the output root itself.
fn remove_empty_parents(root: &Root, file: &RelPath) -> Result<(), TreeError> {
    let dirs = file.dir();
    for depth in (1..=dirs.len()).rev() {
        let Some(parent) = root.dir(&dirs[..depth - 1], false)? else {
            return Ok(());
        };
        if !parent.rmdir_if_empty(&dirs[depth - 1]) {
            break;
        }
    }
    Ok(())
}
