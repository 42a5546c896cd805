//! Registry credentials: `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) `auths` entries and credential
//! helpers (`credHelpers`, `credsStore`, e.g. `docker-credential-ecr-login`), else anonymous. Bearer token
//! exchange is done by the registry client from the `WWW-Authenticate` challenge.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;

/// What to present to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("`{path}` is not valid JSON: {message}")]
    Config { path: PathBuf, message: String },
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

/// Credentials for `registry` (a host[:port]) from the docker config, or anonymous.
pub fn credentials_for(registry: &str) -> Result<Credentials, AuthError> {
    let Some(path) = config_path().filter(|p| p.is_file()) else {
        return Ok(Credentials::Anonymous);
    };
    let text = std::fs::read_to_string(&path).unwrap_or_default();
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
    let err = |message: String| AuthError::Helper {
        helper: helper.into(),
        registry: registry.into(),
        message,
    };
    let mut child = Command::new(format!("docker-credential-{helper}"))
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
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| err(format!("printed invalid JSON: {e}")))?;
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
}
