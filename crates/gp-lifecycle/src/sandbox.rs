//! The build sandbox: runs one lifecycle phase inside the build image's root filesystem, as the image's CNB user,
//! in fresh mount, PID, IPC and UTS namespaces. When goldenpath is not root, a user namespace maps the CNB user
//! onto the calling user (rootless); as root, the CNB user's ids are used as they are.
//!
//! The root filesystem (an unpacked build image, shared by every build on the same digest) is the lower layer of an
//! overlay, so whatever a buildpack writes outside the spec's mounts is thrown away with the build. Inside, only the
//! mounts the caller names are visible from the host (the app, layers and platform directories), plus
//! `/etc/resolv.conf` and `/etc/hosts` so that buildpacks can reach package registries, a minimal `/dev`, a new
//! `/proc` and an empty `/tmp`.
//!
//! The host side ([`run`]) starts a helper process (the calling program, re-executed with [`INIT_ARG`]) that sets
//! up the namespaces and execs the phase; [`init`] is that helper's body.
//!
//! [`run_runc`] runs the same [`Spec`] with `runc` instead (as root): the build image is the container's read-only
//! root, with tmpfs on `/tmp` and the CNB user's home, and the same bind mounts.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde::{Deserialize, Serialize};

/// The first argument that makes a program run [`init`] (the CLI dispatches on it before parsing anything).
pub const INIT_ARG: &str = "__goldenpath-sandbox-init";
/// The variable [`run`] passes the [`Spec`] in (JSON).
const SPEC_VAR: &str = "GOLDENPATH_SANDBOX_SPEC";
/// Exit code of the helper when the sandbox itself could not be set up (the phase never ran).
pub const SETUP_FAILED: i32 = 125;

/// A host directory made visible inside the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mount {
    pub host: PathBuf,
    /// Absolute path inside the sandbox.
    pub target: String,
    pub read_only: bool,
}

/// One process to run in the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The unpacked build image (never written to).
    pub rootfs: PathBuf,
    /// Empty directory for the overlay's upper and work directories (thrown away afterwards by the caller).
    pub scratch: PathBuf,
    pub mounts: Vec<Mount>,
    pub uid: u32,
    pub gid: u32,
    /// Absolute path inside the sandbox, then arguments.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub cwd: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the sandbox helper `{exe}`: {source}")]
    Spawn { exe: PathBuf, source: io::Error },
    #[error(
        "the build sandbox could not be set up (see the `sandbox:` line above); try `--sandbox runc`, or `--sandbox none` inside a build container"
    )]
    Setup,
}

