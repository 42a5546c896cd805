//! Descriptors (`mediaType`, `digest`, `size`) parsed from foreign JSON, with messages naming where they were
//! found, which field is wrong, what it holds (a short excerpt) and what was expected.

use std::path::Path;

use serde_json::{Value, json};

use super::LayoutError;
use super::safe::{excerpt, found};
use crate::digest::Digest;

/// A descriptor as stored in JSON (kept as-is so foreign fields survive a copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Desc {
    pub media_type: String,
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
            Value::String(s) => s.clone(),
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
