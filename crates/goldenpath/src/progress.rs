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

    /// A callback for libraries that report steps as lines (the registry client).
    pub fn reporter(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |line: &str| match &bar {
            Some(bar) => bar.set_message(line.to_owned()),
            None => eprintln!("  {line}"),
        }
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
