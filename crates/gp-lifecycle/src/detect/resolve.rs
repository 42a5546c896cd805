//! Build-plan resolution (Buildpack API "Detection"): one potential plan per buildpack, tried left to right; a trial
//! passes when every `requires` is provided by the same or an earlier buildpack and every `provides` is required by
//! the same or a later one. Optional buildpacks that break a rule are dropped from the trial instead of failing it.

use gp_cnb::{
    BuildPlan, BuildpackId, BuildpackVersion, PlanAlternative, PlanEntry, PlanProvider, PlanToml,
};

/// A buildpack whose `/bin/detect` passed, with the plan it wrote.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    pub optional: bool,
    pub plan: BuildPlan,
}

/// The outcome: indices of the buildpacks that take part, and `plan.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub included: Vec<usize>,
    pub plan: PlanToml,
}

/// Upper bound on trials (the product of every buildpack's alternatives).
const MAX_TRIALS: usize = 10_000;

/// The first trial that resolves, or `None` when every trial fails (the group fails detection).
#[must_use]
pub fn resolve_group(candidates: &[Candidate]) -> Option<Resolved> {
    let alternatives: Vec<Vec<PlanAlternative>> =
        candidates.iter().map(|c| c.plan.alternatives()).collect();
    let mut choice = vec![0usize; candidates.len()];
    for _ in 0..MAX_TRIALS {
        let trial: Vec<&PlanAlternative> = choice
            .iter()
            .enumerate()
            .map(|(i, &k)| &alternatives[i][k])
            .collect();
        if let Some(r) = try_trial(candidates, &trial) {
            return Some(r);
        }
        // Next combination, the last buildpack's alternatives varying fastest (left-to-right, depth-first).
        let mut i = candidates.len();
        loop {
            if i == 0 {
                return None;
            }
            i -= 1;
            choice[i] += 1;
            if choice[i] < alternatives[i].len() {
                break;
            }
            choice[i] = 0;
        }
    }
    None
}

fn try_trial(candidates: &[Candidate], trial: &[&PlanAlternative]) -> Option<Resolved> {
    let mut included: Vec<bool> = vec![true; candidates.len()];
    // Dropping an optional buildpack can break another one: repeat until nothing changes.
    loop {
        let mut changed = false;
        for i in 0..candidates.len() {
            if !included[i] {
                continue;
            }
            let requires_ok = trial[i].requires.iter().all(|r| {
                (0..=i).any(|j| included[j] && trial[j].provides.iter().any(|p| p.name == r.name))
            });
            let provides_ok = trial[i].provides.iter().all(|p| {
                (i..candidates.len())
                    .any(|j| included[j] && trial[j].requires.iter().any(|r| r.name == p.name))
            });
            if !(requires_ok && provides_ok) {
                if !candidates[i].optional {
                    return None;
                }
                included[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let idx: Vec<usize> = (0..candidates.len()).filter(|&i| included[i]).collect();
    Some(Resolved {
        plan: plan_of(candidates, trial, &idx),
        included: idx,
    })
}

/// One entry per required dependency name (in order of first requirement): who provides it, who requires it.
fn plan_of(candidates: &[Candidate], trial: &[&PlanAlternative], idx: &[usize]) -> PlanToml {
    let mut names: Vec<&str> = Vec::new();
    for &i in idx {
        for r in &trial[i].requires {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
    }
    let entries = names
        .into_iter()
        .map(|name| {
            let mut providers: Vec<PlanProvider> = Vec::new();
            for &j in idx {
                if trial[j].provides.iter().any(|p| p.name == name)
                    && !providers.iter().any(|p| p.id == candidates[j].id)
                {
                    providers.push(PlanProvider {
                        id: candidates[j].id.clone(),
                        version: candidates[j].version,
                        extension: false,
                    });
                }
            }
            let requires = idx
                .iter()
                .flat_map(|&j| trial[j].requires.iter().filter(|r| r.name == name).cloned())
                .collect();
            PlanEntry {
                providers,
                requires,
            }
        })
        .collect();
    PlanToml { entries }
}

#[cfg(test)]
mod tests {
    use gp_cnb::{Provide, Require};

    use super::*;

    fn alt(provides: &[&str], requires: &[&str]) -> PlanAlternative {
        PlanAlternative {
            provides: provides
                .iter()
                .map(|n| Provide { name: (*n).into() })
                .collect(),
            requires: requires
                .iter()
                .map(|n| Require {
                    name: (*n).into(),
                    metadata: None,
                })
                .collect(),
        }
    }

    fn cand(id: &str, optional: bool, alts: &[PlanAlternative]) -> Candidate {
        let first = alts.first().cloned().unwrap_or_default();
        Candidate {
            id: id.parse().unwrap(),
            version: "1.0.0".parse().unwrap(),
            optional,
            plan: BuildPlan {
                provides: first.provides,
                requires: first.requires,
                or: alts.iter().skip(1).cloned().collect(),
            },
        }
    }

    #[test]
    fn requires_must_be_provided_by_the_same_or_an_earlier_buildpack() {
        let node = cand("node", false, &[alt(&["node"], &[])]);
        let npm = cand("npm", false, &[alt(&[], &["node"])]);
        let r = resolve_group(&[node.clone(), npm.clone()]).unwrap();
        assert_eq!(r.included, [0, 1]);
        assert_eq!(r.plan.entries.len(), 1);
        assert_eq!(r.plan.entries[0].providers[0].id.as_str(), "node");
        // Reversed, `npm` requires what only a later buildpack provides, and `node` provides what no later one needs.
        assert!(resolve_group(&[npm, node]).is_none());
    }

    #[test]
    fn unmet_requires_fail_required_buildpacks_but_drop_optional_ones() {
        let app = cand("static", false, &[alt(&[], &[])]);
        let needs_jdk = cand("maven", true, &[alt(&[], &["jdk"])]);
        let r = resolve_group(&[app.clone(), needs_jdk]).unwrap();
        assert_eq!(r.included, [0]);
        let required = cand("maven", false, &[alt(&[], &["jdk"])]);
        assert!(resolve_group(&[app, required]).is_none());
    }

    #[test]
    fn or_alternatives_are_tried_left_to_right() {
        // `python` first offers to provide `pip` (nobody needs it), then to provide and require `python` itself.
        let py = cand(
            "python",
            false,
            &[alt(&["pip"], &[]), alt(&["python"], &["python"])],
        );
        let r = resolve_group(&[py]).unwrap();
        assert_eq!(r.plan.entries[0].requires[0].name, "python");
    }

    #[test]
    fn dropping_an_optional_provider_can_fail_a_later_requirer() {
        let opt = cand("opt", true, &[alt(&["x"], &["missing"])]);
        let user = cand("user", false, &[alt(&[], &["x"])]);
        assert!(resolve_group(&[opt, user]).is_none());
    }
}
