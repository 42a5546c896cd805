//! Spanned YAML -> typed contract, collecting every problem instead of stopping at the first.
//!
//! `Cx` holds the diagnostics and the span index; `Fields` walks one mapping and remembers which keys were read,
//! so unknown keys can be reported with a suggestion (or a hint for a well-known misplacement).

mod contract;
mod runtime;
mod spec;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

pub use contract::{Decoded, Facts, decode_document};

use crate::config::PlatformConfig;
use crate::diag::{Code, Diagnostic, FieldPath, did_you_mean};
use crate::ids::Invalid;
use crate::source::Span;
use crate::yaml::{Entry, Node, NodeKind, ScalarType};

/// Where each field of a document is: key and value spans by field path.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    keys: HashMap<String, Span>,
    values: HashMap<String, Span>,
}

impl SpanIndex {
    #[must_use]
    pub fn value(&self, path: &str) -> Option<Span> {
        self.values.get(path).copied()
    }

    #[must_use]
    pub fn key(&self, path: &str) -> Option<Span> {
        self.keys.get(path).copied()
    }

    /// The value span of `path`, or of its nearest recorded ancestor's key, or `fallback`.
    #[must_use]
    pub fn nearest(&self, path: &str, fallback: Span) -> Span {
        if let Some(s) = self.value(path) {
            return s;
        }
        let mut p = path;
        while let Some(i) = p.rfind(['.', '[']) {
            p = &p[..i];
            if let Some(s) = self.key(p) {
                return s;
            }
        }
        fallback
    }
}

#[derive(Debug)]
pub struct Cx<'a> {
    pub file: &'a Path,
    pub config: &'a PlatformConfig,
    pub diags: Vec<Diagnostic>,
    pub spans: SpanIndex,
}

#[derive(Debug)]
pub struct Fields<'n> {
    pub path: FieldPath,
    /// Where a missing field is reported: the key that holds this mapping (or the document start).
    pub at: Span,
    entries: &'n [Entry],
    used: Vec<bool>,
}

impl<'n> Fields<'n> {
    fn take(&mut self, key: &str) -> Option<&'n Entry> {
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.key.as_scalar().is_some_and(|s| s.text == key) {
                self.used[i] = true;
                found = found.or(Some(e));
            }
        }
        found
    }

    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.key.as_scalar().is_some_and(|s| s.text == key))
    }
}

impl<'a> Cx<'a> {
    #[must_use]
    pub fn new(file: &'a Path, config: &'a PlatformConfig) -> Self {
        Self {
            file,
            config,
            diags: Vec::new(),
            spans: SpanIndex::default(),
        }
    }

