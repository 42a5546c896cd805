//! Compiler-style output: `error[code]: message`, `--> file:line:col`, the source line with a caret, the fix.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::check::Report;
use crate::diag::{Diagnostic, Severity};

/// Renders every diagnostic (file order, then position) and the summary line.
#[must_use]
pub fn render_human(report: &Report, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for d in report.diagnostics() {
        out.push_str(&render_one(report, d, &renderer));
        out.push_str("\n\n");
    }
    out.push_str(&super::summary(report));
    out.push('\n');
    out
}

fn render_one(report: &Report, d: &Diagnostic, renderer: &Renderer) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let path = d.file.display().to_string();
    let title = level
        .clone()
        .primary_title(d.message.as_str())
        .id(d.code.as_str());
    let label = d.field.as_ref().map(|f| format!("field `{f}`"));
    let mut groups = Vec::new();
    let main = match report.sources.get(&d.file) {
        Some(src) if !src.text().is_empty() => {
            let range = d.span.start.offset..d.span.end.offset.max(d.span.start.offset);
            let mut ann = AnnotationKind::Primary.span(range);
            if let Some(l) = &label {
                ann = ann.label(l.as_str());
            }
            let mut snippet = Snippet::source(src.text())
                .path(path.as_str())
                .line_start(1)
                .fold(true)
                .annotation(ann);
            for r in d.related.iter().filter(|r| r.file == d.file) {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(r.span.start.offset..r.span.end.offset)
                        .label(r.message.as_str()),
                );
            }
            Group::with_title(title).element(snippet)
        }
        _ => {
            let origin = format!(
                "{path}:{}:{}",
                d.span.start.line.max(1),
                d.span.start.column.max(1)
            );
            Group::with_title(title).element(annotate_snippets::Origin::path(origin))
        }
    };
    let main = match &d.hint {
        Some(h) => main.element(Level::HELP.message(h.as_str())),
        None => main,
    };
    groups.push(main);
    for r in d.related.iter().filter(|r| r.file != d.file) {
        let rpath = r.file.display().to_string();
        if let Some(src) = report.sources.get(&r.file) {
            let snippet = Snippet::source(src.text())
                .path(rpath)
                .line_start(1)
                .fold(true)
                .annotation(
                    AnnotationKind::Context
                        .span(r.span.start.offset..r.span.end.offset)
                        .label(r.message.as_str()),
                );
            groups.push(
                Group::with_title(Level::NOTE.secondary_title(r.message.as_str())).element(snippet),
            );
        }
    }
    renderer.render(&groups)
}
