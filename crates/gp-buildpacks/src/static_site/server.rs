//! The static site server: the static buildpack's own executable, copied into a launch layer and started as
//! `goldenpath-static serve --root DIR [--spa]`. Standard library only: a thread per connection, HTTP/1.1 `GET` and
//! `HEAD` with keep-alive, precompressed `.gz` siblings when the client accepts gzip, `ETag`/`If-None-Match`,
//! cache headers by kind of file, and a single-page-app fallback. Nothing outside the root is ever served: `..` is
//! refused, and every path is resolved (symbolic links included) and must stay inside the root.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest request head read (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more are answered 503.
const MAX_CONNECTIONS: usize = 512;
/// How long an idle keep-alive connection stays open.
const IDLE: Duration = Duration::from_secs(10);

/// What the server serves.
#[derive(Debug)]
pub struct Site {
    /// The site's root, resolved.
    pub root: PathBuf,
    /// Unknown paths without a file extension get `index.html` (a single-page app's client-side routes).
    pub spa: bool,
    etags: Mutex<HashMap<PathBuf, String>>,
}

impl Site {
    /// The site at `root` (which must exist).
    pub fn new(root: &Path, spa: bool) -> Result<Self, String> {
        let root = fs_err::canonicalize(root).map_err(|e| e.to_string())?;
        if !root.is_dir() {
            return Err(format!("{}: not a directory", root.display()));
        }
        Ok(Self {
            root,
            spa,
            etags: Mutex::new(HashMap::new()),
        })
    }

