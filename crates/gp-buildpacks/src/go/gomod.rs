//! What the Go detection and the Go buildpack executable both read, with no dependency on the rest of the crate
//! (the executable includes this file as its own module): the toolchain inventory, `go.mod`, `go.sum`,
//! `vendor/modules.txt`, and the module's `main` packages.

use std::path::Path;

/// The toolchains the buildpack can install: version and the SHA-256 of the Go module proxy's zip of
/// `golang.org/toolchain@v0.0.1-go<version>.linux-amd64`. Newest last.
pub const INVENTORY: &[(&str, &str)] = &[(
    "1.27.3",
    "af4c06478303fdd1bfb335fab86c7ccb9b12e529044a946a16a1c4bcc779f8d7",
)];

/// A Go version, `1.27.3` or `1.27` (patch 0) or `1.21rc1` (before `1.21.0`), compared as Go compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u64,
    pub minor: u64,
    /// A release candidate or beta sorts before the release: `(patch, 1)` is a release, `(0, 0)` a prerelease.
    pub patch: (u64, u8),
}

impl GoVersion {
    /// Parses `1.27`, `1.27.3`, `1.21rc1`, `go1.27.3` (the `go` prefix only when `prefixed`).
    #[must_use]
    pub fn parse(text: &str, prefixed: bool) -> Option<Self> {
        let text = if prefixed {
            text.strip_prefix("go")?
        } else {
            text
        };
        let (release, pre) = match text.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        if let Some(p) = pre
            && !(p.starts_with("rc") || p.starts_with("beta"))
        {
            return None;
        }
        let parts: Vec<&str> = release.split('.').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let num = |s: &str| -> Option<u64> {
            s.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| s.parse().ok())
                .flatten()
        };
        let major = num(parts[0])?;
        let minor = num(parts[1])?;
        let patch = match (parts.get(2), pre) {
            (Some(p), None) => (num(p)?, 1),
            (None, None) => (0, 1),
            (None, Some(_)) => (0, 0),
            (Some(_), Some(_)) => return None,
        };
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.patch {
            (p, 1) => write!(f, "{}.{}.{p}", self.major, self.minor),
            _ => write!(f, "{}.{} (a prerelease)", self.major, self.minor),
        }
    }
}

/// One `require` of go.mod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Require {
    pub path: String,
    pub version: String,
    pub line: usize,
    pub indirect: bool,
}

/// What the build needs from go.mod; every value with its 1-based line.
#[derive(Debug, Clone, Default)]
pub struct GoMod {
    pub module: Option<(String, usize)>,
    pub go: Option<(String, usize)>,
    pub toolchain: Option<(String, usize)>,
    pub requires: Vec<Require>,
    /// Module paths replaced by a directory (`=> ../lib`): no checksum, nothing downloaded.
    pub local_replacements: Vec<String>,
    /// Lines that are not go.mod syntax, with what is wrong.
    pub errors: Vec<(usize, String)>,
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '`').to_owned()
}

