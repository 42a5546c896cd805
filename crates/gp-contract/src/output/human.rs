//! Compiler-style output: `error[code]: message`, `--> file:line:col`, the source line with a caret, the fix.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use std::ops::Range;

use crate::check::Report;
use crate::diag::{Diagnostic, Related, Severity};
use crate::source::SourceFile;

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

/// A snippet spans at most this many lines; related locations further away get a snippet of their own.
const MAX_SNIPPET_LINES: usize = 20;
/// Longest source line shown whole, in characters; a longer one is shown as a window around the annotation.
const MAX_LINE_CHARS: usize = 160;
/// Characters shown before the annotation in such a window.
const CONTEXT_CHARS: usize = 40;

fn render_one(report: &Report, d: &Diagnostic, renderer: &Renderer) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let path = escape(&d.file.display().to_string());
    let title = level
        .clone()
        .primary_title(d.message.as_str())
        .id(d.code.as_str());
    let label = d.field.as_ref().map(|f| format!("field `{f}`"));
    let mut groups = Vec::new();
    let mut separate = Vec::new();
    let w;
    let main = match report.sources.get(&d.file) {
        Some(src) if !src.text().is_empty() => {
            let primary = d.span.start.offset..d.span.end.offset.max(d.span.start.offset);
            let (near, far): (Vec<&Related>, Vec<&Related>) = d
                .related
                .iter()
                .filter(|r| r.file == d.file)
                .partition(|r| {
                    let lines = [
                        primary.start,
                        primary.end,
                        r.span.start.offset,
                        r.span.end.offset,
                    ]
                    .map(|o| src.line_index(o));
                    lines.iter().max().unwrap_or(&0) - lines.iter().min().unwrap_or(&0)
                        < MAX_SNIPPET_LINES
                });
            separate.extend(far);
            let mut ranges = vec![primary];
            ranges.extend(near.iter().map(|r| r.span.start.offset..r.span.end.offset));
            w = Window::new(src, &ranges);
            let mut ann = AnnotationKind::Primary.span(w.ranges[0].clone());
            if let Some(l) = &label {
                ann = ann.label(l.as_str());
            }
            let mut snippet = Snippet::source(w.text.as_str())
                .path(path.as_str())
                .line_start(w.line_start)
                .fold(true)
                .annotation(ann);
            for (r, range) in near.iter().zip(&w.ranges[1..]) {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(range.clone())
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
    separate.extend(d.related.iter().filter(|r| r.file != d.file));
    let windows: Vec<(String, Window)> = separate
        .iter()
        .filter_map(|r| {
            let src = report.sources.get(&r.file)?;
            let w = Window::new(
                src,
                std::slice::from_ref(&(r.span.start.offset..r.span.end.offset)),
            );
            Some((escape(&r.file.display().to_string()), w))
        })
        .collect();
    for ((rpath, w), r) in windows.iter().zip(
        separate
            .iter()
            .filter(|r| report.sources.contains_key(&r.file)),
    ) {
        let snippet = Snippet::source(w.text.as_str())
            .path(rpath.as_str())
            .line_start(w.line_start)
            .fold(true)
            .annotation(
                AnnotationKind::Context
                    .span(w.ranges[0].clone())
                    .label(r.message.as_str()),
            );
        groups.push(
            Group::with_title(Level::NOTE.secondary_title(r.message.as_str())).element(snippet),
        );
    }
    renderer.render(&groups)
}

/// `text` with control characters escaped, for paths (a file name may hold a terminal escape).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        gp_cnb::push_escaped(&mut out, c);
    }
    out
}

/// The source lines a snippet shows: only the lines its annotations touch, each cut to a window of
/// [`MAX_LINE_CHARS`] around the annotation, control characters shown as their Unicode pictures (one character
/// each, so carets stay aligned). Built in time proportional to what is shown, not to the file.
struct Window {
    text: String,
    /// 1-based number of the first line.
    line_start: usize,
    /// The annotations' ranges, mapped into `text`.
    ranges: Vec<Range<usize>>,
}

