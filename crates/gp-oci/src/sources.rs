//! Where blobs are known to live: for each digest, the `registry repository` pairs a push or pull has seen it in.
//! A push to another repository of the same registry then asks for a cross-repository mount — the registry links
//! the blob it already has — instead of uploading the bytes again (the first publish of a new app on a run image
//! another app already uses uploads only the app's own layers). Hints only: a failed mount falls back to an upload,
//! and anything unreadable here is ignored.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// At most this many places are kept per blob (the newest).
const KEEP: usize = 8;

#[derive(Debug, Clone)]
pub struct BlobSources {
    dir: PathBuf,
}

impl BlobSources {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    fn read(&self, digest: &Digest) -> Vec<(String, String)> {
        std::fs::read_to_string(self.file(digest))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (reg, repo) = l.split_once(' ')?;
                Some((reg.to_owned(), repo.to_owned()))
            })
            .collect()
    }

    /// Notes that `registry` has `digest` in `repository` (newest first).
    pub fn record(&self, digest: &Digest, registry: &str, repository: &str) {
        let mut places = self.read(digest);
        if places
            .first()
            .is_some_and(|(g, p)| g == registry && p == repository)
        {
            return;
        }
        places.retain(|(g, p)| !(g == registry && p == repository));
        places.insert(0, (registry.to_owned(), repository.to_owned()));
        places.truncate(KEEP);
        let text = places
            .iter()
            .map(|(g, p)| format!("{g} {p}"))
            .collect::<Vec<_>>()
            .join("\n");
        let tmp = self.dir.join(format!(
            ".{}.{}",
            digest.hex(),
            crate::layout::unique_suffix()
        ));
        let ok = std::fs::create_dir_all(&self.dir).is_ok() && std::fs::write(&tmp, text).is_ok();
        if !ok || std::fs::rename(&tmp, self.file(digest)).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Repositories of `registry` other than `except` known to hold `digest`, newest first.
    #[must_use]
    pub fn repositories(&self, digest: &Digest, registry: &str, except: &str) -> Vec<String> {
        self.read(digest)
            .into_iter()
            .filter(|(g, p)| g == registry && p != except)
            .map(|(_, p)| p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_newest_first_per_registry_without_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobSources::new(&tmp.path().join("s"));
        let d = Digest::of(b"layer");
        assert!(s.repositories(&d, "reg:5000", "app").is_empty());
        s.record(&d, "reg:5000", "run");
        s.record(&d, "other:5000", "x");
        s.record(&d, "reg:5000", "app-a");
        s.record(&d, "reg:5000", "run");
        assert_eq!(s.repositories(&d, "reg:5000", "app"), ["run", "app-a"]);
        assert_eq!(s.repositories(&d, "reg:5000", "run"), ["app-a"]);
        for i in 0..20 {
            s.record(&d, "reg:5000", &format!("r{i}"));
        }
        assert_eq!(s.repositories(&d, "reg:5000", "none").len(), KEEP);
    }
}
