//! .NET: a project file (`*.csproj`, `*.fsproj`) at the app's root or named by a `*.sln`, the SDK version
//! (`global.json` `sdk.version`, else the project's `TargetFramework`: `net8.0` -> 8.0), the assembly to start,
//! and the packages it references. C# or F# source without any project file is refused with the fix: `dotnet`
//! cannot build it. No registry reachable from builds ships the .NET SDK, so the SDK comes from where the platform
//! team says (`BP_DOTNET_SDK_URL` + `BP_DOTNET_SDK_SHA512`); preflight warns when that is not configured, and the
//! build fails with the same words.

use std::path::Path;

use crate::{Finding, Language, Report, Sourced, files_with_ext, read};

/// What detection looks for.
pub const LOOKS_FOR: &str =
    "*.csproj, *.fsproj, *.sln or global.json (or a Program.cs / Program.fs)";

/// The app files detection reads by name (project files are found by extension).
pub const INPUTS: &[&str] = &["global.json", "NuGet.config", "nuget.config"];

/// The platform settings that say where the SDK comes from.
pub const SDK_URL: &str = "BP_DOTNET_SDK_URL";
/// The SHA-512 of the archive at [`SDK_URL`].
pub const SDK_SHA512: &str = "BP_DOTNET_SDK_SHA512";

/// The message of the finding for a build with no SDK source configured (the build repeats it as an error).
pub const NO_SDK: &str = "no .NET SDK is configured for builds: BP_DOTNET_SDK_URL is not set, and no registry these builds can reach ships the .NET SDK; the platform team provides the SDK archive (dotnet-sdk-<version>-linux-x64.tar.gz) on a mirror";

/// A platform setting: the process environment (the buildpack's, or the developer's shell for preflight), else
/// the platform directory's `env/` file.
fn setting(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .or_else(|| {
            let platform =
                std::env::var_os("CNB_PLATFORM_DIR").unwrap_or_else(|| "/platform".into());
            fs_err::read_to_string(Path::new(&platform).join("env").join(name)).ok()
        })
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The value of the first `<tag>...</tag>` in `xml`, and its line (1-based).
fn element(xml: &str, tag: &str) -> Option<(String, usize)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    let line = xml[..start].matches('\n').count() + 1;
    Some((xml[start..end].trim().to_owned(), line))
}

/// `Include` of every `<PackageReference>`, with its `Version` when given.
fn package_references(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in xml.split("<PackageReference").skip(1) {
        let tag = part.split('>').next().unwrap_or("");
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            tag.find(&key).and_then(|i| {
                let rest = &tag[i + key.len()..];
                rest.find('"').map(|e| rest[..e].to_owned())
            })
        };
        if let Some(name) = attr("Include") {
            out.push((name, attr("Version").unwrap_or_default()));
        }
    }
    out
}

/// `net8.0` -> `8.0`, `netcoreapp3.1` -> `3.1`; `None` for other frameworks (`netstandard2.0`, `net48`).
#[must_use]
pub fn framework_version(tfm: &str) -> Option<String> {
    let t = tfm.trim().to_ascii_lowercase();
    let v = t
        .strip_prefix("netcoreapp")
        .or_else(|| t.strip_prefix("net").filter(|r| r.contains('.')))?;
    let v = v.split('-').next()?;
    let mut parts = v.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some(format!("{major}.{minor}"))
}

/// The projects a solution file names (paths with `/`), those that exist.
fn solution_projects(dir: &Path, sln: &str) -> Vec<String> {
    let Some(text) = read(dir, sln) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| l.starts_with("Project("))
        .filter_map(|l| l.split(',').nth(1))
        .map(|p| p.trim().trim_matches('"').replace('\\', "/"))
        .filter(|p| {
            Path::new(p)
                .extension()
                .is_some_and(|e| e == "csproj" || e == "fsproj")
                && dir.join(p).is_file()
        })
        .collect()
}

