//! Validated identifiers and small value types of the contract. Each parses with [`FromStr`] and says exactly what
//! is wrong and how to fix it when it does not.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Why a value was refused, and a fix when one can be suggested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    fn new(message: impl Into<String>, hint: Option<String>) -> Self {
        Self {
            message: message.into(),
            hint,
        }
    }
}

macro_rules! string_type {
    ($(#[$m:meta])* $name:ident, $validate:expr, $schema:tt) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                ($validate)(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(s: String) -> Result<Self, Invalid> {
                ($validate)(&s)?;
                Ok(Self(s))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.try_into().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

pub(crate) const DNS_LABEL_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

string_type!(
    /// Contract id: `APP-` and at least four digits (`APP-0042`).
    AppId, validate_app_id,
    {"type": "string", "pattern": "^APP-[0-9]{4,}$", "description": "Contract id: `APP-` and at least four digits, e.g. `APP-0042`. Must match the file name."}
);
string_type!(
    /// Environment name (a DNS-1123 label defined in the platform config).
    EnvName, |s| validate_dns_label(s, "environment name"),
    {"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63, "description": "Target environment, one of those in the platform config (default: dev, test, staging, prod)."}
);
string_type!(
    /// Application name: a DNS-1123 label starting with a letter (it names the Deployment, Service and image).
    AppName, |s| validate_dns_label(s, "application name"),
    {"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63, "description": "Application name: lower-case letters, digits and `-`, starting with a letter (it names the Deployment, Service and image repository)."}
);
string_type!(
    /// Owning team; used as a Kubernetes label value.
    Owner, validate_owner,
    {"type": "string", "pattern": "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", "maxLength": 63, "description": "Owning team (a Backstage group name); used as a Kubernetes label value."}
);
string_type!(
    /// Builder name as the contract says it; the platform config maps it to a kpack `ClusterBuilder`.
    BuilderName, |s| validate_dns_label(s, "builder name"),
    {"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63, "default": "default", "description": "Builder name; the platform config maps it to a kpack ClusterBuilder."}
);
string_type!(
    /// Binding name: names the Secret and the directory under `$SERVICE_BINDING_ROOT`.
    BindingName, |s| validate_dns_label(s, "binding name"),
    {"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63, "description": "Binding name: names the Secret and the directory under $SERVICE_BINDING_ROOT."}
);
string_type!(
    /// Reference to a resource contract, e.g. `RDS-0001`.
    ResourceRef, validate_resource_ref,
    {"type": "string", "pattern": "^[A-Z][A-Z0-9]*-[0-9]{4,}$", "description": "Id of the resource contract that provides this binding, e.g. `RDS-0001`."}
);
string_type!(
    /// Git repository URL: `https://...`, `ssh://...` or scp-like `git@host:org/repo.git`.
    GitUrl, validate_git_url,
    {"type": "string", "pattern": "^(https://[^/@\\s]+/\\S+|ssh://\\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\\S+)$", "description": "Git repository URL: https://host/org/repo, ssh://git@host/org/repo or git@host:org/repo.git."}
);
string_type!(
    /// Git branch name (git's ref-name rules).
    Branch, validate_branch,
    {"type": "string", "pattern": "^(?!-)(?!.*\\.\\.)(?!.*@\\{)(?!.*//)[^\\s~^:?*\\[\\\\]+(?<![./])(?<!\\.lock)$", "default": "main", "description": "Branch to build and deploy."}
);
string_type!(
    /// Environment variable name.
    EnvVarName, validate_env_name,
    {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "Environment variable name."}
);
string_type!(
    /// DNS host name (RFC 1123 subdomain), lower case, no wildcard.
    Hostname, validate_hostname,
    {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$", "maxLength": 253, "description": "Public host name; must be under the environment's ingress domain."}
);
string_type!(
    /// A path relative to the repository root that stays inside it.
    RelativePath, validate_relative_path,
    {"type": "string", "pattern": "^(?!/)(?!.*(^|/)\\.\\.(/|$))[^\\\\\\x00]+$", "description": "Path relative to the repository root; no `..`, not absolute."}
);

fn validate_app_id(s: &str) -> Result<(), Invalid> {
    if let Some(digits) = s.strip_prefix("APP-") {
        if digits.len() >= 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(());
        }
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                format!(
                    "id `{s}` has {} digit(s); at least 4 are required",
                    digits.len()
                ),
                Some(format!("pad with zeros: `APP-{digits:0>4}`")),
            ));
        }
    }
    let upper = s.to_ascii_uppercase();
    let hint = if upper != s && validate_app_id(&upper).is_ok() {
        Some(format!("ids are upper case: `{upper}`"))
    } else {
        Some("use `APP-` followed by at least 4 digits, e.g. `APP-0042`".to_owned())
    };
    Err(Invalid::new(
        format!("id `{s}` is not of the form `APP-NNNN`"),
        hint,
    ))
}

/// DNS-1123 label that also starts with a letter (as Service names and env names must).
fn validate_dns_label(s: &str, what: &str) -> Result<(), Invalid> {
    let problem = if s.is_empty() {
        Some("is empty")
    } else if s.len() > 63 {
        Some("is longer than 63 characters")
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("may only contain lower-case letters, digits and `-`")
    } else if !s.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a letter")
    } else if s.ends_with('-') {
        Some("must not end with `-`")
    } else {
        None
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    let fixed = normalize_label(s);
    let hint = if fixed.is_empty() || fixed == s || validate_dns_label(&fixed, what).is_err() {
        "use lower-case letters, digits and `-`, starting with a letter, at most 63 characters"
            .to_owned()
    } else {
        format!("try `{fixed}`")
    };
    Err(Invalid::new(format!("{what} `{s}` {problem}"), Some(hint)))
}

fn normalize_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let trimmed = out.trim_matches('-');
    trimmed
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

fn validate_owner(s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric();
    if ok {
        return Ok(());
    }
    Err(Invalid::new(
        format!("owner `{s}` is not a valid team name"),
        Some(
            "use the owning team's name: letters, digits, `-`, `_` or `.`, at most 63 characters, e.g. `payments-team`"
                .to_owned(),
        ),
    ))
}

fn validate_resource_ref(s: &str) -> Result<(), Invalid> {
    let ok = s.split_once('-').is_some_and(|(kind, num)| {
        !kind.is_empty()
            && kind.as_bytes()[0].is_ascii_uppercase()
            && kind
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && num.len() >= 4
            && num.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        return Ok(());
    }
    Err(Invalid::new(
        format!("resource reference `{s}` is not a contract id"),
        Some("use the id of the resource contract, e.g. `RDS-0001`".to_owned()),
    ))
}

fn validate_git_url(s: &str) -> Result<(), Invalid> {
    if s.chars().any(char::is_whitespace) {
        return Err(Invalid::new(
            format!("git URL `{s}` contains whitespace"),
            Some("remove the spaces".to_owned()),
        ));
    }
    if let Some(rest) = s.strip_prefix("https://") {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.contains('@') {
            return Err(Invalid::new(
                format!("git URL `{s}` embeds credentials"),
                Some("remove `user:password@`; the platform supplies git credentials".to_owned()),
            ));
        }
        if !host.is_empty() && !path.trim_matches('/').is_empty() {
            return Ok(());
        }
        return Err(Invalid::new(
            format!("git URL `{s}` has no repository path"),
            Some("use `https://HOST/ORG/REPO`".to_owned()),
        ));
    }
    if let Some(rest) = s.strip_prefix("ssh://") {
        if rest
            .split_once('/')
            .is_some_and(|(h, p)| !h.is_empty() && !p.is_empty())
        {
            return Ok(());
        }
    } else if let Some((user_host, path)) = s.split_once(':') {
        let scp_like = user_host
            .split_once('@')
            .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty() && !h.contains('/'))
            && !path.is_empty()
            && !path.starts_with("//");
        if scp_like {
            return Ok(());
        }
    }
    let hint = if let Some(rest) = s.strip_prefix("http://") {
        format!("plain http is not allowed; use `https://{rest}`")
    } else {
        "use `https://HOST/ORG/REPO`, `ssh://git@HOST/ORG/REPO` or `git@HOST:ORG/REPO.git`"
            .to_owned()
    };
    Err(Invalid::new(
        format!("git URL `{s}` is not an https or ssh URL"),
        Some(hint),
    ))
}

fn validate_branch(s: &str) -> Result<(), Invalid> {
    let problem = if s.is_empty() {
        Some("is empty")
    } else if s.starts_with('-') {
        Some("starts with `-`")
    } else if s.contains("..") {
        Some("contains `..`")
    } else if s.contains("@{") {
        Some("contains `@{`")
    } else if s.contains("//") {
        Some("contains `//`")
    } else if s.ends_with('/') || s.ends_with('.') || has_lock_suffix(s) {
        Some("ends with `/`, `.` or `.lock`")
    } else if s.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        Some("contains a space or one of `~ ^ : ? * [ \\`")
    } else if s.starts_with("refs/") {
        Some("is a full ref")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(Invalid::new(
            format!("branch `{s}` {p}, which git does not allow in a branch name"),
            Some(if s.starts_with("refs/heads/") {
                format!(
                    "write the branch name only: `{}`",
                    s.trim_start_matches("refs/heads/")
                )
            } else {
                "use the branch name as `git branch` shows it, e.g. `main`".to_owned()
            }),
        )),
    }
}

/// Git refuses ref names ending in `.lock` (any case on case-insensitive file systems).
fn has_lock_suffix(s: &str) -> bool {
    s.len() >= 5
        && s.is_char_boundary(s.len() - 5)
        && s[s.len() - 5..].eq_ignore_ascii_case(".lock")
}

fn validate_env_name(s: &str) -> Result<(), Invalid> {
    let ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        return Ok(());
    }
    let fixed: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    Err(Invalid::new(
        format!(
            "environment variable name `{s}` may only contain letters, digits and `_`, not starting with a digit"
        ),
        Some(format!("try `{fixed}`")),
    ))
}

fn validate_hostname(s: &str) -> Result<(), Invalid> {
    if s.starts_with("*.") {
        return Err(Invalid::new(
            format!("host `{s}` is a wildcard"),
            Some("name one host per application, e.g. `my-app.dev.example.com`".to_owned()),
        ));
    }
    if s.contains("://") || s.contains('/') {
        let bare = s
            .split("://")
            .last()
            .unwrap_or(s)
            .split('/')
            .next()
            .unwrap_or(s);
        return Err(Invalid::new(
            format!("host `{s}` is a URL, not a host name"),
            Some(format!("write the host name only: `{bare}`")),
        ));
    }
    let labels_ok = s.len() <= 253
        && s.split('.').count() >= 2
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if labels_ok {
        return Ok(());
    }
    let lower = s.to_ascii_lowercase();
    let hint = if lower != s && validate_hostname(&lower).is_ok() {
        format!("host names are lower case: `{lower}`")
    } else {
        "use a DNS name of lower-case labels (letters, digits, `-`) separated by dots".to_owned()
    };
    Err(Invalid::new(
        format!("host `{s}` is not a valid DNS name"),
        Some(hint),
    ))
}

fn validate_relative_path(s: &str) -> Result<(), Invalid> {
    if s.is_empty() {
        return Err(Invalid::new(
            "path is empty",
            Some("use `.` for the repository root".to_owned()),
        ));
    }
    if s.starts_with('/') {
        return Err(Invalid::new(
            format!("path `{s}` is absolute"),
            Some(format!(
                "make it relative to the repository root: `{}`",
                s.trim_start_matches('/')
            )),
        ));
    }
    if s.contains('\\') || s.contains('\0') {
        return Err(Invalid::new(
            format!("path `{s}` contains `\\` or a NUL byte"),
            Some("use `/` as the separator".to_owned()),
        ));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(Invalid::new(
            format!("path `{s}` leaves the repository with `..`"),
            Some("build paths must stay inside the repository".to_owned()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids() {
        assert!("APP-0001".parse::<AppId>().is_ok());
        assert!("APP-123456".parse::<AppId>().is_ok());
        let e = "APP-12".parse::<AppId>().unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("pad with zeros: `APP-0012`"));
        let e = "app-0001".parse::<AppId>().unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("ids are upper case: `APP-0001`"));
    }

    #[test]
    fn labels() {
        assert!("payments-api".parse::<AppName>().is_ok());
        let e = "Payments_API".parse::<AppName>().unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("try `payments-api`"));
        assert!("1app".parse::<AppName>().is_err());
        assert!("a".repeat(64).parse::<AppName>().is_err());
    }

    #[test]
    fn git_urls() {
        for ok in [
            "https://github.com/org/repo",
            "https://github.com/org/repo.git",
            "ssh://git@github.com/org/repo.git",
            "git@github.com:org/repo.git",
        ] {
            assert!(ok.parse::<GitUrl>().is_ok(), "{ok}");
        }
        for bad in [
            "http://github.com/org/repo",
            "github.com/org/repo",
            "https://github.com",
            "/srv/repo",
            "file:///x",
        ] {
            assert!(bad.parse::<GitUrl>().is_err(), "{bad}");
        }
        let e = "https://u:p@github.com/o/r".parse::<GitUrl>().unwrap_err();
        assert!(e.message.contains("credentials"));
    }

    #[test]
    fn branches() {
        for ok in ["main", "release/1.2", "feature-x"] {
            assert!(ok.parse::<Branch>().is_ok(), "{ok}");
        }
        for bad in [
            "feat..x",
            "-x",
            "a b",
            "x.lock",
            "x/",
            "refs/heads/main",
            "a:b",
        ] {
            assert!(bad.parse::<Branch>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_and_paths() {
        assert!("api.dev.example.com".parse::<Hostname>().is_ok());
        assert!("*.dev.example.com".parse::<Hostname>().is_err());
        assert!("https://api.dev.example.com/".parse::<Hostname>().is_err());
        assert!("API.dev.example.com".parse::<Hostname>().is_err());
        assert!("services/api".parse::<RelativePath>().is_ok());
        assert!("../x".parse::<RelativePath>().is_err());
        assert!("a/../../x".parse::<RelativePath>().is_err());
        assert!("/abs".parse::<RelativePath>().is_err());
    }

    #[test]
    fn env_names_and_refs() {
        assert!("BP_NODE_VERSION".parse::<EnvVarName>().is_ok());
        assert_eq!(
            "my-var".parse::<EnvVarName>().unwrap_err().hint.as_deref(),
            Some("try `MY_VAR`")
        );
        assert!("RDS-0001".parse::<ResourceRef>().is_ok());
        assert!("rds-1".parse::<ResourceRef>().is_err());
    }
}
