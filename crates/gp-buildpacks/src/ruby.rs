//! Ruby: Bundler apps (`Gemfile` with its `Gemfile.lock`), the Ruby version request (`ruby` in the Gemfile or
//! `.ruby-version`), the gems the lock pins, `vendor/cache`, and the start command (Procfile, Rails, `config.ru`
//! with puma or rackup). A Gemfile without its lock is an error: the build installs frozen, exactly what the lock
//! says, and resolving anew at every build is how yesterday's working app breaks today.

use std::collections::BTreeSet;
use std::path::Path;

use crate::{Finding, Language, Report, Sourced, read};

/// What detection looks for.
pub const LOOKS_FOR: &str = "Gemfile";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &["Gemfile", "Gemfile.lock", ".ruby-version", "config.ru"];

/// The platform the stack builds and runs on, as Bundler names it.
pub const PLATFORM: &str = "x86_64-linux";

/// A `gem` line of the Gemfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemfileGem {
    pub name: String,
    pub line: usize,
    /// The groups it is in (`group :test do` blocks, `group:`/`groups:` options); empty for the default group.
    pub groups: Vec<String>,
}

impl GemfileGem {
    /// Whether the build leaves it out (only in the `development` and `test` groups).
    #[must_use]
    pub fn excluded(&self) -> bool {
        !self.groups.is_empty()
            && self
                .groups
                .iter()
                .all(|g| EXCLUDED_GROUPS.contains(&g.as_str()))
    }
}

/// The groups the build does not install (`BUNDLE_WITHOUT=development:test`).
pub const EXCLUDED_GROUPS: &[&str] = &["development", "test"];

/// The symbols and strings of a `group :a, "b"` list (`:a`, `"b"`, `[:a, :b]`).
fn group_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(|p| {
            p.trim()
                .trim_matches(['[', ']', ' '])
                .trim_start_matches(':')
                .trim_matches(['"', '\''])
                .to_owned()
        })
        .filter(|g| !g.is_empty() && g.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

/// What the Gemfile says, as far as a line-oriented reading can tell (it is Ruby code; the common forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gemfile {
    pub gems: Vec<GemfileGem>,
    /// The `ruby "3.1.2"` request and its line; `ruby file: ".ruby-version"` reads that file instead.
    pub ruby: Option<(String, usize)>,
    pub ruby_file: Option<(String, usize)>,
}

/// The first quoted string of `s` (single or double quotes).
fn first_quoted(s: &str) -> Option<String> {
    let start = s.find(['"', '\''])?;
    let quote = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_owned())
}

/// Reads the `gem` and `ruby` lines of a Gemfile.
#[must_use]
pub fn parse_gemfile(text: &str) -> Gemfile {
    let mut out = Gemfile::default();
    // The blocks the line is in: a `group ... do` block's groups, or none for other blocks (`platforms`, `source`).
    let mut blocks: Vec<Vec<String>> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.starts_with('#') {
            continue;
        }
        if line == "end" {
            blocks.pop();
            continue;
        }
        let opens = line.ends_with(" do")
            || (line.contains(" do |") && line.ends_with('|'))
            || ["if ", "unless ", "case ", "begin"]
                .iter()
                .any(|k| line.starts_with(k));
        if opens {
            let groups = line
                .strip_prefix("group ")
                .or_else(|| line.strip_prefix("group("))
                .map(|rest| group_names(rest.split(" do").next().unwrap_or("")))
                .unwrap_or_default();
            blocks.push(groups);
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("gem ")
            .or_else(|| line.strip_prefix("gem("))
        {
            if let Some(name) = first_quoted(rest) {
                let mut groups: Vec<String> = blocks.iter().flatten().cloned().collect();
                for key in ["group:", "groups:", ":group =>", ":groups =>"] {
                    if let Some(list) = rest.split(key).nth(1) {
                        let list = if list.trim_start().starts_with('[') {
                            list.split(']').next().unwrap_or("")
                        } else {
                            list.split(',').next().unwrap_or("")
                        };
                        groups.extend(group_names(list));
                    }
                }
                out.gems.push(GemfileGem {
                    name,
                    line: i + 1,
                    groups,
                });
            }
        } else if let Some(rest) = line
            .strip_prefix("ruby ")
            .or_else(|| line.strip_prefix("ruby("))
        {
            let rest = rest.trim_start();
            if rest.starts_with("file:") || rest.starts_with(":file") {
                if let Some(f) = first_quoted(rest) {
                    out.ruby_file = Some((f, i + 1));
                }
            } else if let Some(v) = first_quoted(rest) {
                out.ruby = Some((v, i + 1));
            }
        }
    }
    out
}