impl GoMod {
    /// Parses go.mod's directives (single-line and blocks); comments end at `//` (a `// indirect` marks an
    /// indirect requirement).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut m = Self::default();
        let mut block: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let (code, comment) = match raw.find("//") {
                Some(at) => (&raw[..at], raw[at + 2..].trim()),
                None => (raw, ""),
            };
            let code = code.trim();
            if code.is_empty() {
                continue;
            }
            let indirect = comment == "indirect" || comment.starts_with("indirect;");
            if let Some(verb) = &block {
                if code == ")" {
                    block = None;
                } else {
                    let verb = verb.clone();
                    m.directive(&verb, code, line, indirect);
                }
                continue;
            }
            let (verb, rest) = code.split_once(char::is_whitespace).unwrap_or((code, ""));
            let rest = rest.trim();
            if rest == "(" {
                block = Some(verb.to_owned());
            } else if rest.starts_with('(') && rest.ends_with(')') {
                let inner = rest[1..rest.len() - 1].trim();
                if !inner.is_empty() {
                    m.directive(verb, inner, line, indirect);
                }
            } else {
                m.directive(verb, rest, line, indirect);
            }
        }
        if block.is_some() {
            m.errors.push((
                text.lines().count(),
                "a `(` block is not closed with `)`".into(),
            ));
        }
        m
    }

    fn directive(&mut self, verb: &str, rest: &str, line: usize, indirect: bool) {
        let words: Vec<&str> = rest.split_whitespace().collect();
        match verb {
            "module" => self.module = Some((unquote(rest), line)),
            "go" => self.go = Some((rest.to_owned(), line)),
            "toolchain" => self.toolchain = Some((rest.to_owned(), line)),
            "require" => match words.as_slice() {
                [path, version] => self.requires.push(Require {
                    path: unquote(path),
                    version: (*version).to_owned(),
                    line,
                    indirect,
                }),
                _ => self.errors.push((
                    line,
                    format!("`require {rest}` is not `require <module path> <version>`"),
                )),
            },
            "replace" => {
                if let Some((_, new)) = rest.split_once("=>") {
                    let target = new.split_whitespace().next().unwrap_or("");
                    let old = rest.split_whitespace().next().unwrap_or("");
                    if target.starts_with("./")
                        || target.starts_with("../")
                        || target.starts_with('/')
                    {
                        self.local_replacements.push(unquote(old));
                    }
                } else {
                    self.errors
                        .push((line, format!("`replace {rest}` has no `=>`")));
                }
            }
            "exclude" | "retract" | "godebug" | "tool" | "ignore" => {}
            other => self
                .errors
                .push((line, format!("`{other}` is not a go.mod directive"))),
        }
    }

    /// The requirements that need a checksum (and a download): all but those replaced by a directory.
    pub fn remote_requires(&self) -> impl Iterator<Item = &Require> {
        self.requires
            .iter()
            .filter(|r| !self.local_replacements.contains(&r.path))
    }
}

/// Whether go.sum has a line for `path version` (the module's hash or its go.mod's).
#[must_use]
pub fn sum_has(sum: &str, path: &str, version: &str) -> bool {
    sum.lines().any(|l| {
        let mut w = l.split_whitespace();
        w.next() == Some(path)
            && w.next()
                .is_some_and(|v| v == version || v.strip_suffix("/go.mod") == Some(version))
    })
}

/// The `(path, version)` of each `# path version` line of vendor/modules.txt.
#[must_use]
pub fn vendored_modules(modules_txt: &str) -> Vec<(String, String)> {
    modules_txt
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("# ")?;
            let mut w = rest.split_whitespace();
            let (path, version) = (w.next()?, w.next()?);
            (!path.starts_with('#')).then(|| (path.to_owned(), version.to_owned()))
        })
        .collect()
}

/// The toolchain to use: the newest of the inventory that is at least what go.mod asks (`go` and `toolchain` are
/// minimums, as Go itself reads them). `Err` names the line and what it asks for.
pub fn choose_toolchain(m: &GoMod) -> Result<(&'static str, &'static str), ToolchainError> {
    let mut want: Option<(GoVersion, &str, usize, &'static str)> = None;
    if let Some((text, line)) = &m.go {
        let v = GoVersion::parse(text, false).ok_or(ToolchainError::Invalid {
            line: *line,
            directive: "go",
            text: text.clone(),
        })?;
        want = Some((v, text, *line, "go"));
    }
    if let Some((text, line)) = &m.toolchain
        && text != "default"
    {
        let v = GoVersion::parse(text, true).ok_or(ToolchainError::Invalid {
            line: *line,
            directive: "toolchain",
            text: text.clone(),
        })?;
        if want.is_none_or(|(w, ..)| v > w) {
            want = Some((v, text, *line, "toolchain"));
        }
    }
    let newest = INVENTORY
        .iter()
        .rev()
        .find(|(v, _)| {
            let Some(have) = GoVersion::parse(v, false) else {
                return false;
            };
            want.is_none_or(|(w, ..)| have >= w)
        })
        .copied();
    match (newest, want) {
        (Some(t), _) => Ok(t),
        (None, Some((_, text, line, directive))) => Err(ToolchainError::Unavailable {
            line,
            directive,
            text: text.to_owned(),
        }),
        (None, None) => Err(ToolchainError::Unavailable {
            line: 0,
            directive: "go",
            text: String::new(),
        }),
    }
}

/// Why no toolchain of the inventory fits go.mod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolchainError {
    Invalid {
        line: usize,
        directive: &'static str,
        text: String,
    },
    Unavailable {
        line: usize,
        directive: &'static str,
        text: String,
    },
}

