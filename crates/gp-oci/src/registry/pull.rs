//! Pulls: manifests by tag then by digest (indexes followed within a depth and a count limit, each manifest once),
//! blobs streamed into exclusive temporary files and renamed into the layout once verified.

use std::collections::HashSet;
use std::io::Write;

use oci_client::{Reference, RegistryOperation};
use serde_json::Value;

use super::error::{ErrorKind, Failure};
use super::fetch::Auth;
use super::{ACCEPT, MAX_INDEX_DEPTH, MAX_MANIFESTS, Registry, RegistryError, oci_ref};
use crate::digest::{Digest, HashingWriter};
use crate::layout::{Desc, Kind, Layout, LayoutError};
use crate::reference::RegistryRef;
use crate::spec::ManifestOrIndex;

/// What one pull carries from manifest to manifest.
struct PullState<'a> {
    layout: &'a Layout,
    with_layers: bool,
    auth: Auth,
    /// Manifests already pulled (an index naming one twice, or two indexes sharing one, fetch it once).
    visited: HashSet<Digest>,
}

impl Registry {
    /// Pulls `source` into `layout` (every blob verified) and returns the top descriptor.
    pub fn pull(&self, source: &RegistryRef, layout: &Layout) -> Result<Desc, RegistryError> {
        self.pull_top(source, layout, true)
    }

    /// Pulls only manifests and configs: enough to read and re-compose an image (a rebase) whose layers stay in
    /// the registry. The layout then names layers it does not hold; [`Registry::push`] of an image made from it
    /// works as long as the target repository has (or can mount) them.
    pub fn pull_metadata(
        &self,
        source: &RegistryRef,
        layout: &Layout,
    ) -> Result<Desc, RegistryError> {
        self.pull_top(source, layout, false)
    }

    /// The manifest digest `source` (a tag) names now: a HEAD request, or a GET when the registry's HEAD answer
    /// carries no digest.
    pub fn current_digest(&self, source: &RegistryRef) -> Result<Digest, RegistryError> {
        let r = oci_ref(source);
        let auth = self.authenticate(&r, RegistryOperation::Pull)?;
        let accept = ACCEPT.join(", ");
        let head = self.retry("check manifest of", &r.whole(), || {
            self.http.manifest_digest(&r, &accept, &auth)
        })?;
        if let Some(d) = head.and_then(|d| d.parse::<Digest>().ok()) {
            return Ok(d);
        }
        let body = self.retry("pull manifest of", &r.whole(), || {
            self.http.manifest(&r, &accept, &auth)
        })?;
        Ok(Digest::of(&body))
    }

    fn pull_top(
        &self,
        source: &RegistryRef,
        layout: &Layout,
        with_layers: bool,
    ) -> Result<Desc, RegistryError> {
        let r = oci_ref(source);
        let auth = self.authenticate(&r, RegistryOperation::Pull)?;
        let mut state = PullState {
            layout,
            with_layers,
            auth,
            visited: HashSet::new(),
        };
        self.pull_inner(source, &mut state, 0)
    }

    /// Runs a GET with the pull's credentials, authenticating again once if the registry says they expired.
    fn with_auth<T>(
        &self,
        r: &Reference,
        state: &mut PullState<'_>,
        f: impl Fn(&Auth) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        match f(&state.auth) {
            Err(e)
                if e.kind() == Some(&ErrorKind::Unauthorized) && state.auth != Auth::Anonymous =>
            {
                state.auth = self.authenticate(r, RegistryOperation::Pull)?;
                f(&state.auth)
            }
            other => other,
        }
    }

