//! PHP: a Composer app (`composer.json`, with `composer.lock` whenever it requires packages) or a plain PHP app
//! (`index.php` at the top, in `public/` or `web/`). The `require.php` constraint is checked against the stack's
//! PHP 8.2, every `ext-*` requirement (of composer.json and of the locked packages) against the extensions the
//! stack ships, and `path` repositories must exist: all before the build, each naming the file, line and fix.

pub mod shared;

use std::path::Path;

use crate::{Finding, Language, Report, Sourced, read};
use shared::{PHP_LINE, available, document_root, extension, is_platform, line_satisfies};

/// What detection looks for.
pub const LOOKS_FOR: &str = "composer.json, or index.php (at the top, in public/ or web/)";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &["composer.json", "composer.lock"];

/// Where a plain app's entry point may be, in the order the document root is chosen.
const ENTRIES: &[&str] = &["public/index.php", "web/index.php", "index.php"];

/// The 1-based line of `"key"` inside the object `"section"` of a JSON text (the first after the section's own
/// line), for findings.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(&format!("\"{section}\"")))?;
    let needle = format!("\"{key}\"");
    lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(i, l)| l.contains(&needle) && (*i > start || l.matches('"').count() > 2))
        .map(|(i, _)| i + 1)
}

/// The 1-based line where `"key"` first appears.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    text.lines()
        .position(|l| l.contains(&needle))
        .map(|i| i + 1)
}

fn located(f: Finding, line: Option<usize>) -> Finding {
    match line {
        Some(l) => f.at(l),
        None => f,
    }
}

/// Fills `report` when `dir` is a PHP app; false when it is not.
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    let has_json = fs_err::symlink_metadata(dir.join("composer.json")).is_ok();
    let entry = ENTRIES.iter().find(|e| dir.join(e).is_file());
    if !has_json && entry.is_none() {
        return false;
    }
    report.language = Some(Language::Php);
    let root = document_root(dir);
    report.start = Some(match procfile.iter().find(|(k, _)| k == "web") {
        Some((_, cmd)) => Sourced::new(cmd.clone(), "Procfile"),
        None => Sourced::new(
            format!("nginx on $PORT + php-fpm, document root {root}"),
            if root == "." {
                "no public/ or web/".to_owned()
            } else {
                format!("{root}/")
            },
        ),
    });
    if procfile.iter().all(|(k, _)| k != "web") && !dir.join(root).join("index.php").is_file() {
        let at = if root == "." {
            "index.php".to_owned()
        } else {
            format!("{root}/index.php")
        };
        report.findings.push(Finding::warning(
            at.clone(),
            format!("no {at}: nginx serves the document root `{root}`, and `/` answers 404 without it"),
            format!("add {at} (public/ is the document root when it exists, else web/, else the app root), or a Procfile `web:` entry"),
        ));
    }
    if !has_json {
        return true;
    }
    // An unreadable composer.json was reported by the input check.
    let Some(text) = read(dir, "composer.json") else {
        return true;
    };
    composer(dir, &text, report);
    true
}

fn composer(dir: &Path, text: &str, report: &mut Report) {
    let json: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            report.findings.push(
                Finding::error(
                    "composer.json",
                    format!("is not valid JSON: {e}"),
                    "fix the syntax (`composer validate` shows where)",
                )
                .at(e.line()),
            );
            return;
        }
    };
    let Some(obj) = json.as_object() else {
        report.findings.push(Finding::error(
            "composer.json",
            "is not a JSON object",
            "write composer.json as an object, e.g. `{\"require\": {\"php\": \"^8.2\"}}`",
        ));
        return;
    };
    let packages = requirements(text, obj, report);
    report.dependencies.clone_from(&packages);
    path_repositories(dir, text, obj, report);
    let vendor = dir.join("vendor/composer/installed.json").is_file();
    let lock_text = read(dir, "composer.lock");
    match (&lock_text, packages.is_empty()) {
        (None, false) if vendor => {
            report.package_manager = Some(Sourced::new("composer", "vendor/ (committed)"));
            report.findings.push(located(
                Finding::warning(
                    "composer.json",
                    "requires packages but there is no composer.lock: the committed vendor/ is used as is, and its SBOM comes from vendor/composer/installed.json",
                    "run `composer update --lock` and commit composer.lock",
                ),
                line_of_key(text, "require"),
            ));
        }
        (None, false) => {
            let named: Vec<String> = packages.iter().map(|p| format!("`{p}`")).collect();
            report.findings.push(located(
                Finding::error(
                    "composer.json",
                    format!(
                        "requires {} but there is no composer.lock: the build installs exactly what the lock pins (Packagist is not consulted), and without it every build would resolve versions anew",
                        named.join(", ")
                    ),
                    "run `composer update --lock` (or `composer install`) and commit composer.lock",
                ),
                line_of_key(text, "require"),
            ));
        }
        (None, true) => {
            report.package_manager = Some(Sourced::new("composer", "composer.json"));
        }
        (Some(lock), _) => {
            report.package_manager = Some(Sourced::new(
                "composer",
                if vendor {
                    "composer.lock, vendor/ (committed)"
                } else {
                    "composer.lock"
                },
            ));
            check_lock(text, lock, &packages, report);
        }
    }
}

