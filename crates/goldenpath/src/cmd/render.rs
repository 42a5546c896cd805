//! `goldenpath contract render`: validate, then write the GitOps tree.

use std::io::Write;
use std::process::ExitCode;

use gp_contract::output;
use gp_render::contracts::{Pins, render_report};
use gp_render::tree;

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
    let mut pins = Pins::default();
    for p in &args.pins {
        let valid = p.split_once('=').filter(|(_, d)| {
            d.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        });
        let Some((app, digest)) = valid else {
            eprintln!("error: `--pin {p}`: write APPLICATION=sha256:<64 hex digits>");
            return ExitCode::from(exit::USAGE);
        };
        pins.app(app, digest);
    }
    let outcome = match render_report(&report, &args.out, &pins) {
        Ok(r) => {
            for e in &r.errors {
                eprintln!("error: {e}");
            }
            r.outcome
        }
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
