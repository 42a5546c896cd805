//! Why an app needs work. The names are kpack's (`Build.metadata.annotations["image.kpack.io/reason"]`), so that
//! a platform team reads the same words at both scales.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One reason for a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A new commit on the app's branch.
    Commit,
    /// The app's contract changed (new, or a setting that affects the build).
    Config,
    /// Someone asked (API or status page).
    Trigger,
    /// The run image has a new digest.
    Stack,
    /// A buildpack in the builder changed.
    Buildpack,
    /// The builder's lifecycle changed.
    Lifecycle,
}

/// Which lane a reason's work waits in: developers are waiting for theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Developer,
    Platform,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Commit,
        Reason::Config,
        Reason::Trigger,
        Reason::Stack,
        Reason::Buildpack,
        Reason::Lifecycle,
    ];

    #[must_use]
    pub fn lane(self) -> Lane {
        match self {
            Reason::Commit | Reason::Config | Reason::Trigger => Lane::Developer,
            Reason::Stack | Reason::Buildpack | Reason::Lifecycle => Lane::Platform,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Commit => "COMMIT",
            Reason::Config => "CONFIG",
            Reason::Trigger => "TRIGGER",
            Reason::Stack => "STACK",
            Reason::Buildpack => "BUILDPACK",
            Reason::Lifecycle => "LIFECYCLE",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason name that is not one of the six.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a build reason (COMMIT, CONFIG, TRIGGER, STACK, BUILDPACK or LIFECYCLE)")]
pub struct UnknownReason(pub String);

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// What the work for a set of reasons is: a rebase only when the run image is the only thing that changed (as
/// kpack decides); anything else rebuilds from source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    Rebase,
    Build,
}

/// The work `reasons` call for.
#[must_use]
pub fn work_for(reasons: &BTreeSet<Reason>) -> Work {
    if !reasons.is_empty() && reasons.iter().all(|r| *r == Reason::Stack) {
        Work::Rebase
    } else {
        Work::Build
    }
}

/// `COMMIT,STACK`: the reasons in their fixed order, as stored and shown.
#[must_use]
pub fn join(reasons: &BTreeSet<Reason>) -> String {
    reasons
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The reasons of a stored `COMMIT,STACK` list.
pub fn split(text: &str) -> Result<BTreeSet<Reason>, UnknownReason> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_alone_is_a_rebase_and_anything_more_a_build() {
        let set = |r: &[Reason]| r.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(work_for(&set(&[Reason::Stack])), Work::Rebase);
        assert_eq!(
            work_for(&set(&[Reason::Stack, Reason::Commit])),
            Work::Build
        );
        assert_eq!(work_for(&set(&[Reason::Buildpack])), Work::Build);
        assert_eq!(work_for(&set(&[])), Work::Build);
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        let all: BTreeSet<Reason> = Reason::ALL.into_iter().collect();
        assert_eq!(split(&join(&all)).unwrap(), all);
        assert_eq!("stack".parse::<Reason>().unwrap(), Reason::Stack);
        let e = split("COMMIT,NIGHTLY").unwrap_err().to_string();
        assert!(e.contains("`NIGHTLY`") && e.contains("LIFECYCLE"), "{e}");
        assert_eq!(Reason::Trigger.lane(), Lane::Developer);
        assert_eq!(Reason::Lifecycle.lane(), Lane::Platform);
    }
}
