//! Idle apps cost the proxy no threads: many proxies and connectors share one accepting thread and one socket
//! thread, and a dropped proxy's port is free again at once.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use gp_run::proxy::{Backend, Connector, Proxy};

fn threads() -> usize {
    fs_err::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_hundred_proxies_share_two_threads() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: entering a network namespace needs root");
        return;
    }
    // The "app": a listener in this process's own namespace, answering one request per connection.
    let app = TcpListener::bind("127.0.0.1:0").unwrap();
    let app_port = app.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in app.incoming() {
            let mut c = c.unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let netns = fs_err::File::open("/proc/self/ns/net").unwrap();
    // The shared threads start with the first proxy.
    let first = Proxy::listen(
        0,
        Backend::new(Connector::new(netns.as_fd()).unwrap(), app_port),
    )
    .unwrap();
    let before = threads();
    let proxies: Vec<Proxy> = (0..100)
        .map(|_| {
            Proxy::listen(
                0,
                Backend::new(Connector::new(netns.as_fd()).unwrap(), app_port),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(threads(), before, "an idle proxy has no thread of its own");
    for p in proxies.iter().step_by(25).chain([&first]) {
        let mut c = TcpStream::connect(p.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("ok"), "{answer}");
    }
    let addr = proxies[0].addr();
    drop(proxies);
    TcpListener::bind(addr).expect("a dropped proxy's port is free at once");
}
