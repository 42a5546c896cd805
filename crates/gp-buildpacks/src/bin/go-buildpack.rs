//! The built-in Go buildpack (`io.goldenpath.go`), one static executable installed as both `bin/detect` and
//! `bin/build`.
//!
//! Where the toolchain comes from: the Go module proxy, which serves Go's binary distributions as the module
//! `golang.org/toolchain` (`v0.0.1-go<version>.linux-amd64`), from `$GOPROXY` when the platform sets it (a mirror),
//! else proxy.golang.org; the zip is checked against the SHA-256 pinned in the inventory (`go/gomod.rs`). The
//! toolchain is a build + cache layer (`go`), never in the image. Modules come from the same proxy into a cached
//! module cache (`gomodcache`, keyed by go.mod and go.sum), or from `vendor/` with `-mod=vendor` and no network;
//! the build cache (`gocache`) is cached by toolchain. `go build -trimpath -buildvcs=false` with `CGO_ENABLED=0`
//! (`BP_GO_CGO=1` turns cgo on) writes the executables into an `app` launch layer whose `bin` is on PATH; its SBOM
//! lists the modules compiled in, read back with `go version -m`.

#[path = "../go/gomod.rs"]
#[allow(dead_code)] // shared with detection, which uses the rest
mod gomod;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, phase_main, read_meta, reuse_sbom, sh, write, write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Go, "go")
}

/// `<layers>/<layer>.toml` with the given types and `[metadata]`. The toolchain and caches are not launch layers,
/// which `support::layer_toml` always declares.
fn layer_toml(
    layers: &Path,
    layer: &str,
    (launch, build, cache): (bool, bool, bool),
    meta: &[(&str, String)],
) -> Result<(), String> {
    let mut text =
        format!("[types]\nlaunch = {launch}\nbuild = {build}\ncache = {cache}\n\n[metadata]\n");
    for (k, v) in meta {
        let _ = writeln!(text, "{k} = {}", toml::Value::String(v.clone()));
    }
    write(&layers.join(format!("{layer}.toml")), &text)
}

/// The proxies of `$GOPROXY` to fetch from, in order (`direct` and `off` skipped), else proxy.golang.org.
fn proxies() -> Vec<String> {
    let value = std::env::var("GOPROXY").unwrap_or_default();
    if value.trim().is_empty() {
        return vec!["https://proxy.golang.org".into()];
    }
    value
        .split([',', '|'])
        .map(|p| p.trim().trim_end_matches('/'))
        .filter(|p| !p.is_empty() && *p != "direct" && *p != "off")
        .map(str::to_owned)
        .collect()
}

