//! Layer memo: recognises a layer whose files have not changed since it was last written, so that a rebuild does
//! not read, tar and compress them again. The key is a fingerprint of the entries and the options: paths, kinds,
//! modes, link targets, inline bytes, and for files on disk their device, inode, size, modification and change
//! times (in nanoseconds). A hit is used only when the layout still holds
//! the blob; anything unreadable is a miss, never an error.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::image::{ImageError, add_layer};
use crate::layer::{
    Compression, Entry, Kind, LayerInfo, LayerOptions, MEDIA_TYPE_GZIP, MEDIA_TYPE_TAR, Source,
};
use crate::layout::Layout;

/// Trees up to this size are also remembered by content (see [`Memo::content_fingerprint`]).
pub const CONTENT_LIMIT: u64 = 64 << 20;

/// Where fingerprints map to written layers (one small file per layer).
#[derive(Debug, Clone)]
pub struct Memo {
    dir: PathBuf,
    /// Another layout a remembered layer may be in (the local store, where layers are written early): a hit there
    /// is linked (or copied, verified) into the layout asked for.
    fallback: Option<Layout>,
}

impl Memo {
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            fallback: None,
        }
    }

    /// Also takes remembered layers from `store` (see the field).
    #[must_use]
    pub fn with_fallback(mut self, store: Layout) -> Self {
        self.fallback = Some(store);
        self
    }

    /// Brings `digest` of `size` bytes into `layout` from the fallback store; whether it is there now.
    fn adopt(&self, layout: &Layout, digest: &Digest, size: u64) -> bool {
        let Some(store) = &self.fallback else {
            return false;
        };
        let from = store.blob_path(digest);
        if !fs_err::metadata(&from).is_ok_and(|m| m.len() == size) {
            return false;
        }
        let to = layout.blob_path(digest);
        if fs_err::hard_link(&from, &to).is_ok() {
            return true;
        }
        fs_err::File::open(&from)
            .ok()
            .and_then(|f| layout.write_blob_from(f, Some(digest)).ok())
            .is_some()
    }

    /// A fingerprint of `entries` by the files' contents rather than their identity: for small trees that are
    /// recreated each build with the same bytes (the app directory, copied from the source), where reading and
    /// hashing is far cheaper than compressing. `None` above [`CONTENT_LIMIT`] bytes or when a file is unreadable.
    #[must_use]
    pub fn content_fingerprint(entries: &[Entry], opts: &LayerOptions) -> Option<String> {
        let mut total = 0u64;
        for e in entries {
            if let Kind::File(Source::Path(p)) = &e.kind {
                total += fs_err::symlink_metadata(p).ok()?.len();
                if total > CONTENT_LIMIT {
                    return None;
                }
            }
        }
        let hash = Self::hash_entries("content-v1", entries, opts, |h, p| {
            let mut f = fs_err::File::open(p).ok()?;
            let mut fh = Sha256::new();
            std::io::copy(&mut f, &mut fh).ok()?;
            h.update(b"f");
            h.update(fh.finalize());
            Some(())
        })?;
        Some(format!("c{hash}"))
    }

    /// Hashes the entries' paths, kinds, modes, link targets and inline bytes under `tag` and the options; files on
    /// disk go through `file`. `None` when `file` cannot inspect one.
    fn hash_entries(
        tag: &str,
        entries: &[Entry],
        opts: &LayerOptions,
        file: impl Fn(&mut Sha256, &Path) -> Option<()>,
    ) -> Option<String> {
        let mut h = Sha256::new();
        let _ = write!(h, "{tag} {}\0", Self::options_key(opts));
        for e in entries {
            let _ = write!(h, "{}\0{}\0", e.path, u8::from(e.executable));
            match &e.kind {
                Kind::Dir => h.update(b"d"),
                Kind::Symlink(t) => {
                    let _ = write!(h, "l{t}\0");
                }
                Kind::Hardlink(t) => {
                    let _ = write!(h, "h{t}\0");
                }
                Kind::File(Source::Bytes(b)) => {
                    h.update(b"b");
                    h.update(Sha256::digest(b));
                }
                Kind::File(Source::Path(p)) => file(&mut h, p)?,
            }
        }
        Some(format!("{:x}", h.finalize()))
    }

    fn options_key(opts: &LayerOptions) -> String {
        let level = match opts.compression {
            Compression::None => -1,
            Compression::Gzip { level } => i64::from(level),
        };
        format!("{} {} {level}", opts.uid, opts.gid)
    }

    /// The fingerprint of `entries` written with `opts`; `None` when a file cannot be inspected.
    #[must_use]
    pub fn fingerprint(entries: &[Entry], opts: &LayerOptions) -> Option<String> {
        Self::hash_entries("v2", entries, opts, |h, p| {
            let m = fs_err::symlink_metadata(p).ok()?;
            // ctime too: only the kernel sets it, so a same-size rewrite in place that puts the old modification
            // time back (`cp -p`, extractors with fixed times) still changes the fingerprint.
            let _ = write!(
                h,
                "f{} {} {} {} {} {} {}\0",
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec()
            );
            Some(())
        })
    }

    fn path(&self, fingerprint: &str) -> PathBuf {
        self.dir.join(fingerprint)
    }

    fn lookup(&self, fingerprint: &str, layout: &Layout) -> Option<LayerInfo> {
        let text = fs_err::read_to_string(self.path(fingerprint)).ok()?;
        let mut parts = text.split_whitespace();
        let digest: Digest = parts.next()?.parse().ok()?;
        let diff_id: Digest = parts.next()?.parse().ok()?;
        let size: u64 = parts.next()?.parse().ok()?;
        let media_type = match parts.next()? {
            MEDIA_TYPE_GZIP => MEDIA_TYPE_GZIP,
            MEDIA_TYPE_TAR => MEDIA_TYPE_TAR,
            _ => return None,
        };
        let present = fs_err::metadata(layout.blob_path(&digest)).is_ok_and(|m| m.len() == size)
            || self.adopt(layout, &digest, size);
        present.then_some(LayerInfo {
            digest,
            diff_id,
            size,
            media_type,
        })
    }

    fn record(&self, fingerprint: &str, info: &LayerInfo) {
        let text = format!(
            "{} {} {} {}\n",
            info.digest, info.diff_id, info.size, info.media_type
        );
        // A random, exclusive temp file renamed into place: a link planted in the memo directory is never followed.
        // Best effort: a memo that cannot be written is only a miss next time.
        if fs_err::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::Builder::new()
            .prefix(".memo-")
            .tempfile_in(&self.dir)
            && tmp.write_all(text.as_bytes()).is_ok()
        {
            let _ = tmp.persist(self.path(fingerprint));
        }
    }

    /// Records that `entries` written with `opts` give `info` (a layer already in the layout): for trees just
    /// unpacked from that layer, so that exporting them unchanged reuses it without reading the files.
    pub fn remember(&self, entries: &[Entry], opts: &LayerOptions, info: &LayerInfo) {
        if let Some(f) = Self::fingerprint(entries, opts) {
            self.record(&f, info);
        }
    }

    /// [`add_layer`], unless the same entries were written into `layout` before: then their recorded identity.
    /// Returns the layer and whether it was reused.
    pub fn add_layer(
        &self,
        layout: &Layout,
        entries: &[Entry],
        opts: &LayerOptions,
    ) -> Result<(LayerInfo, bool), ImageError> {
        let fingerprint = Self::fingerprint(entries, opts);
        if let Some(f) = &fingerprint
            && let Some(info) = self.lookup(f, layout)
        {
            return Ok((info, true));
        }
        let stable = |info: &LayerInfo, also: &[&Option<String>]| {
            // Recorded only when the files were the same before and after they were read: a tree still being
            // written (an export started while a buildpack runs) is never remembered with contents it did not have.
            if fingerprint.is_some() && Self::fingerprint(entries, opts) == fingerprint {
                for f in also.iter().copied().flatten() {
                    self.record(f, info);
                }
            }
        };
        let content = Self::content_fingerprint(entries, opts);
        if let Some(c) = &content
            && let Some(info) = self.lookup(c, layout)
        {
            stable(&info, &[&fingerprint]);
            return Ok((info, true));
        }
        let info = add_layer(layout, entries, opts)?;
        stable(&info, &[&fingerprint, &content]);
        Ok((info, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<Entry> {
        crate::layer::entries_from_dir(dir, "layers/x").unwrap()
    }

    #[test]
    fn unchanged_files_hit_and_any_change_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs_err::create_dir_all(&src).unwrap();
        fs_err::write(src.join("a"), "one").unwrap();
        let layout = Layout::create(&tmp.path().join("oci")).unwrap();
        let memo = Memo::new(&tmp.path().join("memo"));
        let opts = LayerOptions::default();
        let (first, reused) = memo.add_layer(&layout, &entries(&src), &opts).unwrap();
        assert!(!reused);
        let (again, reused) = memo.add_layer(&layout, &entries(&src), &opts).unwrap();
        assert!(reused);
        assert_eq!(first, again);
        // Other owner: a different layer.
        let other = LayerOptions { uid: 1000, ..opts };
        assert!(!memo.add_layer(&layout, &entries(&src), &other).unwrap().1);
        // Changed content (a new file at the same path): a miss, and the new layer differs.
        fs_err::remove_file(src.join("a")).unwrap();
        fs_err::write(src.join("a"), "two").unwrap();
        let (changed, reused) = memo.add_layer(&layout, &entries(&src), &opts).unwrap();
        assert!(!reused);
        assert_ne!(changed.digest, first.digest);
        // The same bytes in new files (a fresh copy of the tree): a hit by content.
        let copy = tmp.path().join("copy");
        fs_err::create_dir_all(&copy).unwrap();
        fs_err::write(copy.join("a"), "two").unwrap();
        let (same, reused) = memo.add_layer(&layout, &entries(&copy), &opts).unwrap();
        assert!(reused);
        assert_eq!(same, changed);
        // ... and then by identity too (the copy's own fingerprint was recorded on that hit).
        assert!(
            memo.lookup(&Memo::fingerprint(&entries(&copy), &opts).unwrap(), &layout)
                .is_some()
        );
        fs_err::write(copy.join("a"), "six").unwrap();
        assert!(!memo.add_layer(&layout, &entries(&copy), &opts).unwrap().1);
        // A blob gone from the layout is never trusted.
        fs_err::remove_file(layout.blob_path(&changed.digest)).unwrap();
        assert!(!memo.add_layer(&layout, &entries(&src), &opts).unwrap().1);
    }
}
