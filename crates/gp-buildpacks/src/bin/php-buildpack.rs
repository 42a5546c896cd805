//! The built-in PHP buildpack (`io.goldenpath.php`), one static executable installed as both `bin/detect` and
//! `bin/build`.
//!
//! Where the runtime comes from: the build image's Debian PHP 8.2 (`php8.2-fpm`, `php8.2-cli` and the stack's
//! extension packages), copied into a `php` launch layer with the extensions the app needs (`ext-*` of
//! composer.json and of the locked packages, plus php8.2-common's; every extension for an app without
//! composer.json), their ini files, a production php.ini and the shared libraries they link; reused while the PHP
//! version and the extension set are unchanged. The web server is the build image's nginx (`nginx-light`), copied
//! into an `nginx` launch layer. Dependencies: a committed `vendor/` is used as is; else `composer install
//! --no-dev` from composer.lock into a `vendor` layer (launch + cache, keyed by composer.json, composer.lock and
//! the files of `path` repositories), linked from the app as `vendor`; Packagist is consulted only for packages
//! the lock fetches from it, and `COMPOSER_MIRROR_URL` as platform env replaces it. The `web` process starts
//! php-fpm on a unix socket under /tmp and nginx on `$PORT` in front of it (document root `public/`, else `web/`,
//! else the app root), both as the CNB user, logging to stderr.

#[allow(dead_code)] // detection uses the rest
#[path = "../php/shared.rs"]
mod shared;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, layer_toml, phase_main, read_meta, reuse_sbom, sh, write,
    write_sbom,
};
use gp_buildpacks::{Language, Severity, detect};
use shared::{COMMON, Ext, PACKAGES, extension, satisfies};

/// The build image's PHP (Debian's `php8.2-*`).
const PHP_FPM: &str = "/usr/sbin/php-fpm8.2";
const PHP_CLI: &str = "/usr/bin/php8.2";
const EXT_DIR: &str = "/usr/lib/php/20220829";
const MODS: &str = "/etc/php/8.2/mods-available";
const PHP_INI: &str = "/usr/lib/php/8.2/php.ini-production";
const NGINX: &str = "/usr/sbin/nginx";

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Php, "php")
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The Debian version of an installed package, for the SBOM.
fn deb_version(package: &str) -> String {
    sh(
        Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]),
        "dpkg-query",
    )
    .unwrap_or_default()
    .trim()
    .to_owned()
}

fn deb_component(package: &str) -> (String, String, String) {
    let v = deb_version(package);
    let purl = format!("pkg:deb/debian/{package}@{v}?arch=amd64&distro=debian-12");
    (package.to_owned(), v, purl)
}

