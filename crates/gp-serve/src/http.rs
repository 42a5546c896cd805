//! The service's HTTP side, on the configured address (loopback by default):
//!
//! | | |
//! |---|---|
//! | `GET /` | the status page: each app, its state, URL, last build and reason, digest, whether it is behind the run image |
//! | `GET /builds/<id>` | a build's log |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text (`OpenMetrics` when asked for) |
//! | `GET /api/apps`, `/api/apps/<app>/builds`, `/api/builds/<id>/log` | JSON / text |
//! | `POST /api/apps/<app>/build` | queue a build (TRIGGER); needs `Authorization: Bearer <token>` |
//! | `POST /webhook` | a GitHub push event, signed with the webhook secret |
//!
//! Server-rendered HTML, no scripts: nothing to build for the front end.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response, Server};

use crate::service::{AppView, Service};
use crate::webhook;

/// The secrets the HTTP side checks.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub webhook: Option<Vec<u8>>,
    pub api_token: Option<String>,
}

/// The largest request body read (a push event is a few kilobytes; GitHub caps payloads at 25 MB).
const MAX_BODY: u64 = 25 << 20;

/// Serves `service` on `server` until the server is unblocked (dropped elsewhere) or fails.
pub fn serve(server: &Server, service: &Arc<Service>, secrets: &Secrets) {
    for request in server.incoming_requests() {
        handle(request, service, secrets);
    }
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn content_type(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).unwrap_or_else(|()| {
        Header::from_bytes("Content-Type", "text/plain").unwrap_or_else(|()| unreachable!())
    })
}

fn text(status: u16, body: impl Into<String>) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.into())
        .with_status_code(status)
        .with_header(content_type("text/plain; charset=utf-8"))
}

fn json(value: &impl serde::Serialize) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(serde_json::to_string_pretty(value).unwrap_or_default())
        .with_header(content_type("application/json"))
}

fn html(body: String) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body).with_header(content_type("text/html; charset=utf-8"))
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn handle(mut request: Request, service: &Service, secrets: &Secrets) {
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    let response = match (&method, parts.as_slice()) {
        (Method::Get, [""]) => match service.apps() {
            Ok(apps) => html(status_page(&apps)),
            Err(e) => text(500, e.to_string()),
        },
        (Method::Get, ["healthz"]) => text(200, "ok\n"),
        (Method::Get, ["metrics"]) => {
            if header(&request, "Accept")
                .is_some_and(|a| a.contains("application/openmetrics-text"))
            {
                Response::from_string(service.metrics().render_openmetrics()).with_header(
                    content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                )
            } else {
                Response::from_string(service.metrics().render())
                    .with_header(content_type("text/plain; version=0.0.4; charset=utf-8"))
            }
        }
        (Method::Get, ["api", "apps"]) => match service.apps() {
            Ok(apps) => json(&apps),
            Err(e) => text(500, e.to_string()),
        },
        (Method::Get, ["api", "apps", app, "builds"]) => match service.builds(app) {
            Ok(b) => json(&b),
            Err(e) => text(500, e.to_string()),
        },
        (Method::Get, ["api", "builds", id, "log"]) => match id.parse().map(|id| service.log(id)) {
            Ok(Ok(log)) => text(200, log),
            _ => text(404, format!("no build `{id}`\n")),
        },
        (Method::Get, ["builds", id]) => match id.parse().map(|id| service.log(id)) {
            Ok(Ok(log)) => html(log_page(id, &log)),
            _ => text(404, format!("no build `{id}`\n")),
        },
        (Method::Post, ["api", "apps", app, "build"]) => {
            let given = header(&request, "Authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            match (&secrets.api_token, given) {
                (None, _) => text(
                    403,
                    "no API token is configured (`api_token_file`): state-changing calls are off\n",
                ),
                (Some(want), Some(got)) if same_secret(want.as_bytes(), got.as_bytes()) => {
                    if service.trigger(app) {
                        text(202, format!("queued a build of `{app}` (TRIGGER)\n"))
                    } else {
                        text(404, format!("no app `{app}`\n"))
                    }
                }
                _ => text(401, "a valid `Authorization: Bearer <token>` is needed\n"),
            }
        }
        (Method::Post, ["webhook"]) => {
            let mut body = Vec::new();
            let read = request.as_reader().take(MAX_BODY).read_to_end(&mut body);
            match (&secrets.webhook, read) {
                (None, _) => text(
                    403,
                    "no webhook secret is configured (`webhook_secret_file`): the webhook is off\n",
                ),
                (_, Err(e)) => text(400, format!("cannot read the body: {e}\n")),
                (Some(secret), Ok(_)) => webhook_response(&request, service, secret, &body),
            }
        }
        _ => text(404, "not found\n"),
    };
    let _ = request.respond(response);
}

