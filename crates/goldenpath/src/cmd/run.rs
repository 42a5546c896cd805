//! `goldenpath run IMAGE`: one app image running on this machine the way the local deploy runs apps — unpacked
//! from the store, under runc as the image's user (the CNB user), in a network namespace of its own with `PORT`
//! set, reachable through a proxy on `127.0.0.1:<port>` once it answers HTTP — until Ctrl-C or SIGTERM, then
//! stopped and cleaned up. No skopeo, umoci or runc commands by hand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use gp_run::bundle;
use gp_run::container::Container;
use gp_run::proxy::{Backend, Connector, Proxy, wait_ready};
use nix::sys::signal::{SigSet, Signal};

use super::exit;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The image: a registry reference (pulled into the local store) or `oci:PATH[:TAG]`.
    pub image: String,
    /// The port on 127.0.0.1 where the app is reachable (inside its own network namespace it listens on `PORT`,
    /// 8080).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// More environment for the app, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Seconds to wait for the app to answer HTTP before giving up (with its output).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub ready_timeout: u64,
    /// Registry hosts to reach over plain HTTP (e.g. a loopback registry).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure: Vec<String>,
}

pub fn run(args: &RunArgs) -> ExitCode {
    match run_image(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit::INVALID)
        }
    }
}

/// The environment given with `--env`, checked.
fn extra_env(args: &RunArgs) -> Result<Vec<(String, String)>, String> {
    let mut env = vec![("PORT".to_owned(), gp_run::APP_PORT.to_string())];
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("`--env {kv}`: expected KEY=VALUE"));
        };
        if k == "PORT" {
            return Err(format!(
                "`--env {kv}`: PORT is the app's own port inside its namespace ({}); choose the port users reach with `--port`",
                gp_run::APP_PORT
            ));
        }
        env.push((k.to_owned(), v.to_owned()));
    }
    Ok(env)
}

fn run_image(args: &RunArgs) -> Result<ExitCode, String> {
    let env = extra_env(args)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "goldenpath run needs root: runc creates the app's namespaces and the proxy enters its network namespace"
                .into(),
        );
    }
    // Ctrl-C and SIGTERM are taken by one thread (blocked here, before any thread starts), so that every exit
    // path stops the container.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let (stop_tx, stop_rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok(sig) = signals.wait() {
            let _ = stop_tx.send(sig);
        }
    });

    let store = super::store(&args.insecure);
    let opened = store.open(&args.image, None).map_err(|e| e.to_string())?;
    let name = format!("goldenpath-run-{}", std::process::id());
    let dir: PathBuf = super::cache_dir().join("run").join(&name);
    let _cleanup = RemoveOnDrop(dir.clone());
    eprintln!("===> UNPACKING {} ({})", args.image, opened.desc.digest);
    let bundle = bundle::prepare(
        &opened.layout,
        &opened.desc,
        &args.image,
        &dir.join("bundle"),
        &env,
        "goldenpath-app",
    )
    .map_err(|e| e.to_string())?;
    let log = super::cache_dir().join("run").join(format!("{name}.log"));
    let mut container =
        Container::start(&bundle, &name, &dir.join("runc"), &log).map_err(|e| e.to_string())?;
    eprintln!(
        "===> STARTING `{}` as uid {}:{} (output: {})",
        bundle.process.args.join(" "),
        bundle.process.uid,
        bundle.process.gid,
        log.display()
    );
    let connector = Connector::new(container.netns()).map_err(|e| e.to_string())?;
    wait_ready(
        &container,
        &connector,
        gp_run::APP_PORT,
        Duration::from_secs(args.ready_timeout),
    )
    .map_err(|e| e.to_string())?;
    let proxy = Proxy::listen(args.port, Backend::new(connector, gp_run::APP_PORT))
        .map_err(|e| e.to_string())?;
    eprintln!(
        "*** {}@{} answers at http://{}/ (Ctrl-C stops it)",
        args.image,
        opened.desc.digest,
        proxy.addr()
    );
    let code = loop {
        match stop_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(sig) => {
                eprintln!("===> STOPPING ({sig})");
                break exit::OK;
            }
            Err(mpsc::RecvTimeoutError::Timeout) if container.running() => {}
            Err(_) => {
                eprintln!(
                    "error: the app exited; its last output:\n{}",
                    container.log_tail(30)
                );
                break exit::INVALID;
            }
        }
    };
    drop(proxy);
    container.stop(Duration::from_secs(10));
    Ok(ExitCode::from(code))
}

/// Removes the run's directory (its filesystem copy and runc state) however the command ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.0);
    }
}