/// Copies the shared libraries `objects` link (except the C library's own, which every run image has) into
/// `<layer>/lib`, which the launcher puts on `LD_LIBRARY_PATH`; how many were copied.
fn copy_libraries(objects: &[PathBuf], layer: &Path) -> Result<usize, String> {
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
    let lib = layer.join("lib");
    fs_err::create_dir_all(&lib).map_err(io)?;
    let mut copied = 0;
    for obj in objects {
        let out = sh(Command::new("ldd").arg(obj), "ldd")?;
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
            if !path.starts_with('/') || LIBC.iter().any(|l| name.starts_with(l)) {
                continue;
            }
            let dest = lib.join(&name);
            if !dest.exists() {
                fs_err::copy(path, &dest).map_err(io)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// The extension modules to copy and the Debian packages they come from.
fn wanted_modules(app: &Path) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut packages: Vec<&'static str> = Vec::new();
    if app.join("composer.json").is_file() {
        let mut reqs: Vec<String> = Vec::new();
        let json = |f: &str| -> serde_json::Value {
            fs_err::read_to_string(app.join(f))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default()
        };
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        reqs.extend(names(&json("composer.json")["require"]));
        let lock = json("composer.lock");
        let installed = json("vendor/composer/installed.json");
        let installed = installed.get("packages").unwrap_or(&installed).clone();
        for p in lock["packages"]
            .as_array()
            .into_iter()
            .chain(installed.as_array())
            .flatten()
        {
            reqs.extend(names(&p["require"]));
        }
        for r in &reqs {
            if let Some(Ext::Package(p)) = r
                .to_ascii_lowercase()
                .starts_with("ext-")
                .then(|| extension(r))
                .flatten()
                && !packages.contains(&p)
            {
                packages.push(p);
            }
        }
    } else {
        packages = PACKAGES.iter().map(|(p, _)| *p).collect();
    }
    packages.sort_unstable();
    let mut modules: Vec<&'static str> = COMMON.to_vec();
    for (p, mods) in PACKAGES {
        if packages.contains(p) {
            modules.extend(mods.iter());
        }
    }
    (modules, packages)
}

/// `; priority=20` of a Debian mods-available ini file.
fn priority(ini: &str) -> String {
    ini.lines()
        .find_map(|l| l.trim().strip_prefix("; priority="))
        .map_or_else(|| "20".to_owned(), |p| p.trim().to_owned())
}

/// The `php` runtime layer: php-fpm and the CLI, the extension modules, their ini files, php.ini and libraries.
fn php_layer(
    layers: &Path,
    version: &str,
    modules: &[&str],
    packages: &[&str],
) -> Result<PathBuf, String> {
    let layer = layers.join("php");
    let key = cache_key(&format!("{version}\0{}", modules.join(",")));
    let exts: Vec<String> = packages.iter().map(|p| format!("php8.2-{p}")).collect();
    let what = if exts.is_empty() {
        String::new()
    } else {
        format!(" with {}", exts.join(", "))
    };
    if read_meta(layers, "php", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/php-fpm").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing PHP {version}{what} (runtime layer unchanged)");
        reuse_sbom(layers, "php")?;
        layer_toml(
            layers,
            "php",
            false,
            &[("key", key), ("version", version.to_owned())],
        )?;
        return Ok(layer);
    }
    println!("Installing PHP {version}{what} from the stack (Debian's php8.2 of the build image)");
    let _ = fs_err::remove_dir_all(&layer);
    let bin = layer.join("bin");
    fs_err::create_dir_all(&bin).map_err(io)?;
    fs_err::copy(PHP_FPM, bin.join("php-fpm")).map_err(io)?;
    fs_err::copy(PHP_CLI, bin.join("php")).map_err(io)?;
    let ext_dir = layer.join("lib/php/extensions");
    let conf_d = layer.join("etc/conf.d");
    fs_err::create_dir_all(&ext_dir).map_err(io)?;
    fs_err::create_dir_all(&conf_d).map_err(io)?;
    let mut objects = vec![PathBuf::from(PHP_FPM), PathBuf::from(PHP_CLI)];
    for m in modules {
        let so = Path::new(EXT_DIR).join(format!("{m}.so"));
        fs_err::copy(&so, ext_dir.join(format!("{m}.so"))).map_err(io)?;
        objects.push(so);
        let ini = fs_err::read_to_string(Path::new(MODS).join(format!("{m}.ini"))).map_err(io)?;
        write(&conf_d.join(format!("{}-{m}.ini", priority(&ini))), &ini)?;
    }
    let mut ini = fs_err::read_to_string(PHP_INI).map_err(io)?;
    let _ = write!(
        ini,
        "\n; GoldenPath: the runtime layer's extensions, writable temporary places, no version banner.\n\
         extension_dir = \"{}\"\nexpose_php = Off\nsys_temp_dir = /tmp\nupload_tmp_dir = /tmp\n\
         session.save_path = /tmp\n",
        ext_dir.display()
    );
    write(&layer.join("etc/php.ini"), &ini)?;
    let copied = copy_libraries(&objects, &layer)?;
    println!(
        "  {} extension modules, {copied} shared libraries",
        modules.len()
    );
    let env = layer.join("env.launch");
    write(
        &env.join("PHPRC.override"),
        &layer.join("etc").display().to_string(),
    )?;
    write(
        &env.join("PHP_INI_SCAN_DIR.override"),
        &conf_d.display().to_string(),
    )?;
    let mut components: Vec<(String, String, String)> = [
        "php8.2-fpm",
        "php8.2-cli",
        "php8.2-common",
        "php8.2-opcache",
    ]
    .iter()
    .map(|p| deb_component(p))
    .collect();
    components.extend(exts.iter().map(|p| deb_component(p)));
    write_sbom(&layers.join("php.sbom.cdx.json"), &components)?;
    layer_toml(
        layers,
        "php",
        false,
        &[("key", key), ("version", version.to_owned())],
    )?;
    Ok(layer)
}

/// The `nginx` layer: the build image's nginx, its libraries, `mime.types` and `fastcgi_params`.
fn nginx_layer(layers: &Path) -> Result<PathBuf, String> {
    let layer = layers.join("nginx");
    let version = deb_version("nginx-light");
    if version.is_empty() {
        return Err("the build image has no nginx (`nginx-light` is one of the stack's build packages: rebuild the stack from stacks/bookworm/stack.toml)".into());
    }
    let key = cache_key(&version);
    if read_meta(layers, "nginx", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/nginx").exists()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing nginx {version} (web server layer unchanged)");
        reuse_sbom(layers, "nginx")?;
        layer_toml(layers, "nginx", false, &[("key", key)])?;
        return Ok(layer);
    }
    println!("Installing nginx {version} from the stack (Debian's nginx-light of the build image)");
    let _ = fs_err::remove_dir_all(&layer);
    fs_err::create_dir_all(layer.join("bin")).map_err(io)?;
    fs_err::create_dir_all(layer.join("etc")).map_err(io)?;
    fs_err::copy(NGINX, layer.join("bin/nginx")).map_err(io)?;
    for f in ["mime.types", "fastcgi_params"] {
        fs_err::copy(Path::new("/etc/nginx").join(f), layer.join("etc").join(f)).map_err(io)?;
    }
    let copied = copy_libraries(&[PathBuf::from(NGINX)], &layer)?;
    println!("  {copied} shared libraries");
    write_sbom(
        &layers.join("nginx.sbom.cdx.json"),
        &[deb_component("nginx-light")],
    )?;
    layer_toml(layers, "nginx", false, &[("key", key)])?;
    Ok(layer)
}

