//! The CNB lifecycle. So far: the detect phase's pure parts — order expansion (composite buildpacks, optional
//! entries) and build-plan resolution. Running buildpacks (the sandbox) and the other phases build on these.

pub mod build;
pub mod cache;
pub mod detect;
pub mod export;
pub mod layers;
pub mod platform;
pub mod rebase;
