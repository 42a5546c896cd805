//! Safe file operations for layouts that may come from people we do not trust: files are opened without following
//! symbolic links and refused by name unless they are regular files (a FIFO or device would hang or flood a read),
//! temporary files are created exclusively with random names inside the directory they will be renamed in, and
//! `index.json` is rewritten under an exclusive lock so that concurrent writers never lose each other's tags.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use serde_json::Value;

use super::LayoutError;

/// Files written into a layout are readable by everyone, like those other OCI tools write.
const FILE_MODE: u32 = 0o644;

/// Longest excerpt of a foreign value an error message shows.
const EXCERPT_CHARS: usize = 40;

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a directory entry is, in words, for messages.
pub(super) fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Opens `path` for reading if it is a regular file; `None` when it does not exist. Symbolic links are not
/// followed and anything else (directory, FIFO, device, socket) is refused by name before a byte is read.
pub(super) fn open_regular(path: &Path) -> Result<Option<fs_err::File>, LayoutError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(LayoutError::NotRegular {
                path: path.to_path_buf(),
                kind: "a symbolic link",
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(LayoutError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    Ok(Some(fs_err::File::from_parts(file, path)))
}

/// Checks that `path` is a real directory (not a symbolic link to one); `false` when it does not exist.
pub(super) fn check_dir(path: &Path) -> Result<bool, LayoutError> {
    match fs_err::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(true),
        Ok(m) => Err(LayoutError::NotADirectory {
            path: path.to_path_buf(),
            kind: kind_of(&m),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Creates the directory `path` (its parent must exist) unless it is there already as a real directory.
pub(super) fn ensure_dir(path: &Path) -> Result<(), LayoutError> {
    match fs_err::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_dir(path).map(|_| ()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A new, empty temporary file with a random name in `dir`, created exclusively (`O_EXCL`: never an existing file
/// or a planted link); removed when dropped unless persisted.
pub(super) fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile, LayoutError> {
    tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
        .map_err(io_err(dir))
}

fn write_temp(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, LayoutError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = temp_in(dir)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(tmp.path()))?;
    Ok(tmp)
}

/// Temp file (random name, exclusive) + fsync + rename over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LayoutError> {
    write_temp(path, bytes)?
        .persist(path)
        .map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// Like [`write_atomic`], but leaves an existing `path` alone; whether it wrote.
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, LayoutError> {
    match write_temp(path, bytes)?.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err(path)(e.error)),
    }
}

/// An exclusive `flock` on `path` (created if absent, never through a link), released when dropped.
#[derive(Debug)]
pub(super) struct Lock(#[allow(dead_code)] File);

pub(super) fn lock(path: &Path) -> Result<Lock, LayoutError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                LayoutError::NotRegular {
                    path: path.to_path_buf(),
                    kind: "a symbolic link",
                }
            } else {
                io_err(path)(e)
            }
        })?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(LayoutError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    file.lock().map_err(io_err(path))?;
    Ok(Lock(file))
}

/// A short excerpt of a foreign JSON value for an error message: at most `EXCERPT_CHARS` characters, with
/// control, non-ASCII and backtick characters escaped so nothing a file holds can disturb a terminal or log.
#[must_use]
pub fn excerpt(v: &Value) -> String {
    escape_cut(&v.to_string(), EXCERPT_CHARS)
}

/// `text` cut at `max` characters (`...` marks a cut), with control, non-ASCII and backtick characters escaped.
#[must_use]
pub fn escape_cut(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        if (c.is_ascii_graphic() && c != '`') || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
}

/// [`excerpt`] of a foreign string, without the quotes around it.
#[must_use]
pub fn excerpt_str(s: &str) -> String {
    let e = excerpt(&Value::String(s.to_owned()));
    let e = e.strip_prefix('"').unwrap_or(&e);
    e.strip_suffix('"').unwrap_or(e).to_owned()
}

/// Longest list of names (tags, platforms) an error message shows.
const LIST_ITEMS: usize = 10;

/// `items` joined for a message, the first few only ("none" when empty).
#[must_use]
pub fn list_excerpt(items: &[String]) -> String {
    match items.len() {
        0 => "none".to_owned(),
        n if n <= LIST_ITEMS => items.join(", "),
        n => format!(
            "{}, ... ({} more)",
            items[..LIST_ITEMS].join(", "),
            n - LIST_ITEMS
        ),
    }
}

/// What a JSON value is, with an excerpt: "an object (`{...}`)".
#[must_use]
pub fn found(v: &Value) -> String {
    let what = match v {
        Value::Null => return "missing".to_owned(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("{what} (`{}`)", excerpt(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt(&serde_json::json!(-1)), "-1");
        assert_eq!(
            excerpt(&serde_json::json!("a`b\u{1b}[31m\u{202e}")),
            r#""a\u{60}b\u001b[31m\u{202e}""#
        );
        let long = excerpt(&serde_json::json!("x".repeat(100)));
        assert_eq!(long, format!("\"{}...", "x".repeat(39)));
        assert_eq!(
            found(&serde_json::json!({"1": 2})),
            "an object (`{\"1\":2}`)"
        );
    }

    #[test]
    fn temp_files_never_follow_a_planted_link() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs_err::write(&outside, b"keep").unwrap();
        let dir = tmp.path().join("dir");
        fs_err::create_dir(&dir).unwrap();
        let dest = dir.join("file");
        fs_err::os::unix::fs::symlink(&outside, &dest).unwrap();
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(fs_err::read(&outside).unwrap(), b"keep");
        assert_eq!(fs_err::read(&dest).unwrap(), b"new");
        assert!(!fs_err::symlink_metadata(&dest).unwrap().is_symlink());
    }
}
