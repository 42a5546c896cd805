//! Build monitoring. kpack exports no build metrics of its own, so kube-state-metrics' custom-resource-state
//! support turns kpack `Image`, `Build` and `ClusterBuilder` conditions into series, and the alert rules are
//! written against exactly those series:
//!
//! - `kube_customresource_kpack_image_ready{namespace, name, reason}`: 1 when the image's latest build succeeded.
//! - `kube_customresource_kpack_build_succeeded{namespace, name, image, reason}`: 1 succeeded, 0 failed.
//! - `kube_customresource_kpack_clusterbuilder_ready{name, reason}`: 1 when the builder resolved.
//!
//! `goldenpath serve` exports its own metrics (`gp_serve::metrics`): its rules and Grafana dashboard are written
//! against those names.
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

/// Alerts on what `goldenpath serve` exports itself (`/metrics`; no kube-state-metrics needed), scraped as job
/// `goldenpath-serve`.
fn serve_rule_groups() -> Value {
    json!([{
        "name": "goldenpath-serve",
        "rules": [
            {"alert": "GoldenPathServeDown",
             "expr": "up{job=\"goldenpath-serve\"} == 0",
             "for": "5m",
             "labels": {"severity": "critical"},
             "annotations": {
                "summary": "goldenpath serve on {{ $labels.instance }} is not answering",
                "description": "Prometheus cannot scrape {{ $labels.instance }} for 5 minutes: no commits are built and no patches rolled out. See docs/runbook.md, \"The service is down\".",
             }},
            {"alert": "GoldenPathBuildsFailing",
             "expr": "sum by (instance, work, reason) (increase(goldenpath_builds_total{result=\"failed\"}[30m])) > 0",
             "labels": {"severity": "warning"},
             "annotations": {
                "summary": "{{ $labels.work }}s for {{ $labels.reason }} are failing on {{ $labels.instance }}",
                "description": "{{ $value }} {{ $labels.work }}(s) with reason {{ $labels.reason }} failed in the last 30 minutes. The status page links each build's log; failed work is retried with backoff. See docs/runbook.md, \"A failing or stuck build\".",
             }},
            {"alert": "GoldenPathAppsBehindRunImage",
             "expr": "goldenpath_apps_behind_run_image > 0",
             "for": "30m",
             "labels": {"severity": "critical"},
             "annotations": {
                "summary": "{{ $value }} app(s) on {{ $labels.instance }} are not on the current run image",
                "description": "A patched run image was published but has not reached every app for 30 minutes: rebases are failing or queued behind developer builds. See docs/runbook.md, \"Apps behind the run image\".",
             }},
            {"alert": "GoldenPathBuilderNotReady",
             "expr": "goldenpath_builder_ready == 0",
             "for": "10m",
             "labels": {"severity": "critical"},
             "annotations": {
                "summary": "goldenpath serve on {{ $labels.instance }} cannot resolve its builder or run image",
                "description": "The run image's digest cannot be read for 10 minutes: stack patches are not noticed. Check the registry (see docs/runbook.md, \"A full or unreachable registry\").",
             }},
            {"alert": "GoldenPathDeveloperQueueSlow",
             "expr": "histogram_quantile(0.9, sum by (instance, le) (rate(goldenpath_queue_wait_seconds_bucket{lane=\"developer\"}[15m]))) > 600",
             "for": "15m",
             "labels": {"severity": "warning"},
             "annotations": {
                "summary": "developer builds wait over 10 minutes on {{ $labels.instance }}",
                "description": "The 90th percentile wait of COMMIT/CONFIG/TRIGGER work is {{ $value | humanizeDuration }}: raise `concurrency` or look for a stuck build.",
             }},
            {"alert": "GoldenPathRegistryThrottled",
             "expr": "sum by (instance, registry) (rate(goldenpath_registry_throttled_total[5m])) > 0",
             "for": "10m",
             "labels": {"severity": "warning"},
             "annotations": {
                "summary": "registry {{ $labels.registry }} is throttling goldenpath serve",
                "description": "Requests to {{ $labels.registry }} get 429 for 10 minutes; they are retried, but lower `registry_rate` below the registry's quota.",
             }},
        ],
    }])
}

/// A Grafana dashboard of the service's metrics (import it, or provision it from this file).
fn serve_dashboard() -> Value {
    let panel = |id: u32, title: &str, expr: &str, unit: &str, x: u32, y: u32| {
        json!({
            "id": id, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
        })
    };
    json!({
        "title": "GoldenPath serve",
        "uid": "goldenpath-serve",
        "schemaVersion": 39,
        "tags": ["goldenpath"],
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [
            panel(1, "Builds and rebases per hour, by result", "sum by (work, result) (increase(goldenpath_builds_total[1h]))", "short", 0, 0),
            panel(2, "Build duration (p50, p90) by work", "histogram_quantile(0.9, sum by (work, le) (rate(goldenpath_build_duration_seconds_bucket[30m])))", "s", 12, 0),
            panel(3, "Queue depth by lane", "goldenpath_queue_depth", "short", 0, 8),
            panel(4, "Queue wait p90 by lane", "histogram_quantile(0.9, sum by (lane, le) (rate(goldenpath_queue_wait_seconds_bucket[30m])))", "s", 12, 8),
            panel(5, "Apps, and apps behind the run image", "goldenpath_apps or goldenpath_apps_behind_run_image", "short", 0, 16),
            panel(6, "Registry requests and 429s per second", "sum by (registry) (rate(goldenpath_registry_requests_total[5m])) or sum by (registry) (rate(goldenpath_registry_throttled_total[5m]))", "reqps", 12, 16),
        ],
    })
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
        yaml_file(
            "monitoring/rules/goldenpath-serve.rules.yml",
            &json!({"groups": serve_rule_groups()}),
        ),
        RenderedFile {
            path: "monitoring/dashboards/goldenpath-serve.json".into(),
            contents: format!(
                "{}\n",
                serde_json::to_string_pretty(&serve_dashboard()).unwrap_or_default()
            ),
        },
    ]
}
