//! PHP: detection of Composer apps.

use std::path::Path;

use crate::Report;

/// What detection looks for.
pub const LOOKS_FOR: &str = "composer.json or index.php";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &[];

/// Fills `report` when `dir` is a PHP app; false when it is not.
pub fn detect(_dir: &Path, _procfile: &[(String, String)], _report: &mut Report) -> bool {
    false
}
