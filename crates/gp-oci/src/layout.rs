//! OCI image layout store (`oci-layout`, `index.json`, `blobs/sha256/`): blobs written atomically (random
//! exclusive temp file, verify, rename) and verified on every read, several tags per layout
//! (`org.opencontainers.image.ref.name`) updated under a lock, and garbage collection of blobs no tag reaches.
//! Layouts may come from people we do not trust: see `safe` for how files are opened and written, and `walk`
//! for the limits on what is read.

mod desc;
mod safe;
mod walk;

use std::collections::HashSet;
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::digest::{Digest, HashingWriter};
use safe::{check_dir, ensure_dir, found, io_err, open_regular, write_new};

pub use desc::{Desc, annotation};
pub use safe::{escape_cut, excerpt, excerpt_str, list_excerpt, write_atomic};
pub use walk::{Kind, MAX_DEPTH, MAX_JSON_BLOB, copy_image, parse_children, parse_children_bytes};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub use crate::spec::{MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_INDEX, MEDIA_MANIFEST};

/// Largest `index.json` read (64 MiB: some 200,000 tags).
pub const MAX_INDEX_JSON: u64 = 64 << 20;

/// The lock file beside `index.json` that writers of the index hold (`flock`) while they rewrite it.
pub const LOCK_FILE: &str = "index.json.lock";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("`{path}`: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "`{0}` is not an OCI image layout (no `oci-layout` file); create one with `goldenpath image copy` into `oci:{0}`"
    )]
    NotALayout(PathBuf),
    #[error("`{path}` is not valid JSON: {message}")]
    BadJson { path: PathBuf, message: String },
    #[error("{what} {digest} is not valid JSON: {message}")]
    BadBlobJson {
        what: &'static str,
        digest: Digest,
        message: String,
    },
    #[error("blob {expected} in `{layout}` is corrupt: its content hashes to {actual}")]
    Corrupt {
        layout: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {digest} is missing from `{layout}`")]
    MissingBlob { layout: PathBuf, digest: Digest },
    #[error(
        "blob {digest} in `{layout}` is corrupt: it is {actual} bytes but its descriptor says `size` {declared}; copy the image into the layout again"
    )]
    SizeMismatch {
        layout: PathBuf,
        digest: Digest,
        actual: u64,
        declared: u64,
    },
    #[error("no tag `{tag}` in `{layout}`; tags there: {available}")]
    UnknownTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    #[error("`{layout}` holds {count} images; name one with `oci:{layout}:TAG`")]
    Ambiguous { layout: PathBuf, count: usize },
    #[error("{within}: `{field}` {problem}; expected {expected}")]
    BadDescriptor {
        within: String,
        field: String,
        problem: String,
        expected: &'static str,
    },
    #[error(
        "{within}: `{field}` names {digest} with media type `{media_type}`; expected {expected}"
    )]
    MediaType {
        within: String,
        field: String,
        digest: Digest,
        media_type: String,
        expected: &'static str,
    },
    #[error(
        "{digest} is declared as {declared} but its content is {found} ({evidence}); correct the `mediaType` of the descriptor that names it"
    )]
    KindMismatch {
        digest: Digest,
        declared: &'static str,
        found: &'static str,
        evidence: &'static str,
    },
    #[error(
        "{what} {digest} in `{layout}` is {size} bytes, over the limit of {limit} bytes; refused unread (real ones are a few KiB)"
    )]
    TooLarge {
        layout: PathBuf,
        what: &'static str,
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error(
        "images in `{layout}` nest deeper than {limit} levels: {chain}; an image is an index of manifests, a few levels at most"
    )]
    TooDeep {
        layout: PathBuf,
        limit: usize,
        chain: String,
    },
    #[error(
        "`{path}` is {kind}, not a regular file; refused unread (a layout holds only regular files): remove it"
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{path}` is {kind}, not a directory; refused (a layout's `blobs/sha256` must be real directories): remove it"
    )]
    NotADirectory { path: PathBuf, kind: &'static str },
}

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

const EMPTY_INDEX: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

impl Layout {
    /// Opens a layout, creating it (and `oci-layout`, `index.json`) when the directory is absent or empty. Safe
    /// against concurrent creators: existing files are never replaced; `blobs` and `blobs/sha256` must be real
    /// directories (a link there is refused, nothing is created through it).
    pub fn create(root: &Path) -> Result<Self, LayoutError> {
        fs_err::create_dir_all(root).map_err(io_err(root))?;
        ensure_dir(&root.join("blobs"))?;
        ensure_dir(&root.join("blobs/sha256"))?;
        write_new(
            &root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        write_new(&root.join("index.json"), EMPTY_INDEX)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn open(root: &Path) -> Result<Self, LayoutError> {
        let marker = root.join("oci-layout");
        match fs_err::symlink_metadata(&marker) {
            Ok(m) if m.is_file() => {}
            Ok(m) => {
                return Err(LayoutError::NotRegular {
                    path: marker,
                    kind: safe::kind_of(&m),
                });
            }
            Err(_) => return Err(LayoutError::NotALayout(root.to_path_buf())),
        }
        check_dir(&root.join("blobs"))?;
        check_dir(&root.join("blobs/sha256"))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    #[must_use]
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Whether blob `d` is here as a regular file (a link there does not count).
    #[must_use]
    pub fn has_blob(&self, d: &Digest) -> bool {
        fs_err::symlink_metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    /// Reads a blob whole and checks its digest. Only for blobs known to be small: manifests, indexes and configs
    /// go through [`Layout::read_json`] (which has a limit), layers through [`Layout::open_verified`].
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(d);
        let (mut f, _) = self.open_blob(d, None)?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(io_err(&path))?;
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                expected: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// A new temporary file in `blobs/sha256` with a random name, created exclusively (never an existing file or a
    /// planted link), removed when dropped; write a blob into it, then [`Layout::commit_blob`] it.
    pub fn temp_blob(&self) -> Result<tempfile::NamedTempFile, LayoutError> {
        safe::temp_in(&self.root.join("blobs/sha256"))
    }

    /// Makes the temp file `tmp` (from [`Layout::temp_blob`], fully written) blob `digest`: fsync, then rename.
    pub fn commit_blob(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<(), LayoutError> {
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        let dest = self.blob_path(digest);
        tmp.persist(&dest).map_err(|e| io_err(&dest)(e.error))?;
        Ok(())
    }

    /// Streams a blob in, verifying `expected` before it becomes visible. Returns digest and size.
    pub fn write_blob_from(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), LayoutError> {
        let tmp = self.temp_blob()?;
        let tmp_path = tmp.path().to_path_buf();
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, tmp));
        io::copy(&mut r, &mut w)
            .and_then(|_| w.flush())
            .map_err(io_err(&tmp_path))?;
        let (digest, size, buf) = w.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| io_err(&tmp_path)(e.into_error()))?;
        if let Some(exp) = expected.filter(|e| **e != digest) {
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                expected: exp.clone(),
                actual: digest,
            });
        }
        self.commit_blob(tmp, &digest)?;
        Ok((digest, size))
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, LayoutError> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            self.write_blob_from(bytes, Some(&d))?;
        }
        Ok(d)
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn index(&self) -> Result<Value, LayoutError> {
        let path = self.index_path();
        let Some(f) = open_regular(&path)? else {
            return Err(io_err(&path)(io::ErrorKind::NotFound.into()));
        };
        let mut bytes = Vec::new();
        f.take(MAX_INDEX_JSON + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > MAX_INDEX_JSON {
            return Err(LayoutError::BadJson {
                path,
                message: format!("over the limit of {MAX_INDEX_JSON} bytes; refused"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| LayoutError::BadJson {
            path,
            message: e.to_string(),
        })
    }

    /// `index.json`'s `manifests` list, or why it has none. The entries stay JSON values: each is parsed only when
    /// it is used (a malformed entry does not hide the others) and rewritten as it was, foreign fields and all.
    fn manifests_of<'v>(&self, index: &'v mut Value) -> Result<&'v mut Vec<Value>, LayoutError> {
        let within = format!("`{}`", self.index_path().display());
        if !index.is_object() {
            return Err(LayoutError::BadDescriptor {
                within,
                field: "(the whole file)".to_owned(),
                problem: format!("is {}", found(index)),
                expected: "a JSON object with `schemaVersion` 2 and `manifests`",
            });
        }
        match index.get_mut("manifests") {
            Some(Value::Array(list)) => Ok(list),
            other => Err(LayoutError::BadDescriptor {
                within,
                field: "manifests".to_owned(),
                problem: format!("is {}", found(other.map_or(&Value::Null, |v| &*v))),
                expected: "a list of descriptors (`[]` when there are no images)",
            }),
        }
    }

    /// `(tag, descriptor)` for every entry of `index.json` (untagged entries have an empty tag).
    pub fn entries(&self) -> Result<Vec<(String, Desc)>, LayoutError> {
        let mut index = self.index()?;
        let within = format!("`{}`", self.index_path().display());
        self.manifests_of(&mut index)?
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok((
                    annotation(m, REF_NAME).unwrap_or_default().to_owned(),
                    Desc::parse_in(m, &within, &format!("manifests[{i}]"))?,
                ))
            })
            .collect()
    }

    /// The descriptor a tag names; with no tag, the only image in the layout. It must be a manifest or an index.
    /// Only the entry chosen is parsed: a malformed entry elsewhere does not hide the others.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Desc, LayoutError> {
        let mut index = self.index()?;
        let list = self.manifests_of(&mut index)?;
        let tag_of = |m: &Value| annotation(m, REF_NAME).map(str::to_owned);
        let found = match tag {
            Some(t) => list
                .iter()
                .position(|m| tag_of(m).as_deref() == Some(t))
                .ok_or_else(|| {
                    let mut names: Vec<String> = list
                        .iter()
                        .filter_map(tag_of)
                        .filter(|n| !n.is_empty())
                        .map(|n| excerpt_str(&n))
                        .collect();
                    names.sort_unstable();
                    LayoutError::UnknownTag {
                        layout: self.root.clone(),
                        tag: t.to_owned(),
                        available: list_excerpt(&names),
                    }
                })?,
            None if list.len() == 1 => 0,
            None => {
                return Err(LayoutError::Ambiguous {
                    layout: self.root.clone(),
                    count: list.len(),
                });
            }
        };
        let within = format!("`{}`", self.index_path().display());
        let field = format!("manifests[{found}]");
        let desc = Desc::parse_in(&list[found], &within, &field)?;
        walk::check_image_media_type(&desc, &within, &field)?;
        Ok(desc)
    }

    /// Read-modify-write of `index.json`'s `manifests` under the layout's lock: concurrent writers (threads or
    /// processes) never lose each other's changes. `change` says whether it changed anything.
    fn update_index(
        &self,
        change: impl FnOnce(&mut Vec<Value>) -> bool,
    ) -> Result<(), LayoutError> {
        let _lock = safe::lock(&self.root.join(LOCK_FILE))?;
        let mut index = self.index()?;
        if !change(self.manifests_of(&mut index)?) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&index).map_err(|e| LayoutError::BadJson {
            path: self.index_path(),
            message: e.to_string(),
        })?;
        write_atomic(&self.index_path(), &bytes)
    }

    /// Points `tag` at `desc` (replacing what it named); the index is rewritten atomically, under the lock.
    pub fn set_tag(&self, tag: &str, desc: &Desc) -> Result<(), LayoutError> {
        let mut tagged = desc.clone();
        tagged.set_annotation(REF_NAME, tag);
        self.update_index(|list| {
            list.retain(|m| annotation(m, REF_NAME) != Some(tag));
            list.push(tagged.raw);
            true
        })
    }

    /// Removes `tag` from the index (its blobs stay until [`Layout::gc`]); absent tags are fine.
    pub fn untag(&self, tag: &str) -> Result<(), LayoutError> {
        self.update_index(|list| {
            let before = list.len();
            list.retain(|m| annotation(m, REF_NAME) != Some(tag));
            list.len() != before
        })
    }

    /// Deletes blobs that no index entry reaches; returns how many were removed.
    pub fn gc(&self) -> Result<usize, LayoutError> {
        let mut live = HashSet::new();
        for (_, d) in self.entries()? {
            self.walk(&d, &mut live, &mut |_| Ok(()))?;
        }
        let live: HashSet<&str> = live.iter().map(Digest::hex).collect();
        let dir = self.root.join("blobs/sha256");
        let mut removed = 0;
        for e in fs_err::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            // `.tmp-*` files belong to writes in progress (ours or another process's): never collected.
            if !name.starts_with('.') && !live.contains(name.as_str()) {
                fs_err::remove_file(e.path()).map_err(io_err(&e.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// `<pid>-<n>`: a name no other process or thread of this one uses at the same time. Predictable: never use it
/// for a file created where others can write; use `tempfile` there.
#[must_use]
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_resolve_and_gc_keeps_only_reachable_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::create(tmp.path()).unwrap();
        let config = l.write_blob(b"{}").unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
            "layers": [],
        }))
        .unwrap();
        let m = l.write_blob(&manifest).unwrap();
        let orphan = l.write_blob(b"orphan").unwrap();
        let desc = Desc::new(MEDIA_MANIFEST, m.clone(), manifest.len() as u64);
        l.set_tag("a", &desc).unwrap();
        l.set_tag("b", &desc).unwrap();
        l.set_tag("a", &desc).unwrap();
        assert_eq!(l.entries().unwrap().len(), 2);
        assert_eq!(l.resolve(Some("b")).unwrap().digest, m);
        assert!(matches!(
            l.resolve(None),
            Err(LayoutError::Ambiguous { count: 2, .. })
        ));
        let e = l.resolve(Some("c")).unwrap_err().to_string();
        assert!(e.contains("tags there: a, b"), "{e}");
        assert_eq!(l.gc().unwrap(), 1);
        assert!(!l.has_blob(&orphan) && l.has_blob(&config) && l.has_blob(&m));
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_is_refused_and_not_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let l = Layout::create(tmp.path()).unwrap();
        let claimed = Digest::of(b"the real thing");
        let err = l
            .write_blob_from(&b"something else"[..], Some(&claimed))
            .unwrap_err();
        assert!(matches!(err, LayoutError::Corrupt { .. }));
        assert_eq!(
            fs_err::read_dir(tmp.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
