//! The safe filesystem layer: what every reader, writer and unpacker of untrusted input stands on.
//!
//! - [`dir`]: operations confined to an opened directory, walked one component at a time with `O_NOFOLLOW`, links
//!   resolved against the root; nothing outside the opened directory is ever created, written or removed.
//! - [`input`]: input files (contracts, configs, `project.toml`, Procfiles) read only when they are regular files,
//!   checked on the opened descriptor, within a size limit.
//! - [`text`]: short, escaped excerpts of untrusted values for messages.
//!
//! It owns no format and prints nothing; the crates above it (`gp-oci`, `gp-cnb`, `gp-contract`, `gp-render`) map
//! its errors into their own.

pub mod dir;
pub mod input;
pub mod text;

pub use dir::{Dir, MAX_LINK_HOPS, Resolution, SafeFsError, rename_new, set_owner_and_mode};
pub use input::{InputError, describe_file_type, read_input, read_input_text};
pub use text::{
    MAX_EXCERPT_CHARS, MAX_MESSAGE_LINE_CHARS, clip_lines, excerpt, excerpt_path, excerpt_within,
    push_escaped,
};