    /// A strong entity tag from the file's content (files of an image do not change; computed once per file).
    fn etag(&self, path: &Path) -> Option<String> {
        if let Some(tag) = self.etags.lock().ok()?.get(path) {
            return Some(tag.clone());
        }
        let mut file = fs_err::File::open(path).ok()?;
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut buf = vec![0u8; 64 * 1024];
        let mut len: u64 = 0;
        loop {
            let n = file.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            len += n as u64;
            for b in &buf[..n] {
                h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
        }
        let tag = format!("\"{len:x}-{h:016x}\"");
        self.etags
            .lock()
            .ok()?
            .insert(path.to_path_buf(), tag.clone());
        Some(tag)
    }
}

/// Accepts connections on `listener` forever, a thread each.
pub fn serve(listener: &TcpListener, site: &Arc<Site>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = s.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
            );
            continue;
        }
        let (site, active) = (Arc::clone(site), Arc::clone(&active));
        let spawned = std::thread::Builder::new().spawn(move || {
            connection(stream, &site);
            active.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            // The closure (and its counter decrement) never ran.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `goldenpath-static serve --root DIR [--spa]`: listens on `0.0.0.0:$PORT` (8080 without it).
pub fn main(args: &[String]) -> Result<u8, String> {
    let mut root = None;
    let mut spa = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--root" => root = it.next().map(PathBuf::from),
            "--spa" => spa = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}` (usage: serve --root DIR [--spa])"
                ));
            }
        }
    }
    let root = root.ok_or("usage: serve --root DIR [--spa]")?;
    let site = Arc::new(Site::new(&root, spa).map_err(|e| format!("--root: {e}"))?);
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT=`{p}` is not a port number"))?,
        Err(_) => 8080,
    };
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("cannot listen on 0.0.0.0:{port}: {e}"))?;
    // The server is the container's first process, and a first process ignores a signal it has no handler for:
    // without this, SIGTERM (Kubernetes ending a pod, a platform retiring an old version) would wait out the whole
    // grace period for the KILL. Connections are drained by whoever stops the server before it signals.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            println!("stopping (signal {sig})");
            std::process::exit(0);
        }
    });
    println!(
        "serving {} on 0.0.0.0:{port}{}",
        site.root.display(),
        if spa {
            " (single-page app fallback on)"
        } else {
            ""
        }
    );
    serve(&listener, &site);
    Ok(0)
}

/// A parsed request head.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.minor >= 1 {
            !conn.split(',').any(|t| t.trim() == "close")
        } else {
            conn.split(',').any(|t| t.trim() == "keep-alive")
        }
    }
}

/// Reads one request head from `stream` (with `buf` holding bytes already read); `Ok(None)` at a clean end.
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if end > MAX_HEAD {
                return Err(431);
            }
            let head = buf[..end].to_vec();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) if buf.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_head(head: &[u8]) -> Result<Request, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(505),
        _ => return Err(400),
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(400);
    }
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Err(400);
        };
        if k.is_empty() || k.contains([' ', '\t']) {
            return Err(400);
        }
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        headers,
    };
    if minor == 1 && req.header("host").is_none() {
        return Err(400);
    }
    Ok(req)
}

/// A response about to be written.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    File(fs_err::File, u64),
}

impl Response {
    fn plain(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: Body::Bytes(text.as_bytes().to_vec()),
        }
    }

    fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File(_, n) => *n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

fn connection(mut stream: TcpStream, site: &Site) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "-".to_owned(), |a| a.ip().to_string());
    let mut buf = Vec::new();
    loop {
        let started = Instant::now();
        let (req, response) = match read_head(&mut stream, &mut buf) {
            Ok(None) => return,
            Ok(Some(head)) => match parse_head(&head) {
                Ok(req) => {
                    let r = handle(site, &req);
                    (Some(req), r)
                }
                Err(status) => (None, Response::plain(status, reason(status))),
            },
            Err(status) => (None, Response::plain(status, reason(status))),
        };
        let keep = req.as_ref().is_some_and(Request::keep_alive)
            && !matches!(response.status, 400 | 413 | 431 | 500 | 505);
        let head_only = req.as_ref().is_some_and(|r| r.method == "HEAD");
        let status = response.status;
        let sent = write_response(
            &mut stream,
            response,
            head_only,
            keep,
            req.as_ref().map_or(1, |r| r.minor),
        );
        let (method, target) = req
            .as_ref()
            .map_or(("-", "-"), |r| (r.method.as_str(), r.target.as_str()));
        println!(
            "{peer} \"{method} {}\" {status} {} {}ms",
            target.escape_debug(),
            sent.as_ref().map_or(0, |n| *n),
            started.elapsed().as_millis()
        );
        if sent.is_err() || !keep {
            return;
        }
    }
}

/// Writes the response; the number of body bytes sent.
fn write_response(
    stream: &mut TcpStream,
    mut r: Response,
    head_only: bool,
    keep: bool,
    minor: u8,
) -> std::io::Result<u64> {
    // An HTTP/1.1 server answers 1.0 requests as 1.1 too (RFC 9110, 6.2); only the connection handling differs.
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    let _ = write!(
        head,
        "date: {}\r\nserver: goldenpath-static\r\n",
        http_date(SystemTime::now())
    );
    if r.status != 304 {
        let _ = write!(head, "content-length: {}\r\n", r.len());
    }
    for (k, v) in &r.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str(if keep {
        if minor == 0 {
            "connection: keep-alive\r\n"
        } else {
            ""
        }
    } else {
        "connection: close\r\n"
    });
    head.push_str("\r\n");
    let mut out = BufWriter::new(&mut *stream);
    out.write_all(head.as_bytes())?;
    let mut sent = 0;
    if !head_only && r.status != 304 {
        sent = match &mut r.body {
            Body::Bytes(b) => {
                out.write_all(b)?;
                b.len() as u64
            }
            Body::File(f, n) => std::io::copy(&mut Read::by_ref(f).take(*n), &mut out)?,
        };
    }
    out.flush()?;
    Ok(sent)
}

/// The answer to a parsed request.
fn handle(site: &Site, req: &Request) -> Response {
    if req.header("transfer-encoding").is_some()
        || req
            .header("content-length")
            .is_some_and(|n| n.trim() != "0")
    {
        return Response::plain(413, "requests with a body are not accepted\n");
    }
    if req.method != "GET" && req.method != "HEAD" {
        let mut r = Response::plain(405, "only GET and HEAD\n");
        r.headers.push(("allow", "GET, HEAD".into()));
        return r;
    }
    // origin-form; an absolute-form target (`http://host/path`) is reduced to its path.
    let target = match req.target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => req.target.as_str(),
    };
    if !target.starts_with('/') {
        return Response::plain(400, "bad request target\n");
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path = path.split('#').next().unwrap_or("/");
    match resolve(&site.root, path) {
        Ok(Found::File(file)) => file_response(site, req, &file, path),
        Ok(Found::Dir) => {
            let mut r = Response::plain(301, "moved\n");
            let q = query.map_or(String::new(), |q| format!("?{q}"));
            r.headers.push(("location", format!("{path}/{q}")));
            r
        }
        Err(400) => Response::plain(400, "bad path\n"),
        Err(_) => {
            let last = path.rsplit('/').next().unwrap_or("");
            if site.spa && !last.contains('.') {
                let index = site.root.join("index.html");
                if index.is_file() {
                    return file_response(site, req, &index, "/index.html");
                }
            }
            not_found(site)
        }
    }
}

fn not_found(site: &Site) -> Response {
    let page = site.root.join("404.html");
    if let Ok(bytes) = fs_err::read(&page) {
        return Response {
            status: 404,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-cache".into()),
            ],
            body: Body::Bytes(bytes),
        };
    }
    Response::plain(404, "not found\n")
}

