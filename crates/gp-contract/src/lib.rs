//! `AppDeploymentRequest` contracts: spanned YAML parsing, the typed contract model, validation rules, the
//! `goldenpath.toml` platform config and the contract's JSON Schema.
//!
//! This crate reads files and reports [`Diagnostic`]s; it never writes files, talks to a network or a cluster.

pub mod check;
pub mod config;
pub mod decode;
pub mod diag;
pub mod ids;
pub mod kpack_config;
pub mod model;
pub mod output;
pub mod quantity;
pub mod schema;
pub mod source;
pub mod yaml;

pub use config::PlatformConfig;
pub use diag::{Code, Diagnostic, Severity};
pub use model::AppDeploymentRequest;

pub use check::{ConfigSource, FileResult, Report, check_files, check_source, collect_files};
