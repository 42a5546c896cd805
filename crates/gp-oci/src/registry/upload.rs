//! Blob uploads streamed from the layout's file (never read whole into memory), watched: a registry that stops
//! reading the body for the idle timeout fails the upload instead of leaving it blocked in a write forever.

use std::io::Read;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::Stream;
use oci_client::Reference;
use oci_client::errors::OciDistributionError;

use super::Registry;
use super::error::{ErrorKind, Failure};
use super::settings::ENV_IDLE_TIMEOUT;

/// Bytes read from the file per chunk of the body.
const CHUNK: usize = 256 * 1024;

/// How far a body has gone: bytes handed to the connection, and whether all were.
#[derive(Debug, Default)]
struct Sent {
    bytes: AtomicU64,
    done: AtomicBool,
}

/// The file's bytes as a body stream, counting what the connection takes.
fn body(
    file: std::fs::File,
    sent: Arc<Sent>,
) -> impl Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures_util::stream::unfold((file, sent), |(mut file, sent)| async move {
        let mut buf = vec![0; CHUNK];
        match file.read(&mut buf) {
            Ok(0) => {
                sent.done.store(true, Ordering::SeqCst);
                None
            }
            Ok(n) => {
                buf.truncate(n);
                sent.bytes.fetch_add(n as u64, Ordering::SeqCst);
                Some((Ok(bytes::Bytes::from(buf)), (file, sent)))
            }
            Err(e) => Some((Err(OciDistributionError::IoError(e)), (file, sent))),
        }
    })
}

/// Runs `fut` (an upload reading `sent`'s body), failing it when the body stops moving for `idle`; once the body
/// is all sent, the wait for the answer is the client's read timeout.
async fn watched<T>(
    fut: impl Future<Output = Result<T, OciDistributionError>>,
    sent: &Sent,
    idle: Duration,
) -> Result<T, Failure> {
    let mut fut = pin!(fut);
    let mut last = 0;
    loop {
        if let Ok(r) = tokio::time::timeout(idle, &mut fut).await {
            return r.map_err(|e| Failure::from_oci(&e));
        }
        let now = sent.bytes.load(Ordering::SeqCst);
        if now == last && !sent.done.load(Ordering::SeqCst) {
            return Err(Failure::new(
                ErrorKind::Timeout,
                format!(
                    "the registry took no data for {} s after {now} bytes of the body (idle timeout; \
                     raise `{ENV_IDLE_TIMEOUT}` if the registry is only slow)",
                    idle.as_secs_f64()
                ),
            ));
        }
        last = now;
    }
}

impl Registry {
    /// Uploads the blob in `path` (`size` bytes, `digest`) to `r`'s repository, retried as a whole.
    pub(super) fn upload_file(
        &self,
        r: &Reference,
        path: &Path,
        size: u64,
        digest: &str,
    ) -> Result<(), super::RegistryError> {
        self.retry("upload blob to", &r.whole(), || async {
            // Two requests (the upload session's POST, then the PUT of the body): the gate hears both.
            self.admit();
            let file = fs_err::File::open(path).map_err(|e| {
                Failure::new(
                    ErrorKind::Other,
                    format!("cannot read `{}`: {e}", path.display()),
                )
            })?;
            let sent = Arc::new(Sent::default());
            let upload = self.client.push_blob_stream(
                r,
                body(file.into_file(), sent.clone()),
                digest,
                Some(size),
            );
            watched(upload, &sent, self.settings.idle_timeout)
                .await
                .map(|_| ())
        })
    }
}
