//! Integration tests of `gp-render`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod hostile_tree;
