//! The Platform API's exit codes, in one place: each phase has its range (detect 20-29, analyze 30-39, restore
//! 40-49, build 50-59, export 60-69, rebase 70-79, launch 80-89), with the first codes of a range meaning
//! "the buildpacks said no" or "a buildpack failed" and the rest failures of the lifecycle itself.

/// Any phase: a buildpack declares a Buildpack API this lifecycle does not support.
pub const INCOMPATIBLE_BUILDPACK_API: u8 = 12;
/// Detect: no group of buildpacks passed.
pub const DETECT_FAIL: u8 = 20;
/// Detect: a buildpack's `bin/detect` failed with an error.
pub const DETECT_BUILDPACK_ERROR: u8 = 21;
/// Detect: the lifecycle could not do its part (order, descriptors, writing the group).
pub const DETECT_ERROR: u8 = 22;
/// Restore: the cache or the previous image's layer metadata could not be restored.
pub const RESTORE_ERROR: u8 = 42;
/// Build: a buildpack's `bin/build` failed.
pub const BUILD_BUILDPACK_ERROR: u8 = 51;
/// Build: the lifecycle could not do its part (reading the group or plan, a buildpack broke the contract).
pub const BUILD_ERROR: u8 = 52;
/// Export: the image (or the cache) could not be written or pushed.
pub const EXPORT_ERROR: u8 = 62;
