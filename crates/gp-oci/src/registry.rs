//! Registry transport, wrapping the `oci-client` crate behind a blocking API: credentials from the docker config,
//! HEAD before upload, cross-repository mount, manifests pushed last (so a tag never names a half-pushed image),
//! digest verification of everything pulled, retries with backoff on server errors and dropped connections, and
//! plain HTTP only for loopback registries or ones named with `--insecure-registry`.

mod catalog;
mod error;
mod fetch;
mod pull;
mod settings;
mod upload;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use std::collections::HashSet;

use oci_client::{Client, Reference, RegistryOperation};

use crate::auth::{AuthError, Credentials, credentials_for};
use crate::digest::Digest;
use crate::layout::{
    Desc, Kind, Layout, LayoutError, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_INDEX,
    MEDIA_MANIFEST,
};
use crate::reference::RegistryRef;
pub use error::ErrorKind;
use error::backoff;
pub(crate) use error::{Failure, excerpt};
pub use fetch::MAX_MANIFEST_BYTES;
use fetch::{Auth, Http};
pub use settings::{
    ATTEMPTS, CONNECT_TIMEOUT, ENV_ATTEMPTS, ENV_CONNECT_TIMEOUT, ENV_FIRST_BYTE_TIMEOUT,
    ENV_IDLE_TIMEOUT, ENV_MAX_RETRY_WAIT, FIRST_BYTE_TIMEOUT, IDLE_TIMEOUT, MAX_RETRY_WAIT,
};
pub use settings::{RegistrySettings, SettingsError};

const ACCEPT: &[&str] = &[
    MEDIA_MANIFEST,
    MEDIA_INDEX,
    MEDIA_DOCKER_MANIFEST,
    MEDIA_DOCKER_LIST,
];
const ACCESS_UNKNOWN: u8 = 0;
const ACCESS_OPEN: u8 = 1;
const ACCESS_CHALLENGED: u8 = 2;

/// Indexes nest (an index of indexes of manifests) a level or two in real images; eight is far past that.
pub const MAX_INDEX_DEPTH: usize = 8;
/// Distinct manifests one pull fetches at most: multi-platform images have tens.
pub const MAX_MANIFESTS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{operation} `{reference}` failed: {message}")]
    Request {
        operation: &'static str,
        reference: String,
        kind: ErrorKind,
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
    #[error(
        "{operation} `{reference}`: the registry asked to wait {wait} s before retrying, longer than the {max} s \
         limit; try again later or raise `GOLDENPATH_REGISTRY_MAX_RETRY_WAIT`"
    )]
    RetryWaitTooLong {
        operation: &'static str,
        reference: String,
        wait: u64,
        max: u64,
    },
    #[error(
        "`{reference}` nests image indexes more than {MAX_INDEX_DEPTH} deep (at {digest}); refusing to follow it"
    )]
    TooDeep { reference: String, digest: Digest },
    #[error(
        "`{reference}` names more than {MAX_MANIFESTS} distinct manifests through its indexes; refusing to pull them"
    )]
    TooManyManifests { reference: String },
    #[error(
        "`{path}` is not a directory (a symbolic link or another file); blobs are only written into the layout's \
         own `blobs/sha256` directory: remove it and retry"
    )]
    NotADirectory { path: std::path::PathBuf },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("manifest of `{reference}` is not valid JSON: {message}")]
    BadManifest { reference: String, message: String },
    #[error("manifest of `{reference}` names a malformed descriptor: {message}")]
    BadDescriptor { reference: String, message: String },
}

impl RegistryError {
    /// The kind of a failed request, for callers that decide on it.
    #[must_use]
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Self::Request { kind, .. } => Some(kind),
            Self::DigestMismatch { .. } => Some(&ErrorKind::DigestMismatch),
            _ => None,
        }
    }
}

/// What a push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushStats {
    pub uploaded: usize,
    pub present: usize,
    pub mounted: usize,
    pub bytes: u64,
}

