//! Phase headers (`===> NAME`) and how long each phase took, for the build summary.

use std::sync::Mutex;
use std::time::{Duration, Instant};

static PHASES: Mutex<Vec<(String, Instant)>> = Mutex::new(Vec::new());

/// Announces a phase; the previous one ends here.
pub fn start(name: &str) {
    eprintln!("===> {name}");
    if let Ok(mut p) = PHASES.lock() {
        p.push((
            name.split_whitespace()
                .next()
                .unwrap_or(name)
                .to_lowercase(),
            Instant::now(),
        ));
    }
}

/// Each phase announced so far with its duration (the last one up to now), in order; a phase announced more than
/// once (pulling two images) is summed.
pub fn durations() -> Vec<(String, Duration)> {
    let Ok(p) = PHASES.lock() else {
        return Vec::new();
    };
    let now = Instant::now();
    let mut out: Vec<(String, Duration)> = Vec::new();
    for (i, (name, at)) in p.iter().enumerate() {
        let end = p.get(i + 1).map_or(now, |(_, t)| *t);
        let d = end.saturating_duration_since(*at);
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += d,
            None => out.push((name.clone(), d)),
        }
    }
    out
}

/// `pulling 12 ms, detecting 40 ms, ...`, or `None` when no phase was announced.
pub fn summary() -> Option<String> {
    let d = durations();
    (!d.is_empty()).then(|| {
        d.iter()
            .map(|(n, t)| format!("{n} {} ms", t.as_millis()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}
