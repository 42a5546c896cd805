//! `<layers>/launch.toml`: processes, image labels and app slices a buildpack contributes.
//!
//! Differs from `libcnb-data`'s `Launch`: unknown keys are tolerated, `command` also accepts the
//! pre-0.10 string form (with `direct`), processes carry `exec-env`, and the deprecated `[[bom]]`
//! array is kept so that older buildpacks still parse.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::BuildpackApi;
use crate::file::{CnbError, TomlFile, is_false};
use crate::ids::ProcessType;
use crate::plan::BomEntry;

/// A process command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProcessCommand {
    /// Buildpack API 0.10 and later: the executable followed by fixed arguments.
    Argv(Vec<String>),
    /// Before Buildpack API 0.10: one string, run through a shell unless `direct = true`.
    Legacy(String),
}

impl ProcessCommand {
    /// The executable (first element, or the whole legacy string).
    #[must_use]
    pub fn program(&self) -> Option<&str> {
        match self {
            Self::Argv(argv) => argv.first().map(String::as_str),
            Self::Legacy(command) => Some(command),
        }
    }
}

impl<'de> Deserialize<'de> for ProcessCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;

        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = ProcessCommand;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings (Buildpack API >= 0.10) or a string (older APIs)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ProcessCommand::Legacy(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(ProcessCommand::Argv(argv))
            }
        }

        deserializer.deserialize_any(CommandVisitor)
    }
}

/// One `[[processes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    #[serde(rename = "type")]
    pub kind: ProcessType,
    pub command: ProcessCommand,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Only meaningful with [`ProcessCommand::Legacy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// Defaults to the app directory.
    #[serde(
        default,
        rename = "working-dir",
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    /// Execution environments the process applies to; empty means all.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

impl Process {
    /// A process for Buildpack API 0.10+ with no extra options.
    #[must_use]
    pub fn new(kind: ProcessType, command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            kind,
            command: ProcessCommand::Argv(command.into_iter().map(Into::into).collect()),
            args: Vec::new(),
            direct: None,
            default: false,
            working_dir: None,
            exec_env: Vec::new(),
        }
    }
}

/// One `[[labels]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// One `[[slices]]` entry: globs (Go `filepath.Match` syntax) of app paths for one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    #[serde(default)]
    pub paths: Vec<String>,
}

impl Slice {
    /// Each glob, made relative to `app_dir`, or `None` for a glob that leaves the app directory
    /// (a relative path climbing out with `..`, or an absolute path elsewhere). Lexical only: the
    /// exporter still confines matches to the app directory on disk.
    #[must_use]
    pub fn relative_globs(&self, app_dir: &str) -> Vec<Option<String>> {
        self.paths
            .iter()
            .map(|p| relative_to_app(p, app_dir))
            .collect()
    }
}

fn relative_to_app(glob: &str, app_dir: &str) -> Option<String> {
    let rest = if glob.starts_with('/') {
        let app = app_dir.trim_end_matches('/');
        let rest = glob.strip_prefix(app)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None; // `/workspace-other` is not inside `/workspace`
        }
        rest
    } else {
        glob
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    })
}

/// `launch.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchToml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<Slice>,
    /// Deprecated in Buildpack API 0.7.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bom: Vec<BomEntry>,
}

impl LaunchToml {
    /// Checks the command form against the buildpack's API: arrays from 0.10, strings before.
    pub fn check_api(&self, api: BuildpackApi) -> Result<(), CnbError> {
        let argv_api = api.at_least(0, 10);
        for (i, process) in self.processes.iter().enumerate() {
            let field = || format!("processes[{i}].command");
            match (&process.command, argv_api) {
                (ProcessCommand::Legacy(_), true) => {
                    return Err(CnbError::field(
                        Self::FILE,
                        field(),
                        format!("must be an array of strings for Buildpack API {api}"),
                    ));
                }
                (ProcessCommand::Argv(_), false) => {
                    return Err(CnbError::field(
                        Self::FILE,
                        field(),
                        format!(
                            "must be a string for Buildpack API {api} (arrays need API 0.10 or later)"
                        ),
                    ));
                }
                _ => {}
            }
            if argv_api && process.direct.is_some() {
                return Err(CnbError::field(
                    Self::FILE,
                    format!("processes[{i}].direct"),
                    format!("is not part of Buildpack API {api} (processes are always direct)"),
                ));
            }
        }
        Ok(())
    }

    /// The process this buildpack marks as default, if any.
    #[must_use]
    pub fn default_process(&self) -> Option<&Process> {
        self.processes.iter().find(|p| p.default)
    }
}

impl TomlFile for LaunchToml {
    const FILE: &'static str = "launch.toml";