/// The files of a directory tree, sorted, as `path\0content` (for a cache key); at most `budget` bytes read.
fn tree_text(dir: &Path, rel: &str, out: &mut String, budget: &mut u64) {
    let Ok(entries) = gp_buildpacks::support::sorted_entries(dir) else {
        return;
    };
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}/{name}");
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if name != "vendor" && name != ".git" {
                tree_text(&e.path(), &path, out, budget);
            }
        } else if ft.is_file() {
            let len = e.metadata().map_or(0, |m| m.len());
            let _ = write!(out, "{path}\0{len}\0");
            if len <= *budget {
                *budget -= len;
                if let Ok(bytes) = fs_err::read(e.path()) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
    }
}

/// `(name, version)` of the packages composer.lock (not the dev ones) or vendor/composer/installed.json lists.
fn locked_packages(app: &Path) -> Vec<(String, String)> {
    let read = |f: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&fs_err::read_to_string(app.join(f)).ok()?).ok()
    };
    let list = if let Some(lock) = read("composer.lock") {
        lock["packages"].as_array().cloned().unwrap_or_default()
    } else if let Some(installed) = read("vendor/composer/installed.json") {
        let dev: Vec<serde_json::Value> = installed["dev-package-names"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        installed
            .get("packages")
            .unwrap_or(&installed)
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !dev.contains(&p["name"]))
            .collect()
    } else {
        Vec::new()
    };
    list.iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["version"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn composer_sbom(path: &Path, app: &Path) -> Result<usize, String> {
    let components: Vec<(String, String, String)> = locked_packages(app)
        .into_iter()
        .map(|(name, version)| {
            let purl = format!("pkg:composer/{}@{version}", name.to_ascii_lowercase());
            (name, version, purl)
        })
        .collect();
    write_sbom(path, &components)?;
    Ok(components.len())
}

/// The `path` repositories of composer.json (their files are part of the dependencies layer's key).
fn path_repositories(app: &Path) -> Vec<String> {
    let json: serde_json::Value = fs_err::read_to_string(app.join("composer.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let repos: Vec<serde_json::Value> = match &json["repositories"] {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Object(o) => o.values().cloned().collect(),
        _ => Vec::new(),
    };
    repos
        .iter()
        .filter(|r| r["type"] == "path")
        .filter_map(|r| r["url"].as_str().map(str::to_owned))
        .collect()
}

/// Composer's home for the build: the mirror (`COMPOSER_MIRROR_URL` replaces Packagist) and a reproducible
/// autoloader class suffix.
fn composer_home(suffix: &str) -> Result<PathBuf, String> {
    let home = std::env::temp_dir().join(format!("goldenpath-composer-{}", std::process::id()));
    let mut config = serde_json::json!({"config": {"autoloader-suffix": suffix}});
    if let Ok(url) = std::env::var("COMPOSER_MIRROR_URL")
        && !url.trim().is_empty()
    {
        println!("  Packagist replaced by the mirror {url} (COMPOSER_MIRROR_URL)");
        config["repositories"] =
            serde_json::json!({"packagist.org": {"type": "composer", "url": url.trim()}});
    }
    write(&home.join("config.json"), &config.to_string())?;
    Ok(home)
}

/// Dependencies: a committed vendor/ as is; else `composer install --no-dev` from the lock into the `vendor`
/// layer, linked from the app as `vendor`.
fn vendor_layer(layers: &Path, app: &Path, version: &str) -> Result<(), String> {
    if !app.join("composer.json").is_file() {
        println!("No composer.json: no dependencies to install");
        return Ok(());
    }
    let vendor = app.join("vendor");
    if vendor.join("autoload.php").is_file() && !vendor.is_symlink() {
        println!("Using the committed vendor/ as is");
        // Its SBOM goes with the app's files: a launch layer with just the SBOM.
        let layer = layers.join("vendor");
        let _ = fs_err::remove_dir_all(&layer);
        fs_err::create_dir_all(&layer).map_err(io)?;
        let n = composer_sbom(&layers.join("vendor.sbom.cdx.json"), app)?;
        println!("  {n} packages in vendor/");
        return write(
            &layers.join("vendor.toml"),
            "[types]\nlaunch = true\nbuild = false\ncache = false\n",
        );
    }
    if fs_err::symlink_metadata(&vendor).is_ok() {
        return Err(format!(
            "{}: exists but has no autoload.php, so it is not a vendor/ made by Composer\n  fix: delete vendor/ (the build installs the dependencies from composer.lock), or commit the whole vendor/ that `composer install` makes",
            "vendor/"
        ));
    }
    let mut key_input = format!("{version}\0");
    for f in ["composer.json", "composer.lock"] {
        if let Ok(t) = fs_err::read_to_string(app.join(f)) {
            let _ = write!(key_input, "{f}\0{t}\0");
        }
    }
    let mut budget = 64 << 20;
    for r in path_repositories(app) {
        tree_text(&app.join(&r), &r, &mut key_input, &mut budget);
    }
    let _ = write!(
        key_input,
        "mirror\0{}",
        std::env::var("COMPOSER_MIRROR_URL").unwrap_or_default()
    );
    let key = cache_key(&key_input);
    let layer = layers.join("vendor");
    let target = layer.join("vendor");
    let from = if app.join("composer.lock").is_file() {
        "composer.lock"
    } else {
        "composer.json"
    };
    if read_meta(layers, "vendor", "key").as_deref() == Some(key.as_str())
        && target.join("autoload.php").is_file()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing the dependencies layer ({from} unchanged)");
        reuse_sbom(layers, "vendor")?;
    } else {
        let _ = fs_err::remove_dir_all(&layer);
        let _ = fs_err::remove_file(layers.join("vendor.toml"));
        fs_err::create_dir_all(&layer).map_err(io)?;
        let home = composer_home(&key[..16])?;
        let args: &[&str] = if from == "composer.lock" {
            &[
                "install",
                "--no-dev",
                "--no-interaction",
                "--no-progress",
                "--optimize-autoloader",
            ]
        } else {
            // Nothing to install (detection made sure): the autoloader of the app's own classes.
            &[
                "dump-autoload",
                "--optimize",
                "--no-dev",
                "--no-interaction",
            ]
        };
        println!("Installing dependencies (composer {})", args.join(" "));
        let status = Command::new("composer")
            .args(args)
            .env("COMPOSER_HOME", &home)
            .env("COMPOSER_CACHE_DIR", home.join("cache"))
            .env("COMPOSER_VENDOR_DIR", &target)
            .env("COMPOSER_MIRROR_PATH_REPOS", "1")
            .env("COMPOSER_NO_AUDIT", "1")
            .env("COMPOSER_NO_INTERACTION", "1")
            .current_dir(app)
            .status()
            .map_err(|e| {
                format!("cannot run composer (is `composer` in the stack's build packages?): {e}")
            })?;
        let _ = fs_err::remove_dir_all(&home);
        if !status.success() {
            return Err(format!(
                "composer could not install the dependencies from {from} (exit {}); see its output above. Packagist and GitHub may be unreachable from builds: commit vendor/, use `path` repositories, or point Composer at a mirror with `--env COMPOSER_MIRROR_URL=https://...` (behind a private CA, `goldenpath build --ca-certs FILE`)",
                status.code().unwrap_or(-1)
            ));
        }
        let n = composer_sbom(&layers.join("vendor.sbom.cdx.json"), app)?;
        println!("  {n} packages installed");
    }
    layer_toml(layers, "vendor", false, &[("key", key)])?;
    fs_err::os::unix::fs::symlink(&target, &vendor).map_err(io)
}

const NGINX_CONF: &str = r"# nginx in front of php-fpm, as the CNB user: everything writable under @RUN@; errors to stderr, the access log
# through the start script's pipe to stderr.
daemon off;
worker_processes auto;
pid @RUN@/nginx.pid;
error_log stderr;

events {
    worker_connections 1024;
}

http {
    include @NGINX@/etc/mime.types;
    default_type application/octet-stream;
    access_log @RUN@/log;
    client_body_temp_path @RUN@/client_body;
    proxy_temp_path @RUN@/proxy;
    fastcgi_temp_path @RUN@/fastcgi;
    uwsgi_temp_path @RUN@/uwsgi;
    scgi_temp_path @RUN@/scgi;
    sendfile on;
    server_tokens off;
    client_max_body_size 32m;

    server {
        listen @PORT@;
        root @ROOT@;
        index index.php index.html;

        location ~ /\.(?!well-known/) {
            deny all;
        }
        location ~ ^/(vendor/|composer\.(json|lock)$) {
            deny all;
        }
        location / {
            try_files $uri $uri/ /index.php$is_args$args;
        }
        location ~ \.php$ {
            try_files $fastcgi_script_name =404;
            include @NGINX@/etc/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT $realpath_root;
            fastcgi_pass unix:@RUN@/php-fpm.sock;
        }
    }
}
";

const FPM_CONF: &str =
    "; php-fpm for the app, as the CNB user: a unix socket under @RUN@, logs through the start script's pipe to stderr
; (a non-root process cannot reopen /proc/self/fd/2 when it is a pipe another user made).
[global]
pid = @RUN@/php-fpm.pid
error_log = @RUN@/log
log_limit = 8192
daemonize = no

[app]
listen = @RUN@/php-fpm.sock
listen.mode = 0600
pm = dynamic
pm.max_children = @CHILDREN@
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
clear_env = no
catch_workers_output = yes
decorate_workers_output = no
";

const START: &str = r#"#!/bin/sh
# The web process: php-fpm on a unix socket and nginx on $PORT in front of it; stops when either stops.
set -eu
run="${TMPDIR:-/tmp}/goldenpath-php"
mkdir -p "$run"
port="${PORT:-8080}"
case "$port" in
    '' | *[!0-9]*) echo "php-web: PORT must be a port number, not \`$port\`" >&2; exit 1 ;;
