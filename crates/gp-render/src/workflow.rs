//! GitHub Actions workflows for the application repository. Dockerfile path: builds the contract's Dockerfile,
//! scans it with Trivy (failing on CRITICAL), pushes to ECR with OIDC credentials and attaches an SBOM. Buildpack
//! path with `engine: github-actions` (no cluster build service): `goldenpath build --publish` on the platform's
//! builder with a registry cache image, then the environment tag moved to the new digest.
//!
//! Every action is pinned to a full commit SHA; no `${{ }}` expression is interpolated into a `run:` script
//! (values reach scripts through `env:`), and the token gets only `contents: read` and `id-token: write`.

use std::fmt::Write as _;

use gp_contract::model::{Build, BuildEngine, BuildpackBuild};
use serde_json::{Value, json};

use crate::app::App;

const CHECKOUT: &str = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"; // v4.2.2
const AWS_CREDENTIALS: &str =
    "aws-actions/configure-aws-credentials@e3dd6a429d7300a6a4c196c26e071d42e0343502"; // v4.0.2
const ECR_LOGIN: &str = "aws-actions/amazon-ecr-login@062b18b96a7aff071d4dc91bc00c4c1a7945b076"; // v2.0.1
const BUILDX: &str = "docker/setup-buildx-action@c47758b77c9736f4b2ef4073d4d51994fabfe349"; // v3.7.1
const BUILD_PUSH: &str = "docker/build-push-action@4f58ea79222b3b9dc2c8bbdd6debcef730109a75"; // v6.9.0
const TRIVY: &str = "aquasecurity/trivy-action@ed142fd0673e97e23eac54620cfb913e5ce36c25"; // v0.36.0
const SBOM: &str = "anchore/sbom-action@ab5d7b5f48981941c4c5d6bf33aeb98fe3bae38c"; // v0.15.7

/// Region and account from an ECR registry host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`).
fn ecr_parts(registry: &str) -> (String, String) {
    let host = registry.split('/').next().unwrap_or(registry);
    let parts: Vec<&str> = host.split('.').collect();
    match parts.as_slice() {
        [account, "dkr", "ecr", region, ..] => ((*account).to_owned(), (*region).to_owned()),
        _ => ("ACCOUNT_ID".to_owned(), "us-east-1".to_owned()),
    }
}

/// The goldenpath release the buildpack workflow installs.
const GOLDENPATH_VERSION: &str = env!("CARGO_PKG_VERSION");
const GOLDENPATH_REPOSITORY: &str = "https://github.com/goldenpath-io/goldenpath";

