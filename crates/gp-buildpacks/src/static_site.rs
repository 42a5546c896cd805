//! Static sites: detection of sites of static files.

use std::path::Path;

use crate::Report;

/// What detection looks for.
pub const LOOKS_FOR: &str = "index.html at the root or in public/ or dist/";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &[];

/// Fills `report` when `dir` is a static app; false when it is not.
pub fn detect(_dir: &Path, _procfile: &[(String, String)], _report: &mut Report) -> bool {
    false
}
