//! Node.js: `package.json` with a lockfile (npm, Yarn or pnpm), `engines.node`, the build script and the start
//! command. A missing lockfile is an error: `npm ci` refuses to run, and resolving anew at every build is how
//! yesterday's working app breaks today.

use std::path::Path;

use crate::{Finding, Language, Report, Sourced, read};

const LOCKFILES: &[(&str, &str)] = &[
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
    ("yarn.lock", "yarn"),
    ("pnpm-lock.yaml", "pnpm"),
];

/// Where a build script writes a static site, in order of precedence.
pub const SITE_OUTPUTS: &[&str] = &["dist", "build", "out"];

/// A `package.json` with a build script and no way to start a server (no `scripts.start`, no `main`, no
/// server.js/index.js/app.js, no Procfile `web`): a site built with Node.js (Vite, Create React App, Astro, ...).
/// The default builder's group `[nodejs, static]` builds it with Node.js and serves its output.
#[must_use]
pub fn static_site(pkg: &serde_json::Value, dir: &Path, procfile: &[(String, String)]) -> bool {
    pkg["scripts"]["build"].is_string()
        && pkg["scripts"]["start"].is_null()
        && pkg["main"].is_null()
        && !["server.js", "index.js", "app.js"]
            .iter()
            .any(|f| dir.join(f).is_file())
        && !procfile.iter().any(|(k, _)| k == "web")
}

/// What detection looks for.
pub const LOOKS_FOR: &str = "package.json";

/// Fills `report` when `dir` has a package.json.
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    let Some(text) = read(dir, "package.json") else {
        return false;
    };
    report.language = Some(Language::Node);
    let pkg: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            report.findings.push(
                Finding::error(
                    "package.json",
                    format!("is not valid JSON: {e}"),
                    "fix the syntax (`node -e \"require('./package.json')\"` shows where)",
                )
                .at(e.line()),
            );
            return true;
        }
    };
    let deps = |key: &str| -> Vec<String> {
        pkg[key]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    report.dependencies = deps("dependencies");
    let dev = deps("devDependencies");
    if let Some((file, manager)) = LOCKFILES.iter().find(|(f, _)| dir.join(f).is_file()) {
        report.package_manager = Some(Sourced::new(*manager, *file));
    } else {
        {
            let declared = report.dependencies.len() + dev.len();
            report.findings.push(Finding::error(
                "package.json",
                format!(
                    "no lockfile (package-lock.json, yarn.lock or pnpm-lock.yaml) next to package.json{}: the build installs with `npm ci`, which needs one, and without it every build would resolve versions anew",
                    match declared {
                        0 => String::new(),
                        1 => " with 1 dependency".to_owned(),
                        n => format!(" with {n} dependencies"),
                    }
                ),
                "run `npm install` (or `yarn install` / `pnpm install`) and commit the lockfile it writes",
            ));
        }
    }
    if let Some(engine) = pkg["engines"]["node"].as_str() {
        report.runtime = Some(Sourced::new(engine, "package.json (engines.node)"));
    } else if let Some(v) = read(dir, ".nvmrc").or_else(|| read(dir, ".node-version")) {
        let v = v.trim().trim_start_matches('v').to_owned();
        if !v.is_empty() {
            report.runtime = Some(Sourced::new(v, ".nvmrc"));
        }
    }
    if let Some(build) = pkg["scripts"]["build"].as_str() {
        report.build = Some(Sourced::new(
            format!("npm run build ({build})"),
            "package.json (scripts.build)",
        ));
    }
    report.start = if let Some((_, cmd)) = procfile.iter().find(|(k, _)| k == "web") {
        Some(Sourced::new(cmd.clone(), "Procfile"))
    } else if let Some(start) = pkg["scripts"]["start"].as_str() {
        Some(Sourced::new(
            format!("npm start ({start})"),
            "package.json (scripts.start)",
        ))
    } else if let Some(main) = pkg["main"].as_str().filter(|m| dir.join(m).is_file()) {
        Some(Sourced::new(format!("node {main}"), "package.json (main)"))
    } else {
        ["server.js", "index.js", "app.js"]
            .into_iter()
            .find(|f| dir.join(f).is_file())
            .map(|f| Sourced::new(format!("node {f}"), f))
    };
    if report.start.is_none() && static_site(&pkg, dir, procfile) {
        report.start = Some(Sourced::new(
            format!(
                "a static site: what `npm run build` writes to {} (served by io.goldenpath.static)",
                SITE_OUTPUTS.join("/, ") + "/"
            ),
            "package.json (scripts.build and no start command)",
        ));
    } else if report.start.is_none() {
        report.findings.push(Finding::error(
            "package.json",
            "no start command: no Procfile `web:` entry, no `scripts.start`, no `main`, and no server.js/index.js/app.js",
            "add `\"scripts\": {\"start\": \"node server.js\"}` to package.json (or a Procfile with `web: ...`)",
        ));
    }
    true
}
