//! Integration tests of the OCI engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod fault_proxy;
mod registry_faults;
mod registry_limits;
mod registry_server;
