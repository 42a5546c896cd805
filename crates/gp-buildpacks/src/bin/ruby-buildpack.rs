//! The built-in Ruby buildpack (`io.goldenpath.ruby`), one static executable installed as both `bin/detect` and
//! `bin/build`.
//!
//! Where the runtime comes from: the build image's Debian `ruby` (3.1, the stack's suite, patched with the stack),
//! copied into a `ruby` launch layer with its standard library, extension libraries, default gems, `RubyGems` and
//! Debian's Bundler (`ruby-bundler`), and the shared libraries they link; reused while the version is unchanged.
//! The layer mirrors `/usr` (`bin/`, `lib/ruby/3.1.0`, `lib/x86_64-linux-gnu/ruby/3.1.0`, ...), so Ruby's own
//! configuration (`rbconfig.rb` computes its prefix from where it is) points into the layer; `RUBYLIB` puts the
//! layer's library directories first at launch. A version request the stack cannot satisfy fails, naming the file
//! and line.
//!
//! Gems: the build image's Ruby and Bundler install `Gemfile.lock` frozen (deployment mode, without the
//! `development` and `test` groups) into a `gems` layer (launch + cache) keyed by the Gemfile, the lock and the
//! Ruby version; with `vendor/cache` they come from there only (`bundle install --local`, no network), else from
//! the gem server the Gemfile names, redirected by Bundler's mirror settings in the platform env
//! (`BUNDLE_MIRROR__ALL=URL`). Native extensions compile with the build image's gcc and headers; the libraries
//! they link are copied into the layer. The start command comes from the Procfile, else Rails, else `config.ru`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, layer_toml, phase_main, read_meta, reuse_sbom, sh, write,
    write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

/// The build image's interpreter (Debian's `ruby3.1`, through the `ruby` alternative).
const RUBY: &str = "/usr/bin/ruby";

/// Groups never installed.
const WITHOUT: &str = "development:test";

/// What a changed layer layout must invalidate (part of the runtime layer's key).
const LAYOUT: &str = "1";

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Ruby, "ruby")
}

