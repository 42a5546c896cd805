//! Registry transport, wrapping the `oci-client` crate behind a blocking API: credentials from the docker config,
//! HEAD before upload, cross-repository mount, manifests pushed last (so a tag never names a half-pushed image),
//! digest verification of everything pulled, retries with backoff on server errors and dropped connections, and
//! plain HTTP only for loopback registries or ones named with `--insecure-registry`.

use std::io::Write;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::Value;

use crate::auth::{AuthError, Credentials, credentials_for};
use crate::digest::{Digest, HashingWriter};
use crate::layout::{
    Desc, Layout, LayoutError, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_INDEX,
    MEDIA_MANIFEST,
};
use crate::reference::RegistryRef;

const ACCEPT: &[&str] = &[
    MEDIA_MANIFEST,
    MEDIA_INDEX,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_LIST,
];
const ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{operation} `{reference}` failed: {message}")]
    Request {
        operation: &'static str,
        reference: String,
        message: String,
    },
    #[error(
        "`{reference}` sent content that does not match its digest: expected {expected}, got {actual}"
    )]
    DigestMismatch {
        reference: String,
        expected: String,
        actual: Digest,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
    #[error("manifest of `{reference}` is not valid JSON: {message}")]
    BadManifest { reference: String, message: String },
}

/// What a push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushStats {
    pub uploaded: usize,
    pub present: usize,
    pub mounted: usize,
    pub bytes: u64,
}

/// A sink for progress lines.
pub type Progress = Box<dyn Fn(&str) + Send + Sync>;

