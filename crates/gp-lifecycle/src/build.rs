//! The builder: runs `/bin/build` of each buildpack of the detected group (directly, for `--sandbox none`), hands
//! each its part of the plan (unmet entries flow on to later providers), gives later buildpacks the build layers
//! of earlier ones (`bin`, `lib`, `env`, `env.build`), and collects processes, labels and slices into
//! `<layers>/config/metadata.toml`. A failing buildpack is reported by name, exit code and last output lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::progress::{Event, Progress, Silent};
use gp_cnb::env::{EnvAction, EnvMap, apply_layer_env_dirs, prepend_path, read_env_dir};
use gp_cnb::{
    BuildToml, BuildpackDescriptor, BuildpackPlan, GroupToml, LaunchToml, MetadataProcess,
    MetadataToml, PlanToml, TomlFile,
};

/// Lines of a failing buildpack's output quoted in the error.
const TAIL: usize = 20;

#[derive(Debug, Clone)]
pub struct BuildDirs {
    pub buildpacks: PathBuf,
    pub layers: PathBuf,
    pub app: PathBuf,
    pub platform: PathBuf,
    pub exec_env: String,
    /// The target (`CNB_TARGET_*`): the run image's.
    pub target: gp_cnb::Target,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("buildpack `{id}@{version}` failed with exit code {code}; last output:\n{tail}")]
    Failed {
        id: String,
        version: String,
        code: i32,
        tail: String,
    },
    #[error("buildpack `{id}`: {message}")]
    Contract { id: String, message: String },
    #[error("cannot write `{path}`: {message}")]
    Io { path: PathBuf, message: String },
    #[error("cannot read `{path}`: {message}")]
    Read { path: PathBuf, message: String },
}

impl BuildError {
    /// Platform API builder exit codes: 51 buildpack build error, 52-59 build-specific lifecycle errors.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Failed { .. } => crate::exit::BUILD_BUILDPACK_ERROR,
            BuildError::Contract { .. } | BuildError::Io { .. } | BuildError::Read { .. } => {
                crate::exit::BUILD_ERROR
            }
        }
    }
}

/// Everything `/bin/build` runs printed, for the error of a failing buildpack, and how long each ran.
pub struct BuildLog<'a> {
    pub lines: Vec<String>,
    /// Hears each line as it arrives ([`Event::Output`] with the buildpack's id).
    pub progress: &'a dyn Progress,
    /// Wall time spent inside each buildpack's `bin/build`, in group order.
    pub timings: Vec<(String, std::time::Duration)>,
}

impl std::fmt::Debug for BuildLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildLog")
            .field("lines", &self.lines.len())
            .field("timings", &self.timings)
            .finish_non_exhaustive()
    }
}

impl Default for BuildLog<'_> {
    fn default() -> Self {
        Self::new(&Silent)
    }
}

impl<'a> BuildLog<'a> {
    #[must_use]
    pub fn new(progress: &'a dyn Progress) -> Self {
        Self {
            lines: Vec::new(),
            progress,
            timings: Vec::new(),
        }
    }
}

/// Runs `cmd` with stdin closed, handing each line of its stdout and stderr to `on_line` as it comes (from two
/// reader threads); returns its exit status.
pub fn stream_lines(
    cmd: &mut Command,
    on_line: &(dyn Fn(String) + Sync),
) -> std::io::Result<std::process::ExitStatus> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    std::thread::scope(|s| {
        let pump = |r: Box<dyn std::io::Read + Send>| {
            s.spawn(move || {
                for line in BufReader::new(r).split(b'\n').map_while(Result::ok) {
                    on_line(
                        String::from_utf8_lossy(&line)
                            .trim_end_matches('\r')
                            .to_owned(),
                    );
                }
            });
        };
        if let Some(o) = out {
            pump(Box::new(o));
        }
        if let Some(e) = err {
            pump(Box::new(e));
        }
        child.wait()
    })
}

/// Runs `cmd`, passing each output line on as an [`Event::Output`] of buildpack `id`; returns the lines in
/// arrival order and the exit status.
fn stream(
    cmd: &mut Command,
    id: &str,
    progress: &dyn Progress,
) -> std::io::Result<(Vec<String>, std::process::ExitStatus)> {
    let lines = std::sync::Mutex::new(Vec::new());
    let status = stream_lines(cmd, &|line: String| {
        progress.event(Event::Output {
            buildpack: Some(id.to_owned()),
            line: line.clone(),
        });
        if let Ok(mut l) = lines.lock() {
            l.push(line);
        }
    })?;
    let lines = lines
        .into_inner()
        .map_err(|_| std::io::Error::other("log lock"))?;
    Ok((lines, status))
}

fn contract(id: &str, message: impl Into<String>) -> BuildError {
    BuildError::Contract {
        id: id.to_owned(),
        message: message.into(),
    }
}

