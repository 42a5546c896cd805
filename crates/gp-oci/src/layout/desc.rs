//! Descriptors (`mediaType`, `digest`, `size`) parsed from foreign JSON, with messages naming where they were
//! found, which field is wrong, what it holds (a short excerpt) and what was expected.

use std::path::Path;

use serde_json::{Value, json};

use super::LayoutError;
use super::safe::{excerpt, found};
use crate::digest::Digest;
use crate::spec::{MediaType, Platform};

/// A descriptor: the three fields every reader needs, typed, and the JSON it was read from.
///
/// `raw` stays a [`Value`]: descriptors come from foreign JSON (index entries, manifests) whose other fields
/// (`annotations`, `platform`, `urls`, fields of later spec versions) must survive a copy or a re-tag as they were;
/// [`Desc::platform`] and [`Desc::annotation`] read them typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Desc {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    pub raw: Value,
}

const DESCRIPTOR: &str = "a descriptor object with `mediaType`, `digest` and `size`";

impl Desc {
    /// Parses a descriptor found in the file `path`.
    pub fn parse(v: &Value, path: &Path) -> Result<Self, LayoutError> {
        Self::parse_in(v, &format!("`{}`", path.display()), "descriptor")
    }

    /// Parses the descriptor `field` of `within` (a file or blob, for messages).
    pub fn parse_in(v: &Value, within: &str, field: &str) -> Result<Self, LayoutError> {
        let bad = |problem: String, expected| LayoutError::BadDescriptor {
            within: within.to_owned(),
            field: field.to_owned(),
            problem,
            expected,
        };
        if !v.is_object() {
            return Err(bad(format!("is {}", found(v)), DESCRIPTOR));
        }
        let digest = match &v["digest"] {
            Value::String(s) => s.parse::<Digest>().map_err(|_| {
                bad(
                    format!("has `digest` `{}`", excerpt(&v["digest"])),
                    "`sha256:` and 64 lower-case hex digits",
                )
            })?,
            Value::Null => {
                return Err(bad(
                    "has no `digest`".to_owned(),
                    "`sha256:<64 hex digits>`",
                ));
            }
            other => {
                return Err(bad(
                    format!("has `digest` {}", found(other)),
                    "a string `sha256:<64 hex digits>`",
                ));
            }
        };
        let size = match &v["size"] {
            Value::Null => {
                return Err(bad(
                    "has no `size`".to_owned(),
                    "the blob's length in bytes",
                ));
            }
            other => other.as_u64().ok_or_else(|| {
                bad(
                    format!("has `size` {}", found(other)),
                    "the blob's length in bytes, a whole number 0 or more",
                )
            })?,
        };
        let media_type = match &v["mediaType"] {
            Value::String(s) => MediaType::from(s.as_str()),
            Value::Null => {
                return Err(bad(
                    "has no `mediaType`".to_owned(),
                    "the media type of the blob it names",
                ));
            }
            other => {
                return Err(bad(
                    format!("has `mediaType` {}", found(other)),
                    "a string, the media type of the blob it names",
                ));
            }
        };
        Ok(Self {
            media_type,
            digest,
            size,
            raw: v.clone(),
        })
    }

    #[must_use]
    pub fn new(media_type: impl Into<MediaType>, digest: Digest, size: u64) -> Self {
        let media_type = media_type.into();
        let raw =
            json!({"mediaType": media_type.as_str(), "digest": digest.as_str(), "size": size});
        Self {
            media_type,
            digest,
            size,
            raw,
        }
    }

    /// The `platform` of an index entry; `None` when it has none or it is not an object.
    #[must_use]
    pub fn platform(&self) -> Option<Platform> {
        Platform::from_value(self.raw.get("platform")?)
    }

    /// The annotation `key`, when it is set to a string.
    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&str> {
        annotation(&self.raw, key)
    }

    /// Sets the annotation `key` (in `raw`, which is what is written).
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        // `raw` is an object: `parse_in` refuses anything else and `new` writes one.
        let Value::Object(fields) = &mut self.raw else {
            return;
        };
        let annotations = fields.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        if let Value::Object(a) = annotations {
            a.insert(key.to_owned(), json!(value));
        }
    }
}

/// The annotation `key` of the descriptor JSON `v`, when it is set to a string. For index entries not (yet)
/// parsed: a malformed entry must not hide its neighbours, so `index.json` is matched entry by entry.
#[must_use]
pub fn annotation<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get("annotations")?.get(key)?.as_str()
}
