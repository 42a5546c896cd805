//! Registry I/O against a real registry behind the fault proxy: stalls end in timeouts naming the registry and the
//! operation, 429s and 5xx are retried (honouring `Retry-After`) with the expected number of requests, cut
//! connections are retried, and a failed pull leaves the target layout without stray files.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gp_oci::image::{ImageConfig, add_layer, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;
use gp_oci::reference::{ImageRef, RegistryRef};
use gp_oci::registry::{ErrorKind, Registry, RegistryError, RegistrySettings};

use crate::fault_proxy::{Fault, FaultProxy, Rule};
use crate::registry_server::{RegistryServer, have, snapshot};

/// One-second timeouts, two attempts, short backoff: every failure here ends within a few seconds.
pub fn quick() -> RegistrySettings {
    RegistrySettings {
        connect_timeout: Duration::from_secs(1),
        first_byte_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        attempts: 2,
        max_retry_wait: Duration::from_secs(5),
        backoff: Duration::from_millis(50),
    }
}

pub fn reference(s: &str) -> RegistryRef {
    match s.parse::<ImageRef>().unwrap() {
        ImageRef::Registry(r) => r,
        ImageRef::Layout { .. } => panic!("not a registry reference: {s}"),
    }
}

/// An image with one ~256 KiB incompressible layer in a new layout under `dir`, pushed to `port` as `app:v1`.
fn pushed(dir: &Path, port: u16) -> Layout {
    let layout = Layout::create(&dir.join("src")).unwrap();
    let mut x = 0x1234_5678_u32;
    let content: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    let entries = vec![Entry {
        path: "data.bin".into(),
        kind: Kind::File(Source::Bytes(content)),
        executable: false,
    }];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    let desc = write_image(&layout, "v1", &[layer], &ImageConfig::default()).unwrap();
    let target = reference(&format!("127.0.0.1:{port}/app:v1"));
    Registry::with_settings(&target, &[], quick())
        .unwrap()
        .push(&layout, &desc, &target, None)
        .unwrap();
    layout
}

struct Case {
    _tmp: tempfile::TempDir,
    reg: RegistryServer,
    proxy: FaultProxy,
    dest: Layout,
    source: RegistryRef,
}

fn case(rules: Vec<Rule>) -> Option<Case> {
    if !have("docker-registry") {
        return None;
    }
    let reg = RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    pushed(tmp.path(), reg.port);
    let proxy = FaultProxy::start(reg.port, rules);
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let source = reference(&format!("127.0.0.1:{}/app:v1", proxy.port));
    Some(Case {
        _tmp: tmp,
        reg,
        proxy,
        dest,
        source,
    })
}

fn pull(
    c: &Case,
    settings: RegistrySettings,
) -> (Result<gp_oci::layout::Desc, RegistryError>, Duration) {
    let start = Instant::now();
    let reg = Registry::with_settings(&c.source, &[], settings).unwrap();
    (reg.pull(&c.source, &c.dest), start.elapsed())
}

fn request_kind(e: &RegistryError) -> ErrorKind {
    e.kind()
        .cloned()
        .unwrap_or_else(|| panic!("not a request error: {e}"))
}

/// The pull failed and left the destination as it was created: no blobs, no temp files.
fn assert_untouched(c: &Case, before: &std::collections::BTreeMap<std::path::PathBuf, String>) {
    assert_eq!(
        &snapshot(c.dest.root()),
        before,
        "the destination layout changed"
    );
}

#[test]
fn a_stall_before_the_manifest_headers_times_out_per_attempt() {
    let Some(c) = case(vec![Rule::new(
        "GET",
        "/manifests/",
        Fault::StallBeforeHeaders,
    )]) else {
        return;
    };
    let before = snapshot(c.dest.root());
    let (r, took) = pull(&c, quick());
    let e = r.unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout);
    assert_eq!(
        e.to_string(),
        format!(
            "pull manifest of `127.0.0.1:{}/app:v1` failed: no answer within 1 s (first-byte timeout; raise \
             `GOLDENPATH_REGISTRY_FIRST_BYTE_TIMEOUT` if the registry is only slow) (after 2 attempts)",
            c.proxy.port
        )
    );
    assert_eq!(c.proxy.count("GET", "/manifests/"), 2);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_untouched(&c, &before);
}

#[test]
fn a_stall_mid_manifest_times_out_when_idle() {
    let Some(c) = case(vec![Rule::new("GET", "/manifests/", Fault::StallMidBody)]) else {
        return;
    };
    let before = snapshot(c.dest.root());
    let (r, took) = pull(&c, quick());
    let e = r.unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout);
    assert!(
        e.to_string().starts_with(&format!(
            "pull manifest of `127.0.0.1:{}/app:v1` failed: no data for 1 s while reading the body (idle timeout",
            c.proxy.port
        )),
        "{e}"
    );
    assert_eq!(c.proxy.count("GET", "/manifests/"), 2);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_untouched(&c, &before);
}

