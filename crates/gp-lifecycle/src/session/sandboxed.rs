//! Detect and build inside the builder's root filesystem, as its CNB user, through the builder's own static
//! `lifecycle` binary; and, for builds without a sandbox, the merged buildpacks directory.

use std::path::{Path, PathBuf};

use gp_cnb::{GroupToml, OrderToml, TomlFile};

use super::builder::Resolved;
use super::project::ExtraBuildpack;
use super::{Session, SessionError, Workdirs, caches, early};
use crate::analyze::Previous;
use crate::build::Built;
use crate::progress::{Event, Phase};
use crate::sandbox::{Mount, Spec};

/// Which sandbox runs the inner phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Runner {
    Namespaces,
    Runc,
}

/// What a sandboxed build needs from the builder besides buildpacks and order.
#[derive(Debug, Clone)]
pub(super) struct BuildImage {
    pub runner: Runner,
    pub rootfs: PathBuf,
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub gid: u32,
}

/// The Platform API the sandboxed `lifecycle` is told it serves.
const PLATFORM_API: &str = "0.15";

pub(super) fn run(
    session: &Session<'_>,
    resolved: &Resolved,
    previous: Option<&Previous>,
    image: &BuildImage,
    custom: Option<&(OrderToml, Vec<ExtraBuildpack>)>,
    dirs: Workdirs<'_>,
    uploads: &early::Uploads,
) -> Result<(GroupToml, Built), SessionError> {
    let Workdirs {
        work,
        app,
        layers,
        platform,
        target,
    } = dirs;
    let exe = match &session.request.sandbox_helper {
        Some(p) => p.clone(),
        None => {
            std::env::current_exe().map_err(SessionError::io("find", "the current executable"))?
        }
    };
    let env = phase_env(image, target);
    let mut extra_mounts = Vec::new();
    if let Some((order, extra)) = custom {
        // The spec's `<layers>/order.toml` takes precedence over the builder's `/cnb/order.toml`.
        let path = layers.join("order.toml");
        let text = order
            .to_toml_string()
            .map_err(|e| super::project::ProjectError::Parse(Box::new(e)))?;
        fs_err::write(&path, text).map_err(SessionError::io("write", &path))?;
        for e in extra {
            extra_mounts.push(Mount {
                host: std::path::absolute(&e.dir).map_err(SessionError::io("resolve", &e.dir))?,
                target: format!(
                    "/cnb/buildpacks/{}/{}",
                    gp_cnb::buildpack_dir_name(&e.id),
                    e.version
                ),
                read_only: true,
            });
        }
    }
    let mount = |host: &Path, target: &str, read_only: bool| Mount {
        host: host.to_path_buf(),
        target: target.into(),
        read_only,
    };
    let spec = |phase: &str| Spec {
        rootfs: image.rootfs.clone(),
        scratch: work.join(format!("sandbox-{phase}")),
        mounts: [
            mount(app, "/workspace", false),
            mount(layers, "/layers", false),
            mount(platform, "/platform", true),
        ]
        .into_iter()
        .chain(extra_mounts.iter().cloned())
        .collect(),
        uid: image.uid,
        gid: image.gid,
        argv: vec!["/cnb/lifecycle/lifecycle".into(), phase.into()],
        env: env.clone(),
        cwd: "/workspace".into(),
    };
    let on_line = |line: String| {
        session.clock.event(Event::Output {
            buildpack: None,
            line,
        });
    };
    let phase = |name: &'static str| -> Result<(), SessionError> {
        let spec = spec(name);
        let status = match image.runner {
            Runner::Namespaces => crate::sandbox::run(&exe, &spec, &on_line),
            Runner::Runc => crate::sandbox::run_runc(&spec, &on_line),
        }?;
        match status.code() {
            Some(0) => Ok(()),
            Some(code) => Err(SessionError::PhaseFailed { phase: name, code }),
            None => Err(SessionError::PhaseKilled { phase: name }),
        }
    };
    give_to(app, image)?;
    give_to(layers, image)?;
    session.clock.start(Phase::Detecting, None);
    phase("detect")?;
    let group_path = layers.join("group.toml");
    let group = GroupToml::from_path(&group_path).map_err(|source| SessionError::PhaseOutput {
        path: group_path.clone(),
        source: Box::new(source),
    })?;
    caches::restore(session, resolved, layers, &group, previous)?;
    give_to(layers, image)?;
    session.clock.start(Phase::Building, None);
    let early = early::start(session, resolved, layers, uploads)?;
    let result = phase("build");
    early::finish(session, early);
    result?;
    let built = Built::from_layers(layers)?;
    Ok((group, built))
}