esac
children="${PHP_FPM_MAX_CHILDREN:-8}"
sed "s|@PORT@|$port|g; s|@RUN@|$run|g" "@WEB@/etc/nginx.conf.in" > "$run/nginx.conf"
sed "s|@RUN@|$run|g; s|@CHILDREN@|$children|g" "@WEB@/etc/php-fpm.conf.in" > "$run/php-fpm.conf"
rm -f "$run/php-fpm.sock" "$run/log"
# php-fpm and nginx's access log write to a pipe of ours, copied to stderr (fd 3 keeps it open for writing).
mkfifo -m 600 "$run/log"
exec 3<>"$run/log"
cat "$run/log" >&2 &
logs=$!
"@PHP@/bin/php-fpm" --nodaemonize --fpm-config "$run/php-fpm.conf" -c "@PHP@/etc/php.ini" &
fpm=$!
# nginx starts once php-fpm listens, so that the first request does not get a 502.
tries=0
while [ ! -S "$run/php-fpm.sock" ]; do
    if ! kill -0 "$fpm" 2>/dev/null || [ "$tries" -ge 100 ]; then
        echo "php-web: php-fpm did not start (its log is above)" >&2
        kill -TERM "$fpm" 2>/dev/null || true
        kill "$logs" 2>/dev/null || true
        exit 1
    fi
    tries=$((tries + 1))
    sleep 0.1
