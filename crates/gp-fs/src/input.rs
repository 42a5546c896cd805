//! Reading input files a user or a pull request controls: regular files only, checked on the opened descriptor,
//! with a size limit; refusals name the file and never echo its content.

use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_that_are_not_regular_files_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("secret");
        fs_err::write(&secret, "MARKER").unwrap();
        let link = tmp.path().join("link");
        fs_err::os::unix::fs::symlink(&secret, &link).unwrap();
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
}
