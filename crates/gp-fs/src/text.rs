//! Untrusted text in messages: short, escaped excerpts, so that nothing a hostile file, image or registry holds can
//! flood a log, drive a terminal (escape sequences, bidirectional overrides) or leak more than a few characters.

use std::path::Path;

/// How many characters of a value from an input file an error message shows.
pub const MAX_EXCERPT_CHARS: usize = 80;

/// A value from an input file as error messages may show it: control characters escaped (`\u{1b}`, `\0`, `\n`:
/// a hostile file cannot drive the terminal or the log), at most [`MAX_EXCERPT_CHARS`] characters, and when cut,
/// `…` and the value's total length in bytes.
#[must_use]
pub fn excerpt(value: &str) -> String {
    excerpt_within(value, MAX_EXCERPT_CHARS)
}

/// [`excerpt`] with another length, for text meant to be read whole when it is short (a server's error message).
#[must_use]
pub fn excerpt_within(value: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (shown, c) in value.chars().enumerate() {
        if shown == max_chars {
            use std::fmt::Write as _;
            let _ = write!(out, "… ({} bytes in all)", value.len());
            return out;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// How many characters of one line of a parser's message (which quotes the offending source line) are kept.
pub const MAX_MESSAGE_LINE_CHARS: usize = 200;

/// `text` with control characters escaped in every line and every line cut to `max` characters (`…` marks a cut):
/// for parser messages that quote a line of a hostile file.
#[must_use]
pub fn clip_lines(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(64 * 1024));
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (i, c) in line.chars().enumerate() {
            if i == max {
                out.push('…');
                break;
            }
            push_escaped(&mut out, c);
        }
    }
    out
}

/// Appends `c`, escaped when it is a control character (or a bidirectional override, which reorders the line).
pub fn push_escaped(out: &mut String, c: char) {
    if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// [`excerpt`] of a path.
#[must_use]
pub fn excerpt_path(path: &Path) -> String {
    excerpt(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("a\u{1b}[2J\0"), "a\\u{1b}[2J\\u{0}");
        let long = "é".repeat(100);
        assert_eq!(
            excerpt(&long),
            format!("{}… (200 bytes in all)", "é".repeat(MAX_EXCERPT_CHARS))
        );
        assert_eq!(clip_lines("ab\ncd\u{7}", 1), "a…\nc…");
        assert_eq!(clip_lines("ab\ncd\u{7}", 9), "ab\ncd\\u{7}");
    }
}