impl Window {
    fn new(src: &SourceFile, ranges: &[Range<usize>]) -> Self {
        let text = src.text();
        let clamp = |o: usize| {
            let mut o = o.min(text.len());
            while !text.is_char_boundary(o) {
                o -= 1;
            }
            o
        };
        let points: Vec<usize> = ranges
            .iter()
            .flat_map(|r| [clamp(r.start), clamp(r.end.max(r.start))])
            .collect();
        // The end of a file that ends with a newline is shown after the last line's newline (as the whole-text
        // snippet did), not on an empty line of its own.
        let at_eof = |o: usize| o == text.len() && text.ends_with('\n');
        let line_of = |o: usize| {
            if at_eof(o) {
                src.line_count().saturating_sub(2)
            } else {
                src.line_index(o)
            }
        };
        let first = points.iter().map(|&o| line_of(o)).min().unwrap_or(0);
        let last = points
            .iter()
            .map(|&o| line_of(o))
            .max()
            .unwrap_or(0)
            .min(first + MAX_SNIPPET_LINES - 1);
        let mut out = String::new();
        let mut mapped = vec![None; points.len()];
        for line in first..=last {
            if line > first {
                out.push('\n');
            }
            let here: Vec<usize> = (0..points.len())
                .filter(|&i| !at_eof(points[i]) && src.line_index(points[i]) == line)
                .collect();
            push_line(&mut out, src, line, &points, &here, &mut mapped);
        }
        if points.iter().any(|&o| at_eof(o)) {
            out.push('\n');
        }
        let end = out.len();
        let ranges = mapped
            .chunks(2)
            .map(|c| {
                let a = c[0].unwrap_or(end);
                a..c.get(1).copied().flatten().unwrap_or(end).max(a)
            })
            .collect();
        Self {
            text: out,
            line_start: first + 1,
            ranges,
        }
    }
}

/// Appends line `line` of `src` to `out`, cut to a window around the first of its points (`here`, indices into
/// `points`), recording where each of those points lands in `mapped`.
fn push_line(
    out: &mut String,
    src: &SourceFile,
    line: usize,
    points: &[usize],
    here: &[usize],
    mapped: &mut [Option<usize>],
) {
    let text = src.text();
    let range = src.line_range(line);
    let content_end = if text[range.clone()].ends_with('\r') {
        range.end - 1
    } else {
        range.end
    };
    let anchor = here
        .iter()
        .map(|&i| points[i])
        .min()
        .unwrap_or(range.start)
        .clamp(range.start, content_end);
    let (keep_start, keep_end) = if content_end - range.start <= MAX_LINE_CHARS {
        (range.start, content_end)
    } else {
        let back = text[range.start..anchor]
            .char_indices()
            .rev()
            .take(CONTEXT_CHARS)
            .last()
            .map_or(anchor, |(i, _)| range.start + i);
        let end = text[back..content_end]
            .char_indices()
            .nth(MAX_LINE_CHARS)
            .map_or(content_end, |(i, _)| back + i);
        (back, end)
    };
    if keep_start > range.start {
        out.push('…');
    }
    let body_start = out.len();
    for (i, c) in text[keep_start..keep_end].char_indices() {
        for &p in here {
            if mapped[p].is_none() && points[p] <= keep_start + i {
                mapped[p] = Some(if points[p] < keep_start {
                    body_start
                } else {
                    out.len()
                });
            }
        }
        out.push(picture(c));
    }
    for &p in here {
        mapped[p].get_or_insert(out.len());
    }
    if keep_end < content_end {
        out.push('…');
    }
}

/// What a snippet shows for `c`: control characters as their Unicode control pictures (`␛` for ESC, `␀` for NUL),
/// other invisible or reordering characters as `�`; tabs are kept.
fn picture(c: char) -> char {
    match c {
        '\t' => c,
        '\0'..='\u{1f}' => char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        c if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
            '\u{fffd}'
        }
        c => c,
    }
}