fn webhook_response(
    request: &Request,
    service: &Service,
    secret: &[u8],
    body: &[u8],
) -> Response<std::io::Cursor<Vec<u8>>> {
    if let Err(e) = webhook::verify(secret, body, header(request, "X-Hub-Signature-256")) {
        return text(e.status(), format!("{e}\n"));
    }
    match webhook::parse_push(header(request, "X-GitHub-Event"), body) {
        Ok(Some(push)) => {
            let apps = service.pushed(&push.urls, &push.branch, &push.revision);
            text(
                202,
                format!(
                    "queued: {}\n",
                    if apps.is_empty() {
                        "nothing (no app builds that repository and branch)".to_owned()
                    } else {
                        apps.join(", ")
                    }
                ),
            )
        }
        Ok(None) => text(202, "nothing to build\n"),
        Err(e) => text(e.status(), format!("{e}\n")),
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1f24}table{border-collapse:collapse}\
td,th{padding:.35em .8em;border-bottom:1px solid #d0d7de;text-align:left}th{background:#f6f8fa}\
.running{color:#1a7f37}.failed{color:#cf222e}.building{color:#9a6700}code{font-size:.9em}";

/// The status page.
#[must_use]
pub fn status_page(apps: &[AppView]) -> String {
    let mut rows = String::new();
    for a in apps {
        let url = a.url.as_deref().map_or_else(
            || "–".to_owned(),
            |u| {
                if u.starts_with("http://") || u.starts_with("https://") {
                    format!("<a href=\"{0}\">{0}</a>", esc(u))
                } else {
                    esc(u)
                }
            },
        );
        let last = a.last_build.as_ref().map_or_else(
            || "–".to_owned(),
            |b| {
                let reasons: Vec<String> = b.reasons.iter().map(ToString::to_string).collect();
                format!(
                    "<a href=\"/builds/{}\">#{} {:?}</a> ({})",
                    b.id,
                    b.id,
                    b.status,
                    esc(&reasons.join(", "))
                )
            },
        );
        let digest = a.app.digest.as_deref().map_or_else(
            || "–".to_owned(),
            |d| format!("<code>{}</code>", esc(&d[..d.len().min(19)])),
        );
        let behind = if a.behind {
            "behind: a rebase is due"
        } else {
            "current"
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{url}</td><td>{last}</td><td>{digest}</td><td>{behind}</td></tr>",
            esc(&a.app.name),
            esc(&a.app.status),
            esc(&a.app.status),
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>GoldenPath</title><style>{STYLE}</style></head><body>\
<h1>GoldenPath</h1><table><tr><th>app</th><th>state</th><th>running at</th><th>last build</th><th>image</th><th>run image</th></tr>{rows}</table>\
<p><a href=\"/metrics\">metrics</a> · <a href=\"/api/apps\">API</a></p></body></html>"
    )
}

fn log_page(id: &str, log: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>build {0}</title><style>{STYLE}</style></head><body>\
<p><a href=\"/\">← apps</a></p><h1>build {0}</h1><pre>{1}</pre></body></html>",
        esc(id),
        esc(log)
    )
}
