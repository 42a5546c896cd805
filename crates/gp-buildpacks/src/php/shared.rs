//! What detection and the PHP buildpack executable both need: the stack's PHP line and extensions (Debian's
//! php8.2 packages), Composer's platform package names and its version constraints. Included by `php.rs` and, by
//! path, by `bin/php-buildpack.rs` (the library keeps its language modules private).

use std::path::Path;

/// The document root nginx serves: `public/`, else `web/`, else the app root (`.`).
#[must_use]
pub fn document_root(dir: &Path) -> &'static str {
    ["public", "web"]
        .into_iter()
        .find(|d| dir.join(d).is_dir())
        .unwrap_or(".")
}

/// The PHP line the stack provides (Debian bookworm's `php8.2-*`).
pub const PHP_LINE: (u64, u64) = (8, 2);

/// Extensions compiled into Debian's PHP binaries: always there.
pub const BUILTIN: &[&str] = &[
    "core",
    "date",
    "filter",
    "hash",
    "json",
    "libxml",
    "openssl",
    "pcntl",
    "pcre",
    "random",
    "reflection",
    "session",
    "sodium",
    "spl",
    "standard",
    "zlib",
];

/// Extension modules of `php8.2-common` and `php8.2-opcache`: always copied into the runtime layer.
pub const COMMON: &[&str] = &[
    "calendar",
    "ctype",
    "exif",
    "ffi",
    "fileinfo",
    "ftp",
    "gettext",
    "iconv",
    "opcache",
    "pdo",
    "phar",
    "posix",
    "shmop",
    "sockets",
    "sysvmsg",
    "sysvsem",
    "sysvshm",
    "tokenizer",
];

/// The stack's extension packages (`php8.2-<name>`) and the modules each brings: copied only when the app needs
/// them (an `ext-*` requirement of composer.json or of a locked package), all of them for an app without
/// composer.json.
pub const PACKAGES: &[(&str, &[&str])] = &[
    ("bcmath", &["bcmath"]),
    ("curl", &["curl"]),
    ("gd", &["gd"]),
    ("intl", &["intl"]),
    ("mbstring", &["mbstring"]),
    ("mysql", &["mysqlnd", "mysqli", "pdo_mysql"]),
    ("pgsql", &["pgsql", "pdo_pgsql"]),
    ("sqlite3", &["sqlite3", "pdo_sqlite"]),
    (
        "xml",
        &["dom", "simplexml", "xml", "xmlreader", "xmlwriter", "xsl"],
    ),
    ("zip", &["zip"]),
];

/// Where an extension comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    /// Compiled in.
    Builtin,
    /// A module of php8.2-common (always copied).
    Common(&'static str),
    /// A module of the package `php8.2-<package>`.
    Package(&'static str),
}

/// `ext-mbstring`, `ext-PDO`, `ext-zend-opcache` -> where the stack has it; `None` when it does not.
#[must_use]
pub fn extension(requirement: &str) -> Option<Ext> {
    let name = requirement
        .strip_prefix("ext-")
        .unwrap_or(requirement)
        .to_ascii_lowercase()
        .replace('-', "_");
    let name = match name.as_str() {
        "zend_opcache" => "opcache".to_owned(),
        _ => name,
    };
    if BUILTIN.contains(&name.as_str()) {
        return Some(Ext::Builtin);
    }
    if let Some(m) = COMMON.iter().find(|m| **m == name) {
        return Some(Ext::Common(m));
    }
    PACKAGES
        .iter()
        .find(|(_, mods)| mods.contains(&name.as_str()))
        .map(|(p, _)| Ext::Package(p))
}

/// Every extension the stack has, for messages.
#[must_use]
pub fn available() -> String {
    let mut all: Vec<&str> = BUILTIN
        .iter()
        .chain(COMMON)
        .chain(PACKAGES.iter().flat_map(|(_, m)| m.iter()))
        .copied()
        .collect();
    all.sort_unstable();
    all.join(", ")
}

/// Composer's platform packages (the PHP version, extensions, libraries, Composer itself): not installed.
#[must_use]
pub fn is_platform(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("ext-")
        || n.starts_with("lib-")
        || matches!(
            n.as_str(),
            "php"
                | "php-64bit"
                | "php-ipv6"
                | "php-zts"
                | "php-debug"
                | "hhvm"
                | "composer"
                | "composer-plugin-api"
                | "composer-runtime-api"
        )
}

type Version = [u64; 3];

/// `8.2.1`, `v8.2`, `8` -> the numbers given (at most three) and how many there were; `None` when not a version.
fn parse(s: &str) -> Option<(Version, usize)> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let s = s.split(['@', '-', '+']).next().unwrap_or("");
    let mut v = [0; 3];
    let mut n = 0;
    for part in s.split('.') {
        if part == "*" || part.eq_ignore_ascii_case("x") {
            break;
        }
        if n == 3 {
            break; // a fourth number (Composer normalises to four) does not matter here
        }
        v[n] = part.parse().ok()?;
        n += 1;
    }
    (n > 0).then_some((v, n))
}

