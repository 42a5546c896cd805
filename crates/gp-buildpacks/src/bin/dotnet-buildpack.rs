//! The built-in .NET buildpack (`io.goldenpath.dotnet`), one static executable installed as both `bin/detect` and
//! `bin/build`.
//!
//! Where the SDK comes from: the archive the platform team configures (`BP_DOTNET_SDK_URL`, checked against
//! `BP_DOTNET_SDK_SHA512`; `https://`, `http://` or `file://`, fetched with the build image's curl), unpacked into
//! an `sdk` build + cache layer keyed by URL and checksum. `dotnet restore` fills a `nuget` cache layer (packages
//! from the app's NuGet.config feeds, or `BP_DOTNET_NUGET_SOURCE`), `dotnet publish -c Release` writes the app into
//! an `app` launch layer, and the runtime (the archive's `dotnet` host and `shared/` frameworks, or a separately
//! configured `BP_DOTNET_RUNTIME_URL` + `BP_DOTNET_RUNTIME_SHA512`) goes into a `runtime` launch + cache layer.
//! The `web` process is `dotnet <App>.dll` with `ASPNETCORE_URLS=http://0.0.0.0:$PORT`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, phase_main, read_meta, reuse_sbom, sh, write, write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

/// What the runtime layer keeps of an SDK archive: everything but the SDK itself.
const SDK_ONLY: &[&str] = &[
    "sdk",
    "packs",
    "templates",
    "sdk-manifests",
    "library-packs",
    "metadata",
];

/// `(name, version, purl)` of an SBOM entry.
type Component = (String, String, String);

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Dotnet, "dotnet")
}

fn setting(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Writes `<layers>/<layer>.toml` with its types and `key`.
fn layer_toml(
    layers: &Path,
    layer: &str,
    (build, launch, cache): (bool, bool, bool),
    key: &str,
) -> Result<(), String> {
    write(
        &layers.join(format!("{layer}.toml")),
        &format!(
            "[types]\nlaunch = {launch}\nbuild = {build}\ncache = {cache}\n\n[metadata]\nkey = {}\n",
            toml::Value::String(key.to_owned())
        ),
    )
}

/// Downloads `url` beside `dir`, checks its SHA-512 and unpacks it into `dir`.
fn install_archive(url: &str, sha512: &str, dir: &Path, what: &str) -> Result<(), String> {
    let archive = dir.with_extension("download.tar.gz");
    let _ = fs_err::remove_dir_all(dir);
    fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    sh(
        Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(&archive)
            .arg(url),
        &format!("curl {url} ({what}; behind a private CA: `goldenpath build --ca-certs FILE`)"),
    )?;
    let got = sh(Command::new("sha512sum").arg(&archive), "sha512sum")?;
    let got = got.split_whitespace().next().unwrap_or("").to_owned();
    if !got.eq_ignore_ascii_case(sha512.trim()) {
        let _ = fs_err::remove_file(&archive);
        return Err(format!(
            "{url}: SHA-512 {got} does not match the configured one ({what})\n  fix: set the checksum the platform team published for this archive (`sha512sum` of the file)"
        ));
    }
    sh(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .args(["--no-same-owner", "-C"])
            .arg(dir),
        &format!("tar (unpacking {url})"),
    )?;
    let _ = fs_err::remove_file(&archive);
    Ok(())
}

/// The directory names under `dir` (versions), sorted.
fn versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| {
        s.split(['.', '-'])
            .map(|p| p.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    });
    v
}

