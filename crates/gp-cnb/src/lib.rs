//! Cloud Native Buildpacks spec files as types.
//!
//! This crate owns the data formats of the CNB specs this platform implements (Buildpack API
//! 0.7–0.12, Platform API 0.15): the buildpack descriptor, order/group/plan files, the build plan a
//! `/bin/detect` writes, layer content metadata, `launch.toml`/`build.toml`, the project
//! descriptor, `Procfile`s, the platform's own files (`analyzed.toml`, `report.toml`, ...), the
//! `io.buildpacks.*` image labels, validated identifiers and API versions, target matching and the
//! env-dir modification rules.
//!
//! It must not do I/O beyond the optional [`TomlFile::from_path`] helper and the env-dir readers
//! ([`env::read_env_dir`], [`env::read_platform_env`]): no process spawning, no directory walking,
//! no network. Env dirs are applied from `(file name, bytes)` pairs. Phases, sandboxes and registries live in the crates above this one.
//!
//! | Module | Covers |
//! |---|---|
//! | `ids`, `api` | [`BuildpackId`], [`BuildpackVersion`], [`ProcessType`], [`LayerName`], [`StackId`], [`TargetId`]; [`BuildpackApi`]/[`PlatformApi`] with ordering and supported ranges |
//! | `target` | [`Target`] (a base image), [`BuildpackTarget`] (`[[targets]]`) and the wildcard matching rule |
//! | `buildpack_toml` | [`BuildpackDescriptor`] for component and composite buildpacks, [`ExtensionDescriptor`] |
//! | `order` | [`OrderToml`], [`GroupToml`], [`SystemToml`] and `[[order]]` groups |
//! | `plan` | [`BuildPlan`] (detect output), [`PlanToml`], [`BuildpackPlan`], [`BuildToml`], [`StoreToml`] |
//! | `layer`, `launch` | [`LayerContentMetadata`] (`<layer>.toml`), [`LaunchToml`] |
//! | `procfile` | [`Procfile`] parsing with line-numbered errors |
//! | [`env`](mod@env) | env-dir modification rules, platform env, `exec.d` output |
//! | `project` | [`ProjectDescriptor`] (`project.toml`, schema 0.2) |
//! | `platform_files` | [`AnalyzedToml`], [`ReportToml`], [`MetadataToml`], [`RunToml`], [`StackToml`] |
//! | `labels`, `builder_labels`, [`base_labels`] | `io.buildpacks.*` image labels |
//!
//! Every TOML file implements [`TomlFile`] (parse + validate, serialize, `from_path`); every JSON
//! label implements [`JsonLabel`]. Errors name the file (or label) and the field.
//!
//! Unknown keys are tolerated everywhere (and dropped on re-serialization unless a type keeps a
//! free-form table): the reference lifecycle ignores them, and newer buildpacks routinely add keys
//! that older platforms must not reject.
//!
//! `libcnb-data` was evaluated and not used (per-module notes say what differs): its descriptor,
//! target and version types are deserialize-only (no round trip) and its API version has no
//! ordering; it rejects unknown keys; it lacks the Platform API files and newer fields
//! (`exec-env`, the reserved id `generated`, distros without a version, string commands of
//! Buildpack API < 0.10); its free-form metadata is a `toml` 1.x table while this workspace uses
//! `toml` 0.9; and its releases after 0.30 need a newer Rust than the workspace pins.

mod api;
pub mod base_labels;
mod builder_labels;
mod buildpack_toml;
pub mod env;
mod file;
mod ids;
mod labels;
mod launch;
mod layer;
mod order;
mod plan;
mod platform_files;
mod procfile;
mod project;
mod target;

pub use api::{ApiError, ApiVersion, BuildpackApi, PlatformApi};
pub use base_labels::BaseImageLabels;
pub use builder_labels::{
    ApiSet, BuilderBuildpack, BuilderLifecycle, BuilderMetadata, BuilderStack, BuildpackLayerInfo,
    BuildpackLayers, BuildpackOrder, BuildpackageMetadata, CreatedBy, LifecycleApi, LifecycleApis,
    RunImageRef,
};
pub use buildpack_toml::{
    BuildExecutable, BuildpackDescriptor, BuildpackInfo, BuildpackKind, ExecEnv,
    ExtensionDescriptor, ExtensionInfo, License, SbomFormat, Stack,
};
pub use file::{
    CnbError, InputError, MAX_EXCERPT_CHARS, MAX_MESSAGE_LINE_CHARS, TomlFile, clip_lines,
    describe_file_type, excerpt, push_escaped, read_input, read_input_text,
};
pub use ids::{
    BuildpackId, BuildpackVersion, IdError, LayerName, ProcessType, StackId, TargetId,
    buildpack_dir_name,
};
pub use labels::{
    BuildMetadata, BuildpackLayersRecord, BuildpackRecord, CacheMetadata, GitSource, JsonLabel,
    LabelError, LauncherRecord, LauncherSource, LayerRecord, LayerSha, LifecycleMetadata,
    NoBuildpackId, ProcessRecord, ProjectMetadata, ProjectSource, RunImageRecord, StackRecord,
    StoreRecord,
};
pub use launch::{Label, LaunchToml, Process, ProcessCommand, Slice};
pub use layer::{LayerContentMetadata, LayerTypes};
pub use order::{
    GroupMember, GroupRef, GroupToml, OrderGroup, OrderToml, SystemBuildpacks, SystemGroup,
    SystemToml,
};
pub use plan::{
    BomEntry, BuildPlan, BuildToml, BuildpackPlan, PlanAlternative, PlanEntry, PlanProvider,
    PlanToml, Provide, Require, StoreToml, Unmet,
};
pub use platform_files::{
    AnalyzedBuildImage, AnalyzedRunImage, AnalyzedToml, ImageReference, MetadataProcess,
    MetadataToml, ReportImage, ReportToml, RunImageEntry, RunToml, StackImage, StackToml,
};
pub use procfile::{Procfile, ProcfileEntry, ProcfileError};
pub use project::{
    InlineScript, IoTable, MAX_PATTERN_BYTES, MAX_PATTERNS, PROJECT_SCHEMA, ProjectBuild,
    ProjectBuildpackRef, ProjectBuildpacks, ProjectDescriptor, ProjectEnvVar, ProjectGroup,
    ProjectSection, upgrade_schema_01,
};
pub use target::{BuildpackTarget, Distro, Target, host_arch};