done
"@NGINX@/bin/nginx" -p "$run" -c "$run/nginx.conf" -e stderr &
ngx=$!
trap 'kill -TERM "$ngx" "$fpm" 2>/dev/null || true; wait "$ngx" "$fpm" 2>/dev/null || true; kill "$logs" 2>/dev/null || true; exit 0' TERM INT
while kill -0 "$fpm" 2>/dev/null && kill -0 "$ngx" 2>/dev/null; do
    sleep 1
done
echo "php-web: php-fpm or nginx stopped; stopping the other" >&2
kill -TERM "$ngx" "$fpm" 2>/dev/null || true
wait "$ngx" "$fpm" 2>/dev/null || true
kill "$logs" 2>/dev/null || true
exit 1
"#;

/// The `web` layer (launch only, rewritten every build): the nginx and php-fpm configuration templates for the
/// app's document root and the start script; its path.
fn web_layer(layers: &Path, app: &Path, php: &Path, nginx: &Path) -> Result<PathBuf, String> {
    let layer = layers.join("web");
    let _ = fs_err::remove_dir_all(&layer);
    let root = match shared::document_root(app) {
        "." => app.to_path_buf(),
        dir => app.join(dir),
    };
    let fill = |t: &str| {
        t.replace("@WEB@", &layer.display().to_string())
            .replace("@PHP@", &php.display().to_string())
            .replace("@NGINX@", &nginx.display().to_string())
            .replace("@ROOT@", &root.display().to_string())
    };
    write(&layer.join("etc/nginx.conf.in"), &fill(NGINX_CONF))?;
    write(&layer.join("etc/php-fpm.conf.in"), &fill(FPM_CONF))?;
    let start = layer.join("bin/php-web");
    write(&start, &fill(START))?;
    fs_err::set_permissions(&start, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io)?;
    write(
        &layers.join("web.toml"),
        "[types]\nlaunch = true\nbuild = false\ncache = false\n",
    )?;
    Ok(start)
}

