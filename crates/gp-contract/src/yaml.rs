//! A small YAML tree with source spans, built from `saphyr-parser` events.
//!
//! We keep mappings as ordered entry lists (so duplicate keys can be reported, not silently merged), resolve plain
//! scalars by the YAML 1.2 core schema, expand aliases with a hard budget, and never panic on any input.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use crate::source::{SourceFile, Span};

/// Upper bound on nodes produced by alias expansion (defends against "billion laughs" documents).
const ALIAS_NODE_BUDGET: usize = 10_000;
/// Upper bound on nesting depth (defends against stack exhaustion in later recursive walks).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// Quoted, block or `!!str`-tagged scalars are always strings; plain ones are resolved by the core schema.
    pub plain: bool,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

impl ScalarType {
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            ScalarType::Null => "null",
            ScalarType::Bool => "a boolean",
            ScalarType::Int => "an integer",
            ScalarType::Float => "a number",
            ScalarType::Str => "a string",
        }
    }
}

impl Scalar {
    #[must_use]
    pub fn resolve(&self) -> ScalarType {
        if !self.plain {
            return ScalarType::Str;
        }
        resolve_plain(&self.text)
    }
}

impl Node {
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(s) => s.resolve().describe(),
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    #[must_use]
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    #[must_use]
    pub fn is_null(&self) -> bool {
        self.as_scalar()
            .is_some_and(|s| s.resolve() == ScalarType::Null)
    }
}

