//! Checking contracts: one source text at a time (pure), then whole trees of files with the rules that span files
//! (location agrees with content, ids/applications/hosts unique per environment).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::config::PlatformConfig;
use crate::decode::{Cx, Decoded, Facts, decode_document};
use crate::diag::{Code, Diagnostic};
use crate::model::AppDeploymentRequest;
use crate::source::{SourceFile, Span};
use crate::yaml::{self, YamlIssue};

/// The directory that holds `<env>/<id>.yaml` contract files.
pub const TREE_DIR: &str = "app-deployments";
/// The default contracts tree, relative to the contracts repository root.
pub const DEFAULT_TREE: &str = "docs/20-contracts/app-deployments";

/// The largest contract file read, in bytes (contracts are a few kilobytes): bigger is refused.
pub const MAX_CONTRACT_BYTES: u64 = 1 << 20;
/// The most diagnostics reported for one file; the rest are counted in one `too-many-problems` error.
pub const MAX_DIAGNOSTICS_PER_FILE: usize = 100;

/// One document of a checked file.
#[derive(Debug, Clone)]
pub struct DocResult {
    pub index: usize,
    pub start: Span,
    pub decoded: Decoded,
}

/// The result of checking one source text.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub source: Arc<SourceFile>,
    /// The platform config the file was checked against (set by [`check_files`]).
    pub config: Option<Arc<PlatformConfig>>,
    pub documents: Vec<DocResult>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileResult {
    /// Valid contracts in this file (documents without errors).
    pub fn contracts(&self) -> impl Iterator<Item = &AppDeploymentRequest> {
        self.documents
            .iter()
            .filter_map(|d| d.decoded.contract.as_ref())
    }

    #[must_use]
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses and checks one source text against a platform config. Never panics, never touches the disk.
#[must_use]
pub fn check_source(source: Arc<SourceFile>, config: &PlatformConfig) -> FileResult {
    let file = source.path();
    let stream = yaml::parse(&source);
    let mut diagnostics: Vec<Diagnostic> = stream
        .issues
        .iter()
        .map(|i| yaml_diagnostic(file, i))
        .collect();
    let syntax_failed = stream
        .issues
        .iter()
        .any(|i| matches!(i, YamlIssue::Syntax { .. }));
    if stream.documents.is_empty() && !syntax_failed {
        diagnostics.push(
            Diagnostic::error(
                Code::EmptyFile,
                file,
                Span::point(source.end_pos()),
                "the file holds no contract",
            )
            .hint("write an AppDeploymentRequest here, or delete the file"),
        );
    }
    let mut documents = Vec::with_capacity(stream.documents.len());
    for doc in &stream.documents {
        let mut cx = Cx::new(file, config);
        let mut decoded = decode_document(&mut cx, &doc.root);
        if !diagnostics.is_empty() {
            decoded.contract = None; // YAML-level problems make the document untrustworthy
        }
        diagnostics.append(&mut cx.diags);
        documents.push(DocResult {
            index: doc.index,
            start: Span::point(doc.root.span.start),
            decoded,
        });
    }
    check_location(&source, &mut documents, &mut diagnostics);
    FileResult {
        source,
        config: None,
        documents,
        diagnostics,
    }
}

fn yaml_diagnostic(file: &Path, issue: &YamlIssue) -> Diagnostic {
    match issue {
        YamlIssue::Syntax { message, span } => {
            let hint = if message.contains("tab") {
                "indent with spaces; YAML does not allow tabs for indentation"
            } else {
                "check the indentation and quoting on this line and the one above"
            };
            Diagnostic::error(
                Code::YamlSyntax,
                file,
                *span,
                format!("invalid YAML: {message}"),
            )
            .hint(hint)
        }
        YamlIssue::DuplicateKey {
            key,
            path,
            span,
            first,
        } => Diagnostic::error(
            Code::DuplicateKey,
            file,
            *span,
            format!("key `{key}` is defined twice in the same mapping"),
        )
        .field(path)
        .hint("remove one of them; YAML tools disagree on which one wins")
        .related(file, *first, "first defined here"),
        YamlIssue::NonScalarKey { path, span } => Diagnostic::error(
            Code::UnsupportedYaml,
            file,
            *span,
            "mapping keys must be plain names",
        )
        .field(path)
        .hint("write `name: value`"),
        YamlIssue::UnsupportedTag { tag, path, span } => Diagnostic::error(
            Code::UnsupportedYaml,
            file,
            *span,
            format!("YAML tag `{tag}` is not supported in contracts"),
        )
        .field(path)
        .hint("remove the tag; contracts are plain data"),
        YamlIssue::UnknownAlias { span } => Diagnostic::error(
            Code::UnsupportedYaml,
            file,
            *span,
            "alias refers to an anchor that is not defined",
        )
        .hint("define the anchor (`&name`) before using it (`*name`), or write the value out"),
        YamlIssue::AliasBudgetExceeded { span } => Diagnostic::error(
            Code::UnsupportedYaml,
            file,
            *span,
            "aliases expand to too many nodes",
        )
        .hint("write the values out; contracts are small"),
        YamlIssue::TooDeep { span } => Diagnostic::error(
            Code::UnsupportedYaml,
            file,
            *span,
            "the document is nested too deeply",
        )
        .hint("contracts are at most a few levels deep; check for runaway brackets"),
    }
}

/// `.../app-deployments/<env>/<file>.yaml` -> (`<env>`, `<file stem>`).
#[must_use]
pub fn tree_location(path: &Path) -> Option<(String, String)> {
    let comps: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let [.., dir, env, file] = comps.as_slice() else {
        return None;
    };
    if *dir != TREE_DIR {
        return None;
    }
    let stem = file
        .strip_suffix(".yaml")
        .or_else(|| file.strip_suffix(".yml"))?;
    Some(((*env).to_owned(), stem.to_owned()))
}

fn check_location(source: &SourceFile, documents: &mut [DocResult], diags: &mut Vec<Diagnostic>) {
    let Some((dir_env, stem)) = tree_location(source.path()) else {
        return;
    };
    let file = source.path();
    let count = documents.len();
    for (n, doc) in documents.iter_mut().enumerate() {
        let Facts {
            id, environment, ..
        } = &doc.decoded.facts;
        let before = diags.len();
        if n > 0 {
            let id_text = id
                .as_ref()
                .map_or("<id>".to_owned(), |(i, _)| i.to_string());
            diags.push(
                Diagnostic::error(
                    Code::PathMismatch,
                    file,
                    doc.start,
                    format!(
                        "this file holds {count} contracts; the contracts tree keeps one per file"
                    ),
                )
                .hint(format!(
                    "move this document to `{TREE_DIR}/<environment>/{id_text}.yaml`"
                )),
            );
        }
        if let Some((env, span)) = environment
            && env.as_str() != dir_env
        {
            diags.push(
                Diagnostic::error(
                    Code::PathMismatch,
                    file,
                    *span,
                    format!(
                        "`environment` is `{env}` but the file is in the `{dir_env}` directory"
                    ),
                )
                .field("environment")
                .hint(format!(
                    "move the file to `{TREE_DIR}/{env}/`, or set `environment: {dir_env}`"
                )),
            );
        }
        if let Some((id, span)) = id
            && n == 0
            && id.as_str() != stem
        {
            diags.push(
                Diagnostic::error(
                    Code::PathMismatch,
                    file,
                    *span,
                    format!("`id` is `{id}` but the file is named `{stem}`"),
                )
                .field("id")
                .hint(format!(
                    "rename the file to `{id}.yaml`, or set `id: {stem}`"
                )),
            );
        }
        if diags.len() > before {
            doc.decoded.contract = None;
        }
    }
}

/// Everything found by checking a set of files.
#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileResult>,
    /// Diagnostics that belong to no contract file (platform config, unreadable files).
    pub other: Vec<Diagnostic>,
    /// Every source text a diagnostic may point into (contract files and configs).
    pub sources: BTreeMap<PathBuf, Arc<SourceFile>>,
}

