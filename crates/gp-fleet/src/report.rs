//! The record of a campaign: one [`Outcome`] per image (what was planned and why, what happened, digests before
//! and after, run image top layers before and after, time, registry requests, error), as JSON for machines and
//! Markdown for a pull request.

use std::fmt::Write;

use crate::plan::Action;

/// What happened to one image.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Rebased or rebuilt; its tag names the new image.
    Patched,
    /// Nothing to do (already on the run image).
    UpToDate,
    /// Left alone (not patchable, with the reason).
    Skipped,
    /// Tried and failed (with the error); a rerun tries it again.
    Failed,
    /// Not reached: the campaign stopped before its wave, or `--dry-run`.
    #[default]
    NotRun,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Patched => "patched",
            Self::UpToDate => "up-to-date",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::NotRun => "not run",
        }
    }
}

/// One image's line in the report (and in the journal).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    pub action: Action,
    #[serde(default)]
    pub reason: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_run_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_run_image: Option<String>,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Finished by an earlier run of this campaign (from the journal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub earlier: bool,
}

/// A whole campaign's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub campaign: String,
    pub run_image: String,
    pub run_image_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    pub dry_run: bool,
    /// The waves in the order they ran (environments; `(none)` for images with none).
    pub waves: Vec<String>,
    /// Set when the campaign stopped early: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub seconds: f64,
    /// Registry requests of the whole campaign, planning included, by registry.
    pub requests: std::collections::BTreeMap<String, u64>,
    pub images: Vec<Outcome>,
}

impl Report {
    /// How many images ended with `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> usize {
        self.images.iter().filter(|o| o.status == status).count()
    }

    /// One line: how many images ended how, the time and the requests.
    #[must_use]
    pub fn summary(&self) -> String {
        let total: u64 = self.requests.values().sum();
        format!(
            "{} patched, {} up to date, {} skipped, {} failed, {} not run in {:.2} s ({total} registry requests)",
            self.count(Status::Patched),
            self.count(Status::UpToDate),
            self.count(Status::Skipped),
            self.count(Status::Failed),
            self.count(Status::NotRun),
            self.seconds,
        )
    }

    /// The JSON report.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The Markdown report: a summary, then one table row per image, grouped by wave.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Patch campaign `{}`\n", self.campaign);
        let _ = writeln!(
            md,
            "Run image `{}` (`{}`){}{}.\n",
            self.run_image,
            short(&self.run_image_digest),
            self.builder
                .as_ref()
                .map(|b| format!(", builder `{b}`"))
                .unwrap_or_default(),
            if self.dry_run {
                ", dry run: nothing was changed"
            } else {
                ""
            }
        );
        let _ = writeln!(md, "{}.\n", self.summary());
        if let Some(why) = &self.stopped {
            let _ = writeln!(md, "**Stopped:** {why}\n");
        }
        for wave in &self.waves {
            let rows: Vec<&Outcome> = self
                .images
                .iter()
                .filter(|o| o.environment.as_deref().unwrap_or(NO_ENV) == wave)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(md, "## {wave}\n");
            md.push_str(
                "| Image | Action | Status | Digest | Run image | Time | Requests | Reason |\n",
            );
            md.push_str("|---|---|---|---|---|---|---|---|\n");
            for o in rows {
                let digest = match (&o.old_digest, &o.new_digest) {
                    (Some(a), Some(b)) if a != b => format!("`{}` → `{}`", short(a), short(b)),
                    (Some(a), _) => format!("`{}`", short(a)),
                    _ => String::new(),
                };
                let run = match (&o.old_run_image, &o.new_run_image) {
                    (Some(a), Some(b)) if a != b => {
                        format!("`{}` → `{}`", short_ref(a), short_ref(b))
                    }
                    (Some(a), _) => format!("`{}`", short_ref(a)),
                    _ => String::new(),
                };
                let mut reason = cell(&o.reason);
                if let Some(e) = &o.error {
                    let _ = write!(reason, "<br>**error:** {}", cell(e));
                }
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {}{} | {digest} | {run} | {:.2} s | {} | {reason} |",
                    o.image,
                    o.action,
                    o.status.as_str(),
                    if o.earlier { " (earlier run)" } else { "" },
                    o.seconds,
                    o.requests,
                );
            }
            md.push('\n');
        }
        md
    }
}

/// The wave name of images without an environment.
pub const NO_ENV: &str = "(none)";

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    // Twelve characters (labels are the image's word: not necessarily hex, not necessarily ASCII).
    let end = hex.char_indices().nth(12).map_or(hex.len(), |(i, _)| i);
    &hex[..end]
}

/// `repository@sha256:abc…` with the digest cut short.
fn short_ref(r: &str) -> String {
    match r.split_once('@') {
        Some((repo, d)) => format!("{repo}@{}", short(d)),
        None if r.starts_with("sha256:") => short(r).to_owned(),
        None => r.to_owned(),
    }
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