/// The `require` section: the PHP constraint and `ext-*` checked; the packages (not platform ones) returned.
fn requirements(
    text: &str,
    obj: &serde_json::Map<String, serde_json::Value>,
    report: &mut Report,
) -> Vec<String> {
    let require = obj.get("require").and_then(serde_json::Value::as_object);
    let mut packages = Vec::new();
    for (name, constraint) in require.into_iter().flatten() {
        let line = line_of(text, "require", name);
        let Some(constraint) = constraint.as_str() else {
            report.findings.push(located(
                Finding::error(
                    "composer.json",
                    format!("`require.{name}` is not a string constraint"),
                    format!("write it as `\"{name}\": \"^1.0\"`"),
                ),
                line,
            ));
            continue;
        };
        if name.eq_ignore_ascii_case("php") {
            report.runtime = Some(Sourced::new(constraint, "composer.json (require.php)"));
            if !line_satisfies(constraint) {
                report.findings.push(located(
                    Finding::error(
                        "composer.json",
                        format!(
                            "requires PHP `{constraint}`, but this stack provides PHP {}.{} only (Debian's php{0}.{1})",
                            PHP_LINE.0, PHP_LINE.1
                        ),
                        format!(
                            "allow {0}.{1} in `require.php` (e.g. `^{0}.{1}` or `>=8.1`), run `composer update --lock` and commit both files",
                            PHP_LINE.0, PHP_LINE.1
                        ),
                    ),
                    line,
                ));
            }
        } else if name.to_ascii_lowercase().starts_with("ext-") {
            if extension(name).is_none() {
                report.findings.push(located(
                    missing_extension("composer.json", name, None),
                    line,
                ));
            }
        } else if !is_platform(name) {
            packages.push(name.clone());
        }
    }
    packages
}

fn missing_extension(file: &str, name: &str, by: Option<&str>) -> Finding {
    let ext = name.strip_prefix("ext-").unwrap_or(name);
    Finding::error(
        file,
        format!(
            "{} the PHP extension `{ext}` ({name}), which this stack does not provide",
            by.map_or_else(|| "requires".to_owned(), |p| format!("`{p}` requires")),
        ),
        format!(
            "drop the requirement (or the package that needs it), or build with a stack that ships it; this stack has: {}",
            available()
        ),
    )
}

/// Every `path` repository of composer.json must exist (the build installs from it offline).
fn path_repositories(
    dir: &Path,
    text: &str,
    obj: &serde_json::Map<String, serde_json::Value>,
    report: &mut Report,
) {
    let repos: Vec<&serde_json::Value> = match obj.get("repositories") {
        Some(serde_json::Value::Array(a)) => a.iter().collect(),
        Some(serde_json::Value::Object(o)) => o.values().collect(),
        _ => Vec::new(),
    };
    for r in repos {
        if r["type"] != "path" {
            continue;
        }
        let Some(url) = r["url"].as_str() else {
            continue;
        };
        if url.contains('*') || url.starts_with('/') {
            continue; // globs and absolute paths are left to Composer
        }
        if !dir.join(url).join("composer.json").is_file() {
            report.findings.push(located(
                Finding::error(
                    "composer.json",
                    format!("the `path` repository `{url}` has no composer.json in the app"),
                    format!("commit the package at {url}/ (with its composer.json), or fix the repository's `url`"),
                ),
                line_of_key(text, url),
            ));
        }
    }
}

/// composer.lock: valid, listing every package composer.json requires, and asking only for extensions the stack
/// has.
fn check_lock(json_text: &str, lock_text: &str, packages: &[String], report: &mut Report) {
    let lock: serde_json::Value = match serde_json::from_str(lock_text) {
        Ok(v) => v,
        Err(e) => {
            report.findings.push(
                Finding::error(
                    "composer.lock",
                    format!("is not valid JSON: {e}"),
                    "regenerate it with `composer update --lock` and commit it",
                )
                .at(e.line()),
            );
            return;
        }
    };
    let locked = lock["packages"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = locked
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_ascii_lowercase))
        .collect();
    for p in packages {
        if !names.contains(&p.to_ascii_lowercase()) {
            report.findings.push(located(
                Finding::error(
                    "composer.json",
                    format!(
                        "requires `{p}`, which composer.lock does not list: the lock is out of date"
                    ),
                    format!("run `composer update {p}` and commit composer.lock"),
                ),
                line_of(json_text, "require", p),
            ));
        }
    }
    for p in &locked {
        let Some(name) = p["name"].as_str() else {
            continue;
        };
        for req in p["require"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if req.to_ascii_lowercase().starts_with("ext-") && extension(req).is_none() {
                report.findings.push(located(
                    missing_extension("composer.lock", req, Some(name)),
                    line_of_key(lock_text, name),
                ));
            }
        }
    }
}
