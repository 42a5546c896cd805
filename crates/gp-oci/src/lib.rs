//! The OCI engine: content digests, image references with transports, reproducible layers, OCI image layouts and
//! safe unpacking. It never talks to a Docker daemon; registry access sits behind [`reference::ImageRef`]'s
//! registry transport.

pub mod auth;
pub mod compress;
pub mod digest;
pub mod image;
pub mod layer;
pub mod layout;
pub mod memo;
pub mod reference;
pub mod registry;
pub mod safe_fs;
pub mod sources;
pub mod spec;
pub mod store;
pub mod unpack;