pub struct Registry {
    client: Client,
    rt: tokio::runtime::Runtime,
    auth: RegistryAuth,
    /// Called with one line per blob transferred (progress for long copies).
    progress: Option<Progress>,
    /// Where blobs were seen, for cross-repository mounts.
    sources: Option<crate::sources::BlobSources>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Loopback hosts talk plain HTTP; others only when named.
fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

fn oci_ref(r: &RegistryRef) -> Reference {
    match (&r.tag, &r.digest) {
        (_, Some(d)) => {
            Reference::with_digest(r.registry.clone(), r.repository.clone(), d.to_string())
        }
        (Some(t), None) => Reference::with_tag(r.registry.clone(), r.repository.clone(), t.clone()),
        (None, None) => {
            Reference::with_tag(r.registry.clone(), r.repository.clone(), "latest".into())
        }
    }
}

fn retryable(message: &str) -> bool {
    [
        "500",
        "502",
        "503",
        "504",
        "error sending request",
        "connection",
        "reset",
        "closed",
        "timed out",
        "EOF",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl Registry {
    /// A client for `target`'s registry; `insecure` names extra hosts allowed to use plain HTTP.
    pub fn new(target: &RegistryRef, insecure: &[String]) -> Result<Self, RegistryError> {
        let mut plain: Vec<String> = insecure.to_vec();
        if is_loopback(&target.registry) {
            plain.push(target.registry.clone());
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            // One PUT per blob (the blob is in memory anyway): a chunked push of 4 MiB PATCH requests took three
            // times as long against a loopback registry.
            use_monolithic_push: true,
            ..ClientConfig::default()
        };
        let auth = match credentials_for(&target.registry)? {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        Ok(Self {
            client: Client::new(config),
            rt,
            auth,
            progress: None,
            sources: None,
        })
    }

    /// Remembers where blobs were pushed or pulled (in `dir`) and mounts them from there when pushing to another
    /// repository of the same registry.
    #[must_use]
    pub fn with_sources(mut self, dir: &std::path::Path) -> Self {
        self.sources = Some(crate::sources::BlobSources::new(dir));
        self
    }

    fn seen(&self, r: &Reference, digest: &Digest) {
        if let Some(s) = &self.sources {
            s.record(digest, r.registry(), r.repository());
        }
    }

    /// Reports each blob as it is checked, mounted, uploaded or pulled.
    #[must_use]
    pub fn with_progress(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    fn report(&self, line: &str) {
        if let Some(p) = &self.progress {
            p(line);
        }
    }

    fn retry<T, F, Fut>(
        &self,
        operation: &'static str,
        reference: &str,
        f: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            match self.rt.block_on(f()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let message = e.to_string();
                    if attempt == ATTEMPTS || !retryable(&message) {
                        return Err(RegistryError::Request {
                            operation,
                            reference: reference.to_owned(),
                            message,
                        });
                    }
                    std::thread::sleep(delay);
                    delay *= 2;
                }
            }
        }
        unreachable!("the loop returns on the last attempt")
    }

    fn authenticate(&self, r: &Reference, op: RegistryOperation) -> Result<(), RegistryError> {
        let name = r.whole();
        self.retry("authenticate to", &name, || async {
            self.client.auth(r, &self.auth, op).await.map(|_| ())
        })
    }

    /// Pushes the image `desc` names from `layout` to `target`: blobs first (skipping those the registry has,
    /// mounting from `mount_from` when given), the manifest last.
    pub fn push(
        &self,
        layout: &Layout,
        desc: &Desc,
        target: &RegistryRef,
        mount_from: Option<&RegistryRef>,
    ) -> Result<PushStats, RegistryError> {
        let r = oci_ref(target);
        self.authenticate(&r, RegistryOperation::Push)?;
        let mut stats = PushStats::default();
        self.push_desc(
            layout,
            desc,
            &r,
            mount_from.map(oci_ref).as_ref(),
            &mut stats,
        )?;
        let body = layout.read_blob(&desc.digest)?;
        let content_type = http_header(&desc.media_type);
        self.retry("push manifest to", &r.whole(), || {
            self.client
                .push_manifest_raw(&r, body.clone(), content_type.clone())
        })?;
        Ok(stats)
    }

    /// Uploads `blobs` of `layout` to `target`'s repository ahead of a manifest (skipping those it has, mounting
    /// from where they were seen); a later [`Registry::push`] of an image holding them finds them there.
    pub fn push_blobs(
        &self,
        layout: &Layout,
        blobs: &[Desc],
        target: &RegistryRef,
    ) -> Result<PushStats, RegistryError> {
        let r = oci_ref(target);
        self.authenticate(&r, RegistryOperation::Push)?;
        let mut stats = PushStats::default();
        for b in blobs {
            self.push_blob(layout, b, &r, None, &mut stats)?;
        }
        Ok(stats)
    }

    fn push_desc(
        &self,
        layout: &Layout,
        desc: &Desc,
        r: &Reference,
        mount: Option<&Reference>,
        stats: &mut PushStats,
    ) -> Result<(), RegistryError> {
        for child in layout.children(desc)? {
            if [MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST].contains(&child.media_type.as_str()) {
                // An index's manifests: their blobs, then the manifest by digest.
                self.push_desc(layout, &child, r, mount, stats)?;
                let by_digest = Reference::with_digest(
                    r.registry().into(),
                    r.repository().into(),
                    child.digest.to_string(),
                );
                let body = layout.read_blob(&child.digest)?;
                let ct = http_header(&child.media_type);
                self.retry("push manifest to", &by_digest.whole(), || {
                    self.client
                        .push_manifest_raw(&by_digest, body.clone(), ct.clone())
                })?;
            } else {
                self.push_blob(layout, &child, r, mount, stats)?;
            }
        }
        Ok(())
    }

    fn push_blob(
        &self,
        layout: &Layout,
        blob: &Desc,
        r: &Reference,
        mount: Option<&Reference>,
        stats: &mut PushStats,
    ) -> Result<(), RegistryError> {
        let digest = blob.digest.to_string();
        if self.retry("check blob in", &r.whole(), || {
            self.client.blob_exists(r, &digest)
        })? {
            stats.present += 1;
            self.report(&format!("exists    {digest}"));
            self.seen(r, &blob.digest);
            return Ok(());
        }
        // Configs are the image's own: only layers are worth a mount request. The caller's source first, then
        // repositories of this registry the blob was seen in.
        if !blob.media_type.contains("config") {
            let known: Vec<Reference> = self
                .sources
                .as_ref()
                .map(|s| s.repositories(&blob.digest, r.registry(), r.repository()))
                .unwrap_or_default()
                .into_iter()
                .take(3)
                .map(|repo| Reference::with_tag(r.registry().into(), repo, "latest".into()))
                .collect();
            for src in mount.into_iter().chain(known.iter()) {
                let mounted = self
                    .rt
                    .block_on(self.client.mount_blob(r, src, &digest))
                    .is_ok()
                    && self.retry("check blob in", &r.whole(), || {
                        self.client.blob_exists(r, &digest)
                    })?;
                if mounted {
                    stats.mounted += 1;
                    self.report(&format!("mounted   {digest} from {}", src.repository()));
                    self.seen(r, &blob.digest);
                    return Ok(());
                }
            }
        }
        let bytes = layout.read_blob(&blob.digest)?;
        stats.bytes += bytes.len() as u64;
        self.report(&format!("uploading {digest} ({} bytes)", bytes.len()));
        let data = bytes::Bytes::from(bytes);
        self.retry("upload blob to", &r.whole(), || {
            self.client.push_blob(r, data.clone(), &digest)
        })?;
        stats.uploaded += 1;
        self.seen(r, &blob.digest);
        Ok(())
    }

    /// Pulls `source` into `layout` (every blob verified) and returns the top descriptor.
    pub fn pull(&self, source: &RegistryRef, layout: &Layout) -> Result<Desc, RegistryError> {
        self.pull_inner(source, layout, true)
    }

    /// Pulls only manifests and configs: enough to read and re-compose an image (a rebase) whose layers stay in
    /// the registry. The layout then names layers it does not hold; [`Registry::push`] of an image made from it
    /// works as long as the target repository has (or can mount) them.
    pub fn pull_metadata(
        &self,
        source: &RegistryRef,
        layout: &Layout,
    ) -> Result<Desc, RegistryError> {
        self.pull_inner(source, layout, false)
    }

    fn pull_inner(
        &self,
        source: &RegistryRef,
        layout: &Layout,
        with_layers: bool,
    ) -> Result<Desc, RegistryError> {
        let r = oci_ref(source);
        self.authenticate(&r, RegistryOperation::Pull)?;
        let (body, _) = self.retry("pull manifest of", &r.whole(), || {
            self.client.pull_manifest_raw(&r, &self.auth, ACCEPT)
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
        let media_type = v["mediaType"].as_str().map_or_else(
            || {
                if v["manifests"].is_array() {
                    MEDIA_INDEX
                } else {
                    MEDIA_MANIFEST
                }
                .to_owned()
            },
            str::to_owned,
        );
        let desc = Desc::new(&media_type, actual, body.len() as u64);
        let is_index = [MEDIA_INDEX, MEDIA_DOCKER_LIST].contains(&media_type.as_str());
        let children: Vec<Value> = if is_index {
            v["manifests"].as_array().cloned().unwrap_or_default()
        } else {
            let mut c = vec![v["config"].clone()];
            c.extend(v["layers"].as_array().cloned().unwrap_or_default());
            c
        };
        for child in &children {
            let child = Desc::parse(child, layout.root())?;
            if is_index {
                let by_digest = RegistryRef {
                    tag: None,
                    digest: Some(child.digest.clone()),
                    ..source.clone()
                };
                self.pull_inner(&by_digest, layout, with_layers)?;
            } else {
                if !layout.has_blob(&child.digest) {
                    self.pull_blob(&r, &child, layout)?;
                }
                self.seen(&r, &child.digest);
            }
            if !with_layers && !is_index {
                break; // the config, first of `children`
            }
        }
        layout.write_blob(&body)?;
        Ok(desc)
    }

    fn pull_blob(&self, r: &Reference, blob: &Desc, layout: &Layout) -> Result<(), RegistryError> {
        let digest = blob.digest.to_string();
        self.report(&format!("pulling   {digest} ({} bytes)", blob.size));
        let dir = layout.root().join("blobs/sha256");
        let tmp = dir.join(format!(
            ".pull-{}-{}",
            std::process::id(),
            blob.digest.hex()
        ));
        let result = self.retry("pull blob from", &r.whole(), || async {
            let mut stream = self.client.pull_blob_stream(r, digest.as_str()).await?;
            let file = std::fs::File::create(&tmp)
                .map_err(oci_client::errors::OciDistributionError::IoError)?;
            let mut w = HashingWriter::new(std::io::BufWriter::new(file));
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(oci_client::errors::OciDistributionError::IoError)?;
                w.write_all(&chunk)
                    .map_err(oci_client::errors::OciDistributionError::IoError)?;
            }
            let (d, _, buf) = w.finish();
            buf.into_inner()
                .map_err(|e| oci_client::errors::OciDistributionError::IoError(e.into_error()))?;
            Ok(d)
        });
        let actual = match result {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if actual != blob.digest {
            let _ = std::fs::remove_file(&tmp);
            return Err(RegistryError::DigestMismatch {
                reference: r.whole(),
                expected: digest,
                actual,
            });
        }
        let f = std::fs::File::open(&tmp).map_err(|source| LayoutError::Io {
            path: tmp.clone(),
            source,
        })?;
        let written = layout.write_blob_from(f, Some(&blob.digest));
        let _ = std::fs::remove_file(&tmp);
        written?;
        Ok(())
    }
}

fn http_header(media_type: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| http::HeaderValue::from_static(MEDIA_MANIFEST))
}
