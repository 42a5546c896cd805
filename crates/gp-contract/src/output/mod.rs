//! Renders a [`Report`] for people (`human`) and machines (`json`, `github`, `sarif`).

mod human;
mod machine;

pub use human::render_human;
pub use machine::{render_github, render_json, render_sarif};

use crate::check::Report;

/// Output formats of `goldenpath contract validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Github,
    Sarif,
}

/// One-line summary: `checked 3 files (3 contracts): 2 valid, 1 invalid; 4 errors, 0 warnings`.
#[must_use]
pub fn summary(report: &Report) -> String {
    let files = report.files.len();
    let contracts = report.contract_count();
    let valid = report.valid_contract_count();
    let (errors, warnings) = (report.error_count(), report.warning_count());
    format!(
        "checked {files} file{} ({contracts} contract{}): {valid} valid, {} invalid; {errors} error{}, {warnings} warning{}",
        plural(files),
        plural(contracts),
        contracts - valid,
        plural(errors),
        plural(warnings)
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