/// Fills `report` when `dir` is a .NET app; false when it is not.
pub fn detect(dir: &Path, _procfile: &[(String, String)], report: &mut Report) -> bool {
    let mut projects: Vec<String> = files_with_ext(dir, "csproj");
    projects.extend(files_with_ext(dir, "fsproj"));
    let slns = files_with_ext(dir, "sln");
    if projects.is_empty() {
        for s in &slns {
            projects.extend(solution_projects(dir, s));
        }
    }
    let global = read(dir, "global.json");
    // Entry-point sources alone claim the app (to say what is missing); other `.cs` files do not.
    let sources: Vec<String> = ["Program.cs", "Program.fs"]
        .into_iter()
        .filter(|f| dir.join(f).is_file())
        .map(str::to_owned)
        .collect();
    if projects.is_empty() && slns.is_empty() && global.is_none() && sources.is_empty() {
        return false;
    }
    report.language = Some(Language::Dotnet);
    if projects.is_empty() {
        report.findings.push(no_project(&slns, &sources));
        return true;
    }
    // Several projects (a solution): the web project is the app.
    let mut chosen = projects[0].clone();
    if projects.len() > 1 {
        let web: Vec<&String> = projects
            .iter()
            .filter(|p| read(dir, p).is_some_and(|t| t.contains("Microsoft.NET.Sdk.Web")))
            .collect();
        if let [one] = web.as_slice() {
            chosen.clone_from(one);
        } else {
            report.findings.push(Finding::error(
                chosen.clone(),
                format!(
                    "{} projects ({}) and not exactly one of them is a web project (Sdk=\"Microsoft.NET.Sdk.Web\"): which one to publish is ambiguous",
                    projects.len(),
                    projects.join(", ")
                ),
                "keep one app project at the root, or make exactly one of them use Sdk=\"Microsoft.NET.Sdk.Web\"",
            ));
            return true;
        }
    }
    let Some(xml) = read(dir, &chosen) else {
        return true;
    };
    let refs = package_references(&xml);
    report.dependencies = refs.iter().map(|(n, _)| n.clone()).collect();
    report.package_manager = Some(Sourced::new("dotnet restore (NuGet)", chosen.clone()));
    let stem = Path::new(&chosen)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let assembly = element(&xml, "AssemblyName").map_or(stem, |(a, _)| a);
    report.start = Some(Sourced::new(
        format!("dotnet {assembly}.dll"),
        chosen.clone(),
    ));
    // The SDK version: global.json first, else the target framework.
    let tfm = target_framework(&xml);
    match &tfm {
        Some((t, line)) if framework_version(t).is_none() => report.findings.push(
            Finding::error(
                chosen.clone(),
                format!("TargetFramework `{t}` is not a .NET (Core) app framework: only net5.0 and later (or netcoreapp3.x) run on Linux as an app"),
                "target an app framework, e.g. `<TargetFramework>net8.0</TargetFramework>`",
            )
            .at(*line),
        ),
        None => report.findings.push(Finding::error(
            chosen.clone(),
            "no <TargetFramework>: the runtime version the app needs is unknown",
            "add `<TargetFramework>net8.0</TargetFramework>` inside a <PropertyGroup>",
        )),
        Some(_) => {}
    }
    let framework = tfm.as_ref().and_then(|(t, _)| framework_version(t));
    if let Some(text) = &global {
        report.runtime = global_sdk(text, &mut report.findings);
    }
    if report.runtime.is_none()
        && let (Some(v), Some((_, line))) = (&framework, &tfm)
    {
        report.runtime = Some(Sourced::new(
            v.clone(),
            format!("{chosen} (TargetFramework, line {line})"),
        ));
    }
    check_settings(
        dir,
        &chosen,
        framework.as_deref(),
        refs.len(),
        &mut report.findings,
    );
    true
}

