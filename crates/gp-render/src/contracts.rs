//! A whole contracts tree rendered into the GitOps tree: what `contract render` does after checking, and what the
//! fleet does to pin patched digests. Valid contracts render in parallel; the files of invalid ones are kept as
//! they were; digests come from [`Pins`], else from the pin already in the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gp_contract::{FileResult, Report};
use rayon::prelude::*;

use crate::tree::{self, Outcome, Planned, TreeError};

/// Image digests to pin, by application in every environment, or by environment and application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    by_app: BTreeMap<String, String>,
    by_env: BTreeMap<(String, String), String>,
}

impl Pins {
    /// Pins `application` in every environment (`contract render --pin APP=DIGEST`).
    pub fn app(&mut self, application: &str, digest: &str) {
        self.by_app
            .insert(application.to_owned(), digest.to_owned());
    }

    /// Pins `application` in `environment` only (a patched image).
    pub fn env_app(&mut self, environment: &str, application: &str, digest: &str) {
        self.by_env.insert(
            (environment.to_owned(), application.to_owned()),
            digest.to_owned(),
        );
    }

    fn get(&self, environment: &str, application: &str) -> Option<&str> {
        self.by_env
            .get(&(environment.to_owned(), application.to_owned()))
            .or_else(|| self.by_app.get(application))
            .map(String::as_str)
    }
}

/// What rendering a report did: the tree's changes, and contracts that failed to render (with their errors).
#[derive(Debug)]
pub struct Rendered {
    pub outcome: Outcome,
    pub errors: Vec<String>,
}

/// Renders every valid contract of `report` into `out` and prunes our stale files (see [`tree::apply`]).
pub fn render_report(report: &Report, out: &Path, pins: &Pins) -> Result<Rendered, TreeError> {
    render(report, out, pins, false)
}

/// Renders only the contracts `pins` names by environment and application (with their new digests) and leaves
/// every other file of the tree as it is: no other app's files are written or pruned.
pub fn pin_report(report: &Report, out: &Path, pins: &Pins) -> Result<Rendered, TreeError> {
    render(report, out, pins, true)
}

fn render(
    report: &Report,
    out: &Path,
    pins: &Pins,
    only_pinned: bool,
) -> Result<Rendered, TreeError> {
    let mut keep = BTreeSet::new();
    let mut jobs = Vec::new();
    for file in &report.files {
        let source = display_source(file);
        if file.has_errors() {
            keep.insert(source);
            continue;
        }
        let Some(config) = &file.config else { continue };
        jobs.extend(
            file.contracts()
                .filter(|c| {
                    !only_pinned
                        || pins.by_env.contains_key(&(
                            c.environment.as_str().to_owned(),
                            c.application.as_str().to_owned(),
                        ))
                })
                .map(|c| (c, config, source.clone())),
        );
    }
    let rendered: Vec<_> = jobs
        .par_iter()
        .map(|(contract, config, source)| {
            let dir = PathBuf::from("apps")
                .join(contract.environment.as_str())
                .join(contract.application.as_str());
            let digest = pins
                .get(contract.environment.as_str(), contract.application.as_str())
                .map(str::to_owned)
                .or_else(|| tree::pinned_digest(out, &dir));
            (
                source,
                crate::render_contract(contract, config, source, digest.as_deref()),
            )
        })
        .collect();
    let mut plan = Vec::new();
    let mut errors = Vec::new();
    for (source, result) in rendered {
        match result {
            Ok(files) => plan.extend(files.into_iter().map(|file| Planned {
                source: source.clone(),
                file,
            })),
            Err(e) => {
                errors.push(e.to_string());
                keep.insert(source.clone());
            }
        }
    }
    let outcome = if only_pinned {
        tree::apply_partial(out, &plan)?
    } else {
        tree::apply(out, &plan, &keep)?
    };
    Ok(Rendered { outcome, errors })
}

/// The contract path as written into headers: relative to its contracts repository root (the directory of the
/// platform config), so output does not depend on where the command ran.
#[must_use]
pub fn display_source(file: &FileResult) -> String {
    let path = file.source.path();
    let root = file
        .config
        .as_ref()
        .and_then(|c| c.path.as_ref())
        .and_then(|p| p.parent())
        .map(Path::to_path_buf);
    let rel = root
        .and_then(|r| {
            std::path::absolute(path)
                .ok()?
                .strip_prefix(std::path::absolute(r).ok()?)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf());
    rel.to_string_lossy().replace('\\', "/")
}
