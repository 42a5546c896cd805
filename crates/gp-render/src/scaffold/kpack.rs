//! kpack install resources under `gitops/kustomize/base/kpack/`: the builds namespace and service account (ECR
//! access through IRSA, no secret values), a `ClusterStore` of Paketo buildpacks, a `ClusterStack`, and one
//! `ClusterBuilder` per builder named in the platform config.

use std::collections::BTreeSet;

use gp_contract::config::PlatformConfig;
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

/// The order of a builder: all languages for `default` (and unknown names), one language for a language's name.
fn order(builder: &str) -> Vec<Value> {
    let langs: Vec<&str> = if LANGUAGES.contains(&builder) {
        vec![builder]
    } else {
        LANGUAGES.to_vec()
    };
    langs
        .iter()
        .map(|l| json!({"group": [{"id": format!("paketo-buildpacks/{l}")}]}))
        .collect()
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
    let store = json!({
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStore",
        "metadata": {"name": STORE, "labels": labels()},
        "spec": {"sources": LANGUAGES.iter().map(|l| json!({"image": format!("docker.io/paketobuildpacks/{l}")})).collect::<Vec<_>>()},
    });
    let stack = json!({
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "ClusterStack",
        "metadata": {"name": STACK, "labels": labels()},
        "spec": {
            "id": "io.buildpacks.stacks.jammy",
            "buildImage": {"image": "docker.io/paketobuildpacks/build-jammy-base"},
            "runImage": {"image": "docker.io/paketobuildpacks/run-jammy-base"},
        },
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
                "store": {"kind": "ClusterStore", "name": STORE},
                "order": order(b),
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
