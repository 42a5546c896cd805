//! What a build reports while it runs. The library prints nothing: every phase header, buildpack output line,
//! transfer step and notice is an [`Event`] handed to the caller's [`Progress`]. The CLI draws them (bars on a
//! terminal, plain lines elsewhere, JSON lines with `--json`); a service stores them with the build.

use std::time::Duration;

use serde::Serialize;

/// A phase of a build session, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Fetching an image (builder, run image) before the build.
    Pulling,
    /// Unpacking a builder's root filesystem (once per builder digest).
    Unpacking,
    Detecting,
    Restoring,
    Building,
    Exporting,
    Caching,
    Publishing,
}

impl Phase {
    /// The header word the reference lifecycle prints (`===> DETECTING`).
    #[must_use]
    pub fn header(self) -> &'static str {
        match self {
            Self::Pulling => "PULLING",
            Self::Unpacking => "UNPACKING",
            Self::Detecting => "DETECTING",
            Self::Restoring => "RESTORING",
            Self::Building => "BUILDING",
            Self::Exporting => "EXPORTING",
            Self::Caching => "CACHING",
            Self::Publishing => "PUBLISHING",
        }
    }

    /// The name in summaries and metrics (`detecting`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pulling => "pulling",
            Self::Unpacking => "unpacking",
            Self::Detecting => "detecting",
            Self::Restoring => "restoring",
            Self::Building => "building",
            Self::Exporting => "exporting",
            Self::Caching => "caching",
            Self::Publishing => "publishing",
        }
    }
}

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Part of the build's account (`Restored python:venv`).
    Info,
    /// A choice made for the user that they may want to know about.
    Note,
    /// Something went wrong but the build goes on.
    Warning,
}

/// Where a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Pull,
    Push,
    Unpack,
}

