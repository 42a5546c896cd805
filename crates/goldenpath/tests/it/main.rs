//! End-to-end tests of the `goldenpath` binary against the committed examples.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

mod apps;
mod apps_go;
mod apps_java;
mod apps_php;
mod apps_ruby;
mod apps_static;
mod build;
mod builder_toml;
mod conformance;
mod contract_validate;
mod detect;
mod fleet;
mod hostile_inputs;
mod hostile_layout;
mod hostile_registry;
mod hostile_render;
mod hostile_unpack;
mod image;
mod install;
mod registry;
mod render;
mod sandbox;
mod scaffold;
mod schema_agreement;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (tests run commands from there so paths in output are stable).
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

#[must_use]
pub fn goldenpath(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(args)
        .current_dir(root())
        .env_remove("GOLDENPATH_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run goldenpath")
}

/// The lifecycle's test buildpacks (`crates/gp-lifecycle/tests/fixtures/buildpacks`).
#[must_use]
pub fn test_buildpacks() -> PathBuf {
    root().join("crates/gp-lifecycle/tests/fixtures/buildpacks")
}

/// Writes `<dir>/order.toml` with the test buildpacks' `test/js` group; returns its path.
#[must_use]
pub fn js_order(dir: &Path) -> PathBuf {
    let order = dir.join("order.toml");
    fs_err::write(
        &order,
        "[[order]]\n[[order.group]]\nid = \"test/js\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    order
}

/// A Node.js-looking app (`<dir>/app/package.json`) and the `test/js` order beside it.
#[must_use]
pub fn js_app(dir: &Path) -> (PathBuf, PathBuf) {
    let app = dir.join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    (app, js_order(dir))
}

/// `goldenpath build IMAGE` with the lifecycle's test buildpacks, `order`, the app at `app` and `/bin/true` as the
/// launcher; further flags may be added.
#[must_use]
pub fn test_build(image: &str, order: &Path, app: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_goldenpath"));
    c.args(["build", image, "--launcher", "/bin/true", "--order"])
        .arg(order)
        .arg("--path")
        .arg(app)
        .arg("--buildpacks")
        .arg(test_buildpacks());
    c
}

/// A validator: files in, (accepted, output) out.
pub type Check = Box<dyn Fn(&[PathBuf]) -> (bool, String)>;

/// Runs a command; success and its combined output.
pub fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// A real external tool: required on CI, skipped with a note elsewhere.
#[must_use]
pub fn require_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is required on CI: run scripts/install-deps.sh"
        );
        eprintln!("note: `{name}` not installed; skipping (run scripts/install-deps.sh)");
    }
    found
}

#[derive(Debug, serde::Deserialize)]
pub struct Manifest {
    pub fixture: Vec<Fixture>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Fixture {
    pub name: String,
    pub schema: String,
}

#[must_use]
pub fn fixtures() -> Vec<Fixture> {
    let text = fs_err::read_to_string(root().join("examples/contracts-invalid/fixtures.toml"))
        .expect("manifest");
    toml::from_str::<Manifest>(&text)
        .expect("manifest parses")
        .fixture
}