fn major_minor(v: &str) -> String {
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// The `sdk` layer: the configured archive, unpacked once per URL and checksum.
fn sdk_layer(
    layers: &Path,
    report: &Report,
    url: &str,
    sha: &str,
) -> Result<(PathBuf, String), String> {
    let key = cache_key(&format!("{url}\0{sha}"));
    let layer = layers.join("sdk");
    if read_meta(layers, "sdk", "key").as_deref() == Some(key.as_str())
        && layer.join("dotnet").exists()
    {
        println!("Reusing the .NET SDK (sdk layer unchanged: same {url})");
    } else {
        println!("Installing the .NET SDK from {url}");
        install_archive(url, sha, &layer, "BP_DOTNET_SDK_URL")?;
    }
    layer_toml(layers, "sdk", (true, false, true), &key)?;
    let sdk = versions(&layer.join("sdk")).pop().ok_or_else(|| {
        format!("{url}: the archive has no sdk/<version>/ directory: it is not a .NET SDK archive\n  fix: point BP_DOTNET_SDK_URL at dotnet-sdk-<version>-linux-x64.tar.gz")
    })?;
    if let Some(req) = &report.runtime {
        let ok = if req.source.starts_with("global.json") {
            // The default roll-forward (latestPatch): same feature band, same or newer patch.
            let band = |v: &str| {
                let p: Vec<&str> = v.split('.').collect();
                (
                    p.first().copied().unwrap_or("").to_owned(),
                    p.get(1).copied().unwrap_or("").to_owned(),
                    p.get(2).map(|x| x.chars().next().unwrap_or('0')),
                )
            };
            band(&sdk) == band(&req.value)
                && sdk.split('.').nth(2).and_then(|x| x.parse::<u32>().ok())
                    >= req
                        .value
                        .split('.')
                        .nth(2)
                        .and_then(|x| x.parse::<u32>().ok())
        } else {
            let major = |v: &str| v.split('.').next().and_then(|m| m.parse::<u32>().ok());
            major(&sdk) >= major(&req.value)
        };
        if !ok {
            return Err(format!(
                "{}: .NET SDK `{}` is requested, but the configured SDK ({url}) is {sdk}\n  fix: configure an SDK archive that matches (BP_DOTNET_SDK_URL), or change the request to {}",
                req.source,
                req.value,
                if req.source.starts_with("global.json") {
                    sdk.clone()
                } else {
                    format!("net{}", major_minor(&sdk))
                }
            ));
        }
    }
    Ok((layer, sdk))
}

/// The `runtime` layer: the host and shared frameworks of the SDK archive (or of a configured runtime archive).
fn runtime_layer(
    layers: &Path,
    sdk_layer: &Path,
    sdk_key: &str,
) -> Result<(PathBuf, Vec<Component>), String> {
    let separate = setting("BP_DOTNET_RUNTIME_URL");
    let key = match &separate {
        Some(url) => cache_key(&format!(
            "{url}\0{}",
            setting("BP_DOTNET_RUNTIME_SHA512").unwrap_or_default()
        )),
        None => cache_key(&format!("runtime of\0{sdk_key}")),
    };
    let layer = layers.join("runtime");
    let reused = read_meta(layers, "runtime", "key").as_deref() == Some(key.as_str())
        && layer.join("dotnet").exists()
        && layer.join(".sbom.cdx.json").is_file();
    if reused {
        println!("Reusing the .NET runtime (runtime layer unchanged)");
        reuse_sbom(layers, "runtime")?;
    } else if let Some(url) = &separate {
        let sha = setting("BP_DOTNET_RUNTIME_SHA512").ok_or(
            "BP_DOTNET_RUNTIME_URL is set but BP_DOTNET_RUNTIME_SHA512 is not: the runtime archive cannot be verified\n  fix: set `--env BP_DOTNET_RUNTIME_SHA512=<sha512 of the archive>`",
        )?;
        println!("Installing the .NET runtime from {url}");
        install_archive(url, &sha, &layer, "BP_DOTNET_RUNTIME_URL")?;
    } else {
        println!(
            "Installing the .NET runtime (the host and shared frameworks of the configured SDK)"
        );
        let _ = fs_err::remove_dir_all(&layer);
        copy_tree(sdk_layer, &layer, SDK_ONLY)?;
    }
    let mut components = Vec::new();
    for framework in ["Microsoft.NETCore.App", "Microsoft.AspNetCore.App"] {
        for v in versions(&layer.join("shared").join(framework)) {
            components.push((
                framework.to_owned(),
                v.clone(),
                format!("pkg:nuget/{framework}@{v}"),
            ));
        }
    }
    if components.is_empty() {
        return Err("the configured archive has no shared/Microsoft.NETCore.App/<version>/: it carries no .NET runtime\n  fix: use an SDK archive (which includes the runtime) or set BP_DOTNET_RUNTIME_URL to a runtime archive".into());
    }
    if !reused {
        write_sbom(&layers.join("runtime.sbom.cdx.json"), &components)?;
        // The run image has no ICU: invariant globalization unless the app says otherwise.
        write(
            &layer.join("env.launch/DOTNET_SYSTEM_GLOBALIZATION_INVARIANT.default"),
            "1",
        )?;
        write(
            &layer.join("env.launch/DOTNET_ROOT.override"),
            &layer.display().to_string(),
        )?;
        write(&layer.join("env.launch/DOTNET_NOLOGO.default"), "1")?;
    }
    layer_toml(layers, "runtime", (false, true, true), &key)?;
    Ok((layer, components))
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), String> {
    fs_err::create_dir_all(to).map_err(|e| e.to_string())?;
    let entries = gp_buildpacks::support::sorted_entries(from).map_err(|e| e.to_string())?;
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) || name.starts_with(".sbom") {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        let ft = e.file_type().map_err(|e| e.to_string())?;
        if ft.is_symlink() {
            let target = fs_err::read_link(&src).map_err(|e| e.to_string())?;
            fs_err::os::unix::fs::symlink(target, &dst).map_err(|e| e.to_string())?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst, &[])?;
        } else {
            fs_err::copy(&src, &dst).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Runs the SDK's `dotnet` in the app with the `NuGet` cache layer and no telemetry.
fn dotnet(sdk: &Path, app: &Path, nuget: &Path, args: &[&str], what: &str) -> Result<(), String> {
    let home = std::env::temp_dir().join("dotnet-home");
    fs_err::create_dir_all(&home).map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}",
        sdk.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new(sdk.join("dotnet"))
        .args(args)
        .current_dir(app)
        .env("PATH", path)
        .env("DOTNET_ROOT", sdk)
        .env("DOTNET_CLI_HOME", &home)
        .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
        .env("DOTNET_NOLOGO", "1")
        .env("DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1")
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .env("NUGET_PACKAGES", nuget)
        .status()
        .map_err(|e| format!("cannot run dotnet: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`dotnet {}` failed (exit {}); see its output above. {what}",
            args.join(" "),
            status.code().unwrap_or(-1)
        ))
    }
}

