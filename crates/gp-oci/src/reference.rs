//! Image references with transports: `oci:PATH[:TAG]` (an OCI image layout), `docker://REF` and plain `REF`
//! (a registry: `[HOST[:PORT]/]NAME[:TAG][@sha256:...]`, Docker Hub names normalized).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Layout { path: PathBuf, tag: Option<String> },
    Registry(RegistryRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {reason}")]
pub struct RefError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> RefError {
    RefError {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.as_bytes()[0] != b'.'
        && t.as_bytes()[0] != b'-'
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

impl FromStr for ImageRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, RefError> {
        if let Some(rest) = s.strip_prefix("oci:") {
            if rest.is_empty() {
                return Err(err(
                    s,
                    "no layout path after `oci:`; write `oci:PATH[:TAG]`",
                ));
            }
            // The tag is what follows the last `:`, unless that part contains a `/` (then it is all path).
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t)),
                _ => (rest, None),
            };
            if let Some(t) = tag.filter(|t| !valid_tag(t)) {
                return Err(err(
                    s,
                    format!(
                        "tag `{t}` may hold only letters, digits, `_`, `.` and `-` (at most 128)"
                    ),
                ));
            }
            return Ok(ImageRef::Layout {
                path: PathBuf::from(path),
                tag: tag.map(str::to_owned),
            });
        }
        let rest = s.strip_prefix("docker://").unwrap_or(s);
        if rest.contains("://") {
            return Err(err(
                s,
                "unknown transport; use `oci:PATH[:TAG]`, `docker://REF` or a plain registry reference",
            ));
        }
        Ok(ImageRef::Registry(parse_registry(s, rest)?))
    }
}

fn parse_registry(input: &str, s: &str) -> Result<RegistryRef, RefError> {
    if s.is_empty() {
        return Err(err(input, "empty reference"));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (
            n,
            Some(d.parse::<Digest>().map_err(|e| err(input, e.to_string()))?),
        ),
        None => (s, None),
    };
    let (name, tag) = match name_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t.to_owned())),
        _ => (name_tag, None),
    };
    if let Some(t) = tag.as_deref().filter(|t| !valid_tag(t)) {
        return Err(err(
            input,
            format!("tag `{t}` may hold only letters, digits, `_`, `.` and `-` (at most 128)"),
        ));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let registry = if parts.len() > 1
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        parts.remove(0).to_owned()
    } else {
        "docker.io".to_owned()
    };
    if registry == "docker.io" && parts.len() == 1 {
        parts.insert(0, "library");
    }
    if let Some(bad) = parts.iter().find(|c| !valid_component(c)) {
        return Err(err(
            input,
            format!("repository part `{bad}` must be lower-case letters, digits and `.`, `_`, `-`"),
        ));
    }
    Ok(RegistryRef {
        registry,
        repository: parts.join("/"),
        tag: if tag.is_none() && digest.is_none() {
            Some("latest".to_owned())
        } else {
            tag
        },
        digest,
    })
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Layout { path, tag: Some(t) } => write!(f, "oci:{}:{t}", path.display()),
            ImageRef::Layout { path, tag: None } => write!(f, "oci:{}", path.display()),
            ImageRef::Registry(r) => write!(f, "docker://{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        match s.parse::<ImageRef>().unwrap() {
            ImageRef::Registry(r) => r,
            ImageRef::Layout { .. } => panic!("layout"),
        }
    }

    #[test]
    fn parses_transports() {
        assert_eq!(
            "oci:/tmp/x:v1".parse::<ImageRef>().unwrap(),
            ImageRef::Layout {
                path: "/tmp/x".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci:dir".parse::<ImageRef>().unwrap(),
            ImageRef::Layout {
                path: "dir".into(),
                tag: None
            }
        );
        assert_eq!(
            reg("busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            reg("docker://127.0.0.1:5000/a/b:t").to_string(),
            "127.0.0.1:5000/a/b:t"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            reg(&format!("localhost:5000/app@{d}"))
                .digest
                .unwrap()
                .as_str(),
            d
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = "oci:".parse::<ImageRef>().unwrap_err();
        assert!(e.reason.contains("no layout path"));
        let e = "Bad/Name".parse::<ImageRef>().unwrap_err();
        assert!(e.reason.contains("lower-case"), "{e}");
        let e = "x@sha256:123".parse::<ImageRef>().unwrap_err();
        assert!(e.to_string().contains("64"), "{e}");
        assert!("http://x/y".parse::<ImageRef>().is_err());
    }
}
