//! The static site server as a container's first process: SIGTERM ends it at once (a first process ignores signals
//! it has no handler for, and then its platform waits out the whole grace period before the KILL).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_server_as_first_process_stops_on_sigterm() {
    let root_user =
        fs_err::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root_user {
        eprintln!("skipped: a PID namespace of its own needs root");
        return;
    }
    let site = tempfile::tempdir().unwrap();
    fs_err::write(site.path().join("index.html"), "<p>hi</p>").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The buildpack's executable is the server when started under the server's name, as in the image.
    let server_exe = site.path().join("goldenpath-static");
    fs_err::os::unix::fs::symlink(env!("CARGO_BIN_EXE_static-buildpack"), &server_exe).unwrap();
    // `unshare --pid --fork` makes the server PID 1 of a namespace of its own, as in a container.
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--"])
        .arg(&server_exe)
        .args(["serve", "--root"])
        .arg(site.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let children = format!("/proc/{0}/task/{0}/children", unshare.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let server = loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let pid = fs_err::read_to_string(&children)
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_owned));
        if let (true, Some(pid)) = (up, pid) {
            break pid;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let sent = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &server])
            .status()
            .unwrap()
            .success()
    );
    loop {
        if unshare.try_wait().unwrap().is_some() {
            break;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = Command::new("kill").args(["-KILL", &server]).status();
            let _ = unshare.wait();
            panic!("the server ignored SIGTERM as a first process");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
