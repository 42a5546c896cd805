//! The shared way every TOML spec file is parsed, validated, written and (optionally) read from disk.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors from reading, parsing, validating or writing a CNB file. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CnbError {
    #[error("cannot read `{}`: {source}", path.display())]
    CannotRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {file}{}: {message}", in_path(path.as_deref()))]
    InvalidToml {
        file: &'static str,
        path: Option<PathBuf>,
        /// The parser's message, which names the offending key and its line/column.
        message: String,
    },
    #[error("invalid {file}{}: `{field}` {message}", in_path(path.as_deref()))]
    InvalidField {
        file: &'static str,
        path: Option<PathBuf>,
        field: String,
        message: String,
    },
    #[error("cannot write {file}: {message}")]
    CannotSerialize { file: &'static str, message: String },
}

fn in_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" at `{}`", p.display()))
        .unwrap_or_default()
}

impl CnbError {
    /// A semantic error in one field of a file that parsed.
    pub fn field(file: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            file,
            path: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, naming the file at `at`.
    #[must_use]
    pub fn with_path(mut self, at: &Path) -> Self {
        if let Self::InvalidToml { path, .. } | Self::InvalidField { path, .. } = &mut self {
            *path = Some(at.to_path_buf());
        }
        self
    }
}

/// A TOML file defined by the CNB specs. Implementors name the file and may add validation beyond
/// what the types enforce; the provided methods do the rest.
pub trait TomlFile: Serialize + DeserializeOwned {
    /// How error messages name the file, e.g. `buildpack.toml`.
    const FILE: &'static str;

    /// Cross-field rules the types cannot express. Runs after every parse.
    fn validate(&self) -> Result<(), CnbError> {
        Ok(())
    }

    /// Parses and validates TOML text. Unknown keys are ignored.
    fn from_toml_str(text: &str) -> Result<Self, CnbError> {
        Self::from_toml_str_with_unknown_keys(text).map(|(value, _)| value)
    }

    /// Like [`TomlFile::from_toml_str`], also returning the dotted paths (sorted) of keys the spec does not
    /// define (e.g. `buildpack.clear_env`), for warnings about typos or newer fields. Free-form
    /// tables (`[metadata]`, other tools' tables) are never reported.
    fn from_toml_str_with_unknown_keys(text: &str) -> Result<(Self, Vec<String>), CnbError> {
        let invalid = |e: toml::de::Error| CnbError::InvalidToml {
            file: Self::FILE,
            path: None,
            message: clip_lines(e.to_string().trim_end(), MAX_MESSAGE_LINE_CHARS),
        };
        let deserializer = toml::Deserializer::parse(text).map_err(invalid)?;
        let mut unknown = Vec::new();
        let value: Self =
            serde_ignored::deserialize(deserializer, |path| unknown.push(path.to_string()))
                .map_err(invalid)?;
        value.validate()?;
        unknown.sort();
        Ok((value, unknown))
    }

    /// Serializes to TOML text.
    fn to_toml_string(&self) -> Result<String, CnbError> {
        toml::to_string(self).map_err(|e| CnbError::CannotSerialize {
            file: Self::FILE,
            message: e.to_string(),
        })
    }

    /// Reads, parses and validates the file at `path`; every error carries the path.
    fn from_path(path: impl AsRef<Path>) -> Result<Self, CnbError> {
        let path = path.as_ref();
        let text = fs_err::read_to_string(path).map_err(|source| CnbError::CannotRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| e.with_path(path))
    }
}

pub use gp_fs::input::{InputError, describe_file_type, read_input, read_input_text};
pub use gp_fs::text::{
    MAX_EXCERPT_CHARS, MAX_MESSAGE_LINE_CHARS, clip_lines, excerpt, push_escaped,
};

/// Whether a `bool` is `false`, for `skip_serializing_if`.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}
