//! The built-in Python buildpack (`io.goldenpath.python`), one static executable installed as both `bin/detect`
//! and `bin/build`.
//!
//! Where the runtime comes from: the build image's Debian `python3` (the stack's suite, patched with the stack),
//! copied with its standard library and the shared libraries it links into a `python` launch layer, reused while
//! the version is unchanged. A version request the stack cannot satisfy fails, naming the file, the request and
//! what is available. Dependencies go into a `packages` virtual environment layer (launch + cache), keyed by the
//! content of the dependency files and the Python version, installed with the build image's pip from the index pip
//! is configured for (`PIP_INDEX_URL` as platform env points it at a mirror; CA certificates come from the
//! platform's `ca-certificates` binding via `PIP_CERT`). The start command comes from the Procfile, else from
//! detection (gunicorn / uvicorn app, or `python app.py`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, layer_toml, phase_main, read_meta, reuse_sbom, sh, write,
    write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

const ID: &str = "io.goldenpath.python";

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn print_findings(report: &Report) {
    for f in &report.findings {
        eprintln!("{f}");
    }
}

/// 0 when this is a Python app the build can handle, 100 when it is not Python, 1 (with the findings) when it is
/// Python but the build would fail.
fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Python, "python")
}

/// Whether `version` (e.g. `3.11.2`) satisfies `request`: `3.11`, `3.11.2`, `python-3.11` forms, PEP 440
/// specifiers (`>=3.10,<3.13`, `~=3.11`, `==3.11.*`) and Poetry's `^3.11` / `~3.11`.
fn satisfies(version: &str, request: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> {
        s.trim()
            .trim_end_matches(".*")
            .split('.')
            .map_while(|p| p.trim().parse().ok())
            .collect()
    };
    let v = parse(version);
    let cmp = |want: &[u64]| -> std::cmp::Ordering { v.iter().take(want.len()).cmp(want.iter()) };
    request.split(',').all(|clause| {
        let c = clause.trim();
        let (op, rest) = ["==", ">=", "<=", "~=", "!=", ">", "<", "^", "~"]
            .iter()
            .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("", c));
        let want = parse(rest);
        if want.is_empty() {
            return false;
        }
        let full = |w: &[u64]| -> std::cmp::Ordering {
            let mut a = v.clone();
            a.resize(w.len().max(a.len()), 0);
            let mut b = w.to_vec();
            b.resize(a.len(), 0);
            a.cmp(&b)
        };
        match op {
            "" | "==" => cmp(&want).is_eq(),
            "!=" => !cmp(&want).is_eq(),
            ">=" => full(&want).is_ge(),
            ">" => full(&want).is_gt(),
            "<=" => full(&want).is_le(),
            "<" => full(&want).is_lt(),
            // ~=3.11 -> >=3.11,==3.*; ~3.11 / ^3.11 -> same minor (^: same major)
            "~=" => {
                full(&want).is_ge() && cmp(&want[..want.len().saturating_sub(1).max(1)]).is_eq()
            }
            "~" => full(&want).is_ge() && cmp(&want[..want.len().min(2)]).is_eq(),
            "^" => full(&want).is_ge() && cmp(&want[..1]).is_eq(),
            _ => false,
        }
    })
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), String> {
    fs_err::create_dir_all(to).map_err(|e| e.to_string())?;
    for e in fs_err::read_dir(from).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        let ft = e.file_type().map_err(|e| e.to_string())?;
        if ft.is_symlink() {
            let target = fs_err::read_link(&src).map_err(|e| e.to_string())?;
            fs_err::os::unix::fs::symlink(target, &dst).map_err(|e| e.to_string())?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst, skip)?;
        } else {
            fs_err::copy(&src, &dst).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The runtime layer: the build image's interpreter, standard library and the libraries they link.
fn runtime_layer(layers: &Path, python: &str, version: &str) -> Result<PathBuf, String> {
    let layer = layers.join("python");
    if read_meta(layers, "python", "version").as_deref() == Some(version)
        && layer.join("bin/python3").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing Python {version} (runtime layer unchanged)");
        reuse_sbom(layers, "python")?;
        // The lifecycle restores `python.toml` without `[types]`: declared again, or the layer is let go.
        layer_toml(layers, "python", true, &[("version", version.to_owned())])?;
        return Ok(layer);
    }
    println!("Installing Python {version} from the stack (Debian python3 of the build image)");
    let _ = fs_err::remove_dir_all(&layer);
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let real = fs_err::canonicalize(python).map_err(|e| format!("{python}: {e}"))?;
    let bin = layer.join("bin");
    fs_err::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let exe = bin.join(format!("python{minor}"));
    fs_err::copy(&real, &exe).map_err(|e| e.to_string())?;
    for link in ["python3", "python"] {
        fs_err::os::unix::fs::symlink(format!("python{minor}"), bin.join(link))
            .map_err(|e| e.to_string())?;
    }
    let stdlib = PathBuf::from(format!("/usr/lib/python{minor}"));
    copy_tree(
        &stdlib,
        &layer.join(format!("lib/python{minor}")),
        &[
            "test",
            "__pycache__",
            "idlelib",
            "tkinter",
            "turtledemo",
            "dist-packages",
            "site-packages",
        ],
    )?;
    // Shared libraries the interpreter and its extension modules link, except the C library itself (every run
    // image has it): into `lib/`, which the launcher puts on LD_LIBRARY_PATH.
    let mut objects = vec![real.clone()];
    if let Ok(rd) = fs_err::read_dir(stdlib.join("lib-dynload")) {
        objects.extend(rd.flatten().map(|e| e.path()));
    }
    let libc = [
        "libc.so",
        "libm.so",
        "ld-linux",
        "libpthread.so",
        "libdl.so",
        "librt.so",
        "libutil.so",
        "linux-vdso",
    ];
    let mut copied = 0;
    for obj in &objects {
        let Ok(out) = sh(Command::new("ldd").arg(obj), "ldd") else {
            continue;
        };
        for line in out.lines() {
            let Some(path) = line
                .split("=>")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if libc.iter().any(|l| name.starts_with(l)) || !path.starts_with('/') {
                continue;
            }
            let dest = layer.join("lib").join(&name);
            if !dest.exists() {
                fs_err::create_dir_all(layer.join("lib")).map_err(|e| e.to_string())?;
                fs_err::copy(path, &dest).map_err(|e| e.to_string())?;
                copied += 1;
            }
        }
    }
    println!("  {copied} shared libraries");
    write_sbom(
        &layers.join("python.sbom.cdx.json"),
        &[(
            "python".to_owned(),
            version.to_owned(),
            format!("pkg:generic/python@{version}"),
        )],
    )?;
    layer_toml(layers, "python", true, &[("version", version.to_owned())])?;
    Ok(layer)
}

