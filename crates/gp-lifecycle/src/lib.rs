//! The CNB lifecycle: detect and build (the phases that run inside the build image, also as the static
//! `lifecycle` binary), restore and save of the cache, and on the host (feature `host`) export, rebase and the
//! sandbox that runs the inner phases in the build image's root filesystem.

#[cfg(feature = "host")]
pub mod analyze;
pub mod build;
pub mod cache;
#[cfg(feature = "host")]
pub mod cache_image;
pub mod detect;
pub mod exit;
#[cfg(feature = "host")]
pub mod export;
pub mod layers;
pub mod phases;
pub mod platform;
pub mod progress;
#[cfg(feature = "host")]
pub mod rebase;
#[cfg(feature = "host")]
pub mod sandbox;
#[cfg(feature = "host")]
pub mod session;
#[cfg(feature = "host")]
pub mod slices;
#[cfg(feature = "host")]
pub mod speculate;
pub mod target;

/// `docs/lifecycle.md`, whose library example is compiled as a doc test.
#[cfg(all(doctest, feature = "host"))]
#[doc = include_str!("../../../docs/lifecycle.md")]
pub struct LifecycleDoc;
