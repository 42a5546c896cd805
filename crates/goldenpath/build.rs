//! Builds the programs that go into images -- the launcher, the in-image `lifecycle` and the built-in buildpacks --
//! as static executables, so that `goldenpath` can carry them (`src/embedded.rs`) and nothing else needs installing.
//!
//! They are built by a nested `cargo build` for the host target with glibc linked statically, into
//! `<target dir>/static` (the same place and flags as `scripts/static-bins.sh`, so the two share one build).
//! `GOLDENPATH_EMBED_DIR` names a directory that already holds them (a packager's prebuilt set); then nothing is
//! built here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The executables embedded, by the package and binary that make each.
const PROGRAMS: &[(&str, &str, &[&str])] = &[
    ("gp-launcher", "launcher", &[]),
    ("gp-lifecycle", "lifecycle", &["--no-default-features"]),
    ("gp-buildpacks", "python-buildpack", &[]),
    ("gp-buildpacks", "node-buildpack", &[]),
    ("gp-buildpacks", "java-buildpack", &[]),
    ("gp-buildpacks", "go-buildpack", &[]),
    ("gp-buildpacks", "dotnet-buildpack", &[]),
    ("gp-buildpacks", "ruby-buildpack", &[]),
    ("gp-buildpacks", "php-buildpack", &[]),
    ("gp-buildpacks", "static-buildpack", &[]),
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("crates/goldenpath sits two levels below the workspace root")
        .to_path_buf();
    println!("cargo:rerun-if-env-changed=GOLDENPATH_EMBED_DIR");
    let dir = match std::env::var_os("GOLDENPATH_EMBED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_static(&workspace),
    };
    for (_, bin, _) in PROGRAMS {
        let path = dir.join(bin);
        assert!(
            path.is_file(),
            "`{}` is missing: build it with `scripts/static-bins.sh` or unset GOLDENPATH_EMBED_DIR",
            path.display()
        );
        println!(
            "cargo:rustc-env=GP_EMBED_{}={}",
            bin.replace('-', "_").to_uppercase(),
            path.display()
        );
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&workspace)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=GP_COMMIT={}",
        if commit.is_empty() {
            "unknown"
        } else {
            &commit
        }
    );
    let head = workspace.join(".git/HEAD");
    if head.is_file() {
        println!("cargo:rerun-if-changed={}", head.display());
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets `{name}` for build scripts"))
}

/// The target directory this build writes to: `OUT_DIR` is `<target>/<profile>/build/<pkg>-<hash>/out`, or one
/// level deeper under `<target>/<triple>/` when cross-compiling.
fn target_dir() -> PathBuf {
    let out = PathBuf::from(env("OUT_DIR"));
    let profile_dir = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out");
    let up = profile_dir.parent().expect("the profile dir has a parent");
    if up.join("CACHEDIR.TAG").is_file() || up.file_name().is_some_and(|n| n == "target") {
        up.to_path_buf()
    } else {
        up.parent().unwrap_or(up).to_path_buf()
    }
}

fn build_static(workspace: &Path) -> PathBuf {
    for dir in ["gp-launcher", "gp-lifecycle", "gp-buildpacks", "gp-cnb"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join("crates").join(dir).display()
        );
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    let host = env("HOST");
    let static_dir = target_dir().join("static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (package, bin, extra) in PROGRAMS {
        let mut cmd = Command::new(&cargo);
        // The outer build's settings (clippy as the compiler wrapper, its flags, its target dir) are not ours.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
                || key.starts_with("RUSTC_")
                || key == "RUSTFLAGS"
                || key == "RUSTDOCFLAGS"
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args(["build", "--quiet", "--release", "--locked"])
            .args([
                "--config",
                "profile.release.debug=false",
                "--config",
                "profile.release.strip=true",
            ])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .args(["--target", &host, "--target-dir"])
            .arg(&static_dir)
            .args(["-p", package, "--bin", bin])
            .args(*extra);
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run `{cargo}` to build the static `{bin}`: {e}"));
        assert!(
            status.success(),
            "building the static `{bin}` failed ({status}); see the output above"
        );
    }
    static_dir.join(host).join("release")
}
