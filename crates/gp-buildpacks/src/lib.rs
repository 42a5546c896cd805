//! Detection for the built-in buildpacks: from an app's files alone, what it is (language, package manager,
//! runtime version request, start command) and every problem the build would hit, each naming the file and the
//! fix. The buildpacks' `bin/detect` and `goldenpath detect` (preflight, no builder needed) call the same code, so
//! a developer sees before pushing exactly what the build would say.

mod dotnet;
mod go;
mod java;
pub mod node;
mod php;
mod procfile;
mod python;
mod python_stdlib;
mod ruby;
mod static_site;
pub mod support;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a finding is: errors fail detection (and the build); warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem, located and fixable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The file it is about (relative to the app), and the line when known.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

impl Finding {
    fn error(file: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.into(),
            line: None,
            message: message.into(),
            fix: fix.into(),
        }
    }

    fn warning(
        file: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, message, fix)
        }
    }

    fn at(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match self.line {
            Some(l) => write!(f, "{kind}: {}:{l}: {}", self.file, self.message)?,
            None => write!(f, "{kind}: {}: {}", self.file, self.message)?,
        }
        write!(f, "\n  fix: {}", self.fix)
    }
}

/// A value and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced {
    pub value: String,
    pub source: String,
}

impl Sourced {
    fn new(value: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            source: source.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Java,
    Go,
    Dotnet,
    Ruby,
    Php,
    Python,
    Node,
    Static,
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Java => "Java",
            Language::Go => "Go",
            Language::Dotnet => ".NET",
            Language::Ruby => "Ruby",
            Language::Php => "PHP",
            Language::Python => "Python",
            Language::Node => "Node.js",
            Language::Static => "static site",
        })
    }
}

/// What detection found for an app.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub path: PathBuf,
    pub language: Option<Language>,
    /// e.g. `pip (requirements.txt)`, `poetry`, `npm`.
    pub package_manager: Option<Sourced>,
    /// The declared dependencies, by name.
    pub dependencies: Vec<String>,
    /// The runtime version the app asks for (`3.11`, `>=3.10`, `20.x`), and where.
    pub runtime: Option<Sourced>,
    /// What the `web` process will run.
    pub start: Option<Sourced>,
    /// A build step the buildpack will run (`npm run build`).
    pub build: Option<Sourced>,
    /// Process types from a Procfile, in file order.
    pub processes: Vec<(String, String)>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether the build would fail.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// A language's detection: claims the app (returns true, filling `report`) or leaves it alone.
type Detector = fn(&Path, &[(String, String)], &mut Report) -> bool;

/// The languages in the default builder's order (the first that claims an app is its language), each with what it
/// looks for, said when nothing claims the app.
const DETECTORS: &[(Detector, &str)] = &[
    (java::detect, java::LOOKS_FOR),
    (go::detect, go::LOOKS_FOR),
    (dotnet::detect, dotnet::LOOKS_FOR),
    (ruby::detect, ruby::LOOKS_FOR),
    (php::detect, php::LOOKS_FOR),
    (python::detect, python::LOOKS_FOR),
    (node::detect, node::LOOKS_FOR),
    (static_site::detect, static_site::LOOKS_FOR),
];

/// What each built-in buildpack looks for, by language, in the default builder's order.
#[must_use]
pub fn looked_for() -> Vec<(Language, &'static str)> {
    [
        Language::Java,
        Language::Go,
        Language::Dotnet,
        Language::Ruby,
        Language::Php,
        Language::Python,
        Language::Node,
        Language::Static,
    ]
    .into_iter()
    .zip(DETECTORS.iter().map(|(_, l)| *l))
    .collect()
}

/// Detects the app at `dir`, language by language in the default builder's order; the Procfile's processes apply
/// to any.
#[must_use]
pub fn detect(dir: &Path) -> Report {
    let mut report = Report {
        path: dir.to_path_buf(),
        ..Report::default()
    };
    check_inputs(dir, &mut report.findings);
    let procfile = procfile::read(dir, &mut report.findings);
    report.processes.clone_from(&procfile);
    for (detector, _) in DETECTORS {
        if detector(dir, &procfile, &mut report) {
            break;
        }
    }
    if report.language.is_none() && report.findings.is_empty() {
        let looked: Vec<String> = looked_for()
            .iter()
            .map(|(l, what)| format!("{l}: {what}"))
            .collect();
        report.findings.push(Finding::error(
            ".",
            format!("no app of a language the built-in buildpacks know; each looked for: {}", looked.join("; ")),
            "add the dependency file of your language (e.g. requirements.txt, package.json, go.mod, pom.xml), or check `--path`",
        ));
    }
    report
        .findings
        .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.file.cmp(&b.file)));
    report
}

/// Files directly in `dir` with `ext`, sorted (the app's top level; where entry points live).
fn files_with_ext(dir: &Path, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| Path::new(n).extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The largest app input file detection reads (a `Procfile`, `package.json`, a lock file): bigger is refused.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// The app files detection reads by name, per language.
const INPUTS: &[&[&str]] = &[
    &[
        "package.json",
        ".nvmrc",
        ".node-version",
        "requirements.txt",
        "Pipfile",
        "Pipfile.lock",
        "pyproject.toml",
        "poetry.lock",
        "setup.py",
        ".python-version",
        "runtime.txt",
    ],
    go::INPUTS,
    java::INPUTS,
    dotnet::INPUTS,
    ruby::INPUTS,
    php::INPUTS,
    static_site::INPUTS,
];

/// Every input file that exists but cannot be read as text (a symbolic link, a FIFO, a directory, binary or oversized
/// content) is an error naming it; [`read`] then treats it as absent. The Procfile is checked by [`procfile::read`].
fn check_inputs(dir: &Path, findings: &mut Vec<Finding>) {
    for name in INPUTS.iter().flat_map(|l| l.iter()) {
        if let Err(e) = gp_cnb::read_input_text(&dir.join(name), MAX_INPUT_BYTES)
            && !e.is_not_found()
        {
            findings.push(Finding::error(
                *name,
                e.to_string(),
                "detection reads only regular UTF-8 text files of the app",
            ));
        }
    }
}

/// The text of `<dir>/<name>` when it is a regular UTF-8 text file: never through a symbolic link, never blocking
/// on a FIFO.
fn read(dir: &Path, name: &str) -> Option<String> {
    gp_cnb::read_input_text(&dir.join(name), MAX_INPUT_BYTES).ok()
}
