//! Python: dependency declarations (requirements.txt, Pipfile, pyproject.toml with PEP 621 or Poetry, setup.py),
//! the runtime version request, the start command, and the failures a build would hit — above all Python code with
//! nothing declaring its dependencies, which builds "fine" and then dies with `ModuleNotFoundError` at start.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{Finding, Language, Report, Sourced, files_with_ext, read};

/// The distribution that provides an import, where the names differ (the common cases).
const IMPORT_TO_DIST: &[(&str, &str)] = &[
    ("yaml", "pyyaml"),
    ("PIL", "pillow"),
    ("cv2", "opencv-python"),
    ("sklearn", "scikit-learn"),
    ("bs4", "beautifulsoup4"),
    ("dateutil", "python-dateutil"),
    ("dotenv", "python-dotenv"),
    ("jwt", "pyjwt"),
    ("psycopg2", "psycopg2-binary"),
    ("MySQLdb", "mysqlclient"),
    ("google.protobuf", "protobuf"),
    ("attr", "attrs"),
    ("multipart", "python-multipart"),
    ("jose", "python-jose"),
    ("magic", "python-magic"),
    ("OpenSSL", "pyopenssl"),
    ("Crypto", "pycryptodome"),
    ("serial", "pyserial"),
    ("usb", "pyusb"),
    ("zmq", "pyzmq"),
    ("git", "gitpython"),
    ("socks", "pysocks"),
];

/// Distributions that pull in others the app may import directly without declaring them.
const BRINGS: &[(&str, &[&str])] = &[
    (
        "flask",
        &[
            "werkzeug",
            "jinja2",
            "click",
            "itsdangerous",
            "markupsafe",
            "blinker",
        ],
    ),
    (
        "fastapi",
        &["starlette", "pydantic", "typing-extensions", "anyio"],
    ),
    ("uvicorn", &["click", "h11"]),
    (
        "requests",
        &["urllib3", "idna", "certifi", "charset-normalizer"],
    ),
    ("django", &["asgiref", "sqlparse"]),
    ("celery", &["kombu", "billiard", "vine"]),
];

/// `Flask` -> `flask`, `typing_extensions` -> `typing-extensions`: PEP 503 normalisation.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The project name at the start of a PEP 508 requirement (`flask[async]>=3 ; python_version>"3.8"`).
fn requirement_name(req: &str) -> Option<String> {
    let name: String = req
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then(|| normalize(&name))
}

/// Names in a requirements file; `-r other.txt` is followed (relative to the file), options skipped.
fn requirements(dir: &Path, file: &str, depth: usize, out: &mut Vec<String>) {
    let Some(text) = read(dir, file) else { return };
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(inner) = line
            .strip_prefix("-r ")
            .or_else(|| line.strip_prefix("--requirement "))
        {
            if depth < 5 {
                requirements(dir, inner.trim(), depth + 1, out);
            }
            continue;
        }
        if line.starts_with('-') {
            continue; // --index-url, -e ., --hash ...
        }
        if let Some(n) = requirement_name(line) {
            out.push(n);
        }
    }
}

struct Declared {
    manager: Sourced,
    deps: Vec<String>,
    runtime: Option<Sourced>,
}

fn pyproject(dir: &Path, findings: &mut Vec<Finding>) -> Option<Declared> {
    let text = read(dir, "pyproject.toml")?;
    let doc: toml::Table = match text.parse() {
        Ok(d) => d,
        Err(e) => {
            findings.push(Finding::error(
                "pyproject.toml",
                format!("is not valid TOML: {}", e.message()),
                "fix the syntax; `python -m tomllib` or an editor with TOML support shows where",
            ));
            return None;
        }
    };
    let poetry = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(toml::Value::as_table);
    let project = doc.get("project").and_then(toml::Value::as_table);
    let mut deps = Vec::new();
    let mut runtime = None;
    if let Some(p) = project {
        for d in p
            .get("dependencies")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = d.as_str().and_then(requirement_name) {
                deps.push(n);
            }
        }
        if let Some(r) = p.get("requires-python").and_then(toml::Value::as_str) {
            runtime = Some(Sourced::new(r, "pyproject.toml (project.requires-python)"));
        }
    }
    if let Some(p) = poetry {
        for (name, v) in p
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            if name == "python" {
                if let Some(r) = v.as_str() {
                    runtime = runtime.or_else(|| {
                        Some(Sourced::new(
                            r,
                            "pyproject.toml (tool.poetry.dependencies.python)",
                        ))
                    });
                }
            } else {
                deps.push(normalize(name));
            }
        }
        let lock = dir.join("poetry.lock").is_file();
        if !lock {
            findings.push(Finding::warning(
                "pyproject.toml",
                "Poetry project without poetry.lock: every build resolves versions anew",
                "run `poetry lock` and commit poetry.lock",
            ));
        }
        return Some(Declared {
            manager: Sourced::new(
                "poetry",
                if lock {
                    "poetry.lock"
                } else {
                    "pyproject.toml"
                },
            ),
            deps,
            runtime,
        });
    }
    project.map(|_| Declared {
        manager: Sourced::new("pip", "pyproject.toml (PEP 621)"),
        deps,
        runtime,
    })
}

