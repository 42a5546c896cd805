//! Order resolution (Buildpack API "Order Resolution"): composite buildpacks are replaced by their own order,
//! depth-first left-to-right, multiplying groups; an optional composite entry also yields the group without it.

use gp_cnb::{GroupRef, OrderGroup};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("buildpack `{id}@{version}` refers to itself through its order ({path})")]
    Cycle {
        id: String,
        version: String,
        path: String,
    },
}

/// Expands `order` into groups of component buildpacks. `order_of(id, version)` returns the composite buildpack's
/// `[[order]]` groups, or `None` for a component buildpack.
pub fn expand_order(
    order: &[OrderGroup],
    order_of: &dyn Fn(&GroupRef) -> Option<Vec<OrderGroup>>,
) -> Result<Vec<Vec<GroupRef>>, ExpandError> {
    let mut out = Vec::new();
    for g in order {
        out.extend(expand_group(&g.group, order_of, &mut Vec::new())?);
    }
    Ok(out)
}

fn expand_group(
    entries: &[GroupRef],
    order_of: &dyn Fn(&GroupRef) -> Option<Vec<OrderGroup>>,
    stack: &mut Vec<String>,
) -> Result<Vec<Vec<GroupRef>>, ExpandError> {
    // Start with one empty prefix and extend every prefix with every expansion of the next entry.
    let mut groups: Vec<Vec<GroupRef>> = vec![Vec::new()];
    for e in entries {
        let key = format!("{}@{}", e.id, e.version);
        let options: Vec<Vec<GroupRef>> = match order_of(e) {
            None => vec![vec![e.clone()]],
            Some(nested) => {
                if stack.contains(&key) {
                    return Err(ExpandError::Cycle {
                        id: e.id.to_string(),
                        version: e.version.to_string(),
                        path: format!("{} -> {key}", stack.join(" -> ")),
                    });
                }
                stack.push(key);
                let mut opts = Vec::new();
                for g in &nested {
                    opts.extend(expand_group(&g.group, order_of, stack)?);
                }
                stack.pop();
                if e.optional {
                    opts.push(Vec::new()); // the group without this entry, after the original
                }
                opts
            }
        };
        groups = groups
            .iter()
            .flat_map(|prefix| {
                options.iter().map(move |opt| {
                    let mut g = prefix.clone();
                    g.extend(opt.iter().cloned());
                    g
                })
            })
            .collect();
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str) -> GroupRef {
        GroupRef {
            id: id.parse().unwrap(),
            version: "1.0.0".parse().unwrap(),
            optional: false,
            exec_env: Vec::new(),
        }
    }

    fn names(groups: &[Vec<GroupRef>]) -> Vec<String> {
        groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|e| e.id.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    fn og(ids: &[&str]) -> OrderGroup {
        OrderGroup {
            group: ids.iter().map(|i| r(i)).collect(),
        }
    }

    #[test]
    fn composites_expand_depth_first_left_to_right() {
        // O = [[A, B], [C, D]], P = [[E, F], [G, H]]; order [[E, O, F]] and [[O, P]] as in the spec.
        let lookup = |e: &GroupRef| match e.id.as_str() {
            "o" => Some(vec![og(&["a", "b"]), og(&["c", "d"])]),
            "p" => Some(vec![og(&["e", "f"]), og(&["g", "h"])]),
            _ => None,
        };
        let got = expand_order(&[og(&["e", "o", "f"])], &lookup).unwrap();
        assert_eq!(names(&got), ["e,a,b,f", "e,c,d,f"]);
        let got = expand_order(&[og(&["o", "p"])], &lookup).unwrap();
        assert_eq!(names(&got), ["a,b,e,f", "a,b,g,h", "c,d,e,f", "c,d,g,h"]);
    }

    #[test]
    fn optional_composites_repeat_the_group_without_them_and_cycles_are_refused() {
        let lookup = |e: &GroupRef| (e.id.as_str() == "o").then(|| vec![og(&["a"])]);
        let mut opt = r("o");
        opt.optional = true;
        let got = expand_order(
            &[OrderGroup {
                group: vec![r("x"), opt],
            }],
            &lookup,
        )
        .unwrap();
        assert_eq!(names(&got), ["x,a", "x"]);
        let cyclic = |e: &GroupRef| (e.id.as_str() == "o").then(|| vec![og(&["o"])]);
        assert!(matches!(
            expand_order(&[og(&["o"])], &cyclic),
            Err(ExpandError::Cycle { .. })
        ));
    }
}