/// The inner phases' environment: the build image's, with its CNB user's home, the Platform API and the run
/// image's target.
fn phase_env(image: &BuildImage, target: &gp_cnb::Target) -> Vec<(String, String)> {
    let mut env = image.env.clone();
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), home_of(&image.rootfs, image.uid)));
    }
    env.push(("CNB_PLATFORM_API".into(), PLATFORM_API.into()));
    // The lifecycle completes these from the build image (`/etc/os-release`, its architecture).
    env.retain(|(k, _)| !k.starts_with("CNB_TARGET_"));
    env.extend(
        crate::target::env_vars(target)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

/// For builds without a sandbox: a buildpacks directory with the builder's buildpacks (linked) and the
/// project's.
pub(super) fn merged_buildpacks(
    builder: &Path,
    extra: &[ExtraBuildpack],
    work: &Path,
) -> Result<PathBuf, SessionError> {
    let merged = work.join("buildpacks");
    let link = |from: &Path, to: &Path| -> Result<(), SessionError> {
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent).map_err(SessionError::io("create", parent))?;
        }
        let _ = fs_err::remove_file(to);
        let from = std::path::absolute(from).map_err(SessionError::io("resolve", from))?;
        fs_err::os::unix::fs::symlink(&from, to).map_err(SessionError::io("link", to))
    };
    for id in fs_err::read_dir(builder)
        .map_err(SessionError::io("read", builder))?
        .flatten()
    {
        for version in fs_err::read_dir(id.path())
            .map_err(SessionError::io("read", id.path()))?
            .flatten()
        {
            link(
                &version.path(),
                &merged.join(id.file_name()).join(version.file_name()),
            )?;
        }
    }
    for e in extra {
        link(
            &e.dir,
            &merged
                .join(gp_cnb::buildpack_dir_name(&e.id))
                .join(&e.version),
        )?;
    }
    Ok(merged)
}

/// The CNB user's home directory from the build image's `/etc/passwd` (`/` when it has none).
fn home_of(rootfs: &Path, uid: u32) -> String {
    fs_err::read_to_string(rootfs.join("etc/passwd"))
        .ok()
        .and_then(|p| passwd_home(&p, uid))
        .unwrap_or_else(|| "/".into())
}

/// The home directory of `uid` in a passwd file's text.
fn passwd_home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2] == uid.to_string()).then(|| f[5].to_owned())
    })
}

/// As root, hands `dir` (recursively) to the CNB user, who writes it in the sandbox. Rootless, the calling user
/// already is the CNB user inside.
fn give_to(dir: &Path, image: &BuildImage) -> Result<(), SessionError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = fs_err::symlink_metadata(&d).map_err(SessionError::io("read", &d))?;
        // Only where needed: a chown changes nothing else, but skipping it keeps a no-change rebuild cheap.
        if (meta.uid(), meta.gid()) != (image.uid, image.gid) {
            std::os::unix::fs::lchown(&d, Some(image.uid), Some(image.gid))
                .map_err(SessionError::io("chown", &d))?;
        }
        if !meta.is_dir() {
            continue;
        }
        for e in fs_err::read_dir(&d)
            .map_err(SessionError::io("read", &d))?
            .flatten()
        {
            stack.push(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_home_directory_comes_from_the_users_passwd_line() {
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\nshort:x:7\n";
        assert_eq!(
            super::passwd_home(passwd, 1000).as_deref(),
            Some("/home/cnb")
        );
        assert_eq!(super::passwd_home(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(super::passwd_home(passwd, 7), None);
    }
}
