//! Reaching apps in their own network namespaces: a [`Connector`] (a thread that entered the namespace and opens
//! connections there — a socket keeps the namespace it was made in), a readiness check, and the [`Proxy`]: a
//! listener on `127.0.0.1` that forwards every connection to the current [`Backend`] and can be switched to a new
//! one while connections to the old one finish.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::{Duration, Instant};

use crate::RunError;
use crate::container::Container;

type Request = (u16, Duration, mpsc::Sender<std::io::Result<TcpStream>>);

/// Opens TCP connections to `127.0.0.1:<port>` inside one network namespace.
#[derive(Debug)]
pub struct Connector {
    tx: Mutex<mpsc::Sender<Request>>,
}

impl Connector {
    /// A thread that enters `netns` and serves connection requests until this is dropped.
    pub fn new(netns: BorrowedFd<'_>) -> Result<Self, RunError> {
        let fd: OwnedFd = netns
            .try_clone_to_owned()
            .map_err(|e| RunError::Netns(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("netns-connector".into())
            .spawn(move || {
                let entered = nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                for (port, timeout, reply) in rx {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    let _ = reply.send(TcpStream::connect_timeout(&addr, timeout));
                }
            })
            .map_err(|e| RunError::Netns(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { tx: Mutex::new(tx) }),
            Ok(Err(e)) => Err(RunError::Netns(e)),
            Err(_) => Err(RunError::Netns(nix::Error::EIO)),
        }
    }

    /// A connection to `127.0.0.1:port` in the namespace.
    pub fn connect(&self, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .lock()
            .map_err(|_| std::io::Error::other("the connector thread stopped"))?
            .send((port, timeout, reply_tx))
            .map_err(|_| std::io::Error::other("the connector thread stopped"))?;
        reply_rx
            .recv()
            .map_err(|_| std::io::Error::other("the connector thread stopped"))?
    }

    /// Whether something answers HTTP on `port`: any status line counts (a 404 is an app that is up).
    #[must_use]
    pub fn answers_http(&self, port: u16) -> bool {
        let Ok(mut s) = self.connect(port, Duration::from_secs(1)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(
            b"GET / HTTP/1.0\r\nHost: localhost\r\nUser-Agent: goldenpath-health\r\n\r\n",
        )
        .is_err()
        {
            return false;
        }
        let mut head = [0u8; 5];
        s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
    }
}

/// Waits until the app in `container` answers HTTP on `port`, or fails with its output when it exits or
/// `timeout` passes.
pub fn wait_ready(
    container: &Container,
    connector: &Connector,
    port: u16,
    timeout: Duration,
) -> Result<(), RunError> {
    let deadline = Instant::now() + timeout;
    let mut asked = Instant::now();
    loop {
        if connector.answers_http(port) {
            return Ok(());
        }
        // runc is asked once a second (a process each): an exit is noticed within a second.
        if asked.elapsed() >= Duration::from_secs(1) && !container.running() {
            return Err(RunError::Exited {
                log: container.log().to_path_buf(),
                tail: container.log_tail(30),
            });
        }
        if Instant::now() >= deadline {
            return Err(RunError::NotReady {
                port,
                seconds: timeout.as_secs(),
                log: container.log().to_path_buf(),
                tail: container.log_tail(30),
            });
        }
        if asked.elapsed() >= Duration::from_secs(1) {
            asked = Instant::now();
        }
        // A refused connection costs microseconds: a short wait finds the app soon after it listens (a new version
        // takes over as soon as it answers).
        std::thread::sleep(READY_POLL);
    }
}

/// How often [`wait_ready`] knocks on the app's port.
const READY_POLL: Duration = Duration::from_millis(20);

/// Where the proxy sends connections: an app's port in its namespace.
#[derive(Debug)]
pub struct Backend {
    connector: Connector,
    port: u16,
    active: AtomicUsize,
}

impl Backend {
    #[must_use]
    pub fn new(connector: Connector, port: u16) -> Self {
        Self {
            connector,
            port,
            active: AtomicUsize::new(0),
        }
    }

    /// Connections being forwarded to this backend now.
    #[must_use]
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Waits until no connection is forwarded here any more, or `timeout`; whether it drained.
    #[must_use]
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.active() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// A listener on `127.0.0.1` forwarding to the current backend; stops accepting when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    current: Arc<RwLock<Arc<Backend>>>,
    closed: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on `127.0.0.1:port` (0: any free port) and forwards to `backend`.
    pub fn listen(port: u16, backend: Backend) -> Result<Self, RunError> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|source| RunError::Listen { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| RunError::Listen { port, source })?;
        let current = Arc::new(RwLock::new(Arc::new(backend)));
        let closed = Arc::new(AtomicBool::new(false));
        let (cur, done) = (current.clone(), closed.clone());
        std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || {
                for client in listener.incoming() {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let backend = match cur.read() {
                        Ok(b) => b.clone(),
                        Err(p) => p.into_inner().clone(),
                    };
                    backend.active.fetch_add(1, Ordering::SeqCst);
                    let _ =
                        std::thread::Builder::new()
                            .name("proxy-conn".into())
                            .spawn(move || {
                                forward(client, &backend);
                                backend.active.fetch_sub(1, Ordering::SeqCst);
                            });
                }
            })
            .map_err(|source| RunError::Listen { port, source })?;
        Ok(Self {
            addr,
            current,
            closed,
        })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// New connections go to `backend` from now on; returns the previous one (drain it, then stop its app).
    pub fn switch(&self, backend: Backend) -> Arc<Backend> {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        std::mem::replace(&mut *guard, Arc::new(backend))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Copies bytes both ways between `client` and the backend until both sides are done.
fn forward(client: TcpStream, backend: &Backend) {
    let Ok(upstream) = backend
        .connector
        .connect(backend.port, Duration::from_secs(5))
    else {
        // Nothing listens (the app is restarting or gone): a plain 502 rather than a reset. The request is read
        // first (briefly): closing with unread bytes would make the kernel reset the connection anyway.
        let mut c = client;
        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = c.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        let _ = c.shutdown(Shutdown::Write);
        return;
    };
    let (Ok(mut c_read), Ok(mut u_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
}