    pub fn error(
        &mut self,
        code: Code,
        span: Span,
        path: &FieldPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.diags.push(
            Diagnostic::error(code, self.file, span, message)
                .field(path.or_root())
                .maybe_hint(hint),
        );
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Opens a mapping; reports a type error otherwise.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: FieldPath,
        at: Span,
        example: &str,
    ) -> Option<Fields<'n>> {
        if let NodeKind::Map(entries) = &node.kind {
            return Some(Fields {
                path,
                at,
                entries,
                used: vec![false; entries.len()],
            });
        }
        let shown = path.or_root().to_owned();
        self.error(
            Code::WrongType,
            node.span,
            &path,
            format!("`{shown}` must be a mapping, found {}", node.describe()),
            Some(format!("write it as indented fields, e.g.\n{example}")),
        );
        None
    }

    /// Reports keys that were not read, with a suggestion from `known` or a placement hint from `hint`.
    pub fn finish(
        &mut self,
        f: &Fields<'_>,
        known: &[&str],
        hint: impl Fn(&str) -> Option<String>,
    ) {
        for (e, used) in f.entries.iter().zip(&f.used) {
            if *used {
                continue;
            }
            let Some(k) = e.key.as_scalar() else {
                continue; // reported by the YAML reader
            };
            let path = f.path.key(&k.text);
            let hint = hint(&k.text).or_else(|| {
                did_you_mean(&k.text, known.iter().copied()).map(|s| format!("did you mean `{s}`?"))
            });
            let hint = hint.or_else(|| Some(format!("allowed here: {}", list(known))));
            let msg = if f.path.as_str().is_empty() {
                format!("unknown top-level field `{}`", k.text)
            } else {
                format!("unknown field `{}` in `{}`", k.text, f.path)
            };
            self.error(Code::UnknownField, e.key.span, &path, msg, hint);
        }
    }

    /// A present, non-null field. Records its spans.
    pub fn opt<'n>(&mut self, f: &mut Fields<'n>, key: &str) -> Option<(&'n Node, FieldPath)> {
        let e = f.take(key)?;
        let path = f.path.key(key);
        self.spans.keys.insert(path.as_str().to_owned(), e.key.span);
        self.spans
            .values
            .insert(path.as_str().to_owned(), e.value.span);
        if e.value.is_null() {
            return None;
        }
        Some((&e.value, path))
    }

    /// A required field; reports it missing (with `hint`) when absent or null.
    pub fn req<'n>(
        &mut self,
        f: &mut Fields<'n>,
        key: &str,
        hint: &str,
    ) -> Option<(&'n Node, FieldPath)> {
        let present = f.has(key);
        let got = self.opt(f, key);
        if got.is_none() {
            let path = f.path.key(key);
            let at = if present {
                self.spans.key(path.as_str()).unwrap_or(f.at)
            } else {
                f.at
            };
            let msg = if present {
                format!("required field `{path}` is empty")
            } else {
                format!("missing required field `{path}`")
            };
            self.error(Code::MissingField, at, &path, msg, Some(hint.to_owned()));
        }
        got
    }

    pub fn string<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<&'n str> {
        match &node.kind {
            NodeKind::Scalar(s) if s.resolve() == ScalarType::Str => Some(&s.text),
            NodeKind::Scalar(s) => {
                let found = s.resolve().describe();
                let hint = format!("quote it if you mean the text: `\"{}\"`", s.text);
                self.error(
                    Code::WrongType,
                    node.span,
                    path,
                    format!("`{path}` must be a string, found {found} `{}`", s.text),
                    Some(hint),
                );
                None
            }
            _ => {
                let found = node.describe();
                self.error(
                    Code::WrongType,
                    node.span,
                    path,
                    format!("`{path}` must be a string, found {found}"),
                    Some("write a single value on the same line as the key".to_owned()),
                );
                None
            }
        }
    }

    pub fn parse<T: FromStr<Err = Invalid>>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        code: Code,
    ) -> Option<T> {
        let s = self.string(node, path)?;
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    code,
                    node.span,
                    path,
                    format!("`{path}`: {}", e.message),
                    e.hint,
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: &Node, path: &FieldPath) -> Option<bool> {
        if let Some(s) = node.as_scalar().filter(|s| s.resolve() == ScalarType::Bool) {
            return Some(s.text.eq_ignore_ascii_case("true"));
        }
        let text = node.as_scalar().map_or("", |s| s.text.as_str());
        let hint = match text.to_ascii_lowercase().as_str() {
            "yes" | "on" | "y" | "enabled" | "\"true\"" => {
                "write `true` (YAML 1.2 reads `yes`/`on` as text)"
            }
            "no" | "off" | "n" | "disabled" => "write `false` (YAML 1.2 reads `no`/`off` as text)",
            _ => "write `true` or `false` without quotes",
        };
        let found = node.describe();
        self.error(
            Code::WrongType,
            node.span,
            path,
            format!("`{path}` must be a boolean, found {found}"),
            Some(hint.to_owned()),
        );
        None
    }

    pub fn uint(&mut self, node: &Node, path: &FieldPath, max: u32) -> Option<u32> {
        let scalar = node.as_scalar();
        if let Some(s) = scalar.filter(|s| s.resolve() == ScalarType::Int) {
            if let Ok(v) = s.text.parse::<u32>()
                && v <= max
            {
                return Some(v);
            }
            self.error(
                Code::InvalidValue,
                node.span,
                path,
                format!("`{path}` must be between 0 and {max}, found `{}`", s.text),
                Some(format!("use a whole number from 0 to {max}")),
            );
            return None;
        }
        let hint = scalar.and_then(|s| {
            let t = s.text.trim();
            t.parse::<u32>()
                .ok()
                .map(|v| format!("write the number without quotes: `{v}`"))
        });
        let hint =
            hint.or_else(|| Some("write a whole number without quotes, e.g. `2`".to_owned()));
        let found = node.describe();
        self.error(
            Code::WrongType,
            node.span,
            path,
            format!("`{path}` must be a whole number, found {found}"),
            hint,
        );
        None
    }

    /// A value from a closed set of names, with a did-you-mean hint.
    pub fn one_of<T: Copy>(
        &mut self,
        node: &Node,
        path: &FieldPath,
        options: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(node, path)?;
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = did_you_mean(s, names.iter().copied()).map_or_else(
            || format!("use one of {}", list(&names)),
            |m| format!("did you mean `{m}`?"),
        );
        self.error(
            Code::InvalidValue,
            node.span,
            path,
            format!("`{path}` is `{s}`, which is not one of {}", list(&names)),
            Some(hint),
        );
        None
    }

    pub fn seq<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        example: &str,
    ) -> Option<&'n [Node]> {
        if let NodeKind::Seq(items) = &node.kind {
            return Some(items);
        }
        let found = node.describe();
        self.error(
            Code::WrongType,
            node.span,
            path,
            format!("`{path}` must be a list, found {found}"),
            Some(format!("write one item per line, e.g.\n{example}")),
        );
        None
    }
}

/// `a`, `b` and `c` as a backticked list.
pub(crate) fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("`{s}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
