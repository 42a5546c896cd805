//! Environment directories: the modification rules for `<layer>/env{,.build,.launch}/` files and
//! for the platform's `<platform>/env/`, as pure functions over `(file name, contents)` pairs.
//!
//! A file's variable name is its name up to the first `.`; the rest is the suffix that chooses the
//! action. Contents are used verbatim (never trimmed or shell-evaluated). Choices where the spec is
//! silent, following the reference lifecycle:
//! - files are applied in byte order of their names (as a directory listing returns them);
//! - a suffix the spec does not define (`FOO.bar`, `FOO.a.append`) and a file with an empty
//!   variable name (`.profile`) are skipped and reported, not rejected, so newer buildpacks work;
//! - append/prepend without a `<name>.delim` file concatenate with no delimiter, and add no
//!   delimiter when the variable is unset or empty.

use std::collections::BTreeMap;

use crate::api::BuildpackApi;

/// An environment: variable name to value.
pub type EnvMap = BTreeMap<String, String>;

/// The separator between paths in list variables (`PATH`, ...). This platform builds Linux images.
pub const PATH_LIST_SEPARATOR: &str = ":";

/// Variables the platform's `<platform>/env/` prepends to rather than overrides.
pub const POSIX_PATH_VARIABLES: [&str; 5] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "LIBRARY_PATH",
    "CPATH",
    "PKG_CONFIG_PATH",
];

/// What an env file does to its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvAction {
    /// `.override` (and a bare name since Buildpack API 0.5): the value is the contents.
    Override,
    /// `.default`: the value is the contents only if the variable is unset or empty.
    Default,
    /// `.append`: contents after the current value, joined by the `.delim` contents.
    Append,
    /// `.prepend`: contents before the current value, joined by the `.delim` contents.
    Prepend,
    /// `.delim`: the delimiter for append/prepend of the same variable in the same directory.
    Delim,
    /// A bare name before Buildpack API 0.5: prepend, joined by the path-list separator.
    PrependPath,
}

impl EnvAction {
    /// The action of a file with no suffix for a buildpack of this API: override since 0.5,
    /// prepend-path before. (All supported APIs, 0.7 onwards, override.)
    #[must_use]
    pub fn bare_name(api: BuildpackApi) -> Self {
        if api.at_least(0, 5) {
            Self::Override
        } else {
            Self::PrependPath
        }
    }

    fn from_suffix(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "override" => Self::Override,
            "default" => Self::Default,
            "append" => Self::Append,
            "prepend" => Self::Prepend,
            "delim" => Self::Delim,
            _ => return None,
        })
    }
}

/// A parsed env file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileName<'a> {
    pub variable: &'a str,
    pub action: EnvAction,
}

/// Splits `FOO.append` into (`FOO`, append); `None` for names the rules skip.
#[must_use]
pub fn parse_env_file_name(file_name: &str, bare: EnvAction) -> Option<EnvFileName<'_>> {
    let (variable, action) = match file_name.split_once('.') {
        Some((variable, suffix)) => (variable, EnvAction::from_suffix(suffix)?),
        None => (file_name, bare),
    };
    if variable.is_empty() || variable.contains(['=', '\0']) {
        return None;
    }
    Some(EnvFileName { variable, action })
}

/// Why an env dir could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("env file `{file}` is not UTF-8; environment values must be text")]
    NotUtf8 { file: String },
    #[error("invalid exec.d output: {message}")]
    ExecD { message: String },
}

/// What applying a directory did besides changing the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvDirReport {
    /// Files skipped because their names follow none of the rules (worth a warning).
    pub ignored: Vec<String>,
}

fn decode(name: &str, bytes: &[u8]) -> Result<String, EnvError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| EnvError::NotUtf8 {
        file: name.to_owned(),
    })
}

fn join(first: &str, delim: &str, second: &str) -> String {
    if first.is_empty() {
        second.to_owned()
    } else if second.is_empty() {
        first.to_owned()
    } else {
        format!("{first}{delim}{second}")
    }
}