/// What a request path names inside the root.
enum Found {
    File(PathBuf),
    /// A directory asked for without the trailing slash.
    Dir,
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes one path segment; `None` when malformed or it decodes to a separator or NUL.
fn decode(segment: &str) -> Option<Vec<u8>> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = unhex(*b.get(i + 1)?)?;
            let lo = unhex(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    (!out.iter().any(|c| matches!(c, b'/' | b'\\' | 0))).then_some(out)
}

/// Resolves `path` inside `root` (itself resolved): 400 for `..` or a malformed escape, 404 for what does not
/// exist, is hidden (a dot-name other than `.well-known`), or resolves outside the root through a symbolic link.
fn resolve(root: &Path, path: &str) -> Result<Found, u16> {
    use std::os::unix::ffi::OsStrExt;
    let mut full = root.to_path_buf();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = decode(seg).ok_or(400u16)?;
        match seg.as_slice() {
            b"." => {}
            b".." => return Err(400),
            s if s.starts_with(b".") && s != b".well-known" => return Err(404),
            s => full.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    let real = fs_err::canonicalize(&full).map_err(|_| 404u16)?;
    if !real.starts_with(root) {
        return Err(404);
    }
    let meta = fs_err::metadata(&real).map_err(|_| 404u16)?;
    if meta.is_dir() {
        if !path.ends_with('/') {
            return Ok(Found::Dir);
        }
        let index = fs_err::canonicalize(real.join("index.html")).map_err(|_| 404u16)?;
        if !index.starts_with(root) || !index.is_file() {
            return Err(404);
        }
        return Ok(Found::File(index));
    }
    if meta.is_file() {
        Ok(Found::File(real))
    } else {
        Err(404)
    }
}

/// The content type for a file name.
#[must_use]
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// Whether the build precompresses files of this name (text formats).
#[must_use]
pub fn compressible(name: &str) -> bool {
    let ext = name
        .rsplit_once('.')
        .map_or("", |(_, e)| e)
        .to_ascii_lowercase();
    matches!(
        ext.as_str(),
        "html"
            | "htm"
            | "css"
            | "js"
            | "mjs"
            | "json"
            | "map"
            | "webmanifest"
            | "txt"
            | "xml"
            | "svg"
            | "wasm"
    )
}

/// A fingerprinted name (`app.3f2a1c.js`, `index-BkG1x2Lp.js`, `main.3f2a1c9d.chunk.css`): a part of 6 or more
/// hex digits between dots, or of 8 or more letters and digits (at least one digit) after the last `-` of the stem.
#[must_use]
pub fn fingerprinted(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| {
            p.len() >= 6
                && p.bytes().all(|b| b.is_ascii_hexdigit())
                && p.bytes().any(|b| b.is_ascii_digit())
        })
    {
        return true;
    }
    let stem = parts.first().copied().unwrap_or("");
    stem.rsplit_once('-').is_some_and(|(_, h)| {
        h.len() >= 8
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && h.bytes().any(|b| b.is_ascii_digit())
    })
}

/// Whether `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*` with a non-zero q).
fn accepts_gzip(header: Option<&str>) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && q > 0.0
        })
    })
}

