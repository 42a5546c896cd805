//! The safe filesystem layer the unpacker and the layouts stand on: it lives in `gp-fs`, shared with every other
//! reader and writer of untrusted input.

pub use gp_fs::dir::*;
pub use gp_fs::text::{MAX_EXCERPT_CHARS as EXCERPT_CHARS, excerpt, excerpt_path};
