//! The Procfile: process types for any app.

use std::path::Path;

use gp_cnb::Procfile;

use crate::Finding;

/// The Procfile's `(type, command)` pairs; an unreadable or invalid Procfile is an error finding.
pub fn read(dir: &Path, findings: &mut Vec<Finding>) -> Vec<(String, String)> {
    let text = match gp_cnb::read_input_text(&dir.join("Procfile"), crate::MAX_INPUT_BYTES) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Vec::new(),
        Err(e) => {
            findings.push(Finding::error(
                "Procfile",
                e.to_string(),
                "the Procfile is a text file with one `type: command` per line, e.g. `web: gunicorn app:app`",
            ));
            return Vec::new();
        }
    };
    match Procfile::parse(&text) {
        Ok(p) => p
            .entries
            .iter()
            .map(|e| (e.kind.to_string(), e.command.clone()))
            .collect(),
        Err(e) => {
            findings.push(Finding::error(
                "Procfile",
                e.to_string(),
                "write one `type: command` per line, e.g. `web: gunicorn app:app`",
            ));
            Vec::new()
        }
    }
}
