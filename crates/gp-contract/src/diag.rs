//! Diagnostics: what is wrong, where (file, line, column, field path), and how to fix it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::source::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

macro_rules! codes {
    ($($variant:ident => $name:literal, $summary:literal;)*) => {
        /// Stable rule identifiers, shown in every output format and used as SARIF rule ids.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name),* }
            }

            /// One sentence describing the rule.
            #[must_use]
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary),* }
            }
        }
    };
}

codes! {
    Io => "io", "The file or directory could not be read.";
    YamlSyntax => "yaml-syntax", "The file is not well-formed YAML.";
    DuplicateKey => "duplicate-key", "A mapping defines the same key twice.";
    UnsupportedYaml => "unsupported-yaml", "The YAML uses a feature contracts do not allow (tags, complex keys, alias bombs, deep nesting).";
    EmptyFile => "empty-file", "The file holds no contract.";
    WrongType => "wrong-type", "A value has the wrong type (for example a list where a mapping is expected).";
    MissingField => "missing-field", "A required field is absent.";
    UnknownField => "unknown-field", "A field is not part of the contract format.";
    NotApplicable => "not-applicable", "A field does not apply to the chosen variant (for example `builder` with `type: dockerfile`).";
    InvalidValue => "invalid-value", "A value does not have the required form.";
    ApiVersion => "api-version", "`apiVersion` is not `goldenpath.io/v1`.";
    Kind => "kind", "`kind` is not `AppDeploymentRequest`.";
    UnknownEnvironment => "unknown-environment", "The environment is not defined in the platform config.";
    UnknownBuilder => "unknown-builder", "The builder is not defined in the platform config.";
    PathMismatch => "path-mismatch", "The file's location disagrees with the contract's `environment` or `id`.";
    DuplicateId => "duplicate-id", "Two contracts in one environment share an `id`.";
    DuplicateApplication => "duplicate-application", "Two contracts in one environment share an `application`.";
    DuplicateHost => "duplicate-host", "Two contracts in one environment share an ingress host.";
    DuplicateBinding => "duplicate-binding", "Two bindings of one contract share a name.";
    DuplicateEnv => "duplicate-env", "Two build environment variables share a name.";
    ReservedEnv => "reserved-env", "A build environment variable uses a name the platform sets.";
    Quantity => "quantity", "A resource quantity does not parse or makes no sense for its resource.";
    Policy => "policy", "A value breaks the platform policy (replicas, cpu, memory, binding types).";
    IngressHost => "ingress-host", "The ingress host is missing, malformed or outside the environment's domain.";
    GitUrl => "git-url", "The git URL is not an https or ssh URL.";
    UnsafePath => "unsafe-path", "A build path is absolute or leaves the repository.";
    IgnoredField => "ignored-field", "A field is set but has no effect.";
    Config => "config", "The platform config `goldenpath.toml` is invalid.";
    TooManyProblems => "too-many-problems", "A file has more problems than are shown; the rest are counted.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A second location that explains a diagnostic (the first definition of a duplicate, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Related {
    pub file: PathBuf,
    pub span: Span,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub file: PathBuf,
    pub span: Span,
    /// Field path inside the document, e.g. `spec.runtime.resources.memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Related>,
}

impl Diagnostic {
    #[must_use]
    pub fn error(
        code: Code,
        file: impl Into<PathBuf>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Error,
            code,
            file: file.into(),
            span,
            field: None,
            message: sanitize(&message.into()),
            hint: None,
            related: Vec::new(),
        }
    }

    #[must_use]
    pub fn warning(
        code: Code,
        file: impl Into<PathBuf>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, file, span, message)
        }
    }

    #[must_use]
    pub fn field(mut self, field: impl fmt::Display) -> Self {
        let f = field.to_string();
        self.field = (!f.is_empty()).then(|| gp_cnb::excerpt(&f));
        self
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(sanitize(&hint.into()));
        self
    }

    #[must_use]
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint.map(|h| sanitize(&h)).or(self.hint);
        self
    }

    #[must_use]
    pub fn related(
        mut self,
        file: impl Into<PathBuf>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        self.related.push(Related {
            file: file.into(),
            span,
            message: sanitize(&message.into()),
        });
        self
    }

    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The longest message (or hint) a diagnostic keeps, in characters; a longer one is cut with `…`.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// A message as diagnostics carry it, whatever values from the file it quotes: each backticked value cut to
/// [`gp_cnb::MAX_EXCERPT_CHARS`] characters (with `…` and its length), control characters escaped everywhere but in
/// the prose's own line breaks (no terminal escapes, NULs or fake log lines from a hostile file), at most [`MAX_MESSAGE_CHARS`] in all.
#[must_use]
pub fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS * 4));
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&gp_cnb::excerpt(part));
        } else {
            // The prose around values may span lines (hints show examples); values are in backticks.
            for c in part.chars() {
                if c == '\n' {
                    out.push(c);
                } else {
                    gp_cnb::push_escaped(&mut out, c);
                }
            }
        }
        if out.len() > MAX_MESSAGE_CHARS * 4 {
            break;
        }
    }
    match out.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

/// A dotted field path into a document: `spec.bindings[1].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    #[must_use]
    pub fn root() -> Self {
        Self(String::new())
    }

    #[must_use]
    pub fn key(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with a display fallback for the document root.
    #[must_use]
    pub fn or_root(&self) -> &str {
        if self.0.is_empty() {
            "(document root)"
        } else {
            &self.0
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The closest candidate to `word` among `candidates`, if it is close enough to be a plausible typo.
#[must_use]
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_plausible_only() {
        assert_eq!(
            did_you_mean("enviroment", ["environment", "owner"]),
            Some("environment")
        );
        assert_eq!(did_you_mean("hostname", ["enabled", "host"]), Some("host"));
        assert_eq!(did_you_mean("zzz", ["enabled", "host"]), None);
    }

    #[test]
    fn messages_cut_and_escape_values() {
        let long = "x".repeat(100);
        assert_eq!(
            sanitize(&format!("`{long}` is not a name\u{1b}[31m")),
            format!(
                "`{}… (100 bytes in all)` is not a name\\u{{1b}}[31m",
                "x".repeat(80)
            )
        );
        assert_eq!(sanitize("`a\0b`"), "`a\\u{0}b`");
        let many = "`a` ".repeat(2000);
        let cut = sanitize(&many);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn field_paths_render() {
        let p = FieldPath::root()
            .key("spec")
            .key("bindings")
            .index(1)
            .key("name");
        assert_eq!(p.as_str(), "spec.bindings[1].name");
    }
}
