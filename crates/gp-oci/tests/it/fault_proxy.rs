//! A fault-injecting HTTP proxy for registry tests: in front of a real registry (or standing alone, serving fixed
//! content) on `127.0.0.1:0`, it passes requests through unless a [`Rule`] matches, then stalls before the
//! answer's headers, stalls or cuts the connection mid-body, answers 429 with a `Retry-After`, answers 500s at
//! random (seeded) or answers with a given status and body. Every request is recorded, so tests count them.
//! Threads only; everything stops (stalled connections included) when the proxy is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a matching request gets.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Read the request, never answer.
    StallBeforeHeaders,
    /// Read the request's headers, then neither its body nor anything else.
    StallReadingBody,
    /// Send the headers and half the body, then nothing more.
    StallMidBody,
    /// Send the headers and half the body, then close the connection.
    CutMidBody,
    /// Send the headers, then the body one byte per `every` (each byte within any idle timeout).
    Trickle { every: Duration },
    /// `429 Too Many Requests` with this `Retry-After` value (none when empty).
    TooManyRequests { retry_after: String },
    /// `500` for about `percent` % of matching requests, chosen by a generator seeded with `seed`.
    RandomServerErrors { seed: u64, percent: u64 },
    /// This answer instead of the registry's; `length: false` sends no `Content-Length` and closes after the body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Arc<Vec<u8>>,
        length: bool,
    },
}

/// A fault for requests whose method is `method` (any when empty) and whose path contains `path`, for the first
/// `times` of them (all when `None`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: &'static str,
    pub path: String,
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Rule {
    pub fn new(method: &'static str, path: &str, fault: Fault) -> Self {
        Self {
            method,
            path: path.to_owned(),
            fault,
            times: None,
        }
    }

    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }
}

/// A request as recorded: method, path, and whether a fault was injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub faulted: bool,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<(Rule, usize)>,
    seen: Vec<Seen>,
    rng: HashMap<usize, u64>,
}

#[derive(Debug)]
pub struct FaultProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

/// Fixed content for a proxy standing alone: path -> (content type, body).
pub type Content = HashMap<String, (String, Arc<Vec<u8>>)>;

impl FaultProxy {
    /// In front of the registry on `upstream`.
    pub fn start(upstream: u16, rules: Vec<Rule>) -> Self {
        Self::spawn(Some(upstream), Arc::new(Content::new()), rules)
    }

    /// Standing alone: `GET /v2/` answers `{}`, paths in `content` their body, anything else 404.
    pub fn standalone(content: Content, rules: Vec<Rule>) -> Self {
        Self::spawn(None, Arc::new(content), rules)
    }

