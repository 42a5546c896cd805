//! kpack install resources under `gitops/kustomize/base/kpack/`: the builds namespace and service account (ECR
//! access through IRSA, no secret values), a `ClusterStore`, a `ClusterStack`, and one `ClusterBuilder` per builder
//! named in the platform config -- Paketo's buildpacks and stack by default, or the project's own buildpackages and
//! stack images by digest (`[kpack] buildpacks = "goldenpath"`).

use std::collections::BTreeSet;

use gp_contract::config::PlatformConfig;
use gp_contract::kpack_config::KpackBuildpacks;
use serde_json::{Value, json};

use super::yaml_file;
use crate::RenderedFile;
use crate::app::{BUILD_NAMESPACE, BUILD_SERVICE_ACCOUNT};

const DIR: &str = "gitops/kustomize/base/kpack";
/// Paketo language families, in detection order (Java first: a polyglot repo with a pom.xml is a Java app).
const LANGUAGES: [&str; 6] = ["java", "nodejs", "python", "go", "dotnet-core", "ruby"];
const STORE: &str = "paketo";
const STACK: &str = "base";

fn labels() -> Value {
    json!({"app.kubernetes.io/part-of": "goldenpath", "app.kubernetes.io/managed-by": "goldenpath"})
}

/// The order of a builder: every buildpack for `default` (and unknown names), one for a language's name.
fn order(builder: &str, ids: &[String]) -> Vec<Value> {
    let one: Vec<&String> = ids
        .iter()
        .filter(|id| id.rsplit(['/', '.']).next() == Some(builder))
        .collect();
    let chosen: Vec<&String> = if one.is_empty() {
        ids.iter().collect()
    } else {
        one
    };
    chosen
        .iter()
        .map(|id| json!({"group": [{"id": id}]}))
        .collect()
}

/// The store's sources, the stack and the buildpack ids the builders order.
fn buildpacks(config: &PlatformConfig) -> (Vec<Value>, Value, Vec<String>) {
    match &config.kpack {
        KpackBuildpacks::Paketo => (
            LANGUAGES
                .iter()
                .map(|l| json!({"image": format!("docker.io/paketobuildpacks/{l}")}))
                .collect(),
            json!({
                "id": "io.buildpacks.stacks.jammy",
                "buildImage": {"image": "docker.io/paketobuildpacks/build-jammy-base"},
                "runImage": {"image": "docker.io/paketobuildpacks/run-jammy-base"},
            }),
            LANGUAGES
                .iter()
                .map(|l| format!("paketo-buildpacks/{l}"))
                .collect(),
        ),
        KpackBuildpacks::Goldenpath(g) => (
            g.store.iter().map(|i| json!({"image": i})).collect(),
            json!({
                "id": g.stack_id,
                "buildImage": {"image": g.build_image},
                "runImage": {"image": g.run_image},
            }),
            g.order.clone(),
        ),
    }
}

pub(super) fn files(config: &PlatformConfig) -> Vec<RenderedFile> {
    let account = config.registry.split('.').next().unwrap_or("ACCOUNT_ID");
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BUILD_NAMESPACE, "labels": labels()}});
    let service_account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": BUILD_SERVICE_ACCOUNT,
            "namespace": BUILD_NAMESPACE,
            "labels": labels(),
            "annotations": {
                // kpack's keychain uses the pod's IAM role (IRSA) for ECR: no registry password is stored anywhere.
                "eks.amazonaws.com/role-arn": format!("arn:aws:iam::{account}:role/goldenpath-kpack-builder"),
            },
        },
    });
    let (sources, stack_spec, ids) = buildpacks(config);
    let store_name = match config.kpack {
        KpackBuildpacks::Paketo => STORE,
        KpackBuildpacks::Goldenpath(_) => "goldenpath",
    };
    let store = json!({
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStore",
        "metadata": {"name": store_name, "labels": labels()},
        "spec": {"sources": sources},
    });
    let stack = json!({
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStack",
        "metadata": {"name": STACK, "labels": labels()},
        "spec": stack_spec,
    });
    let builders: BTreeSet<&str> = config.builders.values().map(String::as_str).collect();
    let mut files = vec![
        yaml_file(&format!("{DIR}/namespace.yaml"), &namespace),
        yaml_file(&format!("{DIR}/service-account.yaml"), &service_account),
        yaml_file(&format!("{DIR}/cluster-store.yaml"), &store),
        yaml_file(&format!("{DIR}/cluster-stack.yaml"), &stack),
    ];
    let mut resources = vec![
        "namespace.yaml".to_owned(),
        "service-account.yaml".to_owned(),
        "cluster-store.yaml".to_owned(),
        "cluster-stack.yaml".to_owned(),
    ];
    for b in builders {
        let builder = json!({
            "apiVersion": "kpack.io/v1alpha2",
            "kind": "ClusterBuilder",
            "metadata": {"name": b, "labels": labels()},
            "spec": {
                "tag": format!("{}/goldenpath-builders/{b}", config.registry),
                "serviceAccountRef": {"name": BUILD_SERVICE_ACCOUNT, "namespace": BUILD_NAMESPACE},
                "stack": {"kind": "ClusterStack", "name": STACK},
                "store": {"kind": "ClusterStore", "name": store_name},
                "order": order(b, &ids),
            },
        });
        let name = format!("cluster-builder-{b}.yaml");
        files.push(yaml_file(&format!("{DIR}/{name}"), &builder));
        resources.push(name);
    }
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    });
    files.push(yaml_file(
        &format!("{DIR}/kustomization.yaml"),
        &kustomization,
    ));
    files
}
