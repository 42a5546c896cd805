//! The detector: runs `/bin/detect` of each buildpack of each expanded group (directly, for when we already run
//! inside the build image: `--sandbox none`), then resolves the build plan. Exit codes follow the Platform API:
//! 20 no group passed, 21 no group passed and a buildpack errored, 12 a buildpack's API is unsupported.

use crate::exit;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gp_cnb::{
    BuildPlan, BuildpackDescriptor, GroupMember, GroupRef, GroupToml, OrderGroup, PlanToml,
    TomlFile,
};

use super::{Candidate, expand_order, resolve_group};

/// Where things are, as the spec's `detector` inputs name them.
#[derive(Debug, Clone)]
pub struct DetectDirs {
    /// `/cnb/buildpacks`: `<id with / as _>/<version>/buildpack.toml`.
    pub buildpacks: PathBuf,
    pub app: PathBuf,
    pub platform: PathBuf,
    /// Scratch space for the plans buildpacks write.
    pub scratch: PathBuf,
    pub exec_env: String,
    /// The target (`CNB_TARGET_*`): the run image's.
    pub target: gp_cnb::Target,
}

/// The output: the group that passed and its plan, plus every buildpack's output for the user.
#[derive(Debug, Clone)]
pub struct Detected {
    pub group: GroupToml,
    pub plan: PlanToml,
    pub log: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("buildpack `{id}@{version}`: cannot read `{path}`: {message}")]
    Descriptor {
        id: String,
        version: String,
        path: PathBuf,
        message: String,
    },
    #[error("buildpack `{id}` declares Buildpack API {api}; this lifecycle supports 0.7 to 0.12")]
    Api { id: String, api: String },
    #[error(transparent)]
    Order(#[from] super::ExpandError),
    #[error("no buildpack group passed detection{}", if *.errored { " (and a buildpack failed with an error; see its output)" } else { "" })]
    NoGroup { errored: bool, log: Vec<String> },
}

impl DetectError {
    /// The Platform API exit code for this failure.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            DetectError::NoGroup { errored: false, .. } => exit::DETECT_FAIL,
            DetectError::NoGroup { errored: true, .. } => exit::DETECT_BUILDPACK_ERROR,
            DetectError::Api { .. } => exit::INCOMPATIBLE_BUILDPACK_API,
            DetectError::Descriptor { .. } | DetectError::Order(_) => exit::DETECT_ERROR,
        }
    }
}

enum Outcome {
    Pass(BuildPlan),
    Fail,
    Error(i32),
}

struct Detector<'a> {
    dirs: &'a DetectDirs,
    descriptors: HashMap<String, BuildpackDescriptor>,
    log: Vec<String>,
    errored: bool,
}

fn bp_dir(root: &Path, r: &GroupRef) -> PathBuf {
    root.join(r.id.dir_name()).join(r.version.to_string())
}

