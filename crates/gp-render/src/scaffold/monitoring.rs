//! Build monitoring. kpack exports no build metrics of its own, so kube-state-metrics' custom-resource-state
//! support turns kpack `Image`, `Build` and `ClusterBuilder` conditions into series, and the alert rules are
//! written against exactly those series:
//!
//! - `kube_customresource_kpack_image_ready{namespace, name, reason}`: 1 when the image's latest build succeeded.
//! - `kube_customresource_kpack_build_succeeded{namespace, name, image, reason}`: 1 succeeded, 0 failed.
//! - `kube_customresource_kpack_clusterbuilder_ready{name, reason}`: 1 when the builder resolved.
//!
//! (Each also carries `customresource_group`, `customresource_kind` and `customresource_version`; a condition in
//! `Unknown` state produces no sample.)

use serde_json::{Value, json};

use super::yaml_file;
use crate::RenderedFile;

const DIR: &str = "gitops/kustomize/base/monitoring";

fn condition_metric(name: &str, help: &str, condition: &str, extra_labels: &Value) -> Value {
    let mut labels = json!({"reason": ["reason"]});
    if let (Value::Object(l), Value::Object(extra)) = (&mut labels, extra_labels) {
        l.extend(extra.clone());
    }
    json!({
        "name": name,
        "help": help,
        "each": {
            "type": "Gauge",
            "gauge": {
                "path": ["status", "conditions", format!("[type={condition}]")],
                "labelsFromPath": labels,
                "valueFrom": ["status"],
            },
        },
    })
}

fn ksm_config() -> Value {
    let gvk = |kind: &str| json!({"group": "kpack.io", "version": "v1alpha2", "kind": kind});
    let named = json!({"name": ["metadata", "name"], "namespace": ["metadata", "namespace"]});
    json!({
        "kind": "CustomResourceStateMetrics",
        "spec": {"resources": [
            {"groupVersionKind": gvk("Image"), "labelsFromPath": named,
             "metrics": [condition_metric("kpack_image_ready", "1 when the kpack Image's latest build succeeded and it is ready.", "Ready", &json!({}))]},
            {"groupVersionKind": gvk("Build"), "labelsFromPath": named,
             "metrics": [condition_metric("kpack_build_succeeded", "1 when the kpack Build succeeded, 0 when it failed.", "Succeeded",
                &json!({"image": ["metadata", "labels", "image.kpack.io/image"]}))]},
            {"groupVersionKind": gvk("ClusterBuilder"), "labelsFromPath": {"name": ["metadata", "name"]},
             "metrics": [condition_metric("kpack_clusterbuilder_ready", "1 when the kpack ClusterBuilder is ready.", "Ready", &json!({}))]},
        ]},
    })
}

fn rule_groups() -> Value {
    json!([{
        "name": "goldenpath-kpack",
        "rules": [
            {"alert": "KpackBuildFailed",
             "expr": "kube_customresource_kpack_build_succeeded == 0",
             "labels": {"severity": "warning"},
             "annotations": {
                "summary": "kpack build {{ $labels.namespace }}/{{ $labels.name }} failed",
                "description": "Build {{ $labels.name }} of image {{ $labels.image }} failed ({{ $labels.reason }}). Read its logs with `kp build logs {{ $labels.image }} -n {{ $labels.namespace }}`; failed builds stay listed until the image's failedBuildHistoryLimit drops them.",
             }},
            {"alert": "KpackImageNotReady",
             "expr": "kube_customresource_kpack_image_ready == 0",
             "for": "15m",
             "labels": {"severity": "critical"},
             "annotations": {
                "summary": "kpack image {{ $labels.namespace }}/{{ $labels.name }} is not ready",
                "description": "The latest build of {{ $labels.name }} has not succeeded for 15 minutes ({{ $labels.reason }}): new commits and base-image patches are not being shipped.",
             }},
            {"alert": "KpackBuilderNotReady",
             "expr": "kube_customresource_kpack_clusterbuilder_ready == 0",
             "for": "10m",
             "labels": {"severity": "critical"},
             "annotations": {
                "summary": "kpack ClusterBuilder {{ $labels.name }} is not ready",
                "description": "ClusterBuilder {{ $labels.name }} cannot resolve its store or stack ({{ $labels.reason }}); every image using it is stuck.",
             }},
        ],
    }])
}

pub(super) fn files() -> Vec<RenderedFile> {
    let rbac = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "kube-state-metrics-kpack", "labels": {"app.kubernetes.io/part-of": "goldenpath"}},
        "rules": [{"apiGroups": ["kpack.io"], "resources": ["images", "builds", "clusterbuilders"], "verbs": ["list", "watch"]}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kube-state-metrics-kpack", "labels": {"app.kubernetes.io/part-of": "goldenpath"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kube-state-metrics-kpack"},
        "subjects": [{"kind": "ServiceAccount", "name": "kube-state-metrics", "namespace": "monitoring"}],
    });
    let prometheus_rule = json!({
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "goldenpath-kpack", "namespace": "monitoring", "labels": {"app.kubernetes.io/part-of": "goldenpath"}},
        "spec": {"groups": rule_groups()},
    });
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["kube-state-metrics-rbac.yaml", "kube-state-metrics-kpack-binding.yaml", "prometheus-rule.yaml"],
        "configMapGenerator": [{
            "name": "kube-state-metrics-kpack",
            "namespace": "monitoring",
            "files": ["kpack-custom-resource-state.yaml"],
            "options": {"disableNameSuffixHash": true},
        }],
    });
    vec![
        yaml_file(
            &format!("{DIR}/kpack-custom-resource-state.yaml"),
            &ksm_config(),
        ),
        yaml_file(&format!("{DIR}/kube-state-metrics-rbac.yaml"), &rbac),
        yaml_file(
            &format!("{DIR}/kube-state-metrics-kpack-binding.yaml"),
            &binding,
        ),
        yaml_file(&format!("{DIR}/prometheus-rule.yaml"), &prometheus_rule),
        yaml_file(&format!("{DIR}/kustomization.yaml"), &kustomization),
        yaml_file(
            "monitoring/rules/kpack.rules.yml",
            &json!({"groups": rule_groups()}),
        ),
    ]
}
