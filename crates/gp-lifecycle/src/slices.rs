//! App slices: buildpacks name parts of the app directory (`[[slices]] paths = [...]` in `launch.toml`) that the
//! exporter puts in layers of their own, so a change elsewhere in the app does not re-upload them (vendored
//! dependencies, static assets). Path globs follow Go's `filepath.Match` (the spec's choice): `*` and `?` never
//! cross a `/`, `[...]` classes with `^` negation and ranges, `\` escapes. A glob may be relative to the app
//! directory or absolute inside it. Each slice sees the app as if earlier slices' files were gone; what no slice
//! matches goes into the final app layer.

use std::collections::BTreeSet;
use std::path::Path;

use gp_oci::layer::{Entry, Kind, Source};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SliceError {
    #[error("slice path `{path}`: {reason}")]
    BadPath { path: String, reason: &'static str },
}

/// Whether `name` (one path component) matches `pattern` (one component of a glob), as Go's `filepath.Match`.
///
/// # Errors
/// A malformed pattern (an unclosed `[`, a trailing `\`).
pub fn match_component(pattern: &str, name: &str) -> Result<bool, &'static str> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first, as Go reports a bad pattern even when an earlier part fails to match.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("ends with a lone `\\`");
                }
                i += 2;
            }
            '[' => i = class_end(&p, i)?,
            _ => i += 1,
        }
    }
    Ok(matches_at(&p, &n))
}

/// One class element as Go reads it: an unescaped `-` or `]` here is a syntax error, a `\\` escapes the next
/// character, and the class must go on after it. Returns the character and the index after it.
fn class_char(p: &[char], mut i: usize) -> Result<(char, usize), &'static str> {
    match p.get(i) {
        None => return Err("has an unclosed `[`"),
        Some('-' | ']') => {
            return Err("has a `-` or `]` where a class needs a character (escape it)");
        }
        Some('\\') => i += 1,
        Some(_) => {}
    }
    let c = *p.get(i).ok_or("has an unclosed `[`")?;
    if i + 1 >= p.len() {
        return Err("has an unclosed `[`");
    }
    Ok((c, i + 1))
}

/// A class starting at `p[start] == '['`: whether it is negated, its ranges, and the index past its `]`.
type Class = (bool, Vec<(char, char)>, usize);

fn parse_class(p: &[char], start: usize) -> Result<Class, &'static str> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((negated, ranges, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_end(p: &[char], start: usize) -> Result<usize, &'static str> {
    parse_class(p, start).map(|(_, _, end)| end)
}

/// One element of a validated pattern.
enum Token {
    Star,
    Any,
    Char(char),
    Class(bool, Vec<(char, char)>),
}

fn tokens(p: &[char]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                out.push(Token::Star);
                i += 1;
            }
            '?' => {
                out.push(Token::Any);
                i += 1;
            }
            '\\' => {
                out.push(Token::Char(p.get(i + 1).copied().unwrap_or('\\')));
                i += 2;
            }
            '[' => match parse_class(p, i) {
                Ok((negated, ranges, end)) => {
                    out.push(Token::Class(negated, ranges));
                    i = end;
                }
                Err(_) => return Vec::new(), // validated before; unreachable
            },
            c => {
                out.push(Token::Char(c));
                i += 1;
            }
        }
    }
    out
}

/// Matches a validated pattern against a name: greedy with one backtrack point (the last `*`), so linear in
/// practice and never exponential.
fn matches_at(p: &[char], n: &[char]) -> bool {
    let t = tokens(p);
    let one = |tok: &Token, c: char| match tok {
        Token::Any => true,
        Token::Char(x) => *x == c,
        Token::Class(negated, ranges) => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star => false,
    };
    let (mut ti, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if ti < t.len() && matches!(t[ti], Token::Star) {
            star = Some((ti, ni));
            ti += 1;
        } else if ti < t.len() && one(&t[ti], n[ni]) {
            ti += 1;
            ni += 1;
        } else if let Some((st, sn)) = star {
            ti = st + 1;
            ni = sn + 1;
            star = Some((st, sn + 1));
        } else {
            return false;
        }
    }
    t[ti..].iter().all(|tok| matches!(tok, Token::Star))
}

