//! `goldenpath-serve.toml`: every setting of `goldenpath serve`, each with its default. Unknown keys are refused
//! (a typo never silently falls back to a default), and errors name the file, the line and the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How apps are deployed once built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    /// Each app's latest image runs here under runc, behind a loopback proxy, replaced without downtime.
    #[default]
    Local,
    /// New digests are pinned into the GitOps tree and committed, for Argo CD.
    Gitops,
}

/// The settings, as read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The contracts repository: a directory (with `goldenpath.toml`), relative to this file, or a git URL
    /// (`https://`, `ssh://`, `file://`, `git@host:path`) fetched into the state directory at every check.
    pub contracts: PathBuf,
    /// With a git URL for `contracts`: its branch.
    #[serde(default = "default_branch")]
    pub contracts_branch: String,
    /// Only contracts of this environment are served (the local deploy runs one environment).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Where the HTTP API, webhook, metrics and status page listen. Loopback by default.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The state directory (database, images, logs, checkouts), relative to this file.
    #[serde(default = "default_state")]
    pub state: PathBuf,
    /// The builder: `default` (the embedded default builder) or a reference.
    #[serde(default = "default_builder")]
    pub builder: String,
    /// The run image to keep apps on; empty: the builder's.
    #[serde(default)]
    pub run_image: String,
    #[serde(default)]
    pub deploy: Deploy,
    /// With `deploy = "gitops"`: the GitOps repository (a git working copy) new digests are committed to.
    #[serde(default)]
    pub gitops: Option<PathBuf>,
    /// Seconds between `git ls-remote` checks of each app's branch.
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    /// Seconds between checks of the run image's and builder's digests.
    #[serde(default = "default_poll")]
    pub stack_poll_seconds: u64,
    /// Builds at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The first local port apps get (in contract order); an app keeps its port across restarts.
    #[serde(default = "default_port_base")]
    pub port_base: u16,
    /// A file holding the webhook secret (GitHub's HMAC-SHA256); without one the webhook is off.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// A file holding the bearer token for API calls that change state; without one they are refused.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// Registry hosts reached over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Where sources are fetched from, as git's `url.<base>.insteadOf` does: a contract's git URL that begins
    /// with a key is fetched from the value plus the rest (a mirror, or a local path:
    /// `"https://github.com/acme/" = "/srv/git/"`). Webhooks still match the contract's URL.
    #[serde(default)]
    pub git_rewrite: std::collections::BTreeMap<String, String>,
    /// Requests per second and burst per registry host, the fleet's `RPS[/BURST]`.
    #[serde(default = "default_rate")]
    pub registry_rate: String,
}

fn default_branch() -> String {
    "main".into()
}
fn default_environment() -> String {
    "dev".into()
}
fn default_listen() -> String {
    "127.0.0.1:8600".into()
}
fn default_state() -> PathBuf {
    PathBuf::from(".goldenpath-serve")
}
fn default_builder() -> String {
    "default".into()
}
fn default_poll() -> u64 {
    60
}
fn default_concurrency() -> usize {
    1
}
fn default_port_base() -> u16 {
    18000
}
fn default_rate() -> String {
    "50/50".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads `path`; relative paths in it are made relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut c: Config = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            invalid(format!("{at}{}", e.message()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let remote = c.contracts_url().is_some();
        let paths = [&mut c.state]
            .into_iter()
            .chain((!remote).then_some(&mut c.contracts))
            .chain(
                [
                    &mut c.gitops,
                    &mut c.webhook_secret_file,
                    &mut c.api_token_file,
                ]
                .into_iter()
                .flatten(),
            );
        for p in paths {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if c.concurrency == 0 {
            return Err(invalid(
                "`concurrency` is 0: at least one build must run (e.g. `concurrency = 1`)".into(),
            ));
        }
        if c.poll_seconds == 0 || c.stack_poll_seconds == 0 {
            return Err(invalid(
                "`poll_seconds` and `stack_poll_seconds` must be at least 1".into(),
            ));
        }
        if c.deploy == Deploy::Gitops && c.gitops.is_none() {
            return Err(invalid(
                "`deploy = \"gitops\"` needs `gitops = \"<path of the GitOps working copy>\"`"
                    .into(),
            ));
        }
        Ok(c)
    }

    /// The contracts repository's git URL, when `contracts` is one.
    #[must_use]
    pub fn contracts_url(&self) -> Option<String> {
        let s = self.contracts.to_str()?;
        (s.contains("://") || (s.starts_with("git@") && s.contains(':'))).then(|| s.to_owned())
    }

    /// The URL `url` is fetched from: the longest matching `git_rewrite` prefix replaced.
    #[must_use]
    pub fn fetch_url(&self, url: &str) -> String {
        self.git_rewrite
            .iter()
            .filter(|(from, _)| url.starts_with(from.as_str()))
            .max_by_key(|(from, _)| from.len())
            .map_or_else(
                || url.to_owned(),
                |(from, to)| format!("{to}{}", &url[from.len()..]),
            )
    }

    #[must_use]
    pub fn poll(&self) -> Duration {
        Duration::from_secs(self.poll_seconds)
    }

    #[must_use]
    pub fn stack_poll(&self) -> Duration {
        Duration::from_secs(self.stack_poll_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse(
            "contracts = \"contracts\"\n",
            Path::new("/srv/gp/serve.toml"),
        )
        .unwrap();
        assert_eq!(c.contracts, Path::new("/srv/gp/contracts"));
        assert_eq!(c.state, Path::new("/srv/gp/.goldenpath-serve"));
        assert_eq!(c.contracts_url(), None);
        let c = Config::parse(
            "contracts = \"https://github.com/acme/contracts\"\n",
            Path::new("/srv/gp/serve.toml"),
        )
        .unwrap();
        assert_eq!(
            c.contracts_url().as_deref(),
            Some("https://github.com/acme/contracts")
        );
        assert_eq!(c.contracts_branch, "main");
        let c = Config::parse(
            "contracts = \"c\"\nwebhook_secret_file = \"secret\"\napi_token_file = \"/etc/token\"\n",
            Path::new("/srv/gp/serve.toml"),
        )
        .unwrap();
        assert_eq!(
            (c.webhook_secret_file.unwrap(), c.api_token_file.unwrap()),
            ("/srv/gp/secret".into(), "/etc/token".into())
        );
        assert_eq!(
            (c.listen.as_str(), c.deploy, c.poll_seconds),
            ("127.0.0.1:8600", Deploy::Local, 60)
        );
    }

    #[test]
    fn typos_and_bad_values_name_the_line() {
        let e = Config::parse("contracts = \"c\"\npoll_secnds = 5\n", Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.toml: line 2:") && e.contains("poll_secnds"),
            "{e}"
        );
        let e = Config::parse("contracts = \"c\"\nconcurrency = 0\n", Path::new("s.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("concurrency = 1"), "{e}");
        let e = Config::parse(
            "contracts = \"c\"\ndeploy = \"gitops\"\n",
            Path::new("s.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gitops = "), "{e}");
    }
}
