//! Detection of .NET apps: the project (or solution), SDK version, start command, packages, what fails (with
//! file, line and fix) and the SDK source settings.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use gp_buildpacks::{Finding, Language, Severity, detect};

fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

const CSPROJ: &str = "<Project Sdk=\"Microsoft.NET.Sdk.Web\">\n  <PropertyGroup>\n    <TargetFramework>net8.0</TargetFramework>\n  </PropertyGroup>\n  <ItemGroup>\n    <PackageReference Include=\"Serilog\" Version=\"3.1.1\" />\n  </ItemGroup>\n</Project>\n";

#[test]
fn dotnet_project_version_and_start() {
    let d = app(&[("Api.csproj", CSPROJ), ("Program.cs", "")]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Dotnet));
    let rt = r.runtime.unwrap();
    assert_eq!(
        (rt.value.as_str(), rt.source.as_str()),
        ("8.0", "Api.csproj (TargetFramework, line 3)")
    );
    assert_eq!(r.start.unwrap().value, "dotnet Api.dll");
    assert_eq!(r.dependencies, ["Serilog"]);
    // No NuGet.config with package references: a warning naming the fix.
    assert!(r.findings.iter().any(|f| f.severity == Severity::Warning
        && f.message.contains("no NuGet.config")
        && f.fix.contains("BP_DOTNET_NUGET_SOURCE")));
    // global.json wins; AssemblyName names the dll.
    let d = app(&[
        (
            "Api.csproj",
            &CSPROJ.replace(
                "</TargetFramework>",
                "</TargetFramework><AssemblyName>Shop</AssemblyName>",
            ),
        ),
        ("global.json", "{\"sdk\": {\"version\": \"8.0.404\"}}"),
        ("NuGet.config", "<configuration/>"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.runtime.unwrap().value, "8.0.404");
    assert_eq!(r.start.unwrap().value, "dotnet Shop.dll");
    assert!(
        !r.findings
            .iter()
            .any(|f| f.message.contains("NuGet.config"))
    );
}

#[test]
fn dotnet_solutions_and_frameworks() {
    let d = app(&[
        (
            "Shop.sln",
            "Microsoft Visual Studio Solution File\nProject(\"{FAE04EC0}\") = \"Web\", \"src\\Web\\Web.csproj\", \"{1}\"\nEndProject\n",
        ),
        (
            "src/Web/Web.csproj",
            "<Project Sdk=\"Microsoft.NET.Sdk.Web\"><PropertyGroup><TargetFrameworks>net6.0;net8.0</TargetFrameworks></PropertyGroup></Project>",
        ),
    ]);
    let r = detect(d.path());
    assert_eq!(r.package_manager.unwrap().source, "src/Web/Web.csproj");
    assert_eq!(r.runtime.unwrap().value, "8.0");
    let d = app(&[(
        "Lib.csproj",
        "<Project>\n<PropertyGroup>\n<TargetFramework>netstandard2.0</TargetFramework>\n</PropertyGroup></Project>",
    )]);
    let e = detect(d.path()).findings;
    let e = errors(&e);
    assert_eq!((e[0].file.as_str(), e[0].line), ("Lib.csproj", Some(3)));
    assert!(e[0].fix.contains("net8.0"));
    let d = app(&[("A.csproj", "<Project/>")]);
    let e = detect(d.path()).findings;
    assert!(errors(&e)[0].message.contains("no <TargetFramework>"));
    let d = app(&[("A.csproj", CSPROJ), ("global.json", "{\n  \"sdk\": \n}")]);
    let f = detect(d.path()).findings;
    let e = errors(&f);
    assert_eq!((e[0].file.as_str(), e[0].line), ("global.json", Some(3)));
    let d = app(&[("A.csproj", CSPROJ), ("B.csproj", CSPROJ)]);
    assert!(
        errors(&detect(d.path()).findings)[0]
            .message
            .contains("ambiguous")
    );
    let d = app(&[("Empty.sln", "Microsoft Visual Studio Solution File\n")]);
    let f = detect(d.path()).findings;
    assert_eq!(errors(&f)[0].file, "Empty.sln");
}

/// The SDK source: a warning naming the settings when nothing is configured (the build fails with the same
/// words); an error for a URL without its checksum; nothing when both are set, in the environment or in the
/// platform directory. The configured cases run in a child process of this test binary with its own environment.
#[test]
fn dotnet_sdk_source_settings() {
    let d = app(&[("App.csproj", CSPROJ), ("NuGet.config", "<configuration/>")]);
    let child = |env: &[(&str, String)]| -> Vec<Finding> {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "sdk_settings_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("BP_DOTNET_SDK_URL")
        .env_remove("BP_DOTNET_SDK_SHA512")
        .env("CNB_PLATFORM_DIR", d.path().join("platform"))
        .env("GP_DETECT_CHILD", d.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let json = text
            .lines()
            .find_map(|l| l.split_once("FINDINGS ").map(|(_, j)| j))
            .unwrap();
        let v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        v.iter()
            .map(|f| Finding {
                severity: if f["severity"] == "error" {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                file: f["file"].as_str().unwrap().to_owned(),
                line: None,
                message: f["message"].as_str().unwrap().to_owned(),
                fix: f["fix"].as_str().unwrap().to_owned(),
            })
            .collect()
    };
    let f = child(&[]);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].file, "App.csproj");
    assert!(
        f[0].message
            .starts_with("no .NET SDK is configured for builds: BP_DOTNET_SDK_URL is not set")
    );
    assert!(
        f[0].fix.contains("--env BP_DOTNET_SDK_URL=")
            && f[0].fix.contains("dotnet-sdk-8.0.xxx-linux-x64.tar.gz"),
        "{}",
        f[0].fix
    );
    let f = child(&[(
        "BP_DOTNET_SDK_URL",
        "https://mirror.example/sdk.tar.gz".into(),
    )]);
    assert_eq!(f[0].severity, Severity::Error);
    assert!(
        f[0].message.contains("BP_DOTNET_SDK_SHA512 is not"),
        "{f:?}"
    );
    let f = child(&[
        (
            "BP_DOTNET_SDK_URL",
            "https://mirror.example/sdk.tar.gz".into(),
        ),
        ("BP_DOTNET_SDK_SHA512", "abc".into()),
    ]);
    assert!(f.is_empty(), "{f:?}");
    // From the platform directory, as inside a build.
    fs_err::create_dir_all(d.path().join("platform/env")).unwrap();
    fs_err::write(
        d.path().join("platform/env/BP_DOTNET_SDK_URL"),
        "https://m/s.tgz",
    )
    .unwrap();
    fs_err::write(d.path().join("platform/env/BP_DOTNET_SDK_SHA512"), "abc").unwrap();
    assert!(child(&[]).is_empty());
}

/// The child of [`dotnet_sdk_source_settings`]: prints the findings for `$GP_DETECT_CHILD` (nothing otherwise).
#[test]
fn sdk_settings_child() {
    if let Some(dir) = std::env::var_os("GP_DETECT_CHILD") {
        let r = detect(std::path::Path::new(&dir));
        println!("FINDINGS {}", serde_json::to_string(&r.findings).unwrap());
    }
}