/// One blob of a push or pull, as it is checked, mounted, uploaded or pulled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The registry has it already.
    Exists {
        digest: String,
    },
    /// Mounted from another repository of the registry.
    Mounted {
        digest: String,
        from: String,
    },
    Uploading {
        digest: String,
        bytes: u64,
    },
    Pulling {
        digest: String,
        bytes: u64,
    },
}

impl Step {
    /// The bytes this step moves over the network.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        match self {
            Self::Uploading { bytes, .. } | Self::Pulling { bytes, .. } => *bytes,
            Self::Exists { .. } | Self::Mounted { .. } => 0,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exists { digest } => write!(f, "exists    {digest}"),
            Self::Mounted { digest, from } => write!(f, "mounted   {digest} from {from}"),
            Self::Uploading { digest, bytes } => write!(f, "uploading {digest} ({bytes} bytes)"),
            Self::Pulling { digest, bytes } => write!(f, "pulling   {digest} ({bytes} bytes)"),
        }
    }
}

/// A sink for progress steps.
pub type Progress = Box<dyn Fn(&Step) + Send + Sync>;

/// What every request to a registry passes before it is sent (each attempt of a retried one too): a rate limit
/// that waits for its turn, a counter. Shared between clients, so one limit holds across concurrent work.
pub trait Gate: Send + Sync {
    /// Called once per HTTP request about to go to `registry` (`host[:port]`); may block until it is allowed.
    fn admit(&self, registry: &str);

    /// Called when `registry` answered 429 (Too Many Requests) to a request that passed [`Gate::admit`].
    fn throttled(&self, registry: &str) {
        let _ = registry;
    }
}

pub struct Registry {
    client: Client,
    http: Http,
    rt: tokio::runtime::Runtime,
    auth: RegistryAuth,
    settings: RegistrySettings,
    /// Called with one line per blob transferred (progress for long copies).
    progress: Option<Progress>,
    /// Where blobs were seen, for cross-repository mounts.
    sources: Option<crate::sources::BlobSources>,
    /// The registry's `host[:port]`, as the gate hears it.
    host: String,
    gate: Option<std::sync::Arc<dyn Gate>>,
    /// What `/v2/` answered: [`ACCESS_UNKNOWN`], [`ACCESS_OPEN`] (no request needs credentials) or
    /// [`ACCESS_CHALLENGED`] (tokens or credentials needed), asked once.
    access: std::sync::atomic::AtomicU8,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("auth", &self.auth)
            .field("settings", &self.settings)
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

impl Registry {
    /// A client for `target`'s registry; `insecure` names extra hosts allowed to use plain HTTP. Timeouts and
    /// retries are the defaults overridden by the `GOLDENPATH_REGISTRY_*` variables.
    pub fn new(target: &RegistryRef, insecure: &[String]) -> Result<Self, RegistryError> {
        Self::with_settings(target, insecure, RegistrySettings::from_env()?)
    }

    /// [`Registry::new`] with explicit timeouts and retries.
    pub fn with_settings(
        target: &RegistryRef,
        insecure: &[String],
        settings: RegistrySettings,
    ) -> Result<Self, RegistryError> {
        let mut plain: Vec<String> = insecure.to_vec();
        if is_loopback(&target.registry) {
            plain.push(target.registry.clone());
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain.clone()),
            // One PUT per blob, streamed from the layout's file: a chunked push of 4 MiB PATCH requests took three
            // times as long against a loopback registry.
            use_monolithic_push: true,
            connect_timeout: Some(settings.connect_timeout),
            // A read (the answer's headers or the next bytes of a body) waits at most this long.
            read_timeout: Some(settings.first_byte_timeout.max(settings.idle_timeout)),
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
        let http = Http::new(plain, &settings).map_err(|e| RegistryError::Client(e.to_string()))?;
        Ok(Self {
            client: Client::new(config),
            http,
            rt,
            auth,
            settings,
            progress: None,
            sources: None,
            host: target.registry.clone(),
            gate: None,
            access: std::sync::atomic::AtomicU8::new(ACCESS_UNKNOWN),
        })
    }

