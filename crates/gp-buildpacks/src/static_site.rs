//! Static sites: an `index.html` in `dist/`, `public/` or the app's root (that precedence: `dist/` is build
//! output, `public/` the usual folder of files to publish, the root the simplest site), or an `nginx.conf` at the
//! root. Served by the buildpack's own small server, or by nginx when the app brings an `nginx.conf`.
//!
//! What fails: a page that names a script or stylesheet of the site that is not there (it would build "fine" and
//! answer 404 for it in production), and an `nginx.conf` that cannot run as the unprivileged CNB user on `$PORT`.

use std::path::Path;

use crate::{Finding, Language, Report, Sourced, read};

/// What detection looks for.
pub const LOOKS_FOR: &str = "index.html at the root or in public/ or dist/ (or an nginx.conf)";

/// Where a site's `index.html` may be, in order of precedence.
pub const SITE_ROOTS: &[&str] = &["dist", "public", "."];

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &[
    "index.html",
    "public/index.html",
    "dist/index.html",
    "nginx.conf",
];

/// The `start` value for a site served by the built-in server: `static server: <root>/`, with a suffix when the
/// single-page-app fallback is on. The buildpack reads the root from the start's source (`<root>/index.html`).
pub const SPA_MARK: &str = " (single-page app: index.html for unknown paths)";

/// Fills `report` when `dir` is a static site; false when it is not.
pub fn detect(dir: &Path, _procfile: &[(String, String)], report: &mut Report) -> bool {
    let root = SITE_ROOTS
        .iter()
        .find(|r| dir.join(r).join("index.html").is_file());
    let nginx = read(dir, "nginx.conf");
    if root.is_none() && nginx.is_none() {
        return false;
    }
    report.language = Some(Language::Static);
    if let Some(conf) = &nginx {
        report.runtime = Some(Sourced::new("nginx (Debian nginx-light)", "nginx.conf"));
        report.start = Some(Sourced::new(
            "nginx -c nginx.conf ($PORT substituted)",
            "nginx.conf",
        ));
        check_nginx(conf, &mut report.findings);
    } else {
        report.runtime = Some(Sourced::new(
            "goldenpath static server",
            "built into the buildpack",
        ));
    }
    let Some(root) = root else {
        return true;
    };
    let index_name = if *root == "." {
        "index.html".to_owned()
    } else {
        format!("{root}/index.html")
    };
    let Some(index) = read(dir, &index_name) else {
        return true;
    };
    if nginx.is_none() {
        let shown = if *root == "." { "./" } else { root };
        let spa = spa_line(&index).map_or(String::new(), |_| SPA_MARK.to_owned());
        report.start = Some(Sourced::new(
            format!(
                "static server: {shown}{}{spa}",
                if *root == "." { "" } else { "/" }
            ),
            index_name.clone(),
        ));
    }
    check_assets(dir, root, &index_name, &index, &mut report.findings);
    true
}

/// The line (1-based) that shows the page is a single-page app: a module script or an empty mount point
/// (`<div id="root"></div>`, `<div id="app"></div>`).
#[must_use]
pub fn spa_line(index: &str) -> Option<usize> {
    index
        .lines()
        .position(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("type=\"module\"")
                || ["id=\"root\"></div>", "id=\"app\"></div>"]
                    .iter()
                    .any(|m| l.contains(m))
        })
        .map(|i| i + 1)
}

/// The value of attribute `name` in `tag` (`src="x"` or `src='x'`).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let at = from + pos;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let skip = tag.len() - rest.len() + 1;
        let value = tag[skip..].trim_start();
        let quote = value.chars().next()?;
        if quote == '"' || quote == '\'' {
            let inner = &value[1..];
            return inner.find(quote).map(|end| &inner[..end]);
        }
        return value.split([' ', '>']).next();
    }
    None
}