    fn pull_inner(
        &self,
        source: &RegistryRef,
        state: &mut PullState<'_>,
        depth: usize,
    ) -> Result<Desc, RegistryError> {
        let r = oci_ref(source);
        let accept = ACCEPT.join(", ");
        let body = self.with_auth(&r, state, |auth| {
            self.retry("pull manifest of", &r.whole(), || {
                self.http.manifest(&r, &accept, auth)
            })
        })?;
        let actual = Digest::of(&body);
        if let Some(expected) = &source.digest
            && *expected != actual
        {
            return Err(RegistryError::DigestMismatch {
                reference: r.whole(),
                expected: expected.to_string(),
                actual,
            });
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| RegistryError::BadManifest {
            reference: r.whole(),
            message: e.to_string(),
        })?;
        let doc = ManifestOrIndex::from_value(&v);
        let media_type = doc.media_type_or_guess();
        let is_index = media_type.kind() == Some(Kind::Index);
        let desc = Desc::new(media_type, actual, body.len() as u64);
        let children: Vec<Value> = if is_index {
            doc.manifests.unwrap_or_default()
        } else {
            let mut c = vec![doc.config.unwrap_or(Value::Null)];
            c.extend(doc.layers.unwrap_or_default());
            c
        };
        for child in &children {
            let child = Desc::parse(child, state.layout.root()).map_err(|e| match e {
                LayoutError::BadDescriptor {
                    field,
                    problem,
                    expected,
                    ..
                } => RegistryError::BadDescriptor {
                    reference: r.whole(),
                    message: format!("`{field}` {problem}; expected {expected}"),
                },
                other => other.into(),
            })?;
            if is_index {
                if depth + 1 >= MAX_INDEX_DEPTH {
                    return Err(RegistryError::TooDeep {
                        reference: oci_ref(source).whole(),
                        digest: child.digest,
                    });
                }
                if !state.visited.insert(child.digest.clone()) {
                    continue;
                }
                if state.visited.len() > MAX_MANIFESTS {
                    return Err(RegistryError::TooManyManifests {
                        reference: r.whole(),
                    });
                }
                let by_digest = RegistryRef {
                    tag: None,
                    digest: Some(child.digest.clone()),
                    ..source.clone()
                };
                self.pull_inner(&by_digest, state, depth + 1)?;
            } else {
                if !state.layout.has_blob(&child.digest) {
                    let layout = state.layout;
                    self.with_auth(&r, state, |auth| self.pull_blob(&r, &child, layout, auth))?;
                }
                self.seen(&r, &child.digest);
            }
            if !state.with_layers && !is_index {
                break; // the config, first of `children`
            }
        }
        state.layout.write_blob(&body)?;
        Ok(desc)
    }

    /// Streams a blob into a temporary file created exclusively, with a random name, in the layout's
    /// `blobs/sha256` (never a path another process could have planted), verifies it, then renames it into place.
    fn pull_blob(
        &self,
        r: &Reference,
        blob: &Desc,
        layout: &Layout,
        auth: &Auth,
    ) -> Result<(), RegistryError> {
        let digest = blob.digest.to_string();
        self.report(&super::Step::Pulling {
            digest: digest.clone(),
            bytes: blob.size,
        });
        let dir = blobs_dir(layout)?;
        let (tmp, actual) = self.retry("pull blob from", &r.whole(), || async {
            let local = |e: std::io::Error| {
                Failure::new(
                    ErrorKind::Other,
                    format!("cannot write a temporary file in `{}`: {e}", dir.display()),
                )
            };
            let tmp = tempfile::Builder::new()
                .prefix(".pull-")
                .tempfile_in(&dir)
                .map_err(local)?;
            let mut w = HashingWriter::new(std::io::BufWriter::new(tmp.as_file()));
            self.http.blob(r, &digest, blob.size, auth, &mut w).await?;
            w.flush().map_err(local)?;
            let (d, _, _) = w.finish();
            tmp.as_file().sync_all().map_err(local)?;
            Ok((tmp, d))
        })?;
        if actual != blob.digest {
            return Err(RegistryError::DigestMismatch {
                reference: r.whole(),
                expected: digest,
                actual,
            });
        }
        let dest = layout.blob_path(&blob.digest);
        tmp.persist(&dest).map_err(|e| LayoutError::Io {
            path: dest,
            source: e.error,
        })?;
        Ok(())
    }
}

/// The layout's `blobs/sha256`, refused unless it is a real directory (not a link to somewhere else).
fn blobs_dir(layout: &Layout) -> Result<std::path::PathBuf, RegistryError> {
    let root = layout.root();
    for path in [root.join("blobs"), root.join("blobs/sha256")] {
        let meta = fs_err::symlink_metadata(&path).map_err(|e| LayoutError::Io {
            path: path.clone(),
            source: e,
        })?;
        if !meta.file_type().is_dir() {
            return Err(RegistryError::NotADirectory { path });
        }
    }
    Ok(root.join("blobs/sha256"))
}
