//! The proxy against real network namespaces: two HTTP servers, each alone in a namespace of its own (made with
//! `unshare --net`), both on the same port; the proxy switched from one to the other while a client asks every
//! 10 ms sees every request answered, first by the old one, then by the new one.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gp_run::proxy::{Backend, Connector, Proxy};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("unshare")
            .args(["--net", "true"])
            .status()
            .is_ok_and(|s| s.success())
}

/// An HTTP server answering `body` on 127.0.0.1:8080 inside a new network namespace.
struct Server {
    child: Child,
    netns: std::fs::File,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server(body: &str) -> Server {
    let script = format!(
        "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        b = b'{body}'\n        self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers(); self.wfile.write(b)\n    def log_message(self, *a): pass\nhttp.server.ThreadingHTTPServer(('127.0.0.1', 8080), H).serve_forever()\n"
    );
    let child = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec python3 -c \"$0\"",
        ])
        .arg(script)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // `unshare` enters the new namespace just after it starts: wait until its namespace is not ours.
    let path = format!("/proc/{}/ns/net", child.id());
    let ours = fs_err::read_link("/proc/self/ns/net").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs_err::read_link(&path).is_ok_and(|l| l == ours) {
        assert!(
            Instant::now() < deadline,
            "unshare --net did not take effect"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let netns = fs_err::File::open(&path).unwrap().into_parts().0;
    Server { child, netns }
}

fn get(addr: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.0 200").then_some(out)
}

fn ready(c: &Connector) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.answers_http(8080) {
        assert!(Instant::now() < deadline, "the test server never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn switching_backends_drops_no_request() {
    if !root() {
        eprintln!("skipped: needs root and unshare --net");
        return;
    }
    let old = server("old");
    let new = server("new");
    let (c_old, c_new) = (
        Connector::new(old.netns.as_fd()).unwrap(),
        Connector::new(new.netns.as_fd()).unwrap(),
    );
    ready(&c_old);
    ready(&c_new);
    let proxy = Proxy::listen(0, Backend::new(c_old, 8080)).unwrap();
    assert!(proxy.addr().ip().is_loopback());
    let addr = proxy.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                seen.push(get(addr));
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let previous = proxy.switch(Backend::new(c_new, 8080));
    assert!(
        previous.drain(Duration::from_secs(5)),
        "old connections finish"
    );
    drop(old);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let seen = prober.join().unwrap();
    let failed = seen.iter().filter(|s| s.is_none()).count();
    assert_eq!(failed, 0, "{} of {} requests failed", failed, seen.len());
    let bodies: Vec<bool> = seen
        .iter()
        .map(|s| s.as_ref().unwrap().ends_with("new"))
        .collect();
    let first_new = bodies.iter().position(|b| *b).unwrap();
    assert!(first_new > 0, "the old one answered first");
    assert!(
        bodies[first_new..].iter().all(|b| *b),
        "then only the new one"
    );
}

#[test]
fn nothing_listening_is_a_502_not_a_reset() {
    if !root() {
        return;
    }
    let s = server("x");
    let c = Connector::new(s.netns.as_fd()).unwrap();
    ready(&c);
    // Port 9 has nothing in the namespace.
    let proxy = Proxy::listen(0, Backend::new(c, 9)).unwrap();
    let mut conn = TcpStream::connect(proxy.addr()).unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 502"), "{out}");
}
