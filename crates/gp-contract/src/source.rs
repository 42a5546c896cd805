//! Source text with a line index, and positions/spans into it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a source file: 1-based line and column (in characters), and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
    #[serde(skip)]
    pub offset: usize,
}

/// A half-open range `[start, end)` in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    #[must_use]
    pub fn new(start: Pos, end: Pos) -> Self {
        Self { start, end }
    }

    /// A zero-width span at `pos`.
    #[must_use]
    pub fn point(pos: Pos) -> Self {
        Self {
            start: pos,
            end: pos,
        }
    }

    /// The smallest span that covers both.
    #[must_use]
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A file's text plus the byte offset of every line start, for position lookups.
///
/// Lookups cost O(log lines) on ASCII lines (a column is then a byte count) and O(line length) only on lines with
/// multi-byte characters, so that diagnostics on a file with one huge line stay linear.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
    /// Per line: whether it is all ASCII.
    ascii: Vec<bool>,
}

impl SourceFile {
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let ascii = line_starts
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let end = line_starts.get(i + 1).copied().unwrap_or(text.len());
                text.as_bytes()[start..end].is_ascii()
            })
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
            ascii,
        }
    }

    /// Byte range of line `idx` (0-based), without its `\n`.
    #[must_use]
    pub fn line_range(&self, idx: usize) -> std::ops::Range<usize> {
        let start = self
            .line_starts
            .get(idx)
            .copied()
            .unwrap_or(self.text.len());
        let end = self
            .line_starts
            .get(idx + 1)
            .map_or(self.text.len(), |next| next - 1);
        start..end.max(start)
    }

    /// Number of lines (a final line without `\n` counts; an empty text has one empty line).
    #[must_use]
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 0-based index of the line holding byte `offset`.
    #[must_use]
    pub fn line_index(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset).max(1) - 1
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Position from a 1-based line and 0-based character column (what YAML scanners report).
    #[must_use]
    pub fn pos_from_line_col0(&self, line: usize, col0: usize) -> Pos {
        let line = line.max(1);
        if line > self.line_starts.len() {
            return self.end_pos();
        }
        let range = self.line_range(line - 1);
        let start = range.start;
        let line_text = &self.text[range];
        let offset = start
            + if self.ascii[line - 1] {
                col0.min(line_text.len())
            } else {
                line_text
                    .char_indices()
                    .nth(col0)
                    .map_or(line_text.len(), |(i, _)| i)
            };
        Pos {
            line: to_u32(line),
            column: to_u32(col0 + 1),
            offset,
        }
    }

    /// Position of a byte offset (clamped to the text, snapped back to a char boundary).
    #[must_use]
    pub fn pos_from_offset(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_idx = self.line_index(offset);
        let start = self.line_starts[line_idx];
        let column = if self.ascii[line_idx] {
            offset - start
        } else {
            self.text[start..offset].chars().count()
        } + 1;
        Pos {
            line: to_u32(line_idx + 1),
            column: to_u32(column),
            offset,
        }
    }

    /// Span of a byte range.
    #[must_use]
    pub fn span_from_range(&self, range: std::ops::Range<usize>) -> Span {
        Span::new(
            self.pos_from_offset(range.start),
            self.pos_from_offset(range.end),
        )
    }

    #[must_use]
    pub fn end_pos(&self) -> Pos {
        self.pos_from_offset(self.text.len())
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_handle_multibyte_text() {
        let f = SourceFile::new("x.yaml", "a: 1\nb: \"é\" # ü\nc: 3".to_owned());
        let p = f.pos_from_line_col0(2, 4);
        assert_eq!((p.line, p.column, p.offset), (2, 5, 9));
        let q = f.pos_from_line_col0(2, 7);
        assert_eq!(&f.text()[q.offset..=q.offset], "#");
        assert_eq!(f.pos_from_offset(q.offset), q);
        let end = f.end_pos();
        assert_eq!((end.line, end.column), (3, 5));
    }
}
