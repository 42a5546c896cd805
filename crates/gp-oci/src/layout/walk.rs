//! Reading what an image is made of: manifests and indexes parsed with limits (size, nesting depth, each blob
//! walked once), media types checked against content, and whole images checked or copied blob by blob.

use std::collections::HashSet;
use std::io::{self, Read as _};

use serde_json::Value;

use super::safe::{found, io_err, open_regular};
use super::{Desc, Layout, LayoutError};
use crate::digest::{Digest, HashingWriter};
use crate::spec::MediaType;

/// Largest manifest, index or config read (4 MiB): real ones are a few KiB; a bigger one is refused before it is
/// read, so a hostile layout cannot make us hold it in memory.
pub const MAX_JSON_BLOB: u64 = 4 << 20;

/// Deepest nesting of indexes and manifests walked: an image is an index of manifests of blobs (3 levels); 8 leaves
/// room for the nesting tools do, while a hostile chain of thousands of indexes is refused long before the stack
/// or the number of visits grows.
pub const MAX_DEPTH: usize = 8;

/// The two kinds of JSON blob that name other blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
}

/// What an index may list: manifests and indexes, in OCI or Docker form.
const IMAGE_MEDIA_TYPES: &str = "`application/vnd.oci.image.manifest.v1+json`, `application/vnd.oci.image.index.v1+json` or their Docker v2 forms";

impl Kind {
    /// The kind a media type declares; `None` for blobs that name nothing (config, layers, other artifacts).
    #[must_use]
    pub fn of_media_type(media_type: &str) -> Option<Self> {
        MediaType::from(media_type).kind()
    }

    #[must_use]
    pub fn noun(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Index => "index",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            Self::Manifest => "a manifest",
            Self::Index => "an index",
        }
    }
}

/// The kind the content itself shows, and the evidence: its own `mediaType`, else its fields.
///
/// Manifests and indexes are checked as JSON values, not deserialized into types: they come from layouts and
/// registries we do not trust, and each wrong field is reported by name with what it holds ("`layers[2]` has
/// `size` a string") where a deserializer would stop at the first mismatch with its own wording.
fn detect(v: &Value) -> Option<(Kind, &'static str)> {
    if let Some(k) = v
        .get("mediaType")
        .and_then(Value::as_str)
        .and_then(Kind::of_media_type)
    {
        return Some((k, "its `mediaType` says so"));
    }
    if v.get("manifests").is_some() && v.get("config").is_none() {
        return Some((Kind::Index, "it has `manifests` and no `config`"));
    }
    if v.get("config").is_some() || v.get("layers").is_some() {
        return Some((Kind::Manifest, "it has `config` or `layers`"));
    }
    None
}

/// The blobs the manifest or index `v` (blob `digest`, declared `kind`) names: config and layers, or manifests.
/// Every descriptor is checked; an index may list only manifests and indexes.
pub fn parse_children(v: &Value, kind: Kind, digest: &Digest) -> Result<Vec<Desc>, LayoutError> {
    let within = format!("{} {digest}", kind.noun());
    if !v.is_object() {
        return Err(LayoutError::BadDescriptor {
            within,
            field: "(the whole blob)".to_owned(),
            problem: format!("is {}", found(v)),
            expected: "a JSON object",
        });
    }
    if let Some((shown, evidence)) = detect(v).filter(|(k, _)| *k != kind) {
        return Err(LayoutError::KindMismatch {
            digest: digest.clone(),
            declared: kind.with_article(),
            found: shown.with_article(),
            evidence,
        });
    }
    let field_of = |field: &str| v.get(field).unwrap_or(&Value::Null);
    let list = |field: &str| -> Result<&[Value], LayoutError> {
        match field_of(field) {
            Value::Array(a) => Ok(a.as_slice()),
            Value::Null if kind == Kind::Manifest => Ok(&[]),
            other => Err(LayoutError::BadDescriptor {
                within: within.clone(),
                field: field.to_owned(),
                problem: format!("is {}", found(other)),
                expected: "a list of descriptors",
            }),
        }
    };
    let mut out = Vec::new();
    match kind {
        Kind::Manifest => {
            out.push(Desc::parse_in(field_of("config"), &within, "config")?);
            for (i, l) in list("layers")?.iter().enumerate() {
                out.push(Desc::parse_in(l, &within, &format!("layers[{i}]"))?);
            }
        }
        Kind::Index => {
            for (i, m) in list("manifests")?.iter().enumerate() {
                let field = format!("manifests[{i}]");
                let child = Desc::parse_in(m, &within, &field)?;
                check_image_media_type(&child, &within, &field)?;
                out.push(child);
            }
        }
    }
    Ok(out)
}

