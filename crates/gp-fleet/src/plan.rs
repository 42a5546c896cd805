//! The decision per image, by the CNB rebase rules (Platform API, `rebaser`): rebase only where the new run image
//! is ABI-compatible by its own and the image's word (`io.buildpacks.rebasable`), has the same os/arch/variant and
//! distro, and is the image's run image or one of its mirrors (and, for images of older platforms, has the stack
//! id and the mixins); rebuild where the builder's buildpacks or lifecycle changed, or a rebase is not safe; skip
//! what cannot be patched at all. Pure: facts in, decision out.

use std::collections::BTreeSet;

use crate::facts::{BaseFacts, Distro, ImageFacts, Platform};

/// What a campaign does to an image.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Rebase,
    Rebuild,
    UpToDate,
    #[default]
    Skip,
}

impl Action {
    /// Something to do.
    #[must_use]
    pub fn is_work(self) -> bool {
        matches!(self, Self::Rebase | Self::Rebuild)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rebase => "rebase",
            Self::Rebuild => "rebuild",
            Self::UpToDate => "up-to-date",
            Self::Skip => "skip",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why, in the words the plan prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The image could not be read; `transient` when the registry failed as an overloaded one does (the image
    /// is tried again by a rerun).
    Unreadable {
        error: String,
        transient: bool,
    },
    /// A multi-platform index: patching one platform's manifest would drop the others from the tag.
    Index,
    /// No CNB lifecycle metadata (or no run image in it).
    NotCnb {
        detail: String,
    },
    OtherPlatform {
        image: String,
        run_image: String,
    },
    OnRunImage {
        top_layer: String,
    },
    NewRunImage {
        old_top: String,
        new_top: String,
    },
    BuildpackChanged {
        id: String,
        old: String,
        new: String,
    },
    BuildpackGone {
        id: String,
        version: String,
    },
    LifecycleChanged {
        old: String,
        new: String,
    },
    ImageNotRebasable,
    RunImageNotRebasable,
    OtherDistro {
        image: String,
        run_image: String,
    },
    NotAMirror {
        run_image: String,
        allowed: Vec<String>,
    },
    StackId {
        image: String,
        run_image: String,
    },
    Mixins {
        missing: Vec<String>,
    },
    TopLayerMissing {
        top_layer: String,
    },
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    // Twelve characters (labels are the image's word: not necessarily hex, not necessarily ASCII).
    let end = hex.char_indices().nth(12).map_or(hex.len(), |(i, _)| i);
    &hex[..end]
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable { error, .. } => write!(f, "cannot be read: {error}"),
            Self::Index => f.write_str(
                "a multi-platform image index: not patched (rebasing one platform would drop the others from the \
                 tag); rebuild it for every platform",
            ),
            Self::NotCnb { detail } => write!(f, "not a CNB image ({detail}); patch it the way it was built"),
            Self::OtherPlatform { image, run_image } => write!(
                f,
                "the image is {image}, the run image {run_image}: refused; name a run image for {image}"
            ),
            Self::OnRunImage { top_layer } => write!(f, "already on the run image (top layer {})", short(top_layer)),
            Self::NewRunImage { old_top, new_top } => write!(
                f,
                "run image top layer {} -> {}; the run image is rebasable and matches",
                short(old_top),
                short(new_top)
            ),
            Self::BuildpackChanged { id, old, new } => {
                write!(f, "buildpack {id} {old} -> {new} in the builder")
            }
            Self::BuildpackGone { id, version } => {
                write!(f, "buildpack {id} {version} is no longer in the builder")
            }
            Self::LifecycleChanged { old, new } => write!(f, "lifecycle {old} -> {new} in the builder"),
            Self::ImageNotRebasable => {
                f.write_str("the image is labelled `io.buildpacks.rebasable=false` (its run image was extended)")
            }
            Self::RunImageNotRebasable => {
                f.write_str("the new run image is labelled `io.buildpacks.rebasable=false`")
            }
            Self::OtherDistro { image, run_image } => {
                write!(f, "the image's run image is {image}, the new one {run_image}: another distro")
            }
            Self::NotAMirror { run_image, allowed } => write!(
                f,
                "{run_image} is not the image's run image or a mirror of it ({})",
                if allowed.is_empty() { "none recorded".to_owned() } else { allowed.join(", ") }
            ),
            Self::StackId { image, run_image } => {
                write!(f, "stack id {image} -> {run_image}")
            }
            Self::Mixins { missing } => write!(f, "the new run image lacks mixins {}", missing.join(", ")),
            Self::TopLayerMissing { top_layer } => write!(
                f,
                "the recorded run image top layer {} is not among the image's layers",
                short(top_layer)
            ),
        }
    }
}

/// The decision for one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
}

impl Decision {
    fn new(action: Action, reason: Reason) -> Self {
        Self { action, reason }
    }
}

/// `registry/repository` of a reference, without tag or digest, normalised as references are parsed
/// (`ubuntu` is `docker.io/library/ubuntu`); the text itself when it does not parse.
fn repository(reference: &str) -> String {
    match reference.parse::<gp_oci::reference::ImageRef>() {
        Ok(gp_oci::reference::ImageRef::Registry(r)) => format!("{}/{}", r.registry, r.repository),
        _ => reference.to_owned(),
    }
}

fn platform_matches(image: &Platform, run: &Platform) -> bool {
    image == run
}