/// The version after the last given number is bumped: `8.2` (2 numbers) -> `8.3.0`.
fn bump(v: Version, at: usize) -> Version {
    let mut out = [0; 3];
    out[..at].copy_from_slice(&v[..at]);
    out[at - 1] += 1;
    out
}

fn clause(v: Version, c: &str) -> bool {
    let c = c.trim();
    if c.is_empty() || c == "*" || c.eq_ignore_ascii_case("x") {
        return true;
    }
    let (op, rest) = [">=", "<=", "!=", "==", "<>", ">", "<", "^", "~", "="]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("", c));
    let wildcard = rest.contains('*') || rest.to_ascii_lowercase().ends_with(".x");
    let Some((want, n)) = parse(rest) else {
        return false;
    };
    match op {
        ">=" => v >= want,
        ">" => v > want,
        "<=" => v <= want,
        "<" => v < want,
        "!=" | "<>" => v != want,
        "^" => {
            // The first non-zero number stays.
            let keep = want
                .iter()
                .take(n)
                .position(|x| *x != 0)
                .map_or(n, |i| i + 1);
            v >= want && v < bump(want, keep.min(n))
        }
        "~" => v >= want && v < bump(want, if n == 1 { 1 } else { n - 1 }),
        _ if wildcard => v >= want && v < bump(want, n),
        _ => v == want,
    }
}

/// Whether `version` satisfies a Composer constraint: `^8.1`, `~8.2.0`, `8.2.*`, `>=8.1 <8.4`, `>=8.1,<8.4`,
/// `8.0 - 8.2`, `^7.4 || ^8.0`, exact versions; stability flags (`@dev`) are ignored.
#[must_use]
pub fn satisfies(version: Version, constraint: &str) -> bool {
    constraint
        .split('|')
        .filter(|a| !a.trim().is_empty())
        .any(|alt| {
            let alt = alt.trim();
            if let Some((lo, hi)) = alt.split_once(" - ") {
                let (Some((lo, _)), Some((hi, n))) = (parse(lo), parse(hi)) else {
                    return false;
                };
                return version >= lo
                    && if n < 3 {
                        version < bump(hi, n)
                    } else {
                        version <= hi
                    };
            }
            alt.split([',', ' ']).all(|c| clause(version, c))
        })
}

/// Whether some release of the stack's PHP line (8.2.x) satisfies `constraint` (detection does not know the
/// patch release; the build checks the exact version).
#[must_use]
pub fn line_satisfies(constraint: &str) -> bool {
    (0..200).any(|p| satisfies([PHP_LINE.0, PHP_LINE.1, p], constraint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints() {
        let v = [8, 2, 12];
        for (c, ok) in [
            ("^8.1", true),
            ("^8.3", false),
            ("~8.2.0", true),
            ("~8.1.0", false),
            ("~8.1", true),
            ("8.2.*", true),
            ("8.*", true),
            (">=8.1 <8.4", true),
            (">=8.1,<8.2", false),
            ("8.0 - 8.2", true),
            ("7.0 - 8.1", false),
            ("^7.4 || ^8.0", true),
            ("^7.4|^8.3", false),
            ("8.2.12", true),
            ("8.2", false),
            (">=8.2.13", false),
            ("*", true),
            ("^8.2@dev", true),
            ("banana", false),
        ] {
            assert_eq!(satisfies(v, c), ok, "{c}");
        }
        assert!(line_satisfies(">=8.2.13"));
        assert!(line_satisfies("8.2"));
        assert!(!line_satisfies("^8.3"));
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("ext-mbstring"), Some(Ext::Package("mbstring")));
        assert_eq!(extension("ext-PDO_MySQL"), Some(Ext::Package("mysql")));
        assert_eq!(extension("ext-json"), Some(Ext::Builtin));
        assert_eq!(extension("ext-zend-opcache"), Some(Ext::Common("opcache")));
        assert_eq!(extension("ext-redis"), None);
        assert!(is_platform("ext-intl") && is_platform("php") && !is_platform("monolog/monolog"));
    }
}
