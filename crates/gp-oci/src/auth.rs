//! Registry credentials: `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) `auths` entries and credential
//! helpers (`credHelpers`, `credsStore`, e.g. `docker-credential-ecr-login`), else anonymous. Bearer token
//! exchange is done by the registry client from the `WWW-Authenticate` challenge.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use crate::registry::excerpt;

/// What to present to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

/// A docker config is a few KiB; one past this is refused rather than read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// A credential helper answers in well under a second; one that asks for input or hangs is stopped after this.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// What a helper prints is a small JSON object; only this much of it is read.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("`{path}` is not valid JSON: {message}")]
    Config { path: PathBuf, message: String },
    #[error(
        "`{path}` is not a regular file; the docker config must be one (or unset `DOCKER_CONFIG`)"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "`{path}` is larger than {MAX_CONFIG_BYTES} bytes; a docker config is a few KiB: check the file"
    )]
    TooLarge { path: PathBuf },
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential helper `docker-credential-{helper}` failed for `{registry}`: {message}")]
    Helper {
        helper: String,
        registry: String,
        message: String,
    },
}

fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Credentials for `registry` (a `host[:port]`) from the docker config, or anonymous.
pub fn credentials_for(registry: &str) -> Result<Credentials, AuthError> {
    let Some(path) = config_path() else {
        return Ok(Credentials::Anonymous);
    };
    let Some(text) = read_config(&path)? else {
        return Ok(Credentials::Anonymous);
    };
    let config: Value = serde_json::from_str(&text).map_err(|e| AuthError::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let keys = candidate_keys(registry);
    if let Some(helper) = keys.iter().find_map(|k| config["credHelpers"][k].as_str()) {
        return run_helper(helper, registry);
    }
    for k in &keys {
        if let Some(entry) = config["auths"].get(k)
            && let Some(c) = decode_auth(entry)
        {
            return Ok(c);
        }
    }
    if let Some(store) = config["credsStore"].as_str() {
        return run_helper(store, registry);
    }
    Ok(Credentials::Anonymous)
}

/// The config's text, `None` when there is none; anything but a regular file (a FIFO, a device, a directory) is
/// refused by name before it is opened, and a file past [`MAX_CONFIG_BYTES`] before it is read whole.
fn read_config(path: &Path) -> Result<Option<String>, AuthError> {
    let read = |source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs_err::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read(e)),
    };
    if !meta.is_file() {
        return Err(AuthError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let file = fs_err::File::open(path).map_err(read)?;
    if !file.metadata().map_err(read)?.is_file() {
        return Err(AuthError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(AuthError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(Some(text))
}

/// Docker Hub is stored under its legacy URL; others by host, sometimes with a scheme.
fn candidate_keys(registry: &str) -> Vec<String> {
    if registry == "docker.io" || registry == "index.docker.io" {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ];
    }
    vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

fn decode_auth(entry: &Value) -> Option<Credentials> {
    if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        });
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str()?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials::Basic {
        username: u.into(),
        password: p.into(),
    })
}

fn run_helper(helper: &str, registry: &str) -> Result<Credentials, AuthError> {
    run_helper_program(
        helper,
        &format!("docker-credential-{helper}"),
        registry,
        HELPER_TIMEOUT,
    )
}

/// Runs `program get` with `registry` on its input and reads its answer, stopping it after `timeout`.
fn run_helper_program(
    helper: &str,
    program: &str,
    registry: &str,
    timeout: Duration,
) -> Result<Credentials, AuthError> {
    let err = |message: String| AuthError::Helper {
        helper: helper.into(),
        registry: registry.into(),
        message,
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(format!(
                "cannot run it ({e}); install it or remove it from the docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_HELPER_OUTPUT).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| err(e.to_string()))? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "it gave no answer within {} s and was stopped; make sure it runs without asking for input",
                    timeout.as_secs_f64()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(err(excerpt(String::from_utf8_lossy(&stderr).trim())));
    }
    let v: Value =
        serde_json::from_slice(&stdout).map_err(|e| err(format!("printed invalid JSON: {e}")))?;
    match (v["Username"].as_str(), v["Secret"].as_str()) {
        (Some(u), Some(s)) => Ok(Credentials::Basic {
            username: u.into(),
            password: s.into(),
        }),
        _ => Err(err("printed no `Username`/`Secret`".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_auths_entries() {
        let entry = serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("ci:s3cret")});
        assert_eq!(
            decode_auth(&entry),
            Some(Credentials::Basic {
                username: "ci".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(
            candidate_keys("docker.io")[0],
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn a_config_that_is_not_a_regular_file_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config.json");
        fs_err::create_dir(&dir).unwrap();
        let e = read_config(&dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "`{}` is not a regular file; the docker config must be one (or unset `DOCKER_CONFIG`)",
                dir.display()
            )
        );
        let fifo = tmp.path().join("fifo.json");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            read_config(&fifo),
            Err(AuthError::NotAFile { .. })
        ));
        let big = tmp.path().join("big.json");
        fs_err::write(&big, vec![b' '; 2 * 1024 * 1024]).unwrap();
        assert!(matches!(read_config(&big), Err(AuthError::TooLarge { .. })));
        assert_eq!(read_config(&tmp.path().join("none.json")).unwrap(), None);
    }

    #[test]
    fn a_hanging_helper_is_stopped_and_its_stderr_only_excerpted() {
        let tmp = tempfile::tempdir().unwrap();
        let hang = tmp.path().join("docker-credential-hang");
        fs_err::write(&hang, "#!/bin/sh\nexec sleep 30\n").unwrap();
        let noisy = tmp.path().join("docker-credential-noisy");
        fs_err::write(
            &noisy,
            "#!/bin/sh\nprintf '\\033[31msecret-token-%0500d' 0 >&2\nexit 1\n",
        )
        .unwrap();
        for p in [&hang, &noisy] {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let start = Instant::now();
        let e = run_helper_program(
            "hang",
            hang.to_str().unwrap(),
            "reg:5000",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            e.to_string(),
            "credential helper `docker-credential-hang` failed for `reg:5000`: it gave no answer within 0.3 s and \
             was stopped; make sure it runs without asking for input"
        );
        let e = run_helper_program("noisy", noisy.to_str().unwrap(), "reg:5000", HELPER_TIMEOUT)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("credential helper `docker-credential-noisy` failed for `reg:5000`: \\u{1b}[31msecret-token-000"),
            "{text}"
        );
        assert!(text.ends_with(" bytes in all)"), "{text}");
        assert!(text.len() < 320, "{}", text.len());
    }
}
