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

/// Why an input file (a file the user or a pull request controls) was refused or could not be read. Each names the
/// file; none echoes its content.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error(
        "`{}` is {kind}, not a regular file: replace it with a regular file (or remove it)",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{}` is {size} bytes, over the limit of {limit} bytes: inputs of this kind are small text files; check that it is the file you meant",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error(
        "`{}` is not UTF-8 text (line {line}, byte offset {offset}): save it as UTF-8 text",
        path.display()
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error(
        "`{}` holds a NUL byte (line {line}, byte offset {offset}): it must be text; remove the byte",
        path.display()
    )]
    Nul {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error("{source}")]
    Io {
        #[source]
        source: std::io::Error,
    },
}

impl InputError {
    /// Whether the file does not exist (the caller may treat an absent optional file as no file).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What a non-regular file is, for messages (`a directory`, `a FIFO (named pipe)`, ...); `None` for a regular file.
#[must_use]
pub fn describe_file_type(ft: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_symlink() {
        Some("a symbolic link")
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_char_device() {
        Some("a character device")
    } else {
        Some("not a file")
    }
}

fn check_type(path: &Path, ft: std::fs::FileType) -> Result<(), InputError> {
    match describe_file_type(ft) {
        None => Ok(()),
        Some(_) if ft.is_symlink() => Err(InputError::Symlink {
            path: path.to_path_buf(),
        }),
        Some(kind) => Err(InputError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Reads an input file of at most `limit` bytes, refusing by name, before reading anything, what is not a regular
/// file: the path is checked without following a final symbolic link, then opened with `O_NOFOLLOW | O_NONBLOCK`
/// (a FIFO swapped in meanwhile cannot block, a link cannot be followed) and the opened file checked again (`fstat`).
pub fn read_input(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| InputError::Io { source };
    check_type(
        path,
        fs_err::symlink_metadata(path).map_err(io)?.file_type(),
    )?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                InputError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                io(std::io::Error::new(
                    e.kind(),
                    format!("cannot open `{}`: {e}", path.display()),
                ))
            }
        })?;
    let file = fs_err::File::from_parts(file, path);
    let meta = file.metadata().map_err(io)?;
    check_type(path, meta.file_type())?;
    let too_large = |size| InputError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(too_large(read));
    }
    Ok(bytes)
}

/// [`read_input`], then the bytes must be UTF-8 text without NUL bytes; a byte-order mark is kept.
pub fn read_input_text(path: &Path, limit: u64) -> Result<String, InputError> {
    let bytes = read_input(path, limit)?;
    let line_of = |bytes: &[u8], offset: usize| bytes[..offset].split(|b| *b == b'\n').count();
    if let Some(offset) = bytes.iter().position(|b| *b == 0) {
        return Err(InputError::Nul {
            path: path.to_path_buf(),
            line: line_of(&bytes, offset),
            offset,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        InputError::NotUtf8 {
            path: path.to_path_buf(),
            line: line_of(e.as_bytes(), offset),
            offset,
        }
    })
}

/// How many characters of a value from an input file an error message shows.
pub const MAX_EXCERPT_CHARS: usize = 80;

/// A value from an input file as error messages may show it: control characters escaped (`\u{1b}`, `\0`, `\n`:
/// a hostile file cannot drive the terminal or the log), at most [`MAX_EXCERPT_CHARS`] characters, and when cut,
/// `…` and the value's total length in bytes.
#[must_use]
pub fn excerpt(value: &str) -> String {
    let mut out = String::new();
    for (shown, c) in value.chars().enumerate() {
        if shown == MAX_EXCERPT_CHARS {
            use std::fmt::Write as _;
            let _ = write!(out, "… ({} bytes in all)", value.len());
            return out;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// How many characters of one line of a parser's message (which quotes the offending source line) are kept.
pub const MAX_MESSAGE_LINE_CHARS: usize = 200;

/// `text` with control characters escaped in every line and every line cut to `max` characters (`…` marks a cut):
/// for parser messages that quote a line of a hostile file.
#[must_use]
pub fn clip_lines(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (i, c) in line.chars().enumerate() {
            if i == max {
                out.push('…');
                break;
            }
            push_escaped(&mut out, c);
        }
    }
    out
}

/// Appends `c`, escaped when it is a control character (or a bidirectional override, which reorders the line).
pub fn push_escaped(out: &mut String, c: char) {
    if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// Whether a `bool` is `false`, for `skip_serializing_if`.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_that_are_not_regular_files_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "MARKER").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let msg = |p: &Path| read_input(p, 100).unwrap_err().to_string();
        assert_eq!(
            msg(&link),
            format!(
                "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
                link.display()
            )
        );
        assert_eq!(
            msg(tmp.path()),
            format!(
                "`{}` is a directory, not a regular file: replace it with a regular file (or remove it)",
                tmp.path().display()
            )
        );
        assert_eq!(
            msg(Path::new("/dev/null")),
            "`/dev/null` is a character device, not a regular file: replace it with a regular file (or remove it)"
        );
        assert!(
            read_input(&tmp.path().join("absent"), 100)
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(read_input(&secret, 6).unwrap(), b"MARKER");
        assert_eq!(
            read_input(&secret, 5).unwrap_err().to_string(),
            format!(
                "`{}` is 6 bytes, over the limit of 5 bytes: inputs of this kind are small text files; check that it is the file you meant",
                secret.display()
            )
        );
    }

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\u{1b}[2J\0"), "a\\u{1b}[2J\\u{0}");
        let long = "é".repeat(100);
        assert_eq!(
            excerpt(&long),
            format!("{}… (200 bytes in all)", "é".repeat(MAX_EXCERPT_CHARS))
        );
        assert_eq!(clip_lines("ab\ncd\u{7}", 1), "a…\nc…");
        assert_eq!(clip_lines("ab\ncd\u{7}", 9), "ab\ncd\\u{7}");
    }
}
