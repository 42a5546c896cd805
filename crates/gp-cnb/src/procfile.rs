//! `Procfile`: `<type>: <command>` lines, as apps without a buildpack-provided process declare them.
//!
//! Rules: a leading byte-order mark, blank lines and lines starting with `#` are skipped; surrounding whitespace and a
//! trailing `\r` are ignored; the type follows the CNB process-type rules; a type may appear once;
//! the command is everything after the first `:` (trimmed) and must not be empty.

use std::fmt;
use std::str::FromStr;

use crate::ids::{IdError, ProcessType};
use crate::launch::Process;

/// Why a `Procfile` did not parse. Lines are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error(
        "Procfile line {line}: holds a NUL byte; a Procfile is text with one `<type>: <command>` per line"
    )]
    Nul { line: usize },
    /// `text` is an escaped, shortened excerpt of the line.
    #[error("Procfile line {line}: expected `<type>: <command>`, found `{text}`")]
    MissingColon { line: usize, text: String },
    #[error("Procfile line {line}: {source}")]
    InvalidType {
        line: usize,
        #[source]
        source: IdError,
    },
    #[error("Procfile line {line}: process `{kind}` has an empty command")]
    EmptyCommand { line: usize, kind: ProcessType },
    #[error(
        "Procfile line {line}: process `{kind}` is already declared on line {first}; remove one of them"
    )]
    Duplicate {
        line: usize,
        first: usize,
        kind: ProcessType,
    },
}

/// One declared process and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcfileEntry {
    pub kind: ProcessType,
    pub command: String,
    pub line: usize,
}

/// A parsed `Procfile`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procfile {
    pub entries: Vec<ProcfileEntry>,
}

impl Procfile {
    pub fn parse(text: &str) -> Result<Self, ProcfileError> {
        let mut entries: Vec<ProcfileEntry> = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.contains('\0') {
                return Err(ProcfileError::Nul { line });
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((kind, command)) = trimmed.split_once(':') else {
                return Err(ProcfileError::MissingColon {
                    line,
                    text: crate::excerpt(trimmed),
                });
            };
            let kind: ProcessType = kind
                .trim()
                .parse()
                .map_err(|source| ProcfileError::InvalidType { line, source })?;
            let command = command.trim();
            if command.is_empty() {
                return Err(ProcfileError::EmptyCommand { line, kind });
            }
            if let Some(first) = entries.iter().find(|e| e.kind == kind) {
                return Err(ProcfileError::Duplicate {
                    line,
                    first: first.line,
                    kind,
                });
            }
            entries.push(ProcfileEntry {
                kind,
                command: command.to_owned(),
                line,
            });
        }
        Ok(Self { entries })
    }

    /// The command of process `kind`, if declared.
    #[must_use]
    pub fn get(&self, kind: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.command.as_str())
    }

    /// Launch processes running each command through `shell` (e.g. `["bash", "-c"]`), since
    /// Procfile commands are shell command lines. `web` is the default process; a lone process is
    /// the default too.
    #[must_use]
    pub fn to_processes(&self, shell: &[&str]) -> Vec<Process> {
        let default_kind = if self.entries.len() == 1 {
            self.entries.first().map(|e| e.kind.as_str())
        } else {
            self.get("web").map(|_| "web")
        };
        self.entries
            .iter()
            .map(|e| {
                let argv = shell
                    .iter()
                    .map(|s| (*s).to_owned())
                    .chain([e.command.clone()]);
                let mut process = Process::new(e.kind.clone(), argv);
                process.default = Some(e.kind.as_str()) == default_kind;
                process
            })
            .collect()
    }
}

impl FromStr for Procfile {
    type Err = ProcfileError;
    fn from_str(text: &str) -> Result<Self, ProcfileError> {
        Self::parse(text)
    }
}

impl fmt::Display for Procfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{}: {}", entry.kind, entry.command)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::ProcessCommand;

    const PROCFILE: &str = "# processes\r\n\
        web: bundle exec puma -p ${PORT:-5000}\r\n\
        \r\n\
        worker:bundle exec sidekiq -q default\n\
          release: bin/rails db:migrate  \n";

    #[test]
    fn nul_bytes_and_long_lines_are_reported_shortly() {
        assert_eq!(
            Procfile::parse("web: a\nworker: b\0c\n")
                .unwrap_err()
                .to_string(),
            "Procfile line 2: holds a NUL byte; a Procfile is text with one `<type>: <command>` per line"
        );
        let long = format!("\u{1b}]0;{}", "x".repeat(10_000));
        assert_eq!(
            Procfile::parse(&long).unwrap_err().to_string(),
            format!(
                "Procfile line 1: expected `<type>: <command>`, found `\\u{{1b}}]0;{}… (10004 bytes in all)`",
                "x".repeat(76)
            )
        );
    }

    #[test]
    fn parses_and_round_trips() {
        let procfile = Procfile::parse(PROCFILE).unwrap();
        assert_eq!(procfile.entries.len(), 3);
        assert_eq!(
            procfile.get("web"),
            Some("bundle exec puma -p ${PORT:-5000}")
        );
        assert_eq!(
            procfile.get("worker"),
            Some("bundle exec sidekiq -q default")
        );
        assert_eq!(procfile.get("release"), Some("bin/rails db:migrate"));
        assert_eq!(procfile.entries[2].line, 5);
        let text = procfile.to_string();
        insta::assert_snapshot!(text);
        let again = Procfile::parse(&text).unwrap();
        assert_eq!(
            again
                .entries
                .iter()
                .map(|e| (&e.kind, &e.command))
                .collect::<Vec<_>>(),
            procfile
                .entries
                .iter()
                .map(|e| (&e.kind, &e.command))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn errors_have_line_numbers() {
        let err = |t: &str| Procfile::parse(t).unwrap_err().to_string();
        assert_eq!(
            err("web: ok\nnot a process line\n"),
            "Procfile line 2: expected `<type>: <command>`, found `not a process line`"
        );
        assert_eq!(
            err("\n\nweb:   \n"),
            "Procfile line 3: process `web` has an empty command"
        );
        assert_eq!(
            err("web: a\n# c\nweb: b\n"),
            "Procfile line 3: process `web` is already declared on line 1; remove one of them"
        );
        assert_eq!(
            err("my worker: run\n"),
            "Procfile line 1: invalid process type `my worker`: character ` ` is not allowed (allowed: letters, digits, `.`, `_` and `-`)"
        );
        assert_eq!(
            err(": run\n"),
            "Procfile line 1: process type must not be empty"
        );
        assert!(Procfile::parse("").unwrap().entries.is_empty());
        let bom = Procfile::parse("\u{feff}web: run\n").unwrap();
        assert_eq!(
            bom.get("web"),
            Some("run"),
            "a leading byte-order mark is ignored"
        );
    }

    #[test]
    fn processes() {
        let procfile = Procfile::parse(PROCFILE).unwrap();
        let processes = procfile.to_processes(&["bash", "-c"]);
        assert!(processes[0].default);
        assert!(!processes[1].default);
        assert_eq!(
            processes[1].command,
            ProcessCommand::Argv(vec![
                "bash".into(),
                "-c".into(),
                "bundle exec sidekiq -q default".into()
            ])
        );
        let single = Procfile::parse("worker: run\n")
            .unwrap()
            .to_processes(&["sh", "-c"]);
        assert!(single[0].default);
        let no_web = Procfile::parse("a: x\nb: y\n")
            .unwrap()
            .to_processes(&["sh", "-c"]);
        assert!(no_web.iter().all(|p| !p.default));
    }
}