/// What the build phase produced besides the layers.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub metadata: MetadataToml,
    /// Image labels from the buildpacks' `launch.toml` (later buildpacks win).
    pub labels: BTreeMap<String, String>,
}

impl Built {
    /// What a build phase that ran elsewhere (in the sandbox) left in `<layers>/config/metadata.toml`.
    pub fn from_layers(layers: &Path) -> Result<Built, BuildError> {
        let path = layers.join("config/metadata.toml");
        let metadata = MetadataToml::from_path(&path).map_err(|e| BuildError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let labels = metadata
            .labels
            .iter()
            .map(|l| (l.key.clone(), l.value.clone()))
            .collect();
        Ok(Built { metadata, labels })
    }
}

/// Runs the build phase for `group` with `plan`; writes `<layers>/config/metadata.toml`.
pub fn build(
    group: &GroupToml,
    plan: &PlanToml,
    dirs: &BuildDirs,
    base_env: &EnvMap,
    log: &mut BuildLog<'_>,
) -> Result<Built, BuildError> {
    let mut env = base_env.clone();
    let mut remaining = plan.entries.clone();
    let mut metadata = MetadataToml {
        buildpacks: group.group.clone(),
        ..MetadataToml::default()
    };
    let mut labels = BTreeMap::new();
    for member in &group.group {
        let id = member.id.as_str();
        let bp_dir = dirs
            .buildpacks
            .join(member.id.dir_name())
            .join(member.version.to_string());
        let descriptor = BuildpackDescriptor::from_path(bp_dir.join("buildpack.toml"))
            .map_err(|e| contract(id, e.to_string()))?;
        let layers = dirs.layers.join(member.id.dir_name());
        fs_err::create_dir_all(&layers).map_err(|e| BuildError::Io {
            path: layers.clone(),
            message: e.to_string(),
        })?;
        // This buildpack's plan: the requirements of every remaining entry it provides.
        let mine: Vec<usize> = (0..remaining.len())
            .filter(|&i| remaining[i].providers.iter().any(|p| p.id == member.id))
            .collect();
        let bp_plan = BuildpackPlan {
            entries: mine
                .iter()
                .flat_map(|&i| remaining[i].requires.clone())
                .collect(),
        };
        let plan_path = dirs
            .layers
            .join(format!("plan-{}.toml", member.id.dir_name()));
        let text = bp_plan
            .to_toml_string()
            .map_err(|e| contract(id, e.to_string()))?;
        fs_err::write(&plan_path, text).map_err(|e| BuildError::Io {
            path: plan_path.clone(),
            message: e.to_string(),
        })?;

        let run_env = crate::platform::buildpack_env(
            if descriptor.buildpack.clear_env {
                base_env
            } else {
                &env
            },
            &dirs.platform,
            descriptor.buildpack.clear_env,
        )
        .map_err(|m| contract(id, m))?;
        let started = std::time::Instant::now();
        run_buildpack(member, &bp_dir, &layers, &plan_path, dirs, &run_env, log)?;
        log.timings.push((id.to_owned(), started.elapsed()));
        let _ = fs_err::remove_file(&plan_path);
        ignore_untyped(&layers).map_err(|m| contract(id, m))?;

        // Unmet entries stay in the plan for later providers; met ones are done.
        let build_toml = BuildToml::from_path(layers.join("build.toml"))
            .ok()
            .unwrap_or_default();
        let unmet: Vec<&str> = build_toml.unmet.iter().map(|u| u.name.as_str()).collect();
        let mut k = 0;
        remaining.retain(|e| {
            let keep = !mine.contains(&k) || e.name().is_some_and(|n| unmet.contains(&n));
            k += 1;
            keep
        });

        if let Ok(launch) = LaunchToml::from_path(layers.join("launch.toml")) {
            launch
                .check_api(member.api)
                .map_err(|e| contract(id, e.to_string()))?;
            merge_launch(&mut metadata, &launch, member);
            labels.extend(
                launch
                    .labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone())),
            );
        }
        // Later buildpacks see this one's build layers.
        expose_build_layers(&mut env, &layers, member.api).map_err(|m| contract(id, m))?;
    }
    metadata.labels = labels
        .iter()
        .map(|(key, value)| gp_cnb::Label {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    let config = dirs.layers.join("config");
    fs_err::create_dir_all(&config).map_err(|e| BuildError::Io {
        path: config.clone(),
        message: e.to_string(),
    })?;
    let text = metadata
        .to_toml_string()
        .map_err(|e| contract("lifecycle", e.to_string()))?;
    let path = config.join("metadata.toml");
    fs_err::write(&path, text).map_err(|e| BuildError::Io {
        path,
        message: e.to_string(),
    })?;
    Ok(Built { metadata, labels })
}

/// Runs one `/bin/build`; its output goes to `log`, and a failure carries the last lines.
fn run_buildpack(
    member: &gp_cnb::GroupMember,
    bp_dir: &Path,
    layers: &Path,
    plan_path: &Path,
    dirs: &BuildDirs,
    env: &EnvMap,
    log: &mut BuildLog<'_>,
) -> Result<(), BuildError> {
    let id = member.id.as_str();
    let mut cmd = Command::new(bp_dir.join("bin/build"));
    // Positional arguments (deprecated, still passed as the reference lifecycle does): layers, platform, plan.
    cmd.arg(layers)
        .arg(&dirs.platform)
        .arg(plan_path)
        .current_dir(&dirs.app)
        .env_clear()
        .envs(env)
        .env("CNB_LAYERS_DIR", layers)
        .env("CNB_BP_PLAN_PATH", plan_path)
        .env("CNB_BUILDPACK_DIR", bp_dir)
        .env("CNB_PLATFORM_DIR", &dirs.platform)
        .env("CNB_EXEC_ENV", &dirs.exec_env)
        .envs(crate::target::env_vars(&dirs.target));
    let (lines, status) = stream(&mut cmd, id, log.progress)
        .map_err(|e| contract(id, format!("cannot run bin/build: {e}")))?;
    log.lines
        .extend(lines.iter().map(|l| format!("[{id}] {l}")));
    if !status.success() {
        let tail = lines[lines.len().saturating_sub(TAIL)..]
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(BuildError::Failed {
            id: id.to_owned(),
            version: member.version.to_string(),
            code: status.code().unwrap_or(-1),
            tail,
        });
    }
    Ok(())
}

/// Renames each layer directory with no type (`<layer>.toml` absent or with neither `launch`, `build` nor `cache`)
/// to `<layer>.ignore`, as the spec has it at the end of each buildpack's build: later buildpacks cannot come to
/// depend on it, and it is neither exported nor cached.
fn ignore_untyped(layers: &Path) -> Result<(), String> {
    let Ok(rd) = fs_err::read_dir(layers) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.file_type().is_ok_and(|t| t.is_dir()) || name.ends_with(".ignore") {
            continue;
        }
        let typed = gp_cnb::LayerContentMetadata::from_path(crate::layers::toml_of(&path))
            .is_ok_and(|m| !m.types().is_ignored());
        if typed {
            continue;
        }
        let to = layers.join(format!("{name}.ignore"));
        let _ = fs_err::remove_dir_all(&to);
        fs_err::rename(&path, &to).map_err(|err| {
            format!(
                "cannot rename the untyped layer `{}` to `{}`: {err}",
                path.display(),
                to.display()
            )
        })?;
    }
    Ok(())
}

