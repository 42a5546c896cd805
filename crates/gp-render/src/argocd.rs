//! Argo CD `Application` per app and environment, and for the buildpack path an Argo CD Image Updater
//! `ImageUpdater` that follows the kpack tag by digest and writes the digest back to the app's kustomization.

use gp_contract::config::Cluster;
use gp_contract::model::Build;
use serde_json::{Value, json};

use crate::app::App;

#[must_use]
pub fn application(app: &App<'_>) -> Value {
    let gitops = &app.config.gitops;
    let destination = match &app.env.cluster {
        Cluster::Server(s) => json!({"server": s, "namespace": app.namespace()}),
        Cluster::Name(n) => json!({"name": n, "namespace": app.namespace()}),
    };
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": app.instance(),
            "namespace": gitops.argocd_namespace,
            "labels": app.labels(),
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": gitops.argocd_project,
            "source": {
                "repoURL": gitops.repo_url,
                "targetRevision": gitops.revision,
                "path": app.repo_path(),
            },
            "destination": destination,
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true"],
                "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
            },
        },
    })
}

/// `None` for the Dockerfile path (its workflow pushes and pins the digest itself).
#[must_use]
pub fn image_updater(app: &App<'_>) -> Option<Value> {
    if !matches!(app.contract.spec.build, Build::Buildpack(_)) {
        return None;
    }
    let gitops = &app.config.gitops;
    Some(json!({
        "apiVersion": "argocd-image-updater.argoproj.io/v1alpha1",
        "kind": "ImageUpdater",
        "metadata": {
            "name": app.instance(),
            "namespace": gitops.argocd_namespace,
            "labels": app.labels(),
        },
        "spec": {
            "namespace": gitops.argocd_namespace,
            "applicationRefs": [{
                "namePattern": app.instance(),
                "images": [{
                    "alias": app.name(),
                    "imageName": app.image_tag(),
                    "commonUpdateSettings": {"updateStrategy": "digest"},
                    "manifestTargets": {"kustomize": {"name": app.name()}},
                }],
                "writeBackConfig": {
                    "method": "git",
                    "gitConfig": {
                        "repository": gitops.repo_url,
                        "branch": gitops.revision,
                        "writeBackTarget": format!("kustomization:/{}", app.repo_path()),
                    },
                },
            }],
        },
    }))
}