/// A gem the lock pins: `name (version)` or `name (version-platform)` under `GEM`'s `specs:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedGem {
    pub name: String,
    pub version: String,
    /// `x86_64-linux` for a platform gem, else `None` (a `ruby` gem: source, compiled when it has extensions).
    pub platform: Option<String>,
    pub line: usize,
    /// The names of the gems it depends on (the lock's indented lines under it).
    pub deps: Vec<String>,
}

impl LockedGem {
    /// The file name of the gem in `vendor/cache`.
    #[must_use]
    pub fn file_name(&self) -> String {
        match &self.platform {
            Some(p) => format!("{}-{}-{p}.gem", self.name, self.version),
            None => format!("{}-{}.gem", self.name, self.version),
        }
    }
}

/// What `Gemfile.lock` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lockfile {
    /// The gems of `GEM` sections (from a gem server or `vendor/cache`), in file order.
    pub gems: Vec<LockedGem>,
    pub platforms: Vec<String>,
    /// The names under `DEPENDENCIES` (every group).
    pub dependencies: BTreeSet<String>,
    /// The line of a merge conflict marker, if any.
    pub conflict: Option<usize>,
}

/// Splits `5.6.5-x86_64-linux` into the version and the platform (versions have no `-`).
fn version_platform(v: &str) -> (String, Option<String>) {
    match v.split_once('-') {
        Some((ver, plat)) => (ver.to_owned(), Some(plat.to_owned())),
        None => (v.to_owned(), None),
    }
}

/// Reads a `Gemfile.lock`.
#[must_use]
pub fn parse_lockfile(text: &str) -> Lockfile {
    let mut out = Lockfile::default();
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        if ["<<<<<<<", "=======", ">>>>>>>"]
            .iter()
            .any(|m| line.starts_with(m))
        {
            out.conflict.get_or_insert(i + 1);
            continue;
        }
        if !line.starts_with(' ') {
            line.trim().clone_into(&mut section);
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let item = line.trim();
        match section.as_str() {
            "GEM" | "GIT" | "PATH" if indent == 4 => {
                let Some((name, rest)) = item.split_once(" (") else {
                    continue;
                };
                if section == "GEM" {
                    let (version, platform) = version_platform(rest.trim_end_matches(')'));
                    out.gems.push(LockedGem {
                        name: name.to_owned(),
                        version,
                        platform,
                        line: i + 1,
                        deps: Vec::new(),
                    });
                }
            }
            "GEM" if indent == 6 => {
                if let Some(last) = out.gems.last_mut() {
                    let name = item.split(' ').next().unwrap_or("");
                    last.deps.push(name.to_owned());
                }
            }
            "PLATFORMS" => out.platforms.push(item.to_owned()),
            "DEPENDENCIES" if indent == 2 => {
                let name = item.split([' ', '!']).next().unwrap_or("");
                if !name.is_empty() {
                    out.dependencies.insert(name.to_owned());
                }
            }
            _ => {}
        }
    }
    out
}