    fn validate(&self) -> Result<(), CnbError> {
        let err = |field: String, message: String| CnbError::field(Self::FILE, field, message);
        for (i, process) in self.processes.iter().enumerate() {
            if process.command.program().is_none_or(str::is_empty) {
                return Err(err(
                    format!("processes[{i}].command"),
                    "must name an executable".into(),
                ));
            }
            if let Some(prev) = self.processes[..i].iter().find(|p| p.kind == process.kind) {
                return Err(err(
                    format!("processes[{i}].type"),
                    format!(
                        "`{}` is declared twice (process types are unique per buildpack)",
                        prev.kind
                    ),
                ));
            }
        }
        if let Some(second) = self.processes.iter().filter(|p| p.default).nth(1) {
            return Err(err(
                "processes.default".into(),
                format!(
                    "is `true` on more than one process (also on `{}`); a buildpack may mark one default",
                    second.kind
                ),
            ));
        }
        for (i, label) in self.labels.iter().enumerate() {
            if self.labels[..i].iter().any(|l| l.key == label.key) {
                return Err(err(
                    format!("labels[{i}].key"),
                    format!("`{}` is declared twice", label.key),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAUNCH: &str = r#"
[[labels]]
key = "org.opencontainers.image.vendor"
value = "Example"

[[processes]]
type = "web"
command = ["bundle", "exec", "puma"]
args = ["-C", "config/puma.rb"]
default = true
working-dir = "/workspace/app"

[[processes]]
type = "worker"
command = ["bundle", "exec", "sidekiq"]
exec-env = ["production"]

[[slices]]
paths = ["public/assets/*", "vendor/**"]
"#;

    #[test]
    fn round_trip() {
        let launch = LaunchToml::from_toml_str(LAUNCH).unwrap();
        assert_eq!(launch.default_process().unwrap().kind, "web");
        assert!(launch.check_api(BuildpackApi::new(0, 10)).is_ok());
        let text = launch.to_toml_string().unwrap();
        assert_eq!(LaunchToml::from_toml_str(&text).unwrap(), launch);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn legacy_string_command() {
        let text = "[[processes]]\ntype = \"web\"\ncommand = \"bundle exec puma -p $PORT\"\ndirect = false\n";
        let launch = LaunchToml::from_toml_str(text).unwrap();
        assert_eq!(
            launch.processes[0].command,
            ProcessCommand::Legacy("bundle exec puma -p $PORT".into())
        );
        assert!(launch.check_api(BuildpackApi::new(0, 9)).is_ok());
        assert_eq!(
            launch
                .check_api(BuildpackApi::new(0, 10))
                .unwrap_err()
                .to_string(),
            "invalid launch.toml: `processes[0].command` must be an array of strings for Buildpack API 0.10"
        );
        let modern = LaunchToml::from_toml_str(LAUNCH).unwrap();
        assert_eq!(
            modern
                .check_api(BuildpackApi::new(0, 8))
                .unwrap_err()
                .to_string(),
            "invalid launch.toml: `processes[0].command` must be a string for Buildpack API 0.8 (arrays need API 0.10 or later)"
        );
        let again = LaunchToml::from_toml_str(&launch.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, launch);
    }

    #[test]
    fn slice_paths_stay_in_the_app() {
        let slice = Slice {
            paths: vec![
                "public/*".into(),
                "./a/../b/*.js".into(),
                "/workspace/static/**".into(),
                "/workspace".into(),
                "../secrets".into(),
                "/etc/*".into(),
                "/workspace-other/x".into(),
            ],
        };
        assert_eq!(
            slice.relative_globs("/workspace/"),
            [
                Some("public/*".to_owned()),
                Some("b/*.js".to_owned()),
                Some("static/**".to_owned()),
                Some(".".to_owned()),
                None,
                None,
                None,
            ]
        );
    }

    #[test]
    fn errors() {
        let msg = |t: &str| LaunchToml::from_toml_str(t).unwrap_err().to_string();
        assert_eq!(
            msg("[[processes]]\ntype = \"web\"\ncommand = []\n"),
            "invalid launch.toml: `processes[0].command` must name an executable"
        );
        let twice = "[[processes]]\ntype = \"web\"\ncommand = [\"a\"]\ndefault = true\n\
                     [[processes]]\ntype = \"w\"\ncommand = [\"b\"]\ndefault = true\n";
        assert_eq!(
            msg(twice),
            "invalid launch.toml: `processes.default` is `true` on more than one process (also on `w`); a buildpack may mark one default"
        );
        let dup = "[[processes]]\ntype = \"web\"\ncommand = [\"a\"]\n[[processes]]\ntype = \"web\"\ncommand = [\"b\"]\n";
        assert_eq!(
            msg(dup),
            "invalid launch.toml: `processes[1].type` `web` is declared twice (process types are unique per buildpack)"
        );
        let number = msg("[[processes]]\ntype = \"web\"\ncommand = 1\n");
        assert!(
            number.contains(
                "expected an array of strings (Buildpack API >= 0.10) or a string (older APIs)"
            ),
            "{number}"
        );
        let bad_type = msg("[[processes]]\ntype = \"web server\"\ncommand = [\"a\"]\n");
        assert!(
            bad_type.contains("invalid process type `web server`"),
            "{bad_type}"
        );
    }
}
