//! OCI image layout store (`oci-layout`, `index.json`, `blobs/sha256/`): blobs written atomically (temp file, verify,
//! rename) and verified on every read, several tags per layout (`org.opencontainers.image.ref.name`), and garbage
//! collection of blobs no tag reaches.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::digest::{Digest, HashingWriter};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

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
    #[error("blob {expected} in `{layout}` is corrupt: its content hashes to {actual}")]
    Corrupt {
        layout: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("blob {digest} is missing from `{layout}`")]
    MissingBlob { layout: PathBuf, digest: Digest },
    #[error("no tag `{tag}` in `{layout}`; tags there: {available}")]
    UnknownTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    #[error("`{layout}` holds {count} images; name one with `oci:{layout}:TAG`")]
    Ambiguous { layout: PathBuf, count: usize },
    #[error("descriptor in `{path}` is malformed: {message}")]
    BadDescriptor { path: PathBuf, message: String },
}

/// A descriptor as stored in JSON (kept as-is so foreign fields survive a copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub raw: Value,
}

impl Desc {
    pub fn parse(v: &Value, path: &Path) -> Result<Self, LayoutError> {
        let bad = |message: &str| LayoutError::BadDescriptor {
            path: path.to_path_buf(),
            message: message.to_owned(),
        };
        let digest = v["digest"].as_str().ok_or_else(|| bad("no `digest`"))?;
        let digest: Digest = digest
            .parse()
            .map_err(|e: crate::digest::DigestError| bad(&e.to_string()))?;
        Ok(Self {
            media_type: v["mediaType"].as_str().unwrap_or_default().to_owned(),
            digest,
            size: v["size"].as_u64().ok_or_else(|| bad("no `size`"))?,
            raw: v.clone(),
        })
    }

