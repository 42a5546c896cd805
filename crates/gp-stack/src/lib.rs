//! Stacks and builders. So far: builder images from pack's `builder.toml` (buildpack directories, the order, the
//! run image and the launcher on a build image), with the labels pack and kpack read.

pub mod builder;
pub mod buildpackage;
pub mod create;
pub mod stack;
