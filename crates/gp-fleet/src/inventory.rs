//! Which images make up the fleet: the ones a contracts tree names (`<registry prefix>/<application>:<environment>`,
//! as `contract render` names them), explicit references, and every tag of every repository under a registry prefix.

use std::collections::BTreeMap;

use gp_contract::Report;
use gp_oci::reference::{ImageRef, RegistryRef};
use gp_oci::registry::{Registry, RegistryError};

/// One image of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// `registry/repository:tag`.
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// The contract's git URL and branch, when a contract names the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
}

impl Target {
    /// The registry reference (checked when the target was made).
    #[must_use]
    pub fn reference(&self) -> Option<RegistryRef> {
        match self.image.parse::<ImageRef>() {
            Ok(ImageRef::Registry(r)) => Some(r),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("`{reference}`: {message}")]
    Reference { reference: String, message: String },
    #[error("cannot list `{prefix}`: {source}")]
    Catalog {
        prefix: String,
        #[source]
        source: Box<RegistryError>,
    },
}

/// The images of the valid contracts in `report`.
#[must_use]
pub fn from_contracts(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    for file in &report.files {
        let Some(config) = &file.config else { continue };
        for c in file.contracts() {
            let Some(env) = config.environments.get(&c.environment) else {
                continue;
            };
            let app = gp_render::App {
                contract: c,
                config,
                env,
                source: "",
            };
            out.push(Target {
                image: app.image_tag(),
                environment: Some(c.environment.as_str().to_owned()),
                application: Some(c.application.as_str().to_owned()),
                git: Some(format!(
                    "{}#{}",
                    c.spec.source.git.url, c.spec.source.git.branch
                )),
            });
        }
    }
    out
}

/// Explicit references; a tag that names one of `environments` puts the image in that environment.
pub fn from_references(
    refs: &[String],
    environments: &[String],
) -> Result<Vec<Target>, InventoryError> {
    refs.iter()
        .map(|r| {
            let parsed = match r.parse::<ImageRef>() {
                Ok(ImageRef::Registry(p)) => p,
                Ok(ImageRef::Layout { .. }) => {
                    return Err(InventoryError::Reference {
                        reference: r.clone(),
                        message: "a fleet image is a registry image (`registry/repository:tag`); patch a layout \
                                  with `goldenpath rebase`"
                            .into(),
                    });
                }
                Err(e) => {
                    return Err(InventoryError::Reference {
                        reference: r.clone(),
                        message: e.to_string(),
                    });
                }
            };
            if parsed.digest.is_some() {
                return Err(InventoryError::Reference {
                    reference: r.clone(),
                    message: "a digest reference cannot be patched (a digest never moves); name the tag".into(),
                });
            }
            Ok(target_for(&parsed, environments))
        })
        .collect()
}

fn target_for(r: &RegistryRef, environments: &[String]) -> Target {
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    Target {
        image: format!("{}/{}:{tag}", r.registry, r.repository),
        environment: environments.iter().find(|e| **e == tag).cloned(),
        application: r.repository.rsplit('/').next().map(str::to_owned),
        git: None,
    }
}

/// Every tag of every repository under `prefix` (`registry[/path]`), from the registry's catalog.
pub fn from_registry(
    registry: &Registry,
    host: &str,
    path: &str,
    environments: &[String],
) -> Result<Vec<Target>, InventoryError> {
    let err = |e| InventoryError::Catalog {
        prefix: format!("{host}/{path}"),
        source: Box::new(e),
    };
    let mut out = Vec::new();
    for repo in registry.catalog(path).map_err(err)? {
        for tag in registry.tags(&repo).map_err(err)? {
            let r = RegistryRef {
                registry: host.to_owned(),
                repository: repo.clone(),
                tag: Some(tag),
                digest: None,
            };
            out.push(target_for(&r, environments));
        }
    }
    Ok(out)
}

/// Targets merged by image (a contract's details win over a bare reference's), sorted.
#[must_use]
pub fn merge(lists: impl IntoIterator<Item = Vec<Target>>) -> Vec<Target> {
    let mut by_image: BTreeMap<String, Target> = BTreeMap::new();
    for t in lists.into_iter().flatten() {
        by_image
            .entry(t.image.clone())
            .and_modify(|old| {
                if old.git.is_none() {
                    *old = t.clone();
                }
            })
            .or_insert(t);
    }
    by_image.into_values().collect()
}
