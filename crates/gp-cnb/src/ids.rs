//! Validated identifiers used across the CNB files: buildpack ids and versions, process types,
//! layer names, stack ids and base-image target ids.
//!
//! Every type parses with `FromStr`/`TryFrom<String>`, deserializes through the same validation,
//! serializes as its string form and displays exactly as it was written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier. `kind` names the identifier ("buildpack id", ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    /// `value` is an escaped, shortened excerpt.
    #[error(
        "invalid {kind} `{value}`: character `{}` is not allowed (allowed: {allowed})",
        crate::excerpt(&ch.to_string())
    )]
    InvalidChar {
        kind: &'static str,
        value: String,
        ch: char,
        allowed: &'static str,
    },
    #[error(
        "invalid {kind} `{value}`: `{value}` is reserved by the lifecycle, choose another name"
    )]
    Reserved { kind: &'static str, value: String },
    #[error("invalid {kind} `{value}`: {reason}")]
    Malformed {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Checks `value` is non-empty, uses only allowed characters and is not reserved.
fn check_chars(
    kind: &'static str,
    value: &str,
    allowed: &'static str,
    is_allowed: impl Fn(char) -> bool,
    reserved: &[&str],
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if let Some(ch) = value.chars().find(|c| !is_allowed(*c)) {
        return Err(IdError::InvalidChar {
            kind,
            value: crate::excerpt(value),
            ch,
            allowed,
        });
    }
    if reserved.contains(&value) {
        return Err(IdError::Reserved {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Declares a string newtype whose every constructor runs `$validate`.
macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $validate:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as written.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                $validate(&value)?;
                Ok(Self(value))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

const ID_CHARS: &str = "letters, digits, `.`, `/` and `-`";

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-')
}

validated_string!(
    /// A buildpack (or image extension) id: letters, digits, `.`, `/` and `-`, and not one of the
    /// names the lifecycle reserves for its own layers (`app`, `config`, `generated`, `sbom`).
    ///
    /// Equality is exact; the spec's "unique ignoring case" rule is a property of a *set* of
    /// buildpacks, checked with [`BuildpackId::eq_ignore_case`].
    BuildpackId,
    validate_buildpack_id
);

fn validate_buildpack_id(v: &str) -> Result<(), IdError> {
    let reserved = ["app", "config", "generated", "sbom"];
    check_chars("buildpack id", v, ID_CHARS, is_id_char, &reserved)
}

impl BuildpackId {
    /// Whether two ids collide under the spec's case-insensitive uniqueness rule.
    #[must_use]
    pub fn eq_ignore_case(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    /// The escaped id that names this buildpack's directories: `<layers>/<id>/`,
    /// `/cnb/buildpacks/<id>/<version>/`, the cache's `<id>/` and the SBOM paths. See
    /// [`buildpack_dir_name`].
    #[must_use]
    pub fn dir_name(&self) -> String {
        buildpack_dir_name(&self.0)
    }
}

/// A buildpack id as the specs escape it for a directory name: every `/` becomes `_`
/// (`heroku/jvm` names `heroku_jvm/`). A valid id holds no `_`, so the escaping is one-to-one.
/// For ids not (yet) parsed into a [`BuildpackId`].
#[must_use]
pub fn buildpack_dir_name(id: &str) -> String {
    id.replace('/', "_")
}

validated_string!(
    /// A stack id (deprecated since Buildpack API 0.10 / Platform API 0.12). `*` means any stack.
    StackId,
    validate_stack_id
);

fn validate_stack_id(v: &str) -> Result<(), IdError> {
    let allowed = "letters, digits, `.`, `/`, `-` and a lone `*`";
    check_chars("stack id", v, allowed, |c| is_id_char(c) || c == '*', &[])?;
    if v.contains('*') && v != "*" {
        return Err(IdError::Malformed {
            kind: "stack id",
            value: v.to_owned(),
            reason: "`*` must stand alone",
        });
    }
    Ok(())
}

impl StackId {
    /// The stack id of Ubuntu 18.04 that tools translate into a target (see the buildpack spec's
    /// deprecations).
    pub const BIONIC: &'static str = "io.buildpacks.stacks.bionic";

    /// Whether this is the wildcard `*` that matches every stack.
    #[must_use]
    pub fn is_any(&self) -> bool {
        self.0 == "*"
    }
}

validated_string!(
    /// The target id of a run image (`io.buildpacks.base.id`): letters, digits, `.`, `/` and `-`.
    TargetId,
    validate_target_id
);

fn validate_target_id(v: &str) -> Result<(), IdError> {
    check_chars("target id", v, ID_CHARS, is_id_char, &[])
}

validated_string!(
    /// A process type (`web`, `worker`, ...): letters, digits, `.`, `_` and `-`.
    ProcessType,
    validate_process_type
);

fn validate_process_type(v: &str) -> Result<(), IdError> {
    let allowed = "letters, digits, `.`, `_` and `-`";
    let is_allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    check_chars("process type", v, allowed, is_allowed, &[])
}

impl ProcessType {
    /// The conventional process type of web servers.
    #[must_use]
    pub fn web() -> Self {
        Self("web".to_owned())
    }
}

validated_string!(
    /// The name of a layer directory under a buildpack's layers dir. The spec reserves `build`,
    /// `launch` and `store` (their `.toml` files are the buildpack's own outputs); a name must also
    /// be a single path component.
    LayerName,
    validate_layer_name
);

fn validate_layer_name(v: &str) -> Result<(), IdError> {
    let allowed = "anything but `/` and NUL";
    let reserved = ["build", "launch", "store"];
    check_chars(
        "layer name",
        v,
        allowed,
        |c| c != '/' && c != '\0',
        &reserved,
    )?;
    if v == "." || v == ".." {
        return Err(IdError::Malformed {
            kind: "layer name",
            value: v.to_owned(),
            reason: "must name a directory inside the layers dir",
        });
    }
    Ok(())
}

/// A buildpack version: `<X>.<Y>.<Z>`, non-negative integers without leading zeros.
///
/// Ordered numerically (`1.10.0` > `1.9.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuildpackVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl BuildpackVersion {
    #[must_use]
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

/// Parses one unsigned decimal number: digits only, no sign, no redundant leading zero.
fn parse_number(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if part.len() > 1 && part.starts_with('0') {
        return None;
    }
    part.parse().ok()
}

impl FromStr for BuildpackVersion {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, IdError> {
        let malformed = || IdError::Malformed {
            kind: "buildpack version",
            value: value.to_owned(),
            reason: "expected `<X>.<Y>.<Z>` with non-negative integers and no leading zeros",
        };
        let mut parts = value.split('.').map(parse_number);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) => {
                Ok(Self::new(major, minor, patch))
            }
            _ => Err(malformed()),
        }
    }
}

impl TryFrom<String> for BuildpackVersion {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}

impl From<BuildpackVersion> for String {
    fn from(value: BuildpackVersion) -> String {
        value.to_string()
    }
}

impl fmt::Display for BuildpackVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildpack_ids() {
        for ok in [
            "heroku/jvm",
            "io.buildpacks.ruby",
            "Abc123./-",
            "app-foo",
            "sbom2",
        ] {
            assert!(ok.parse::<BuildpackId>().is_ok(), "{ok}");
        }
        assert_eq!(
            "heroku_jvm".parse::<BuildpackId>().unwrap_err().to_string(),
            "invalid buildpack id `heroku_jvm`: character `_` is not allowed (allowed: letters, digits, `.`, `/` and `-`)"
        );
        for reserved in ["app", "config", "generated", "sbom"] {
            assert_eq!(
                reserved.parse::<BuildpackId>().unwrap_err(),
                IdError::Reserved {
                    kind: "buildpack id",
                    value: reserved.to_owned()
                }
            );
        }
        assert_eq!(
            "config".parse::<BuildpackId>().unwrap_err().to_string(),
            "invalid buildpack id `config`: `config` is reserved by the lifecycle, choose another name"
        );
        assert_eq!(
            "".parse::<BuildpackId>().unwrap_err().to_string(),
            "buildpack id must not be empty"
        );
        let a: BuildpackId = "Heroku/JVM".parse().unwrap();
        let b: BuildpackId = "heroku/jvm".parse().unwrap();
        assert_ne!(a, b);
        assert!(a.eq_ignore_case(&b));
    }

    #[test]
    fn dir_names_escape_every_slash() {
        let dir = |id: &str| id.parse::<BuildpackId>().unwrap().dir_name();
        assert_eq!(dir("heroku/jvm"), "heroku_jvm");
        assert_eq!(dir("a/b/c"), "a_b_c");
        assert_eq!(dir("io.buildpacks.ruby"), "io.buildpacks.ruby");
        assert_eq!(dir("Abc123./-"), "Abc123._-");
        assert_eq!(
            buildpack_dir_name("paketo-buildpacks/node"),
            "paketo-buildpacks_node"
        );
    }

    #[test]
    fn versions() {
        let v: BuildpackVersion = "1.10.0".parse().unwrap();
        assert_eq!(v, BuildpackVersion::new(1, 10, 0));
        assert!(v > "1.9.12".parse().unwrap());
        assert_eq!(v.to_string(), "1.10.0");
        for bad in [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.-3",
            "1.2.+3",
            "1.2.3-rc1",
            "",
            "v1.2.3",
        ] {
            assert!(bad.parse::<BuildpackVersion>().is_err(), "{bad}");
        }
        assert_eq!(
            "1.02.3"
                .parse::<BuildpackVersion>()
                .unwrap_err()
                .to_string(),
            "invalid buildpack version `1.02.3`: expected `<X>.<Y>.<Z>` with non-negative integers and no leading zeros"
        );
    }

    #[test]
    fn process_types_and_layers() {
        assert!("web".parse::<ProcessType>().is_ok());
        assert!("my_worker-2.x".parse::<ProcessType>().is_ok());
        assert_eq!(
            "web/1".parse::<ProcessType>().unwrap_err().to_string(),
            "invalid process type `web/1`: character `/` is not allowed (allowed: letters, digits, `.`, `_` and `-`)"
        );
        assert!("node_modules".parse::<LayerName>().is_ok());
        for bad in ["launch", "build", "store", "a/b", "..", ""] {
            assert!(bad.parse::<LayerName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn stack_ids() {
        assert!("*".parse::<StackId>().unwrap().is_any());
        assert!("io.buildpacks.stacks.bionic".parse::<StackId>().is_ok());
        assert!("io.*".parse::<StackId>().is_err());
    }

    #[test]
    fn serde_goes_through_validation() {
        #[derive(Debug, Deserialize, Serialize)]
        struct Doc {
            id: BuildpackId,
            version: BuildpackVersion,
        }
        let doc: Doc = toml::from_str("id = \"a/b\"\nversion = \"0.1.0\"\n").unwrap();
        assert_eq!(
            toml::to_string(&doc).unwrap(),
            "id = \"a/b\"\nversion = \"0.1.0\"\n"
        );
        let err = toml::from_str::<Doc>("id = \"app\"\nversion = \"0.1.0\"\n").unwrap_err();
        assert!(err.to_string().contains("`app` is reserved"), "{err}");
    }
}
