//! Runs an app image on this machine, the way `goldenpath run` and the local deploy of `goldenpath serve` do.
//!
//! - [`bundle`]: the image's filesystem unpacked by our own unpacker and an OCI runtime bundle for `runc` — the
//!   image's entrypoint, command, environment, working directory and user (the CNB user: never root unless the
//!   image says so), a hostname of its own and `PORT` set.
//! - [`layers`]: the same root from layers unpacked once and kept, mounted with overlayfs (what `serve` deploys
//!   with: a new version unpacks only its new layers).
//! - [`container`]: `runc create` / `start` / `kill` / `delete`, the app's output in a log file, its network
//!   namespace held open.
//! - [`proxy`]: every app gets a network namespace of its own (only its loopback), so apps can all listen on the
//!   same port and none is reachable from outside the machine, whatever address it binds. A proxy on
//!   `127.0.0.1:<port>` connects into the namespace; switching the proxy to a new container is how a new version
//!   replaces the old without a failed request: start the new one, wait until it answers, switch, let the old one's
//!   connections finish, stop it.
//!
//! Needs root (runc creating namespaces, and entering the app's network namespace), as the rest of the local
//! platform does.

pub mod bundle;
pub mod container;
mod error;
pub mod layers;
pub mod proxy;

pub use error::RunError;

/// The port apps listen on inside their own network namespace (`PORT`); the proxy's port is the one users see.
pub const APP_PORT: u16 = 8080;
