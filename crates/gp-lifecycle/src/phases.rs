//! The inner phases as one sequence, shared by the static `lifecycle` binary (which runs them inside the build
//! image) and by a build session that runs buildpacks directly (`--sandbox none`): detect reports the group it
//! chose (or every buildpack's output when none passed), build reports each output line and the time each
//! buildpack's `bin/build` took.

use std::collections::BTreeMap;

use gp_cnb::{GroupToml, OrderGroup, PlanToml};

use crate::build::{BuildDirs, BuildError, BuildLog, Built, build};
use crate::detect::{DetectDirs, DetectError, Detected, detect};
use crate::progress::{Event, Progress};

/// Detect: the group that passes for the app, and its plan.
pub fn detect_phase(
    order: &[OrderGroup],
    dirs: &DetectDirs,
    progress: &dyn Progress,
) -> Result<Detected, DetectError> {
    match detect(order, dirs) {
        Ok(detected) => {
            progress.event(Event::Detected {
                buildpacks: detected
                    .group
                    .group
                    .iter()
                    .map(|m| (m.id.to_string(), m.version.to_string()))
                    .collect(),
            });
            Ok(detected)
        }
        Err(e) => {
            if let DetectError::NoGroup { log, .. } = &e {
                for line in log {
                    progress.event(Event::Output {
                        buildpack: None,
                        line: line.clone(),
                    });
                }
            }
            Err(e)
        }
    }
}

/// Build: runs the group's `bin/build`s and collects what they declared.
pub fn build_phase(
    group: &GroupToml,
    plan: &PlanToml,
    dirs: &BuildDirs,
    env: &BTreeMap<String, String>,
    progress: &dyn Progress,
) -> Result<Built, BuildError> {
    let mut log = BuildLog::new(progress);
    let built = build(group, plan, dirs, env, &mut log)?;
    progress.event(Event::BuildpackTimes {
        total: log.timings.iter().map(|(_, d)| *d).sum(),
        each: log.timings,
    });
    Ok(built)
}