/// The inventory's versions as `go1.27.3, ...`.
#[must_use]
pub fn inventory_list() -> String {
    INVENTORY
        .iter()
        .map(|(v, _)| format!("go{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most directories [`main_packages`] looks at: a bigger tree is not walked further (its deeper main packages
/// can still be named with `BP_GO_TARGETS`).
const MAX_DIRS: usize = 5000;

/// Whether the Go file declares `package main` (and is not excluded with `//go:build ignore`).
fn is_main_file(text: &str) -> bool {
    let mut in_block = false;
    for line in text.lines() {
        let mut l = line.trim();
        if in_block {
            match l.find("*/") {
                Some(at) => {
                    in_block = false;
                    l = l[at + 2..].trim();
                }
                None => continue,
            }
        }
        if l.starts_with("//go:build") && l.split_whitespace().nth(1) == Some("ignore") {
            return false;
        }
        if l.is_empty() || l.starts_with("//") {
            continue;
        }
        if l.starts_with("/*") {
            if !l.contains("*/") {
                in_block = true;
            }
            continue;
        }
        let mut w = l.split_whitespace();
        return w.next() == Some("package")
            && w.next().map(|p| p.trim_end_matches(';')) == Some("main");
    }
    false
}

/// The module's `main` packages as `.` or `./cmd/web`, sorted: directories under `dir` with a non-test `.go` file
/// declaring `package main`, skipping `vendor`, `testdata`, hidden and `_` directories and nested modules.
#[must_use]
pub fn main_packages(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), ".".to_owned())];
    let mut seen = 0;
    while let Some((path, rel)) = stack.pop() {
        seen += 1;
        if seen > MAX_DIRS {
            break;
        }
        let Ok(rd) = fs_err::read_dir(&path) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(fs_err::DirEntry::file_name);
        let mut main = false;
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                let skip = name.starts_with('.')
                    || name.starts_with('_')
                    || name == "vendor"
                    || name == "testdata"
                    || e.path().join("go.mod").exists();
                if !skip {
                    stack.push((e.path(), format!("{rel}/{name}")));
                }
            } else if ft.is_file()
                && !main
                && Path::new(&name).extension().is_some_and(|x| x == "go")
                && !name.ends_with("_test.go")
                && fs_err::read_to_string(e.path()).is_ok_and(|t| is_main_file(&t))
            {
                main = true;
            }
        }
        if main {
            found.push(rel);
        }
    }
    found.sort();
    found
}

/// `./cmd/web` for `cmd/web`, `./cmd/web/`, `./cmd/web`; `.` for `.` and `./`.
#[must_use]
pub fn normalize_target(t: &str) -> String {
    let t = t.trim().trim_end_matches('/');
    let t = t.strip_prefix("./").unwrap_or(t);
    if t.is_empty() || t == "." {
        ".".to_owned()
    } else {
        format!("./{t}")
    }
}

/// The targets `BP_GO_TARGETS` names (`./cmd/web,./cmd/worker`; commas, colons or spaces between), normalized.
#[must_use]
pub fn parse_targets(value: &str) -> Vec<String> {
    value
        .split([',', ':', ' ', '\t'])
        .filter(|t| !t.trim().is_empty())
        .map(normalize_target)
        .collect()
}

