//! The launcher (Platform API 0.15 `launcher`): picks the process (by `$0`, `CNB_PROCESS_TYPE` or the default),
//! builds the launch environment from the launch layers (`bin`, `lib`, `env`, `env.launch`, `env.launch/<type>`,
//! `exec.d`), and replaces itself with the process.
//!
//! This library decides; `main.rs` does the I/O that cannot be tested without a process (exec.d, exec).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gp_cnb::BuildpackApi;
use gp_cnb::ProcessCommand;
use gp_cnb::TomlFile;
use gp_cnb::env::{EnvAction, EnvMap, apply_layer_env_dirs, prepend_path, read_env_dir};
use gp_cnb::{MetadataProcess, MetadataToml};

/// Launch-specific lifecycle errors use exit codes 80-89.
pub const EXIT_LAUNCH: u8 = 82;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot read `{path}`: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error(
        "process type `{wanted}` is not in this image (or not for exec env `{exec_env}`); available: {available}"
    )]
    UnknownProcess {
        wanted: String,
        exec_env: String,
        available: String,
    },
    #[error(
        "no process type was given and the image has no default process; available: {available}; run one with `CNB_PROCESS_TYPE=<type>` or pass a command"
    )]
    NoDefault { available: String },
    #[error("process `{kind}` has an empty command")]
    EmptyCommand { kind: String },
    #[error("launch environment of layer `{layer}`: {message}")]
    Env { layer: PathBuf, message: String },
}

/// Everything the launcher reads from its own invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv0: String,
    pub args: Vec<String>,
    pub env: EnvMap,
}

impl Invocation {
    fn var(&self, k: &str, default: &str) -> String {
        self.env
            .get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    #[must_use]
    pub fn layers_dir(&self) -> PathBuf {
        PathBuf::from(self.var("CNB_LAYERS_DIR", "/layers"))
    }

    #[must_use]
    pub fn app_dir(&self) -> PathBuf {
        PathBuf::from(self.var("CNB_APP_DIR", "/workspace"))
    }

    #[must_use]
    pub fn exec_env(&self) -> String {
        self.var("CNB_EXEC_ENV", "production")
    }
}

/// What to run, decided before the environment is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The buildpack process type, or `None` for a user-provided command.
    pub process_type: Option<String>,
    pub argv: Vec<String>,
    /// Direct exec (true) or through `bash -c` (false).
    pub direct: bool,
    pub working_dir: PathBuf,
}

pub fn read_metadata(layers: &Path) -> Result<MetadataToml, LaunchError> {
    let path = layers.join("config/metadata.toml");
    MetadataToml::from_path(&path).map_err(|e| LaunchError::Metadata {
        path,
        message: e.to_string(),
    })
}

