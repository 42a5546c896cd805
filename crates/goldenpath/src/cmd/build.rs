//! `goldenpath build`: source in, OCI image out, through the CNB phases. The arguments are settled into a
//! `BuildRequest` before anything runs; [`gp_lifecycle::session::build`] does the work and reports through the
//! [`Reporter`], which draws it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use gp_lifecycle::session::{self, BuildOutcome};

use super::{exit, store};
use crate::progress::{Reporter, Style};

pub(super) mod settings;
use settings::request;

/// Where a build image keeps its buildpacks and order.
pub(super) const DEFAULT_BUILDPACKS: &str = "/cnb/buildpacks";
pub(super) const DEFAULT_ORDER: &str = "/cnb/order.toml";

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Where the image goes: `oci:PATH:TAG`, or a name (`app:1`, `registry.example/app:1`): pushed there with
    /// `--publish`, else kept in the embedded store (`$XDG_CACHE_HOME/goldenpath/images`, tag `<name>_<tag>`).
    /// Default: the source directory's name, in the embedded store.
    #[arg(default_value = "")]
    pub image: String,
    /// The application source directory.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// How buildpacks run: `namespaces` (user+mount+PID namespaces in the builder's root filesystem; rootless
    /// works), `runc` (a runc container on the builder's root filesystem; as root), `none` (directly, when already
    /// inside the build image), or `auto`: with a `--builder`, namespaces where the kernel allows them, else runc.
    #[arg(long, value_enum, default_value_t = Sandbox::Auto)]
    pub sandbox: Sandbox,
    /// A builder image (`oci:PATH:TAG` or a registry image, from `goldenpath builder create`): its build image,
    /// buildpacks, order, lifecycle and run image are used (unpacked once per digest into the cache). Default:
    /// `builder` in the user config (`~/.config/goldenpath/config.toml`), else the built-in default builder (made
    /// on first use); inside a build image (with `/cnb/order.toml`) the buildpacks there run directly.
    #[arg(long, env = "GOLDENPATH_BUILDER")]
    pub builder: Option<String>,
    /// The builder's buildpacks (`<id>/<version>/buildpack.toml`).
    #[arg(long, default_value = DEFAULT_BUILDPACKS)]
    pub buildpacks: PathBuf,
    /// The builder's order.
    #[arg(long, default_value = DEFAULT_ORDER)]
    pub order: PathBuf,
    /// Run image to build on (`oci:PATH[:TAG]` or a registry image); default: the builder's. Without one the app
    /// image has only the CNB layers.
    #[arg(long)]
    pub run_image: Option<String>,
    /// The launcher placed at `/cnb/lifecycle/launcher`.
    #[arg(long, default_value = "/cnb/lifecycle/launcher")]
    pub launcher: PathBuf,
    /// Push the image to the registry IMAGE names (it is exported to a local layout first; blobs the registry
    /// already has are not uploaded again).
    #[arg(long)]
    pub publish: bool,
    /// Registry host[:port] that may be reached over plain HTTP (loopback registries always may).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// CA certificates (PEM) buildpacks must trust to reach package registries: passed as a `ca-certificates`
    /// binding and through `SSL_CERT_FILE`, `PIP_CERT`, `REQUESTS_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`.
    /// Default: this machine's trust store (`$SSL_CERT_FILE`, else `/etc/ssl/certs/ca-certificates.crt`). Never
    /// written into images.
    #[arg(long, value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,
    /// Do not pass this machine's CA certificates to buildpacks.
    #[arg(long, conflicts_with = "ca_certs")]
    pub no_host_ca_certs: bool,
    /// Local cache for `cache = true` layers, restored before and saved after the build.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// A registry image as the cache (`registry.example/app-cache:latest`), for machines that keep nothing between
    /// builds: pulled (missing blobs only) and restored before the build, written and pushed after it.
    #[arg(long, value_name = "REF", conflicts_with = "cache")]
    pub cache_image: Option<String>,
    /// Build-time environment variables (`--env NAME=VALUE`), written to the platform directory.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Print the build's events as JSON lines on stdout (phases, output, transfers, the outcome), for CI.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sandbox {
    Auto,
    Namespaces,
    Runc,
    None,
}

pub fn run(args: &BuildArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let style = if args.json { Style::Json } else { Style::Text };
    let reporter = Arc::new(Reporter::new(style));
    let result = request(args).and_then(|request| {
        session::build(&store(&args.insecure), &request, reporter.clone())
            .map_err(|e| (exit::for_session(&e), e.to_string()))
    });
    match result {
        Ok(outcome) => {
            summary(&reporter, &outcome, started.elapsed());
            if args.json {
                crate::progress::json_line(&serde_json::json!({
                    "event": "finished",
                    "reference": outcome.reference,
                    "digest": outcome.digest,
                    "layers": outcome.layers,
                    "reused": outcome.reused,
                    "uploaded": outcome.uploaded,
                    "mounted": outcome.mounted,
                    "processes": outcome.processes,
                    "sbom": outcome.sbom,
                    "phases_ms": outcome.phases.iter().map(|(p, d)| (p.name(), d.as_millis())).collect::<Vec<_>>(),
                }));
            }
            ExitCode::from(exit::OK)
        }
        Err((code, message)) => {
            if args.json {
                crate::progress::json_line(
                    &serde_json::json!({"event": "failed", "error": message, "exit_code": code}),
                );
            }
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

/// The closing lines: processes, SBOMs, time per phase and in all.
fn summary(reporter: &Reporter, outcome: &BuildOutcome, total: std::time::Duration) {
    reporter.line(&format!("*** Processes: {}", outcome.processes.join(", ")));
    if !outcome.sbom.is_empty() {
        let formats: Vec<String> = outcome
            .sbom
            .iter()
            .map(|(f, n)| format!("{f} ({n} file(s))"))
            .collect();
        reporter.line(&format!("*** SBOM: {}", formats.join(", ")));
    }
    if !outcome.phases.is_empty() {
        let phases: Vec<String> = outcome
            .phases
            .iter()
            .map(|(p, d)| format!("{} {} ms", p.name(), d.as_millis()))
            .collect();
        reporter.line(&format!("*** Phases: {}", phases.join(", ")));
    }
    reporter.line(&format!("*** Total: {} ms", total.as_millis()));
}
