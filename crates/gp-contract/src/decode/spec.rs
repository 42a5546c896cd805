//! The `spec` section: source, build, runtime, ingress and bindings, with the policy checks that need no other file.

use std::collections::HashMap;

use crate::diag::{Code, Diagnostic, FieldPath};
use crate::ids::{
    BindingName, Branch, BuilderName, EnvName, EnvVarName, GitUrl, Hostname, RelativePath,
    ResourceRef,
};
use crate::model::{
    AppSpec, Binding, BindingType, Build, BuildEngine, BuildpackBuild, DockerfileBuild, EnvVar,
    GitSource, Ingress, Runtime, Source, default_branch, default_builder, default_context,
    default_dockerfile,
};
use crate::source::Span;
use crate::yaml::{Node, NodeKind};

use super::runtime::{check_min_replicas, runtime};
use super::{Cx, Facts, did_you_mean, list};

const SPEC: &[&str] = &["source", "build", "runtime", "ingress", "bindings"];
const BUILDPACK_ONLY: &[&str] = &["builder", "engine"];
const DOCKERFILE_ONLY: &[&str] = &["context", "dockerfile"];
const RESERVED_ENV: &[&str] = &["PORT", "SERVICE_BINDING_ROOT", "HOME", "PATH"];

pub(super) fn spec(
    cx: &mut Cx<'_>,
    node: &Node,
    path: FieldPath,
    at: Span,
    env: Option<&EnvName>,
    facts: &mut Facts,
) -> Option<AppSpec> {
    let mut f = cx.fields(
        node,
        path,
        at,
        "  source:\n    git:\n      url: https://github.com/org/app\n  build:\n    type: buildpack",
    )?;
    let src_hint = "add `source:` with `git: {url: https://github.com/org/app, branch: main}`";
    let source = cx
        .req(&mut f, "source", src_hint)
        .and_then(|(n, p)| source(cx, n, p));
    let build = cx
        .req(
            &mut f,
            "build",
            "add `build:` with `type: buildpack` (recommended) or `type: dockerfile`",
        )
        .and_then(|(n, p)| build(cx, n, p));
    let runtime = if let Some((n, p)) = cx.opt(&mut f, "runtime") {
        runtime(cx, n, p, env)
    } else {
        let rt = Runtime::default();
        check_min_replicas(
            cx,
            rt.replicas,
            &f.path.key("runtime").key("replicas"),
            f.at,
            env,
            true,
        );
        Some(rt)
    };
    let ingress = match cx.opt(&mut f, "ingress") {
        Some((n, p)) => ingress(cx, n, &p, env, facts),
        None => Some(Ingress::default()),
    };
    let bindings = match cx.opt(&mut f, "bindings") {
        Some((n, p)) => bindings(cx, n, &p),
        None => Some(Vec::new()),
    };
    cx.finish(&f, SPEC, spec_hint);
    Some(AppSpec {
        source: source?,
        build: build?,
        runtime: runtime?,
        ingress: ingress?,
        bindings: bindings?,
    })
}

fn spec_hint(key: &str) -> Option<String> {
    Some(match key {
        "replicas" | "resources" => format!("`{key}` belongs under `spec.runtime`"),
        "memory" | "cpu" => format!("`{key}` belongs under `spec.runtime.resources`"),
        "git" | "repository" | "repo" => "the repository goes under `spec.source.git`".to_owned(),
        "host" | "hostname" | "domain" => "the host goes under `spec.ingress.host`".to_owned(),
        "env" => "build-time variables go under `spec.build.env`".to_owned(),
        "image" => "the platform builds and names the image; remove `image`".to_owned(),
        "type" | "builder" | "dockerfile" | "context" => {
            format!("`{key}` belongs under `spec.build`")
        }
        _ => return None,
    })
}

fn source(cx: &mut Cx<'_>, node: &Node, path: FieldPath) -> Option<Source> {
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(
        node,
        path,
        at,
        "    git:\n      url: https://github.com/org/app\n      branch: main",
    )?;
    let git = cx
        .req(&mut f, "git", "add `git:` with the repository URL")
        .and_then(|(n, p)| git(cx, n, p));
    cx.finish(&f, &["git"], |k| match k {
        "url" | "branch" | "revision" => Some(format!("`{k}` belongs under `spec.source.git`")),
        _ => None,
    });
    Some(Source { git: git? })
}