fn resolve_plain(t: &str) -> ScalarType {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return ScalarType::Int;
    }
    if let Some(h) = t.strip_prefix("0x")
        && !h.is_empty()
        && h.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return ScalarType::Int;
    }
    if let Some(o) = t.strip_prefix("0o")
        && !o.is_empty()
        && o.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return ScalarType::Int;
    }
    if is_core_float(unsigned) {
        return ScalarType::Float;
    }
    ScalarType::Str
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` without the sign.
fn is_core_float(t: &str) -> bool {
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
                && !(a.is_empty() && b.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exp_ok
}

/// A problem found while reading YAML (before any contract rule runs).
#[derive(Debug, Clone, PartialEq)]
pub enum YamlIssue {
    Syntax {
        message: String,
        span: Span,
    },
    DuplicateKey {
        key: String,
        path: String,
        span: Span,
        first: Span,
    },
    NonScalarKey {
        path: String,
        span: Span,
    },
    UnsupportedTag {
        tag: String,
        path: String,
        span: Span,
    },
    UnknownAlias {
        span: Span,
    },
    AliasBudgetExceeded {
        span: Span,
    },
    TooDeep {
        span: Span,
    },
}

/// One document of a (possibly multi-document) YAML stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based position of the document in the file, counting empty ones.
    pub index: usize,
    pub root: Node,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Non-empty documents only.
    pub documents: Vec<Document>,
    pub issues: Vec<YamlIssue>,
}

enum Frame {
    Seq {
        path: String,
        start: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        path: String,
        start: Span,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

struct Builder<'s> {
    src: &'s SourceFile,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    stream: Stream,
    doc_index: usize,
    root: Option<Node>,
}

/// Parse every document in `src`. Syntax errors stop the stream at the error (documents before it are kept).
#[must_use]
pub fn parse(src: &SourceFile) -> Stream {
    let mut b = Builder {
        src,
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        stream: Stream::default(),
        doc_index: 0,
        root: None,
    };
    for item in Parser::new_from_str(src.text()) {
        match item {
            Ok((event, span)) => {
                if !b.event(event, span) {
                    break;
                }
            }
            Err(e) => {
                let m = e.marker();
                let pos = src.pos_from_line_col0(m.line(), m.col());
                b.stream.issues.push(YamlIssue::Syntax {
                    message: e.info().to_owned(),
                    span: Span::point(pos),
                });
                break;
            }
        }
    }
    b.stream
}

impl Builder<'_> {
    fn span(&self, s: YSpan) -> Span {
        Span::new(
            self.src.pos_from_line_col0(s.start.line(), s.start.col()),
            self.src.pos_from_line_col0(s.end.line(), s.end.col()),
        )
    }

    /// Returns false when parsing must stop.
    fn event(&mut self, event: Event<'_>, ys: YSpan) -> bool {
        let span = self.span(ys);
        match event {
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => {
                if let Some(root) = self.root.take()
                    && !root.is_null()
                {
                    self.stream.documents.push(Document {
                        index: self.doc_index,
                        root,
                    });
                }
                self.doc_index += 1;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = self.scalar(
                    text.into_owned(),
                    style,
                    tag.map(|t| (t.handle.clone(), t.suffix.clone())),
                    span,
                );
                return self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                if !self.open(tag.map(|t| format!("{}{}", t.handle, t.suffix)), span) {
                    return false;
                }
                let path = self.child_path();
                self.stack.push(Frame::Seq {
                    path,
                    start: span,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                if !self.open(tag.map(|t| format!("{}{}", t.handle, t.suffix)), span) {
                    return false;
                }
                let path = self.child_path();
                self.stack.push(Frame::Map {
                    path,
                    start: span,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    start,
                    anchor,
                    items,
                    ..
                }) = self.stack.pop()
                {
                    let end = items.last().map_or(start, |n| n.span);
                    let node = Node {
                        span: start.join(end),
                        kind: NodeKind::Seq(items),
                    };
                    return self.finish(node, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    path,
                    start,
                    anchor,
                    entries,
                    ..
                }) = self.stack.pop()
                {
                    self.check_duplicates(&path, &entries);
                    let end = entries.last().map_or(start, |e| e.value.span);
                    let node = Node {
                        span: start.join(end),
                        kind: NodeKind::Map(entries),
                    };
                    return self.finish(node, anchor);
                }
            }
            Event::Alias(id) => return self.alias(id, span),
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        true
    }

    /// Expands an alias within the node budget; false when parsing must stop.
    fn alias(&mut self, id: usize, span: Span) -> bool {
        let Some(node) = self.anchors.get(&id).cloned() else {
            self.stream.issues.push(YamlIssue::UnknownAlias { span });
            return false;
        };
        self.alias_nodes += count_nodes(&node);
        if self.alias_nodes > ALIAS_NODE_BUDGET {
            self.stream
                .issues
                .push(YamlIssue::AliasBudgetExceeded { span });
            return false;
        }
        self.finish(Node { span, ..node }, 0)
    }

    fn scalar(
        &mut self,
        text: String,
        style: ScalarStyle,
        tag: Option<(String, String)>,
        span: Span,
    ) -> Node {
        let mut plain = matches!(style, ScalarStyle::Plain);
        if let Some((handle, suffix)) = tag {
            if suffix == "str" && (handle == "!!" || handle == "tag:yaml.org,2002:") {
                plain = false;
            } else {
                let path = self.child_path();
                self.stream.issues.push(YamlIssue::UnsupportedTag {
                    tag: format!("{handle}{suffix}"),
                    path,
                    span,
                });
            }
        }
        Node {
            span,
            kind: NodeKind::Scalar(Scalar { text, plain }),
        }
    }

    /// Checks before a collection opens; false when parsing must stop.
    fn open(&mut self, tag: Option<String>, span: Span) -> bool {
        if let Some(tag) = tag {
            let path = self.child_path();
            self.stream
                .issues
                .push(YamlIssue::UnsupportedTag { tag, path, span });
        }
        if self.stack.len() >= MAX_DEPTH {
            self.stream.issues.push(YamlIssue::TooDeep { span });
            return false;
        }
        true
    }

    /// The field path of the node that starts now.
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map { path, key, .. }) => match key.as_ref().and_then(Node::as_scalar) {
                Some(k) => join_key(path, &k.text),
                None => path.clone(),
            },
        }
    }

    fn finish(&mut self, node: Node, anchor: usize) -> bool {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    if !matches!(node.kind, NodeKind::Scalar(_)) {
                        let path = self.child_path();
                        self.stream.issues.push(YamlIssue::NonScalarKey {
                            path,
                            span: node.span,
                        });
                    }
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(node);
                    }
                }
                Some(k) => entries.push(Entry {
                    key: k,
                    value: node,
                }),
            },
        }
        true
    }

    fn check_duplicates(&mut self, path: &str, entries: &[Entry]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for e in entries {
            let Some(k) = e.key.as_scalar() else { continue };
            if let Some(first) = seen.get(k.text.as_str()) {
                self.stream.issues.push(YamlIssue::DuplicateKey {
                    key: k.text.clone(),
                    path: join_key(path, &k.text),
                    span: e.key.span,
                    first: *first,
                });
            } else {
                seen.insert(&k.text, e.key.span);
            }
        }
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| count_nodes(&e.key) + count_nodes(&e.value))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn parse_str(s: &str) -> Stream {
        parse(&SourceFile::new("t.yaml", s.to_owned()))
    }

    #[test]
    fn builds_tree_with_spans() {
        let s = parse_str("a: 1\nb:\n  - x\n  - 'y'\n");
        assert!(s.issues.is_empty(), "{:?}", s.issues);
        let NodeKind::Map(entries) = &s.documents[0].root.kind else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
        let b = &entries[1];
        assert_eq!((b.key.span.start.line, b.key.span.start.column), (2, 1));
        let NodeKind::Seq(items) = &b.value.kind else {
            panic!()
        };
        assert_eq!(
            (items[1].span.start.line, items[1].span.start.column),
            (4, 5)
        );
        assert!(!items[1].as_scalar().unwrap().plain);
    }

    #[test]
    fn reports_duplicate_keys_with_both_positions() {
        let s = parse_str("a: 1\nb: 2\na: 3\n");
        let [
            YamlIssue::DuplicateKey {
                key, span, first, ..
            },
        ] = s.issues.as_slice()
        else {
            panic!("{:?}", s.issues)
        };
        assert_eq!(key, "a");
        assert_eq!((span.start.line, first.start.line), (3, 1));
    }

    #[test]
    fn resolves_core_schema() {
        for (t, ty) in [
            ("", ScalarType::Null),
            ("~", ScalarType::Null),
            ("true", ScalarType::Bool),
            ("yes", ScalarType::Str),
            ("on", ScalarType::Str),
            ("12", ScalarType::Int),
            ("-3", ScalarType::Int),
            ("0x1F", ScalarType::Int),
            ("1.5", ScalarType::Float),
            ("1e3", ScalarType::Float),
            (".5", ScalarType::Float),
            ("512Mi", ScalarType::Str),
            ("250m", ScalarType::Str),
            ("2024-01-01", ScalarType::Str),
            (".", ScalarType::Str),
        ] {
            assert_eq!(resolve_plain(t), ty, "{t:?}");
        }
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let s = parse_str("---\na: 1\n---\n---\nb: 2\n");
        assert_eq!(s.documents.len(), 2);
        assert_eq!(s.documents[1].index, 2);
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            let _ = writeln!(
                y,
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
            );
        }
        let s = parse_str(&y);
        assert!(
            s.issues
                .iter()
                .any(|i| matches!(i, YamlIssue::AliasBudgetExceeded { .. }))
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let s = parse_str("a: 1\n b: 2\n");
        let [YamlIssue::Syntax { span, .. }] = s.issues.as_slice() else {
            panic!("{:?}", s.issues)
        };
        assert_eq!(span.start.line, 2);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let y = "[".repeat(200);
        let s = parse_str(&y);
        assert!(
            s.issues
                .iter()
                .any(|i| matches!(i, YamlIssue::TooDeep { .. }))
        );
    }
}