    #[must_use]
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        let raw = json!({"mediaType": media_type, "digest": digest.as_str(), "size": size});
        Self {
            media_type: media_type.to_owned(),
            digest,
            size,
            raw,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Layout {
    /// Opens a layout, creating it (and `oci-layout`, `index.json`) when the directory is absent or empty.
    pub fn create(root: &Path) -> Result<Self, LayoutError> {
        fs_err::create_dir_all(root.join("blobs/sha256")).map_err(io_err(root))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            write_atomic(&index, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn open(root: &Path) -> Result<Self, LayoutError> {
        if !root.join("oci-layout").is_file() {
            return Err(LayoutError::NotALayout(root.to_path_buf()));
        }
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

    #[must_use]
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Reads a blob and checks its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(d);
        let bytes = match fs_err::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LayoutError::MissingBlob {
                    layout: self.root.clone(),
                    digest: d.clone(),
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
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

    /// Streams a blob in, verifying `expected` before it becomes visible. Returns digest and size.
    pub fn write_blob_from(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), LayoutError> {
        let dir = self.root.join("blobs/sha256");
        let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
        let file = fs_err::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = HashingWriter::new(io::BufWriter::new(file));
        let copied = io::copy(&mut r, &mut w).and_then(|_| w.flush());
        let (digest, size, buf) = w.finish();
        let done = copied
            .and_then(|()| buf.into_inner().map_err(io::IntoInnerError::into_error))
            .and_then(|f| f.sync_all());
        if let Err(e) = done {
            let _ = fs_err::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        if let Some(exp) = expected.filter(|e| **e != digest) {
            let _ = fs_err::remove_file(&tmp);
            return Err(LayoutError::Corrupt {
                layout: self.root.clone(),
                expected: exp.clone(),
                actual: digest,
            });
        }
        let dest = self.blob_path(&digest);
        fs_err::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok((digest, size))
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest, LayoutError> {
        let d = Digest::of(bytes);
        if !self.has_blob(&d) {
            self.write_blob_from(bytes, Some(&d))?;
        }
        Ok(d)
    }

    fn index(&self) -> Result<Value, LayoutError> {
        let path = self.root.join("index.json");
        let text = fs_err::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| LayoutError::BadJson {
            path,
            message: e.to_string(),
        })
    }

    /// `(tag, descriptor)` for every entry of `index.json` (untagged entries have an empty tag).
    pub fn entries(&self) -> Result<Vec<(String, Desc)>, LayoutError> {
        let index = self.index()?;
        let path = self.root.join("index.json");
        index["manifests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| {
                Ok((
                    m["annotations"][REF_NAME]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    Desc::parse(m, &path)?,
                ))
            })
            .collect()
    }

    /// The descriptor a tag names; with no tag, the only image in the layout.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Desc, LayoutError> {
        let entries = self.entries()?;
        match tag {
            Some(t) => entries
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| {
                    let mut names: Vec<&str> = entries
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .filter(|n| !n.is_empty())
                        .collect();
                    names.sort_unstable();
                    LayoutError::UnknownTag {
                        layout: self.root.clone(),
                        tag: t.to_owned(),
                        available: if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        },
                    }
                }),
            None if entries.len() == 1 => Ok(entries[0].1.clone()),
            None => Err(LayoutError::Ambiguous {
                layout: self.root.clone(),
                count: entries.len(),
            }),
        }
    }

    /// Points `tag` at `desc` (replacing what it named); the index is rewritten atomically.
    pub fn set_tag(&self, tag: &str, desc: &Desc) -> Result<(), LayoutError> {
        let mut index = self.index()?;
        let mut raw = desc.raw.clone();
        raw["annotations"][REF_NAME] = json!(tag);
        if !index["manifests"].is_array() {
            index["manifests"] = json!([]);
        }
        let Some(list) = index["manifests"].as_array_mut() else {
            return Err(LayoutError::BadJson {
                path: self.root.join("index.json"),
                message: "`manifests` is not a list".to_owned(),
            });
        };
        list.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
        list.push(raw);
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Removes `tag` from the index (its blobs stay until [`Layout::gc`]); absent tags are fine.
    pub fn untag(&self, tag: &str) -> Result<(), LayoutError> {
        let mut index = self.index()?;
        let Some(list) = index["manifests"].as_array_mut() else {
            return Ok(());
        };
        let before = list.len();
        list.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
        if list.len() == before {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Deletes blobs that no index entry reaches; returns how many were removed.
    pub fn gc(&self) -> Result<usize, LayoutError> {
        let mut live = BTreeSet::new();
        for (_, d) in self.entries()? {
            self.mark(&d, &mut live)?;
        }
        let dir = self.root.join("blobs/sha256");
        let mut removed = 0;
        for e in fs_err::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            // `.tmp-*` files belong to writes in progress (ours or another process's): never collected.
            if !name.starts_with('.') && !live.contains(&name) {
                fs_err::remove_file(e.path()).map_err(io_err(&e.path()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn mark(&self, d: &Desc, live: &mut BTreeSet<String>) -> Result<(), LayoutError> {
        live.insert(d.digest.hex().to_owned());
        for child in self.children(d)? {
            self.mark(&child, live)?;
        }
        Ok(())
    }

    /// What a manifest or index refers to (config + layers, or manifests); nothing for other blobs.
    pub fn children(&self, d: &Desc) -> Result<Vec<Desc>, LayoutError> {
        let is_manifest = [MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST].contains(&d.media_type.as_str());
        let is_index = [MEDIA_INDEX, MEDIA_DOCKER_LIST].contains(&d.media_type.as_str());
        if !is_manifest && !is_index {
            return Ok(Vec::new());
        }
        let path = self.blob_path(&d.digest);
        let v: Value = serde_json::from_slice(&self.read_blob(&d.digest)?).map_err(|e| {
            LayoutError::BadJson {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let mut out = Vec::new();
        if is_manifest {
            out.push(Desc::parse(&v["config"], &path)?);
            for l in v["layers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                out.push(Desc::parse(l, &path)?);
            }
        } else {
            for m in v["manifests"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                out.push(Desc::parse(m, &path)?);
            }
        }
        Ok(out)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `<pid>-<n>`: a temporary name no other process or thread of this one uses.
#[must_use]
pub fn unique_suffix() -> String {
    format!("{}-{}", std::process::id(), unique())
}

/// Temp file + fsync + rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
    let res = (|| {
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs_err::rename(&tmp, path)
    })();
    res.map_err(|e| {
        let _ = fs_err::remove_file(&tmp);
        io_err(path)(e)
    })
}

/// Copies the image `desc` names (and everything it refers to) from `src` into `dst`, verifying every blob;
/// blobs `dst` already has are skipped. Returns the number of blobs copied.
pub fn copy_image(src: &Layout, dst: &Layout, desc: &Desc) -> Result<usize, LayoutError> {
    let mut copied = 0;
    for child in src.children(desc)? {
        copied += copy_image(src, dst, &child)?;
    }
    if !dst.has_blob(&desc.digest) {
        let path = src.blob_path(&desc.digest);
        let f = fs_err::File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LayoutError::MissingBlob {
                layout: src.root.clone(),
                digest: desc.digest.clone(),
            },
            _ => io_err(&path)(e),
        })?;
        dst.write_blob_from(f, Some(&desc.digest))
            .map_err(|e| match e {
                LayoutError::Corrupt {
                    expected, actual, ..
                } => LayoutError::Corrupt {
                    layout: src.root.clone(),
                    expected,
                    actual,
                },
                other => other,
            })?;
        copied += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            std::fs::read_dir(tmp.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
