//! The service's Prometheus metrics, with low-cardinality labels only (work kind, a build's first reason, result,
//! lane, registry host): never an app name or a digest. `goldenpath scaffold` writes alert rules and a dashboard
//! against these names.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::reason::{Lane, Reason, Work};

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are written as named
pub enum WorkLabel {
    build,
    rebase,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ResultLabel {
    succeeded,
    failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub work: WorkLabel,
    /// The first of the build's reasons in kpack's order (COMMIT before STACK).
    pub reason: String,
    pub result: ResultLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    pub lane: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    pub registry: String,
}

/// A counter per registry host (requests, 429s), for the gate that sees each registry request.
pub type RegistryCounter = Family<RegistryLabels, Counter>;

fn build_buckets() -> Histogram {
    // 0.25 s to about 17 minutes: a rebase takes a fraction of a second, a cold Java build minutes.
    Histogram::new(exponential_buckets(0.25, 2.0, 13))
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub builds: Family<BuildLabels, Counter>,
    pub build_seconds: Family<BuildLabels, Histogram, fn() -> Histogram>,
    pub queue_depth: Family<LaneLabels, Gauge>,
    pub queue_wait_seconds: Family<LaneLabels, Histogram, fn() -> Histogram>,
    pub apps: Gauge,
    pub apps_behind_run_image: Gauge,
    pub builder_ready: Gauge,
    pub registry_requests: RegistryCounter,
    pub registry_throttled: RegistryCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("goldenpath");
        let builds = Family::<BuildLabels, Counter>::default();
        let build_seconds =
            Family::<BuildLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                build_buckets,
            );
        let queue_depth = Family::<LaneLabels, Gauge>::default();
        let queue_wait_seconds =
            Family::<LaneLabels, Histogram, fn() -> Histogram>::new_with_constructor(build_buckets);
        let (apps, behind, ready) = (Gauge::default(), Gauge::default(), Gauge::default());
        let requests = Family::<RegistryLabels, Counter>::default();
        let throttled = Family::<RegistryLabels, Counter>::default();
        registry.register(
            "builds",
            "Builds and rebases finished, by work, first reason and result",
            builds.clone(),
        );
        registry.register(
            "build_duration_seconds",
            "Time a build or rebase took, by work, first reason and result",
            build_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Work waiting, by lane (developer, platform)",
            queue_depth.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time work waited in the queue before it started, by lane",
            queue_wait_seconds.clone(),
        );
        registry.register(
            "apps",
            "Apps the service keeps built and deployed",
            apps.clone(),
        );
        registry.register(
            "apps_behind_run_image",
            "Apps whose image is not on the current run image",
            behind.clone(),
        );
        registry.register(
            "builder_ready",
            "1 when the builder and run image are resolved, else 0",
            ready.clone(),
        );
        registry.register(
            "registry_requests",
            "Registry requests made, by registry host",
            requests.clone(),
        );
        registry.register(
            "registry_throttled",
            "Registry requests answered 429 (throttled), by registry host",
            throttled.clone(),
        );
        Self {
            registry,
            builds,
            build_seconds,
            queue_depth,
            queue_wait_seconds,
            apps,
            apps_behind_run_image: behind,
            builder_ready: ready,
            registry_requests: requests,
            registry_throttled: throttled,
        }
    }

    /// Records a finished build or rebase.
    pub fn finished(
        &self,
        work: Work,
        reasons: &std::collections::BTreeSet<Reason>,
        ok: bool,
        took: Duration,
    ) {
        let labels = BuildLabels {
            work: match work {
                Work::Build => WorkLabel::build,
                Work::Rebase => WorkLabel::rebase,
            },
            reason: reasons
                .iter()
                .next()
                .map_or_else(|| "NONE".to_owned(), |r| r.as_str().to_owned()),
            result: if ok {
                ResultLabel::succeeded
            } else {
                ResultLabel::failed
            },
        };
        self.builds.get_or_create(&labels).inc();
        self.build_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Sets the queue's depth for `lane`.
    pub fn depth(&self, lane: Lane, n: usize) {
        self.queue_depth
            .get_or_create(&lane_labels(lane))
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records how long a job waited in `lane`.
    pub fn waited(&self, lane: Lane, took: Duration) {
        self.queue_wait_seconds
            .get_or_create(&lane_labels(lane))
            .observe(took.as_secs_f64());
    }

    /// The `OpenMetrics` exposition (`application/openmetrics-text; version=1.0.0`), for scrapers that ask for it.
    #[must_use]
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (`text/plain; version=0.0.4`): what `promtool check metrics` reads and
    /// any Prometheus scrapes. `OpenMetrics` names a counter's family without `_total` and ends with `# EOF`; here
    /// the HELP and TYPE lines name the `_total` sample, and the EOF marker is dropped.
    #[must_use]
    pub fn render(&self) -> String {
        to_prometheus_text(&self.render_openmetrics())
    }
}

/// `OpenMetrics` text to the Prometheus 0.0.4 text format (the subset this crate writes: counters, gauges,
/// histograms).
fn to_prometheus_text(open: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn lane_labels(lane: Lane) -> LaneLabels {
    LaneLabels {
        lane: match lane {
            Lane::Developer => "developer",
            Lane::Platform => "platform",
        }
        .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn builds_are_counted_by_reason_and_result() {
        let m = Metrics::new();
        let reasons = BTreeSet::from([Reason::Stack, Reason::Commit]);
        m.finished(Work::Build, &reasons, true, Duration::from_secs(3));
        m.finished(
            Work::Rebase,
            &BTreeSet::from([Reason::Stack]),
            false,
            Duration::from_millis(80),
        );
        m.depth(Lane::Developer, 2);
        let text = m.render();
        assert!(
            text.contains(
                r#"goldenpath_builds_total{work="build",reason="COMMIT",result="succeeded"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"goldenpath_builds_total{work="rebase",reason="STACK",result="failed"} 1"#
        ));
        assert!(text.contains(r#"goldenpath_queue_depth{lane="developer"} 2"#));
        assert!(text.contains("goldenpath_build_duration_seconds_bucket"));
    }

    /// Prometheus's own checker accepts the exposition (names, help, types, units).
    #[test]
    fn promtool_accepts_it() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let m = Metrics::new();
        m.finished(
            Work::Build,
            &BTreeSet::from([Reason::Commit]),
            true,
            Duration::from_secs(1),
        );
        m.depth(Lane::Platform, 0);
        let Ok(mut child) = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!(
                "skipped: no promtool (scripts/install-deps.sh installs Debian's prometheus)"
            );
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(m.render().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
