//! The binary against registries that misbehave: a server that never answers ends the command within the
//! `GOLDENPATH_REGISTRY_*` timeouts with a message naming the registry, the operation and the variable; a bad
//! value of such a variable is named before anything is sent.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Accepts connections on a loopback port and never answers; stops when dropped.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Ok((s, _)) = listener.accept() {
                    held.push(s);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn inspect(image: &str, env: &[(&str, &str)]) -> (Output, Duration) {
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "inspect", image])
        .env("HOME", home.path())
        .env("DOCKER_CONFIG", home.path().join("docker"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out, start.elapsed())
}

#[test]
fn a_registry_that_never_answers_ends_within_the_timeouts() {
    let silent = Silent::start();
    let image = format!("127.0.0.1:{}/app:v1", silent.port);
    let (out, took) = inspect(
        &image,
        &[
            ("GOLDENPATH_REGISTRY_FIRST_BYTE_TIMEOUT", "1"),
            ("GOLDENPATH_REGISTRY_IDLE_TIMEOUT", "1"),
            ("GOLDENPATH_REGISTRY_ATTEMPTS", "2"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(
        stderr.contains(&format!("authenticate to `{image}` failed: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains("`GOLDENPATH_REGISTRY_FIRST_BYTE_TIMEOUT`"),
        "{stderr}"
    );
    assert!(stderr.contains("(after 2 attempts)"), "{stderr}");
}

#[test]
fn a_bad_timeout_variable_is_named_before_anything_is_sent() {
    let silent = Silent::start();
    let image = format!("127.0.0.1:{}/app:v1", silent.port);
    let (out, took) = inspect(&image, &[("GOLDENPATH_REGISTRY_IDLE_TIMEOUT", "forever")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        stderr.contains(
            "`GOLDENPATH_REGISTRY_IDLE_TIMEOUT` is `forever`, not a positive number of seconds; set it to e.g. \
             `30` or unset it"
        ),
        "{stderr}"
    );
}
