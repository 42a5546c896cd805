//! The builder side of the watch: what a build was made with, what the builder holds now, and the reasons a
//! difference gives (kpack's BUILDPACK and LIFECYCLE). Pure: the engine reads the builder, this compares.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::reason::Reason;

/// What an app's last build was made with (kept with the app; a rebase keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltWith {
    /// The builder image's digest.
    pub builder: String,
    /// The builder's lifecycle version, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    /// The buildpacks that ran (the group detect chose): id → version.
    pub buildpacks: BTreeMap<String, String>,
}

/// What the builder reference holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderNow {
    pub digest: String,
    pub lifecycle: Option<String>,
    /// Every buildpack it contains: id → its versions (a builder may hold several of one id).
    pub buildpacks: BTreeMap<String, BTreeSet<String>>,
}

/// The reasons a build made with `was` has to be built again on the builder `now`: LIFECYCLE when the lifecycle
/// version changed, BUILDPACK when a buildpack the build used is gone, at another version, or beside another
/// version it may now be chosen over. A new builder digest alone (a buildpack the app does not use, a new build
/// image) is no reason: what built the app is the same.
#[must_use]
pub fn reasons(was: &BuiltWith, now: &BuilderNow) -> BTreeSet<Reason> {
    let mut out = BTreeSet::new();
    if was.builder == now.digest {
        return out;
    }
    if was.lifecycle != now.lifecycle {
        out.insert(Reason::Lifecycle);
    }
    let changed = was.buildpacks.iter().any(|(id, version)| {
        now.buildpacks
            .get(id)
            .is_none_or(|versions| versions.len() != 1 || !versions.contains(version))
    });
    if changed {
        out.insert(Reason::Buildpack);
    }
    out
}

/// `python 1.2.0 → 1.3.0, lifecycle 0.20 → 0.21`: what changed, for the build log.
#[must_use]
pub fn changes(was: &BuiltWith, now: &BuilderNow) -> String {
    let mut parts = Vec::new();
    for (id, version) in &was.buildpacks {
        match now.buildpacks.get(id) {
            None => parts.push(format!("{id} {version} removed")),
            Some(v) if v.len() == 1 && v.contains(version) => {}
            Some(v) => parts.push(format!(
                "{id} {version} → {}",
                v.iter().cloned().collect::<Vec<_>>().join(" or ")
            )),
        }
    }
    if was.lifecycle != now.lifecycle {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unnamed".into());
        parts.push(format!(
            "lifecycle {} → {}",
            show(&was.lifecycle),
            show(&now.lifecycle)
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn was() -> BuiltWith {
        BuiltWith {
            builder: "sha256:aaa".into(),
            lifecycle: Some("0.20.0".into()),
            buildpacks: [("gp/python".to_owned(), "1.2.0".to_owned())].into(),
        }
    }

    fn now(digest: &str, lifecycle: &str, bps: &[(&str, &str)]) -> BuilderNow {
        let mut buildpacks: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, v) in bps {
            buildpacks
                .entry((*id).to_owned())
                .or_default()
                .insert((*v).to_owned());
        }
        BuilderNow {
            digest: digest.into(),
            lifecycle: Some(lifecycle.into()),
            buildpacks,
        }
    }

    #[test]
    fn the_same_builder_is_no_reason() {
        let n = now("sha256:aaa", "0.21.0", &[]);
        assert!(reasons(&was(), &n).is_empty());
    }

    #[test]
    fn a_new_digest_with_the_same_buildpacks_and_lifecycle_is_no_reason() {
        let n = now(
            "sha256:bbb",
            "0.20.0",
            &[("gp/python", "1.2.0"), ("gp/node", "2.0.0")],
        );
        assert!(reasons(&was(), &n).is_empty());
    }

    #[test]
    fn a_used_buildpack_at_another_version_is_buildpack() {
        let n = now("sha256:bbb", "0.20.0", &[("gp/python", "1.3.0")]);
        assert_eq!(reasons(&was(), &n), [Reason::Buildpack].into());
        assert_eq!(changes(&was(), &n), "gp/python 1.2.0 → 1.3.0");
        let beside = now(
            "sha256:bbb",
            "0.20.0",
            &[("gp/python", "1.2.0"), ("gp/python", "1.3.0")],
        );
        assert_eq!(reasons(&was(), &beside), [Reason::Buildpack].into());
        let gone = now("sha256:bbb", "0.20.0", &[]);
        assert_eq!(changes(&was(), &gone), "gp/python 1.2.0 removed");
    }

    #[test]
    fn a_new_lifecycle_is_lifecycle_and_both_are_both() {
        let n = now("sha256:bbb", "0.21.0", &[("gp/python", "1.2.0")]);
        assert_eq!(reasons(&was(), &n), [Reason::Lifecycle].into());
        let both = now("sha256:bbb", "0.21.0", &[("gp/python", "1.3.0")]);
        assert_eq!(
            reasons(&was(), &both),
            [Reason::Buildpack, Reason::Lifecycle].into()
        );
        assert_eq!(
            changes(&was(), &both),
            "gp/python 1.2.0 → 1.3.0, lifecycle 0.20.0 → 0.21.0"
        );
    }
}