/// Whether this machine lets us create the namespaces the sandbox needs (checked by running `true` in them).
#[must_use]
pub fn available() -> bool {
    Command::new("unshare")
        .args(if is_root() {
            &["--mount", "--pid", "--fork", "true"][..]
        } else {
            &[
                "--user",
                "--map-root-user",
                "--mount",
                "--pid",
                "--fork",
                "true",
            ][..]
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `runc` can be used: installed, and we are root (rootless runc needs a user namespace setup that the
/// namespaces sandbox already does better).
#[must_use]
pub fn runc_available() -> bool {
    is_root()
        && Command::new("runc")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Runs `spec` as a runc container; each line the phase prints goes to `on_line`.
pub fn run_runc(
    spec: &Spec,
    on_line: &(dyn Fn(String) + Sync),
) -> Result<ExitStatus, SandboxError> {
    let bundle = spec.scratch.join("bundle");
    let spawn = |source: io::Error| SandboxError::Spawn {
        exe: PathBuf::from("runc"),
        source,
    };
    fs_err::create_dir_all(&bundle).map_err(spawn)?;
    let config = runc_config(spec);
    fs_err::write(bundle.join("config.json"), config.to_string()).map_err(spawn)?;
    let id = format!(
        "goldenpath-{}-{}",
        std::process::id(),
        spec.scratch
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(spec.scratch.join("runc-state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id);
    let status = crate::build::stream_lines(&mut cmd, on_line).map_err(spawn)?;
    Ok(status)
}

/// The OCI runtime configuration for `spec`.
fn runc_config(spec: &Spec) -> serde_json::Value {
    use serde_json::json;
    let home = spec
        .env
        .iter()
        .find(|(k, _)| k == "HOME")
        .map_or("/home", |(_, v)| v.as_str());
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}),
        json!({"destination": home, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755", format!("uid={}", spec.uid), format!("gid={}", spec.gid)]}),
    ];
    for m in &spec.mounts {
        let mut options = vec!["rbind"];
        if m.read_only {
            options.push("ro");
        }
        mounts.push(
            json!({"destination": m.target, "type": "bind", "source": m.host, "options": options}),
        );
    }
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        if Path::new(file).exists() {
            mounts.push(json!({"destination": file, "type": "bind", "source": file, "options": ["bind", "ro"]}));
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": spec.uid, "gid": spec.gid},
            "args": spec.argv,
            "env": spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "cwd": spec.cwd,
            "noNewPrivileges": true,
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": spec.rootfs, "readonly": true},
        "hostname": "goldenpath-build",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `spec` in the sandbox through the helper `exe` (normally `std::env::current_exe()`; its `main` must call
/// [`init`] when its first argument is [`INIT_ARG`]); each line the phase prints goes to `on_line`. Returns the
/// phase's exit status.
pub fn run(
    exe: &Path,
    spec: &Spec,
    on_line: &(dyn Fn(String) + Sync),
) -> Result<ExitStatus, SandboxError> {
    let json = serde_json::to_string(spec).map_err(|e| SandboxError::Spawn {
        exe: exe.to_path_buf(),
        source: io::Error::other(e),
    })?;
    let mut cmd = Command::new(exe);
    cmd.arg(INIT_ARG).env_clear().env(SPEC_VAR, json);
    let status =
        crate::build::stream_lines(&mut cmd, on_line).map_err(|source| SandboxError::Spawn {
            exe: exe.to_path_buf(),
            source,
        })?;
    if status.code() == Some(SETUP_FAILED) {
        return Err(SandboxError::Setup);
    }
    Ok(status)
}

/// The helper's body: reads the spec from the environment, builds the sandbox and execs the phase in it.
/// Never returns; exits with the phase's status, or [`SETUP_FAILED`] after printing why.
#[must_use]
pub fn init() -> i32 {
    let spec: Spec = match std::env::var(SPEC_VAR)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox: no valid spec in {SPEC_VAR}: {e}");
            return SETUP_FAILED;
        }
    };
    match enter(&spec) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sandbox: {e}");
            SETUP_FAILED
        }
    }
}

fn step(what: impl FnOnce() -> String) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{}: {e}", what())
}

/// Namespaces, then a fork so that the phase is PID 1 of the new PID namespace; the parent waits for it.
#[allow(unsafe_code)] // fork(2): the helper is single-threaded at this point, which is what makes fork sound.
fn enter(spec: &Spec) -> Result<i32, String> {
    use nix::sched::{CloneFlags, unshare};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    let rootless = !is_root();
    if rootless {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        unshare(CloneFlags::CLONE_NEWUSER)
            .map_err(step(|| "cannot create a user namespace".into()))?;
        let write = |file: &str, text: String| {
            fs_err::write(format!("/proc/self/{file}"), text)
                .map_err(|e| format!("cannot write /proc/self/{file}: {e}"))
        };
        write("setgroups", "deny".into())?;
        write("uid_map", format!("{} {uid} 1\n", spec.uid))?;
        write("gid_map", format!("{} {gid} 1\n", spec.gid))?;
    }
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS,
    )
    .map_err(step(|| "cannot create mount/PID namespaces".into()))?;
    // SAFETY: single-threaded process (the helper has started no threads), so the child may run any code.
    match unsafe { fork() }.map_err(step(|| "fork".into()))? {
        ForkResult::Child => {
            let err = match setup(spec, rootless) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            eprintln!("sandbox: {err}");
            std::process::exit(SETUP_FAILED);
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(format!("waiting for the phase: {e}")),
            }
        },
    }
}

enum Never {}

/// In the child (PID 1 of the new namespace): the root filesystem, the mounts, the user, then exec.
fn setup(spec: &Spec, rootless: bool) -> Result<Never, String> {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    use nix::unistd::{Gid, Uid, chdir, pivot_root, sethostname};

    let none: Option<&str> = None;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(step(|| "prctl".into()))?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(step(|| "cannot make / private".into()))?;
    let root = new_root(spec)?;

    for m in &spec.mounts {
        let target = inside(&root, &m.target);
        mkdir(&target)?;
        bind(&m.host, &target, m.read_only)?;
    }
    for file in ["/etc/resolv.conf", "/etc/hosts"] {
        if Path::new(file).exists() {
            let target = inside(&root, file);
            if !target.exists() {
                if let Some(parent) = target.parent() {
                    mkdir(parent)?;
                }
                // A dangling symlink (systemd-resolved style) is replaced by a file to bind onto.
                let _ = fs_err::remove_file(&target);
                fs_err::write(&target, "").map_err(|e| e.to_string())?;
            }
            bind(Path::new(file), &target, true)?;
        }
    }
    devices(&root)?;
    let proc_dir = inside(&root, "/proc");
    mkdir(&proc_dir)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(step(|| "cannot mount /proc".into()))?;
    let tmp = inside(&root, "/tmp");
    mkdir(&tmp)?;
    mount(
        Some("tmpfs"),
        &tmp,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(step(|| "cannot mount /tmp".into()))?;

    chdir(&root).map_err(step(|| format!("chdir {}", root.display())))?;
    pivot_root(".", ".").map_err(step(|| "pivot_root".into()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step(|| "cannot detach the host root".into()))?;
    chdir("/").map_err(step(|| "chdir /".into()))?;
    let _ = sethostname("goldenpath-build");

    if !rootless {
        let (uid, gid) = (Uid::from_raw(spec.uid), Gid::from_raw(spec.gid));
        nix::unistd::setgroups(&[gid]).map_err(step(|| "setgroups".into()))?;
        nix::unistd::setresgid(gid, gid, gid)
            .map_err(step(|| format!("cannot switch to group {gid}")))?;
        nix::unistd::setresuid(uid, uid, uid)
            .map_err(step(|| format!("cannot switch to user {uid}")))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(step(|| "no_new_privs".into()))?;
    chdir(spec.cwd.as_str()).map_err(step(|| format!("working directory `{}`", spec.cwd)))?;

    let c = |s: &str| CString::new(s).map_err(|_| format!("NUL byte in `{s}`"));
    let argv = spec
        .argv
        .iter()
        .map(|a| c(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| c(&format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(program) = argv.first() else {
        return Err("nothing to run".into());
    };
    let e = nix::unistd::execve(program, &argv, &env).unwrap_err();
    Err(format!(
        "cannot run `{}` in the build image: {e}",
        spec.argv[0]
    ))
}

fn inside(root: &Path, target: &str) -> PathBuf {
    root.join(target.trim_start_matches('/'))
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs_err::create_dir_all(path).map_err(|e| e.to_string())
}

fn bind(host: &Path, target: &Path, read_only: bool) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    let none: Option<&str> = None;
    mount(
        Some(host),
        target,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(step(|| {
        format!("cannot mount {} at {}", host.display(), target.display())
    }))?;
    if read_only {
        mount(
            none,
            target,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            none,
        )
        .map_err(step(|| {
            format!("cannot make {} read-only", target.display())
        }))?;
    }
    Ok(())
}

/// The overlay of the build image (lower) and a scratch directory (upper); falls back to a read-only bind mount of
/// the image where overlays are not allowed (old kernels without unprivileged overlayfs).
fn new_root(spec: &Spec) -> Result<PathBuf, String> {
    use nix::mount::{MsFlags, mount};
    let (upper, work, merged) = (
        spec.scratch.join("upper"),
        spec.scratch.join("work"),
        spec.scratch.join("merged"),
    );
    for d in [&upper, &work, &merged] {
        mkdir(d)?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        spec.rootfs.display(),
        upper.display(),
        work.display()
    );
    let overlay = |extra: &str| {
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(format!("{opts}{extra}").as_str()),
        )
    };
    if overlay("").is_ok() || overlay(",userxattr").is_ok() {
        return Ok(merged);
    }
    bind(&spec.rootfs, &merged, true)?;
    Ok(merged)
}

/// A minimal `/dev`: the usual character devices bound from the host, `fd` links and an `shm` tmpfs.
fn devices(root: &Path) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    let dev = inside(root, "/dev");
    mkdir(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .map_err(step(|| "cannot mount /dev".into()))?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let target = dev.join(name);
        fs_err::write(&target, "").map_err(|e| e.to_string())?;
        bind(&host, &target, false)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        fs_err::os::unix::fs::symlink(to, dev.join(link))
            .map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    let shm = dev.join("shm");
    mkdir(&shm)?;
    mount(
        Some("tmpfs"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(step(|| "cannot mount /dev/shm".into()))?;
    Ok(())
}