impl Detector<'_> {
    fn descriptor(&mut self, r: &GroupRef) -> Result<BuildpackDescriptor, DetectError> {
        let key = format!("{}@{}", r.id, r.version);
        if let Some(d) = self.descriptors.get(&key) {
            return Ok(d.clone());
        }
        let path = bp_dir(&self.dirs.buildpacks, r).join("buildpack.toml");
        let d = BuildpackDescriptor::from_path(&path).map_err(|e| DetectError::Descriptor {
            id: r.id.to_string(),
            version: r.version.to_string(),
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !d.api.is_supported() {
            return Err(DetectError::Api {
                id: r.id.to_string(),
                api: d.api.to_string(),
            });
        }
        self.descriptors.insert(key, d.clone());
        Ok(d)
    }

    fn run_one(&mut self, r: &GroupRef) -> Outcome {
        let dir = bp_dir(&self.dirs.buildpacks, r);
        let plan_path =
            self.dirs
                .scratch
                .join(format!("plan-{}-{}.toml", r.id.dir_name(), r.version));
        let _ = fs_err::remove_file(&plan_path);
        let clear_env = self
            .descriptors
            .get(&format!("{}@{}", r.id, r.version))
            .is_some_and(|d| d.buildpack.clear_env);
        let platform_env = match crate::platform::buildpack_env(
            &gp_cnb::env::EnvMap::new(),
            &self.dirs.platform,
            clear_env,
        ) {
            Ok(env) => env,
            Err(message) => {
                self.log
                    .push(format!("[detector] {}@{}: {message}", r.id, r.version));
                return Outcome::Error(-1);
            }
        };
        // The positional arguments are deprecated in the spec but still passed, as the reference lifecycle
        // does: older buildpacks (and the samples) read `$1`/`$2`.
        let out = Command::new(dir.join("bin/detect"))
            .arg(&self.dirs.platform)
            .arg(&plan_path)
            .current_dir(&self.dirs.app)
            .envs(platform_env)
            .env("CNB_BUILD_PLAN_PATH", &plan_path)
            .env("CNB_BUILDPACK_DIR", &dir)
            .env("CNB_PLATFORM_DIR", &self.dirs.platform)
            .env("CNB_EXEC_ENV", &self.dirs.exec_env)
            // Only the target's own values: none left over from the environment the detector runs in.
            .env_remove(crate::target::OS)
            .env_remove(crate::target::ARCH)
            .env_remove(crate::target::ARCH_VARIANT)
            .env_remove(crate::target::DISTRO_NAME)
            .env_remove(crate::target::DISTRO_VERSION)
            .envs(crate::target::env_vars(&self.dirs.target))
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                self.log.push(format!(
                    "[detector] {}@{}: cannot run bin/detect: {e}",
                    r.id, r.version
                ));
                return Outcome::Error(-1);
            }
        };
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
        {
            self.log.push(format!("[{}] {line}", r.id));
        }
        match out.status.code() {
            Some(0) => {
                let text = fs_err::read_to_string(&plan_path).unwrap_or_default();
                match BuildPlan::from_toml_str(&text) {
                    Ok(plan) => Outcome::Pass(plan),
                    Err(e) => {
                        self.log.push(format!(
                            "[detector] {}@{} wrote an invalid build plan: {e}",
                            r.id, r.version
                        ));
                        Outcome::Error(0)
                    }
                }
            }
            Some(100) => Outcome::Fail,
            code => Outcome::Error(code.unwrap_or(-1)),
        }
    }

    /// One group: run every detect, drop failed optional ones, resolve the plan.
    fn group(&mut self, group: &[GroupRef]) -> Result<Option<Detected>, DetectError> {
        let mut candidates = Vec::new();
        let mut members = Vec::new();
        for r in group {
            let d = self.descriptor(r)?;
            let outcome = self.run_one(r);
            let plan = match outcome {
                Outcome::Pass(p) => p,
                Outcome::Fail => {
                    self.log.push(format!(
                        "[detector] {}@{}: fail{}",
                        r.id,
                        r.version,
                        if r.optional {
                            " (optional, skipped)"
                        } else {
                            ""
                        }
                    ));
                    if r.optional {
                        continue;
                    }
                    return Ok(None);
                }
                Outcome::Error(code) => {
                    self.errored = true;
                    self.log.push(format!(
                        "[detector] {}@{}: error (exit {code})",
                        r.id, r.version
                    ));
                    if r.optional {
                        continue;
                    }
                    return Ok(None);
                }
            };
            candidates.push(Candidate {
                id: r.id.clone(),
                version: r.version,
                optional: r.optional,
                plan,
            });
            members.push(GroupMember {
                id: r.id.clone(),
                version: r.version,
                api: d.api,
                homepage: d.buildpack.homepage.clone(),
                optional: false,
                exec_env: r.exec_env.clone(),
            });
        }
        let Some(resolved) = resolve_group(&candidates) else {
            self.log
                .push("[detector] the group's build plan cannot be satisfied".to_owned());
            return Ok(None);
        };
        let group = GroupToml {
            group: resolved
                .included
                .iter()
                .map(|&i| members[i].clone())
                .collect(),
            ..GroupToml::default()
        };
        Ok(Some(Detected {
            group,
            plan: resolved.plan,
            log: std::mem::take(&mut self.log),
        }))
    }
}

/// Detects against `order`: the first group (after expansion) that passes wins.
pub fn detect(order: &[OrderGroup], dirs: &DetectDirs) -> Result<Detected, DetectError> {
    let mut det = Detector {
        dirs,
        descriptors: HashMap::new(),
        log: Vec::new(),
        errored: false,
    };
    // Composite buildpacks: their order comes from their descriptor.
    let lookup = |r: &GroupRef| -> Option<Vec<OrderGroup>> {
        let path = bp_dir(&dirs.buildpacks, r).join("buildpack.toml");
        BuildpackDescriptor::from_path(&path)
            .ok()
            .filter(|d| !d.order.is_empty())
            .map(|d| d.order)
    };
    let groups = expand_order(order, &lookup)?;
    fs_err::create_dir_all(&dirs.scratch).ok();
    for g in &groups {
        if let Some(found) = det.group(g)? {
            return Ok(found);
        }
    }
    // The reference detector's lines, which buildpack test suites match on (our error follows them).
    det.log
        .push("ERROR: No buildpack groups passed detection.".to_owned());
    det.log
        .push("ERROR: Please check that you are running against the correct path.".to_owned());
    Err(DetectError::NoGroup {
        errored: det.errored,
        log: det.log,
    })
}
