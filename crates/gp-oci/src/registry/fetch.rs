//! Manifest and blob GETs done here rather than in `oci-client`, which reads manifests whole without a limit and
//! hides the `Retry-After` header: a first-byte timeout on every request, an idle timeout on every chunk of a
//! body, manifests refused past [`MAX_MANIFEST_BYTES`], blobs streamed to a writer and cut at their descriptor's
//! size.

use std::io::Write;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use oci_client::Reference;

use super::error::{ErrorKind, Failure, parse_retry_after};
use super::settings::RegistrySettings;

/// Manifests and indexes of real images are a few KiB (a 100-platform index is ~50 KiB); anything past 4 MiB is
/// refused before it is read whole.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// A whole manifest body must arrive within this many idle timeouts (two minutes by default: 4 MiB at 35 KB/s).
const MANIFEST_IDLE_PERIODS: u32 = 4;
/// Of an error answer, only this much is read (for its excerpt).
const MAX_ERROR_BODY: usize = 4096;

/// How a request presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Bearer(String),
    Basic(String, String),
}

#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    plain: Vec<String>,
    settings: RegistrySettings,
}

impl Http {
    pub fn new(plain: Vec<String>, settings: &RegistrySettings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("goldenpath/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            plain,
            settings: settings.clone(),
        })
    }

    fn url(&self, r: &Reference, kind: &str, name: &str) -> String {
        let registry = r.resolve_registry();
        let scheme = if self.plain.iter().any(|p| p == registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry}/v2/{}/{kind}/{name}", r.repository())
    }

    /// Sends a GET and waits for the answer's headers (at most the first-byte timeout); a non-success answer is a
    /// [`Failure`] carrying its status, `Retry-After` and an excerpt of its body.
    async fn get(
        &self,
        url: &str,
        accept: &str,
        auth: &Auth,
    ) -> Result<reqwest::Response, Failure> {
        self.send(reqwest::Method::GET, url, accept, auth, None)
            .await
    }

    /// [`Http::get`] with any method.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: &str,
        auth: &Auth,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<reqwest::Response, Failure> {
        let mut req = self.client.request(method, url);
        if !accept.is_empty() {
            req = req.header(http::header::ACCEPT, accept);
        }
        if let Some((bytes, content_type)) = body {
            req = req
                .header(http::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        req = match auth {
            Auth::Anonymous => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        let limit = self.settings.first_byte_timeout;
        let res = match tokio::time::timeout(limit, req.send()).await {
            Err(_) => {
                return Err(Failure::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within {} (first-byte timeout; raise `{}` if the registry is only slow)",
                        secs(limit),
                        super::settings::ENV_FIRST_BYTE_TIMEOUT
                    ),
                ));
            }
            Ok(r) => r.map_err(|e| Failure::from_reqwest(&e))?,
        };
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = Vec::new();
        let mut stream = res.bytes_stream();
        // An error's text is only for its excerpt: whatever arrives within one idle timeout, in all.
        let _ = tokio::time::timeout(self.settings.idle_timeout, async {
            while body.len() < MAX_ERROR_BODY {
                match stream.next().await {
                    Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
        })
        .await;
        body.truncate(MAX_ERROR_BODY);
        Err(Failure::status(status, retry_after, &body))
    }

    /// The next chunk of a body, or a timeout after the idle limit without a byte.
    async fn next_chunk<S>(&self, stream: &mut S) -> Result<Option<bytes::Bytes>, Failure>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Unpin,
    {
        let limit = self.settings.idle_timeout;
        match tokio::time::timeout(limit, stream.next()).await {
            Err(_) => Err(Failure::new(
                ErrorKind::Timeout,
                format!(
                    "no data for {} while reading the body (idle timeout; raise `{}` if the registry is only slow)",
                    secs(limit),
                    super::settings::ENV_IDLE_TIMEOUT
                ),
            )),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(Failure::from_reqwest(&e)),
            Ok(Some(Ok(c))) => Ok(Some(c)),
        }
    }

    /// The manifest `r` names (by tag or digest), at most [`MAX_MANIFEST_BYTES`].
    pub async fn manifest(
        &self,
        r: &Reference,
        accept: &str,
        auth: &Auth,
    ) -> Result<Vec<u8>, Failure> {
        let name = r.digest().or(r.tag()).unwrap_or("latest");
        let res = self
            .get(&self.url(r, "manifests", name), accept, auth)
            .await?;
        let too_large = |n: &str| {
            Failure::new(
                ErrorKind::TooLarge,
                format!(
                    "the manifest is {n} bytes, more than the {MAX_MANIFEST_BYTES}-byte limit for manifests; \
                     no real image has one this large"
                ),
            )
        };
        if let Some(n) = res.content_length().filter(|n| *n > MAX_MANIFEST_BYTES) {
            return Err(too_large(&n.to_string()));
        }
        let mut body = Vec::new();
        let mut stream = res.bytes_stream();
        // A manifest is small: one trickling in a byte at a time (each within the idle timeout) is cut off too.
        let whole = self.settings.idle_timeout * MANIFEST_IDLE_PERIODS;
        let read = tokio::time::timeout(whole, async {
            while let Some(chunk) = self.next_chunk(&mut stream).await? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_MANIFEST_BYTES {
                    return Err(too_large("over"));
                }
            }
            Ok(())
        })
        .await;
        match read {
            Ok(r) => r.map(|()| body),
            Err(_) => Err(Failure::new(
                ErrorKind::Timeout,
                format!(
                    "the manifest did not arrive within {} ({MANIFEST_IDLE_PERIODS} idle timeouts; raise `{}` if \
                     the registry is only slow)",
                    secs(whole),
                    super::settings::ENV_IDLE_TIMEOUT
                ),
            )),
        }
    }

    /// The digest the registry says `r` (a tag) names now, from a HEAD request's `Docker-Content-Digest`; `None`
    /// when the registry does not send one.
    pub async fn manifest_digest(
        &self,
        r: &Reference,
        accept: &str,
        auth: &Auth,
    ) -> Result<Option<String>, Failure> {
        let name = r.digest().or(r.tag()).unwrap_or("latest");
        let res = self
            .send(
                reqwest::Method::HEAD,
                &self.url(r, "manifests", name),
                accept,
                auth,
                None,
            )
            .await?;
        Ok(res
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned))
    }

    /// PUTs a manifest (`media_type`) under `r`'s tag or digest. Done here rather than in `oci-client` so that a
    /// 429's `Retry-After` reaches the retry loop (manifest pushes are what registries throttle hardest).
    pub async fn put_manifest(
        &self,
        r: &Reference,
        body: Vec<u8>,
        media_type: &str,
        auth: &Auth,
    ) -> Result<(), Failure> {
        let name = r.digest().or(r.tag()).unwrap_or("latest");
        self.send(
            reqwest::Method::PUT,
            &self.url(r, "manifests", name),
            "",
            auth,
            Some((body, media_type)),
        )
        .await
        .map(|_| ())
    }

    /// One page of a listing (`path` on `registry`, e.g. `/v2/_catalog?n=100`): its body (cut past 16 MiB) and its
    /// `Link` header.
    pub async fn page(
        &self,
        registry: &str,
        path: &str,
        auth: &Auth,
    ) -> Result<(Vec<u8>, Option<String>), Failure> {
        let scheme = if self.plain.iter().any(|p| p == registry) {
            "http"
        } else {
            "https"
        };
        let res = self
            .get(
                &format!("{scheme}://{registry}{path}"),
                "application/json",
                auth,
            )
            .await?;
        let link = res
            .headers()
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut stream = res.bytes_stream();
        while let Some(chunk) = self.next_chunk(&mut stream).await? {
            body.extend_from_slice(&chunk);
            if body.len() > super::catalog::MAX_PAGE_BYTES {
                return Err(Failure::catalog_too_large());
            }
        }
        Ok((body, link))
    }

    /// Streams blob `digest` of `r`'s repository into `w`, refusing more than `size` bytes.
    pub async fn blob(
        &self,
        r: &Reference,
        digest: &str,
        size: u64,
        auth: &Auth,
        w: &mut impl Write,
    ) -> Result<(), Failure> {
        let res = self.get(&self.url(r, "blobs", digest), "", auth).await?;
        let too_large = || {
            Failure::new(
                ErrorKind::TooLarge,
                format!("the registry sent more than the {size} bytes the descriptor names"),
            )
        };
        if res.content_length().is_some_and(|n| n > size) {
            return Err(too_large());
        }
        let mut stream = res.bytes_stream();
        let mut total = 0u64;
        while let Some(chunk) = self.next_chunk(&mut stream).await? {
            total += chunk.len() as u64;
            if total > size {
                return Err(too_large());
            }
            w.write_all(&chunk).map_err(|e| {
                Failure::new(ErrorKind::Other, format!("cannot write the blob: {e}"))
            })?;
        }
        Ok(())
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}
