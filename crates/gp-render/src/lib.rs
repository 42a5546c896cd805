//! Renders validated contracts into the GitOps tree (kpack `Image` or a GitHub Actions build workflow, Argo CD
//! `Application` and `ImageUpdater`, Deployment/Service/Ingress/bindings, kustomization) and scaffolds the platform
//! repository (Backstage template, CI workflows, kpack install resources, monitoring).
//!
//! Rendering is pure: contracts and platform config in, file paths and bytes out. Writing the tree (and pruning
//! only our own stale files) is done by [`tree`]; nothing here talks to a cluster or a registry.

pub mod app;
pub mod argocd;
pub mod contracts;
pub mod kpack;
pub mod readme;
pub mod runtime;
pub mod scaffold;
pub mod tree;
pub mod workflow;
pub mod yaml;

use std::path::PathBuf;

use gp_contract::config::PlatformConfig;
use gp_contract::model::AppDeploymentRequest;

pub use app::App;

/// One generated file: a path relative to the output root, and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: PathBuf,
    pub contents: String,
}

/// Why a contract cannot be rendered (validation normally rules these out).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("environment `{environment}` of {source_file} is not in the platform config")]
    UnknownEnvironment {
        environment: String,
        source_file: String,
    },
}

/// Everything one contract produces, in a stable order.
pub fn render_contract(
    contract: &AppDeploymentRequest,
    config: &PlatformConfig,
    source: &str,
    digest: Option<&str>,
) -> Result<Vec<RenderedFile>, RenderError> {
    let env = config
        .environments
        .get(&contract.environment)
        .ok_or_else(|| RenderError::UnknownEnvironment {
            environment: contract.environment.to_string(),
            source_file: source.to_owned(),
        })?;
    let app = App {
        contract,
        config,
        env,
        source,
    };
    let dir = app.dir();
    let header = app.header();
    let yaml_file = |path: PathBuf, value: &serde_json::Value| RenderedFile {
        contents: format!("{header}{}", yaml::to_yaml(value)),
        path,
    };
    let mut files = Vec::new();
    let mut resources = vec!["deployment.yaml".to_owned(), "service.yaml".to_owned()];
    files.push(yaml_file(
        dir.join("deployment.yaml"),
        &runtime::deployment(&app),
    ));
    files.push(yaml_file(dir.join("service.yaml"), &runtime::service(&app)));
    if let Some(ing) = runtime::ingress(&app) {
        files.push(yaml_file(dir.join("ingress.yaml"), &ing));
        resources.push("ingress.yaml".to_owned());
    }
    if let Some(image) = kpack::image(&app) {
        files.push(yaml_file(dir.join("kpack-image.yaml"), &image));
        resources.push("kpack-image.yaml".to_owned());
    }
    if let Some(wf) = workflow::workflow(&app) {
        files.push(RenderedFile {
            path: dir.join("ci").join("build-image.yml"),
            contents: format!(
                "{header}# Copy to the application repository as .github/workflows/goldenpath-build-{}.yml\n{}{}",
                app.env_name(),
                workflow::pin_comment(&wf),
                yaml::to_yaml(&wf)
            ),
        });
    }
    files.push(yaml_file(
        dir.join("kustomization.yaml"),
        &runtime::kustomization(&app, &resources, digest),
    ));
    files.push(RenderedFile {
        path: dir.join("README.md"),
        contents: readme::readme(&app),
    });
    let argo_dir = PathBuf::from("argocd").join(app.env_name());
    files.push(yaml_file(
        argo_dir.join(format!("{}.yaml", app.name())),
        &argocd::application(&app),
    ));
    if let Some(updater) = argocd::image_updater(&app) {
        files.push(yaml_file(
            argo_dir.join(format!("{}-image-updater.yaml", app.name())),
            &updater,
        ));
    }
    Ok(files)
}