    fn spawn(upstream: Option<u16>, content: Arc<Content>, rules: Vec<Rule>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let state = Arc::new(Mutex::new(State {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        {
            let (state, stop, conns) = (state.clone(), stop.clone(), conns.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let _ = client.set_nonblocking(false);
                            if let Ok(c) = client.try_clone() {
                                conns.lock().expect("connections").push(c);
                            }
                            let (state, stop, content) =
                                (state.clone(), stop.clone(), content.clone());
                            std::thread::spawn(move || {
                                serve(client, upstream, &content, &state, &stop);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Self {
            port,
            state,
            stop,
            conns,
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    /// Requests with `method` (any when empty) whose path contains `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| (method.is_empty() || s.method == method) && s.path.contains(path))
            .count()
    }

    /// Requests a fault was injected into.
    pub fn faulted(&self) -> usize {
        self.seen().iter().filter(|s| s.faulted).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.conns.lock().expect("connections").iter() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

struct Request {
    method: String,
    path: String,
    head: Vec<String>,
    body: Vec<u8>,
}

/// A request's line and headers; its body is read by [`read_body`].
fn read_head(r: &mut BufReader<TcpStream>) -> Option<(Request, usize)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut head = vec![line.trim_end().to_owned()];
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
        head.push(h);
    }
    let req = Request {
        method,
        path,
        head,
        body: Vec::new(),
    };
    Some((req, length))
}

fn read_body(r: &mut BufReader<TcpStream>, req: &mut Request, length: usize) -> Option<()> {
    req.body = vec![0; length];
    r.read_exact(&mut req.body).ok()
}

/// A small generator (splitmix64) for seeded faults.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The fault for `req`, if a rule matches and still applies; records the request.
fn decide(state: &Mutex<State>, req: &Request) -> Option<Fault> {
    let mut s = state.lock().expect("state");
    let mut chosen = None;
    for (i, (rule, used)) in s.rules.iter_mut().enumerate() {
        let matches =
            (rule.method.is_empty() || rule.method == req.method) && req.path.contains(&rule.path);
        if !matches || rule.times.is_some_and(|t| *used >= t) {
            continue;
        }
        *used += 1;
        chosen = Some((i, rule.fault.clone()));
        break;
    }
    let fault = match chosen {
        Some((i, Fault::RandomServerErrors { seed, percent })) => {
            let rng = s.rng.entry(i).or_insert(seed);
            (next_random(rng) % 100 < percent)
                .then_some(Fault::RandomServerErrors { seed, percent })
        }
        Some((_, f)) => Some(f),
        None => None,
    };
    s.seen.push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        faulted: fault.is_some(),
    });
    fault
}

fn stall(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn response(status: u16, headers: &[(String, String)], body: &[u8], length: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if length {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    } else {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The registry's whole answer to `req` (asked with `Connection: close`, read to the end).
fn forward(upstream: Option<u16>, content: &Content, req: &Request) -> Vec<u8> {
    let Some(port) = upstream else {
        if req.path == "/v2/" {
            return response(
                200,
                &[("Content-Type".into(), "application/json".into())],
                b"{}",
                true,
            );
        }
        let found = content
            .get(&req.path)
            .or_else(|| content.get(req.path.split('?').next().unwrap_or("")));
        return match found {
            Some((ct, body)) if req.method == "HEAD" => {
                let mut r = response(200, &[("Content-Type".into(), ct.clone())], body, true);
                r.truncate(r.len() - body.len());
                r
            }
            Some((ct, body)) => response(200, &[("Content-Type".into(), ct.clone())], body, true),
            None => response(
                404,
                &[],
                b"{\"errors\":[{\"code\":\"NOT_FOUND\",\"message\":\"unknown\"}]}",
                true,
            ),
        };
    };
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return response(502, &[], b"upstream down", true);
    };
    let mut head = String::new();
    for h in &req.head {
        if h.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(&req.body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn header_end(resp: &[u8]) -> usize {
    resp.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4)
}

fn serve(
    client: TcpStream,
    upstream: Option<u16>,
    content: &Content,
    state: &Mutex<State>,
    stop: &AtomicBool,
) {
    let Ok(write_half) = client.try_clone() else {
        return;
    };
    let mut w = write_half;
    let mut r = BufReader::new(client);
    while let Some((mut req, length)) = read_head(&mut r) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let fault = decide(state, &req);
        if matches!(fault, Some(Fault::StallReadingBody)) {
            stall(stop);
            return;
        }
        if read_body(&mut r, &mut req, length).is_none() {
            return;
        }
        let answer = match fault {
            None | Some(Fault::StallReadingBody) => forward(upstream, content, &req),
            Some(Fault::StallBeforeHeaders) => {
                stall(stop);
                return;
            }
            Some(f @ (Fault::StallMidBody | Fault::CutMidBody)) => {
                let resp = forward(upstream, content, &req);
                let end = header_end(&resp);
                let half = end + (resp.len() - end) / 2;
                let _ = w.write_all(&resp[..half]);
                let _ = w.flush();
                if matches!(f, Fault::StallMidBody) {
                    stall(stop);
                }
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::Trickle { every }) => {
                let resp = forward(upstream, content, &req);
                let end = header_end(&resp);
                let _ = w.write_all(&resp[..end]);
                for b in &resp[end..] {
                    if stop.load(Ordering::SeqCst) || w.write_all(&[*b]).is_err() {
                        return;
                    }
                    let _ = w.flush();
                    std::thread::sleep(every);
                }
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::TooManyRequests { retry_after }) => {
                let mut h = vec![("Content-Type".to_owned(), "application/json".to_owned())];
                if !retry_after.is_empty() {
                    h.push(("Retry-After".into(), retry_after));
                }
                response(
                    429,
                    &h,
                    b"{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}",
                    true,
                )
            }
            Some(Fault::RandomServerErrors { .. }) => response(500, &[], b"injected failure", true),
            Some(Fault::Respond {
                status,
                headers,
                body,
                length,
            }) => {
                let resp = response(status, &headers, &body, length);
                let _ = w.write_all(&resp);
                if !length {
                    let _ = w.shutdown(Shutdown::Both);
                    return;
                }
                continue;
            }
        };
        if w.write_all(&answer).is_err() {
            return;
        }
        // Forwarded answers were asked with `Connection: close`: their framing may need the close.
        if upstream.is_some() && !answer.is_empty() && is_close(&answer) {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn is_close(resp: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&resp[..header_end(resp)]).to_ascii_lowercase();
    head.contains("connection: close") || !head.contains("content-length")
}