    /// Every request passes `gate` before it is sent.
    #[must_use]
    pub fn with_gate(mut self, gate: std::sync::Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Lets the next request through the gate (if any).
    pub(crate) fn admit(&self) {
        if let Some(g) = &self.gate {
            g.admit(&self.host);
        }
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
    pub fn with_progress(mut self, f: impl Fn(&Step) + Send + Sync + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    fn report(&self, step: &Step) {
        if let Some(p) = &self.progress {
            p(step);
        }
    }

    /// Runs `f` until it succeeds, fails with a kind not worth retrying, or the attempts are used up; waits
    /// between attempts with exponential backoff and jitter, or as long as a 429's `Retry-After` asks (capped).
    fn retry<T, F, Fut>(
        &self,
        operation: &'static str,
        reference: &str,
        f: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let attempts = self.settings.attempts.max(1);
        let mut attempt = 1;
        loop {
            self.admit();
            let failure = match self.rt.block_on(f()) {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if matches!(failure.kind, ErrorKind::TooManyRequests { .. })
                && let Some(g) = &self.gate
            {
                g.throttled(&self.host);
            }
            let attempts = if failure.kind == ErrorKind::Unreachable {
                attempts.min(2)
            } else {
                attempts
            };
            if attempt >= attempts || !failure.kind.retryable() {
                let message = if attempt > 1 {
                    format!("{} (after {attempt} attempts)", failure.message)
                } else {
                    failure.message
                };
                return Err(RegistryError::Request {
                    operation,
                    reference: reference.to_owned(),
                    kind: failure.kind,
                    message,
                });
            }
            let wait = match failure.kind {
                ErrorKind::TooManyRequests {
                    retry_after: Some(wait),
                } => {
                    if wait > self.settings.max_retry_wait {
                        return Err(RegistryError::RetryWaitTooLong {
                            operation,
                            reference: reference.to_owned(),
                            wait: wait.as_secs(),
                            max: self.settings.max_retry_wait.as_secs(),
                        });
                    }
                    wait
                }
                _ => backoff(self.settings.backoff, attempt).min(self.settings.max_retry_wait),
            };
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// [`Registry::retry`] of an `oci-client` call, its errors sorted into kinds.
    fn retry_oci<T, F, Fut>(
        &self,
        operation: &'static str,
        reference: &str,
        f: F,
    ) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        self.retry(operation, reference, || {
            let fut = f();
            async move { fut.await.map_err(|e| Failure::from_oci(&e)) }
        })
    }

    /// Authenticates for `op` on `r`'s repository and returns what requests made here present.
    fn authenticate(&self, r: &Reference, op: RegistryOperation) -> Result<Auth, RegistryError> {
        use std::sync::atomic::Ordering;
        let access = self.access.load(Ordering::Relaxed);
        if matches!(self.auth, RegistryAuth::Anonymous) && access != ACCESS_CHALLENGED {
            if access == ACCESS_OPEN {
                return Ok(Auth::Anonymous);
            }
            // Asked once: a registry that answers `/v2/` without a challenge needs no token for anything. (Going
            // through `oci-client`'s own check instead would make it ask again before every later request.)
            let ping = self.retry("authenticate to", &r.whole(), || {
                self.http.page(&self.host, "/v2/", &Auth::Anonymous)
            });
            match ping {
                Ok(_) => {
                    self.access.store(ACCESS_OPEN, Ordering::Relaxed);
                    return Ok(Auth::Anonymous);
                }
                Err(e) if e.kind() == Some(&ErrorKind::Unauthorized) => {
                    self.access.store(ACCESS_CHALLENGED, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let name = r.whole();
        let token = self.retry_oci("authenticate to", &name, || {
            // `oci-client` asks `/v2/` for the challenge, then the token service: two requests at the gate.
            self.admit();
            self.client.auth(r, &self.auth, op)
        })?;
        Ok(match (token, &self.auth) {
            (Some(t), _) => Auth::Bearer(t),
            (None, RegistryAuth::Basic(u, p)) => Auth::Basic(u.clone(), p.clone()),
            (None, _) => Auth::Anonymous,
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
        self.push_onto(layout, desc, target, mount_from, &HashSet::new())
    }

    /// [`Registry::push`] to a repository known to hold the blobs in `present` (a manifest there names them, and
    /// a registry keeps what its manifests name): those are not checked again, and the other layers are mounted
    /// from `mount_from` before anything else is tried (a rebase: the new base layers are the run image's).
    pub fn push_onto(
        &self,
        layout: &Layout,
        desc: &Desc,
        target: &RegistryRef,
        mount_from: Option<&RegistryRef>,
        present: &HashSet<Digest>,
    ) -> Result<PushStats, RegistryError> {
        let r = oci_ref(target);
        let auth = self.authenticate(&r, RegistryOperation::Push)?;
        let mut stats = PushStats::default();
        let mut known = Known {
            present,
            done: HashSet::new(),
            mount_first: !present.is_empty() && mount_from.is_some(),
            auth,
        };
        self.push_desc(
            layout,
            desc,
            &r,
            mount_from.map(oci_ref).as_ref(),
            &mut known,
            &mut stats,
        )?;
        let body = layout.read_blob(&desc.digest)?;
        self.put_manifest(&r, &body, desc.media_type.as_str(), &known.auth)?;
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
        let auth = self.authenticate(&r, RegistryOperation::Push)?;
        let mut stats = PushStats::default();
        let mut known = Known {
            present: &HashSet::new(),
            done: HashSet::new(),
            mount_first: false,
            auth,
        };
        for b in blobs {
            self.push_blob(layout, b, &r, None, &mut known, &mut stats)?;
        }
        Ok(stats)
    }

    fn push_desc(
        &self,
        layout: &Layout,
        desc: &Desc,
        r: &Reference,
        mount: Option<&Reference>,
        known: &mut Known<'_>,
        stats: &mut PushStats,
    ) -> Result<(), RegistryError> {
        for child in layout.children(desc)? {
            if child.media_type.kind() == Some(Kind::Manifest) {
                // An index's manifests: their blobs, then the manifest by digest.
                self.push_desc(layout, &child, r, mount, known, stats)?;
                let by_digest = Reference::with_digest(
                    r.registry().into(),
                    r.repository().into(),
                    child.digest.to_string(),
                );
                let body = layout.read_blob(&child.digest)?;
                self.put_manifest(&by_digest, &body, child.media_type.as_str(), &known.auth)?;
            } else {
                self.push_blob(layout, &child, r, mount, known, stats)?;
            }
        }
        Ok(())
    }

    /// Mounts `blob` into `r`'s repository from `src`'s; `false` when the registry would not (it answers 201 only
    /// for a mounted blob), an error when it kept failing as an overloaded registry does.
    fn mounted(
        &self,
        r: &Reference,
        src: &Reference,
        blob: &Desc,
        stats: &mut PushStats,
    ) -> Result<bool, RegistryError> {
        let digest = blob.digest.to_string();
        match self.retry_oci("mount blob into", &r.whole(), || {
            self.client.mount_blob(r, src, &digest)
        }) {
            Ok(()) => {}
            // Retried and still failing as a registry under strain does: that is an error, not "cannot mount".
            Err(e) if e.kind().is_some_and(ErrorKind::retryable) => return Err(e),
            Err(_) => return Ok(false),
        }
        stats.mounted += 1;
        self.report(&Step::Mounted {
            digest,
            from: src.repository().to_owned(),
        });
        self.seen(r, &blob.digest);
        Ok(true)
    }

    fn push_blob(
        &self,
        layout: &Layout,
        blob: &Desc,
        r: &Reference,
        mount: Option<&Reference>,
        known: &mut Known<'_>,
        stats: &mut PushStats,
    ) -> Result<(), RegistryError> {
        // A blob pushed earlier in this push (an index's manifests share layers) or known to be there.
        if !known.done.insert(blob.digest.clone()) {
            return Ok(());
        }
        if known.present.contains(&blob.digest) {
            stats.present += 1;
            return Ok(());
        }
        let digest = blob.digest.to_string();
        let is_layer = !blob.media_type.is_config();
        // A rebase's new base layers are in the run image's repository: mounted straight away (a registry answers
        // 201 whether or not the target had the blob).
        if is_layer
            && known.mount_first
            && let Some(src) = mount
            && self.mounted(r, src, blob, stats)?
        {
            return Ok(());
        }
        // A rebase's config is new by construction (it names the new base layers): asking whether the registry
        // has it costs a request that almost always answers no, while uploading a few KiB again when it does
        // (a rerun after an interrupted push) is harmless. Measured on a fleet of 1,000: one request per image.
        let worth_checking = is_layer || !known.mount_first;
        if worth_checking
            && self.retry_oci("check blob in", &r.whole(), || {
                self.client.blob_exists(r, &digest)
            })?
        {
            stats.present += 1;
            self.report(&Step::Exists {
                digest: digest.clone(),
            });
            self.seen(r, &blob.digest);
            return Ok(());
        }
        // Configs are the image's own: only layers are worth a mount request. The caller's source first, then
        // repositories of this registry the blob was seen in.
        if is_layer {
            let seen_in: Vec<Reference> = self
                .sources
                .as_ref()
                .map(|s| s.repositories(&blob.digest, r.registry(), r.repository()))
                .unwrap_or_default()
                .into_iter()
                .take(3)
                .map(|repo| Reference::with_tag(r.registry().into(), repo, "latest".into()))
                .collect();
            let first = if known.mount_first { None } else { mount };
            for src in first.into_iter().chain(seen_in.iter()) {
                if self.mounted(r, src, blob, stats)? {
                    return Ok(());
                }
            }
        }
        if !layout.has_blob(&blob.digest) {
            return Err(LayoutError::MissingBlob {
                layout: layout.root().to_path_buf(),
                digest: blob.digest.clone(),
            }
            .into());
        }
        let path = layout.blob_path(&blob.digest);
        let size = fs_err::metadata(&path)
            .map_err(|e| LayoutError::Io {
                path: path.clone(),
                source: e,
            })?
            .len();
        stats.bytes += size;
        self.report(&Step::Uploading {
            digest: digest.clone(),
            bytes: size,
        });
        self.upload_file(r, &path, size, &digest)?;
        stats.uploaded += 1;
        self.seen(r, &blob.digest);
        Ok(())
    }
}

impl Registry {
    /// PUTs a manifest with retries (a 429's `Retry-After` honoured), authenticating again once if the
    /// credentials expired.
    fn put_manifest(
        &self,
        r: &Reference,
        body: &[u8],
        media_type: &str,
        auth: &Auth,
    ) -> Result<(), RegistryError> {
        let media_type = http_header(media_type);
        let media_type = media_type.to_str().unwrap_or(MEDIA_MANIFEST);
        let put = |auth: &Auth| {
            self.retry("push manifest to", &r.whole(), || {
                self.http.put_manifest(r, body.to_vec(), media_type, auth)
            })
        };
        match put(auth) {
            Err(e) if e.kind() == Some(&ErrorKind::Unauthorized) && *auth != Auth::Anonymous => {
                put(&self.authenticate(r, RegistryOperation::Push)?)
            }
            other => other,
        }
    }
}

/// Blobs a push need not check: known to be in the target repository, or already handled by this push.
struct Known<'a> {
    present: &'a HashSet<Digest>,
    done: HashSet<Digest>,
    /// Blobs not `present` come from the mount source: mount before checking.
    mount_first: bool,
    /// How the push's own requests (manifests) present themselves.
    auth: Auth,
}

fn http_header(media_type: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(media_type)
        .unwrap_or_else(|_| http::HeaderValue::from_static(MEDIA_MANIFEST))
}
