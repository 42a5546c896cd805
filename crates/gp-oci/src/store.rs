//! The local image store: one directory that holds everything a build can fetch or recompute again.
//!
//! ```text
//! <root>/images        an OCI layout: pulled images, exported images, builders, cache images
//! <root>/layer-memo    what each layer's inputs produced last time (skips re-reading unchanged layers)
//! <root>/blob-sources  where each blob was seen in a registry (cross-repository mounts)
//! <root>/builders      unpacked builder root filesystems, one per builder digest
//! ```
//!
//! [`Store::open`] is the one place a reference (`oci:PATH[:TAG]` or a registry image) becomes an image to read:
//! a layout is opened where it is; a registry image is pulled into `images` (only the blobs it lacks).
//! [`Store::hold`] names an image in `images` under a tag of its own for as long as the returned guard lives, so
//! a pulled or exported image is not collected while it is being used, and the tag never outlives the work.

use std::path::{Path, PathBuf};

use crate::layout::{Desc, Layout, LayoutError};
use crate::memo::Memo;
use crate::reference::{ImageRef, RefError, RegistryRef};
use crate::registry::{Registry, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{reference}`: {source}")]
    Reference {
        reference: String,
        #[source]
        source: RefError,
    },
    #[error("`{reference}`: {source}")]
    Layout {
        reference: String,
        #[source]
        source: Box<LayoutError>,
    },
    #[error("`{reference}`: {source}")]
    Registry {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
}

impl StoreError {
    /// The registry error underneath, for callers that decide on its kind.
    #[must_use]
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            Self::Registry { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The local image store at one root directory; cheap to clone and safe to share between concurrent builds
/// (the layout locks its index, blobs are written through exclusive temp files).
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    insecure: Vec<String>,
    gate: Option<std::sync::Arc<dyn crate::registry::Gate>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("insecure", &self.insecure)
            .field("gated", &self.gate.is_some())
            .finish()
    }
}

/// An image [`Store::open`] found: the layout it is in, its descriptor, and whether it came from a registry.
#[derive(Debug, Clone)]
pub struct Opened {
    pub layout: Layout,
    pub desc: Desc,
    /// The registry image it was pulled from, if any.
    pub pulled_from: Option<RegistryRef>,
}

impl Store {
    /// The store at `root`; `insecure` names registry hosts that may be reached over plain HTTP (loopback ones
    /// always may).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>, insecure: &[String]) -> Self {
        Self {
            root: root.into(),
            insecure: insecure.to_vec(),
            gate: None,
        }
    }

    /// Every registry request made through this store passes `gate` (a campaign's rate limit).
    #[must_use]
    pub fn with_gate(mut self, gate: std::sync::Arc<dyn crate::registry::Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Registry hosts allowed over plain HTTP.
    #[must_use]
    pub fn insecure(&self) -> &[String] {
        &self.insecure
    }

    /// Where the store's layout is (it may not exist yet).
    #[must_use]
    pub fn images_path(&self) -> PathBuf {
        self.root.join("images")
    }

    /// The store's layout, created on first use.
    pub fn images(&self) -> Result<Layout, LayoutError> {
        Layout::create(&self.images_path())
    }

    /// The layer memo, falling back to the store's layout for blobs an output layout lacks.
    #[must_use]
    pub fn memo(&self) -> Memo {
        Memo::new(&self.root.join("layer-memo"))
    }

    /// Where unpacked builders are kept, one directory per builder digest.
    #[must_use]
    pub fn builder_dir(&self, desc: &Desc) -> PathBuf {
        self.root.join("builders").join(desc.digest.hex())
    }

    /// A registry client for `target` that remembers where blobs were seen and mounts them across repositories.
    pub fn registry(&self, target: &RegistryRef) -> Result<Registry, RegistryError> {
        let registry =
            Registry::new(target, &self.insecure)?.with_sources(&self.root.join("blob-sources"));
        Ok(match &self.gate {
            Some(g) => registry.with_gate(g.clone()),
            None => registry,
        })
    }

    /// Opens `reference`: a layout where it is, a registry image pulled into the store. `progress` hears each
    /// blob of a pull.
    pub fn open(
        &self,
        reference: &str,
        progress: Option<crate::registry::Progress>,
    ) -> Result<Opened, StoreError> {
        let parsed = reference
            .parse::<ImageRef>()
            .map_err(|source| StoreError::Reference {
                reference: reference.to_owned(),
                source,
            })?;
        let layout_err = |source| StoreError::Layout {
            reference: reference.to_owned(),
            source: Box::new(source),
        };
        match parsed {
            ImageRef::Layout { path, tag } => {
                let layout = Layout::open(&path).map_err(layout_err)?;
                let desc = layout.resolve(tag.as_deref()).map_err(layout_err)?;
                Ok(Opened {
                    layout,
                    desc,
                    pulled_from: None,
                })
            }
            ImageRef::Registry(r) => {
                let layout = self.images().map_err(layout_err)?;
                let registry_err = |source| StoreError::Registry {
                    reference: reference.to_owned(),
                    source: Box::new(source),
                };
                let mut registry = self.registry(&r).map_err(registry_err)?;
                if let Some(p) = progress {
                    registry = registry.with_progress(p);
                }
                let desc = registry.pull(&r, &layout).map_err(registry_err)?;
                Ok(Opened {
                    layout,
                    desc,
                    pulled_from: Some(r),
                })
            }
        }
    }

    /// Tags `desc` in the store's layout as `<what>-<unique>` until the guard is dropped.
    pub fn hold(&self, what: &str, desc: &Desc) -> Result<Held, LayoutError> {
        let layout = self.images()?;
        let tag = format!("{what}-{}", crate::layout::unique_suffix());
        layout.set_tag(&tag, desc)?;
        Ok(Held { layout, tag })
    }

    /// A fresh tag in the store's layout for an image about to be written there, removed when the guard drops.
    pub fn reserve(&self, what: &str) -> Result<Held, LayoutError> {
        Ok(Held {
            layout: self.images()?,
            tag: format!("{what}-{}", crate::layout::unique_suffix()),
        })
    }
}

/// A tag in the store's layout that is removed when this is dropped.
#[derive(Debug)]
pub struct Held {
    layout: Layout,
    tag: String,
}

impl Held {
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    #[must_use]
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `oci:<store>:<tag>`, for code that takes a reference.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("oci:{}:{}", self.layout.root().display(), self.tag)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.layout.untag(&self.tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_tag_lives_as_long_as_its_guard() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), &[]);
        let layout = store.images().unwrap();
        let digest = layout.write_blob(b"{}").unwrap();
        let desc = Desc::new(crate::layout::MEDIA_MANIFEST, digest, 2);
        let held = store.hold("pulled", &desc).unwrap();
        assert!(held.tag().starts_with("pulled-"));
        assert_eq!(
            layout.resolve(Some(held.tag())).unwrap().digest,
            desc.digest
        );
        let tag = held.tag().to_owned();
        drop(held);
        assert!(layout.resolve(Some(&tag)).is_err());
    }

    #[test]
    fn a_bad_reference_names_itself() {
        let store = Store::new("/nonexistent", &[]);
        let e = store.open("oci:", None).unwrap_err();
        assert!(e.to_string().starts_with("`oci:`"), "{e}");
    }
}