/// The project's `TargetFramework` (of `TargetFrameworks`, the newest app framework), and its line.
fn target_framework(xml: &str) -> Option<(String, usize)> {
    element(xml, "TargetFramework").or_else(|| {
        element(xml, "TargetFrameworks").map(|(list, line)| {
            let best = list
                .split(';')
                .filter(|t| framework_version(t).is_some())
                .max_by_key(|t| {
                    framework_version(t).map(|v| {
                        v.split('.')
                            .map(|p| p.parse::<u32>().unwrap_or(0))
                            .collect::<Vec<_>>()
                    })
                })
                .unwrap_or("")
                .to_owned();
            (best, line)
        })
    })
}

/// Where the SDK comes from (configured, verifiable) and where packages come from.
fn check_settings(
    dir: &Path,
    chosen: &str,
    framework: Option<&str>,
    refs: usize,
    findings: &mut Vec<Finding>,
) {
    // Where the SDK comes from.
    match (setting(SDK_URL), setting(SDK_SHA512)) {
        (None, _) => findings.push(Finding::warning(
            chosen.to_owned(),
            NO_SDK,
            format!(
                "ask the platform team for the SDK mirror, then build with `goldenpath build --env {SDK_URL}=https://mirror.example/dotnet-sdk-{}-linux-x64.tar.gz --env {SDK_SHA512}=<its sha512>`",
                framework.map_or("8.0.xxx".to_owned(), |f| format!("{f}.xxx"))
            ),
        )),
        (Some(_), None) => findings.push(Finding::error(
            chosen.to_owned(),
            format!("{SDK_URL} is set but {SDK_SHA512} is not: the SDK archive cannot be verified"),
            format!("set `--env {SDK_SHA512}=<sha512 of the archive>` (`sha512sum dotnet-sdk-*.tar.gz`)"),
        )),
        (Some(_), Some(_)) => {}
    }
    if refs > 0
        && read(dir, "NuGet.config")
            .or_else(|| read(dir, "nuget.config"))
            .is_none()
        && setting("BP_DOTNET_NUGET_SOURCE").is_none()
    {
        findings.push(Finding::warning(
            chosen.to_owned(),
            format!(
                "{refs} package reference(s) and no NuGet.config: restore will ask nuget.org, which builds behind a mirror cannot reach"
            ),
            "commit a NuGet.config that names your feed (a mirror, or a folder of .nupkg files in the app), or set `--env BP_DOTNET_NUGET_SOURCE=URL`",
        ));
    }
}

/// Why an app with .NET files but no project cannot build.
fn no_project(slns: &[String], sources: &[String]) -> Finding {
    let (file, what) = match (slns.first(), sources.first()) {
        (Some(s), _) => (s.clone(), format!("{s} names no project file that exists")),
        (None, Some(src)) => (
            src.clone(),
            format!(
                "{} source with no project file (*.csproj or *.fsproj) next to it: `dotnet publish` has nothing to build",
                if src == "Program.fs" { "F#" } else { "C#" }
            ),
        ),
        (None, None) => (
            "global.json".to_owned(),
            "global.json pins an SDK, but there is no project file (*.csproj or *.fsproj)"
                .to_owned(),
        ),
    };
    Finding::error(
        file,
        what,
        "create the project next to your code: `dotnet new web --name App` (or write App.csproj with `<Project Sdk=\"Microsoft.NET.Sdk.Web\">` and `<TargetFramework>net8.0</TargetFramework>`) and commit it",
    )
}

/// `sdk.version` of global.json, or an error finding when it is not JSON.
fn global_sdk(text: &str, findings: &mut Vec<Finding>) -> Option<Sourced> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Err(e) => {
            findings.push(
                Finding::error(
                    "global.json",
                    format!("is not valid JSON: {e}"),
                    "fix the syntax, or remove global.json to build with the configured SDK",
                )
                .at(e.line()),
            );
            None
        }
        Ok(v) => v["sdk"]["version"]
            .as_str()
            .map(|sdk| Sourced::new(sdk, "global.json (sdk.version)")),
    }
}