/// `None` for buildpack builds that kpack runs.
#[must_use]
pub fn workflow(app: &App<'_>) -> Option<Value> {
    let d = match &app.contract.spec.build {
        Build::Dockerfile(d) => d,
        Build::Buildpack(b) if b.engine == BuildEngine::GithubActions => {
            return Some(buildpack_workflow(app, b));
        }
        Build::Buildpack(_) => return None,
    };
    let (account, region) = ecr_parts(&app.config.registry);
    let context = d.context.as_str();
    let file = if context == "." {
        d.dockerfile.to_string()
    } else {
        format!("{}/{}", context.trim_end_matches('/'), d.dockerfile)
    };
    let build_args = d.env.iter().fold(String::new(), |mut acc, e| {
        let _ = writeln!(acc, "{}={}", e.name, e.value);
        acc
    });
    let mut build = json!({
        "context": context,
        "file": file,
        "load": true,
        "push": false,
        "tags": "${{ env.IMAGE }}:${{ github.sha }}",
    });
    if !build_args.is_empty() {
        build["build-args"] = build_args.into();
    }
    let branch = app.contract.spec.source.git.branch.as_str();
    Some(json!({
        "name": format!("Build {} ({})", app.name(), app.env_name()),
        "on": {"push": {"branches": [branch]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read", "id-token": "write"},
        "concurrency": {"group": format!("build-{}", app.instance()), "cancel-in-progress": false},
        "env": {
            "AWS_REGION": region,
            "IMAGE": app.image_repository(),
            "ENVIRONMENT_TAG": app.env_name(),
        },
        "jobs": {"build": {
            "name": "Build, scan and push",
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 30,
            "steps": with_login(&account, json!([
                {"uses": BUILDX},
                {"name": "Build", "uses": BUILD_PUSH, "with": build},
                {"name": "Scan (fails on CRITICAL)", "uses": TRIVY, "with": {
                    "image-ref": "${{ env.IMAGE }}:${{ github.sha }}",
                    "severity": "CRITICAL",
                    "ignore-unfixed": true,
                    "exit-code": "1",
                }},
                {"name": "Push", "id": "push", "env": {"SHA": "${{ github.sha }}"}, "run": push_script()},
                {"name": "SBOM", "uses": SBOM, "with": {
                    "image": "${{ env.IMAGE }}@${{ steps.push.outputs.digest }}",
                    "format": "spdx-json",
                    "artifact-name": format!("{}-sbom.spdx.json", app.instance()),
                }},
            ])),
        }},
    }))
}

/// The buildpack path in GitHub Actions: the builder is the image the platform's kpack `ClusterBuilder` of the
/// same name writes (`<registry>/goldenpath-builders/<name>`), so both paths build with the same buildpacks.
fn buildpack_workflow(app: &App<'_>, b: &BuildpackBuild) -> Value {
    let (account, region) = ecr_parts(&app.config.registry);
    let cluster_builder = app
        .config
        .builders
        .get(&b.builder)
        .map_or_else(|| b.builder.to_string(), Clone::clone);
    // Build variables reach the script through the step's environment, never interpolated into it.
    let mut build_env = serde_json::Map::new();
    build_env.insert("SHA".into(), "${{ github.sha }}".into());
    let mut env_flags = String::new();
    for (n, e) in b.env.iter().enumerate() {
        build_env.insert(
            format!("BUILD_ENV_{n}"),
            format!("{}={}", e.name, e.value).into(),
        );
        let _ = write!(env_flags, " --env \"$BUILD_ENV_{n}\"");
    }
    let branch = app.contract.spec.source.git.branch.as_str();
    json!({
        "name": format!("Build {} ({}) with buildpacks", app.name(), app.env_name()),
        "on": {"push": {"branches": [branch]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read", "id-token": "write"},
        "concurrency": {"group": format!("build-{}", app.instance()), "cancel-in-progress": false},
        "env": {
            "AWS_REGION": region,
            "IMAGE": app.image_repository(),
            "ENVIRONMENT_TAG": app.env_name(),
            "BUILDER": format!("{}/goldenpath-builders/{cluster_builder}", app.config.registry),
            "GOLDENPATH_VERSION": GOLDENPATH_VERSION,
        },
        "jobs": {"build": {
            "name": "Build with Cloud Native Buildpacks and publish",
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 30,
            "steps": with_login(&account, json!([
                {"name": "Install goldenpath", "run": format!(
                    "set -euo pipefail\ncargo install --locked --git {GOLDENPATH_REPOSITORY} --tag \"v$GOLDENPATH_VERSION\" goldenpath\n"
                )},
                {"name": "Build and publish", "id": "build", "env": build_env, "run": buildpack_script(&env_flags)},
            ])),
        }},
    })
}

fn buildpack_script(env_flags: &str) -> String {
    [
        "set -euo pipefail",
        &format!(
            "goldenpath build \"$IMAGE:$SHA\" --publish --path . --builder \"$BUILDER\" --cache-image \"$IMAGE-cache:$ENVIRONMENT_TAG\"{env_flags} 2>&1 | tee build.log"
        ),
        "digest=$(sed -n 's/^\\*\\*\\* Published [^@]*@\\(sha256:[0-9a-f]*\\).*/\\1/p' build.log)",
        "test -n \"$digest\"",
        "goldenpath image copy \"docker://$IMAGE@$digest\" \"docker://$IMAGE:$ENVIRONMENT_TAG\"",
        "echo \"digest=$digest\" >> \"$GITHUB_OUTPUT\"",
        "echo \"Pushed $IMAGE@$digest (tag $ENVIRONMENT_TAG)\" >> \"$GITHUB_STEP_SUMMARY\"",
        "",
    ]
    .join("\n")
}

/// The steps both workflows start with: checkout without kept credentials, AWS credentials by OIDC, ECR login;
/// then `steps`.
fn with_login(account: &str, steps: Value) -> Vec<Value> {
    let mut all = vec![
        json!({"uses": CHECKOUT, "with": {"persist-credentials": false}}),
        json!({"name": "AWS credentials (OIDC)", "uses": AWS_CREDENTIALS, "with": {
            "role-to-assume": format!("arn:aws:iam::{account}:role/goldenpath-image-publisher"),
            "aws-region": "${{ env.AWS_REGION }}",
        }}),
        json!({"name": "Log in to ECR", "uses": ECR_LOGIN, "with": {"registries": account}}),
    ];
    if let Value::Array(steps) = steps {
        all.extend(steps);
    }
    all
}

fn push_script() -> String {
    [
        "set -euo pipefail",
        "docker tag \"$IMAGE:$SHA\" \"$IMAGE:$ENVIRONMENT_TAG\"",
        "docker push \"$IMAGE:$SHA\"",
        "docker push \"$IMAGE:$ENVIRONMENT_TAG\"",
        "digest=$(docker inspect --format '{{index .RepoDigests 0}}' \"$IMAGE:$SHA\" | cut -d@ -f2)",
        "echo \"digest=$digest\" >> \"$GITHUB_OUTPUT\"",
        "echo \"Pushed $IMAGE@$digest\" >> \"$GITHUB_STEP_SUMMARY\"",
        "",
    ]
    .join("\n")
}

/// Comment lines naming the version of each pinned action `workflow` uses, placed under the file header.
#[must_use]
pub fn pin_comment(workflow: &Value) -> String {
    let used = workflow.to_string();
    let pins = [
        (CHECKOUT, "v4.2.2"),
        (AWS_CREDENTIALS, "v4.0.2"),
        (ECR_LOGIN, "v2.0.1"),
        (BUILDX, "v3.7.1"),
        (BUILD_PUSH, "v6.9.0"),
        (TRIVY, "v0.36.0"),
        (SBOM, "v0.15.7"),
    ];
    let mut s = String::from("# Actions are pinned to commits:\n");
    for (a, v) in pins.into_iter().filter(|(a, _)| used.contains(a)) {
        let _ = writeln!(s, "#   {a}  ({v})");
    }
    s
}
