//! Detection: which group of buildpacks builds this app, and the build plan they agree on.

mod expand;
mod resolve;
mod run;

pub use expand::{ExpandError, expand_order};
pub use resolve::{Candidate, Resolved, resolve_group};
pub use run::{DetectDirs, DetectError, Detected, detect};