/// Downloads the toolchain zip from the first proxy that has it, checks its SHA-256 and unpacks it into `layer`.
fn download_toolchain(layer: &Path, version: &str, sha256: &str) -> Result<(), String> {
    let module = format!("v0.0.1-go{version}.linux-amd64");
    let zip = layer.with_extension("download.zip");
    let unpack = layer.with_extension("unpack");
    let list = proxies();
    if list.is_empty() {
        return Err(format!(
            "GOPROXY is `{}`: there is no proxy to download the Go toolchain (golang.org/toolchain@{module}) from\n  fix: set `--env GOPROXY=https://your-mirror` (a Go module proxy that serves golang.org/toolchain), or unset GOPROXY for proxy.golang.org",
            std::env::var("GOPROXY").unwrap_or_default()
        ));
    }
    let mut failures = Vec::new();
    let mut fetched = None;
    for proxy in &list {
        let url = format!("{proxy}/golang.org/toolchain/@v/{module}.zip");
        match sh(
            Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(&zip)
                .arg(&url),
            &format!("curl {url}"),
        ) {
            Ok(_) => {
                fetched = Some(url);
                break;
            }
            Err(e) => failures.push(e.trim().to_owned()),
        }
    }
    let Some(url) = fetched else {
        return Err(format!(
            "cannot download the Go toolchain go{version}:\n{}\n  fix: behind a private CA, `goldenpath build --ca-certs FILE`; for a mirror, `--env GOPROXY=https://your-mirror` (it must serve golang.org/toolchain)",
            failures.join("\n")
        ));
    };
    let got = sh(Command::new("sha256sum").arg(&zip), "sha256sum")?;
    let got = got.split_whitespace().next().unwrap_or("").to_owned();
    if got != sha256 {
        let _ = fs_err::remove_file(&zip);
        return Err(format!(
            "{url}: SHA-256 {got} does not match the buildpack's inventory ({sha256} for go{version}); the download was discarded\n  fix: check that GOPROXY points at a genuine Go module proxy"
        ));
    }
    let _ = fs_err::remove_dir_all(&unpack);
    sh(
        Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&zip)
            .arg("-d")
            .arg(&unpack),
        "unzip (is `unzip` in the stack's build packages?)",
    )?;
    let _ = fs_err::remove_file(&zip);
    let root = unpack.join(format!("golang.org/toolchain@{module}"));
    if !root.join("bin/go").is_file() {
        return Err(format!(
            "{url}: the zip has no golang.org/toolchain@{module}/bin/go"
        ));
    }
    let _ = fs_err::remove_dir_all(layer);
    fs_err::rename(&root, layer).map_err(|e| e.to_string())?;
    let _ = fs_err::remove_dir_all(&unpack);
    // Module zips need not carry file modes: the executables are made executable, as `go` does for toolchains.
    for dir in [layer.join("bin"), layer.join("pkg/tool/linux_amd64")] {
        for e in fs_err::read_dir(&dir).map_err(|e| e.to_string())?.flatten() {
            fs_err::set_permissions(
                e.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The `go` layer (build + cache, never launch): the toolchain, reused while its version and checksum are unchanged.
fn toolchain_layer(layers: &Path, version: &str, sha256: &str) -> Result<PathBuf, String> {
    let layer = layers.join("go");
    let meta = [
        ("version", version.to_owned()),
        ("sha256", sha256.to_owned()),
    ];
    if read_meta(layers, "go", "sha256").as_deref() == Some(sha256)
        && layer.join("bin/go").is_file()
    {
        println!("Reusing Go {version} (toolchain layer unchanged)");
        reuse_sbom(layers, "go")?;
        layer_toml(layers, "go", (false, true, true), &meta)?;
        return Ok(layer);
    }
    println!(
        "Installing Go {version} from {} (golang.org/toolchain, SHA-256 checked)",
        proxies()
            .first()
            .map_or("the Go module proxy", String::as_str)
    );
    download_toolchain(&layer, version, sha256)?;
    write_sbom(
        &layers.join("go.sbom.cdx.json"),
        &[(
            "golang.org/toolchain".to_owned(),
            format!("v0.0.1-go{version}.linux-amd64"),
            format!("pkg:golang/golang.org/toolchain@v0.0.1-go{version}.linux-amd64"),
        )],
    )?;
    layer_toml(layers, "go", (false, true, true), &meta)?;
    Ok(layer)
}

/// A cache-only layer kept while `key` is unchanged, emptied otherwise; true when reused.
fn cache_layer(layers: &Path, name: &str, key: &str) -> Result<bool, String> {
    let layer = layers.join(name);
    let reused = read_meta(layers, name, "key").as_deref() == Some(key) && layer.is_dir();
    if !reused {
        if layer.is_dir() {
            make_writable(&layer);
        }
        let _ = fs_err::remove_dir_all(&layer);
        fs_err::create_dir_all(&layer).map_err(|e| e.to_string())?;
    }
    layer_toml(
        layers,
        name,
        (false, false, true),
        &[("key", key.to_owned())],
    )?;
    Ok(reused)
}

/// The module cache is read-only as Go writes it (unless `-modcacherw`): made writable so that it can be removed.
fn make_writable(dir: &Path) {
    let _ = Command::new("chmod").args(["-R", "u+w"]).arg(dir).status();
}

fn truthy(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// The build settings, reported once.
struct Settings {
    cgo: bool,
    vendored: bool,
}

fn go_command(go: &Path, app: &Path, layers: &Path, settings: &Settings) -> Command {
    let tmp = std::env::temp_dir();
    let mut cmd = Command::new(go.join("bin/go"));
    let path = format!(
        "{}:{}",
        go.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut goflags = std::env::var("GOFLAGS").unwrap_or_default();
    if !settings.vendored {
        goflags.push_str(" -modcacherw");
    }
    cmd.current_dir(app)
        .env("PATH", path)
        .env("GOTOOLCHAIN", "local")
        .env("GOENV", "off")
        .env("GOTELEMETRY", "off")
        .env("GOPATH", tmp.join("gopath"))
        .env("XDG_CONFIG_HOME", tmp.join("go-config"))
        .env("GOCACHE", layers.join("gocache"))
        .env("GOFLAGS", goflags.trim())
        .env("CGO_ENABLED", if settings.cgo { "1" } else { "0" });
    if settings.vendored {
        // Everything comes from vendor/: nothing may be fetched.
        cmd.env("GOPROXY", "off")
            .env("GOFLAGS", format!("{} -mod=vendor", goflags.trim()).trim());
    } else {
        cmd.env("GOMODCACHE", layers.join("gomodcache"));
    }
    cmd
}

/// The modules compiled into `exe` (`go version -m`): `(path, version)` of each `dep` line, a replacement's own
/// path and version when it has one (what was compiled).
fn modules_in(go: &Path, exe: &Path) -> Result<Vec<(String, String)>, String> {
    let out = sh(
        Command::new(go.join("bin/go"))
            .env("GOTOOLCHAIN", "local")
            .env("GOENV", "off")
            .args(["version", "-m"])
            .arg(exe),
        "go version -m",
    )?;
    Ok(build_info_modules(&out))
}

/// The `dep` modules of `go version -m`'s output, each replaced by its `=>` line when that names a version (a
/// replacement by a directory has none: the required module stays).
fn build_info_modules(out: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        match cols.as_slice() {
            [_, "dep", path, version, ..] => {
                found.push(((*path).to_owned(), (*version).to_owned()));
            }
            [_, "=>", path, version, ..] if !version.is_empty() => {
                if let Some(last) = found.last_mut() {
                    *last = ((*path).to_owned(), (*version).to_owned());
                }
            }
            _ => {}
        }
    }
    found
}

/// The `app` launch layer: the executables `go build` makes of the targets, and their SBOM.
fn build_app(
    layers: &Path,
    app: &Path,
    go: &Path,
    version: &str,
    report: &Report,
    settings: &Settings,
) -> Result<Vec<String>, String> {
    let targets: Vec<String> = report
        .build
        .as_ref()
        .and_then(|b| b.value.strip_prefix("go build "))
        .map(|t| t.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if targets.is_empty() {
        return Err("detection named no main package to build".into());
    }
    let layer = layers.join("app");
    let _ = fs_err::remove_dir_all(&layer);
    let bin = layer.join("bin");
    fs_err::create_dir_all(&bin).map_err(|e| e.to_string())?;
    let mut args: Vec<String> = vec!["build".into(), "-trimpath".into(), "-buildvcs=false".into()];
    if !std::env::var("GOFLAGS")
        .unwrap_or_default()
        .contains("-ldflags")
    {
        // No symbol table or DWARF: a smaller image; the module list (build info) stays in the executable.
        args.push("-ldflags=-s -w".into());
    }
    args.push("-o".into());
    args.push(format!("{}/", bin.display()));
    args.extend(targets.iter().cloned());
    println!(
        "Building {} (go{version}; CGO_ENABLED={}{}{})",
        targets.join(" "),
        u8::from(settings.cgo),
        if settings.vendored {
            "; -mod=vendor, offline"
        } else {
            ""
        },
        if settings.vendored {
            String::new()
        } else {
            format!(
                "; modules from {}",
                std::env::var("GOPROXY")
                    .ok()
                    .filter(|p| !p.trim().is_empty())
                    .unwrap_or_else(|| "https://proxy.golang.org".into())
            )
        }
    );
    let status = go_command(go, app, layers, settings)
        .args(&args)
        .status()
        .map_err(|e| format!("cannot run go: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`go {}` failed (exit {}); see its output above. Behind a private CA: `goldenpath build --ca-certs FILE`; a module mirror: `--env GOPROXY=https://your-mirror`",
            args.join(" "),
            status.code().unwrap_or(-1)
        ));
    }
    let mut names: Vec<String> = fs_err::read_dir(&bin)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut modules = std::collections::BTreeSet::new();
    for n in &names {
        modules.extend(modules_in(go, &bin.join(n))?);
    }
    let mut components: Vec<(String, String, String)> = modules
        .into_iter()
        .map(|(path, v)| {
            let purl = format!("pkg:golang/{path}@{v}");
            (path, v, purl)
        })
        .collect();
    // The standard library compiled in, as scanners that read Go build info name it.
    components.push((
        "stdlib".to_owned(),
        format!("go{version}"),
        format!("pkg:golang/stdlib@{version}"),
    ));
    println!(
        "  {} executable(s) ({}), {} module(s) compiled in",
        names.len(),
        names.join(", "),
        components.len() - 1
    );
    write_sbom(&layers.join("app.sbom.cdx.json"), &components)?;
    // The layer is rebuilt every time, never reused from a cache: it needs no copy of its SBOM.
    let _ = fs_err::remove_file(layer.join(".sbom.cdx.json"));
    layer_toml(layers, "app", (true, false, false), &[])?;
    Ok(names)
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
    let gomod_text =
        fs_err::read_to_string(app.join("go.mod")).map_err(|e| format!("go.mod: {e}"))?;
    let m = gomod::GoMod::parse(&gomod_text);
    let (version, sha256) = gomod::choose_toolchain(&m)
        .map_err(|e| format!("go.mod: no toolchain of the inventory fits: {e:?}"))?;
    if let Some(r) = &report.runtime {
        println!("Go toolchain: {} ({})", r.value, r.source);
    }
    let settings = Settings {
        cgo: truthy("BP_GO_CGO"),
        vendored: app.join("vendor/modules.txt").is_file(),
    };
    let go = toolchain_layer(&layers, version, sha256)?;
    if cache_layer(
        &layers,
        "gocache",
        &cache_key(&format!("{version}\0{sha256}\0cgo={}", settings.cgo)),
    )? {
        println!("Reusing the build cache (toolchain unchanged)");
    }
    if !settings.vendored {
        let sum = fs_err::read_to_string(app.join("go.sum")).unwrap_or_default();
        let key = cache_key(&format!("{version}\0{gomod_text}\0{sum}"));
        if cache_layer(&layers, "gomodcache", &key)? {
            println!("Reusing the module cache (go.mod and go.sum unchanged)");
        } else if m.remote_requires().next().is_some() {
            println!(
                "Downloading modules into a new module cache (go.mod or go.sum changed, or none cached)"
            );
        }
    }
    let names = build_app(&layers, &app, &go, version, &report, &settings)?;
    let mut procs: Vec<(String, String)> = report.processes.clone();
    let mut launch = String::new();
    if !procs.iter().any(|(k, _)| k == "web") {
        let Some(start) = &report.start else {
            return Err("detection named no `web` process".into());
        };
        if !names.contains(&start.value) {
            return Err(format!(
                "`go build` made {} but not `{}`, the `web` process ({})",
                names.join(", "),
                start.value,
                start.source
            ));
        }
        // The executable itself, no shell: it reads PORT from the environment.
        let _ = write!(
            launch,
            "[[processes]]\ntype = \"web\"\ncommand = [{}]\ndefault = true\n\n",
            toml::Value::String(
                layers
                    .join("app/bin")
                    .join(&start.value)
                    .display()
                    .to_string()
            )
        );
        println!("Start command: {} ({})", start.value, start.source);
        procs.retain(|(k, _)| k != "web");
    }
    for (kind, cmd) in &procs {
        let _ = write!(
            launch,
            "[[processes]]\ntype = {}\ncommand = [\"bash\", \"-c\", {}]\ndefault = {}\n\n",
            toml::Value::String(kind.clone()),
            toml::Value::String(format!("exec {cmd}")),
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
    use super::{build_info_modules, gomod};

    #[test]
    fn build_info_lists_what_was_compiled() {
        let out = "web: go1.27.3\n\tpath\texample.com/web\n\tmod\texample.com/web\t(devel)\t\n\tdep\tgithub.com/google/uuid\tv1.6.0\th1:x=\n\tdep\texample.com/a\tv1.0.0\n\t=>\texample.com/fork\tv1.0.1\th1:y=\n\tdep\texample.com/b\tv0.1.0\n\t=>\t../b\t\n\tbuild\tCGO_ENABLED=0\n";
        assert_eq!(
            build_info_modules(out),
            [
                ("github.com/google/uuid".to_owned(), "v1.6.0".to_owned()),
                ("example.com/fork".to_owned(), "v1.0.1".to_owned()),
                ("example.com/b".to_owned(), "v0.1.0".to_owned()),
            ]
        );
    }

    #[test]
    fn inventory_checksums_are_sha256() {
        for (v, sha) in gomod::INVENTORY {
            assert!(gomod::GoVersion::parse(v, false).is_some(), "{v}");
            assert_eq!(sha.len(), 64, "{v}");
            assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()), "{v}");
        }
    }
}