/// `(name, version, purl)` of the `NuGet` packages restore resolved (`obj/project.assets.json`).
fn restored_packages(app: &Path, project: &str) -> Vec<(String, String, String)> {
    let dir = Path::new(project)
        .parent()
        .map_or_else(|| app.to_path_buf(), |p| app.join(p));
    let Ok(text) = fs_err::read_to_string(dir.join("obj/project.assets.json")) else {
        return Vec::new();
    };
    let assets: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut out: Vec<(String, String, String)> = assets["libraries"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v["type"] == "package")
        .filter_map(|(k, _)| {
            let (n, v) = k.split_once('/')?;
            Some((n.to_owned(), v.to_owned(), format!("pkg:nuget/{n}@{v}")))
        })
        .collect();
    out.sort();
    out
}

fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(|e| e.to_string())?;
    let report = detect(&app);
    let mut failed = report.failed();
    for f in &report.findings {
        // No SDK configured is a warning for preflight, and what stops the build: said in the same words.
        if f.severity == Severity::Warning && f.message.starts_with("no .NET SDK is configured") {
            eprintln!("{}", f.to_string().replacen("warning: ", "error: ", 1));
            failed = true;
        } else {
            eprintln!("{f}");
        }
    }
    if failed {
        return Ok(1);
    }
    let (Some(url), Some(sha)) = (
        setting("BP_DOTNET_SDK_URL"),
        setting("BP_DOTNET_SDK_SHA512"),
    ) else {
        return Err("BP_DOTNET_SDK_URL and BP_DOTNET_SDK_SHA512 must both be set".into());
    };
    let project = report
        .package_manager
        .as_ref()
        .map(|p| p.source.clone())
        .ok_or("no project file")?;
    let (sdk, sdk_version) = sdk_layer(&layers, &report, &url, &sha)?;
    println!(".NET SDK {sdk_version}; project {project}");
    // NuGet's package folder: a cache layer (packages are immutable by name and version).
    let nuget = layers.join("nuget");
    if nuget.is_dir() && read_meta(&layers, "nuget", "key").is_some() {
        println!("Reusing the NuGet package cache (nuget layer)");
    }
    fs_err::create_dir_all(&nuget).map_err(|e| e.to_string())?;
    layer_toml(&layers, "nuget", (false, false, true), "packages")?;
    let mut restore = vec!["restore", project.as_str()];
    let source = setting("BP_DOTNET_NUGET_SOURCE");
    if let Some(s) = &source {
        restore.extend(["--source", s.as_str()]);
    }
    println!("Restoring packages (dotnet {})", restore.join(" "));
    dotnet(
        &sdk,
        &app,
        &nuget,
        &restore,
        "Packages come from the feeds of the app's NuGet.config, or `--env BP_DOTNET_NUGET_SOURCE=URL` (nuget.org is not reachable from behind a mirror)",
    )?;
    let out = layers.join("app");
    let _ = fs_err::remove_dir_all(&out);
    let out_s = out.display().to_string();
    println!("Publishing (dotnet publish -c Release)");
    dotnet(
        &sdk,
        &app,
        &nuget,
        &[
            "publish",
            project.as_str(),
            "-c",
            "Release",
            "--no-restore",
            "-o",
            out_s.as_str(),
        ],
        "",
    )?;
    let packages = restored_packages(&app, &project);
    println!("  {} NuGet package(s)", packages.len());
    write_sbom(&layers.join("app.sbom.cdx.json"), &packages)?;
    layer_toml(&layers, "app", (false, true, false), "published")?;
    let (runtime, frameworks) = runtime_layer(&layers, &sdk, &cache_key(&format!("{url}\0{sha}")))?;
    for (n, v, _) in &frameworks {
        println!("  runtime: {n} {v}");
    }
    let start = report
        .start
        .as_ref()
        .map_or("dotnet App.dll".to_owned(), |s| s.value.clone());
    let dll = start.trim_start_matches("dotnet ").to_owned();
    if !out.join(&dll).is_file() {
        return Err(format!(
            "{project}: `dotnet publish` wrote no {dll} to the app layer\n  fix: check <AssemblyName> and <OutputType>Exe</OutputType> in {project}"
        ));
    }
    let web = format!(
        "cd {} && ASPNETCORE_URLS=\"http://0.0.0.0:${{PORT:-8080}}\" exec {} {}",
        sh_quote(&out_s),
        sh_quote(&runtime.join("dotnet").display().to_string()),
        sh_quote(&dll)
    );
    println!("Start command: dotnet {dll} (ASPNETCORE_URLS=http://0.0.0.0:$PORT)");
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !procs.iter().any(|(k, _)| k == "web") {
        procs.insert(0, ("web".into(), web));
    }
    write_launch(&layers, &procs)?;
    Ok(0)
}

/// `launch.toml` with `procs`, each run by bash.
fn write_launch(layers: &Path, procs: &[(String, String)]) -> Result<(), String> {
    let mut launch = String::new();
    for (kind, cmd) in procs {
        let _ = write!(
            launch,
            "[[processes]]\ntype = {}\ncommand = [\"bash\", \"-c\", {}]\ndefault = {}\n\n",
            toml::Value::String(kind.clone()),
            toml::Value::String(cmd.clone()),
            kind == "web"
        );
    }
    write(&layers.join("launch.toml"), &launch)
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
