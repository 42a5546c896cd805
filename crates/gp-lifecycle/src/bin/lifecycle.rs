//! `lifecycle`: the phases that run inside the build image, placed in builders at `/cnb/lifecycle/lifecycle` as a
//! static binary (it must run on whatever libc the build image has, or none).
//!
//! `lifecycle detect` writes `<layers>/group.toml` and `<layers>/plan.toml`; `lifecycle build` reads them and
//! writes the layers and `<layers>/config/metadata.toml`. Directories come from the Platform API variables
//! (`CNB_APP_DIR`, `CNB_LAYERS_DIR`, `CNB_PLATFORM_DIR`, `CNB_BUILDPACKS_DIR`, `CNB_ORDER_PATH`, `CNB_GROUP_PATH`,
//! `CNB_PLAN_PATH`, `CNB_EXEC_ENV`) with the spec's defaults. Exit codes are the spec's phase exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use gp_cnb::{GroupToml, OrderToml, PlanToml, TomlFile};
use gp_lifecycle::build::BuildDirs;
use gp_lifecycle::detect::DetectDirs;
use gp_lifecycle::exit;
use gp_lifecycle::phases::{build_phase, detect_phase};
use gp_lifecycle::progress::Event;

fn var(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

struct Dirs {
    app: PathBuf,
    layers: PathBuf,
    platform: PathBuf,
    buildpacks: PathBuf,
    group: PathBuf,
    plan: PathBuf,
    exec_env: String,
}

impl Dirs {
    fn from_env() -> Dirs {
        let layers = var("CNB_LAYERS_DIR", "/layers");
        Dirs {
            app: var("CNB_APP_DIR", "/workspace"),
            platform: var("CNB_PLATFORM_DIR", "/platform"),
            buildpacks: var("CNB_BUILDPACKS_DIR", "/cnb/buildpacks"),
            group: std::env::var_os("CNB_GROUP_PATH")
                .map_or_else(|| layers.join("group.toml"), PathBuf::from),
            plan: std::env::var_os("CNB_PLAN_PATH")
                .map_or_else(|| layers.join("plan.toml"), PathBuf::from),
            exec_env: std::env::var("CNB_EXEC_ENV").unwrap_or_else(|_| "production".into()),
            layers,
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dirs = Dirs::from_env();
    let result = match args.first().map(String::as_str) {
        Some("detect") => run_detect(&dirs),
        Some("build") => run_build(&dirs),
        Some("--version") => {
            eprintln!("lifecycle (goldenpath) {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => Err((
            2,
            "usage: lifecycle detect|build (directories from the CNB_* variables)".into(),
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("ERROR: {message}");
            ExitCode::from(code)
        }
    }
}

/// The target the platform passed (`CNB_TARGET_*`, from the run image), completed from this build image.
fn target() -> gp_cnb::Target {
    gp_lifecycle::target::or_running(gp_lifecycle::target::from_env(), std::path::Path::new("/"))
}

fn write(path: &std::path::Path, text: &str) -> Result<(), (u8, String)> {
    fs_err::write(path, text).map_err(|e| (1, e.to_string()))
}

fn run_detect(dirs: &Dirs) -> Result<(), (u8, String)> {
    let order_path = std::env::var_os("CNB_ORDER_PATH").map_or_else(
        || {
            let in_layers = dirs.layers.join("order.toml");
            if in_layers.is_file() {
                in_layers
            } else {
                PathBuf::from("/cnb/order.toml")
            }
        },
        PathBuf::from,
    );
    let order =
        OrderToml::from_path(&order_path).map_err(|e| (exit::DETECT_ERROR, e.to_string()))?;
    let detect_dirs = DetectDirs {
        buildpacks: dirs.buildpacks.clone(),
        app: dirs.app.clone(),
        platform: dirs.platform.clone(),
        scratch: std::env::temp_dir().join("cnb-detect"),
        exec_env: dirs.exec_env.clone(),
        target: target(),
    };
    let detected = detect_phase(&order.order, &detect_dirs, &print)
        .map_err(|e| (e.exit_code(), e.to_string()))?;
    let group = detected
        .group
        .to_toml_string()
        .map_err(|e| (exit::DETECT_ERROR, e.to_string()))?;
    let plan = detected
        .plan
        .to_toml_string()
        .map_err(|e| (exit::DETECT_ERROR, e.to_string()))?;
    write(&dirs.group, &group)?;
    write(&dirs.plan, &plan)
}

fn run_build(dirs: &Dirs) -> Result<(), (u8, String)> {
    let group =
        GroupToml::from_path(&dirs.group).map_err(|e| (exit::BUILD_ERROR, e.to_string()))?;
    let plan = PlanToml::from_path(&dirs.plan).map_err(|e| (exit::BUILD_ERROR, e.to_string()))?;
    let build_dirs = BuildDirs {
        buildpacks: dirs.buildpacks.clone(),
        layers: dirs.layers.clone(),
        app: dirs.app.clone(),
        platform: dirs.platform.clone(),
        exec_env: dirs.exec_env.clone(),
        target: target(),
    };
    let env: std::collections::BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("CNB_") || k == "CNB_USER_ID" || k == "CNB_GROUP_ID")
        .collect();
    build_phase(&group, &plan, &build_dirs, &env, &print)
        .map_err(|e| (e.exit_code(), e.to_string()))?;
    Ok(())
}

/// The phases' events as the reference lifecycle's lines on stderr (the platform reads them from there).
#[allow(clippy::needless_pass_by_value)] // the `Progress` signature
fn print(event: Event) {
    for line in event.lines() {
        eprintln!("{line}");
    }
}
