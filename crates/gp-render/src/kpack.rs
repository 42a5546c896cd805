//! Buildpack path: a kpack `Image` (kpack.io/v1alpha2) that rebuilds on every commit to the contract's branch and
//! on every builder/stack update.

use gp_contract::model::{Build, BuildEngine};
use serde_json::{Value, json};

use crate::app::{App, BUILD_NAMESPACE, BUILD_SERVICE_ACCOUNT};

/// `None` for the Dockerfile path and for buildpack builds that run in GitHub Actions.
///
/// kpack's admission webhook rules kept here: `tag` and additional tags on one registry, env entries are plain
/// `name`/`value` (no `valueFrom`/`secretKeyRef`), no `cnbBindings` (deprecated in v1alpha2), history limits >= 1.
#[must_use]
pub fn image(app: &App<'_>) -> Option<Value> {
    let Build::Buildpack(b) = &app.contract.spec.build else {
        return None;
    };
    if b.engine != BuildEngine::Kpack {
        return None;
    }
    let cluster_builder = app
        .config
        .builders
        .get(&b.builder)
        .map_or_else(|| b.builder.to_string(), Clone::clone);
    let git = &app.contract.spec.source.git;
    let mut spec = json!({
        "tag": app.image_tag(),
        "serviceAccountName": BUILD_SERVICE_ACCOUNT,
        "builder": {"kind": "ClusterBuilder", "name": cluster_builder},
        "source": {"git": {"url": git.url.as_str(), "revision": git.branch.as_str()}},
        "cache": {"volume": {"size": "2G"}},
        "imageTaggingStrategy": "BuildNumber",
        "successBuildHistoryLimit": 5,
        "failedBuildHistoryLimit": 5,
    });
    if !b.env.is_empty() {
        let env: Vec<Value> = b
            .env
            .iter()
            .map(|e| json!({"name": e.name.as_str(), "value": e.value}))
            .collect();
        spec["build"] = json!({"env": env});
    }
    Some(json!({
        "apiVersion": "kpack.io/v1alpha2",
        "kind": "Image",
        "metadata": {
            "name": app.instance(),
            "namespace": BUILD_NAMESPACE,
            "labels": app.labels(),
        },
        "spec": spec,
    }))
}
