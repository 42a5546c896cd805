//! Timeouts, retries and limits of registry I/O, with their defaults and the `GOLDENPATH_REGISTRY_*` variables
//! that override them.

use std::time::Duration;

use super::error::excerpt;

/// A TCP (and TLS) handshake with a live registry takes well under a second even across continents: ten seconds
/// means the address is wrong or filtered.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Registries answer a request once they have looked up the manifest or blob and, for blobs, often redirected to
/// storage; thirty seconds covers a slow storage backend without leaving a stalled server waited on forever.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// While a body streams, thirty seconds without a single byte is a dead connection, not a slow one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per request (the first and three retries) on 429, 5xx, timeouts and dropped connections.
pub const ATTEMPTS: u32 = 4;
/// The longest wait a `Retry-After` may ask for before the request fails instead (a CI job waiting minutes on a
/// rate limit is better told so).
pub const MAX_RETRY_WAIT: Duration = Duration::from_mins(1);
/// The first backoff between attempts; it doubles each retry (with jitter).
pub const BACKOFF: Duration = Duration::from_millis(200);

/// Registry I/O settings: see the constants for the defaults and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub attempts: u32,
    pub max_retry_wait: Duration,
    pub backoff: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            first_byte_timeout: FIRST_BYTE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            attempts: ATTEMPTS,
            max_retry_wait: MAX_RETRY_WAIT,
            backoff: BACKOFF,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("`{var}` is `{value}`, not {expected}; set it to e.g. `{example}` or unset it")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
        example: &'static str,
    },
}

pub const ENV_CONNECT_TIMEOUT: &str = "GOLDENPATH_REGISTRY_CONNECT_TIMEOUT";
pub const ENV_FIRST_BYTE_TIMEOUT: &str = "GOLDENPATH_REGISTRY_FIRST_BYTE_TIMEOUT";
pub const ENV_IDLE_TIMEOUT: &str = "GOLDENPATH_REGISTRY_IDLE_TIMEOUT";
pub const ENV_ATTEMPTS: &str = "GOLDENPATH_REGISTRY_ATTEMPTS";
pub const ENV_MAX_RETRY_WAIT: &str = "GOLDENPATH_REGISTRY_MAX_RETRY_WAIT";

impl RegistrySettings {
    /// The defaults, overridden by the `GOLDENPATH_REGISTRY_*` variables that are set.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// The defaults, overridden by what `lookup` returns for each variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s = Self::default();
        let secs = |var: &'static str, into: &mut Duration| -> Result<(), SettingsError> {
            if let Some(v) = lookup(var) {
                *into = parse_seconds(&v).ok_or_else(|| SettingsError::Invalid {
                    var,
                    value: excerpt(&v),
                    expected: "a positive number of seconds",
                    example: "30",
                })?;
            }
            Ok(())
        };
        secs(ENV_CONNECT_TIMEOUT, &mut s.connect_timeout)?;
        secs(ENV_FIRST_BYTE_TIMEOUT, &mut s.first_byte_timeout)?;
        secs(ENV_IDLE_TIMEOUT, &mut s.idle_timeout)?;
        secs(ENV_MAX_RETRY_WAIT, &mut s.max_retry_wait)?;
        if let Some(v) = lookup(ENV_ATTEMPTS) {
            s.attempts = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .ok_or_else(|| SettingsError::Invalid {
                    var: ENV_ATTEMPTS,
                    value: excerpt(&v),
                    expected: "a whole number from 1 to 20",
                    example: "4",
                })?;
        }
        Ok(s)
    }
}

/// `30`, `1.5`: seconds, positive and at most a day.
fn parse_seconds(v: &str) -> Option<Duration> {
    let n: f64 = v.trim().parse().ok()?;
    (n > 0.0 && n <= 86_400.0).then(|| Duration::from_secs_f64(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_defaults_and_bad_values_are_named() {
        let s = RegistrySettings::from_lookup(|v| match v {
            ENV_IDLE_TIMEOUT => Some("1.5".into()),
            ENV_ATTEMPTS => Some("2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.idle_timeout, Duration::from_millis(1500));
        assert_eq!(s.attempts, 2);
        assert_eq!(s.connect_timeout, CONNECT_TIMEOUT);
        let e = RegistrySettings::from_lookup(|v| {
            (v == ENV_CONNECT_TIMEOUT).then(|| "soon\u{1b}[2J".into())
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`GOLDENPATH_REGISTRY_CONNECT_TIMEOUT` is `soon\\u{1b}[2J`, not a positive number of seconds; \
             set it to e.g. `30` or unset it"
        );
        let e =
            RegistrySettings::from_lookup(|v| (v == ENV_ATTEMPTS).then(|| "0".into())).unwrap_err();
        assert!(e.to_string().contains("a whole number from 1 to 20"), "{e}");
    }
}