fn parse_version(v: &str) -> [u64; 3] {
    let mut out = [0; 3];
    for (i, p) in v.split(['.', '-', '+']).take(3).enumerate() {
        out[i] = p.parse().unwrap_or(0);
    }
    out
}

fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(io)?;
    let report = detect(&app);
    for f in &report.findings {
        eprintln!("{f}");
    }
    if report.failed() {
        return Ok(1);
    }
    let version = sh(
        Command::new(PHP_CLI).args(["-n", "-r", "echo PHP_VERSION;"]),
        "the build image's php8.2 (is `php8.2-cli` in the stack's build packages?)",
    )?
    .trim()
    .to_owned();
    if let Some(req) = &report.runtime
        && !satisfies(parse_version(&version), &req.value)
    {
        return Err(format!(
            "{}: PHP `{}` is requested, but this stack provides PHP {version} only (Debian's php8.2 of the build image)\n  fix: allow {version} in `require.php` (e.g. `^8.2`), run `composer update --lock` and commit both files",
            req.source, req.value
        ));
    }
    let (modules, packages) = wanted_modules(&app);
    let php = php_layer(&layers, &version, &modules, &packages)?;
    let nginx = nginx_layer(&layers)?;
    vendor_layer(&layers, &app, &version)?;
    let start = web_layer(&layers, &app, &php, &nginx)?;
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !procs.iter().any(|(k, _)| k == "web") {
        procs.insert(0, ("web".into(), format!("exec {}", start.display())));
    }
    let mut launch = String::new();
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
    use super::{parse_version, priority};

    #[test]
    fn small_parsers() {
        assert_eq!(parse_version("8.2.36"), [8, 2, 36]);
        assert_eq!(
            priority("; configuration\n; priority=10\nextension=pdo.so\n"),
            "10"
        );
        assert_eq!(priority("extension=x.so\n"), "20");
    }
}