/// Applies one env directory of one layer to `env`.
///
/// `bare` is the action of suffix-less files ([`EnvAction::bare_name`] for the writing
/// buildpack's API). Callers apply layers in the order the spec gives (buildpack order, then
/// layer name); for a layer with several env dirs use [`apply_layer_env_dirs`].
pub fn apply_env_dir<N, B>(
    env: &mut EnvMap,
    files: impl IntoIterator<Item = (N, B)>,
    bare: EnvAction,
) -> Result<EnvDirReport, EnvError>
where
    N: AsRef<str>,
    B: AsRef<[u8]>,
{
    apply_layer_env_dirs(env, [files], bare)
}

/// Applies the env dirs of one layer, in the order given: `env/`, then `env.build/` or
/// `env.launch/`, then `env.launch/<process>/`. Applying them in sequence yields the spec's
/// precedence for every action; a `<name>.delim` in any of them delimits that variable's
/// concatenations throughout the layer (a later dir's delimiter wins).
pub fn apply_layer_env_dirs<D, N, B>(
    env: &mut EnvMap,
    dirs: impl IntoIterator<Item = D>,
    bare: EnvAction,
) -> Result<EnvDirReport, EnvError>
where
    D: IntoIterator<Item = (N, B)>,
    N: AsRef<str>,
    B: AsRef<[u8]>,
{
    let dirs: Vec<Vec<(N, B)>> = dirs
        .into_iter()
        .map(|files| {
            let mut files: Vec<(N, B)> = files.into_iter().collect();
            files.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
            files
        })
        .collect();

    let mut delims: BTreeMap<&str, String> = BTreeMap::new();
    for (name, bytes) in dirs.iter().flatten() {
        if let Some(parsed) = parse_env_file_name(name.as_ref(), bare)
            && parsed.action == EnvAction::Delim
        {
            delims.insert(parsed.variable, decode(name.as_ref(), bytes.as_ref())?);
        }
    }

    let mut report = EnvDirReport::default();
    for (name, bytes) in dirs.iter().flatten() {
        let name = name.as_ref();
        let Some(EnvFileName { variable, action }) = parse_env_file_name(name, bare) else {
            report.ignored.push(name.to_owned());
            continue;
        };
        if action == EnvAction::Delim {
            continue;
        }
        let value = decode(name, bytes.as_ref())?;
        let current = env.get(variable).map_or("", String::as_str);
        let delim = delims.get(variable).map_or("", String::as_str);
        let new = match action {
            EnvAction::Override => value,
            EnvAction::Default if current.is_empty() => value,
            EnvAction::Default | EnvAction::Delim => continue,
            EnvAction::Append => join(current, delim, &value),
            EnvAction::Prepend => join(&value, delim, current),
            EnvAction::PrependPath => join(&value, PATH_LIST_SEPARATOR, current),
        };
        env.insert(variable.to_owned(), new);
    }
    Ok(report)
}

/// Parses the output of an `exec.d` executable: top-level `NAME = "value"` pairs, each value a
/// string. Applied by the launcher with override semantics.
pub fn parse_exec_d_output(text: &str) -> Result<EnvMap, EnvError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| EnvError::ExecD {
        message: e.to_string().trim_end().to_owned(),
    })?;
    table
        .into_iter()
        .map(|(name, value)| match value {
            toml::Value::String(value) => Ok((name, value)),
            other => Err(EnvError::ExecD {
                message: format!("`{name}` must be a string, got {}", other.type_str()),
            }),
        })
        .collect()
}

/// Applies the platform's `<platform>/env/` (user-provided variables) to a buildpack's
/// environment when its `clear-env` is not `true`: the whole file name is the variable name; the
/// POSIX path variables are prepended with the path-list separator, every other variable is
/// overridden.
pub fn apply_platform_env<N, B>(
    env: &mut EnvMap,
    files: impl IntoIterator<Item = (N, B)>,
) -> Result<EnvDirReport, EnvError>
where
    N: AsRef<str>,
    B: AsRef<[u8]>,
{
    let mut report = EnvDirReport::default();
    for (name, bytes) in files {
        let name = name.as_ref();
        if name.is_empty() || name.contains(['=', '\0']) {
            report.ignored.push(name.to_owned());
            continue;
        }
        let value = decode(name, bytes.as_ref())?;
        let new = if POSIX_PATH_VARIABLES.contains(&name) {
            let current = env.get(name).map_or("", String::as_str);
            join(&value, PATH_LIST_SEPARATOR, current)
        } else {
            value
        };
        env.insert(name.to_owned(), new);
    }
    Ok(report)
}

