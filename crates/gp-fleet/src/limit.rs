//! Token buckets, one per registry: each request takes a token; tokens come back at `per_second`, at most `burst`
//! wait unused. Waiting requests reserve their token (the count goes negative), so they are let through in order and
//! the rate holds however many threads ask at once. Every request is counted, per registry and per caller.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gp_oci::registry::Gate;

/// Requests per second and burst a registry gets unless told otherwise. ECR's tightest per-account limit is
/// `PutImage` at 10 per second; a rebase makes about 9 requests, one of them a `PutImage`, so 50 requests per second
/// keep manifest pushes near 6 per second with room for a developer's builds beside the campaign. Docker Hub and
/// GHCR limit pulls per hour, far above what a campaign of thousands of images makes.
pub const DEFAULT_RATE: Rate = Rate {
    per_second: 50.0,
    burst: 50,
};

/// The slowest rate accepted (one request every 1,000 s) and the fastest (past any registry's capacity).
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1_000_000.0;

/// One registry's limit.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `RPS` or `RPS/BURST` (`50`, `20/40`, `0.5/1`); the burst defaults to the rate (at least 1).
    fn from_str(s: &str) -> Result<Self, String> {
        let (rate, burst) = match s.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let per_second: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && (MIN_RATE..=MAX_RATE).contains(r))
            .ok_or_else(|| {
                format!(
                    "`{s}`: the rate is requests per second, from {MIN_RATE} to {MAX_RATE} (e.g. `50` or `20/40`)"
                )
            })?;
        let burst = match burst {
            Some(b) => b.trim().parse().ok().filter(|b| *b >= 1).ok_or_else(|| {
                format!("`{s}`: the burst after `/` is a whole number of requests, at least 1")
            })?,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            // finite, positive, rounded up
            None => (per_second.ceil() as u32).max(1),
        };
        Ok(Self { per_second, burst })
    }
}

/// The limits of a campaign: one for every registry, and overrides by `host[:port]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Limits {
    pub default: Rate,
    pub registries: BTreeMap<String, Rate>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default: DEFAULT_RATE,
            registries: BTreeMap::new(),
        }
    }
}

/// One bucket's state.
#[derive(Debug)]
struct Bucket {
    rate: Rate,
    /// Tokens left; negative when requests wait for tokens not yet refilled.
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: f64::from(rate.burst),
            at: now,
        }
    }

    /// Takes a token at `now`; returns how long the caller must wait before sending.
    fn take(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now.max(self.at);
        self.tokens =
            (self.tokens + elapsed * self.rate.per_second).min(f64::from(self.rate.burst));
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate.per_second)
        }
    }
}

/// The campaign's buckets and request counts, shared by every worker.
#[derive(Debug)]
pub struct Limiter {
    limits: Limits,
    buckets: Mutex<BTreeMap<String, Bucket>>,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Limiter {
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buckets: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    /// The limit `registry` gets.
    #[must_use]
    pub fn rate(&self, registry: &str) -> Rate {
        self.limits
            .registries
            .get(registry)
            .copied()
            .unwrap_or(self.limits.default)
    }

    /// Requests let through so far, by registry.
    #[must_use]
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn wait_for(&self, registry: &str) -> Duration {
        if let Ok(mut counts) = self.requests.lock() {
            *counts.entry(registry.to_owned()).or_default() += 1;
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Duration::ZERO;
        };
        buckets
            .entry(registry.to_owned())
            .or_insert_with(|| Bucket::new(self.rate(registry), now))
            .take(now)
    }
}

impl Gate for Limiter {
    fn admit(&self, registry: &str) {
        let wait = self.wait_for(registry);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A worker's view of the limiter: the same buckets, plus a count of its own requests (read per image).
#[derive(Debug)]
pub struct Counted {
    limiter: Arc<Limiter>,
    count: AtomicU64,
}

impl Counted {
    #[must_use]
    pub fn new(limiter: Arc<Limiter>) -> Self {
        Self {
            limiter,
            count: AtomicU64::new(0),
        }
    }

    /// Requests this worker has made.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl Gate for Counted {
    fn admit(&self, registry: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.limiter.admit(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_a_burst() {
        assert_eq!(
            "20/40".parse::<Rate>(),
            Ok(Rate {
                per_second: 20.0,
                burst: 40
            })
        );
        assert_eq!("0.5".parse::<Rate>().map(|r| r.burst), Ok(1));
        for bad in ["0", "-1", "x", "10/0", "10/x", "inf"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_lets_a_burst_through_then_spaces_requests_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            Rate {
                per_second: 10.0,
                burst: 3,
            },
            t0,
        );
        let waits: Vec<Duration> = (0..6).map(|_| b.take(t0)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        // The fourth waits one token (100 ms), the fifth two, the sixth three: reserved in order.
        for (i, w) in waits[3..].iter().enumerate() {
            let expected = 0.1 * f64::from(u32::try_from(i).unwrap() + 1);
            assert!((w.as_secs_f64() - expected).abs() < 1e-9, "{i}: {w:?}");
        }
        // A second later the debt is paid and seven tokens refilled, capped at the burst of 3.
        let t1 = t0 + Duration::from_secs(1);
        let waits: Vec<Duration> = (0..4).map(|_| b.take(t1)).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert!(waits[3] > Duration::ZERO);
    }

    #[test]
    fn in_any_window_no_more_than_burst_plus_rate_times_window_pass() {
        // Requests asked for as fast as possible for 2 s of simulated time, each sent when its wait ends.
        let t0 = Instant::now();
        let rate = Rate {
            per_second: 25.0,
            burst: 5,
        };
        let mut b = Bucket::new(rate, t0);
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(2) {
            let wait = b.take(now);
            now += wait;
            sent.push(now);
        }
        for (i, start) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|t| **t < *start + Duration::from_secs(1))
                .count();
            assert!(in_window <= 5 + 25, "{in_window} in one second");
        }
    }
}
