//! What went wrong with a registry request, as a kind retries are decided on (never on message text), plus
//! `Retry-After` parsing and short escaped excerpts of what a server sent.

use std::time::{Duration, SystemTime};

use oci_client::errors::{OciDistributionError, OciErrorCode};

use super::settings::{ENV_FIRST_BYTE_TIMEOUT, ENV_IDLE_TIMEOUT};

/// The kind of a failed registry request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Unauthorized,
    TooManyRequests {
        retry_after: Option<Duration>,
    },
    /// A 5xx answer.
    Server {
        status: u16,
    },
    /// Another status the request cannot succeed with (4xx).
    Status {
        status: u16,
    },
    DigestMismatch,
    Timeout,
    /// A connection dropped or cut mid-request.
    Connection,
    /// No connection could be made (refused, no such host, connect timeout): retried once only, so an address that
    /// is wrong fails fast.
    Unreachable,
    /// A manifest or blob larger than allowed or than its descriptor says.
    TooLarge,
    /// Anything else (local I/O, a protocol violation).
    Other,
}

impl ErrorKind {
    /// Worth another attempt: the same request may succeed later.
    #[must_use]
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::TooManyRequests { .. }
                | Self::Server { .. }
                | Self::Timeout
                | Self::Connection
                | Self::Unreachable
        )
    }

    fn from_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            401 | 403 => Self::Unauthorized,
            404 => Self::NotFound,
            429 => Self::TooManyRequests { retry_after },
            500..=599 => Self::Server { status },
            _ => Self::Status { status },
        }
    }
}

/// One failed attempt: its kind and a short description (server text already excerpted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A non-success HTTP answer; `body` is what the server sent (only an excerpt is kept).
    #[must_use]
    pub fn status(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let kind = ErrorKind::from_status(status, retry_after);
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let what = match kind {
            ErrorKind::Unauthorized => {
                "not authorized (log in with `docker login` or check the credentials)"
            }
            ErrorKind::NotFound => "not found",
            ErrorKind::TooManyRequests { .. } => "too many requests",
            ErrorKind::Server { .. } => "server error",
            _ => "refused",
        };
        let message = if text.is_empty() {
            format!("HTTP {status}: {what}")
        } else {
            format!("HTTP {status}: {what}: {}", excerpt(text))
        };
        Self::new(kind, message)
    }

    /// Sorts an `oci-client` error into a kind by its type (status codes, OCI error codes, transport errors).
    #[must_use]
    pub fn from_oci(e: &OciDistributionError) -> Self {
        match e {
            OciDistributionError::ServerError { code, message, .. } => {
                Self::status(*code, None, message.as_bytes())
            }
            OciDistributionError::UnauthorizedError { .. } => Self::status(401, None, b""),
            OciDistributionError::AuthenticationFailure(m) => Self::new(
                ErrorKind::Unauthorized,
                format!("authentication failed: {}", excerpt(m)),
            ),
            OciDistributionError::ImageManifestNotFoundError(_) => {
                Self::new(ErrorKind::NotFound, "manifest not found")
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let kind = if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
                {
                    ErrorKind::TooManyRequests { retry_after: None }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    ErrorKind::Unauthorized
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::BlobUnknown
                            | OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Other
                };
                Self::new(kind, excerpt(&envelope.to_string()))
            }
            OciDistributionError::RequestError(r) => Self::from_reqwest(r),
            OciDistributionError::IoError(io) => Self::from_io(io),
            OciDistributionError::DigestError(d) => {
                Self::new(ErrorKind::DigestMismatch, excerpt(&d.to_string()))
            }
            other => Self::new(ErrorKind::Other, excerpt(&other.to_string())),
        }
    }

    #[must_use]
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        if let Some(s) = e.status() {
            return Self::status(s.as_u16(), None, b"");
        }
        let kind = if e.is_timeout() || timed_out(e) {
            ErrorKind::Timeout
        } else if e.is_connect() {
            ErrorKind::Unreachable
        } else if e.is_request() || e.is_body() || e.is_decode() {
            // The request could not be sent or the answer was cut: a dropped connection.
            ErrorKind::Connection
        } else {
            ErrorKind::Other
        };
        let mut text = error_chain(e);
        // Upload URLs carry long opaque state: the origin and path are what identify the request.
        if let Some(u) = e.url() {
            let short = format!("{}{}", u.origin().ascii_serialization(), u.path());
            text = text.replace(u.as_str(), &short);
        }
        let mut message = excerpt(&text);
        if kind == ErrorKind::Timeout {
            message = format!(
                "{message} (raise `{ENV_FIRST_BYTE_TIMEOUT}` or `{ENV_IDLE_TIMEOUT}` if the registry is only slow)"
            );
        }
        Self::new(kind, message)
    }

    #[must_use]
    pub fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<reqwest::Error>()) {
            return Self::from_reqwest(r);
        }
        let kind = match e.kind() {
            K::TimedOut => ErrorKind::Timeout,
            K::ConnectionRefused => ErrorKind::Unreachable,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
                ErrorKind::Connection
            }
            _ => ErrorKind::Other,
        };
        Self::new(kind, excerpt(&error_chain(e)))
    }
}