/// Whether `If-None-Match` matches `etag` (weak comparison, `*` included).
fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|h| {
        h.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
    })
}

fn file_response(site: &Site, req: &Request, file: &Path, path: &str) -> Response {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let gz = file.with_file_name(format!("{name}.gz"));
    let has_gz = gz.is_file() && fs_err::canonicalize(&gz).is_ok_and(|g| g.starts_with(&site.root));
    let use_gz = has_gz && accepts_gzip(req.header("accept-encoding"));
    let serve = if use_gz {
        gz.clone()
    } else {
        file.to_path_buf()
    };
    let mut headers = vec![("content-type", content_type(&name).to_owned())];
    let cache = if content_type(&name).starts_with("text/html") {
        "no-cache"
    } else if fingerprinted(&name) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    headers.push(("cache-control", cache.to_owned()));
    if has_gz {
        headers.push(("vary", "Accept-Encoding".into()));
    }
    if use_gz {
        headers.push(("content-encoding", "gzip".into()));
    }
    let Some(etag) = site.etag(&serve) else {
        return Response::plain(500, "cannot read the file\n");
    };
    headers.push(("etag", etag.clone()));
    if none_match(req.header("if-none-match"), &etag) {
        headers.retain(|(k, _)| *k != "content-type");
        return Response {
            status: 304,
            headers,
            body: Body::Bytes(Vec::new()),
        };
    }
    let _ = path;
    match fs_err::File::open(&serve).and_then(|f| f.metadata().map(|m| (f, m.len()))) {
        Ok((f, len)) => Response {
            status: 200,
            headers,
            body: Body::File(f, len),
        },
        Err(_) => Response::plain(500, "cannot read the file\n"),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[usize::try_from(month - 1).unwrap_or(0)],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::{Site, accepts_gzip, fingerprinted, http_date, serve};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn site(spa: bool) -> (tempfile::TempDir, u16) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        let w = |p: &str, t: &[u8]| {
            let path = root.join(p);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, t).unwrap();
        };
        w("index.html", b"<h1>home</h1>");
        w("app.3f2a1c.js", b"console.log(1)");
        w("app.3f2a1c.js.gz", b"\x1f\x8bGZ");
        w("docs/index.html", b"<h1>docs</h1>");
        w(".env", b"SECRET=1");
        fs_err::write(dir.path().join("secret.txt"), b"outside").unwrap();
        fs_err::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt"))
            .unwrap();
        fs_err::os::unix::fs::symlink(root.join("index.html"), root.join("home.html")).unwrap();
        let s = Arc::new(Site::new(&root, spa).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || serve(&listener, &s));
        (dir, port)
    }

    /// Sends `raw` on a new connection and reads until the server closes it.
    fn exchange(port: u16, raw: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(port: u16, path: &str, extra: &str) -> String {
        exchange(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"),
        )
    }

    fn status(resp: &str) -> &str {
        resp.split(' ').nth(1).unwrap_or("")
    }

    fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
        resp.split("\r\n\r\n").next()?.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[test]
    fn serves_files_with_cache_headers_and_etags() {
        let (_d, port) = site(false);
        let r = get(port, "/", "");
        assert_eq!(status(&r), "200", "{r}");
        assert!(r.ends_with("<h1>home</h1>"), "{r}");
        assert_eq!(header(&r, "cache-control"), Some("no-cache"));
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        assert!(header(&r, "date").unwrap().ends_with(" GMT"));
        let etag = header(&r, "etag").unwrap().to_owned();
        let again = get(port, "/index.html", &format!("If-None-Match: {etag}\r\n"));
        assert_eq!(status(&again), "304", "{again}");
        assert!(again.ends_with("\r\n\r\n"), "no body: {again}");
        let js = get(port, "/app.3f2a1c.js", "");
        assert_eq!(
            header(&js, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(header(&js, "vary"), Some("Accept-Encoding"));
        assert!(header(&js, "content-encoding").is_none());
        assert!(js.ends_with("console.log(1)"));
        let head = exchange(
            port,
            "HEAD /app.3f2a1c.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(header(&head, "content-length"), Some("14"));
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
    }

    #[test]
    fn gzip_when_accepted() {
        let (_d, port) = site(false);
        let r = get(port, "/app.3f2a1c.js", "Accept-Encoding: br, gzip\r\n");
        assert_eq!(header(&r, "content-encoding"), Some("gzip"));
        assert_eq!(header(&r, "vary"), Some("Accept-Encoding"));
        assert!(r.ends_with("\x1f\u{fffd}GZ"), "{r}");
        let r = get(port, "/app.3f2a1c.js", "Accept-Encoding: gzip;q=0\r\n");
        assert!(header(&r, "content-encoding").is_none());
        assert!(accepts_gzip(Some("*")) && !accepts_gzip(Some("br")) && !accepts_gzip(None));
    }

    #[test]
    fn traversal_hidden_files_and_symlinks_outside_are_refused() {
        let (_d, port) = site(false);
        for (path, code) in [
            ("/../secret.txt", "400"),
            ("/docs/%2e%2e/%2e%2e/secret.txt", "400"),
            ("/%2e%2e%2fsecret.txt", "400"),
            ("/leak.txt", "404"),
            ("/.env", "404"),
            ("/missing.css", "404"),
            ("/bad%zz", "400"),
        ] {
            let r = get(port, path, "");
            assert_eq!(status(&r), code, "{path}: {r}");
            assert!(!r.contains("outside") && !r.contains("SECRET"), "{r}");
        }
        // A symbolic link inside the root is followed.
        assert_eq!(status(&get(port, "/home.html", "")), "200");
        let r = get(port, "/docs", "");
        assert_eq!(status(&r), "301");
        assert_eq!(header(&r, "location"), Some("/docs/"));
        assert!(get(port, "/docs/", "").ends_with("<h1>docs</h1>"));
    }

    #[test]
    fn methods_versions_and_malformed_requests() {
        let (_d, port) = site(false);
        let r = exchange(
            port,
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status(&r), "405", "{r}");
        assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
        assert_eq!(
            status(&exchange(port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n")),
            "505"
        );
        assert_eq!(
            status(&exchange(port, "GET / HTTP/1.1\r\n\r\n")),
            "400",
            "Host is required in 1.1"
        );
        assert_eq!(status(&exchange(port, "garbage\r\n\r\n")), "400");
        let big = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        assert_eq!(status(&exchange(port, &big)), "431");
        // HTTP/1.0 closes after the response without being asked.
        let r = exchange(port, "GET / HTTP/1.0\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("<h1>home</h1>"),
            "{r}"
        );
    }

    #[test]
    fn keep_alive_serves_several_requests_on_one_connection() {
        let (_d, port) = site(false);
        let r = exchange(
            port,
            "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /docs/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.matches("HTTP/1.1 200 OK").count(), 2, "{r}");
        assert!(
            r.contains("<h1>home</h1>") && r.ends_with("<h1>docs</h1>"),
            "{r}"
        );
    }

    #[test]
    fn single_page_app_fallback() {
        let (_d, port) = site(true);
        let r = get(port, "/settings/profile", "");
        assert_eq!(status(&r), "200", "{r}");
        assert!(r.ends_with("<h1>home</h1>"));
        assert_eq!(header(&r, "cache-control"), Some("no-cache"));
        // A missing asset is still a 404, not the page.
        assert_eq!(status(&get(port, "/missing.js", "")), "404");
        let (_d, port) = site(false);
        assert_eq!(status(&get(port, "/settings/profile", "")), "404");
    }

    #[test]
    fn names_and_dates() {
        for (name, yes) in [
            ("app.3f2a1c.js", true),
            ("main.3f2a1c9d.chunk.css", true),
            ("index-BkG1x2Lp.js", true),
            ("app.js", false),
            ("jquery-3.7.1.min.js", false),
            ("site.facade.css", false),
            ("my-component.js", false),
        ] {
            assert_eq!(fingerprinted(name), yes, "{name}");
        }
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