fn distro_text(d: Option<&Distro>) -> String {
    d.map_or_else(|| "(no distro label)".to_owned(), ToString::to_string)
}

/// Decides what to do with `image` given the new run image and, when asked, the builder it would be rebuilt with.
#[must_use]
pub fn decide(image: &ImageFacts, run: &BaseFacts, builder: Option<&BaseFacts>) -> Decision {
    use Action::{Rebase, Rebuild, Skip, UpToDate};
    if image.index {
        return Decision::new(Skip, Reason::Index);
    }
    let meta = match &image.lifecycle {
        Err(e) => return Decision::new(Skip, Reason::NotCnb { detail: e.clone() }),
        Ok(None) => {
            return Decision::new(
                Skip,
                Reason::NotCnb {
                    detail: "no `io.buildpacks.lifecycle.metadata` label".into(),
                },
            );
        }
        Ok(Some(m)) => m,
    };
    let Some(recorded) = meta.run_image().filter(|r| !r.top_layer.is_empty()) else {
        return Decision::new(
            Skip,
            Reason::NotCnb {
                detail: "its lifecycle metadata records no run image".into(),
            },
        );
    };
    if !platform_matches(&image.platform, &run.platform) {
        return Decision::new(
            Skip,
            Reason::OtherPlatform {
                image: image.platform.to_string(),
                run_image: run.platform.to_string(),
            },
        );
    }
    if let Some(reason) = builder.and_then(|b| builder_change(image, b)) {
        return Decision::new(Rebuild, reason);
    }
    let Some(cut) = image.diff_ids.iter().position(|d| *d == recorded.top_layer) else {
        return Decision::new(
            Rebuild,
            Reason::TopLayerMissing {
                top_layer: recorded.top_layer.clone(),
            },
        );
    };
    let new_top = run.top_layer().unwrap_or_default();
    if image.diff_ids[..=cut] == run.diff_ids[..] {
        return Decision::new(
            UpToDate,
            Reason::OnRunImage {
                top_layer: new_top.to_owned(),
            },
        );
    }
    if let Some(reason) = rebase_blocker(image, recorded, run) {
        return Decision::new(Rebuild, reason);
    }
    Decision::new(
        Rebase,
        Reason::NewRunImage {
            old_top: recorded.top_layer.clone(),
            new_top: new_top.to_owned(),
        },
    )
}

/// Why a rebase onto `run` would not be safe, if it would not.
fn rebase_blocker(
    image: &ImageFacts,
    recorded: &gp_cnb::RunImageRecord,
    run: &BaseFacts,
) -> Option<Reason> {
    if image.labels.rebasable == Some(false) {
        return Some(Reason::ImageNotRebasable);
    }
    if run.labels.rebasable == Some(false) {
        return Some(Reason::RunImageNotRebasable);
    }
    if image.distro != run.distro {
        return Some(Reason::OtherDistro {
            image: distro_text(image.distro.as_ref()),
            run_image: distro_text(run.distro.as_ref()),
        });
    }
    let allowed: Vec<String> = std::iter::once(&recorded.image)
        .chain(&recorded.mirrors)
        .filter(|r| !r.is_empty())
        .cloned()
        .collect();
    let wanted = repository(&run.reference);
    if !allowed.iter().any(|a| repository(a) == wanted) {
        return Some(Reason::NotAMirror {
            run_image: run.reference.clone(),
            allowed,
        });
    }
    if let Some(old) = &image.labels.stack_id {
        let new = run
            .labels
            .stack_id
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), ToString::to_string);
        if new != old.to_string() {
            return Some(Reason::StackId {
                image: old.to_string(),
                run_image: new,
            });
        }
        let have: BTreeSet<&str> = run.labels.stack_mixins.iter().map(String::as_str).collect();
        let missing: Vec<String> = image
            .labels
            .stack_mixins
            .iter()
            .filter(|m| !have.contains(m.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Some(Reason::Mixins { missing });
        }
    }
    None
}

/// A change in the builder that calls for a rebuild (kpack's BUILDPACK and LIFECYCLE reasons): a buildpack the
/// image was built with now has another version in the builder (or is gone from it), or the lifecycle version
/// differs. Only for images the builder built (it has at least one of their buildpacks).
fn builder_change(image: &ImageFacts, builder: &BaseFacts) -> Option<Reason> {
    let meta = builder.builder.as_ref()?;
    let build = image.build.as_ref()?;
    // An image none of whose buildpacks the builder has was built by another builder: its rules do not apply.
    if !build
        .buildpacks
        .iter()
        .any(|used| meta.buildpacks.iter().any(|b| b.id == used.id))
    {
        return None;
    }
    for used in &build.buildpacks {
        let same_id: Vec<_> = meta.buildpacks.iter().filter(|b| b.id == used.id).collect();
        if same_id.iter().any(|b| b.version == used.version) {
            continue;
        }
        return Some(match same_id.first() {
            Some(b) => Reason::BuildpackChanged {
                id: used.id.to_string(),
                old: used.version.to_string(),
                new: b.version.to_string(),
            },
            None => Reason::BuildpackGone {
                id: used.id.to_string(),
                version: used.version.to_string(),
            },
        });
    }
    let (old, new) = (&build.launcher.version, &meta.lifecycle.version);
    (!old.is_empty() && !new.is_empty() && old != new).then(|| Reason::LifecycleChanged {
        old: old.clone(),
        new: new.clone(),
    })
}

#[cfg(test)]
mod tests;
