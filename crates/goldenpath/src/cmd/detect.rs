//! `goldenpath detect`: preflight. What the built-in buildpacks will make of an app, and every error and warning
//! the build would hit — in milliseconds, without a builder, with the buildpacks' own detection code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gp_buildpacks::{Report, Severity};

use super::exit;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The app's source directory.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &DetectArgs) -> ExitCode {
    if !args.path.is_dir() {
        eprintln!("error: `{}` is not a directory", args.path.display());
        return ExitCode::from(exit::USAGE);
    }
    let report = gp_buildpacks::detect(&args.path);
    let code = if report.failed() {
        exit::INVALID
    } else {
        exit::OK
    };
    let text = if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(t) => t + "\n",
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(exit::USAGE);
            }
        }
    } else {
        human(&report)
    };
    let written = super::write_stdout(&text);
    if written == ExitCode::SUCCESS {
        ExitCode::from(code)
    } else {
        written
    }
}

fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let name = r
        .path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| r.path.display().to_string());
    let lang = r.language.map_or("unknown".to_owned(), |l| l.to_string());
    let _ = writeln!(out, "{name}: {lang}");
    let row = |out: &mut String, key: &str, value: String| {
        let _ = writeln!(out, "  {key:<16} {value}");
    };
    if let Some(p) = &r.package_manager {
        row(
            &mut out,
            "package manager",
            format!("{} ({})", p.value, p.source),
        );
    }
    if !r.dependencies.is_empty() {
        row(&mut out, "dependencies", r.dependencies.join(", "));
    }
    if r.language.is_some() {
        row(
            &mut out,
            "runtime",
            r.runtime.as_ref().map_or_else(
                || "no version requested (the buildpack's default)".to_owned(),
                |v| format!("{} ({})", v.value, v.source),
            ),
        );
    }
    if let Some(b) = &r.build {
        row(&mut out, "build", format!("{} ({})", b.value, b.source));
    }
    if let Some(s) = &r.start {
        row(&mut out, "start", format!("{} ({})", s.value, s.source));
    }
    if !r.processes.is_empty() {
        let kinds: Vec<&str> = r.processes.iter().map(|(k, _)| k.as_str()).collect();
        row(
            &mut out,
            "processes",
            format!("{} (Procfile)", kinds.join(", ")),
        );
    }
    for f in &r.findings {
        let _ = writeln!(out, "{f}");
    }
    let errors = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = r.findings.len() - errors;
    let _ = if errors > 0 {
        writeln!(
            out,
            "the build would fail: {errors} error(s), {warnings} warning(s)"
        )
    } else {
        writeln!(
            out,
            "ok: the build has what it needs ({warnings} warning(s))"
        )
    };
    out
}