/// The Ruby version request: the Gemfile's `ruby` line (or the file it names), else `.ruby-version`.
fn runtime(dir: &Path, gemfile: &Gemfile, findings: &mut Vec<Finding>) -> Option<Sourced> {
    if let Some((v, line)) = &gemfile.ruby {
        return Some(Sourced::new(v.clone(), format!("Gemfile:{line}")));
    }
    let (file, named_at) = match &gemfile.ruby_file {
        Some((f, line)) => (f.clone(), Some(*line)),
        None => (".ruby-version".to_owned(), None),
    };
    let Some(text) = read(dir, &file) else {
        if let Some(line) = named_at {
            findings.push(
                Finding::error(
                    "Gemfile",
                    format!("`ruby file: \"{file}\"` names a file the app does not have"),
                    format!("commit {file} with the Ruby version (e.g. `3.1`), or write `ruby \"3.1.2\"` in the Gemfile"),
                )
                .at(line),
            );
        }
        return None;
    };
    let v = text.lines().next().unwrap_or("").trim();
    let v = v.strip_prefix("ruby-").unwrap_or(v);
    (!v.is_empty()).then(|| Sourced::new(v, format!("{file}:1")))
}

/// The gems of the lock the build installs: what the Gemfile's gems outside `development` and `test` need, with
/// their dependencies (and every gem the lock depends on that the Gemfile does not name, e.g. from `gemspec`).
fn installed_names(gemfile: &Gemfile, lock: &Lockfile) -> BTreeSet<String> {
    let named: BTreeSet<&str> = gemfile.gems.iter().map(|g| g.name.as_str()).collect();
    let mut todo: Vec<String> = gemfile
        .gems
        .iter()
        .filter(|g| !g.excluded())
        .map(|g| g.name.clone())
        .chain(
            lock.dependencies
                .iter()
                .filter(|d| !named.contains(d.as_str()))
                .cloned(),
        )
        .collect();
    let mut out = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !out.insert(name.clone()) {
            continue;
        }
        for g in lock.gems.iter().filter(|g| g.name == name) {
            todo.extend(g.deps.iter().cloned());
        }
    }
    out
}

/// Every gem of the lock's `GEM` sections that the build installs has a `.gem` in `vendor/cache` (one of its
/// platforms: the source gem or ours); the missing ones, first line each.
fn missing_from_cache(dir: &Path, gemfile: &Gemfile, lock: &Lockfile) -> Vec<(String, usize)> {
    let cache = dir.join("vendor/cache");
    let needed = installed_names(gemfile, lock);
    let mut missing: Vec<(String, usize)> = Vec::new();
    let mut seen = BTreeSet::new();
    for g in &lock.gems {
        if !needed.contains(&g.name) || !seen.insert(g.name.clone()) {
            continue;
        }
        let candidates: Vec<&LockedGem> = lock.gems.iter().filter(|o| o.name == g.name).collect();
        let usable = candidates.iter().any(|c| {
            c.platform.as_deref().is_none_or(|p| p == PLATFORM)
                && cache.join(c.file_name()).is_file()
        });
        if !usable {
            missing.push((g.file_name(), g.line));
        }
    }
    missing
}

/// Fills `report` when `dir` has a Gemfile.
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    let Some(text) = read(dir, "Gemfile") else {
        return false;
    };
    report.language = Some(Language::Ruby);
    let gemfile = parse_gemfile(&text);
    report.dependencies = gemfile.gems.iter().map(|g| g.name.clone()).collect();
    report.runtime = runtime(dir, &gemfile, &mut report.findings);
    let lock = read(dir, "Gemfile.lock").map(|t| parse_lockfile(&t));
    let vendored = dir.join("vendor/cache").is_dir();
    match &lock {
        None => report.findings.push(Finding::error(
            "Gemfile",
            format!(
                "no Gemfile.lock next to the Gemfile{}: the build installs the gems frozen (Bundler's deployment mode), which needs the lock, and without it every build would resolve versions anew",
                match gemfile.gems.len() {
                    0 => String::new(),
                    1 => " with 1 gem".to_owned(),
                    n => format!(" with {n} gems"),
                }
            ),
            "run `bundle lock` (or `bundle install`) and commit the Gemfile.lock it writes",
        )),
        Some(lock) => {
            report.package_manager = Some(Sourced::new(
                "bundler",
                if vendored {
                    "Gemfile.lock, vendor/cache"
                } else {
                    "Gemfile.lock"
                },
            ));
            check_lock(dir, &gemfile, lock, vendored, report);
        }
    }
    report.start = start(dir, lock.as_ref(), procfile);
    if report.start.is_none() {
        report.findings.push(Finding::warning(
            "Procfile",
            "no start command: no Procfile `web:` entry, no Rails app (bin/rails), and no config.ru",
            "add a Procfile with `web: <command>` (e.g. `web: bundle exec puma -b tcp://0.0.0.0:$PORT`), or a config.ru with puma in the Gemfile",
        ));
    }
    true
}