/// What pip installs: the requirement lines of the dependency file.
fn requirement_args(app: &Path, report: &Report) -> Result<(Vec<String>, String), String> {
    let source = report
        .package_manager
        .as_ref()
        .map(|p| p.source.clone())
        .unwrap_or_default();
    let mut key_input = String::new();
    for f in [
        "requirements.txt",
        "pyproject.toml",
        "Pipfile.lock",
        "Pipfile",
        "poetry.lock",
        "setup.py",
    ] {
        if let Ok(t) = fs_err::read_to_string(app.join(f)) {
            key_input.push_str(f);
            key_input.push('\0');
            key_input.push_str(&t);
        }
    }
    let args = if source.starts_with("requirements.txt") {
        vec!["-r".into(), "requirements.txt".into()]
    } else if source.starts_with("pyproject.toml (PEP 621") {
        let doc: toml::Table = fs_err::read_to_string(app.join("pyproject.toml"))
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|e: toml::de::Error| e.to_string())?;
        doc.get("project")
            .and_then(|p| p.get("dependencies"))
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(str::to_owned))
            .collect()
    } else if source.starts_with("setup.py") {
        vec![".".into()]
    } else if let Some(pins) = locked(app)? {
        // Pipenv / Poetry: the lock's exact versions, installed by pip without resolving again.
        std::iter::once("--no-deps".to_owned())
            .chain(pins)
            .collect()
    } else {
        // Pipfile or Poetry project without a lock (detection warned): the declared names, resolved by pip.
        report.dependencies.clone()
    };
    Ok((args, key_input))
}

/// `name==version` for every package of `Pipfile.lock` (`default`) or `poetry.lock` (every `[[package]]`, dev
/// groups included: poetry.lock does not say which group needs what).
fn locked(app: &Path) -> Result<Option<Vec<String>>, String> {
    if let Ok(text) = fs_err::read_to_string(app.join("Pipfile.lock")) {
        let lock: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("Pipfile.lock: not JSON: {e}"))?;
        let pins = lock["default"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, v)| Some(format!("{name}{}", v["version"].as_str()?)))
            .collect();
        return Ok(Some(pins));
    }
    if let Ok(text) = fs_err::read_to_string(app.join("poetry.lock")) {
        let lock: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("poetry.lock: {}", e.message()))?;
        let pins = lock
            .get("package")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some(format!(
                    "{}=={}",
                    p.get("name")?.as_str()?,
                    p.get("version")?.as_str()?
                ))
            })
            .collect();
        return Ok(Some(pins));
    }
    Ok(None)
}

