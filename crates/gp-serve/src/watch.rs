//! Watching app sources the way kpack does: `git ls-remote` of the branch at an interval (no clone, no working
//! copy), which works for every git URL git itself reaches — `https://`, `ssh://`, `file://` and local paths.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a source could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("cannot run git: {0} (install git)")]
    NoGit(String),
    #[error("`git ls-remote {url}` failed: {message}")]
    Failed { url: String, message: String },
    #[error("`git ls-remote {url}` took longer than {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error(
        "{url} has no branch `{branch}`: push it, or set the contract's `spec.source.git.branch`"
    )]
    NoBranch { url: String, branch: String },
}

/// The commit `branch` of `url` points at now.
pub fn head(url: &str, branch: &str, timeout: Duration) -> Result<String, WatchError> {
    let refname = format!("refs/heads/{branch}");
    let mut child = Command::new("git")
        .args(["ls-remote", "--quiet", "--", url, &refname])
        // Never prompt for credentials: a watcher has no terminal.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| WatchError::NoGit(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WatchError::Timeout {
                    url: redact(url),
                    seconds: timeout.as_secs(),
                });
            }
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !status.success() {
        return Err(WatchError::Failed {
            url: redact(url),
            message: err.trim().lines().last().unwrap_or("").to_owned(),
        });
    }
    parse(&out, &refname).ok_or_else(|| WatchError::NoBranch {
        url: redact(url),
        branch: branch.to_owned(),
    })
}

/// The commit for `refname` in `git ls-remote` output.
fn parse(out: &str, refname: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (sha, name) = l.split_once('\t')?;
        (name.trim() == refname && sha.len() >= 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| sha.to_owned())
    })
}

/// `url` without credentials (`https://user:token@host/...` → `https://host/...`), for messages and logs.
#[must_use]
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}/{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_remote_output_and_redaction() {
        let out = "0123456789abcdef0123456789abcdef01234567\trefs/heads/main\nfedcba9876543210fedcba9876543210fedcba98\trefs/heads/mainline\n";
        assert_eq!(
            parse(out, "refs/heads/main").as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(parse(out, "refs/heads/dev"), None);
        assert_eq!(
            redact("https://bob:tok@git.example/acme/shop.git"),
            "https://git.example/acme/shop.git"
        );
        assert_eq!(redact("/srv/git/shop"), "/srv/git/shop");
    }

    #[test]
    fn a_local_repository_is_watched() {
        let d = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let o = Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@e", "-C"])
                .arg(d.path())
                .args(args)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        };
        git(&["init", "-q", "-b", "main"]);
        fs_err::write(d.path().join("f"), "1").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-qm", "one"]);
        let want = git(&["rev-parse", "HEAD"]);
        let url = d.path().to_str().unwrap();
        assert_eq!(head(url, "main", Duration::from_secs(30)).unwrap(), want);
        let e = head(url, "nope", Duration::from_secs(30))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no branch `nope`") && e.contains("spec.source.git.branch"),
            "{e}"
        );
        let e = head("/does/not/exist", "main", Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, WatchError::Failed { .. }), "{e}");
    }
}
