//! A campaign's state on disk, so that a crash (even `kill -9`) loses nothing: one directory per campaign, named
//! by what it patches (the images, the run image's digest and the builder's), holding an append-only journal of
//! finished images, each line written whole and flushed to disk before the next image is counted done. A line cut
//! short by a crash is ignored; rerunning the same command reopens the same campaign and skips what the journal
//! has.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::inventory::Target;
use crate::report::{Outcome, Status};

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error(
        "another `goldenpath fleet patch` is running this campaign (`{}` is locked); wait for it to finish",
        dir.display()
    )]
    Busy { dir: PathBuf },
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CampaignError {
    let path = path.to_path_buf();
    move |source| CampaignError::Io {
        action,
        path,
        source,
    }
}

/// The campaign's name: a digest of the sorted images, the run image's digest and the builder's.
#[must_use]
pub fn campaign_id(targets: &[Target], run_digest: &str, builder_digest: Option<&str>) -> String {
    let mut images: Vec<&str> = targets.iter().map(|t| t.image.as_str()).collect();
    images.sort_unstable();
    let mut text = format!(
        "run {run_digest}\nbuilder {}\n",
        builder_digest.unwrap_or("-")
    );
    for i in images {
        text.push_str(i);
        text.push('\n');
    }
    let digest = gp_oci::digest::Digest::of(text.as_bytes()).to_string();
    digest
        .strip_prefix("sha256:")
        .unwrap_or(&digest)
        .chars()
        .take(16)
        .collect()
}

/// An open campaign: its directory and what its journal says is finished.
#[derive(Debug)]
pub struct Campaign {
    dir: PathBuf,
    id: String,
    journal: Mutex<fs_err::File>,
    finished: BTreeMap<String, Outcome>,
    /// Held for the campaign's lifetime: two runs of one campaign would patch the same images twice.
    _lock: std::fs::File,
    /// Images an earlier run started patching (from this digest) without finishing.
    started: BTreeMap<String, Outcome>,
    resumed: bool,
}

impl Campaign {
    /// Opens (or starts) campaign `id` under `root`.
    pub fn open(root: &Path, id: &str) -> Result<Self, CampaignError> {
        let dir = root.join(id);
        fs_err::create_dir_all(&dir).map_err(|e| CampaignError::Io {
            action: "create",
            path: dir.clone(),
            source: e,
        })?;
        let lock_path = dir.join("lock");
        let lock = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io("open", &lock_path)(e))?
            .into_file();
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(CampaignError::Busy { dir }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
        }
        let path = dir.join("journal.jsonl");
        let text = match fs_err::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let resumed = !text.is_empty();
        let mut finished = BTreeMap::new();
        let mut started = BTreeMap::new();
        let mut valid_len = 0;
        for line in text.split_inclusive('\n') {
            // Only whole lines count: the last one may have been cut by a crash.
            if !line.ends_with('\n') {
                break;
            }
            if let Ok(o) = serde_json::from_str::<Outcome>(line.trim_end()) {
                if o.status.is_final() {
                    started.remove(&o.image);
                    finished.insert(o.image.clone(), o);
                } else if o.status == Status::NotRun {
                    started.insert(o.image.clone(), o);
                } else {
                    finished.remove(&o.image);
                }
            }
            valid_len += line.len();
        }
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("open", &path)(e))?;
        // A torn last line is cut off, so the next entry starts on a line of its own.
        if valid_len < text.len() {
            file.set_len(valid_len as u64)
                .map_err(|e| io("truncate", &path)(e))?;
        }
        Ok(Self {
            dir,
            id: id.to_owned(),
            journal: Mutex::new(file),
            finished,
            _lock: lock,
            started,
            resumed,
        })
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The journal had entries: this run continues an earlier one.
    #[must_use]
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// What an earlier run finished for `image`.
    #[must_use]
    pub fn finished(&self, image: &str) -> Option<&Outcome> {
        self.finished.get(image)
    }

    /// What an earlier run started patching for `image` and did not finish (its digest before).
    #[must_use]
    pub fn started(&self, image: &str) -> Option<&Outcome> {
        self.started.get(image)
    }

    /// Appends `outcome` to the journal and flushes it to disk.
    pub fn record(&self, outcome: &Outcome) -> Result<(), CampaignError> {
        let path = self.dir.join("journal.jsonl");
        let mut line = serde_json::to_string(outcome).unwrap_or_default();
        line.push('\n');
        let mut file = self
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(io("write", &path))
    }

    /// Writes `name` in the campaign directory atomically (a temporary file renamed over it).
    pub fn write_file(&self, name: &str, contents: &[u8]) -> Result<PathBuf, CampaignError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs_err::write(&tmp, contents).map_err(|e| io("write", &tmp)(e))?;
        fs_err::rename(&tmp, &path).map_err(|e| io("rename", &path)(e))?;
        Ok(path)
    }
}

impl Status {
    /// Settled: a rerun does not touch the image again (failures are retried).
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, Self::Patched | Self::UpToDate | Self::Skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn outcome(image: &str, status: Status) -> Outcome {
        Outcome {
            image: image.into(),
            action: Action::Rebase,
            status,
            ..Outcome::default()
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_and_failures_are_retried() {
        let root = tempfile::tempdir().unwrap();
        let c = Campaign::open(root.path(), "c1").unwrap();
        assert!(!c.resumed());
        c.record(&outcome("r/a:dev", Status::Patched)).unwrap();
        c.record(&outcome("r/b:dev", Status::Failed)).unwrap();
        drop(c);
        let journal = root.path().join("c1/journal.jsonl");
        let mut f = fs_err::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(br#"{"image":"r/c:dev","stat"#).unwrap();
        drop(f);
        let c = Campaign::open(root.path(), "c1").unwrap();
        assert!(c.resumed());
        assert_eq!(
            c.finished("r/a:dev").map(|o| o.status),
            Some(Status::Patched)
        );
        assert!(c.finished("r/b:dev").is_none(), "a failure is tried again");
        assert!(c.finished("r/c:dev").is_none());
        assert!(
            matches!(
                Campaign::open(root.path(), "c1"),
                Err(CampaignError::Busy { .. })
            ),
            "one run at a time"
        );
        c.record(&outcome("r/c:dev", Status::Patched)).unwrap();
        let text = fs_err::read_to_string(&journal).unwrap();
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<Outcome>(l).is_ok()),
            "{text}"
        );
    }

    #[test]
    fn the_id_depends_on_images_and_digests_not_their_order() {
        let t = |i: &str| Target {
            image: i.into(),
            environment: None,
            application: None,
            git: None,
        };
        let a = campaign_id(&[t("r/a:1"), t("r/b:1")], "sha256:1", None);
        assert_eq!(a, campaign_id(&[t("r/b:1"), t("r/a:1")], "sha256:1", None));
        assert_ne!(a, campaign_id(&[t("r/a:1")], "sha256:1", None));
        assert_ne!(a, campaign_id(&[t("r/a:1"), t("r/b:1")], "sha256:2", None));
        assert_ne!(
            a,
            campaign_id(&[t("r/a:1"), t("r/b:1")], "sha256:1", Some("sha256:3"))
        );
    }
}