fn git(cx: &mut Cx<'_>, node: &Node, path: FieldPath) -> Option<GitSource> {
    if let NodeKind::Scalar(_) = node.kind {
        // Documented shorthand: `git: URL` means `{url: URL, branch: main}`.
        let url = cx.parse::<GitUrl>(node, &path, Code::GitUrl)?;
        return Some(GitSource {
            url,
            branch: default_branch(),
        });
    }
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(
        node,
        path,
        at,
        "      url: https://github.com/org/app\n      branch: main",
    )?;
    let url = cx
        .req(&mut f, "url", "add `url: https://HOST/ORG/REPO`")
        .and_then(|(n, p)| cx.parse::<GitUrl>(n, &p, Code::GitUrl));
    let branch = match cx.opt(&mut f, "branch") {
        Some((n, p)) => cx.parse::<Branch>(n, &p, Code::InvalidValue),
        None => Some(default_branch()),
    };
    cx.finish(&f, &["url", "branch"], |k| match k {
        "revision" | "ref" | "tag" | "commit" => Some(
            "GoldenPath deploys a branch: use `branch` (kpack rebuilds on every new commit)"
                .to_owned(),
        ),
        "repo" | "repository" | "uri" => Some("did you mean `url`?".to_owned()),
        _ => None,
    });
    Some(GitSource {
        url: url?,
        branch: branch?,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum BuildType {
    Buildpack,
    Dockerfile,
}

fn build(cx: &mut Cx<'_>, node: &Node, path: FieldPath) -> Option<Build> {
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(node, path, at, "    type: buildpack\n    builder: default")?;
    let ty = cx
        .req(
            &mut f,
            "type",
            "add `type: buildpack` (recommended) or `type: dockerfile`",
        )
        .and_then(|(n, p)| {
            cx.one_of(
                n,
                &p,
                &[
                    ("buildpack", BuildType::Buildpack),
                    ("dockerfile", BuildType::Dockerfile),
                ],
            )
        });
    let env = match cx.opt(&mut f, "env") {
        Some((n, p)) => env_list(cx, n, &p),
        None => Some(Vec::new()),
    };
    let result = match ty {
        Some(BuildType::Buildpack) => {
            not_applicable(cx, &mut f, DOCKERFILE_ONLY, "dockerfile");
            let builder = match cx.opt(&mut f, "builder") {
                Some((n, p)) => builder(cx, n, &p),
                None => Some(default_builder()),
            };
            let engine = match cx.opt(&mut f, "engine") {
                Some((n, p)) => cx.one_of(
                    n,
                    &p,
                    &[
                        ("kpack", BuildEngine::Kpack),
                        ("github-actions", BuildEngine::GithubActions),
                    ],
                ),
                None => Some(BuildEngine::Kpack),
            };
            match (builder, engine, env) {
                (Some(builder), Some(engine), Some(env)) => {
                    Some(Build::Buildpack(BuildpackBuild {
                        builder,
                        engine,
                        env,
                    }))
                }
                _ => None,
            }
        }
        Some(BuildType::Dockerfile) => {
            not_applicable(cx, &mut f, BUILDPACK_ONLY, "buildpack");
            let context = path_field(cx, &mut f, "context", default_context);
            let dockerfile = path_field(cx, &mut f, "dockerfile", default_dockerfile);
            match (context, dockerfile, env) {
                (Some(context), Some(dockerfile), Some(env)) => {
                    Some(Build::Dockerfile(DockerfileBuild {
                        context,
                        dockerfile,
                        env,
                    }))
                }
                _ => None,
            }
        }
        None => {
            for k in ["builder", "engine", "context", "dockerfile"] {
                cx.opt(&mut f, k);
            }
            None
        }
    };
    cx.finish(
        &f,
        &["type", "builder", "engine", "context", "dockerfile", "env"],
        |k| match k {
            "args" | "buildArgs" | "environment" => {
                Some("build variables go in `env` as `- name: X` / `value: \"...\"`".to_owned())
            }
            "buildpacks" => {
                Some("buildpacks come from the builder; pick one with `builder`".to_owned())
            }
            _ => None,
        },
    );
    result
}

/// Names that must be unique within one list; later uses are reported, pointing back at the first.
struct Unique {
    seen: HashMap<String, Span>,
    code: Code,
    what: &'static str,
    problem: &'static str,
    hint: &'static str,
}

impl Unique {
    fn new(code: Code, what: &'static str, problem: &'static str, hint: &'static str) -> Self {
        Self {
            seen: HashMap::new(),
            code,
            what,
            problem,
            hint,
        }
    }

    /// False (and a diagnostic) when `name` was used before.
    fn first_use(&mut self, cx: &mut Cx<'_>, name: &str, span: Span, field: &FieldPath) -> bool {
        let Some(first) = self.seen.get(name) else {
            self.seen.insert(name.to_owned(), span);
            return true;
        };
        let d = Diagnostic::error(
            self.code,
            cx.file,
            span,
            format!("{} `{name}` {}", self.what, self.problem),
        )
        .field(field)
        .hint(self.hint)
        .related(cx.file, *first, "first used here");
        cx.push(d);
        false
    }
}

fn not_applicable(cx: &mut Cx<'_>, f: &mut super::Fields<'_>, keys: &[&str], other: &str) {
    let this = if other == "dockerfile" {
        "buildpack"
    } else {
        "dockerfile"
    };
    for k in keys {
        if f.has(k) {
            cx.opt(f, k);
            let p = f.path.key(k);
            let span = cx.spans.key(p.as_str()).unwrap_or(f.at);
            cx.error(
                Code::NotApplicable,
                span,
                &p,
                format!("`{k}` applies only to `type: {other}`, but this build is `type: {this}`"),
                Some(format!("remove `{k}`, or switch to `type: {other}`")),
            );
        }
    }
}

fn path_field(
    cx: &mut Cx<'_>,
    f: &mut super::Fields<'_>,
    key: &str,
    default: fn() -> RelativePath,
) -> Option<RelativePath> {
    match cx.opt(f, key) {
        Some((n, p)) => cx.parse::<RelativePath>(n, &p, Code::UnsafePath),
        None => Some(default()),
    }
}

fn builder(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<BuilderName> {
    let b = cx.parse::<BuilderName>(node, path, Code::InvalidValue)?;
    if cx.config.builders.contains_key(&b) {
        return Some(b);
    }
    let names: Vec<&str> = cx.config.builders.keys().map(BuilderName::as_str).collect();
    let hint = did_you_mean(b.as_str(), names.iter().copied()).map_or_else(
        || format!("use one of {}", list(&names)),
        |m| format!("did you mean `{m}`?"),
    );
    cx.error(
        Code::UnknownBuilder,
        node.span,
        path,
        format!("builder `{b}` is not defined in the platform config"),
        Some(hint),
    );
    None
}

fn env_list(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Vec<EnvVar>> {
    let items = cx.seq(
        node,
        path,
        "    env:\n      - name: BP_NODE_VERSION\n        value: \"20\"",
    )?;
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen = Unique::new(
        Code::DuplicateEnv,
        "build variable",
        "is set twice",
        "keep one entry; later entries would silently win",
    );
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(mut f) = cx.fields(
            item,
            p.clone(),
            item.span,
            "      - name: NAME\n        value: \"text\"",
        ) else {
            ok = false;
            continue;
        };
        let name = cx
            .req(&mut f, "name", "add `name:` with the variable's name")
            .and_then(|(n, np)| {
                cx.parse::<EnvVarName>(n, &np, Code::InvalidValue)
                    .map(|v| (v, n.span, np))
            });
        let value = cx
            .req(&mut f, "value", "add `value:` (quote numbers and booleans)")
            .and_then(|(n, vp)| cx.string(n, &vp).map(str::to_owned));
        cx.finish(&f, &["name", "value"], |k| match k {
            "valueFrom" | "secretKeyRef" => Some("build variables are plain values; put secrets in a `bindings` entry of `type: secret`".to_owned()),
            _ => None,
        });
        let (Some((name, span, np)), Some(value)) = (name, value) else {
            ok = false;
            continue;
        };
        let s = name.as_str();
        if RESERVED_ENV.contains(&s) || s.starts_with("CNB_") {
            cx.error(Code::ReservedEnv, span, &np, format!("`{s}` is set by the platform and cannot be overridden"), Some("choose another name; `PORT` is always 8080 and `CNB_*` belong to the buildpack lifecycle".to_owned()));
            ok = false;
        }
        if !seen.first_use(cx, s, span, &np) {
            ok = false;
        }
        out.push(EnvVar { name, value });
    }
    ok.then_some(out)
}

fn ingress(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &FieldPath,
    env: Option<&EnvName>,
    facts: &mut Facts,
) -> Option<Ingress> {
    let at = cx.spans.key(path.as_str()).unwrap_or(node.span);
    let mut f = cx.fields(
        node,
        path.clone(),
        at,
        "    enabled: true\n    host: my-app.dev.goldenpath.io",
    )?;
    let enabled = match cx.opt(&mut f, "enabled") {
        Some((n, p)) => cx.boolean(n, &p),
        None => Some(false),
    };
    let host = match cx.opt(&mut f, "host") {
        Some((n, p)) => cx
            .parse::<Hostname>(n, &p, Code::IngressHost)
            .map(|h| Some((h, n.span, p))),
        None => Some(None),
    };
    cx.finish(&f, &["enabled", "host"], |k| match k {
        "tls" => {
            Some("TLS is set up by the platform for every ingress host; remove `tls`".to_owned())
        }
        "class" | "className" | "ingressClassName" => {
            Some("the ingress class comes from the platform config".to_owned())
        }
        "path" | "paths" => Some("the ingress routes `/` to the app; remove it".to_owned()),
        _ => None,
    });
    let (enabled, host) = (enabled?, host?);
    if let Some((h, span, p)) = &host {
        if !enabled {
            cx.push(
                Diagnostic::warning(
                    Code::IgnoredField,
                    cx.file,
                    *span,
                    format!("`{p}` is set but the ingress is disabled, so no route is created"),
                )
                .field(p)
                .hint("set `enabled: true`, or remove `host`"),
            );
        } else if !under_domain(cx, h, *span, p, env) {
            return None;
        }
        if enabled {
            facts.host = Some((h.clone(), *span));
        }
    } else if enabled {
        let domain = env
            .and_then(|e| cx.config.environments.get(e))
            .map_or("the environment's domain".to_owned(), |e| {
                format!("`{}`", e.domain)
            });
        cx.error(
            Code::IngressHost,
            at,
            &path.key("host"),
            "`spec.ingress.enabled` is true but no `host` is given",
            Some(format!(
                "add `host: <application>.{}` (a name under {domain})",
                domain.trim_matches('`')
            )),
        );
        return None;
    }
    Some(Ingress {
        enabled,
        host: host.map(|(h, _, _)| h),
    })
}

fn under_domain(
    cx: &mut Cx<'_>,
    h: &Hostname,
    span: Span,
    p: &FieldPath,
    env: Option<&EnvName>,
) -> bool {
    let Some((name, e)) = env.and_then(|n| cx.config.environments.get(n).map(|e| (n, e))) else {
        return true;
    };
    let domain = e.domain.as_str();
    if h.as_str()
        .strip_suffix(domain)
        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
    {
        return true;
    }
    let first = h.as_str().split('.').next().unwrap_or("app");
    cx.error(
        Code::IngressHost,
        span,
        p,
        format!("host `{h}` is not under `{domain}`, the ingress domain of environment `{name}`"),
        Some(format!(
            "use a name under the domain, e.g. `{first}.{domain}`"
        )),
    );
    false
}

fn bindings(cx: &mut Cx<'_>, node: &Node, path: &FieldPath) -> Option<Vec<Binding>> {
    let items = cx.seq(
        node,
        path,
        "    - type: database\n      name: payments-db\n      ref: RDS-0001",
    )?;
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen = Unique::new(
        Code::DuplicateBinding,
        "binding name",
        "is used twice",
        "give each binding its own name; each one mounts its own Secret",
    );
    let types: Vec<(&str, BindingType)> =
        BindingType::ALL.iter().map(|t| (t.as_str(), *t)).collect();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(mut f) = cx.fields(
            item,
            p.clone(),
            item.span,
            "    - type: database\n      name: payments-db",
        ) else {
            ok = false;
            continue;
        };
        let kind = cx
            .req(
                &mut f,
                "type",
                "add `type:` (database, cache, queue or secret)",
            )
            .and_then(|(n, tp)| {
                let t = cx.one_of(n, &tp, &types)?;
                if cx.config.policy.binding_types.contains(&t) {
                    return Some(t);
                }
                let allowed: Vec<&str> = cx
                    .config
                    .policy
                    .binding_types
                    .iter()
                    .map(|b| b.as_str())
                    .collect();
                cx.error(
                    Code::Policy,
                    n.span,
                    &tp,
                    format!("binding type `{t}` is not allowed by the platform policy"),
                    Some(format!("allowed: {}", list(&allowed))),
                );
                None
            });
        let name = cx
            .req(
                &mut f,
                "name",
                "add `name:` (it names the Secret and the mount directory)",
            )
            .and_then(|(n, np)| {
                cx.parse::<BindingName>(n, &np, Code::InvalidValue)
                    .map(|v| (v, n.span, np))
            });
        let reference = match cx.opt(&mut f, "ref") {
            Some((n, rp)) => cx
                .parse::<ResourceRef>(n, &rp, Code::InvalidValue)
                .map(Some),
            None => Some(None),
        };
        cx.finish(&f, &["type", "name", "ref"], |k| match k {
            "kind" => Some("did you mean `type`?".to_owned()),
            "secret" | "secretName" => {
                Some("the Secret is named after the binding's `name`".to_owned())
            }
            "reference" | "resource" => Some("did you mean `ref`?".to_owned()),
            _ => None,
        });
        if let Some((n, span, np)) = &name
            && !seen.first_use(cx, n.as_str(), *span, np)
        {
            ok = false;
        }
        match (kind, name, reference) {
            (Some(kind), Some((name, _, _)), Some(reference)) => out.push(Binding {
                kind,
                name,
                reference,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}