/// Whether an I/O timeout is somewhere in `e`'s sources (the client's read timeout firing mid-request).
fn timed_out(e: &dyn std::error::Error) -> bool {
    let mut source = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its sources on one line (`reqwest` keeps the useful part, e.g. "Connection refused", in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// At most this many characters of anything a server or a file sent are shown.
const EXCERPT_CHARS: usize = 200;

/// `text` escaped (control characters shown as `\n`, `\u{1b}`, ...) and cut to a short excerpt (the shared
/// `gp-fs` rule, with room for a whole error chain).
#[must_use]
pub fn excerpt(text: &str) -> String {
    gp_fs::excerpt_within(text, EXCERPT_CHARS)
}

/// `Retry-After`: delay-seconds or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), as a wait from `now`.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The IMF-fixdate form of an HTTP date (the only one servers may send).
fn parse_http_date(v: &str) -> Option<SystemTime> {
    let rest = v.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, u32::try_from(month).ok()? + 1, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `base * 2^(attempt-1)`, times a random factor in [0.5, 1.5) so clients that failed together do not retry
/// together.
#[must_use]
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let factor = 0.5 + f64::from(u32::try_from(random >> 32).unwrap_or(0)) / f64::from(u32::MAX);
    base.saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                now + Duration::from_mins(1)
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 32 Nov 1994 08:49:37 GMT", now),
            None
        );
    }

    #[test]
    fn kinds_decide_retries() {
        assert!(Failure::status(429, None, b"").kind.retryable());
        assert!(Failure::status(503, None, b"").kind.retryable());
        assert!(!Failure::status(404, None, b"").kind.retryable());
        assert!(!Failure::status(401, None, b"").kind.retryable());
        assert!(!Failure::status(400, None, b"").kind.retryable());
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(Failure::from_io(&io).kind, ErrorKind::Connection);
    }

    #[test]
    fn server_text_is_escaped_and_cut() {
        let body = format!("\u{1b}]0;owned\u{7}{}", "x".repeat(1000));
        let f = Failure::status(500, None, body.as_bytes());
        assert!(
            f.message
                .starts_with("HTTP 500: server error: \\u{1b}]0;owned\\u{7}xx"),
            "{}",
            f.message
        );
        assert!(
            f.message.ends_with("x… (1010 bytes in all)"),
            "{}",
            f.message
        );
        assert!(f.message.len() < 260, "{}", f.message.len());
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        let b = backoff(Duration::from_millis(100), 3);
        assert!(
            b >= Duration::from_millis(200) && b < Duration::from_millis(600),
            "{b:?}"
        );
    }
}
