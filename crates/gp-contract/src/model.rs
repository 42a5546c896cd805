//! The typed `AppDeploymentRequest` contract (`apiVersion: goldenpath.io/v1`). These types are what validation
//! produces and what rendering consumes; the JSON Schema is generated from them.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::ids::{
    AppId, AppName, BindingName, Branch, BuilderName, EnvName, EnvVarName, GitUrl, Hostname, Owner,
    RelativePath, ResourceRef,
};
use crate::quantity::Quantity;

pub const API_VERSION: &str = "goldenpath.io/v1";
pub const KIND: &str = "AppDeploymentRequest";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "goldenpath.io/v1")]
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContractKind {
    AppDeploymentRequest,
}

/// A request to build and deploy one application into one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(
    title = "AppDeploymentRequest",
    description = "GoldenPath deployment contract: one application in one environment. File: docs/20-contracts/app-deployments/<environment>/<id>.yaml"
)]
pub struct AppDeploymentRequest {
    pub api_version: ApiVersion,
    pub kind: ContractKind,
    pub id: AppId,
    pub environment: EnvName,
    pub owner: Owner,
    pub application: AppName,
    pub spec: AppSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub source: Source,
    pub build: Build,
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub ingress: Ingress,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The application's git repository. Shorthand: a URL string means `{url: URL, branch: main}`.
    #[schemars(schema_with = "git_source_schema")]
    pub git: GitSource,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    pub url: GitUrl,
    #[serde(default = "default_branch")]
    pub branch: Branch,
}

fn git_source_schema(generator: &mut SchemaGenerator) -> Schema {
    let object = generator.subschema_for::<GitSource>();
    json_schema!({
        "description": "The application's git repository. A URL string is shorthand for `{url: URL, branch: main}`.",
        "anyOf": [
            {"$ref": "#/$defs/GitUrl"},
            object
        ]
    })
}

#[must_use]
pub fn default_branch() -> Branch {
    Branch::try_from("main".to_owned()).unwrap_or_else(|_| unreachable!("`main` is a valid branch"))
}

/// How the image is built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Build {
    /// Cloud Native Buildpacks (recommended): no Dockerfile, base images patched by the platform.
    Buildpack(BuildpackBuild),
    /// The escape hatch: the repository's own Dockerfile, built by a GitHub Actions workflow.
    Dockerfile(DockerfileBuild),
}

impl Build {
    #[must_use]
    pub fn env(&self) -> &[EnvVar] {
        match self {
            Build::Buildpack(b) => &b.env,
            Build::Dockerfile(d) => &d.env,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildpackBuild {
    #[serde(default = "default_builder")]
    pub builder: BuilderName,
    /// Where the build runs: `kpack` (in the cluster, the default) or `github-actions` (a workflow in the
    /// application repository runs `goldenpath build --publish`: the buildpack path without a cluster build
    /// service).
    #[serde(default, skip_serializing_if = "BuildEngine::is_default")]
    pub engine: BuildEngine,
    /// Build-time environment (e.g. `BP_NODE_VERSION`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

/// Where a buildpack build runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildEngine {
    /// A kpack `Image` in the cluster builds on every commit and rebuilds or rebases on stack updates.
    #[default]
    Kpack,
    /// A GitHub Actions workflow in the application repository builds with `goldenpath build --publish`.
    GithubActions,
}

impl BuildEngine {
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::Kpack
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerfileBuild {
    /// Build context, relative to the repository root.
    #[serde(default = "default_context")]
    pub context: RelativePath,
    /// Dockerfile path, relative to `context` (as `docker build` resolves its default).
    #[serde(default = "default_dockerfile")]
    pub dockerfile: RelativePath,
    /// Build arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
}

#[must_use]
pub fn default_builder() -> BuilderName {
    BuilderName::try_from("default".to_owned())
        .unwrap_or_else(|_| unreachable!("valid builder name"))
}

#[must_use]
pub fn default_context() -> RelativePath {
    RelativePath::try_from(".".to_owned()).unwrap_or_else(|_| unreachable!("valid path"))
}

#[must_use]
pub fn default_dockerfile() -> RelativePath {
    RelativePath::try_from("Dockerfile".to_owned()).unwrap_or_else(|_| unreachable!("valid path"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: EnvVarName,
    /// Always a string; quote numbers and booleans (`"8080"`, `"true"`).
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: u32,
    #[serde(default)]
    pub resources: Resources,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            resources: Resources::default(),
        }
    }
}

#[must_use]
pub fn default_replicas() -> u32 {
    1
}

/// Per-replica resources; the platform uses them as requests, and `memory` also as the limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "default_memory")]
    pub memory: Quantity,
    #[serde(default = "default_cpu")]
    pub cpu: Quantity,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory: default_memory(),
            cpu: default_cpu(),
        }
    }
}

#[must_use]
pub fn default_memory() -> Quantity {
    "512Mi"
        .parse()
        .unwrap_or_else(|_| unreachable!("valid quantity"))
}

#[must_use]
pub fn default_cpu() -> Quantity {
    "250m"
        .parse()
        .unwrap_or_else(|_| unreachable!("valid quantity"))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    #[serde(default)]
    pub enabled: bool,
    /// Required when `enabled`; must be under the environment's ingress domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Hostname>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    #[serde(rename = "type")]
    pub kind: BindingType,
    pub name: BindingName,
    /// The resource contract that provides it, e.g. `RDS-0001`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ResourceRef>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BindingType {
    Database,
    Cache,
    Queue,
    Secret,
}

impl BindingType {
    pub const ALL: [BindingType; 4] = [Self::Database, Self::Cache, Self::Queue, Self::Secret];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Cache => "cache",
            Self::Queue => "queue",
            Self::Secret => "secret",
        }
    }
}

impl std::str::FromStr for BindingType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

impl std::fmt::Display for BindingType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
