//! A deterministic YAML writer for generated files.
//!
//! Key order is the order of the input (structs serialize in field order). Strings stay plain only when every YAML
//! 1.1 and 1.2 reader would read them back as the same string; anything that could turn into a boolean (`on`, `yes`,
//! `n`), a null, a number, a date or a merge key is double-quoted. Multi-line strings become literal blocks.

use serde_json::Value;

/// Serializes `value` as one YAML document (no `---`), ending in a newline.
#[must_use]
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(m, 0, &mut out),
        Value::Array(a) if !a.is_empty() => write_seq(a, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn write_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (k, v) in map {
        pad(out, indent);
        out.push_str(&string(k, indent));
        out.push(':');
        write_value_after_key(v, indent, out);
    }
}

fn write_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(m, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                // First key on the dash line, the rest aligned under it.
                let mut first = true;
                for (k, v) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        pad(out, indent + 2);
                    }
                    out.push_str(&string(k, indent + 2));
                    out.push(':');
                    write_value_after_key(v, indent + 2, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                write_seq(a, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, n: usize) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        left -= k;
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') {
        if let Some(block) = literal_block(s, indent) {
            return block;
        }
        return quoted(s);
    }
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        quoted(s)
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
}

/// `|` / `|-` literal block; `None` when the text cannot round-trip as one (leading spaces, trailing blank lines,
/// control characters).
fn literal_block(s: &str, indent: usize) -> Option<String> {
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(b) if !b.ends_with('\n') => (b, ""),
        Some(_) => return None,
        None => (s, "-"),
    };
    let ok = !body.starts_with(' ')
        && !body.starts_with('\t')
        && body
            .chars()
            .all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !body.lines().any(|l| l.ends_with(' '));
    if !ok {
        return None;
    }
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    Some(out)
}

const SPECIAL_WORDS: &[&str] = &[
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", "<<", "=", ".inf", "-.inf",
    "+.inf", ".nan",
];

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return false;
    }
    if first.is_ascii_digit()
        || (matches!(first, '-' | '+' | '.')
            && s[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.'))
    {
        return false; // numbers, dates, times, sexagesimals, versions: keep them strings
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !(first == '-' && s.len() > 1 && !s[1..].starts_with(' '))
    {
        return false;
    }
    if s.starts_with("- ") || s.starts_with("? ") || s.starts_with(": ") {
        return false;
    }
    if s.ends_with(' ') || s.ends_with(':') || s.starts_with(' ') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\t') {
        return false;
    }
    // `${{ ... }}` and other brace text is fine mid-string, but flow indicators are not allowed in keys of flow
    // context; we never write flow context, so only control characters remain.
    !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quotes_what_yaml_1_1_would_misread() {
        let v = json!({"a": "on", "b": "yes", "c": "N", "d": "2024-01-01", "e": "1.10", "f": "0x1F", "g": "1:20",
                       "h": "~", "i": "plain text", "j": "-x", "k": "- x", "l": "a: b", "m": "x #y", "n": "", "o": "8080"});
        insta::assert_snapshot!(to_yaml(&v), @r#"
        a: "on"
        b: "yes"
        c: "N"
        d: "2024-01-01"
        e: "1.10"
        f: "0x1F"
        g: "1:20"
        h: "~"
        i: plain text
        j: -x
        k: "- x"
        l: "a: b"
        m: "x #y"
        "n": ""
        o: "8080"
        "#);
    }

    #[test]
    fn nests_maps_and_lists() {
        let v = json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 8080}], "args": ["a", "b"]}], "empty": [], "none": {}}});
        insta::assert_snapshot!(to_yaml(&v), @r"
        spec:
          containers:
            - name: app
              ports:
                - containerPort: 8080
              args:
                - a
                - b
          empty: []
          none: {}
        ");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let v = json!({"run": "echo one\necho \"${{ env.X }}\"\n", "b": "no newline\nat end", "c": "  leading\n"});
        insta::assert_snapshot!(to_yaml(&v), @r#"
        run: |
          echo one
          echo "${{ env.X }}"
        b: |-
          no newline
          at end
        c: "  leading\n"
        "#);
    }
}