/// Puts a buildpack's build layers (`bin`, `lib`, `env`, `env.build`) into the environment of later buildpacks.
fn expose_build_layers(
    env: &mut EnvMap,
    layers: &Path,
    api: gp_cnb::BuildpackApi,
) -> Result<(), String> {
    for crate::layers::LayerDir {
        path: layer, meta, ..
    } in crate::layers::layer_dirs(layers)
    {
        if !meta.types().build {
            continue;
        }
        if layer.join("bin").is_dir() {
            prepend_path(env, "PATH", &layer.join("bin"));
        }
        if layer.join("lib").is_dir() {
            prepend_path(env, "LD_LIBRARY_PATH", &layer.join("lib"));
            prepend_path(env, "LIBRARY_PATH", &layer.join("lib"));
        }
        apply_layer_env_dirs(
            env,
            [
                read_env_dir(&layer.join("env")),
                read_env_dir(&layer.join("env.build")),
            ],
            EnvAction::bare_name(api),
        )
        .map_err(|e| format!("layer `{}`: {e}", layer.display()))?;
    }
    Ok(())
}

/// Processes of later buildpacks replace earlier ones of the same type; the last `default = true` wins.
fn merge_launch(metadata: &mut MetadataToml, launch: &LaunchToml, member: &gp_cnb::GroupMember) {
    for p in &launch.processes {
        metadata.processes.retain(|q| q.kind != p.kind);
        metadata.processes.push(MetadataProcess {
            buildpack_id: Some(member.id.clone()),
            ..p.clone().into()
        });
        if p.default {
            metadata.default_process_type = Some(p.kind.clone());
        }
    }
    metadata.slices.extend(launch.slices.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_layers_become_dot_ignore_and_typed_ones_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let l = tmp.path();
        for name in ["typed", "untyped", "restored", "bare"] {
            fs_err::create_dir_all(l.join(name)).unwrap();
        }
        fs_err::write(l.join("typed.toml"), "[types]\nbuild = true\n").unwrap();
        fs_err::write(l.join("untyped.toml"), "[types]\nlaunch = false\n").unwrap();
        fs_err::write(l.join("restored.toml"), "[metadata]\nv = \"1\"\n").unwrap();
        ignore_untyped(l).unwrap();
        let mut names: Vec<String> = fs_err::read_dir(l)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["bare.ignore", "restored.ignore", "typed", "untyped.ignore"]
        );
    }
}