fn pipfile(dir: &Path) -> Option<Declared> {
    let text = read(dir, "Pipfile")?;
    let doc: toml::Table = text.parse().ok()?;
    let deps = doc
        .get("packages")
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().map(|k| normalize(k)).collect())
        .unwrap_or_default();
    let runtime = doc
        .get("requires")
        .and_then(|r| {
            r.get("python_version")
                .or_else(|| r.get("python_full_version"))
        })
        .and_then(toml::Value::as_str)
        .map(|v| Sourced::new(v, "Pipfile ([requires] python_version)"));
    let lock = dir.join("Pipfile.lock").is_file();
    Some(Declared {
        manager: Sourced::new("pipenv", if lock { "Pipfile.lock" } else { "Pipfile" }),
        deps,
        runtime,
    })
}

fn declared(dir: &Path, findings: &mut Vec<Finding>) -> Option<Declared> {
    if dir.join("requirements.txt").is_file() {
        let mut deps = Vec::new();
        requirements(dir, "requirements.txt", 0, &mut deps);
        return Some(Declared {
            manager: Sourced::new("pip", "requirements.txt"),
            deps,
            runtime: None,
        });
    }
    if let Some(d) = pipfile(dir) {
        return Some(d);
    }
    if let Some(d) = pyproject(dir, findings) {
        return Some(d);
    }
    if let Some(text) = read(dir, "setup.py") {
        let deps = text
            .split("install_requires")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .map(|list| {
                list.split(['"', '\''])
                    .skip(1)
                    .step_by(2)
                    .filter_map(requirement_name)
                    .collect()
            })
            .unwrap_or_default();
        return Some(Declared {
            manager: Sourced::new("pip", "setup.py"),
            deps,
            runtime: None,
        });
    }
    None
}

/// The runtime request: `.python-version`, then `runtime.txt`, then the dependency file's.
fn runtime(dir: &Path, from_decl: Option<Sourced>, findings: &mut Vec<Finding>) -> Option<Sourced> {
    if let Some(v) = read(dir, ".python-version") {
        let v = v.lines().next().unwrap_or("").trim().to_owned();
        if !v.is_empty() {
            return Some(Sourced::new(v, ".python-version"));
        }
    }
    if let Some(t) = read(dir, "runtime.txt") {
        let t = t.trim();
        match t.strip_prefix("python-") {
            Some(v) => return Some(Sourced::new(v, "runtime.txt")),
            None => findings.push(Finding::error(
                "runtime.txt",
                format!("`{t}` is not a Python version request"),
                "write `python-3.11` (or a full version such as `python-3.11.7`)",
            )),
        }
    }
    from_decl
}

/// Top-level imports of a Python file, with line numbers (`import a.b, c`, `from x.y import z`; not relative).
fn imports(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix("import ") {
            for part in rest.split(',') {
                let name = part.split_whitespace().next().unwrap_or("");
                if let Some(top) = name.split('.').next().filter(|t| !t.is_empty()) {
                    out.push((top.to_owned(), i + 1));
                }
            }
        } else if let Some(rest) = l.strip_prefix("from ") {
            let module = rest.split_whitespace().next().unwrap_or("");
            if !module.starts_with('.')
                && let Some(top) = module.split('.').next().filter(|t| !t.is_empty())
            {
                out.push((top.to_owned(), i + 1));
            }
        }
    }
    out
}

/// Local modules: `x.py` files and package directories at the top of the app.
fn local_modules(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let src = dir.join("src");
    for e in fs_err::read_dir(dir)
        .into_iter()
        .chain(fs_err::read_dir(&src))
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".py") {
            out.insert(stem.to_owned());
        } else if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.insert(name);
        }
    }
    out
}

/// What detection looks for.
pub const LOOKS_FOR: &str = "requirements.txt, Pipfile, pyproject.toml, setup.py, *.py or a package (a directory with __init__.py)";

/// Directory names never searched for an app's packages.
const NOT_APP_CODE: &[&str] = &[
    "tests",
    "test",
    "docs",
    "migrations",
    "venv",
    "node_modules",
    "__pycache__",
    "site-packages",
];

/// How deep below the root (or `src/`) packages are searched for the app object.
const PACKAGE_DEPTH: usize = 3;

/// A Python file inside a package of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackageFile {
    /// Relative to the app, e.g. `src/hello_api/main.py`.
    file: String,
    /// The dotted module, e.g. `hello_api.main` (`hello_api` for its `__init__.py`).
    module: String,
    /// `Some("src")` for the src layout: the directory the server must import from.
    import_root: Option<&'static str>,
}