/// Every `<script src>` and `<link href>` (stylesheet, icon, preload) of the page that names a file of the site
/// which is not there: an error at its line.
fn check_assets(
    dir: &Path,
    root: &str,
    index_name: &str,
    index: &str,
    findings: &mut Vec<Finding>,
) {
    for (n, line) in index.lines().enumerate() {
        let mut rest = line;
        while let Some(open) = rest.find('<') {
            let tag_end = rest[open..].find('>').map_or(rest.len(), |e| open + e + 1);
            let tag = &rest[open..tag_end];
            rest = &rest[tag_end..];
            let lower = tag.to_ascii_lowercase();
            let target = if lower.starts_with("<script") {
                attr(tag, "src")
            } else if lower.starts_with("<link") {
                let rel = attr(tag, "rel").unwrap_or("").to_ascii_lowercase();
                ["stylesheet", "icon", "preload", "modulepreload"]
                    .iter()
                    .any(|r| rel.split_whitespace().any(|w| w == *r))
                    .then(|| attr(tag, "href"))
                    .flatten()
            } else {
                None
            };
            let Some(target) = target.filter(|t| is_local(t)) else {
                continue;
            };
            let path = target.split(['?', '#']).next().unwrap_or("");
            if path.is_empty() {
                continue;
            }
            let on_disk = if let Some(abs) = path.strip_prefix('/') {
                dir.join(root).join(abs)
            } else {
                dir.join(root).join(path)
            };
            if !on_disk.is_file() {
                let shown = if root == "." {
                    path.trim_start_matches('/').to_owned()
                } else {
                    format!("{root}/{}", path.trim_start_matches('/'))
                };
                findings.push(
                    Finding::error(
                        index_name,
                        format!(
                            "names `{target}`, which is not in the site ({shown} does not exist): the page would load without it (404)"
                        ),
                        format!("add {shown}, or correct the path in {index_name}"),
                    )
                    .at(n + 1),
                );
            }
        }
    }
}

/// A reference to a file of the site, not to another host, inline data or a template placeholder.
fn is_local(target: &str) -> bool {
    let t = target.trim();
    !(t.is_empty()
        || t.starts_with("//")
        || t.contains("://")
        || t.contains(['{', '%', '$', '<'])
        || ["data:", "blob:", "mailto:", "javascript:", "#"]
            .iter()
            .any(|p| t.to_ascii_lowercase().starts_with(p)))
}

/// What in an app's `nginx.conf` cannot work: a `listen` on a fixed port (the platform says the port in `$PORT`,
/// and ports below 1024 need root), no `listen $PORT` at all, and directives the buildpack sets itself.
fn check_nginx(conf: &str, findings: &mut Vec<Finding>) {
    let mut listens_on_port = false;
    for (n, raw) in conf.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.trim_end_matches(';').split_whitespace().collect();
        match words.first().copied() {
            Some("listen") => {
                let addr = words.get(1).copied().unwrap_or("");
                if addr.contains("$PORT") || addr.contains("${PORT}") {
                    listens_on_port = true;
                } else {
                    findings.push(
                        Finding::error(
                            "nginx.conf",
                            format!("`listen {addr}` is a fixed port: the app must listen on the port the platform gives in $PORT (and runs as an unprivileged user)"),
                            "write `listen $PORT;` (the buildpack substitutes the port when the app starts)",
                        )
                        .at(n + 1),
                    );
                }
            }
            Some(d @ ("daemon" | "pid")) => findings.push(
                Finding::error(
                    "nginx.conf",
                    format!("sets `{d}`, which the buildpack sets itself (nginx runs in the foreground with its pid file in a writable place)"),
                    format!("remove the `{d}` line"),
                )
                .at(n + 1),
            ),
            Some("user") => findings.push(
                Finding::warning(
                    "nginx.conf",
                    "`user` has no effect: nginx runs as the image's unprivileged user",
                    "remove the `user` line",
                )
                .at(n + 1),
            ),
            _ => {}
        }
    }
    if !listens_on_port && !findings.iter().any(|f| f.message.starts_with("`listen")) {
        findings.push(Finding::error(
            "nginx.conf",
            "no `listen $PORT;`: nginx would listen on port 80, which an unprivileged user cannot bind, not on the platform's $PORT",
            "add `listen $PORT;` to the server block (the buildpack substitutes the port when the app starts)",
        ));
    }
}