fn packages_layer(
    layers: &Path,
    app: &Path,
    runtime: &Path,
    version: &str,
    report: &Report,
) -> Result<(), String> {
    let (args, key_input) = requirement_args(app, report)?;
    let key = cache_key(&format!("{version}\0{key_input}"));
    let layer = layers.join("packages");
    if read_meta(layers, "packages", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/python").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!(
            "Reusing the dependencies layer ({} unchanged)",
            report
                .package_manager
                .as_ref()
                .map_or("dependencies", |p| p.source.as_str())
        );
        reuse_sbom(layers, "packages")?;
        layer_toml(layers, "packages", false, &[("key", key)])?;
        return Ok(());
    }
    let _ = fs_err::remove_dir_all(&layer);
    let _ = fs_err::remove_file(layers.join("packages.toml"));
    if args.is_empty() {
        println!("No dependencies to install");
    }
    println!("Installing dependencies ({})", args.join(" "));
    sh(
        Command::new(runtime.join("bin/python3"))
            .env("PYTHONDONTWRITEBYTECODE", "1") // the runtime layer stays as copied (reproducible)
            .args(["-m", "venv", "--without-pip"])
            .arg(&layer),
        "python -m venv",
    )?;
    if !args.is_empty() {
        let status = Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-m", "pip", "--python"])
            .arg(layer.join("bin/python"))
            .args([
                "install",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(&args)
            .current_dir(app)
            .status()
            .map_err(|e| format!("cannot run pip: {e}"))?;
        if !status.success() {
            return Err(format!(
                "pip could not install the dependencies from {} (exit {}); see pip's output above. Behind a private CA, pass it with `goldenpath build --ca-certs FILE`; for a mirror, `--env PIP_INDEX_URL=...`",
                report
                    .package_manager
                    .as_ref()
                    .map_or("the dependency file", |p| p.source.as_str()),
                status.code().unwrap_or(-1)
            ));
        }
    }
    // The SBOM of what pip installed.
    let listed = sh(
        Command::new("python3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-m", "pip", "--python"])
            .arg(layer.join("bin/python"))
            .args(["list", "--format=json", "--disable-pip-version-check"]),
        "pip list",
    )
    .unwrap_or_else(|_| "[]".into());
    let pkgs: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap_or_default();
    let components: Vec<(String, String, String)> = pkgs
        .iter()
        .filter_map(|p| {
            let (name, version) = (p["name"].as_str()?, p["version"].as_str()?);
            let purl = format!(
                "pkg:pypi/{}@{version}",
                name.to_ascii_lowercase().replace('_', "-")
            );
            Some((name.to_owned(), version.to_owned(), purl))
        })
        .collect();
    println!("  {} packages installed", components.len());
    write_sbom(&layers.join("packages.sbom.cdx.json"), &components)?;
    layer_toml(layers, "packages", false, &[("key", key)])
}

fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(|e| e.to_string())?;
    let report = detect(&app);
    print_findings(&report);
    if report.failed() {
        return Ok(1);
    }
    let python = "/usr/bin/python3";
    let version = sh(
        Command::new(python).args(["-c", "import platform; print(platform.python_version())"]),
        "the build image's python3 (is `python3` in the stack's build packages?)",
    )?
    .trim()
    .to_owned();
    if let Some(req) = &report.runtime
        && !satisfies(&version, &req.value)
    {
        return Err(format!(
            "{}: Python `{}` is requested, but this stack provides Python {version} only (Debian's python3 of the build image)\n  fix: request `{}` (or a range that includes it), or build with a stack whose suite has the Python you need",
            req.source,
            req.value,
            version.split('.').take(2).collect::<Vec<_>>().join(".")
        ));
    }
    let runtime = runtime_layer(&layers, python, &version)?;
    packages_layer(&layers, &app, &runtime, &version, &report)?;
    let mut launch = String::new();
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !procs.iter().any(|(k, _)| k == "web")
        && let Some(start) = &report.start
    {
        procs.insert(0, ("web".into(), start.value.clone()));
    }
    for (kind, cmd) in &procs {
        let _ = write!(
            launch,
            "[[processes]]\ntype = {}\ncommand = [\"bash\", \"-c\", {}]\ndefault = {}\n\n",
            toml::Value::String(kind.clone()),
            toml::Value::String(cmd.clone()),
            kind == "web"
        );
    }
    write(&layers.join("launch.toml"), &launch)?;
    if let Some(s) = &report.start {
        println!("Start command: {} ({})", s.value, s.source);
    }
    let warnings = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if warnings > 0 {
        println!("{warnings} warning(s) above");
    }
    let _ = ID;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::{locked, satisfies};

    #[test]
    fn locks_pin_exact_versions() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("Pipfile.lock"),
            r#"{"default": {"flask": {"version": "==3.0.3"}, "click": {"version": "==8.1.7"}}, "develop": {"pytest": {"version": "==8.0.0"}}}"#,
        )
        .unwrap();
        let mut pins = locked(dir.path()).unwrap().unwrap();
        pins.sort();
        assert_eq!(pins, ["click==8.1.7", "flask==3.0.3"]);
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("poetry.lock"),
            "[[package]]\nname = \"requests\"\nversion = \"2.32.3\"\n\n[[package]]\nname = \"idna\"\nversion = \"3.7\"\n",
        )
        .unwrap();
        assert_eq!(
            locked(dir.path()).unwrap().unwrap(),
            ["requests==2.32.3", "idna==3.7"]
        );
        assert!(
            locked(tempfile::tempdir().unwrap().path())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn version_requests() {
        for (req, ok) in [
            ("3.11", true),
            ("3.11.2", true),
            ("3.11.7", false),
            ("3.12", false),
            (">=3.10", true),
            (">=3.10,<3.11", false),
            ("~=3.11", true),
            ("==3.11.*", true),
            ("^3.11", true),
            ("^3.12", false),
            ("~3.10", false),
        ] {
            assert_eq!(satisfies("3.11.2", req), ok, "{req}");
        }
    }
}
