//! Progress for long, quiet work (pulls, unpacks, uploads, stack builds): on a terminal a spinner with the
//! elapsed time and the latest step, cleared into one summary line when done; elsewhere (CI, a pipe, `TERM=dumb`)
//! plain lines only. No colour either way, so `NO_COLOR` has nothing to turn off here.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Whether stderr is an interactive terminal a spinner may redraw.
fn interactive() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// One long activity, announced as `===> LABEL`.
#[derive(Debug)]
pub struct Activity {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
}

impl Activity {
    pub fn start(label: &str) -> Self {
        let bar = interactive().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            eprintln!("===> {label}");
        }
        Self {
            bar,
            label: label.to_owned(),
            started: Instant::now(),
        }
    }

    /// A spinner on a terminal and nothing elsewhere: for work whose header is printed already.
    pub fn spinner(label: &str) -> Self {
        if interactive() {
            Self::start(label)
        } else {
            Self {
                bar: None,
                label: label.to_owned(),
                started: Instant::now(),
            }
        }
    }
}

impl Activity {
    /// Turns the spinner into a bar of bytes: `bytes` more are on their way; the ones announced before have
    /// arrived (registries report each blob as it starts).
    fn transferred(&mut self, bytes: u64, step: &str) {
        let Some(bar) = &self.bar else { return };
        if bar.length().is_none() {
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed}] {bar:30} {bytes}/{total_bytes} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_length(0);
        }
        bar.set_position(bar.length().unwrap_or(0));
        bar.inc_length(bytes);
        bar.set_message(step.to_owned());
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            eprintln!(
                "===> {} ({:.1} s)",
                self.label,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// How a build's events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Lines on stderr (with spinners on a terminal).
    Text,
    /// One JSON object per event on stdout, for CI.
    Json,
}

/// Draws a build session's events: the reference lifecycle's lines on stderr, spinners for long work and bars
/// of bytes for pulls and uploads on a terminal, or a JSON event stream.
#[derive(Debug)]
pub struct Reporter {
    style: Style,
    activity: std::sync::Mutex<Option<Activity>>,
}

impl Reporter {
    #[must_use]
    pub fn new(style: Style) -> Self {
        Self {
            style,
            activity: std::sync::Mutex::new(None),
        }
    }

    /// A line of the build's account: on stderr as text, or as a JSON `message` event.
    pub fn line(&self, text: &str) {
        match self.style {
            Style::Text => eprintln!("{text}"),
            Style::Json => json_line(&serde_json::json!({"event": "message", "text": text})),
        }
    }

    fn text(&self, event: &gp_lifecycle::progress::Event) {
        use gp_lifecycle::progress::{Direction, Event};
        let Ok(mut current) = self.activity.lock() else {
            return;
        };
        match event {
            Event::Transfer {
                direction,
                target,
                step,
                bytes,
            } if interactive() => {
                let verb = match direction {
                    Direction::Pull => "pulling",
                    Direction::Push => "uploading to",
                    Direction::Unpack => "unpacking",
                };
                current
                    .get_or_insert_with(|| Activity::spinner(&format!("{verb} {target}")))
                    .transferred(*bytes, step);
            }
            Event::Transfer { step, .. } => eprintln!("  {step}"),
            Event::Activity { label, done } => {
                *current = (!done).then(|| Activity::spinner(label));
            }
            _ => {
                if matches!(event, Event::PhaseStarted { .. }) {
                    *current = None; // a pull's bar ends with its phase
                }
                for line in event.lines() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl gp_lifecycle::progress::Progress for Reporter {
    fn event(&self, event: gp_lifecycle::progress::Event) {
        match self.style {
            Style::Text => self.text(&event),
            Style::Json => json_line(&event),
        }
    }
}

/// One JSON object on its own line of stdout.
pub fn json_line(value: &impl serde::Serialize) {
    use std::io::Write;
    if let Ok(text) = serde_json::to_string(value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}
