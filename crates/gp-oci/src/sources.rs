//! Where blobs are known to live: for each digest, the `registry repository` pairs a push or pull has seen it in.
//! A push to another repository of the same registry then asks for a cross-repository mount — the registry links
//! the blob it already has — instead of uploading the bytes again (the first publish of a new app on a run image
//! another app already uses uploads only the app's own layers). Hints only: a failed mount falls back to an upload,
//! and anything unreadable here is ignored.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// At most this many places are kept per blob (the newest).
const KEEP: usize = 8;
/// [`KEEP`] lines of a host and a repository name fit well within this.
const MAX_FILE_BYTES: u64 = 16 * 1024;

/// A registry or repository name as recorded: one word without control characters.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 512 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

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

    /// The places recorded for `digest`; a file that is not a regular one (a link, a FIFO) or is larger than any
    /// this writes is ignored unread.
    fn read(&self, digest: &Digest) -> Vec<(String, String)> {
        let path = self.file(digest);
        let regular = fs_err::symlink_metadata(&path)
            .is_ok_and(|m| m.file_type().is_file() && m.len() <= MAX_FILE_BYTES);
        if !regular {
            return Vec::new();
        }
        let mut text = String::new();
        let read = fs_err::File::open(&path)
            .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text));
        if read.is_err() {
            return Vec::new();
        }
        text.lines()
            .filter_map(|l| {
                let (reg, repo) = l.split_once(' ')?;
                (plain(reg) && plain(repo)).then(|| (reg.to_owned(), repo.to_owned()))
            })
            .collect()
    }

    /// Notes that `registry` has `digest` in `repository` (newest first). The file is replaced through a temporary
    /// file created exclusively, with a random name, in the same directory.
    pub fn record(&self, digest: &Digest, registry: &str, repository: &str) {
        if !(plain(registry) && plain(repository)) {
            return;
        }
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
        if fs_err::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::Builder::new()
            .prefix(".sources-")
            .tempfile_in(&self.dir)
        else {
            return;
        };
        if tmp.write_all(text.as_bytes()).is_ok() {
            // A failed rename drops (and so removes) the temporary file.
            let _ = tmp.persist(self.file(digest));
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

    #[test]
    fn planted_links_and_odd_names_are_neither_followed_nor_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlobSources::new(&tmp.path().join("s"));
        let d = Digest::of(b"layer");
        let outside = tmp.path().join("outside");
        fs_err::write(&outside, "reg:5000 planted").unwrap();
        fs_err::create_dir_all(tmp.path().join("s")).unwrap();
        fs_err::os::unix::fs::symlink(&outside, tmp.path().join("s").join(d.hex())).unwrap();
        assert!(
            s.repositories(&d, "reg:5000", "app").is_empty(),
            "a link was read"
        );
        s.record(&d, "reg:5000", "run");
        assert_eq!(
            fs_err::read_to_string(&outside).unwrap(),
            "reg:5000 planted"
        );
        assert_eq!(s.repositories(&d, "reg:5000", "app"), ["run"]);
        s.record(&d, "reg:5000", "evil\nreg:5000 injected");
        assert_eq!(s.repositories(&d, "reg:5000", "app"), ["run"]);
        let names: Vec<_> = fs_err::read_dir(tmp.path().join("s"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [std::ffi::OsString::from(d.hex())],
            "temporary files left"
        );
    }
}