/// The Python files of the app's packages (directories with `__init__.py`), at the root or under `src/`, sorted,
/// a few levels deep; never through a symbolic link.
fn package_files(dir: &Path) -> Vec<PackageFile> {
    fn walk(
        base: &Path,
        rel: &mut Vec<String>,
        root: Option<&'static str>,
        out: &mut Vec<PackageFile>,
    ) {
        let here = rel.iter().fold(base.to_path_buf(), |p, c| p.join(c));
        if !rel.is_empty() && !here.join("__init__.py").is_file() {
            return;
        }
        let mut entries: Vec<(String, bool)> = fs_err::read_dir(&here)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let t = e.file_type().ok()?;
                let name = e.file_name().to_str()?.to_owned();
                (t.is_dir() || t.is_file()).then_some((name, t.is_dir()))
            })
            .collect();
        entries.sort();
        for (name, is_dir) in entries {
            if is_dir {
                let valid = !name.starts_with('.')
                    && !NOT_APP_CODE.contains(&name.as_str())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid && rel.len() < PACKAGE_DEPTH {
                    rel.push(name);
                    walk(base, rel, root, out);
                    rel.pop();
                }
            } else if !rel.is_empty()
                && let Some(stem) = name.strip_suffix(".py")
            {
                let mut module = rel.join(".");
                if stem != "__init__" {
                    module = format!("{module}.{stem}");
                }
                let mut file: Vec<&str> = root.into_iter().collect();
                file.extend(rel.iter().map(String::as_str));
                file.push(&name);
                out.push(PackageFile {
                    file: file.join("/"),
                    module,
                    import_root: root,
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut Vec::new(), None, &mut out);
    if dir.join("src").is_dir() && !dir.join("src/__init__.py").exists() {
        walk(&dir.join("src"), &mut Vec::new(), Some("src"), &mut out);
    }
    out
}

/// Returns `true` when this is a Python app (the report is filled in).
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    let top_files = files_with_ext(dir, "py");
    let packages = package_files(dir);
    let decl = declared(dir, &mut report.findings);
    if decl.is_none() && top_files.is_empty() && packages.is_empty() {
        return false;
    }
    // Every file whose imports count: the top level's and the packages'.
    let py_files: Vec<String> = top_files
        .iter()
        .cloned()
        .chain(packages.iter().map(|p| p.file.clone()))
        .collect();
    report.language = Some(Language::Python);
    let Some(decl) = decl else {
        let needed = third_party_imports(dir, &py_files);
        let (first, line) = needed
            .first()
            .map_or((py_files[0].clone(), None), |(_, f, l)| {
                (f.clone(), Some(*l))
            });
        let (what, fix) = if needed.is_empty() {
            (
                "any import outside the standard library".to_owned(),
                "add requirements.txt listing the packages the code imports, one per line, or a pyproject.toml with `[project] dependencies`".to_owned(),
            )
        } else {
            let dists: Vec<String> = needed.iter().map(|(d, _, _)| d.clone()).collect();
            let at: Vec<String> = needed
                .iter()
                .map(|(d, f, l)| format!("`{d}` ({f}:{l})"))
                .collect();
            (
                format!("its imports {}", at.join(", ")),
                format!(
                    "add requirements.txt with the packages the code imports, one per line, pinned (e.g. `{}==<version>`): {}",
                    dists[0],
                    dists.join(", ")
                ),
            )
        };
        let mut finding = Finding::error(
            first,
            format!(
                "Python code ({}) but no requirements.txt, Pipfile, pyproject.toml or setup.py declares its dependencies: the build installs no packages, and the app fails at start with `ModuleNotFoundError` for {what}",
                py_files.join(", ")
            ),
            fix,
        );
        finding.line = line;
        report.findings.push(finding);
        report.start = start(dir, &top_files, &packages, &[], procfile);
        return true;
    };
    report.package_manager = Some(decl.manager.clone());
    report.dependencies.clone_from(&decl.deps);
    report.runtime = runtime(dir, decl.runtime.clone(), &mut report.findings);
    unprovided_imports(dir, &py_files, &decl, report);
    report.start = start(dir, &top_files, &packages, &decl.deps, procfile);
    if report.start.is_none() {
        report.findings.push(Finding::warning(
            "Procfile",
            "no start command: no Procfile `web:` entry, and no gunicorn/uvicorn app or app.py/main.py found",
            "add a Procfile with `web: <command>` (e.g. `web: gunicorn --bind 0.0.0.0:$PORT app:app`)",
        ));
    }
    true
}

/// Imports that are neither standard library nor local, as `(distribution, file, line)`, first occurrence each.
fn third_party_imports(dir: &Path, py_files: &[String]) -> Vec<(String, String, usize)> {
    let stdlib: BTreeSet<&str> = crate::python_stdlib::STDLIB.iter().copied().collect();
    let local = local_modules(dir);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for file in py_files {
        let Some(text) = read(dir, file) else {
            continue;
        };
        for (module, line) in imports(&text) {
            if stdlib.contains(module.as_str())
                || local.contains(&module)
                || !seen.insert(module.clone())
            {
                continue;
            }
            let dist = IMPORT_TO_DIST
                .iter()
                .find(|(m, _)| *m == module)
                .map_or_else(|| normalize(&module), |(_, d)| (*d).to_owned());
            out.push((dist, file.clone(), line));
        }
    }
    out
}

fn unprovided_imports(dir: &Path, py_files: &[String], decl: &Declared, report: &mut Report) {
    let mut provided: BTreeSet<String> = decl.deps.iter().cloned().collect();
    for (dist, extra) in BRINGS {
        if decl.deps.iter().any(|d| d == dist) {
            provided.extend(extra.iter().map(|e| normalize(e)));
        }
    }
    for (dist, file, line) in third_party_imports(dir, py_files) {
        if !provided.contains(&dist) {
            report.findings.push(
                Finding::warning(
                    file,
                    format!(
                        "imports `{dist}`, which no dependency in {} provides: the app may fail at start with `ModuleNotFoundError`",
                        decl.manager.source
                    ),
                    format!("add `{dist}` to {}", decl.manager.source),
                )
                .at(line),
            );
        }
    }
}

/// The variable holding a Flask or `FastAPI` app object in `text`, and whether it is ASGI (`FastAPI`).
fn app_object(text: &str) -> Option<(String, bool)> {
    text.lines().find_map(|l| {
        let (lhs, rhs) = l.split_once('=')?;
        let rhs = rhs.trim_start();
        let lhs = lhs.trim();
        let name_ok = !lhs.is_empty() && lhs.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        (name_ok && (rhs.starts_with("Flask(") || rhs.starts_with("FastAPI(")))
            .then(|| (lhs.to_owned(), rhs.starts_with("FastAPI(")))
    })
}

/// Procfile `web`, else a detected gunicorn (Flask/WSGI) or uvicorn (FastAPI/ASGI) app — in a top-level file, then
/// inside a package (`hello_api/main.py`, or `src/hello_api/main.py` for the src layout) — else `python app.py`.
fn start(
    dir: &Path,
    top_files: &[String],
    packages: &[PackageFile],
    deps: &[String],
    procfile: &[(String, String)],
) -> Option<Sourced> {
    if let Some((_, cmd)) = procfile.iter().find(|(k, _)| k == "web") {
        return Some(Sourced::new(cmd.clone(), "Procfile"));
    }
    let has = |d: &str| deps.iter().any(|x| x == d);
    let top = top_files.iter().map(|f| PackageFile {
        file: f.clone(),
        module: f.trim_end_matches(".py").to_owned(),
        import_root: None,
    });
    for candidate in top.chain(packages.iter().cloned()) {
        let text = read(dir, &candidate.file).unwrap_or_default();
        let Some((var, asgi)) = app_object(&text) else {
            continue;
        };
        let (module, file) = (&candidate.module, &candidate.file);
        if asgi && has("uvicorn") {
            let app_dir = candidate
                .import_root
                .map(|r| format!(" --app-dir {r}"))
                .unwrap_or_default();
            return Some(Sourced::new(
                format!("uvicorn {module}:{var} --host 0.0.0.0 --port $PORT{app_dir}"),
                format!("{file} (FastAPI app `{var}`, uvicorn in dependencies)"),
            ));
        }
        if !asgi && has("gunicorn") {
            let chdir = candidate
                .import_root
                .map(|r| format!(" --chdir {r}"))
                .unwrap_or_default();
            return Some(Sourced::new(
                format!("gunicorn --bind 0.0.0.0:$PORT{chdir} {module}:{var}"),
                format!("{file} (Flask app `{var}`, gunicorn in dependencies)"),
            ));
        }
    }
    ["app.py", "main.py"]
        .into_iter()
        .find(|f| top_files.iter().any(|p| p == f))
        .map(|f| Sourced::new(format!("python {f}"), f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_imports() {
        assert_eq!(
            requirement_name("Flask[async]>=3.0 ; python_version > '3.8'").as_deref(),
            Some("flask")
        );
        assert_eq!(normalize("typing_extensions"), "typing-extensions");
        let i = imports(
            "import os, sys\nfrom flask import Flask\nfrom . import views\nimport yaml.loader as y\n",
        );
        assert_eq!(
            i,
            [
                ("os".into(), 1),
                ("sys".into(), 1),
                ("flask".into(), 2),
                ("yaml".into(), 4)
            ]
        );
    }
}
