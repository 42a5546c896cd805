//! AppDeploymentRequest contracts: spanned YAML parsing, the typed contract model, validation rules, the
//! `goldenpath.toml` platform config and the contract's JSON Schema.
//!
//! This crate reads files and reports [`Diagnostic`]s; it never writes files, talks to a network or a cluster.

pub mod source;
pub mod yaml;
