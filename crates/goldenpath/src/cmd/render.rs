//! `goldenpath contract render`: validate, then write the GitOps tree.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gp_contract::output;
use gp_render::tree::{self, Planned};
use rayon::prelude::*;

use super::contract::{RenderArgs, check_inputs, report_exit, use_color};
use super::exit;

/// Above this many changed files, only counts are printed (unless `--verbose`).
const LIST_LIMIT: usize = 200;

pub fn render(args: RenderArgs) -> ExitCode {
    // Before anything is read from the tree: `--out /` is refused outright.
    if let Err(e) = tree::check_out(&args.out) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    let report = match check_inputs(args.paths, args.config) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if report.error_count() + report.warning_count() > 0 {
        let text = output::render_human(&report, use_color(args.color));
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
    let mut pins = std::collections::BTreeMap::new();
    for p in &args.pins {
        let valid = p.split_once('=').filter(|(_, d)| {
            d.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        });
        let Some((app, digest)) = valid else {
            eprintln!("error: `--pin {p}`: write APPLICATION=sha256:<64 hex digits>");
            return ExitCode::from(exit::USAGE);
        };
        pins.insert(app.to_owned(), digest.to_owned());
    }
    let mut keep = BTreeSet::new();
    let mut jobs = Vec::new();
    for file in &report.files {
        let source = display_source(file);
        if file.has_errors() {
            keep.insert(source);
            continue;
        }
        let Some(config) = &file.config else { continue };
        jobs.extend(file.contracts().map(|c| (c, config, source.clone())));
    }
    // Contracts render independently: in parallel, collected in input order.
    let rendered: Vec<_> = jobs
        .par_iter()
        .map(|(contract, config, source)| {
            let dir = PathBuf::from("apps")
                .join(contract.environment.as_str())
                .join(contract.application.as_str());
            let digest = pins
                .get(contract.application.as_str())
                .cloned()
                .or_else(|| tree::pinned_digest(&args.out, &dir));
            (
                source,
                gp_render::render_contract(contract, config, source, digest.as_deref()),
            )
        })
        .collect();
    let mut plan = Vec::new();
    for (source, result) in rendered {
        match result {
            Ok(files) => plan.extend(files.into_iter().map(|file| Planned {
                source: source.clone(),
                file,
            })),
            Err(e) => {
                eprintln!("error: {e}");
                keep.insert(source.clone());
            }
        }
    }
    let outcome = match tree::apply(&args.out, &plan, &keep) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    // List each file for everyday changes; a whole-fleet render just gets the counts.
    if args.verbose || outcome.written.len() + outcome.pruned.len() <= LIST_LIMIT {
        for p in &outcome.written {
            eprintln!("  wrote   {}", p.display());
        }
        for p in &outcome.pruned {
            eprintln!("  pruned  {}", p.display());
        }
    }
    eprintln!(
        "rendered {} contract(s) into `{}`: {} written, {} unchanged, {} pruned{}",
        report.valid_contract_count(),
        args.out.display(),
        outcome.written.len(),
        outcome.unchanged.len(),
        outcome.pruned.len(),
        if outcome.kept.is_empty() {
            String::new()
        } else {
            format!(", {} kept from invalid contracts", outcome.kept.len())
        }
    );
    report_exit(&report)
}

/// The contract path as written into headers: relative to its contracts repository root (the directory of the
/// platform config), so output does not depend on where the command ran.
fn display_source(file: &gp_contract::FileResult) -> String {
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
