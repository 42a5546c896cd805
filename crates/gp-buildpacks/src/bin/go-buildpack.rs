//! The built-in Go buildpack (`io.goldenpath.go`), one static executable installed as both `bin/detect` and
//! `bin/build`.

use std::process::ExitCode;

use gp_buildpacks::Language;
use gp_buildpacks::support::{detect_phase, phase_main};

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Go, "go")
}

fn run_build() -> Result<u8, String> {
    Err("the Go buildpack cannot build yet".into())
}
