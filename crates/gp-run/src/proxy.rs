//! Reaching apps in their own network namespaces: a [`Connector`] (connections opened inside one namespace), a
//! readiness check, and the [`Proxy`]: a listener on `127.0.0.1` that forwards every connection to the current
//! [`Backend`] and can be switched to a new one while connections to the old one finish.
//!
//! Idle apps cost no threads of their own: one thread makes sockets in the apps' namespaces (a socket belongs to
//! the namespace it was made in, wherever it is used after), and one thread accepts for every proxy. Threads come
//! and go with connections only. With a thread or two per app, a hundred idle apps held 200 threads, and each
//! thread's allocator heap (about 0.4 MiB) was most of the service's memory.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, mpsc};
use std::time::{Duration, Instant};

use crate::RunError;
use crate::container::Container;

/// A request to the socket maker: a namespace, and where to send the new socket.
type Request = (Arc<OwnedFd>, mpsc::Sender<std::io::Result<socket2::Socket>>);

/// The thread that makes sockets in other network namespaces: it enters one, makes the socket, and returns to its
/// own before the next request. It never connects (a slow app cannot hold up the others); the caller does.
fn socket_maker() -> &'static Mutex<Option<mpsc::Sender<Request>>> {
    static MAKER: OnceLock<Mutex<Option<mpsc::Sender<Request>>>> = OnceLock::new();
    MAKER.get_or_init(|| Mutex::new(None))
}

fn start_socket_maker() -> std::io::Result<mpsc::Sender<Request>> {
    let (tx, rx) = mpsc::channel::<Request>();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("netns-sockets".into())
        .spawn(move || {
            let home = match fs_err::File::open("/proc/thread-self/ns/net") {
                Ok(f) => OwnedFd::from(f.into_parts().0),
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            for (netns, reply) in rx {
                let made = nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
                    .and_then(|()| {
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                    });
                if nix::sched::setns(home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                    // Stuck in an app's namespace: this thread must make no more sockets. The next request
                    // starts a new one.
                    let _ = reply.send(Err(std::io::Error::other(
                        "the socket thread could not return to its network namespace",
                    )));
                    return;
                }
                let _ = reply.send(made);
            }
        })?;
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the socket thread stopped"))??;
    Ok(tx)
}

/// A TCP socket made inside `netns`.
fn socket_in(netns: &Arc<OwnedFd>) -> std::io::Result<socket2::Socket> {
    let (reply_tx, reply_rx) = mpsc::channel();
    let mut maker = socket_maker()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sent = maker
        .as_ref()
        .is_some_and(|tx| tx.send((netns.clone(), reply_tx.clone())).is_ok());
    if !sent {
        let tx = start_socket_maker()?;
        tx.send((netns.clone(), reply_tx))
            .map_err(|_| std::io::Error::other("the socket thread stopped"))?;
        *maker = Some(tx);
    }
    drop(maker);
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the socket thread stopped"))?
}

/// Opens TCP connections to `127.0.0.1:<port>` inside one network namespace.
#[derive(Debug)]
pub struct Connector {
    netns: Arc<OwnedFd>,
}

impl Connector {
    /// Connections into `netns` (checked now: a socket is made there once).
    pub fn new(netns: BorrowedFd<'_>) -> Result<Self, RunError> {
        let fd: OwnedFd = netns
            .try_clone_to_owned()
            .map_err(|e| RunError::Netns(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        let c = Self {
            netns: Arc::new(fd),
        };
        socket_in(&c.netns).map_err(|e| {
            RunError::Netns(nix::Error::from_raw(
                e.raw_os_error().unwrap_or(nix::Error::EIO as i32),
            ))
        })?;
        Ok(c)
    }

    /// A connection to `127.0.0.1:port` in the namespace.
    pub fn connect(&self, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let socket = socket_in(&self.netns)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        socket.connect_timeout(&addr.into(), timeout)?;
        Ok(socket.into())
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
    entry: Arc<Listening>,
}

/// One proxy's listener, as the accepting thread sees it.
#[derive(Debug)]
struct Listening {
    listener: TcpListener,
    current: RwLock<Arc<Backend>>,
}

/// The proxies' listeners, and the thread that accepts on all of them (woken through `wake` when the set changes).
struct Acceptor {
    listening: Mutex<Vec<Arc<Listening>>>,
    wake: std::os::unix::net::UnixStream,
}

fn acceptor() -> std::io::Result<&'static Acceptor> {
    static ACCEPTOR: OnceLock<Acceptor> = OnceLock::new();
    if let Some(a) = ACCEPTOR.get() {
        return Ok(a);
    }
    let (wake, woken) = std::os::unix::net::UnixStream::pair()?;
    woken.set_nonblocking(true)?;
    wake.set_nonblocking(true)?;
    let made = ACCEPTOR.set(Acceptor {
        listening: Mutex::new(Vec::new()),
        wake,
    });
    let a = ACCEPTOR
        .get()
        .ok_or_else(|| std::io::Error::other("no acceptor"))?;
    if made.is_ok() {
        std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(a, &woken))?;
    }
    Ok(a)
}

fn accept_loop(a: &Acceptor, woken: &std::os::unix::net::UnixStream) {
    use rustix::event::{PollFd, PollFlags, poll};
    loop {
        let now: Vec<Arc<Listening>> = a
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut fds: Vec<PollFd<'_>> = std::iter::once(PollFd::new(woken, PollFlags::IN))
            .chain(now.iter().map(|l| PollFd::new(&l.listener, PollFlags::IN)))
            .collect();
        if poll(&mut fds, None).is_err() {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        if ready[0] {
            let mut buf = [0u8; 64];
            while (&*woken).read(&mut buf).is_ok_and(|n| n > 0) {}
        }
        for (l, _) in now.iter().zip(&ready[1..]).filter(|(_, r)| **r) {
            // Non-blocking: another readiness may have taken the connection already.
            while let Ok((client, _)) = l.listener.accept() {
                let _ = client.set_nonblocking(false);
                let backend = match l.current.read() {
                    Ok(b) => b.clone(),
                    Err(p) => p.into_inner().clone(),
                };
                backend.active.fetch_add(1, Ordering::SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn({
                        let backend = backend.clone();
                        move || {
                            forward(client, &backend);
                            backend.active.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                if spawned.is_err() {
                    backend.active.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:port` (0: any free port) and forwards to `backend`.
    pub fn listen(port: u16, backend: Backend) -> Result<Self, RunError> {
        let err = |source| RunError::Listen { port, source };
        let listener = TcpListener::bind(("127.0.0.1", port)).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let entry = Arc::new(Listening {
            listener,
            current: RwLock::new(Arc::new(backend)),
        });
        let a = acceptor().map_err(err)?;
        a.listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry.clone());
        let _ = (&a.wake).write(&[1]);
        Ok(Self { addr, entry })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// New connections go to `backend` from now on; returns the previous one (drain it, then stop its app).
    pub fn switch(&self, backend: Backend) -> Arc<Backend> {
        let mut guard = match self.entry.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        std::mem::replace(&mut *guard, Arc::new(backend))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(a) = acceptor() {
            a.listening
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|l| !Arc::ptr_eq(l, &self.entry));
            // The accepting thread lets go of its copy on its next round; the port is closed when this returns
            // (so that it can be listened on again at once).
            let _ = (&a.wake).write(&[1]);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Arc::strong_count(&self.entry) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
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
