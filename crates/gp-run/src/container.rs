//! One app container under runc: created from a bundle, started, its output in a log file, its network namespace
//! held open (the proxy connects through it), stopped with SIGTERM then SIGKILL, deleted. Dropping a running
//! container stops it.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::RunError;
use crate::bundle::Bundle;

/// A container started by [`Container::start`].
#[derive(Debug)]
pub struct Container {
    id: String,
    state_root: PathBuf,
    pid: u32,
    netns: File,
    log: PathBuf,
    stopped: bool,
}

/// Runs `runc --root <state_root> <args>`; its stdout, or an error with its stderr.
fn runc(state_root: &Path, args: &[&str]) -> Result<String, RunError> {
    let out = Command::new("runc")
        .arg("--root")
        .arg(state_root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| RunError::NoRunc { source })?;
    if !out.status.success() {
        return Err(RunError::Runc {
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Container {
    /// `runc create` then `runc start`: the app runs, writing to `log` (created or appended to).
    pub fn start(
        bundle: &Bundle,
        id: &str,
        state_root: &Path,
        log: &Path,
    ) -> Result<Self, RunError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| RunError::Io {
                action,
                path,
                source,
            }
        };
        fs_err::create_dir_all(state_root).map_err(io("create", state_root))?;
        let out = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io("open", log))?;
        let err = out.try_clone().map_err(io("open", log))?;
        let pid_file = bundle.dir.join("container.pid");
        let created = Command::new("runc")
            .arg("--root")
            .arg(state_root)
            .args(["create", "--bundle"])
            .arg(&bundle.dir)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.into_parts().0))
            .stderr(Stdio::from(err.into_parts().0))
            .status()
            .map_err(|source| RunError::NoRunc { source })?;
        if !created.success() {
            return Err(RunError::Runc {
                args: format!("create {id}"),
                status: created.to_string(),
                stderr: tail(log, 20),
            });
        }
        let pid: u32 = fs_err::read_to_string(&pid_file)
            .map_err(io("read", &pid_file))?
            .trim()
            .parse()
            .map_err(|_| RunError::Runc {
                args: format!("create {id}"),
                status: "no pid".into(),
                stderr: format!("`{}` holds no process id", pid_file.display()),
            })?;
        let ns_path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let netns = fs_err::File::open(&ns_path)
            .map_err(io("open", &ns_path))?
            .into_parts()
            .0;
        let mut container = Self {
            id: id.to_owned(),
            state_root: state_root.to_path_buf(),
            pid,
            netns,
            log: log.to_path_buf(),
            stopped: false,
        };
        if let Err(e) = runc(state_root, &["start", id]) {
            container.stop(Duration::ZERO);
            return Err(e);
        }
        Ok(container)
    }

    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's first process, as this machine sees it.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The app's network namespace (open for as long as this container is).
    #[must_use]
    pub fn netns(&self) -> std::os::fd::BorrowedFd<'_> {
        self.netns.as_fd()
    }

    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the app's output.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Whether runc says the container is running.
    #[must_use]
    pub fn running(&self) -> bool {
        !self.stopped
            && runc(&self.state_root, &["state", &self.id])
                .ok()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
                .is_some_and(|v| v["status"] == "running")
    }

    /// SIGTERM, up to `grace` for the app to exit, SIGKILL, then the container deleted. Idempotent.
    pub fn stop(&mut self, grace: Duration) {
        if self.stopped {
            return;
        }
        let _ = runc(&self.state_root, &["kill", &self.id, "TERM"]);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && self.running() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = runc(&self.state_root, &["kill", &self.id, "KILL"]);
        let _ = runc(&self.state_root, &["delete", "--force", &self.id]);
        self.stopped = true;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Deletes (with SIGKILL) every container runc still knows under `state_root`: what a process that was killed
/// before it could stop its containers left running. Returns their ids.
#[must_use]
pub fn remove_leftovers(state_root: &Path) -> Vec<String> {
    let Ok(list) = runc(state_root, &["list", "--format", "json"]) else {
        return Vec::new();
    };
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&list)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    for id in &ids {
        let _ = runc(state_root, &["delete", "--force", id]);
    }
    ids
}

/// The last `lines` lines of `path` (empty when unreadable).
fn tail(path: &Path, lines: usize) -> String {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
