//! Machine formats: JSON (our own, stable), GitHub workflow commands, SARIF 2.1.0 for code scanning.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::check::Report;
use crate::diag::{Code, Diagnostic, Severity};

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn end_column(d: &Diagnostic) -> u32 {
    if d.span.end.line == d.span.start.line {
        d.span.end.column.max(d.span.start.column + 1)
    } else {
        d.span.end.column.max(1)
    }
}

/// `{"summary": {...}, "diagnostics": [...]}` with 1-based lines and columns.
#[must_use]
pub fn render_json(report: &Report) -> String {
    let diagnostics: Vec<Value> = report
        .diagnostics()
        .map(|d| {
            json!({
                "severity": d.severity,
                "code": d.code,
                "file": path_str(&d.file),
                "line": d.span.start.line.max(1),
                "column": d.span.start.column.max(1),
                "endLine": d.span.end.line.max(d.span.start.line).max(1),
                "endColumn": end_column(d),
                "field": d.field,
                "message": d.message,
                "hint": d.hint,
                "related": d.related.iter().map(|r| json!({
                    "file": path_str(&r.file), "line": r.span.start.line, "column": r.span.start.column, "message": r.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({
        "summary": {
            "files": report.files.len(),
            "contracts": report.contract_count(),
            "valid": report.valid_contract_count(),
            "errors": report.error_count(),
            "warnings": report.warning_count(),
        },
        "diagnostics": diagnostics,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// Workflow-command data: `%`, CR and LF percent-encoded (GitHub decodes them), other control characters escaped.
fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => gp_cnb::push_escaped(&mut out, c),
        }
    }
    out
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands (`::error file=...,line=...::message`): annotations on the pull request.
#[must_use]
pub fn render_github(report: &Report) -> String {
    let mut out = String::new();
    for d in report.diagnostics() {
        let cmd = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut msg = d.message.clone();
        if let Some(f) = &d.field {
            msg = format!("{msg} (field `{f}`)");
        }
        if let Some(h) = &d.hint {
            msg = format!("{msg}\nhelp: {h}");
        }
        let _ = writeln!(
            out,
            "::{cmd} file={},line={},col={},endLine={},endColumn={},title={}::{}",
            escape_property(&path_str(&d.file)),
            d.span.start.line.max(1),
            d.span.start.column.max(1),
            d.span.end.line.max(d.span.start.line).max(1),
            end_column(d),
            escape_property(&format!("goldenpath {}", d.code)),
            escape_data(&msg)
        );
    }
    out.push_str(&super::summary(report));
    out.push('\n');
    out
}

/// SARIF 2.1.0 log with one run, every rule described, results with regions.
#[must_use]
pub fn render_sarif(report: &Report) -> String {
    let rules: Vec<Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.as_str(),
                "name": c.as_str(),
                "shortDescription": {"text": c.summary()},
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .diagnostics()
        .map(|d| {
            let index = Code::ALL.iter().position(|c| *c == d.code).unwrap_or(0);
            let mut text = d.message.clone();
            if let Some(h) = &d.hint {
                text = format!("{text}\nhelp: {h}");
            }
            let region = json!({
                "startLine": d.span.start.line.max(1),
                "startColumn": d.span.start.column.max(1),
                "endLine": d.span.end.line.max(d.span.start.line).max(1),
                "endColumn": end_column(d),
            });
            let related: Vec<Value> = d
                .related
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({
                        "id": i,
                        "message": {"text": r.message},
                        "physicalLocation": {
                            "artifactLocation": {"uri": path_str(&r.file)},
                            "region": {"startLine": r.span.start.line.max(1), "startColumn": r.span.start.column.max(1)},
                        },
                    })
                })
                .collect();
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": index,
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": path_str(&d.file)}, "region": region},
                    "logicalLocations": d.field.as_ref().map(|f| vec![json!({"fullyQualifiedName": f, "kind": "member"})]).unwrap_or_default(),
                }],
            });
            if !related.is_empty() {
                result["relatedLocations"] = Value::Array(related);
            }
            result
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "goldenpath",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/goldenpath-io/goldenpath",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
