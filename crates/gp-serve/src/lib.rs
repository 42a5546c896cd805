//! The platform loop on one machine (`goldenpath serve`): what is known about each app, why it needs work, in
//! which order the work runs, and what survives a crash.
//!
//! - [`reason`]: why a build is wanted — kpack's reasons (COMMIT, CONFIG, TRIGGER, STACK, BUILDPACK, LIFECYCLE),
//!   each in a lane: developers' work before the platform's.
//! - [`builder`]: what each app's last build used (builder digest, lifecycle, buildpacks) against what the builder
//!   holds now: the BUILDPACK and LIFECYCLE reasons.
//! - [`queue`]: pending work per app, deduplicated (reasons merge), two lanes, bounded retries with backoff; a
//!   new reason for an app that failed is tried at once, so a failure never hides a later stack change.
//! - [`state`]: apps, builds (reasons, revision, digest, timings, result, log), deployments and patch campaigns
//!   in `SQLite` (WAL); opening it after a crash requeues interrupted builds once, in the same record.
//!
//! Pure parts (reasons, queue decisions) take the time as an argument; the database is the only I/O here.

pub mod builder;
pub mod config;
pub mod http;
pub mod metrics;
pub mod queue;
pub mod reason;
pub mod service;
pub mod state;
pub mod watch;
pub mod webhook;