/// One thing that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A phase begins (the previous one ends here); `detail` says what it works on (the image pulled).
    PhaseStarted {
        phase: Phase,
        detail: Option<String>,
    },
    /// A line a buildpack or a phase in the sandbox printed; `buildpack` when known.
    Output {
        buildpack: Option<String>,
        line: String,
    },
    /// The group detect chose, in order.
    Detected {
        buildpacks: Vec<(String, String)>,
    },
    /// A blob of a pull or push (`uploading sha256:… (12 bytes)`), and the bytes it moves.
    Transfer {
        direction: Direction,
        target: String,
        step: String,
        bytes: u64,
    },
    /// Long work without steps of its own starts or ends (drawn as a spinner on a terminal).
    Activity {
        label: String,
        done: bool,
    },
    Notice {
        level: Level,
        text: String,
    },
    /// The image is in its layout; `reference` is `None` when the layout is only the way to a registry.
    Exported {
        reference: Option<String>,
        digest: String,
        layers: usize,
        from_run_image: usize,
    },
    /// The image (or the cache image) is in the registry.
    Pushed {
        reference: String,
        digest: String,
        uploaded: usize,
        mounted: usize,
        present: usize,
        cache: bool,
        layers: usize,
    },
    /// How long the buildpacks' own `bin/build` ran, each and in all (milliseconds in JSON).
    BuildpackTimes {
        #[serde(rename = "each_ms", serialize_with = "each_ms")]
        each: Vec<(String, Duration)>,
        #[serde(rename = "total_ms", serialize_with = "ms")]
        total: Duration,
    },
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` signature
fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

fn each_ms<S: serde::Serializer>(each: &[(String, Duration)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(each.len()))?;
    for (id, d) in each {
        seq.serialize_element(&(id, d.as_millis()))?;
    }
    seq.end()
}

impl Event {
    /// The event as the reference lifecycle's lines of text (`===> DETECTING`, `[id] output`, `*** Image: ...`);
    /// none for a transfer step or an activity, which only a terminal shows (as a spinner).
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::PhaseStarted { phase, detail } => vec![match detail {
                Some(d) => format!("===> {} {d}", phase.header()),
                None => format!("===> {}", phase.header()),
            }],
            Self::Output {
                buildpack: Some(id),
                line,
            } => vec![format!("[{id}] {line}")],
            Self::Output { line, .. } => vec![line.clone()],
            Self::Detected { buildpacks } => buildpacks
                .iter()
                .map(|(id, version)| format!("{id} {version}"))
                .collect(),
            Self::Transfer { .. } | Self::Activity { .. } => Vec::new(),
            Self::Notice { level, text } => vec![match level {
                Level::Info => text.clone(),
                Level::Note => format!("note: {text}"),
                Level::Warning => format!("warning: {text}"),
            }],
            Self::Exported {
                reference,
                digest,
                layers,
                from_run_image,
            } => reference
                .iter()
                .map(|r| format!("*** Image: {r}@{digest}"))
                .chain([format!(
                    "*** Layers: {layers} ({from_run_image} from the run image)"
                )])
                .collect(),
            Self::Pushed {
                reference,
                digest,
                uploaded,
                mounted,
                present,
                cache,
                layers,
            } => {
                let blobs = format!(
                    "{uploaded} blob(s) uploaded, {mounted} mounted, {present} already there"
                );
                vec![if *cache {
                    format!("*** Cache image: {reference}@{digest} ({layers} layer(s); {blobs})")
                } else {
                    format!("*** Published {reference}@{digest}: {blobs}")
                }]
            }
            Self::BuildpackTimes { each, total } => {
                let each: Vec<String> = each
                    .iter()
                    .map(|(id, d)| format!("{id} {} ms", d.as_millis()))
                    .collect();
                vec![format!(
                    "*** Buildpacks ran for {} ms ({})",
                    total.as_millis(),
                    each.join(", ")
                )]
            }
        }
    }

    pub fn notice(text: impl Into<String>) -> Self {
        Self::Notice {
            level: Level::Info,
            text: text.into(),
        }
    }

    pub fn note(text: impl Into<String>) -> Self {
        Self::Notice {
            level: Level::Note,
            text: text.into(),
        }
    }

    pub fn warning(text: impl Into<String>) -> Self {
        Self::Notice {
            level: Level::Warning,
            text: text.into(),
        }
    }
}

/// Receives a build's events, from any thread (uploads run beside the build).
pub trait Progress: Send + Sync {
    fn event(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> Progress for F {
    fn event(&self, event: Event) {
        self(event);
    }
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}

/// Collects events in memory, in arrival order (tests, a service's build log).
#[derive(Debug, Default)]
pub struct Recorder(std::sync::Mutex<Vec<Event>>);

impl Recorder {
    /// The events so far.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Progress for Recorder {
    fn event(&self, event: Event) {
        if let Ok(mut e) = self.0.lock() {
            e.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Event, Phase};

    #[test]
    fn events_read_as_the_reference_lifecycles_lines() {
        let lines = |e: Event| e.lines().join("\n");
        assert_eq!(
            lines(Event::PhaseStarted {
                phase: Phase::Pulling,
                detail: Some("reg/run:1".into())
            }),
            "===> PULLING reg/run:1"
        );
        assert_eq!(
            lines(Event::Output {
                buildpack: Some("a/b".into()),
                line: "hi".into()
            }),
            "[a/b] hi"
        );
        assert_eq!(lines(Event::warning("careful")), "warning: careful");
        assert_eq!(
            lines(Event::Exported {
                reference: None,
                digest: "sha256:1".into(),
                layers: 5,
                from_run_image: 2
            }),
            "*** Layers: 5 (2 from the run image)"
        );
        assert_eq!(
            lines(Event::Pushed {
                reference: "reg/app:1".into(),
                digest: "sha256:2".into(),
                uploaded: 1,
                mounted: 2,
                present: 3,
                cache: true,
                layers: 4
            }),
            "*** Cache image: reg/app:1@sha256:2 (4 layer(s); 1 blob(s) uploaded, 2 mounted, 3 already there)"
        );
        assert_eq!(
            lines(Event::BuildpackTimes {
                each: vec![("a/b".into(), Duration::from_millis(7))],
                total: Duration::from_millis(7)
            }),
            "*** Buildpacks ran for 7 ms (a/b 7 ms)"
        );
        assert!(
            Event::Transfer {
                direction: super::Direction::Push,
                target: "reg/app:1".into(),
                step: "uploading".into(),
                bytes: 1
            }
            .lines()
            .is_empty()
        );
    }

    #[test]
    fn json_events_carry_their_kind_and_milliseconds() {
        let e = Event::BuildpackTimes {
            each: vec![("a/b".into(), Duration::from_millis(1500))],
            total: Duration::from_millis(1500),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "buildpack-times");
        assert_eq!(v["total_ms"], 1500);
        assert_eq!(v["each_ms"][0][1], 1500);
    }
}
