//! What the built-in buildpack executables share: the phase dispatch on `argv[0]`, the spec's directories,
//! running tools, and layer metadata (`<layer>.toml`) with a cache key.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Runs `detect` or `build` by the name the executable was started as (`bin/detect`, `bin/build`); an error
/// is printed as `ERROR: ...` and exits 1.
pub fn phase_main(
    detect: fn() -> Result<u8, String>,
    build: fn() -> Result<u8, String>,
) -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let phase = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let result = match phase.as_str() {
        "detect" => detect(),
        "build" => build(),
        _ => Err(format!("run me as bin/detect or bin/build, not `{phase}`")),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::from(1)
        }
    }
}

/// A directory from its `CNB_*` variable, else from the (deprecated) positional argument `arg`.
pub fn env_path(var: &str, arg: usize) -> Result<PathBuf, String> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| std::env::args_os().nth(arg).map(PathBuf::from))
        .ok_or_else(|| format!("`{var}` is not set"))
}

/// Runs `cmd`; its stdout, or an error with its output.
pub fn sh(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(p) = path.parent() {
        fs_err::create_dir_all(p).map_err(|e| e.to_string())?;
    }
    fs_err::write(path, text).map_err(|e| e.to_string())
}

/// The entries of `dir` in name order (entries that cannot be read are left out): walks that must not depend on
/// the file system's order.
pub fn sorted_entries(dir: &Path) -> std::io::Result<Vec<fs_err::DirEntry>> {
    let mut entries: Vec<_> = fs_err::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    Ok(entries)
}

/// `[metadata] key` of `<layers>/<layer>.toml` (restored from the cache), if any.
#[must_use]
pub fn read_meta(layers: &Path, layer: &str, key: &str) -> Option<String> {
    let text = fs_err::read_to_string(layers.join(format!("{layer}.toml"))).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("metadata")?.get(key)?.as_str().map(str::to_owned)
}

/// Writes `<layers>/<layer>.toml`: a launch and cache layer (and a build layer when `build`), with `meta`.
pub fn layer_toml(
    layers: &Path,
    layer: &str,
    build: bool,
    meta: &[(&str, String)],
) -> Result<(), String> {
    let mut text = format!("[types]\nlaunch = true\nbuild = {build}\ncache = true\n\n[metadata]\n");
    for (k, v) in meta {
        let _ = writeln!(text, "{k} = {}", toml::Value::String(v.clone()));
    }
    write(&layers.join(format!("{layer}.toml")), &text)
}

/// A cache key for `text` (two FNV-1a 64 hashes): decides reuse of a cached layer, not a security boundary.
#[must_use]
pub fn cache_key(text: &str) -> String {
    let h = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        h(0xcbf2_9ce4_8422_2325),
        h(0x8422_2325_cbf2_9ce4)
    )
}

/// Where a layer keeps a copy of its SBOM, so that a layer reused from the cache still has one in the image.
fn kept_sbom(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    let layer = name.strip_suffix(".sbom.cdx.json")?;
    let dir = path.parent()?.join(layer);
    dir.is_dir().then(|| dir.join(".sbom.cdx.json"))
}

/// For a layer reused from the cache: puts the SBOM it kept back at `<layers>/<layer>.sbom.cdx.json`.
pub fn reuse_sbom(layers: &Path, layer: &str) -> Result<(), String> {
    let path = layers.join(format!("{layer}.sbom.cdx.json"));
    if let Some(kept) = kept_sbom(&path).filter(|k| k.is_file()) {
        fs_err::copy(&kept, &path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes a `CycloneDX` SBOM of `components` (name, version, purl) to `path` (`<layers>/<layer>.sbom.cdx.json`),
/// and a copy into the layer for when it is reused from the cache.
pub fn write_sbom(path: &Path, components: &[(String, String, String)]) -> Result<(), String> {
    let list: Vec<serde_json::Value> = components
        .iter()
        .map(|(name, version, purl)| {
            serde_json::json!({"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl})
        })
        .collect();
    let bom = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": list});
    if let Some(kept) = kept_sbom(path) {
        write(&kept, &bom.to_string())?;
    }
    write(path, &bom.to_string())
}

/// Why a built-in buildpack declines an app: what it looked for and did not find, or which language claimed it.
#[must_use]
pub fn not_mine(language: crate::Language, claimed: Option<crate::Language>) -> String {
    if let Some(other) = claimed {
        format!("not a {language} app: detected as {other} (an earlier buildpack in the order)")
    } else {
        let what = crate::looked_for()
            .into_iter()
            .find_map(|(l, what)| (l == language).then_some(what))
            .unwrap_or("its files");
        format!("not a {language} app: looked for {what} and found none")
    }
}

/// The whole `bin/detect` of a built-in buildpack: 100 when the app is not `language`; the findings printed and
/// 1 when the build would fail; else the plan (`provides`/`requires` of `name`) written and 0.
pub fn detect_phase(language: crate::Language, name: &str) -> Result<u8, String> {
    let report = crate::detect(Path::new("."));
    if report.language != Some(language) {
        // Shown only when no group passes: what this buildpack looked for, so that a developer sees why.
        eprintln!("{}", not_mine(language, report.language));
        return Ok(100);
    }
    for f in &report.findings {
        eprintln!("{f}");
    }
    if report.failed() {
        return Ok(1);
    }
    let plan = env_path("CNB_BUILD_PLAN_PATH", 2)?;
    write(
        &plan,
        &format!("[[provides]]\nname = \"{name}\"\n\n[[requires]]\nname = \"{name}\"\n"),
    )?;
    Ok(0)
}
