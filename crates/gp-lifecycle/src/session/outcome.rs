//! What a finished build made, and how long each phase took.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::progress::{Event, Phase, Progress};

/// A successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Where the image is: `oci:PATH:TAG` or the registry image pushed.
    pub reference: String,
    /// The image manifest's digest (`sha256:…`).
    pub digest: String,
    /// Layers in the image, and how many of them are the run image's.
    pub layers: usize,
    pub from_run_image: usize,
    /// Our layers the exporter found unchanged (memo or previous image) rather than wrote.
    pub reused: usize,
    /// Blobs a push uploaded, mounted from another repository, or found there (zero when not published).
    pub uploaded: usize,
    pub mounted: usize,
    pub present: usize,
    /// The image's process types, in order.
    pub processes: Vec<String>,
    /// SBOM formats buildpacks wrote, with how many files each (`CycloneDX`, 2).
    pub sbom: Vec<(String, usize)>,
    /// Wall time per phase, in the order they first ran (a phase that ran twice is summed).
    pub phases: Vec<(Phase, Duration)>,
    /// The buildpacks that built it (the group detect chose), as `(id, version)` in group order.
    pub buildpacks: Vec<(String, String)>,
    /// The builder image it was built with (`None` for a local builder directory).
    pub builder: Option<BuilderImage>,
}

/// A builder image as a build used it: what a later change of the builder is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderImage {
    /// The builder manifest's digest.
    pub digest: String,
    /// Its lifecycle's version (`io.buildpacks.builder.metadata`), when it names one.
    pub lifecycle: Option<String>,
}

/// The session's phase clock: announces phases and adds up their time.
pub(crate) struct Clock {
    progress: Arc<dyn Progress>,
    marks: Mutex<Vec<(Phase, Instant)>>,
}

impl Clock {
    pub(crate) fn new(progress: Arc<dyn Progress>) -> Self {
        Self {
            progress,
            marks: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn progress(&self) -> &dyn Progress {
        &*self.progress
    }

    pub(crate) fn progress_arc(&self) -> Arc<dyn Progress> {
        Arc::clone(&self.progress)
    }

    pub(crate) fn event(&self, event: Event) {
        self.progress.event(event);
    }

    /// `phase` begins; the one before ends.
    pub(crate) fn start(&self, phase: Phase, detail: Option<String>) {
        self.progress.event(Event::PhaseStarted { phase, detail });
        if let Ok(mut m) = self.marks.lock() {
            m.push((phase, Instant::now()));
        }
    }

    /// Whether any phase began yet.
    pub(crate) fn started(&self) -> bool {
        self.marks.lock().is_ok_and(|m| !m.is_empty())
    }

    /// Each phase with its time so far (the last one up to now).
    pub(crate) fn durations(&self) -> Vec<(Phase, Duration)> {
        let Ok(m) = self.marks.lock() else {
            return Vec::new();
        };
        let now = Instant::now();
        let mut out: Vec<(Phase, Duration)> = Vec::new();
        for (i, (phase, at)) in m.iter().enumerate() {
            let end = m.get(i + 1).map_or(now, |(_, t)| *t);
            let d = end.saturating_duration_since(*at);
            match out.iter_mut().find(|(p, _)| p == phase) {
                Some((_, total)) => *total += d,
                None => out.push((*phase, d)),
            }
        }
        out
    }
}
