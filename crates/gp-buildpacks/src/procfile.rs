//! The Procfile: process types for any app.

use std::path::Path;

use gp_cnb::Procfile;

use crate::Finding;

/// The Procfile's `(type, command)` pairs; an unreadable or invalid Procfile is an error finding.
pub fn read(dir: &Path, findings: &mut Vec<Finding>) -> Vec<(String, String)> {
    let Some(text) = crate::read(dir, "Procfile") else {
        return Vec::new();
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