/// Puts `dir` in front of the `key` path list (`PATH`, `LD_LIBRARY_PATH`, ...).
pub fn prepend_path(env: &mut EnvMap, key: &str, dir: &std::path::Path) {
    let d = dir.to_string_lossy().into_owned();
    let new = match env.get(key).filter(|v| !v.is_empty()) {
        Some(old) => format!("{d}{PATH_LIST_SEPARATOR}{old}"),
        None => d,
    };
    env.insert(key.to_owned(), new);
}

/// The files of an env directory as `(name, bytes)`, in directory-listing order, for
/// [`apply_layer_env_dirs`] (which sorts them): every entry that is a file (a link is followed)
/// with its contents verbatim; subdirectories, dangling links and unreadable files are skipped, a
/// name that is not UTF-8 is converted lossily, and a missing or unreadable directory is empty.
#[must_use]
pub fn read_env_dir(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = fs_err::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                fs_err::read(e.path()).ok()?,
            ))
        })
        .collect()
}

/// The platform's `<platform>/env/` files as [`read_env_dir`] reads them, sorted by name, for
/// [`apply_platform_env`] (which applies them in the order given).
#[must_use]
pub fn read_platform_env(platform: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files = read_env_dir(&platform.join("env"));
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const MODERN: EnvAction = EnvAction::Override;

    #[test]
    fn suffixes() {
        let mut e = env(&[
            ("PATH", "/usr/bin"),
            ("CFLAGS", "-O2"),
            ("LANG", "C"),
            ("JAVA_OPTS", "-Xmx1g"),
        ]);
        let files: Vec<(&str, &[u8])> = vec![
            ("PATH.prepend", b"/layers/ruby/bin"),
            ("PATH.delim", b":"),
            ("CFLAGS.append", b"-g"),
            ("CFLAGS.delim", b" "),
            ("LANG.default", b"en_US.UTF-8"),
            ("TZ.default", b"UTC"),
            ("JAVA_OPTS.override", b"-Xmx2g"),
            ("RUBY_VERSION", b"3.3.1\n"),
        ];
        let report = apply_env_dir(&mut e, files, MODERN).unwrap();
        assert!(report.ignored.is_empty());
        assert_eq!(
            e,
            env(&[
                ("PATH", "/layers/ruby/bin:/usr/bin"),
                ("CFLAGS", "-O2 -g"),
                ("LANG", "C"),
                ("TZ", "UTC"),
                ("JAVA_OPTS", "-Xmx2g"),
                ("RUBY_VERSION", "3.3.1\n"),
            ])
        );
    }

    #[test]
    fn no_delim_and_empty_current() {
        let mut e = env(&[("A", "x"), ("EMPTY", "")]);
        let files = [
            ("A.append", "y"),
            ("B.prepend", "p"),
            ("EMPTY.default", "d"),
        ];
        apply_env_dir(&mut e, files, MODERN).unwrap();
        assert_eq!(e, env(&[("A", "xy"), ("B", "p"), ("EMPTY", "d")]));
    }

    #[test]
    fn bare_name_depends_on_api() {
        assert_eq!(
            EnvAction::bare_name(BuildpackApi::new(0, 7)),
            EnvAction::Override
        );
        assert_eq!(
            EnvAction::bare_name(BuildpackApi::new(0, 4)),
            EnvAction::PrependPath
        );
        let mut e = env(&[("PATH", "/usr/bin")]);
        apply_env_dir(
            &mut e,
            [("PATH", "/old/bin")],
            EnvAction::bare_name(BuildpackApi::new(0, 4)),
        )
        .unwrap();
        assert_eq!(e["PATH"], "/old/bin:/usr/bin");
        apply_env_dir(
            &mut e,
            [("PATH", "/new/bin")],
            EnvAction::bare_name(BuildpackApi::new(0, 12)),
        )
        .unwrap();
        assert_eq!(e["PATH"], "/new/bin");
    }

    #[test]
    fn unknown_names_are_reported() {
        let mut e = EnvMap::new();
        let files = [
            ("FOO.bar", "1"),
            (".hidden", "2"),
            ("A.b.append", "3"),
            ("OK", "4"),
        ];
        let report = apply_env_dir(&mut e, files, MODERN).unwrap();
        assert_eq!(report.ignored, [".hidden", "A.b.append", "FOO.bar"]);
        assert_eq!(e, env(&[("OK", "4")]));
    }

    #[test]
    fn non_utf8_is_an_error() {
        let mut e = EnvMap::new();
        let files: [(&str, &[u8]); 1] = [("BAD", &[0xff, 0xfe])];
        assert_eq!(
            apply_env_dir(&mut e, files, MODERN)
                .unwrap_err()
                .to_string(),
            "env file `BAD` is not UTF-8; environment values must be text"
        );
    }

    #[test]
    fn layer_dirs_share_delimiters_and_order() {
        let mut e = env(&[("PATH", "/usr/bin"), ("OPTS", "base")]);
        let env_dir = [
            ("PATH.prepend", "/l/bin"),
            ("PATH.delim", ":"),
            ("OPTS.append", "a"),
        ];
        let build_dir = [
            ("PATH.prepend", "/l/build-bin"),
            ("OPTS.append", "b"),
            ("OPTS.delim", " "),
        ];
        apply_layer_env_dirs(&mut e, [env_dir, build_dir], MODERN).unwrap();
        assert_eq!(e["PATH"], "/l/build-bin:/l/bin:/usr/bin");
        assert_eq!(e["OPTS"], "base a b");

        let mut d = EnvMap::new();
        apply_layer_env_dirs(
            &mut d,
            [[("X.default", "env")], [("X.default", "build")]],
            MODERN,
        )
        .unwrap();
        assert_eq!(d["X"], "env", "env/ defaults win over env.build/ defaults");
    }

    #[test]
    fn exec_d_output() {
        let out = parse_exec_d_output("JAVA_OPTS = \"-Xmx512m\"\nPORT = \"8080\"\n").unwrap();
        assert_eq!(out, env(&[("JAVA_OPTS", "-Xmx512m"), ("PORT", "8080")]));
        assert_eq!(
            parse_exec_d_output("PORT = 8080\n")
                .unwrap_err()
                .to_string(),
            "invalid exec.d output: `PORT` must be a string, got integer"
        );
    }

    #[test]
    fn platform_env() {
        let mut e = env(&[("PATH", "/usr/bin"), ("BP_NODE_VERSION", "18")]);
        let files = [
            ("PATH", "/custom/bin"),
            ("BP_NODE_VERSION", "20"),
            ("X.append", "v"),
        ];
        apply_platform_env(&mut e, files).unwrap();
        assert_eq!(
            e,
            env(&[
                ("PATH", "/custom/bin:/usr/bin"),
                ("BP_NODE_VERSION", "20"),
                ("X.append", "v"),
            ])
        );
    }

    #[test]
    fn platform_env_dir_reading() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(read_platform_env(tmp.path()).is_empty(), "no env dir");
        let dir = tmp.path().join("env");
        fs_err::create_dir_all(dir.join("SUBDIR")).unwrap();
        fs_err::write(dir.join("b"), "lower\n").unwrap();
        fs_err::write(dir.join("PATH"), "/opt/bin").unwrap();
        fs_err::write(dir.join("A"), [0xff, b' ']).unwrap();
        fs_err::os::unix::fs::symlink("PATH", dir.join("LINKED")).unwrap();
        fs_err::os::unix::fs::symlink("missing", dir.join("DANGLING")).unwrap();
        let files = read_platform_env(tmp.path());
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("A".into(), vec![0xff, b' ']),
            ("LINKED".into(), b"/opt/bin".to_vec()),
            ("PATH".into(), b"/opt/bin".to_vec()),
            ("b".into(), b"lower\n".to_vec()),
        ];
        assert_eq!(files, expected, "files only, byte order, contents verbatim");
        let mut unsorted = read_env_dir(&dir);
        unsorted.sort();
        assert_eq!(unsorted, expected);
    }
}
