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

/// Gives the memory the allocator keeps free on this thread back to the system. mimalloc keeps freed pages for
/// reuse and purges them only as it allocates again, so a service that goes idle after work would keep them: with
/// 100 apps deployed, `goldenpath serve` held about 23 MiB so.
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

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
