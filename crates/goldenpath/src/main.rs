//! The `goldenpath` command line: thin clap front-end over the library crates.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// Rendering and validation allocate many small strings across threads; mimalloc does that far better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    cmd::run(cli)
}
