//! Push webhooks, GitHub's format: the `X-Hub-Signature-256` header (`sha256=<hex>` of HMAC-SHA256 over the raw
//! body with the shared secret) checked in constant time before the body is even parsed, then the push event's
//! repository and branch, matched against the apps' sources. Unsigned or badly signed calls are refused; so are
//! events that are not pushes to a branch.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Why a webhook call is refused. [`WebhookError::status`] is the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no X-Hub-Signature-256 header: configure the webhook's secret on the git host")]
    Unsigned,
    #[error("the X-Hub-Signature-256 header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error("the signature does not match the body with the configured secret")]
    BadSignature,
    #[error("not a push event (`{0}`): only pushes trigger builds")]
    NotPush(String),
    #[error("the push event's body is not valid JSON with `ref`, `after` and `repository`: {0}")]
    Body(String),
}

impl WebhookError {
    /// 401 for anything about the signature, 202 (accepted, nothing to do) for other events, 400 for bad bodies.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::Unsigned | WebhookError::Malformed | WebhookError::BadSignature => 401,
            WebhookError::NotPush(_) => 202,
            WebhookError::Body(_) => 400,
        }
    }
}

/// Checks `signature` (the header's value) against `body` and `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&str>) -> Result<(), WebhookError> {
    let sig = signature.ok_or(WebhookError::Unsigned)?;
    let hex = sig
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::Malformed)?;
    let expected = decode_hex(hex).ok_or(WebhookError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// The `sha256=<hex>` signature of `body` (for tests and for documenting what the git host sends).
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A push to a branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `main` from `refs/heads/main`.
    pub branch: String,
    /// The new head commit.
    pub revision: String,
    /// Every URL the event names the repository by (clone, ssh, html), to match against contracts' git URLs.
    pub urls: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "ref")]
    reference: String,
    after: String,
    repository: Repository,
    #[serde(default)]
    deleted: bool,
}

#[derive(Deserialize)]
#[allow(clippy::struct_field_names)] // the names are GitHub's
struct Repository {
    #[serde(default)]
    clone_url: Option<String>,
    #[serde(default)]
    ssh_url: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    git_url: Option<String>,
}

/// The push in a verified call: `event` is the `X-GitHub-Event` header. A branch deletion or a tag push is
/// `Ok(None)`: nothing to build.
pub fn parse_push(event: Option<&str>, body: &[u8]) -> Result<Option<Push>, WebhookError> {
    let event = event.unwrap_or("push");
    if event == "ping" {
        return Ok(None);
    }
    if event != "push" {
        return Err(WebhookError::NotPush(event.to_owned()));
    }
    let p: Payload = serde_json::from_slice(body).map_err(|e| WebhookError::Body(e.to_string()))?;
    let Some(branch) = p.reference.strip_prefix("refs/heads/") else {
        return Ok(None);
    };
    if p.deleted || p.after.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    let r = p.repository;
    Ok(Some(Push {
        branch: branch.to_owned(),
        revision: p.after,
        urls: [r.clone_url, r.ssh_url, r.html_url, r.git_url]
            .into_iter()
            .flatten()
            .collect(),
    }))
}

/// Whether two git URLs name the same repository: scheme, credentials, a trailing `.git` or `/` and case of the
/// host do not matter (`https://github.com/o/r.git` = `git@github.com:o/r` = `https://user@GitHub.com/o/r/`).
#[must_use]
pub fn same_repository(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(url: &str) -> String {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        // scp-like `git@host:owner/repo`
        None => match url.split_once(':') {
            Some((host, path)) if !host.contains('/') => format!("{host}/{path}"),
            _ => url.to_owned(),
        },
    };
    let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    format!("{}/{}", host.to_ascii_lowercase(), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"clone_url":"https://github.com/acme/shop.git","ssh_url":"git@github.com:acme/shop.git","html_url":"https://github.com/acme/shop"}}"#;

    #[test]
    fn signatures_are_checked_before_anything_else() {
        let good = sign(b"s3cret", BODY);
        assert!(verify(b"s3cret", BODY, Some(&good)).is_ok());
        assert_eq!(
            verify(b"other", BODY, Some(&good)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify(b"s3cret", BODY, None), Err(WebhookError::Unsigned));
        assert_eq!(
            verify(b"s3cret", BODY, Some("sha1=abc")),
            Err(WebhookError::Malformed)
        );
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(b"s3cret", &tampered, Some(&good)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(WebhookError::BadSignature.status(), 401);
    }

    #[test]
    fn pushes_to_branches_are_read_and_others_ignored() {
        let p = parse_push(Some("push"), BODY).unwrap().unwrap();
        assert_eq!(p.branch, "main");
        assert!(
            p.urls
                .iter()
                .any(|u| same_repository(u, "https://GitHub.com/acme/shop/"))
        );
        assert!(same_repository(
            "git@github.com:acme/shop.git",
            "https://tok@github.com/acme/shop"
        ));
        assert!(!same_repository(
            "https://github.com/acme/shop",
            "https://github.com/acme/shop2"
        ));
        let tag = br#"{"ref":"refs/tags/v1","after":"01","repository":{}}"#;
        assert_eq!(parse_push(None, tag).unwrap(), None);
        assert_eq!(parse_push(Some("ping"), b"{}").unwrap(), None);
        assert_eq!(parse_push(Some("issues"), b"{}").unwrap_err().status(), 202);
        assert_eq!(parse_push(None, b"[").unwrap_err().status(), 400);
    }
}