fn available(m: &MetadataToml) -> String {
    let names: Vec<&str> = m.processes.iter().map(|p| p.kind.as_str()).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn buildpack_api(m: &MetadataToml, p: &MetadataProcess) -> Option<BuildpackApi> {
    let id = p.buildpack_id.as_ref()?;
    m.buildpacks.iter().find(|b| &b.id == id).map(|b| b.api)
}

/// Chooses the process per the spec: `$0`'s last element when it names a process type, else
/// `CNB_PROCESS_TYPE`, else (with no arguments) the default process, else the user's command.
pub fn select(inv: &Invocation, m: &MetadataToml) -> Result<Launch, LaunchError> {
    let exec_env = inv.exec_env();
    let name = Path::new(&inv.argv0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let by_name = m.process(&name).map(|_| name.clone());
    let wanted = by_name
        .or_else(|| {
            inv.env
                .get("CNB_PROCESS_TYPE")
                .filter(|v| !v.is_empty())
                .cloned()
        })
        .or_else(|| {
            if inv.args.is_empty() {
                m.default_process_type.as_ref().map(ToString::to_string)
            } else {
                None
            }
        });
    let Some(wanted) = wanted else {
        if inv.args.is_empty() {
            return Err(LaunchError::NoDefault {
                available: available(m),
            });
        }
        let (direct, argv) = match inv.args.first().map(String::as_str) {
            Some("--") => (true, inv.args[1..].to_vec()),
            _ => (false, inv.args.clone()),
        };
        return Ok(Launch {
            process_type: None,
            argv,
            direct,
            working_dir: inv.app_dir(),
        });
    };
    let p = m
        .processes
        .iter()
        .find(|p| p.kind == wanted.as_str() && p.applies_to(&exec_env))
        .ok_or_else(|| LaunchError::UnknownProcess {
            wanted: wanted.clone(),
            exec_env: exec_env.clone(),
            available: available(m),
        })?;
    let modern = buildpack_api(m, p).is_none_or(|api| api.at_least(0, 9));
    // Buildpack API >= 0.9 processes are always direct; older ones say so themselves (shell when not).
    let direct = modern || p.direct;
    let mut argv = match &p.command {
        ProcessCommand::Argv(v) => v.clone(),
        ProcessCommand::Legacy(s) => vec![s.clone()],
    };
    if argv.first().is_none_or(String::is_empty) {
        return Err(LaunchError::EmptyCommand { kind: wanted });
    }
    if modern && !inv.args.is_empty() {
        argv.extend(inv.args.iter().cloned()); // user args replace the default args
    } else {
        argv.extend(p.args.iter().cloned());
        argv.extend(inv.args.iter().cloned());
    }
    let working_dir = p
        .working_dir
        .as_ref()
        .map_or_else(|| inv.app_dir(), PathBuf::from);
    Ok(Launch {
        process_type: Some(wanted),
        argv,
        direct,
        working_dir,
    })
}

/// Launch layers in spec order: buildpacks as they ran, layers by name. (`bp-id` `/` becomes `_` on disk.)
#[must_use]
pub fn launch_layers(layers: &Path, m: &MetadataToml) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for bp in &m.buildpacks {
        let dir = layers.join(bp.id.dir_name());
        let Ok(rd) = fs_err::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

/// The launch environment: the inherited one without launcher variables, then each layer's `bin`/`lib` and env
/// dirs (`env`, `env.launch`, `env.launch/<type>`).
pub fn launch_env(
    inv: &Invocation,
    m: &MetadataToml,
    layers: &[PathBuf],
    process: Option<&str>,
) -> Result<EnvMap, LaunchError> {
    let mut env: EnvMap = inv.env.clone();
    for k in ["CNB_APP_DIR", "CNB_LAYERS_DIR", "CNB_PROCESS_TYPE"] {
        env.remove(k);
    }
    if let Some(path) = env.get("PATH").cloned() {
        let kept: Vec<&str> = path
            .split(':')
            .skip_while(|p| *p == "/cnb/process")
            .collect();
        env.insert("PATH".into(), kept.join(":"));
    }
    let apis: BTreeMap<String, BuildpackApi> = m
        .buildpacks
        .iter()
        .map(|b| (b.id.dir_name(), b.api))
        .collect();
    for layer in layers {
        if layer.join("bin").is_dir() {
            prepend_path(&mut env, "PATH", &layer.join("bin"));
        }
        if layer.join("lib").is_dir() {
            prepend_path(&mut env, "LD_LIBRARY_PATH", &layer.join("lib"));
        }
        let bp = layer
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let api = apis
            .get(&bp)
            .copied()
            .unwrap_or_else(|| "0.12".parse().unwrap_or_else(|_| unreachable!("valid api")));
        let mut dirs = vec![
            read_env_dir(&layer.join("env")),
            read_env_dir(&layer.join("env.launch")),
        ];
        if let Some(p) = process {
            dirs.push(read_env_dir(&layer.join("env.launch").join(p)));
        }
        apply_layer_env_dirs(&mut env, dirs, EnvAction::bare_name(api)).map_err(|e| {
            LaunchError::Env {
                layer: layer.clone(),
                message: e.to_string(),
            }
        })?;
    }
    Ok(env)
}

/// The exec.d executables to run, in spec order: all `exec.d/*` first, then all `exec.d/<type>/*`.
#[must_use]
pub fn exec_d(layers: &[PathBuf], process: Option<&str>) -> Vec<PathBuf> {
    in_spec_order(layers, "exec.d", process)
}

/// The `profile.d` scripts a shell process sources, in spec order: all `profile.d/*`, then all
/// `profile.d/<type>/*`.
#[must_use]
pub fn profile_d(layers: &[PathBuf], process: Option<&str>) -> Vec<PathBuf> {
    in_spec_order(layers, "profile.d", process)
}

/// Files of `<layer>/<dir>` for every layer (layers in build order, then by name; files by name), then those of
/// `<layer>/<dir>/<process>`.
fn in_spec_order(layers: &[PathBuf], dir: &str, process: Option<&str>) -> Vec<PathBuf> {
    let list = |dir: PathBuf| {
        let mut v: Vec<PathBuf> = fs_err::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut out: Vec<PathBuf> = layers.iter().flat_map(|l| list(l.join(dir))).collect();
    if let Some(p) = process {
        out.extend(layers.iter().flat_map(|l| list(l.join(dir).join(p))));
    }
    out
}

/// Quotes `s` for bash (single quotes; embedded `'` closed, escaped and reopened).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script of the shell strategy, run by one bash in `<app>`: source the `profile.d` scripts and
/// `<app>/.profile` (when present), change to the process's working directory, then `exec` the command line
/// (its arguments are bash's positional parameters).
#[must_use]
pub fn shell_script(profiles: &[PathBuf], app: &Path, working_dir: &Path, command: &str) -> String {
    let mut lines: Vec<String> = profiles
        .iter()
        .map(|p| format!("source {}", quote(&p.to_string_lossy())))
        .collect();
    if app.join(".profile").is_file() {
        lines.push("source ./.profile".into());
    }
    // Always: a profile script that changes directory must not move the process.
    lines.push(format!("cd -- {}", quote(&working_dir.to_string_lossy())));
    lines.push(format!("exec {command}"));
    lines.join("\n")
}
