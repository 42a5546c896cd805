//! Targets: what a base image is (`os`/`arch`/`variant`/one distro) and what a buildpack accepts
//! (`[[targets]]` with any number of distros), and the matching rule between them.
//!
//! Wildcards: a field that is absent, empty or `*` matches any value, on either side. This follows
//! the spec ("any field not provided will be interpreted as matches any") and the reference
//! lifecycle, which also treats `*` as "any".

use serde::{Deserialize, Serialize};

use crate::ids::StackId;

/// An OS distribution (`/etc/os-release` `ID` and `VERSION_ID` on Linux).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distro {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Distro {
    #[must_use]
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            version: Some(version.into()),
        }
    }

    /// Whether both names and both versions match (wildcards allowed on either side).
    #[must_use]
    pub fn matches(&self, other: &Distro) -> bool {
        field_matches(self.name.as_deref(), other.name.as_deref())
            && field_matches(self.version.as_deref(), other.version.as_deref())
    }
}

/// The target of one base image (build or run), as in `analyzed.toml` `[run-image.target]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The run image's target id (`io.buildpacks.base.id`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<Distro>,
}

impl Target {
    /// The target tools assume for the deprecated `io.buildpacks.stacks.bionic` stack.
    #[must_use]
    pub fn bionic() -> Self {
        Self {
            id: None,
            os: Some("linux".to_owned()),
            arch: Some("amd64".to_owned()),
            variant: None,
            distro: Some(Distro::new("ubuntu", "18.04")),
        }
    }
}

/// One `[[targets]]` entry of a `buildpack.toml`: what the buildpack can run on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distro>,
}

impl BuildpackTarget {
    /// A target that matches every base image.
    #[must_use]
    pub fn any() -> Self {
        Self::default()
    }

    /// A target for one OS with every other field a wildcard.
    #[must_use]
    pub fn os(os: impl Into<String>) -> Self {
        Self {
            os: Some(os.into()),
            ..Self::default()
        }
    }

    /// The spec's rule: `os`, `arch` and `variant` match, and if the buildpack lists distros, at
    /// least one of them matches the base image's distro. A base image with no distro information
    /// matches any distro list (the lifecycle cannot tell it apart).
    #[must_use]
    pub fn satisfies(&self, base: &Target) -> bool {
        field_matches(self.os.as_deref(), base.os.as_deref())
            && field_matches(self.arch.as_deref(), base.arch.as_deref())
            && field_matches(self.variant.as_deref(), base.variant.as_deref())
            && (self.distros.is_empty()
                || base
                    .distro
                    .as_ref()
                    .is_none_or(|d| self.distros.iter().any(|want| want.matches(d))))
    }

    /// The target a deprecated `[[stacks]]` entry stands for: `*` is any target, the bionic stack
    /// is Ubuntu 18.04 on linux/amd64, and other stacks say nothing beyond `linux`.
    #[must_use]
    pub fn from_stack(stack: &StackId) -> Self {
        if stack.is_any() {
            return Self::any();
        }
        if stack.as_str() == StackId::BIONIC {
            let bionic = Target::bionic();
            return Self {
                os: bionic.os,
                arch: bionic.arch,
                variant: None,
                distros: bionic.distro.into_iter().collect(),
            };
        }
        Self::os("linux")
    }
}

/// This machine's architecture as OCI image configs and targets name it: `amd64` and `arm64`
/// for Rust's `x86_64` and `aarch64`, Rust's own name for any other.
#[must_use]
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn field_matches(a: Option<&str>, b: Option<&str>) -> bool {
    let wild = |v: Option<&str>| matches!(v, None | Some("" | "*"));
    wild(a) || wild(b) || a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noble_amd64() -> Target {
        Target {
            id: None,
            os: Some("linux".into()),
            arch: Some("amd64".into()),
            variant: None,
            distro: Some(Distro::new("ubuntu", "24.04")),
        }
    }

    #[test]
    fn host_arch_has_the_oci_name() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(host_arch(), "amd64");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(host_arch(), "arm64");
        assert!(!["x86_64", "aarch64", ""].contains(&host_arch()));
    }

    #[test]
    fn wildcards_on_either_side() {
        assert!(BuildpackTarget::any().satisfies(&noble_amd64()));
        assert!(BuildpackTarget::os("linux").satisfies(&noble_amd64()));
        assert!(!BuildpackTarget::os("windows").satisfies(&noble_amd64()));
        let star = BuildpackTarget {
            arch: Some("*".into()),
            ..BuildpackTarget::os("linux")
        };
        assert!(star.satisfies(&noble_amd64()));
        assert!(BuildpackTarget::os("linux").satisfies(&Target::default()));
    }

    #[test]
    fn variant_and_distros() {
        let arm = BuildpackTarget {
            arch: Some("arm64".into()),
            variant: Some("v8".into()),
            ..BuildpackTarget::os("linux")
        };
        assert!(!arm.satisfies(&noble_amd64()));
        let mut base = noble_amd64();
        base.arch = Some("arm64".into());
        assert!(
            arm.satisfies(&base),
            "base without variant matches any variant"
        );
        base.variant = Some("v7".into());
        assert!(!arm.satisfies(&base));

        let jammy_or_noble = BuildpackTarget {
            distros: vec![
                Distro::new("ubuntu", "22.04"),
                Distro::new("ubuntu", "24.04"),
            ],
            ..BuildpackTarget::os("linux")
        };
        assert!(jammy_or_noble.satisfies(&noble_amd64()));
        let any_ubuntu = BuildpackTarget {
            distros: vec![Distro {
                name: Some("ubuntu".into()),
                version: None,
            }],
            ..BuildpackTarget::os("linux")
        };
        assert!(any_ubuntu.satisfies(&noble_amd64()));
        let mut debian = noble_amd64();
        debian.distro = Some(Distro::new("debian", "12"));
        assert!(!jammy_or_noble.satisfies(&debian));
        assert!(!any_ubuntu.satisfies(&debian));
    }

    #[test]
    fn stacks_translate_to_targets() {
        let bionic = BuildpackTarget::from_stack(&StackId::BIONIC.parse().unwrap());
        assert!(bionic.satisfies(&Target::bionic()));
        assert!(!bionic.satisfies(&noble_amd64()));
        assert_eq!(
            BuildpackTarget::from_stack(&"*".parse().unwrap()),
            BuildpackTarget::any()
        );
    }
}
