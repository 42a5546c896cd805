//! `spec.runtime`: replicas and per-replica resources, with the platform's policy limits.

use crate::diag::{Code, FieldPath};
use crate::ids::EnvName;
use crate::model::{Resources, Runtime};
use crate::quantity::Quantity;
use crate::source::Span;
use crate::yaml::Node;

use super::Cx;

pub(super) fn runtime(
    cx: &mut Cx<'_>,
    node: &Node,
    path: FieldPath,
    env: Option<&EnvName>,
) -> Option<Runtime> {
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(
        node,
        path,
        at,
        "    replicas: 2\n    resources:\n      memory: 512Mi\n      cpu: 250m",
    )?;
    let max = cx.config.policy.max_replicas;
    let replicas = if let Some((n, p)) = cx.opt(&mut f, "replicas") {
        cx.uint(n, &p, 1000).and_then(|r| {
            if r > max {
                cx.error(
                    Code::Policy,
                    n.span,
                    &p,
                    format!("`{p}` is {r}; the platform policy allows at most {max}"),
                    Some(format!(
                        "use at most {max}, or ask the platform team to raise `policy.max-replicas`"
                    )),
                );
                return None;
            }
            check_min_replicas(cx, r, &p, n.span, env, false).then_some(r)
        })
    } else {
        let p = f.path.key("replicas");
        check_min_replicas(cx, 1, &p, f.at, env, true).then_some(1)
    };
    let resources = match cx.opt(&mut f, "resources") {
        Some((n, p)) => resources(cx, n, p),
        None => Some(Resources::default()),
    };
    cx.finish(&f, &["replicas", "resources"], |k| match k {
        "memory" | "cpu" => Some(format!("`{k}` belongs under `spec.runtime.resources`")),
        "limits" | "requests" => Some(
            "give `resources.memory` and `resources.cpu`; the platform derives requests and limits"
                .to_owned(),
        ),
        "port" | "ports" => {
            Some("apps listen on `$PORT` (8080); no port setting is needed".to_owned())
        }
        _ => None,
    });
    Some(Runtime {
        replicas: replicas?,
        resources: resources?,
    })
}

/// Environment minimum (prod: 2 by default). Returns false when violated.
pub(super) fn check_min_replicas(
    cx: &mut Cx<'_>,
    r: u32,
    p: &FieldPath,
    span: Span,
    env: Option<&EnvName>,
    defaulted: bool,
) -> bool {
    let Some((name, e)) = env.and_then(|n| cx.config.environments.get(n).map(|e| (n, e))) else {
        return true;
    };
    if r >= e.min_replicas {
        return true;
    }
    let min = e.min_replicas;
    let why = if defaulted {
        format!(" (`{p}` defaults to 1)")
    } else {
        String::new()
    };
    cx.error(
        Code::Policy,
        span,
        p,
        format!("environment `{name}` needs at least {min} replicas, this contract runs {r}{why}"),
        Some(format!(
            "set `replicas: {min}` or more under `spec.runtime`"
        )),
    );
    false
}

fn resources(cx: &mut Cx<'_>, node: &Node, path: FieldPath) -> Option<Resources> {
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(node, path, at, "      memory: 512Mi\n      cpu: 250m")?;
    let memory = match cx.opt(&mut f, "memory") {
        Some((n, p)) => quantity(cx, n, &p).and_then(|q| check_memory(cx, q, n.span, &p)),
        None => Some(crate::model::default_memory()),
    };
    let cpu = match cx.opt(&mut f, "cpu") {
        Some((n, p)) => quantity(cx, n, &p).and_then(|q| check_cpu(cx, q, n.span, &p)),
        None => Some(crate::model::default_cpu()),
    };
    cx.finish(&f, &["memory", "cpu"], |k| match k {
        "limits" | "requests" => Some(
            "give `memory` and `cpu` directly; the platform derives requests and limits".to_owned(),
        ),
        "mem" | "ram" => Some("did you mean `memory`?".to_owned()),
        _ => None,
    });
    Some(Resources {
        memory: memory?,
        cpu: cpu?,
    })
}

fn quantity(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Quantity> {
    let Some(s) = node.as_scalar() else {
        let found = node.describe();
        cx.error(
            Code::WrongType,
            node.span,
            path,
            format!("`{path}` must be a quantity such as `512Mi` or `250m`, found {found}"),
            Some("write one value, e.g. `memory: 512Mi` or `cpu: 250m`".to_owned()),
        );
        return None;
    };
    match s.text.parse::<Quantity>() {
        Ok(q) => Some(q),
        Err(e) => {
            cx.error(
                Code::Quantity,
                node.span,
                path,
                format!("`{path}`: {}", e.message),
                e.hint,
            );
            None
        }
    }
}

fn check_memory(cx: &mut Cx<'_>, q: Quantity, span: Span, p: &FieldPath) -> Option<Quantity> {
    let pol = &cx.config.policy;
    let (min, max) = (pol.min_memory.clone(), pol.max_memory.clone());
    if q.as_str().ends_with('m') {
        let n = q.as_str().trim_end_matches('m');
        cx.error(
            Code::Quantity,
            span,
            p,
            format!(
                "`{p}` is `{q}`, which means {} (`m` is milli)",
                Quantity::describe_bytes(q.value())
            ),
            Some(format!("for mebibytes write `{n}Mi`")),
        );
        return None;
    }
    if q.value() < min.value() {
        cx.error(
            Code::Policy,
            span,
            p,
            format!(
                "`{p}` is `{q}` ({}); the platform minimum is `{min}`",
                Quantity::describe_bytes(q.value())
            ),
            Some(format!("use at least `{min}`")),
        );
        return None;
    }
    if q.value() > max.value() {
        cx.error(
            Code::Policy,
            span,
            p,
            format!("`{p}` is `{q}`; the platform policy allows at most `{max}` per replica"),
            Some(format!("use at most `{max}` and scale out with `replicas`")),
        );
        return None;
    }
    Some(q)
}

fn check_cpu(cx: &mut Cx<'_>, q: Quantity, span: Span, p: &FieldPath) -> Option<Quantity> {
    let max = cx.config.policy.max_cpu.clone();
    if q.value() < 0.001 {
        cx.error(
            Code::Quantity,
            span,
            p,
            format!("`{p}` is `{q}`, below Kubernetes' 1m precision"),
            Some("use at least `1m`, typically `100m` to `1`".to_owned()),
        );
        return None;
    }
    if q.value() > max.value() {
        let hint = if q.as_str().bytes().all(|b| b.is_ascii_digit()) && q.value() >= 10.0 {
            format!("`{q}` means {q} whole cores; for millicores write `{q}m`")
        } else {
            format!("use at most `{max}` and scale out with `replicas`")
        };
        cx.error(
            Code::Policy,
            span,
            p,
            format!("`{p}` is `{q}` cores; the platform policy allows at most `{max}` per replica"),
            Some(hint),
        );
        return None;
    }
    Some(q)
}
