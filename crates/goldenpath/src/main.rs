//! The `goldenpath` command line: thin clap front-end over the library crates.
// Doc comments on the clap types are the help text, where `host[:port]` is literal, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod cmd;
mod embedded;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// Rendering and validation allocate many small strings across threads; mimalloc does that far better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The build sandbox re-executes this program to set itself up (see gp_lifecycle::sandbox).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == gp_lifecycle::sandbox::INIT_ARG)
    {
        std::process::exit(gp_lifecycle::sandbox::init());
    }
    let cli = cmd::Cli::parse();
    cmd::run(cli)
}