/// Whether Ruby `version` (e.g. `3.1.2`) satisfies a Gemfile/`.ruby-version` request: `3.1`, `3.1.2`, and the
/// requirement operators (`~> 3.1`, `>= 3.0`, `< 3.3`, `= 3.1.2`, `!= 3.0`), comma-separated.
fn satisfies(version: &str, request: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> {
        s.trim()
            .split('.')
            .map_while(|p| p.trim().parse().ok())
            .collect()
    };
    let v = parse(version);
    let prefix = |want: &[u64]| v.iter().take(want.len()).cmp(want.iter());
    request.split(',').all(|clause| {
        let c = clause.trim();
        let (op, rest) = ["~>", ">=", "<=", "!=", "=", ">", "<"]
            .iter()
            .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("", c));
        let want = parse(rest);
        if want.is_empty() {
            return false;
        }
        let full = v.iter().cmp(want.iter());
        match op {
            "" | "=" => prefix(&want).is_eq(),
            ">=" => full.is_ge(),
            "<=" => full.is_le() || prefix(&want).is_eq(),
            ">" => full.is_gt() && !prefix(&want).is_eq(),
            "<" => full.is_lt(),
            "!=" => !prefix(&want).is_eq(),
            // `~> 3.1` is `>= 3.1, < 4`; `~> 3.1.2` is `>= 3.1.2, < 3.2`.
            "~>" => {
                let upper = &want[..want.len().saturating_sub(1).max(1)];
                full.is_ge() && prefix(upper).is_eq()
            }
            _ => false,
        }
    })
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) -> Result<(), String> {
    fs_err::create_dir_all(to).map_err(|e| e.to_string())?;
    let entries = gp_buildpacks::support::sorted_entries(from).map_err(|e| e.to_string())?;
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        let ft = e.file_type().map_err(|e| e.to_string())?;
        if ft.is_symlink() {
            let target = fs_err::read_link(&src).map_err(|e| e.to_string())?;
            if dst.symlink_metadata().is_err() {
                fs_err::os::unix::fs::symlink(target, &dst).map_err(|e| e.to_string())?;
            }
        } else if ft.is_dir() {
            copy_tree(&src, &dst, skip)?;
        } else {
            fs_err::copy(&src, &dst).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The shared objects under `dir` (`*.so`, `*.so.N`), sorted.
fn shared_objects(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = gp_buildpacks::support::sorted_entries(dir).unwrap_or_default();
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        if ft.is_dir() {
            shared_objects(&e.path(), out);
        } else if ft.is_file()
            && (Path::new(&name).extension().is_some_and(|x| x == "so") || name.contains(".so."))
        {
            out.push(e.path());
        }
    }
}

/// Copies into `lib` the shared libraries `objects` link (as `ldd` resolves them in the build image), except the
/// C library's own (every run image has them) and what is already there; how many were copied.
fn copy_linked_libraries(objects: &[PathBuf], lib: &Path) -> Result<usize, String> {
    const LIBC: &[&str] = &[
        "libc.so",
        "libm.so",
        "ld-linux",
        "libpthread.so",
        "libdl.so",
        "librt.so",
        "libutil.so",
        "linux-vdso",
    ];
    let mut copied = 0;
    for obj in objects {
        let Ok(out) = sh(Command::new("ldd").arg(obj), "ldd") else {
            continue;
        };
        for line in out.lines() {
            let Some(path) = line
                .split("=>")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if LIBC.iter().any(|l| name.starts_with(l))
                || !path.starts_with('/')
                || path.starts_with("/layers/")
            {
                continue;
            }
            let dest = lib.join(&name);
            if !dest.exists() {
                fs_err::create_dir_all(lib).map_err(|e| e.to_string())?;
                fs_err::copy(path, &dest).map_err(|e| e.to_string())?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// Writes `<layer>/env.launch/<name>.<how>` (`override`, `default`).
fn launch_env(layer: &Path, name: &str, how: &str, value: &str) -> Result<(), String> {
    write(&layer.join(format!("env.launch/{name}.{how}")), value)
}

/// A RubyGems-generated executable with its `#!/usr/bin/ruby...` line replaced by `#!/usr/bin/env ruby`, so that it
/// runs with the Ruby on `PATH` (the run image has no `/usr/bin/ruby`).
fn env_shebang(text: &str) -> Option<String> {
    let (first, rest) = text.split_once('\n')?;
    (first.starts_with("#!") && first.contains("ruby") && first != "#!/usr/bin/env ruby")
        .then(|| format!("#!/usr/bin/env ruby\n{rest}"))
}

/// The Ruby library directories of `prefix`, in the interpreter's own order.
fn ruby_lib_dirs(prefix: &Path, api: &str, arch: &str) -> Vec<PathBuf> {
    [
        format!("lib/ruby/vendor_ruby/{api}"),
        format!("lib/{arch}/ruby/vendor_ruby/{api}"),
        "lib/ruby/vendor_ruby".to_owned(),
        format!("lib/ruby/{api}"),
        format!("lib/{arch}/ruby/{api}"),
    ]
    .iter()
    .map(|d| prefix.join(d))
    .collect()
}

/// `libruby*.so*` (the shared library and its links, not ruby-dev's static archive) from `dir` into `lib`.
fn copy_libruby(dir: &Path, lib: &Path) -> Result<(), String> {
    let mut libs = Vec::new();
    for e in fs_err::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("libruby") && name.contains(".so") {
            libs.push(name);
        }
    }
    libs.sort();
    fs_err::create_dir_all(lib).map_err(|e| e.to_string())?;
    for name in &libs {
        let src = dir.join(name);
        let dst = lib.join(name);
        if src.is_symlink() {
            let target = fs_err::read_link(&src).map_err(|e| e.to_string())?;
            fs_err::os::unix::fs::symlink(target, &dst).map_err(|e| e.to_string())?;
        } else {
            fs_err::copy(&src, &dst).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The runtime layer: the build image's interpreter, its libraries, default gems and Bundler.
fn runtime_layer(layers: &Path, version: &str, api: &str, arch: &str) -> Result<PathBuf, String> {
    let layer = layers.join("ruby");
    let key = format!("{version} layout {LAYOUT}");
    if read_meta(layers, "ruby", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/ruby").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing Ruby {version} (ruby layer unchanged)");
        reuse_sbom(layers, "ruby")?;
        // The lifecycle restores `ruby.toml` without `[types]`: declared again, or the layer is let go.
        return layer_toml(layers, "ruby", false, &[("key", key)]).map(|()| layer);
    }
    println!("Installing Ruby {version} from the stack (Debian ruby of the build image)");
    let _ = fs_err::remove_dir_all(&layer);
    let real = fs_err::canonicalize(RUBY).map_err(|e| format!("{RUBY}: {e}"))?;
    let exe_name = real
        .file_name()
        .map_or_else(|| "ruby".into(), |n| n.to_string_lossy().into_owned());
    let bin = layer.join("bin");
    fs_err::create_dir_all(&bin).map_err(|e| e.to_string())?;
    fs_err::copy(&real, bin.join(&exe_name)).map_err(|e| e.to_string())?;
    if exe_name != "ruby" {
        fs_err::os::unix::fs::symlink(&exe_name, bin.join("ruby")).map_err(|e| e.to_string())?;
    }
    // The library trees, at the same places under the layer as under /usr.
    let usr = Path::new("/usr");
    for dir in [
        format!("lib/ruby/{api}"),
        "lib/ruby/vendor_ruby".to_owned(),
        format!("lib/ruby/gems/{api}"),
        format!("lib/{arch}/ruby"),
    ] {
        if usr.join(&dir).is_dir() {
            copy_tree(&usr.join(&dir), &layer.join(&dir), &["doc", "cache"])?;
        }
    }
    // Debian's Bundler (ruby-bundler) and the other gems Debian ships for every Ruby: their gemspecs next to the
    // default gems, so that RubyGems finds them where the layer's Ruby looks.
    let gems_dir = layer.join(format!("lib/ruby/gems/{api}"));
    let integration = usr.join("share/rubygems-integration/all");
    for sub in ["specifications", "gems"] {
        if integration.join(sub).is_dir() {
            copy_tree(&integration.join(sub), &gems_dir.join(sub), &[])?;
        }
    }
    // The interpreter's library and every library it and its extensions link.
    let lib = layer.join("lib");
    copy_libruby(&usr.join(format!("lib/{arch}")), &lib)?;
    let mut objects = vec![real.clone()];
    shared_objects(&layer.join(format!("lib/{arch}/ruby/{api}")), &mut objects);
    let copied = copy_linked_libraries(&objects, &lib)?;
    println!("  {copied} shared libraries");
    // Bundler's and RubyGems' commands, run by the Ruby on PATH.
    for cmd in ["bundle", "bundler", "gem"] {
        let src = usr.join("bin").join(cmd);
        if let Ok(text) = fs_err::read_to_string(&src) {
            let text = env_shebang(&text).unwrap_or(text);
            write(&bin.join(cmd), &text)?;
            fs_err::set_permissions(
                bin.join(cmd),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    let rubylib: Vec<String> = ruby_lib_dirs(&layer, api, arch)
        .iter()
        .filter(|d| d.is_dir())
        .map(|d| d.display().to_string())
        .collect();
    launch_env(&layer, "RUBYLIB", "override", &rubylib.join(":"))?;
    // Debian's RubyGems defaults name /usr and /var/lib/gems; without them, RubyGems looks where rbconfig.rb says,
    // which is inside the layer.
    launch_env(
        &layer,
        "DEBIAN_DISABLE_RUBYGEMS_INTEGRATION",
        "override",
        "1",
    )?;
    // The Bundler that runs is Debian's, whatever the lock's `BUNDLED WITH` says (switching would download one).
    let bundler = debian_bundler();
    if let Some(b) = &bundler {
        launch_env(&layer, "BUNDLER_VERSION", "override", b)?;
    }
    let mut components = vec![(
        "ruby".to_owned(),
        version.to_owned(),
        format!("pkg:generic/ruby@{version}"),
    )];
    if let Some(b) = bundler {
        components.push((
            "bundler".to_owned(),
            b.clone(),
            format!("pkg:gem/bundler@{b}"),
        ));
    }
    write_sbom(&layers.join("ruby.sbom.cdx.json"), &components)?;
    layer_toml(layers, "ruby", false, &[("key", key)])?;
    Ok(layer)
}

/// The version of Debian's Bundler (`ruby-bundler`) in the build image.
fn debian_bundler() -> Option<String> {
    fs_err::read_dir("/usr/share/rubygems-integration/all/specifications")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("bundler-")?
                .strip_suffix(".gemspec")
                .map(str::to_owned)
        })
        .max()
}

/// `(name, version, platform)` of a gemspec file name (`puma-5.6.5-x86_64-linux.gemspec`), given the gem names the
/// lock pins (names may contain `-`).
fn split_spec_name(stem: &str, names: &[String]) -> Option<(String, String)> {
    names
        .iter()
        .filter_map(|n| {
            let rest = stem.strip_prefix(n.as_str())?.strip_prefix('-')?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| (n.clone(), rest.to_owned()))
        })
        .max_by_key(|(n, _)| n.len())
}

/// The gems installed in `<gems>/ruby/<api>/specifications`, as SBOM components.
fn installed_gems(dir: &Path, lock: &str) -> Vec<(String, String, String)> {
    let names: Vec<String> = lock
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .filter_map(|l| l.trim().split(" (").next().map(str::to_owned))
        .collect();
    let mut out: Vec<(String, String, String)> = fs_err::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let stem = file.strip_suffix(".gemspec")?;
            let (name, rest) = split_spec_name(stem, &names)?;
            let version = rest.split('-').next().unwrap_or(&rest).to_owned();
            let purl = format!("pkg:gem/{name}@{version}");
            Some((name, version, purl))
        })
        .collect();
    out.sort();
    out
}

fn gems_layer(
    layers: &Path,
    app: &Path,
    version: &str,
    api: &str,
    report: &Report,
) -> Result<(), String> {
    let gemfile = fs_err::read_to_string(app.join("Gemfile")).map_err(|e| e.to_string())?;
    let lock = fs_err::read_to_string(app.join("Gemfile.lock")).map_err(|e| e.to_string())?;
    let vendored = app.join("vendor/cache").is_dir();
    let key = cache_key(&format!(
        "{version}\0{WITHOUT}\0{vendored}\0{gemfile}\0{lock}"
    ));
    let layer = layers.join("gems");
    let specs = layer.join(format!("ruby/{api}/specifications"));
    let set_env = |layer: &Path| -> Result<(), String> {
        let path = layer.display().to_string();
        launch_env(layer, "BUNDLE_PATH", "override", &path)?;
        launch_env(layer, "BUNDLE_DEPLOYMENT", "override", "true")?;
        launch_env(layer, "BUNDLE_WITHOUT", "override", WITHOUT)?;
        launch_env(layer, "RACK_ENV", "default", "production")?;
        launch_env(layer, "RAILS_ENV", "default", "production")?;
        launch_env(layer, "RAILS_LOG_TO_STDOUT", "default", "enabled")?;
        launch_env(layer, "RAILS_SERVE_STATIC_FILES", "default", "enabled")
    };
    if read_meta(layers, "gems", "key").as_deref() == Some(key.as_str())
        && specs.is_dir()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing the gems layer (Gemfile.lock unchanged)");
        reuse_sbom(layers, "gems")?;
        return layer_toml(layers, "gems", false, &[("key", key)]);
    }
    let _ = fs_err::remove_dir_all(&layer);
    let _ = fs_err::remove_file(layers.join("gems.toml"));
    fs_err::create_dir_all(&layer).map_err(|e| e.to_string())?;
    let scratch = tempdir_in(layers)?;
    let mut args = vec!["install", "--jobs", "2"];
    if vendored {
        args.push("--local");
    }
    println!(
        "Installing gems (bundle {}; frozen, without {WITHOUT}{})",
        args.join(" "),
        if vendored { ", from vendor/cache" } else { "" }
    );
    let status = Command::new(RUBY)
        .arg("/usr/bin/bundle")
        .args(&args)
        .current_dir(app)
        .env("BUNDLE_PATH", &layer)
        .env("BUNDLE_DEPLOYMENT", "true")
        .env("BUNDLE_FROZEN", "true")
        .env("BUNDLE_WITHOUT", WITHOUT)
        .env("BUNDLE_APP_CONFIG", scratch.join("app-config"))
        .env("BUNDLE_USER_HOME", scratch.join("home"))
        .env("BUNDLE_DISABLE_VERSION_CHECK", "true")
        .env("BUNDLE_NO_PRUNE", "true")
        .env("BUNDLER_VERSION", debian_bundler().unwrap_or_default())
        .status()
        .map_err(|e| format!("cannot run bundler: {e}"));
    let _ = fs_err::remove_dir_all(&scratch);
    let status = status?;
    if !status.success() {
        return Err(format!(
            "bundler could not install the gems of Gemfile.lock (exit {}); see its output above.\n  fix: {}",
            status.code().unwrap_or(-1),
            if vendored {
                "vendor/cache must hold every gem of Gemfile.lock for x86_64-linux: run `bundle cache` (after `bundle lock --add-platform x86_64-linux`) and commit vendor/cache"
            } else {
                "for a gem mirror, `goldenpath build --env BUNDLE_MIRROR__ALL=https://mirror.example/`; behind a private CA, `--ca-certs FILE`; or commit the gems with `bundle cache` (vendor/cache, no network needed)"
            }
        ));
    }
    tidy_gems(&layer, api)?;
    let mut objects = Vec::new();
    shared_objects(&layer.join(format!("ruby/{api}")), &mut objects);
    let copied = copy_linked_libraries(&objects, &layer.join("lib"))?;
    let components = installed_gems(&specs, &lock);
    println!(
        "  {} gems installed{}",
        components.len(),
        if copied > 0 {
            format!(", {copied} shared libraries their extensions link")
        } else {
            String::new()
        }
    );
    set_env(&layer)?;
    write_sbom(&layers.join("gems.sbom.cdx.json"), &components)?;
    let _ = report;
    layer_toml(layers, "gems", false, &[("key", key)])
}

/// A scratch directory inside `layers` (not a layer: no `<name>.toml`), removed after use.
fn tempdir_in(layers: &Path) -> Result<PathBuf, String> {
    let dir = layers.join(".ruby-scratch");
    let _ = fs_err::remove_dir_all(&dir);
    fs_err::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// After `bundle install`: the downloaded `.gem` copies and extension build products are dropped, and gem
/// executables run with the Ruby on `PATH`.
fn tidy_gems(layer: &Path, api: &str) -> Result<(), String> {
    let base = layer.join(format!("ruby/{api}"));
    let _ = fs_err::remove_dir_all(base.join("cache"));
    let mut stack = vec![base.join("gems")];
    while let Some(dir) = stack.pop() {
        for e in fs_err::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && path.extension().is_some_and(|x| x == "o") {
                fs_err::remove_file(&path).map_err(|e| e.to_string())?;
            }
        }
    }
    for dir in [base.join("bin"), layer.join("bin")] {
        for e in fs_err::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if let Some(text) = fs_err::read_to_string(&path)
                .ok()
                .and_then(|t| env_shebang(&t))
            {
                fs_err::write(&path, text).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
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
    let info = sh(
        Command::new(RUBY).args([
            "-e",
            "print RUBY_VERSION, ' ', RbConfig::CONFIG['ruby_version'], ' ', RbConfig::CONFIG['arch']",
        ]),
        "the build image's ruby (is `ruby` in the stack's build packages?)",
    )?;
    let mut parts = info.split_whitespace();
    let (version, api, arch) = match (parts.next(), parts.next(), parts.next()) {
        (Some(v), Some(a), Some(r)) => (v.to_owned(), a.to_owned(), r.to_owned()),
        _ => {
            return Err(format!(
                "the build image's ruby printed `{info}`, not its version"
            ));
        }
    };
    let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
    if let Some(req) = &report.runtime
        && !satisfies(&version, req.value.trim_start_matches("ruby-"))
    {
        return Err(format!(
            "{}: Ruby `{}` is requested, but this stack provides Ruby {version} only (Debian's ruby of the build image)\n  fix: request `{minor}` (`ruby \"~> {minor}\"` in the Gemfile, or `{minor}` in .ruby-version), or build with a stack whose suite has the Ruby you need",
            req.source, req.value
        ));
    }
    runtime_layer(&layers, &version, &api, &arch)?;
    gems_layer(&layers, &app, &version, &api, &report)?;
    let mut launch = String::new();
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !procs.iter().any(|(k, _)| k == "web")
        && let Some(start) = &report.start
    {
        procs.insert(0, ("web".into(), start.value.clone()));
    }
    for (kind, cmd) in &procs {
        let _ = write!(
            launch,
            "[[processes]]\ntype = {}\ncommand = [\"bash\", \"-c\", {}]\ndefault = {}\n\n",
            toml::Value::String(kind.clone()),
            toml::Value::String(cmd.clone()),
            kind == "web"
        );
    }
    write(&layers.join("launch.toml"), &launch)?;
    if let Some(s) = &report.start {
        println!("Start command: {} ({})", s.value, s.source);
    }
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
    use super::{env_shebang, satisfies, split_spec_name};

    #[test]
    fn version_requests() {
        for (req, ok) in [
            ("3.1", true),
            ("3.1.2", true),
            ("3.1.4", false),
            ("3.2", false),
            ("~> 3.1", true),
            ("~> 3.0", true),
            ("~> 3.1.0", true),
            ("~> 3.2.0", false),
            (">= 3.0", true),
            (">= 3.0, < 3.1", false),
            ("< 3.2", true),
            ("!= 3.1", false),
            ("= 3.1.2", true),
            ("2.7.8", false),
        ] {
            assert_eq!(satisfies("3.1.2", req), ok, "{req}");
        }
    }

    #[test]
    fn gemspec_names_and_shebangs() {
        let names = ["puma".to_owned(), "rack".to_owned(), "rack-test".to_owned()];
        assert_eq!(
            split_spec_name("puma-5.6.5-x86_64-linux", &names),
            Some(("puma".into(), "5.6.5-x86_64-linux".into()))
        );
        assert_eq!(
            split_spec_name("rack-test-2.1.0", &names),
            Some(("rack-test".into(), "2.1.0".into()))
        );
        assert_eq!(split_spec_name("other-1.0", &names), None);
        assert_eq!(
            env_shebang("#!/usr/bin/ruby3.1\nputs 1\n").as_deref(),
            Some("#!/usr/bin/env ruby\nputs 1\n")
        );
        assert_eq!(env_shebang("#!/bin/sh\necho\n"), None);
    }
}