/// Refuses a descriptor that should name an image (an index entry) but declares another media type.
pub(super) fn check_image_media_type(
    d: &Desc,
    within: &str,
    field: &str,
) -> Result<Kind, LayoutError> {
    d.media_type.kind().ok_or_else(|| LayoutError::MediaType {
        within: within.to_owned(),
        field: field.to_owned(),
        digest: d.digest.clone(),
        media_type: super::safe::excerpt(&Value::String(d.media_type.to_string())),
        expected: IMAGE_MEDIA_TYPES,
    })
}

/// Parses bytes claimed to be a manifest or index (blob `digest`, declared `kind`): what [`Layout::children`]
/// does after reading the blob, without the file system.
pub fn parse_children_bytes(
    bytes: &[u8],
    kind: Kind,
    digest: &Digest,
) -> Result<Vec<Desc>, LayoutError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| LayoutError::BadBlobJson {
        what: kind.noun(),
        digest: digest.clone(),
        message: e.to_string(),
    })?;
    parse_children(&v, kind, digest)
}

fn chain_text(chain: &[Digest]) -> String {
    chain
        .iter()
        .map(|d| &d.as_str()[..19])
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl Layout {
    /// Opens blob `d` if it is a regular file of `size` bytes (size unchecked when `None`).
    pub(super) fn open_blob(
        &self,
        d: &Digest,
        size: Option<u64>,
    ) -> Result<(fs_err::File, u64), LayoutError> {
        let path = self.blob_path(d);
        let Some(f) = open_regular(&path)? else {
            return Err(LayoutError::MissingBlob {
                layout: self.root().to_path_buf(),
                digest: d.clone(),
            });
        };
        let actual = f.metadata().map_err(io_err(&path))?.len();
        if let Some(declared) = size.filter(|s| *s != actual) {
            return Err(LayoutError::SizeMismatch {
                layout: self.root().to_path_buf(),
                digest: d.clone(),
                actual,
                declared,
            });
        }
        Ok((f, actual))
    }

    /// Reads the JSON blob `d` (a manifest, index or config: `what`), refusing it unread when it is over
    /// [`MAX_JSON_BLOB`] bytes, and checks its digest.
    pub fn read_json(&self, d: &Desc, what: &'static str) -> Result<Value, LayoutError> {
        self.read_typed(d, what)
    }

    /// [`Layout::read_json`] into a type: a blob that does not read as `T` is [`LayoutError::BadBlobJson`], naming
    /// `what`, the digest and what serde expected.
    pub fn read_typed<T: serde::de::DeserializeOwned>(
        &self,
        d: &Desc,
        what: &'static str,
    ) -> Result<T, LayoutError> {
        let too_large = |size| LayoutError::TooLarge {
            layout: self.root().to_path_buf(),
            what,
            digest: d.digest.clone(),
            size,
            limit: MAX_JSON_BLOB,
        };
        if d.size > MAX_JSON_BLOB {
            return Err(too_large(d.size));
        }
        let (f, len) = self.open_blob(&d.digest, Some(d.size))?;
        if len > MAX_JSON_BLOB {
            return Err(too_large(len));
        }
        let mut bytes = Vec::new();
        f.take(MAX_JSON_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&self.blob_path(&d.digest)))?;
        let actual = Digest::of(&bytes);
        if actual != d.digest {
            return Err(LayoutError::Corrupt {
                layout: self.root().to_path_buf(),
                expected: d.digest.clone(),
                actual,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| LayoutError::BadBlobJson {
            what,
            digest: d.digest.clone(),
            message: e.to_string(),
        })
    }

    /// What a manifest or index refers to (config + layers, or manifests); nothing for other blobs.
    pub fn children(&self, d: &Desc) -> Result<Vec<Desc>, LayoutError> {
        let Some(kind) = d.media_type.kind() else {
            return Ok(Vec::new());
        };
        let v = self.read_json(d, kind.noun())?;
        parse_children(&v, kind, &d.digest)
    }

    /// Calls `visit` for `top` and every blob it reaches, children before their parent, each digest once (`seen`
    /// carries over between calls); nesting deeper than [`MAX_DEPTH`] is refused.
    pub fn walk(
        &self,
        top: &Desc,
        seen: &mut HashSet<Digest>,
        visit: &mut dyn FnMut(&Desc) -> Result<(), LayoutError>,
    ) -> Result<(), LayoutError> {
        self.walk_at(top, seen, &mut Vec::new(), visit)
    }

    fn walk_at(
        &self,
        d: &Desc,
        seen: &mut HashSet<Digest>,
        chain: &mut Vec<Digest>,
        visit: &mut dyn FnMut(&Desc) -> Result<(), LayoutError>,
    ) -> Result<(), LayoutError> {
        if !seen.insert(d.digest.clone()) {
            return Ok(());
        }
        chain.push(d.digest.clone());
        if chain.len() > MAX_DEPTH {
            return Err(LayoutError::TooDeep {
                layout: self.root().to_path_buf(),
                limit: MAX_DEPTH,
                chain: chain_text(chain),
            });
        }
        for child in self.children(d)? {
            self.walk_at(&child, seen, chain, visit)?;
        }
        chain.pop();
        visit(d)
    }

    /// Checks, without copying, that every blob of the image `desc` is here as a regular file of its declared size
    /// and that every manifest and index parses; returns how many blobs it has.
    pub fn check_image(&self, desc: &Desc) -> Result<usize, LayoutError> {
        let mut count = 0;
        self.walk(desc, &mut HashSet::new(), &mut |d| {
            self.open_blob(&d.digest, Some(d.size))?;
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// Opens blob `d` for streaming after checking its size and digest (read once, in a small buffer).
    pub fn open_verified(&self, d: &Desc) -> Result<fs_err::File, LayoutError> {
        let (mut f, _) = self.open_blob(&d.digest, Some(d.size))?;
        let path = self.blob_path(&d.digest);
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut f, &mut w).map_err(io_err(&path))?;
        let (actual, _, _) = w.finish();
        if actual != d.digest {
            return Err(LayoutError::Corrupt {
                layout: self.root().to_path_buf(),
                expected: d.digest.clone(),
                actual,
            });
        }
        io::Seek::rewind(&mut f).map_err(io_err(&path))?;
        Ok(f)
    }
}

/// Copies the image `desc` names (and everything it refers to) from `src` into `dst`, streaming and verifying
/// every blob; blobs `dst` already has are skipped. Returns the number of blobs copied.
pub fn copy_image(src: &Layout, dst: &Layout, desc: &Desc) -> Result<usize, LayoutError> {
    let mut copied = 0;
    src.walk(desc, &mut HashSet::new(), &mut |d| {
        if dst.has_blob(&d.digest) {
            return Ok(());
        }
        let (f, _) = src.open_blob(&d.digest, Some(d.size))?;
        dst.write_blob_from(f, Some(&d.digest))
            .map_err(|e| match e {
                LayoutError::Corrupt {
                    expected, actual, ..
                } => LayoutError::Corrupt {
                    layout: src.root().to_path_buf(),
                    expected,
                    actual,
                },
                other => other,
            })?;
        copied += 1;
        Ok(())
    })?;
    Ok(copied)
}
