//! Reading images from their registries: manifest and config only, into the campaign's layout (blobs, no index),
//! through one client per registry per worker, every request through the campaign's gate.

use std::collections::HashMap;
use std::sync::Arc;

use gp_oci::image::read_image;
use gp_oci::layout::{Desc, Layout};
use gp_oci::reference::RegistryRef;
use gp_oci::registry::{Gate, Registry, RegistryError};

use crate::facts::{BaseFacts, ImageFacts};

/// A worker's registry clients, one per registry host, made on first use.
pub struct Clients {
    insecure: Vec<String>,
    gate: Arc<dyn Gate>,
    by_host: HashMap<String, Registry>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("hosts", &self.by_host.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Clients {
    #[must_use]
    pub fn new(insecure: &[String], gate: Arc<dyn Gate>) -> Self {
        Self {
            insecure: insecure.to_vec(),
            gate,
            by_host: HashMap::new(),
        }
    }

    /// The client for `r`'s registry.
    pub fn get(&mut self, r: &RegistryRef) -> Result<&Registry, RegistryError> {
        if !self.by_host.contains_key(&r.registry) {
            let client = Registry::new(r, &self.insecure)?.with_gate(self.gate.clone());
            self.by_host.insert(r.registry.clone(), client);
        }
        Ok(&self.by_host[&r.registry])
    }
}

/// An image as read: its manifest descriptor (in the campaign layout), its layers and its facts.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub desc: Desc,
    pub layers: Vec<Desc>,
    pub facts: ImageFacts,
}

/// Why an image could not be read, with the registry error's kind when there is one (for retries).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InspectError {
    pub message: String,
    /// Failed the way an overloaded or flaky registry fails (429, 5xx, timeouts): worth trying again later.
    pub retryable: bool,
    /// The registry could not be reached at all (a fleet stops early for that).
    pub unreachable: bool,
}

impl InspectError {
    fn from_registry(e: &RegistryError) -> Self {
        let kind = e.kind();
        Self {
            message: e.to_string(),
            retryable: kind.is_some_and(gp_oci::registry::ErrorKind::retryable),
            unreachable: matches!(kind, Some(gp_oci::registry::ErrorKind::Unreachable)),
        }
    }

    fn other(message: String) -> Self {
        Self {
            message,
            retryable: false,
            unreachable: false,
        }
    }
}

/// Reads `r` (manifest by tag, then its config) into `layout`.
pub fn inspect(
    clients: &mut Clients,
    layout: &Layout,
    r: &RegistryRef,
) -> Result<Inspected, InspectError> {
    let registry = clients
        .get(r)
        .map_err(|e| InspectError::from_registry(&e))?;
    let top = registry
        .pull_metadata(r, layout)
        .map_err(|e| InspectError::from_registry(&e))?;
    let image = read_image(layout, &top).map_err(|e| InspectError::other(e.to_string()))?;
    // The digest the tag names (an index's, for a multi-platform image): what a later check compares with.
    let mut facts = ImageFacts::read(top.digest.to_string(), &image.config);
    facts.index = top.media_type.kind() == Some(gp_oci::layout::Kind::Index);
    Ok(Inspected {
        facts,
        desc: image.manifest_desc,
        layers: image.layers,
    })
}

/// Reads a run image or builder `reference` into `layout`: a registry image (with its layers when `with_layers`:
/// a run image on another registry than an app is pulled whole, to be uploaded there), or, for a builder, an
/// `oci:` layout read where it is.
pub fn inspect_base(
    clients: &mut Clients,
    layout: &Layout,
    reference: &str,
    with_layers: bool,
) -> Result<(Desc, BaseFacts), InspectError> {
    let r = match reference.parse::<gp_oci::reference::ImageRef>() {
        Ok(gp_oci::reference::ImageRef::Registry(r)) => r,
        Ok(gp_oci::reference::ImageRef::Layout { path, tag }) if !with_layers => {
            // A builder on this machine (rebuilds run here): read where it is.
            let local = Layout::open(&path).map_err(|e| InspectError::other(e.to_string()))?;
            let top = local
                .resolve(tag.as_deref())
                .map_err(|e| InspectError::other(e.to_string()))?;
            let image = read_image(&local, &top).map_err(|e| InspectError::other(e.to_string()))?;
            return Ok((
                image.manifest_desc.clone(),
                BaseFacts::read(
                    reference.to_owned(),
                    image.manifest_desc.digest.to_string(),
                    &image.config,
                ),
            ));
        }
        Ok(gp_oci::reference::ImageRef::Layout { .. }) => {
            return Err(InspectError::other(format!(
                "`{reference}`: a fleet's run image is a registry image (`registry/repository:tag`); push the \
                 layout first (`goldenpath image copy`)"
            )));
        }
        Err(e) => return Err(InspectError::other(e.to_string())),
    };
    let registry = clients
        .get(&r)
        .map_err(|e| InspectError::from_registry(&e))?;
    let top = if with_layers {
        registry.pull(&r, layout)
    } else {
        registry.pull_metadata(&r, layout)
    }
    .map_err(|e| InspectError::from_registry(&e))?;
    let image = read_image(layout, &top).map_err(|e| InspectError::other(e.to_string()))?;
    Ok((
        image.manifest_desc.clone(),
        BaseFacts::read(
            reference.to_owned(),
            image.manifest_desc.digest.to_string(),
            &image.config,
        ),
    ))
}