impl Report {
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.other
            .iter()
            .chain(self.files.iter().flat_map(|f| &f.diagnostics))
    }

    #[must_use]
    pub fn error_count(&self) -> usize {
        self.diagnostics().filter(|d| d.is_error()).count()
    }

    #[must_use]
    pub fn warning_count(&self) -> usize {
        self.diagnostics().filter(|d| !d.is_error()).count()
    }

    #[must_use]
    pub fn contract_count(&self) -> usize {
        self.files.iter().map(|f| f.documents.len()).sum()
    }

    #[must_use]
    pub fn valid_contract_count(&self) -> usize {
        self.files.iter().map(|f| f.contracts().count()).sum()
    }
}

/// How configs are found.
#[derive(Debug, Clone, Default)]
pub enum ConfigSource {
    /// The nearest `goldenpath.toml` above each file, or the built-in defaults.
    #[default]
    Discover,
    /// One explicit file for all.
    File(PathBuf),
    /// Always the built-in defaults.
    Defaults,
}

/// Reads and checks `files` (already expanded), then applies the cross-file rules.
#[must_use]
pub fn check_files(files: &[PathBuf], configs: &ConfigSource) -> Report {
    let mut report = Report::default();
    let mut loaded: HashMap<Option<PathBuf>, Option<Arc<PlatformConfig>>> = HashMap::new();
    let mut jobs = Vec::new();
    for path in files {
        let config_path = match configs {
            ConfigSource::Discover => PlatformConfig::find_for(path),
            ConfigSource::File(p) => Some(p.clone()),
            ConfigSource::Defaults => None,
        };
        let config = loaded
            .entry(config_path.clone())
            .or_insert_with(|| load_config(config_path.as_deref(), &mut report))
            .clone();
        if let Some(config) = config {
            jobs.push((path, config));
        } else {
            let cfg = config_path.unwrap_or_default();
            report.other.push(
                Diagnostic::warning(
                    Code::Config,
                    path,
                    Span::default(),
                    format!("not checked: `{}` is invalid", cfg.display()),
                )
                .hint("fix the platform config first"),
            );
        }
    }
    let results: Vec<Result<FileResult, Box<Diagnostic>>> = jobs
        .par_iter()
        .map(|(path, config)| {
            let text = gp_cnb::read_input_text(path, MAX_CONTRACT_BYTES)
                .map_err(|e| Box::new(input_diagnostic(path, &e)))?;
            let mut result = check_source(Arc::new(SourceFile::new(*path, text)), config);
            result.config = Some(Arc::clone(config));
            Ok(result)
        })
        .collect();
    for r in results {
        match r {
            Ok(f) => {
                report
                    .sources
                    .insert(f.source.path().to_path_buf(), f.source.clone());
                report.files.push(f);
            }
            Err(d) => report.other.push(*d),
        }
    }
    check_uniqueness(&mut report.files);
    for f in &mut report.files {
        f.diagnostics.sort_by_key(|a| (a.span.start, a.code));
        cap_diagnostics(f.source.path(), &mut f.diagnostics);
    }
    report
}

