//! The top level of a contract document.

use crate::diag::{Code, FieldPath, did_you_mean};
use crate::ids::{AppId, AppName, EnvName, Hostname, Owner};
use crate::model::{API_VERSION, ApiVersion, AppDeploymentRequest, ContractKind, KIND};
use crate::source::Span;
use crate::yaml::Node;

use super::{Cx, SpanIndex, list};

const TOP: &[&str] = &[
    "apiVersion",
    "kind",
    "id",
    "environment",
    "owner",
    "application",
    "spec",
];
const EXAMPLE: &str =
    "  apiVersion: goldenpath.io/v1\n  kind: AppDeploymentRequest\n  id: APP-0001\n  ...";

/// The identifying values of a document, kept even when other fields are invalid, for cross-file rules.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub id: Option<(AppId, Span)>,
    pub environment: Option<(EnvName, Span)>,
    pub application: Option<(AppName, Span)>,
    pub host: Option<(Hostname, Span)>,
}

/// The result of decoding one document.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Present only when the document has no errors.
    pub contract: Option<AppDeploymentRequest>,
    pub facts: Facts,
    pub spans: SpanIndex,
}

pub fn decode_document(cx: &mut Cx<'_>, root: &Node) -> Decoded {
    let mut facts = Facts::default();
    let contract = top(cx, root, &mut facts);
    let contract = if cx.has_errors() { None } else { contract };
    Decoded {
        contract,
        facts,
        spans: std::mem::take(&mut cx.spans),
    }
}

fn top(cx: &mut Cx<'_>, root: &Node, facts: &mut Facts) -> Option<AppDeploymentRequest> {
    let at = Span::point(root.span.start);
    let mut f = cx.fields(root, FieldPath::root(), at, EXAMPLE)?;

    let kind = kind(cx, &mut f);
    if matches!(kind, Some(Err(()))) {
        return None; // another kind of document: its fields would only produce noise
    }

    let api = cx
        .req(
            &mut f,
            "apiVersion",
            "add `apiVersion: goldenpath.io/v1` as the first line",
        )
        .and_then(|(n, p)| {
            let s = cx.string(n, &p)?;
            if s == API_VERSION {
                return Some(ApiVersion::V1);
            }
            let hint = if s.starts_with("goldenpath.io/") {
                format!("this release reads `{API_VERSION}`; change it to `{API_VERSION}`")
            } else {
                format!("use `apiVersion: {API_VERSION}`")
            };
            cx.error(
                Code::ApiVersion,
                n.span,
                &p,
                format!("`apiVersion` is `{s}`, expected `{API_VERSION}`"),
                Some(hint),
            );
            None
        });

    let id = cx
        .req(
            &mut f,
            "id",
            "add `id: APP-NNNN` (the file name without `.yaml`)",
        )
        .and_then(|(n, p)| {
            cx.parse::<AppId>(n, &p, Code::InvalidValue)
                .map(|v| (v, n.span))
        });
    facts.id.clone_from(&id);

    let environment = cx
        .req(
            &mut f,
            "environment",
            "add `environment:` with the target environment, e.g. `dev`",
        )
        .and_then(|(n, p)| environment(cx, n, &p));
    facts.environment.clone_from(&environment);

    let owner = cx
        .req(
            &mut f,
            "owner",
            "add `owner:` with the owning team, e.g. `payments-team`",
        )
        .and_then(|(n, p)| cx.parse::<Owner>(n, &p, Code::InvalidValue));
    let application = cx
        .req(
            &mut f,
            "application",
            "add `application:` with the application's name, e.g. `payments-api`",
        )
        .and_then(|(n, p)| {
            cx.parse::<AppName>(n, &p, Code::InvalidValue)
                .map(|v| (v, n.span))
        });
    facts.application.clone_from(&application);

    let env_name = environment.as_ref().map(|(e, _)| e.clone());
    let spec = cx
        .req(
            &mut f,
            "spec",
            "add a `spec:` section with `source` and `build`",
        )
        .and_then(|(n, p)| {
            let at = cx.spans.key(p.as_str()).unwrap_or(n.span);
            super::spec::spec(cx, n, p, at, env_name.as_ref(), facts)
        });

    cx.finish(&f, TOP, top_hint);

    Some(AppDeploymentRequest {
        api_version: api?,
        kind: ContractKind::AppDeploymentRequest,
        id: id?.0,
        environment: environment?.0,
        owner: owner?,
        application: application?.0,
        spec: spec?,
    })
}

/// `Some(Err(()))`: a document of another kind.
fn kind(cx: &mut Cx<'_>, f: &mut super::Fields<'_>) -> Option<Result<ContractKind, ()>> {
    let (n, p) = cx.req(f, "kind", "add `kind: AppDeploymentRequest`")?;
    let s = cx.string(n, &p)?;
    if s == KIND {
        return Some(Ok(ContractKind::AppDeploymentRequest));
    }
    let hint = did_you_mean(s, [KIND]).map_or_else(
        || format!("this file is validated as an app deployment contract; use `kind: {KIND}` or move it out of the contracts tree"),
        |m| format!("did you mean `{m}`?"),
    );
    cx.error(
        Code::Kind,
        n.span,
        &p,
        format!("`kind` is `{s}`; app deployment contracts are `{KIND}`"),
        Some(hint),
    );
    Some(Err(()))
}

fn environment(cx: &mut Cx<'_>, n: &Node, p: &FieldPath) -> Option<(EnvName, Span)> {
    let env = cx.parse::<EnvName>(n, p, Code::InvalidValue)?;
    if cx.config.environments.contains_key(&env) {
        return Some((env, n.span));
    }
    let names: Vec<&str> = cx.config.environments.keys().map(EnvName::as_str).collect();
    let hint = did_you_mean(env.as_str(), names.iter().copied()).map_or_else(
        || format!("use one of {}", list(&names)),
        |m| format!("did you mean `{m}`?"),
    );
    let source = cx.config.path.as_ref().map_or_else(
        || "the built-in defaults".to_owned(),
        |p| format!("`{}`", p.display()),
    );
    cx.error(
        Code::UnknownEnvironment,
        n.span,
        p,
        format!("environment `{env}` is not defined in {source}"),
        Some(hint),
    );
    None
}

fn top_hint(key: &str) -> Option<String> {
    Some(match key {
        "metadata" => {
            "contracts have no `metadata`: the name goes in `application` and the team in `owner`"
                .to_owned()
        }
        "name" | "app" | "appName" => "the application's name goes in `application`".to_owned(),
        "team" => "the owning team goes in `owner`".to_owned(),
        "env" => "did you mean `environment`?".to_owned(),
        "source" | "build" | "runtime" | "ingress" | "bindings" => {
            format!("`{key}` belongs under `spec`: indent it below `spec:`")
        }
        _ => return None,
    })
}
