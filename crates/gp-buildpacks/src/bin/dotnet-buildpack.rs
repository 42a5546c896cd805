//! The built-in .NET buildpack (`io.goldenpath.dotnet`), one static executable installed as both `bin/detect` and
//! `bin/build`.

use std::process::ExitCode;

use gp_buildpacks::Language;
use gp_buildpacks::support::{detect_phase, phase_main};

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Dotnet, "dotnet")
}

fn run_build() -> Result<u8, String> {
    Err("the .NET buildpack cannot build yet".into())
}