/// The executable `go build` makes of a main package: its directory's name, or for `.` the module path's last
/// element (a major version suffix `/v2` skipped, as Go does).
#[must_use]
pub fn binary_name(target: &str, module: &str) -> String {
    let path = if target == "." {
        module.to_owned()
    } else {
        format!("{module}/{}", target.trim_start_matches("./"))
    };
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > 1
        && parts.last().is_some_and(|l| {
            l.len() > 1 && l.starts_with('v') && l[1..].bytes().all(|b| b.is_ascii_digit())
        })
    {
        parts.pop();
    }
    parts.last().copied().unwrap_or("app").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_go_does() {
        let v = |s| GoVersion::parse(s, false).unwrap();
        assert!(v("1.27") < v("1.27.3"));
        assert!(v("1.27rc1") < v("1.27"));
        assert!(v("1.27.3") < v("1.30"));
        assert_eq!(GoVersion::parse("go1.25.1", true), Some(v("1.25.1")));
        for bad in ["1", "1.x", "1.27.3.4", "", "1.27-foo", "go1.27"] {
            assert_eq!(GoVersion::parse(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn go_mod_blocks_comments_and_replacements() {
        let m = GoMod::parse(
            "module example.com/x // the app\n\ngo 1.26\ntoolchain go1.27.0\nrequire (\n\tgithub.com/a/b v1.0.0\n\tgithub.com/c/d v0.2.0 // indirect\n)\nrequire example.com/lib v0.0.0\nreplace example.com/lib => ../lib\nbogus x\n",
        );
        assert_eq!(m.module, Some(("example.com/x".into(), 1)));
        assert_eq!(m.go, Some(("1.26".into(), 3)));
        assert_eq!(m.toolchain, Some(("go1.27.0".into(), 4)));
        assert_eq!(m.requires.len(), 3);
        assert_eq!(m.requires[0].line, 6);
        assert!(m.requires[1].indirect);
        assert_eq!(
            m.remote_requires()
                .map(|r| r.path.as_str())
                .collect::<Vec<_>>(),
            ["github.com/a/b", "github.com/c/d"]
        );
        assert_eq!(
            m.errors,
            [(11, "`bogus` is not a go.mod directive".to_owned())]
        );
    }

    #[test]
    fn toolchain_choice() {
        let pick = |text: &str| choose_toolchain(&GoMod::parse(text)).map(|t| t.0);
        assert_eq!(pick("go 1.26\n"), Ok("1.27.3"));
        assert_eq!(pick("go 1.27.3\n"), Ok("1.27.3"));
        assert_eq!(pick("go 1.26\ntoolchain go1.25.1\n"), Ok("1.27.3"));
        assert_eq!(pick(""), Ok("1.27.3"));
        assert!(matches!(
            pick("go 1.30\n"),
            Err(ToolchainError::Unavailable {
                line: 1,
                directive: "go",
                ..
            })
        ));
        assert!(matches!(
            pick("go 1.26\ntoolchain go1.27.4\n"),
            Err(ToolchainError::Unavailable {
                line: 2,
                directive: "toolchain",
                ..
            })
        ));
        assert!(matches!(
            pick("\ngo one\n"),
            Err(ToolchainError::Invalid { line: 2, .. })
        ));
    }

    #[test]
    fn main_files_and_binary_names() {
        assert!(is_main_file(
            "// Command web.\n/* a\nblock */\npackage main\n"
        ));
        assert!(!is_main_file("//go:build ignore\n\npackage main\n"));
        assert!(!is_main_file("package web\n"));
        assert_eq!(binary_name(".", "example.com/app/v2"), "app");
        assert_eq!(binary_name("./cmd/web", "example.com/app"), "web");
        assert_eq!(normalize_target("cmd/web/"), "./cmd/web");
        assert_eq!(
            parse_targets("./cmd/web, cmd/worker"),
            ["./cmd/web", "./cmd/worker"]
        );
    }

    #[test]
    fn sums_and_vendor_lists() {
        let sum = "github.com/a/b v1.0.0/go.mod h1:x=\n";
        assert!(sum_has(sum, "github.com/a/b", "v1.0.0"));
        assert!(!sum_has(sum, "github.com/a/b", "v1.0.1"));
        assert_eq!(
            vendored_modules("# example.com/g v0.1.0\n## explicit; go 1.26\nexample.com/g\n"),
            [("example.com/g".to_owned(), "v0.1.0".to_owned())]
        );
    }
}