/// Keeps the first [`MAX_DIAGNOSTICS_PER_FILE`] diagnostics of a file and counts the rest in one error.
pub fn cap_diagnostics(file: &Path, diags: &mut Vec<Diagnostic>) {
    if diags.len() <= MAX_DIAGNOSTICS_PER_FILE {
        return;
    }
    let rest = diags.split_off(MAX_DIAGNOSTICS_PER_FILE);
    let errors = rest.iter().filter(|d| d.is_error()).count();
    let span = rest.first().map(|d| d.span).unwrap_or_default();
    diags.push(
        Diagnostic::error(
            Code::TooManyProblems,
            file,
            span,
            format!(
                "and {} more problems in this file ({errors} errors, {} warnings): only the first {MAX_DIAGNOSTICS_PER_FILE} are shown",
                rest.len(),
                rest.len() - errors
            ),
        )
        .hint("fix the problems shown and run again; a file with this many problems is probably not a contract"),
    );
}

/// The diagnostic for an input file that was refused or could not be read.
fn input_diagnostic(path: &Path, e: &gp_cnb::InputError) -> Diagnostic {
    use gp_cnb::InputError;
    let hint = match e {
        InputError::Symlink { .. } => {
            "contracts are reviewed as files of the repository: commit the file itself, not a link"
        }
        InputError::NotRegular { .. } => "remove it, or replace it with a regular file",
        InputError::TooLarge { .. } => {
            "a contract is a few kilobytes: check that this is the file you meant"
        }
        InputError::NotUtf8 { .. } | InputError::Nul { .. } => "save the file as UTF-8 text",
        InputError::Io { .. } => "check that the file exists and is readable",
    };
    Diagnostic::error(Code::Io, path, Span::default(), e.to_string()).hint(hint)
}