#[test]
fn a_stall_mid_blob_times_out_and_leaves_no_temp_file() {
    let Some(c) = case(vec![Rule::new(
        "GET",
        "/blobs/sha256:",
        Fault::StallMidBody,
    )]) else {
        return;
    };
    let before = snapshot(c.dest.root());
    let (r, took) = pull(&c, quick());
    let e = r.unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout);
    assert!(
        e.to_string().starts_with(&format!(
            "pull blob from `127.0.0.1:{}/app:v1` failed: no data for 1 s while reading the body (idle timeout",
            c.proxy.port
        )),
        "{e}"
    );
    // The config is the first blob: two attempts at it, then the pull stops.
    assert_eq!(c.proxy.count("GET", "/blobs/"), 2);
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_untouched(&c, &before);
}

#[test]
fn a_connection_cut_mid_blob_is_retried() {
    let Some(c) = case(vec![
        Rule::new("GET", "/blobs/sha256:", Fault::CutMidBody).times(2),
    ]) else {
        return;
    };
    let mut settings = quick();
    settings.attempts = 3;
    let (r, _) = pull(&c, settings);
    let desc = r.unwrap();
    assert!(c.dest.has_blob(&desc.digest));
    // Config: cut, cut, whole. Layer: whole.
    assert_eq!(c.proxy.count("GET", "/blobs/"), 4);
    let names: Vec<String> = fs_err::read_dir(c.dest.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "temp files left: {names:?}"
    );
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn too_many_requests_waits_as_retry_after_says() {
    let rule = Rule::new(
        "GET",
        "/manifests/",
        Fault::TooManyRequests {
            retry_after: "1".into(),
        },
    )
    .times(2);
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let mut settings = quick();
    settings.attempts = 3;
    let (r, took) = pull(&c, settings);
    r.unwrap();
    assert_eq!(c.proxy.count("GET", "/manifests/"), 3);
    assert!(
        took >= Duration::from_secs(2),
        "Retry-After ignored: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_retry_after_past_the_cap_fails_at_once_naming_the_wait() {
    let rule = Rule::new(
        "GET",
        "/manifests/",
        Fault::TooManyRequests {
            retry_after: "120".into(),
        },
    );
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let (r, took) = pull(&c, quick());
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "pull manifest of `127.0.0.1:{}/app:v1`: the registry asked to wait 120 s before retrying, longer than \
             the 5 s limit; try again later or raise `GOLDENPATH_REGISTRY_MAX_RETRY_WAIT`",
            c.proxy.port
        )
    );
    assert_eq!(c.proxy.count("GET", "/manifests/"), 1);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn random_server_errors_are_retried_with_one_request_more_per_error() {
    let rule = Rule::new(
        "GET",
        "/v2/app/",
        Fault::RandomServerErrors {
            seed: 7,
            percent: 40,
        },
    );
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let mut settings = quick();
    settings.attempts = 8;
    let (r, _) = pull(&c, settings);
    r.unwrap();
    let injected = c.proxy.faulted();
    assert!(injected > 0, "the seed injected no error");
    // One manifest and two blobs, plus one request per injected 500.
    assert_eq!(c.proxy.count("GET", "/v2/app/"), 3 + injected);
}

#[test]
fn a_push_stalled_before_the_answer_times_out() {
    let Some(c) = case(vec![Rule::new(
        "PUT",
        "/manifests/",
        Fault::StallBeforeHeaders,
    )]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = pushed(tmp.path(), c.reg.port);
    let desc = src.resolve(Some("v1")).unwrap();
    let target = reference(&format!("127.0.0.1:{}/other:v1", c.proxy.port));
    let start = Instant::now();
    let e = Registry::with_settings(&target, &[], quick())
        .unwrap()
        .push(&src, &desc, &target, None)
        .unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout);
    assert!(
        e.to_string().starts_with(&format!(
            "push manifest to `127.0.0.1:{}/other:v1` failed: ",
            c.proxy.port
        )),
        "{e}"
    );
    assert_eq!(c.proxy.count("PUT", "/manifests/"), 2);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_push_answered_429_is_retried() {
    let rule = Rule::new(
        "PUT",
        "/manifests/",
        Fault::TooManyRequests {
            retry_after: String::new(),
        },
    )
    .times(1);
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = pushed(tmp.path(), c.reg.port);
    let desc = src.resolve(Some("v1")).unwrap();
    let target = reference(&format!("127.0.0.1:{}/other:v1", c.proxy.port));
    let gate = Arc::new(Counting::default());
    Registry::with_settings(&target, &[], quick())
        .unwrap()
        .with_gate(gate.clone())
        .push(&src, &desc, &target, None)
        .unwrap();
    assert_eq!(c.proxy.count("PUT", "/manifests/"), 2);
    // The gate saw every request the proxy did, and the one 429 (what serve's metrics count).
    assert_eq!(gate.admitted.load(Ordering::Relaxed), c.proxy.count("", ""));
    assert_eq!(gate.throttled.load(Ordering::Relaxed), 1);
}

/// A gate that counts what passes it.
#[derive(Default)]
struct Counting {
    admitted: AtomicUsize,
    throttled: AtomicUsize,
}

impl gp_oci::registry::Gate for Counting {
    fn admit(&self, _registry: &str) {
        self.admitted.fetch_add(1, Ordering::Relaxed);
    }

    fn throttled(&self, _registry: &str) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_not_found_manifest_is_not_retried() {
    let Some(c) = case(vec![]) else {
        return;
    };
    let missing = reference(&format!("127.0.0.1:{}/app:nope", c.proxy.port));
    let e = Registry::with_settings(&missing, &[], quick())
        .unwrap()
        .pull(&missing, &c.dest)
        .unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::NotFound);
    assert!(
        e.to_string().starts_with(&format!(
            "pull manifest of `127.0.0.1:{}/app:nope` failed: HTTP 404: not found",
            c.proxy.port
        )),
        "{e}"
    );
    assert_eq!(c.proxy.count("GET", "/manifests/"), 1);
}

#[test]
fn an_upload_the_registry_stops_reading_times_out_when_idle() {
    let Some(c) = case(vec![Rule::new(
        "PUT",
        "/blobs/uploads/",
        Fault::StallReadingBody,
    )]) else {
        return;
    };
    // Larger than what loopback socket buffers absorb, so the writes themselves block.
    let mut x = 0x9E37_79B9_u32;
    let big: Vec<u8> = (0..48 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::create(&tmp.path().join("big")).unwrap();
    let digest = layout.write_blob(&big).unwrap();
    let desc = gp_oci::layout::Desc::new(
        "application/vnd.oci.image.layer.v1.tar",
        digest,
        big.len() as u64,
    );
    drop(big);
    let target = reference(&format!("127.0.0.1:{}/big:v1", c.proxy.port));
    let start = Instant::now();
    let e = Registry::with_settings(&target, &[], quick())
        .unwrap()
        .push_blobs(&layout, &[desc], &target)
        .unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout, "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "upload blob to `127.0.0.1:{}/big:v1` failed: ",
            c.proxy.port
        )),
        "{text}"
    );
    // The client's read timeout or the upload's idle watch, whichever notices first: both name the variable.
    assert!(
        text.contains("`GOLDENPATH_REGISTRY_IDLE_TIMEOUT`"),
        "{text}"
    );
    assert!(text.ends_with("(after 2 attempts)"), "{text}");
    assert_eq!(c.proxy.count("PUT", "/blobs/uploads/"), 2);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_manifest_trickling_in_is_cut_off_as_a_whole() {
    let rule = Rule::new(
        "GET",
        "/manifests/",
        Fault::Trickle {
            every: Duration::from_millis(200),
        },
    );
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let before = snapshot(c.dest.root());
    let mut settings = quick();
    settings.attempts = 1;
    let (r, took) = pull(&c, settings);
    let e = r.unwrap_err();
    assert_eq!(request_kind(&e), ErrorKind::Timeout);
    assert_eq!(
        e.to_string(),
        format!(
            "pull manifest of `127.0.0.1:{}/app:v1` failed: the manifest did not arrive within 4 s (4 idle \
             timeouts; raise `GOLDENPATH_REGISTRY_IDLE_TIMEOUT` if the registry is only slow)",
            c.proxy.port
        )
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_untouched(&c, &before);
}

/// `SystemTime` as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = i64::try_from(secs / 86_400).unwrap();
    let rem = secs % 86_400;
    // Days since the epoch to a civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday =
        ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][usize::try_from(days % 7).unwrap()];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[usize::try_from(month - 1).unwrap()],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn a_retry_after_given_as_a_date_is_waited_until() {
    let at = std::time::SystemTime::now() + Duration::from_secs(3);
    let rule = Rule::new(
        "GET",
        "/manifests/",
        Fault::TooManyRequests {
            retry_after: http_date(at),
        },
    )
    .times(1);
    let Some(c) = case(vec![rule]) else {
        return;
    };
    let (r, took) = pull(&c, quick());
    r.unwrap();
    assert_eq!(c.proxy.count("GET", "/manifests/"), 2);
    // Whole seconds in the date: at least 2 s of the 3 remain when the answer arrives.
    assert!(
        took >= Duration::from_secs(1),
        "the date was ignored: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[test]
fn http_dates_are_formatted_as_servers_send_them() {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
}