/// A slice glob split into components, relative to the app directory. `app_roots` are the absolute paths the app
/// directory has (`/workspace` inside the image, the host path when buildpacks ran directly).
fn components(glob: &str, app_roots: &[&str]) -> Result<Vec<String>, SliceError> {
    let bad = |reason| SliceError::BadPath {
        path: glob.to_owned(),
        reason,
    };
    let slice = gp_cnb::Slice {
        paths: vec![glob.to_owned()],
    };
    let rel = app_roots
        .iter()
        .find_map(|root| slice.relative_globs(root).pop().flatten())
        .ok_or_else(|| {
            bad(if glob.starts_with('/') {
                "is absolute but not inside the app directory"
            } else {
                "leaves the app directory"
            })
        })?;
    let mut out = Vec::new();
    for part in rel.split('/').filter(|p| *p != ".") {
        match_component(part, "").map_err(bad)?;
        out.push(part.to_owned());
    }
    Ok(out)
}

/// One layer's entries.
pub type Part = Vec<Entry>;

/// Splits the app's entries (from `entries_from_dir(app, prefix)`) into one part per non-empty slice, in order,
/// then the rest. `app` is the directory on disk (for hard links split across parts). Returns the slice parts and
/// the final part; the indexes of empty slices are reported for a warning.
///
/// # Errors
/// A slice path that is not a valid glob or leaves the app directory.
pub fn split(
    entries: &[Entry],
    prefix: &str,
    app: &Path,
    slices: &[gp_cnb::Slice],
    app_roots: &[&str],
) -> Result<(Vec<Part>, Part, Vec<usize>), SliceError> {
    let prefix = prefix.trim_matches('/');
    let rel_of = |path: &str| -> Option<String> {
        if path == prefix {
            return Some(String::new());
        }
        path.strip_prefix(prefix)?
            .strip_prefix('/')
            .map(str::to_owned)
    };
    let mut claimed: Vec<Option<usize>> = vec![None; entries.len()];
    let mut empty = Vec::new();
    for (si, slice) in slices.iter().enumerate() {
        let patterns: Vec<Vec<String>> = slice
            .paths
            .iter()
            .map(|g| components(g, app_roots))
            .collect::<Result<_, _>>()?;
        // Matched paths (relative), then everything under them.
        let mut roots: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (i, e) in entries.iter().enumerate() {
            if claimed[i].is_some() {
                continue;
            }
            let Some(rel) = rel_of(&e.path) else { continue };
            let parts: Vec<&str> = if rel.is_empty() {
                Vec::new()
            } else {
                rel.split('/').collect()
            };
            let hit = patterns.iter().any(|pat| {
                pat.len() == parts.len()
                    && pat
                        .iter()
                        .zip(&parts)
                        .all(|(p, n)| match_component(p, n).unwrap_or(false))
            });
            // Under a directory this slice matched: one of the path's ancestors is a root.
            let under = roots.contains("")
                || rel
                    .match_indices('/')
                    .any(|(at, _)| roots.contains(&rel[..at]));
            if hit || under {
                claimed[i] = Some(si);
                if hit && matches!(e.kind, Kind::Dir) {
                    roots.insert(rel);
                }
            }
        }
        if !claimed.contains(&Some(si)) {
            empty.push(si);
        }
    }
    let part_of = |owner: Option<usize>| -> Part {
        let mine: Vec<usize> = (0..entries.len())
            .filter(|&i| claimed[i] == owner)
            .collect();
        let paths: BTreeSet<&str> = mine.iter().map(|&i| entries[i].path.as_str()).collect();
        // Parent directories of what this part holds, so the layer extracts on its own.
        let mut parents: BTreeSet<String> = BTreeSet::new();
        for &i in &mine {
            let p = &entries[i].path;
            let mut at = 0;
            while let Some(off) = p[at..].find('/') {
                let dir = &p[..at + off];
                if !paths.contains(dir) {
                    parents.insert(dir.to_owned());
                }
                at += off + 1;
            }
        }
        let mut out: Vec<Entry> = parents
            .into_iter()
            .map(|d| Entry {
                path: d,
                kind: Kind::Dir,
                executable: true,
            })
            .collect();
        for &i in &mine {
            let mut e = entries[i].clone();
            // A hard link whose first name went to another layer becomes a file of its own here.
            if let Kind::Hardlink(target) = &e.kind
                && !paths.contains(target.as_str())
                && let Some(rel) = rel_of(&e.path)
            {
                e.kind = Kind::File(Source::Path(app.join(rel)));
            }
            out.push(e);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    };
    let parts = (0..slices.len())
        .filter(|si| !empty.contains(si))
        .map(|si| part_of(Some(si)))
        .collect();
    Ok((parts, part_of(None), empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        match_component(p, n).unwrap()
    }

    #[test]
    fn go_match_semantics() {
        assert!(m("*.js", "app.js"));
        assert!(!m("*.js", "app.jsx"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("[\\]]", "]"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXbYc"));
        assert_eq!(match_component("[ab", "a"), Err("has an unclosed `[`"));
        // Go refuses an unescaped `]` or `-` as a class character.
        for bad in ["[]a]", "[^]]", "[-a]", "[a-]", "[a-z-]", "[]"] {
            assert!(match_component(bad, "a").is_err(), "{bad}");
        }
        assert!(m("[\\-a]", "-"));
        // No exponential backtracking.
        assert!(!m("*a*a*a*a*a*a*a*a*b", &"a".repeat(60)));
        assert!(m("*.min.*", "app.min.js"));
        assert!(!m("a*", "ba"));
        assert!(m("[a\\-]x", "-x"));
        assert_eq!(match_component("ab\\", "ab"), Err("ends with a lone `\\`"));
    }

    fn e(path: &str, dir: bool) -> Entry {
        Entry {
            path: path.into(),
            kind: if dir {
                Kind::Dir
            } else {
                Kind::File(Source::Bytes(Vec::new()))
            },
            executable: dir,
        }
    }

    fn paths(p: &Part) -> Vec<&str> {
        p.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn slices_claim_in_order_and_the_rest_is_last() {
        let entries = vec![
            e("workspace", true),
            e("workspace/app.py", false),
            e("workspace/static", true),
            e("workspace/static/a.css", false),
            e("workspace/static/img", true),
            e("workspace/static/img/logo.png", false),
            e("workspace/vendor", true),
            e("workspace/vendor/lib.js", false),
        ];
        let slice = |p: &[&str]| gp_cnb::Slice {
            paths: p.iter().map(|s| (*s).to_owned()).collect(),
        };
        let slices = vec![
            slice(&["static/img/*.png"]),
            slice(&["/workspace/static", "vendor"]),
            slice(&["nothing-*"]),
        ];
        let (parts, rest, empty) = split(
            &entries,
            "workspace",
            Path::new("/src"),
            &slices,
            &["/workspace"],
        )
        .unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            paths(&parts[0]),
            [
                "workspace",
                "workspace/static",
                "workspace/static/img",
                "workspace/static/img/logo.png"
            ]
        );
        // The second slice sees static/ without the png the first one took.
        assert_eq!(
            paths(&parts[1]),
            [
                "workspace",
                "workspace/static",
                "workspace/static/a.css",
                "workspace/static/img",
                "workspace/vendor",
                "workspace/vendor/lib.js"
            ]
        );
        assert_eq!(paths(&rest), ["workspace", "workspace/app.py"]);
        assert_eq!(empty, [2]);
    }

    #[test]
    fn paths_outside_the_app_are_refused() {
        let entries = vec![e("workspace", true)];
        for bad in ["../etc/*", "/etc/passwd", "a/../../b"] {
            let err = split(
                &entries,
                "workspace",
                Path::new("/src"),
                &[gp_cnb::Slice {
                    paths: vec![bad.to_owned()],
                }],
                &["/workspace"],
            )
            .unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_hard_link_split_from_its_first_name_becomes_a_file() {
        let entries = vec![
            e("workspace", true),
            e("workspace/a", false),
            Entry {
                path: "workspace/b".into(),
                kind: Kind::Hardlink("workspace/a".into()),
                executable: false,
            },
        ];
        let (parts, rest, _) = split(
            &entries,
            "workspace",
            Path::new("/src"),
            &[gp_cnb::Slice {
                paths: vec!["a".to_owned()],
            }],
            &["/workspace"],
        )
        .unwrap();
        assert_eq!(paths(&parts[0]), ["workspace", "workspace/a"]);
        assert_eq!(
            rest[1].kind,
            Kind::File(Source::Path(Path::new("/src/b").to_path_buf()))
        );
    }
}