fn load_config(path: Option<&Path>, report: &mut Report) -> Option<Arc<PlatformConfig>> {
    let Some(path) = path else {
        return Some(Arc::new(PlatformConfig::default()));
    };
    let text = match gp_cnb::read_input_text(path, crate::config::MAX_CONFIG_BYTES) {
        Ok(text) => text,
        Err(e) => {
            report.other.push(input_diagnostic(path, &e).hint(
                "the platform config is a regular TOML file: fix or remove it (without one, the built-in defaults apply)",
            ));
            return None;
        }
    };
    let src = Arc::new(SourceFile::new(path, text));
    report.sources.insert(path.to_path_buf(), src.clone());
    match PlatformConfig::parse(&src) {
        Ok(c) => Some(Arc::new(c)),
        Err(mut d) => {
            cap_diagnostics(path, &mut d);
            report.other.append(&mut d);
            None
        }
    }
}

type Seen = HashMap<(String, String), (PathBuf, Span)>;

/// `id`, `application` and ingress host are unique per environment; later files (in path order) are reported.
fn check_uniqueness(files: &mut [FileResult]) {
    let mut ids: Seen = HashMap::new();
    let mut apps: Seen = HashMap::new();
    let mut hosts: Seen = HashMap::new();
    for f in files.iter_mut() {
        let file = f.source.path().to_path_buf();
        let mut new = Vec::new();
        for doc in &mut f.documents {
            let facts = &doc.decoded.facts;
            let Some((env, _)) = &facts.environment else {
                continue;
            };
            let env = env.to_string();
            let checks = [
                (
                    facts.id.as_ref().map(|(v, s)| (v.to_string(), *s)),
                    &mut ids,
                    Code::DuplicateId,
                    "id",
                    "give each contract its own id (the next free `APP-NNNN`)",
                ),
                (
                    facts.application.as_ref().map(|(v, s)| (v.to_string(), *s)),
                    &mut apps,
                    Code::DuplicateApplication,
                    "application",
                    "one contract per application and environment: edit the existing one, or choose another name",
                ),
                (
                    facts.host.as_ref().map(|(v, s)| (v.to_string(), *s)),
                    &mut hosts,
                    Code::DuplicateHost,
                    "ingress host",
                    "each application needs its own host",
                ),
            ];
            let before = new.len();
            for (value, seen, code, field, hint) in checks {
                let Some((value, span)) = value else { continue };
                match seen.get(&(env.clone(), value.clone())) {
                    Some((other, first)) => new.push(
                        Diagnostic::error(
                            code,
                            &file,
                            span,
                            format!("{field} `{value}` is already used in environment `{env}`"),
                        )
                        .field(if field == "ingress host" {
                            "spec.ingress.host"
                        } else {
                            field
                        })
                        .hint(hint)
                        .related(other, *first, "already used here"),
                    ),
                    None => {
                        seen.insert((env.clone(), value), (file.clone(), span));
                    }
                }
            }
            if new.len() > before {
                doc.decoded.contract = None;
            }
        }
        f.diagnostics.append(&mut new);
    }
}

/// Expands files and directories into the sorted list of YAML files to check. Symbolic links are never followed:
/// they are listed (a link named like a contract, a link to a directory, a link given as a path) so that reading
/// them refuses them by name; so are FIFOs and other non-regular files named like contracts.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs_err::symlink_metadata(p)?;
        if meta.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), std::io::Error> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry.file_type()?;
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if ft.is_dir() {
            walk(&path, out)?;
        } else if yaml || (ft.is_symlink() && path.is_dir()) {
            out.push(path);
        }
    }
    Ok(())
}
