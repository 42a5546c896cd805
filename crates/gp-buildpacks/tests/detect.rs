//! Detection over small app trees: each dependency format, runtime sources, start commands and findings.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::path::Path;

use gp_buildpacks::{Language, Severity, detect};

fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

fn errors(dir: &Path) -> Vec<String> {
    detect(dir)
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn requirements_with_includes_and_import_warnings() {
    let d = app(&[
        (
            "requirements.txt",
            "# web\nFlask>=3 ; python_version > '3.8'\n-r more.txt\n--index-url https://pypi.example/simple\n",
        ),
        ("more.txt", "gunicorn==22.0.0\n"),
        (
            "app.py",
            "import os\nimport yaml\nfrom werkzeug import serving\nfrom flask import Flask\nimport helpers\napp = Flask(__name__)\n",
        ),
        ("helpers.py", "import requests\n"),
        ("runtime.txt", "python-3.11.7\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Python));
    assert_eq!(r.dependencies, ["flask", "gunicorn"]);
    assert_eq!(r.runtime.as_ref().unwrap().value, "3.11.7");
    assert_eq!(
        r.start.as_ref().unwrap().value,
        "gunicorn --bind 0.0.0.0:$PORT app:app"
    );
    let warnings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
    // yaml -> pyyaml and requests are missing; werkzeug comes with flask; helpers is local.
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains("app.py:2: imports `pyyaml`"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].contains("helpers.py:1: imports `requests`"),
        "{warnings:#?}"
    );
    assert!(!r.failed());
}

#[test]
fn pipfile_poetry_and_setup_py() {
    let d = app(&[
        (
            "Pipfile",
            "[packages]\nDjango = \"*\"\n[requires]\npython_version = \"3.12\"\n",
        ),
        ("Pipfile.lock", "{}"),
        ("manage.py", "import django\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.package_manager.as_ref().unwrap().value, "pipenv");
    assert_eq!(r.runtime.as_ref().unwrap().value, "3.12");
    assert!(
        r.findings.iter().any(|f| f.file == "Procfile"),
        "no start command is a warning"
    );

    let d = app(&[(
        "pyproject.toml",
        "[tool.poetry]\nname = \"x\"\n[tool.poetry.dependencies]\npython = \"^3.11\"\nrequests = \"^2\"\n",
    )]);
    let r = detect(d.path());
    assert_eq!(r.package_manager.as_ref().unwrap().value, "poetry");
    assert_eq!(r.runtime.as_ref().unwrap().value, "^3.11");
    assert!(r.findings.iter().any(|f| f.message.contains("poetry.lock")));

    let d = app(&[(
        "setup.py",
        "from setuptools import setup\nsetup(name='x', install_requires=['click>=8', \"rich\"])\n",
    )]);
    assert_eq!(detect(d.path()).dependencies, ["click", "rich"]);
}

#[test]
fn python_errors_name_file_and_fix() {
    let d = app(&[("runtime.txt", "3.11\n"), ("requirements.txt", "flask\n")]);
    let e = errors(d.path());
    assert!(
        e[0].contains("runtime.txt: `3.11` is not a Python version request"),
        "{e:?}"
    );
    assert!(e[0].contains("fix: write `python-3.11`"), "{e:?}");

    let d = app(&[("pyproject.toml", "[project\nname = 1\n")]);
    let e = errors(d.path());
    assert!(e[0].contains("pyproject.toml: is not valid TOML"), "{e:?}");

    let d = app(&[("main.py", "import numpy as np\nimport json\n")]);
    let e = errors(d.path());
    assert!(
        e[0].contains("main.py:1:") && e[0].contains("`numpy` (main.py:1)"),
        "{e:?}"
    );
}

#[test]
fn node_lockfiles_start_and_errors() {
    let d = app(&[
        (
            "package.json",
            r#"{"dependencies": {"next": "14"}, "scripts": {"build": "next build", "start": "next start"}}"#,
        ),
        ("yarn.lock", ""),
        (".nvmrc", "v20.11.0\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Node));
    assert_eq!(r.package_manager.as_ref().unwrap().value, "yarn");
    assert_eq!(r.runtime.as_ref().unwrap().value, "20.11.0");
    assert_eq!(
        r.build.as_ref().unwrap().value,
        "npm run build (next build)"
    );
    assert!(!r.failed());

    let d = app(&[("package.json", "{\n  \"name\": \"x\",\n  oops\n}")]);
    let e = errors(d.path());
    assert!(
        e[0].starts_with("error: package.json:3: is not valid JSON"),
        "{e:?}"
    );

    let d = app(&[("package.json", "{}"), ("package-lock.json", "{}")]);
    let e = errors(d.path());
    assert!(e[0].contains("no start command"), "{e:?}");
}

#[test]
fn a_node_build_with_no_start_command_is_a_static_site() {
    let site = app(&[
        ("package.json", r#"{"scripts": {"build": "vite build"}}"#),
        ("package-lock.json", "{}"),
    ]);
    let r = detect(site.path());
    assert!(!r.failed(), "{:?}", r.findings);
    let start = r.start.unwrap();
    assert!(start.value.starts_with("a static site"), "{}", start.value);
    assert_eq!(
        start.source,
        "package.json (scripts.build and no start command)"
    );

    // Neither a build nor a start command: still the error with its fix.
    let d = app(&[("package.json", "{}"), ("package-lock.json", "{}")]);
    assert!(errors(d.path())[0].contains("no start command"));
    // A Procfile `web` makes it an app again.
    let d = app(&[
        ("package.json", r#"{"scripts": {"build": "vite build"}}"#),
        ("package-lock.json", "{}"),
        ("Procfile", "web: node dist/server.js\n"),
    ]);
    assert_eq!(detect(d.path()).start.unwrap().source, "Procfile");
}

#[test]
fn nothing_to_build_and_bad_procfile() {
    let d = app(&[("README.md", "hi")]);
    let e = errors(d.path());
    assert!(
        e[0].contains("no app of a language the built-in buildpacks know"),
        "{e:?}"
    );
    assert!(
        e[0].contains("Go: go.mod") && e[0].contains("Node.js: package.json"),
        "{e:?}"
    );
    let d = app(&[
        ("Procfile", "web gunicorn app:app\n"),
        ("requirements.txt", "gunicorn\n"),
    ]);
    let e = errors(d.path());
    assert!(e[0].starts_with("error: Procfile:"), "{e:?}");
}

/// A value that must never reach a report.
const MARKER: &str = "GP_SECRET_MARKER_5f1c";

fn report_text(dir: &Path) -> String {
    let r = detect(dir);
    let findings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
    format!("{}\n{:?}", findings.join("\n"), r.processes)
}

#[test]
fn binary_procfile_is_an_error_naming_the_line_and_offset() {
    let d = app(&[
        ("package.json", "{}"),
        ("package-lock.json", "{}"),
        ("server.js", ""),
    ]);
    let procfile = d.path().join("Procfile");
    fs_err::write(&procfile, b"web: node server.js\nworker: \x00\x01\x02").unwrap();
    assert_eq!(
        errors(d.path()),
        [format!(
            "error: Procfile: `{}` holds a NUL byte (line 2, byte offset 28): it must be text; remove the byte\n  fix: the Procfile is a text file with one `type: command` per line, e.g. `web: gunicorn app:app`",
            procfile.display()
        )]
    );
    fs_err::write(&procfile, b"web: node \xff\xfe server.js\n").unwrap();
    assert_eq!(
        errors(d.path()),
        [format!(
            "error: Procfile: `{}` is not UTF-8 text (line 1, byte offset 10): save it as UTF-8 text\n  fix: the Procfile is a text file with one `type: command` per line, e.g. `web: gunicorn app:app`",
            procfile.display()
        )]
    );
}

#[test]
fn symlinked_or_fifo_inputs_are_refused_by_name_and_never_read() {
    let d = app(&[("package-lock.json", "{}")]);
    let secret = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(
        secret.path(),
        format!("web: {MARKER}\n{{\"name\": \"{MARKER}\"}}"),
    )
    .unwrap();
    let procfile = d.path().join("Procfile");
    let package = d.path().join("package.json");
    fs_err::os::unix::fs::symlink(secret.path(), &procfile).unwrap();
    fs_err::os::unix::fs::symlink(secret.path(), &package).unwrap();
    let out = report_text(d.path());
    assert!(!out.contains(MARKER), "{out}");
    let link = |p: &Path| {
        format!(
            "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
            p.display()
        )
    };
    let errs = errors(d.path());
    assert!(
        errs.iter().any(|e| e.contains(&link(&procfile))),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains(&link(&package))), "{errs:?}");

    fs_err::remove_file(&procfile).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&procfile)
            .status()
            .unwrap()
            .success()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = d.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(errors(&dir));
    });
    let errs = rx
        .recv_timeout(std::time::Duration::from_mins(1))
        .expect("detection must not block on a FIFO");
    assert!(
        errs.iter().any(|e| e.contains(&format!(
            "`{}` is a FIFO (named pipe), not a regular file: replace it with a regular file (or remove it)",
            procfile.display()
        ))),
        "{errs:?}"
    );
}

#[test]
fn app_object_inside_a_package_is_started() {
    let deps =
        "[project]\nname = \"svc\"\nversion = \"1\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n";
    let d = app(&[
        ("pyproject.toml", deps),
        ("hello_api/__init__.py", ""),
        (
            "hello_api/main.py",
            "from fastapi import FastAPI\nfrom hello_api.util import x\napp = FastAPI()\n",
        ),
        ("hello_api/util.py", "x = 1\n"),
        // Not the app: tests and directories that are not packages are never searched.
        ("tests/__init__.py", ""),
        (
            "tests/test_main.py",
            "from fastapi import FastAPI\nwrong = FastAPI()\n",
        ),
        (
            "scripts/tool.py",
            "from fastapi import FastAPI\nwrong = FastAPI()\n",
        ),
    ]);
    let r = detect(d.path());
    assert!(!r.failed(), "{:?}", r.findings);
    let start = r.start.unwrap();
    assert_eq!(
        start.value,
        "uvicorn hello_api.main:app --host 0.0.0.0 --port $PORT"
    );
    assert!(start.source.starts_with("hello_api/main.py"), "{start:?}");
    assert!(
        r.findings.is_empty(),
        "local imports are not warnings: {:?}",
        r.findings
    );
}

#[test]
fn src_layout_and_flask_in_a_package() {
    let d = app(&[
        ("requirements.txt", "flask\ngunicorn\n"),
        (
            "src/shop/__init__.py",
            "from flask import Flask\napplication = Flask(__name__)\n",
        ),
    ]);
    let r = detect(d.path());
    assert_eq!(
        r.start.unwrap().value,
        "gunicorn --bind 0.0.0.0:$PORT --chdir src shop:application"
    );
    let d = app(&[
        (
            "pyproject.toml",
            "[project]\nname = \"s\"\nversion = \"1\"\ndependencies = [\"fastapi\", \"uvicorn\"]\n",
        ),
        ("src/svc/api/__init__.py", ""),
        ("src/svc/__init__.py", ""),
        (
            "src/svc/api/app.py",
            "from fastapi import FastAPI\napi = FastAPI()\n",
        ),
    ]);
    assert_eq!(
        detect(d.path()).start.unwrap().value,
        "uvicorn svc.api.app:api --host 0.0.0.0 --port $PORT --app-dir src"
    );
}

#[test]
fn package_code_without_declared_dependencies_fails_naming_the_import() {
    let d = app(&[
        ("hello_api/__init__.py", ""),
        (
            "hello_api/main.py",
            "import os\nfrom fastapi import FastAPI\napp = FastAPI()\n",
        ),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Python));
    let e = errors(d.path());
    assert!(e[0].starts_with("error: hello_api/main.py:2:"), "{e:?}");
    assert!(e[0].contains("`fastapi` (hello_api/main.py:2)"), "{e:?}");
}
