//! The Backstage software template "Deploy Application" (`scaffolder.backstage.io/v1beta3`) and its skeleton: it
//! writes one contract into the contracts tree and opens a pull request, where contract CI validates it.
//!
//! Backstage templates skeleton files with nunjucks using `${{ }}`, the same delimiters GitHub Actions uses, so a
//! GitHub expression inside a skeleton file must sit in a `{% raw %}` block to reach the output unchanged.

use gp_contract::config::PlatformConfig;
use serde_json::json;

use super::{HEADER, yaml_file};
use crate::RenderedFile;

const DIR: &str = "backstage/templates/deploy-app";

/// `github.com?owner=ORG&repo=REPO` from the GitOps repository URL (where contracts live).
fn repo_url(config: &PlatformConfig) -> String {
    let url = config.gitops.repo_url.trim_end_matches(".git");
    let rest = url.split("://").nth(1).unwrap_or(url);
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or("github.com");
    let owner = parts.next().unwrap_or("ORG");
    let repo = parts.next().unwrap_or("platform");
    format!("{host}?owner={owner}&repo={repo}")
}

fn template(config: &PlatformConfig) -> serde_json::Value {
    let envs: Vec<&str> = config
        .environments
        .keys()
        .map(gp_contract::ids::EnvName::as_str)
        .collect();
    let builders: Vec<&str> = config
        .builders
        .keys()
        .map(gp_contract::ids::BuilderName::as_str)
        .collect();
    json!({
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {
            "name": "deploy-app",
            "title": "Deploy Application",
            "description": "Deploy an application to Kubernetes from its git repository: buildpacks (no Dockerfile) or your own Dockerfile. Opens a pull request with an AppDeploymentRequest contract.",
            "tags": ["goldenpath", "kubernetes", "buildpacks"],
        },
        "spec": {
            "owner": "platform-team",
            "type": "service",
            "parameters": [
                {
                    "title": "Application",
                    "required": ["id", "appName", "owner", "gitRepo"],
                    "properties": {
                        "id": {"title": "Contract id", "type": "string", "pattern": "^APP-[0-9]{4,}$",
                               "description": "The next free APP-NNNN id (one per application; the same id in every environment)."},
                        "appName": {"title": "Application name", "type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63,
                                    "description": "Lower-case letters, digits and -; names the Deployment, Service and image."},
                        "owner": {"title": "Owner", "type": "string", "ui:field": "OwnerPicker",
                                  "ui:options": {"catalogFilter": {"kind": "Group"}}},
                        "gitRepo": {"title": "Git repository URL", "type": "string",
                                    "pattern": "^(https://[^/]+/.+|ssh://.+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+)$"},
                        "branch": {"title": "Branch", "type": "string", "default": "main"},
                    },
                },
                {
                    "title": "Deployment",
                    "required": ["environment", "buildType"],
                    "properties": {
                        "environment": {"title": "Environment", "type": "string", "enum": envs},
                        "buildType": {"title": "Build type", "type": "string", "enum": ["buildpack", "dockerfile"], "default": "buildpack",
                                      "enumNames": ["Buildpacks (recommended: no Dockerfile, patched automatically)", "Dockerfile (you maintain the image)"]},
                        "builder": {"title": "Builder", "type": "string", "enum": builders, "default": "default"},
                        "replicas": {"title": "Replicas", "type": "integer", "minimum": 1, "maximum": config.policy.max_replicas, "default": 2},
                        "memory": {"title": "Memory per replica", "type": "string", "default": "512Mi"},
                        "cpu": {"title": "CPU per replica", "type": "string", "default": "250m"},
                        "ingress": {"title": "Public HTTP route", "type": "boolean", "default": true},
                    },
                },
            ],
            "steps": [
                {
                    "id": "generate-contract",
                    "name": "Generate App Contract",
                    "action": "fetch:template",
                    "input": {
                        "url": "./skeleton",
                        "targetPath": "docs/20-contracts/app-deployments/${{ parameters.environment }}",
                        "values": {
                            "id": "${{ parameters.id }}",
                            "appName": "${{ parameters.appName }}",
                            "owner": "${{ parameters.owner | parseEntityRef | pick('name') }}",
                            "gitRepo": "${{ parameters.gitRepo }}",
                            "branch": "${{ parameters.branch }}",
                            "environment": "${{ parameters.environment }}",
                            "buildType": "${{ parameters.buildType }}",
                            "builder": "${{ parameters.builder }}",
                            "replicas": "${{ parameters.replicas }}",
                            "memory": "${{ parameters.memory }}",
                            "cpu": "${{ parameters.cpu }}",
                            "ingress": "${{ parameters.ingress }}",
                            "domain": domains(config),
                        },
                    },
                },
                {
                    "id": "create-pr",
                    "name": "Create Pull Request",
                    "action": "publish:github:pull-request",
                    "input": {
                        "repoUrl": repo_url(config),
                        "branchName": "deploy-${{ parameters.appName }}-${{ parameters.environment }}",
                        "title": "Deploy ${{ parameters.appName }} to ${{ parameters.environment }} (${{ parameters.id }})",
                        "description": "AppDeploymentRequest ${{ parameters.id }} from the Deploy Application template. Contract CI validates it on this pull request; merging renders the GitOps change.",
                    },
                },
            ],
            "output": {"links": [{"title": "Pull request", "url": "${{ steps['create-pr'].output.remoteUrl }}"}]},
        },
    })
}

/// Environment -> ingress domain, so the skeleton can form the host name.
fn domains(config: &PlatformConfig) -> serde_json::Value {
    config
        .environments
        .iter()
        .map(|(name, env)| (name.to_string(), json!(env.domain.as_str())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The contract skeleton (nunjucks). The raw block keeps a GitHub expression for the reviewer intact.
const SKELETON: &str = r"# Requested through the Backstage template `deploy-app`.
# Contract CI checks this file on the pull request ({% raw %}${{ github.workflow }}{% endraw %}).
apiVersion: goldenpath.io/v1
kind: AppDeploymentRequest
id: ${{ values.id }}
environment: ${{ values.environment }}
owner: ${{ values.owner }}
application: ${{ values.appName }}
spec:
  source:
    git:
      url: ${{ values.gitRepo }}
      branch: ${{ values.branch }}
  build:
    type: ${{ values.buildType }}
{%- if values.buildType == 'buildpack' %}
    builder: ${{ values.builder }}
{%- endif %}
  runtime:
    replicas: ${{ values.replicas }}
    resources:
      memory: ${{ values.memory }}
      cpu: ${{ values.cpu }}
  ingress:
{%- if values.ingress %}
    enabled: true
    host: ${{ values.appName }}.${{ values.domain[values.environment] }}
{%- else %}
    enabled: false
{%- endif %}
";

pub(super) fn files(config: &PlatformConfig) -> Vec<RenderedFile> {
    vec![
        yaml_file(&format!("{DIR}/template.yaml"), &template(config)),
        RenderedFile {
            path: format!("{DIR}/skeleton/${{{{ values.id }}}}.yaml").into(),
            // A nunjucks comment: the generated contract should not claim to be generated by `goldenpath scaffold`.
            contents: format!(
                "{{# {} -#}}\n{SKELETON}",
                HEADER.trim_start_matches("# ").trim_end()
            ),
        },
    ]
}