fn check_lock(dir: &Path, gemfile: &Gemfile, lock: &Lockfile, vendored: bool, report: &mut Report) {
    if let Some(line) = lock.conflict {
        report.findings.push(
            Finding::error(
                "Gemfile.lock",
                "has a merge conflict marker",
                "resolve the conflict: take either side and run `bundle lock` to write a consistent lock, then commit it",
            )
            .at(line),
        );
        return;
    }
    for g in &gemfile.gems {
        if !lock.dependencies.contains(&g.name) {
            report.findings.push(
                Finding::error(
                    "Gemfile",
                    format!(
                        "gem `{}` is not in Gemfile.lock's DEPENDENCIES: the lock is out of date, and a frozen install refuses it",
                        g.name
                    ),
                    "run `bundle lock` (or `bundle install`) and commit the updated Gemfile.lock",
                )
                .at(g.line),
            );
        }
    }
    if !lock.platforms.is_empty()
        && !lock
            .platforms
            .iter()
            .any(|p| p == "ruby" || p == PLATFORM || p == "x86_64-linux-gnu")
    {
        report.findings.push(Finding::error(
            "Gemfile.lock",
            format!(
                "PLATFORMS lists {} but not `ruby` or `{PLATFORM}`, the platform the stack builds and runs on: a frozen install refuses it",
                lock.platforms.join(", ")
            ),
            format!("run `bundle lock --add-platform {PLATFORM}` and commit Gemfile.lock"),
        ));
    }
    if vendored {
        for (file, line) in missing_from_cache(dir, gemfile, lock) {
            report.findings.push(
                Finding::error(
                    "Gemfile.lock",
                    format!(
                        "vendor/cache has no {file}: the build installs from vendor/cache only (`bundle install --local`, no network), so it would fail"
                    ),
                    "run `bundle cache` (with `bundle lock --add-platform x86_64-linux` first for platform gems) and commit vendor/cache, or delete vendor/cache to install from the gem server",
                )
                .at(line),
            );
        }
    }
    if lock.gems.iter().any(|g| g.name == "rails") && !dir.join("bin/rails").is_file() {
        report.findings.push(Finding::warning(
            "Gemfile.lock",
            "a Rails app without bin/rails: the default start command runs it",
            "commit bin/rails (`bundle exec rails app:update:bin`), or add a Procfile `web:` entry",
        ));
    }
}

/// The `web` command: the Procfile's, else Rails', else `config.ru` with puma or rackup.
fn start(dir: &Path, lock: Option<&Lockfile>, procfile: &[(String, String)]) -> Option<Sourced> {
    if let Some((_, cmd)) = procfile.iter().find(|(k, _)| k == "web") {
        return Some(Sourced::new(cmd.clone(), "Procfile"));
    }
    let has = |name: &str| lock.is_some_and(|l| l.gems.iter().any(|g| g.name == name));
    if dir.join("bin/rails").is_file() && (has("rails") || has("railties")) {
        return Some(Sourced::new(
            "bin/rails server -b 0.0.0.0 -p $PORT",
            "bin/rails, Rails",
        ));
    }
    if !dir.join("config.ru").is_file() {
        return None;
    }
    if has("puma") {
        Some(Sourced::new(
            "bundle exec puma -b tcp://0.0.0.0:$PORT",
            "config.ru, puma in Gemfile.lock",
        ))
    } else {
        Some(Sourced::new(
            "bundle exec rackup -o 0.0.0.0 -p $PORT",
            "config.ru",
        ))
    }
}
