//! An OCI runtime bundle from an image: `rootfs/` unpacked from its layers and `config.json` for runc.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gp_oci::image::{open_layer, read_image};
use gp_oci::layout::{Desc, Layout};
use gp_oci::spec::ConfigFile;
use oci_spec::runtime::{
    LinuxNamespaceBuilder, LinuxNamespaceType, RootBuilder, Spec, UserBuilder,
};

use crate::RunError;
use crate::layers::{LayerCache, Mounted};

/// What the container runs, read from the image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Entrypoint then command.
    pub args: Vec<String>,
    /// `KEY=value`, the image's first, then the caller's (which win).
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

/// A bundle directory ready for `runc create --bundle`.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub process: Process,
    /// The overlayfs root, when the bundle was made from cached layers: unmounted when the last clone goes.
    pub mounted: Option<Arc<Mounted>>,
}

impl Bundle {
    #[must_use]
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
}

/// Unpacks the image `desc` of `layout` into `<dir>/rootfs` and writes `<dir>/config.json`: the image's process
/// with `env` added (e.g. `PORT`), as its user, in namespaces of its own (network included), with `hostname`.
/// `dir` must not exist yet.
pub fn prepare(
    layout: &Layout,
    desc: &Desc,
    reference: &str,
    dir: &Path,
    env: &[(String, String)],
    hostname: &str,
) -> Result<Bundle, RunError> {
    prepare_on(None, layout, desc, reference, dir, env, hostname)
}

/// [`prepare`], with `<dir>/rootfs` an overlayfs mount of the image's layers kept in `layers` when given (only the
/// layers it lacks are unpacked; `None`: the image unpacked whole). The bundle holds the mount; it is unmounted
/// when the bundle (its last clone) is dropped. On failure `dir` is removed, and [`prepare`] can be tried instead.
pub fn prepare_on(
    layers: Option<&Arc<LayerCache>>,
    layout: &Layout,
    desc: &Desc,
    reference: &str,
    dir: &Path,
    env: &[(String, String)],
    hostname: &str,
) -> Result<Bundle, RunError> {
    let image = read_image(layout, desc).map_err(|source| RunError::Image {
        reference: reference.to_owned(),
        source: Box::new(source),
    })?;
    let host = gp_cnb::host_arch();
    let (os, arch) = (
        image.config.os().unwrap_or("linux"),
        image.config.architecture().unwrap_or(host),
    );
    if os != "linux" || arch != host {
        return Err(RunError::Platform {
            reference: reference.to_owned(),
            platform: image.config.platform(),
            host: host.to_owned(),
        });
    }
    let rootfs = dir.join("rootfs");
    let mounted = match layers {
        None => {
            let readers = image.layers.iter().map(|l| {
                open_layer(layout, l).map_err(|e| {
                    gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string()))
                })
            });
            gp_oci::unpack::unpack_layers(readers, &rootfs).map_err(|source| RunError::Unpack {
                path: rootfs.clone(),
                source: Box::new(source),
            })?;
            None
        }
        Some(cache) => {
            let made = cache.mount(layout, &image.layers, dir);
            match made {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    let _ = fs_err::remove_dir_all(dir);
                    return Err(e);
                }
            }
        }
    };
    let process = process_of(&image.config, &rootfs, reference, env)?;
    let spec = spec(&process, hostname)?;
    let path = dir.join("config.json");
    spec.save(&path)?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        process,
        mounted,
    })
}

/// The image's process: entrypoint + command, environment (plus `extra`, which wins), working directory and
/// user (names resolved in the image's own /etc/passwd and /etc/group).
pub fn process_of(
    config: &ConfigFile,
    rootfs: &Path,
    reference: &str,
    extra: &[(String, String)],
) -> Result<Process, RunError> {
    let args: Vec<String> = config
        .entrypoint()
        .iter()
        .chain(config.cmd())
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(RunError::NoProcess {
            reference: reference.to_owned(),
        });
    }
    let mut env: Vec<String> = config
        .env()
        .iter()
        .filter(|kv| {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            !extra.iter().any(|(k, _)| k == key)
        })
        .cloned()
        .collect();
    env.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    if !env.iter().any(|kv| kv.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let (uid, gid) = user(config.user().unwrap_or(""), rootfs)?;
    Ok(Process {
        args,
        env,
        cwd: config
            .working_dir()
            .filter(|d| d.starts_with('/'))
            .unwrap_or("/")
            .to_owned(),
        uid,
        gid,
    })
}

/// `uid[:gid]` or `name[:group]` (empty: root), names looked up in the image's files.
fn user(spec: &str, rootfs: &Path) -> Result<(u32, u32), RunError> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    let not_found = || RunError::User {
        user: spec.to_owned(),
    };
    let passwd = image_file(rootfs, "passwd");
    let entry = |text: &str, name: &str| -> Option<Vec<String>> {
        text.lines()
            .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
            .find(|f| f.first().is_some_and(|n| n == name))
    };
    let uid: u32 = match u.parse() {
        Ok(n) => n,
        Err(_) => entry(&passwd, u)
            .and_then(|f| f.get(2)?.parse().ok())
            .ok_or_else(not_found)?,
    };
    let gid: u32 = match g {
        Some(g) => match g.parse() {
            Ok(n) => n,
            Err(_) => entry(&image_file(rootfs, "group"), g)
                .and_then(|f| f.get(2)?.parse().ok())
                .ok_or_else(not_found)?,
        },
        // No group given: the user's primary group from passwd, else the uid's number.
        None => passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.get(2).and_then(|x| x.parse::<u32>().ok()) == Some(uid))
            .and_then(|f| f.get(3)?.parse().ok())
            .unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// `etc/<name>` of the image, read only when neither it nor `etc` is a symbolic link (which would point into this
/// machine's files); empty otherwise.
fn image_file(rootfs: &Path, name: &str) -> String {
    let etc = rootfs.join("etc");
    if !fs_err::symlink_metadata(&etc).is_ok_and(|m| m.is_dir()) {
        return String::new();
    }
    gp_fs::read_input_text(&etc.join(name), 4 << 20).unwrap_or_default()
}

/// The runc configuration: the defaults of the OCI runtime spec (namespaces pid, network, ipc, uts, mount, cgroup;
/// the usual mounts, masked and read-only paths, a small capability set), with the image's process, a writable root
/// (it is this run's own copy) and a hostname.
pub fn spec(process: &Process, hostname: &str) -> Result<Spec, RunError> {
    let mut spec = Spec::default();
    spec.set_hostname(Some(hostname.to_owned()));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build()?,
    ));
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_terminal(Some(false));
    p.set_args(Some(process.args.clone()));
    p.set_env(Some(process.env.clone()));
    p.set_cwd(PathBuf::from(&process.cwd));
    p.set_user(
        UserBuilder::default()
            .uid(process.uid)
            .gid(process.gid)
            .build()?,
    );
    spec.set_process(Some(p));
    if let Some(mut linux) = spec.linux().clone() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        if !namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network)
        {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .build()?,
            );
        }
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
