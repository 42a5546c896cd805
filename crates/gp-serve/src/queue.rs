//! The work queue: at most one pending entry per app (new reasons merge into it), two lanes (developers' reasons
//! first, then the platform's; oldest first within a lane), an app never run twice at once, failed work retried
//! with exponential backoff up to a limit — and any new reason or revision for an app retries it at once, so that a
//! failed build never hides a later stack change (kpack#380).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::reason::{Lane, Reason};

/// How failed work is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first (0: never retried).
    pub retries: u32,
    /// The wait before the first retry; doubled for each further one.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Retry {
    /// 3 retries after 10 s, 20 s, 40 s: long enough for a registry's 429 window or a flaky package index,
    /// short enough that a developer sees the outcome within about a minute.
    fn default() -> Self {
        Self {
            retries: 3,
            first: Duration::from_secs(10),
            max: Duration::from_mins(5),
        }
    }
}

impl Retry {
    /// The wait before attempt `attempt` (1 = the first retry).
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Work waiting for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub reasons: BTreeSet<Reason>,
    /// The revision to build, when a watcher saw one.
    pub revision: Option<String>,
    /// Attempts already made (0: never tried).
    pub attempts: u32,
    /// Not before this (a retry's backoff).
    pub not_before: Instant,
    /// When it was first queued (queue wait is measured from here).
    pub queued_at: Instant,
    order: u64,
}

impl Pending {
    #[must_use]
    pub fn lane(&self) -> Lane {
        self.reasons
            .iter()
            .map(|r| r.lane())
            .min()
            .unwrap_or(Lane::Platform)
    }
}

/// Work taken from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub app: String,
    pub reasons: BTreeSet<Reason>,
    pub revision: Option<String>,
    /// 1 for the first try.
    pub attempt: u32,
    pub queued_at: Instant,
}

/// What became of failed work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Queued again, to run after this wait.
    Retry(Duration),
    /// Queued again at once: new reasons arrived while it ran.
    Superseded,
    /// The retries are spent; it waits for a new reason.
    GaveUp,
}

#[derive(Debug, Default)]
pub struct Queue {
    pending: BTreeMap<String, Pending>,
    next_order: u64,
    retry: Retry,
}

impl Queue {
    #[must_use]
    pub fn new(retry: Retry) -> Self {
        Self {
            retry,
            ..Self::default()
        }
    }

    /// Adds `reason` for `app` (with the revision a watcher saw). Merges into what is pending; a new reason or
    /// revision clears a retry's backoff.
    pub fn push(&mut self, app: &str, reason: Reason, revision: Option<&str>, now: Instant) {
        let order = self.next_order;
        self.next_order += 1;
        match self.pending.get_mut(app) {
            Some(p) => {
                let new_revision = revision.is_some_and(|r| p.revision.as_deref() != Some(r));
                let new_reason = p.reasons.insert(reason);
                if let Some(r) = revision {
                    p.revision = Some(r.to_owned());
                }
                if new_reason || new_revision {
                    p.not_before = now;
                    p.attempts = 0;
                }
            }
            None => {
                self.pending.insert(
                    app.to_owned(),
                    Pending {
                        reasons: BTreeSet::from([reason]),
                        revision: revision.map(str::to_owned),
                        attempts: 0,
                        not_before: now,
                        queued_at: now,
                        order,
                    },
                );
            }
        }
    }

    /// The next job at `now`: developers' lane first, oldest first, skipping apps for which `busy` says work
    /// is running and entries still backing off.
    pub fn next(&mut self, now: Instant, busy: impl Fn(&str) -> bool) -> Option<Job> {
        let app = self
            .pending
            .iter()
            .filter(|(app, p)| p.not_before <= now && !busy(app))
            .min_by_key(|(_, p)| (p.lane(), p.order))
            .map(|(app, _)| app.clone())?;
        let p = self.pending.remove(&app)?;
        Some(Job {
            app,
            reasons: p.reasons,
            revision: p.revision,
            attempt: p.attempts + 1,
            queued_at: p.queued_at,
        })
    }

    /// Puts a failed `job` back: merged with anything queued for the app meanwhile (then at once), else after its
    /// backoff, or not at all when its retries are spent.
    pub fn failed(&mut self, job: Job, now: Instant) -> AfterFailure {
        if let Some(p) = self.pending.get_mut(&job.app) {
            p.reasons.extend(job.reasons);
            if p.revision.is_none() {
                p.revision = job.revision;
            }
            p.not_before = now;
            return AfterFailure::Superseded;
        }
        if job.attempt > self.retry.retries {
            return AfterFailure::GaveUp;
        }
        let wait = self.retry.backoff(job.attempt);
        let order = self.next_order;
        self.next_order += 1;
        self.pending.insert(
            job.app,
            Pending {
                reasons: job.reasons,
                revision: job.revision,
                attempts: job.attempt,
                not_before: now + wait,
                queued_at: job.queued_at,
                order,
            },
        );
        AfterFailure::Retry(wait)
    }

    /// Entries waiting, per lane.
    #[must_use]
    pub fn depth(&self, lane: Lane) -> usize {
        self.pending.values().filter(|p| p.lane() == lane).count()
    }

    /// Drops what is pending for `app` (its contract was removed).
    pub fn remove(&mut self, app: &str) {
        self.pending.remove(app);
    }

    /// What is pending for `app`.
    #[must_use]
    pub fn get(&self, app: &str) -> Option<&Pending> {
        self.pending.get(app)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests;
