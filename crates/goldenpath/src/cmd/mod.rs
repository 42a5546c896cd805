//! One module per top-level subcommand.

mod build;
mod builder;
mod buildpack;
mod contract;
mod default_builder;
mod detect;
mod fleet;
mod image;
mod rebase;
mod render;
mod run;
mod scaffold;
mod serve;
mod stack;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Where goldenpath keeps what it can rebuild: the image store, unpacked builders, the layer memo, blob sources,
/// the default stack and builder. `GOLDENPATH_CACHE_DIR`, else `$XDG_CACHE_HOME/goldenpath`, else
/// `~/.cache/goldenpath`.
fn cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("GOLDENPATH_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("goldenpath")
}

/// The local image store in the cache directory.
fn store(insecure: &[String]) -> gp_oci::store::Store {
    gp_oci::store::Store::new(cache_dir(), insecure)
}

/// A registry client that remembers where blobs were seen and mounts them across repositories when pushing.
fn registry(
    target: &gp_oci::reference::RegistryRef,
    insecure: &[String],
) -> Result<gp_oci::registry::Registry, gp_oci::registry::RegistryError> {
    store(insecure).registry(target)
}

/// Exit codes shared by every subcommand.
pub mod exit {
    /// Everything checked out.
    pub const OK: u8 = 0;
    /// The input was understood but is invalid (a contract error, a failed build).
    pub const INVALID: u8 = 1;
    /// Bad usage, unreadable files, I/O or internal failure.
    pub const USAGE: u8 = 2;

    /// A failed build: the Platform API code of the phase that failed (`gp_lifecycle::exit`: 20 no buildpack
    /// group passed, 51 a buildpack failed, 62 the image could not be written or pushed, ...), or [`USAGE`] when
    /// the build could not start (a setting, an input, local files).
    #[must_use]
    pub fn for_session(e: &gp_lifecycle::session::SessionError) -> u8 {
        use gp_lifecycle::session::FailureKind;
        match e.kind() {
            FailureKind::Request | FailureKind::Input | FailureKind::Io => USAGE,
            FailureKind::Registry => e.exit_code(),
            FailureKind::Phase(code) => code,
        }
    }
}

/// `GoldenPath`: from source code and a deployment contract to a patched, running app on Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "goldenpath", version = crate::embedded::VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with `AppDeploymentRequest` contracts.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Write the platform repository's assets: Backstage template, contract CI workflows, kpack install resources,
    /// build monitoring.
    Scaffold(scaffold::ScaffoldArgs),
    /// Preflight: what the built-in buildpacks will make of an app and what would fail, without building.
    Detect(detect::DetectArgs),
    /// Build an app image from source with Cloud Native Buildpacks (detect, build, export).
    Build(build::BuildArgs),
    /// Create builder images.
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
    /// Package buildpacks for pack, kpack and builders (`.cnb` files, buildpackage images).
    #[command(subcommand)]
    Buildpack(buildpack::BuildpackCommand),
    /// Build stack images (build and run) from Debian packages.
    #[command(subcommand)]
    Stack(stack::StackCommand),
    /// Put an app image on a new run image without rebuilding it.
    Rebase(rebase::RebaseArgs),
    /// Patch every image of a fleet onto a new run image: plan (rebase, rebuild, up to date, skip) and patch.
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
    /// Run an app image on this machine: as its user, in namespaces of its own, reachable on a loopback port.
    Run(run::RunArgs),
    /// Keep the apps of a contracts repository built, patched and running here (the platform loop).
    Serve(serve::ServeArgs),
    /// Copy, inspect and unpack OCI images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Print a shell completion script (`goldenpath completions bash > /etc/bash_completion.d/goldenpath`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `goldenpath man | man -l -`).
    Man,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Contract(c) => contract::run(c),
        Command::Scaffold(args) => scaffold::scaffold(args),
        Command::Image(c) => image::run(c),
        Command::Build(args) => build::run(&args),
        Command::Detect(args) => detect::run(&args),
        Command::Rebase(args) => rebase::run(&args),
        Command::Fleet(c) => fleet::run(c),
        Command::Run(args) => run::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Builder(c) => builder::run(c),
        Command::Buildpack(c) => buildpack::run(c),
        Command::Stack(c) => stack::run(c),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "goldenpath", &mut out);
            write_stdout(&String::from_utf8_lossy(&out))
        }
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut out) {
                Ok(()) => write_stdout(&String::from_utf8_lossy(&out)),
                Err(e) => {
                    eprintln!("error: cannot render the manual page: {e}");
                    ExitCode::from(exit::USAGE)
                }
            }
        }
    }
}

/// Writes machine output to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write output: {e}");
            ExitCode::from(exit::USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn completions_and_man_page_cover_every_subcommand() {
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut super::Cli::command(),
            "goldenpath",
            &mut bash,
        );
        let bash = String::from_utf8(bash).unwrap();
        let mut man = Vec::new();
        clap_mangen::Man::new(super::Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        for sub in super::Cli::command().get_subcommands() {
            assert!(bash.contains(sub.get_name()), "{}", sub.get_name());
            assert!(man.contains(sub.get_name()), "{}", sub.get_name());
        }
    }
}
