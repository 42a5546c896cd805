//! The built-in Static buildpack (`io.goldenpath.static`), one static executable installed as both `bin/detect` and
//! `bin/build`, and copied into the image as the site's server (`goldenpath-static serve`).
//!
//! The build: text files of the site are precompressed with the build image's gzip (`gzip -9 -n`: no name, no
//! time, so the same site gives the same bytes), this executable goes into a `server` launch layer (keyed by its
//! own content: reused until the buildpack changes), and the `web` process serves the site's root from the app
//! directory. An app that brings an `nginx.conf` gets Debian's nginx instead, copied with the shared libraries it
//! links into an `nginx` launch layer (keyed by the nginx version), started by `goldenpath-static nginx`, which
//! substitutes `$PORT` and points nginx's pid and temporary files at `/tmp`.
//!
//! After a Node.js build (the order group `[nodejs, static]`): the site is what the build script wrote to `dist/`,
//! `build/` or `out/`.

#[path = "../static_site/server.rs"]
mod server;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, env_path, phase_main, read_meta, reuse_sbom, sh, write, write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

const ID: &str = "io.goldenpath.static";
/// The server's name in the image; started under this name, the executable is the server, not a buildpack phase.
const SERVER: &str = "goldenpath-static";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name == SERVER {
        let result = match args.get(1).map(String::as_str) {
            Some("serve") => server::main(&args[2..]),
            Some("nginx") => nginx_main(&args[2..]),
            _ => Err(format!(
                "usage: {SERVER} serve --root DIR [--spa] | {SERVER} nginx LAYER"
            )),
        };
        return match result {
            Ok(c) => ExitCode::from(c),
            Err(e) => {
                eprintln!("ERROR: {e}");
                ExitCode::from(1)
            }
        };
    }
    phase_main(run_detect, run_build)
}

/// A Node.js app whose build makes a static site (see [`gp_buildpacks::node::static_site`]).
fn node_static_build(app: &Path, report: &Report) -> bool {
    if report.language != Some(Language::Node) {
        return false;
    }
    let pkg: serde_json::Value = fs_err::read_to_string(app.join("package.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    gp_buildpacks::node::static_site(&pkg, app, &report.processes)
}

/// 0 for a static site (or, after the Node.js buildpack, a Node.js app whose build makes one), 100 for anything
/// else, 1 with the findings when the site would fail.
fn run_detect() -> Result<u8, String> {
    let app = Path::new(".");
    let report = detect(app);
    if node_static_build(app, &report) {
        let plan = env_path("CNB_BUILD_PLAN_PATH", 2)?;
        // Requiring `node` (which the Node.js buildpack provides) passes only in a group after it: alone, the
        // static buildpack cannot serve a site nobody built.
        write(
            &plan,
            "[[provides]]\nname = \"static\"\n\n[[requires]]\nname = \"static\"\n\n[[requires]]\nname = \"node\"\n",
        )?;
        return Ok(0);
    }
    gp_buildpacks::support::detect_phase(Language::Static, "static")
}

/// Writes `<layers>/<layer>.toml`: a launch and cache layer with `key`.
fn launch_layer_toml(layers: &Path, layer: &str, key: &str) -> Result<(), String> {
    gp_buildpacks::support::layer_toml(layers, layer, false, &[("key", key.to_owned())])
}

/// The `server` layer: this executable as `bin/goldenpath-static`, reused while it is the same program.
fn server_layer(layers: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let bytes = fs_err::read(&exe).map_err(|e| e.to_string())?;
    let key = cache_key(&String::from_utf8_lossy(&bytes));
    let layer = layers.join("server");
    let bin = layer.join("bin").join(SERVER);
    if read_meta(layers, "server", "key").as_deref() == Some(key.as_str())
        && bin.is_file()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing the static server (runtime layer unchanged)");
        reuse_sbom(layers, "server")?;
        launch_layer_toml(layers, "server", &key)?;
        return Ok(bin);
    }
    println!(
        "Installing the static server ({SERVER} {})",
        env!("CARGO_PKG_VERSION")
    );
    let _ = fs_err::remove_dir_all(&layer);
    fs_err::create_dir_all(layer.join("bin")).map_err(|e| e.to_string())?;
    fs_err::write(&bin, &bytes).map_err(|e| e.to_string())?;
    fs_err::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    let version = env!("CARGO_PKG_VERSION");
    write_sbom(
        &layers.join("server.sbom.cdx.json"),
        &[(
            SERVER.to_owned(),
            version.to_owned(),
            format!("pkg:generic/{SERVER}@{version}"),
        )],
    )?;
    launch_layer_toml(layers, "server", &key)?;
    Ok(bin)
}

/// Precompresses the site's text files (`name.gz` beside `name`, kept only when smaller); never through a
/// symbolic link, never twice.
fn precompress(root: &Path) -> Result<usize, String> {
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in gp_buildpacks::support::sorted_entries(&dir).map_err(|e| e.to_string())? {
            let ft = e.file_type().map_err(|e| e.to_string())?;
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() && name != "node_modules" && !name.starts_with('.') {
                stack.push(e.path());
            } else if ft.is_file() && server::compressible(&name) {
                let path = e.path();
                let gz = path.with_file_name(format!("{name}.gz"));
                let len = e.metadata().map_err(|e| e.to_string())?.len();
                if len < 256 || gz.exists() {
                    continue;
                }
                sh(
                    Command::new("gzip")
                        .args(["-9", "-n", "-k", "-f"])
                        .arg(&path),
                    "gzip",
                )?;
                if fs_err::metadata(&gz).is_ok_and(|m| m.len() >= len) {
                    let _ = fs_err::remove_file(&gz);
                } else {
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}

/// The `nginx` layer: Debian's nginx of the build image, its configuration snippets (mime.types, ...) and the
/// shared libraries it links, except the C library every run image has.
fn nginx_layer(layers: &Path) -> Result<(), String> {
    // `nginx -v` prints `nginx version: nginx/1.22.1` to stderr.
    let o = Command::new("/usr/sbin/nginx")
        .arg("-v")
        .output()
        .map_err(|e| {
            format!(
                "cannot run /usr/sbin/nginx (is nginx-light in the stack's build packages?): {e}"
            )
        })?;
    let version = String::from_utf8_lossy(&o.stderr).into_owned();
    let version = version
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    let layer = layers.join("nginx");
    let key = cache_key(&format!("nginx {version}"));
    if read_meta(layers, "nginx", "key").as_deref() == Some(key.as_str())
        && layer.join("sbin/nginx").is_file()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing nginx {version} (runtime layer unchanged)");
        reuse_sbom(layers, "nginx")?;
        return launch_layer_toml(layers, "nginx", &key);
    }
    println!("Installing nginx {version} from the stack (Debian nginx of the build image)");
    let _ = fs_err::remove_dir_all(&layer);
    for d in ["sbin", "conf", "lib"] {
        fs_err::create_dir_all(layer.join(d)).map_err(|e| e.to_string())?;
    }
    fs_err::copy("/usr/sbin/nginx", layer.join("sbin/nginx")).map_err(|e| e.to_string())?;
    for f in [
        "mime.types",
        "fastcgi_params",
        "fastcgi.conf",
        "proxy_params",
        "scgi_params",
        "uwsgi_params",
    ] {
        let from = Path::new("/etc/nginx").join(f);
        if from.is_file() {
            fs_err::copy(&from, layer.join("conf").join(f)).map_err(|e| e.to_string())?;
        }
    }
    let libc = [
        "libc.so",
        "libm.so",
        "ld-linux",
        "libpthread.so",
        "libdl.so",
        "librt.so",
        "linux-vdso",
    ];
    let ldd = sh(
        Command::new("ldd").arg("/usr/sbin/nginx"),
        "ldd /usr/sbin/nginx",
    )?;
    for line in ldd.lines() {
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
        if path.starts_with('/') && !libc.iter().any(|l| name.starts_with(l)) {
            fs_err::copy(path, layer.join("lib").join(&name)).map_err(|e| e.to_string())?;
        }
    }
    write_sbom(
        &layers.join("nginx.sbom.cdx.json"),
        &[(
            "nginx".to_owned(),
            version.clone(),
            format!("pkg:deb/debian/nginx@{version}?distro=debian-12"),
        )],
    )?;
    launch_layer_toml(layers, "nginx", &key)
}

/// `goldenpath-static nginx LAYER`: the app's `nginx.conf` with `$PORT` substituted and writable temporary paths
/// added, written to `/tmp/goldenpath-nginx/`, then nginx in the foreground with the app directory as its prefix.
fn nginx_main(args: &[String]) -> Result<u8, String> {
    use std::os::unix::process::CommandExt;
    let layer = PathBuf::from(args.first().ok_or("usage: nginx LAYER")?);
    let app = std::env::current_dir().map_err(|e| e.to_string())?;
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    if port.parse::<u16>().is_err() {
        return Err(format!("PORT=`{port}` is not a port number"));
    }
    let conf = fs_err::read_to_string(app.join("nginx.conf")).map_err(|e| e.to_string())?;
    let run = std::env::temp_dir().join("goldenpath-nginx");
    for d in ["", "body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        fs_err::create_dir_all(run.join(d)).map_err(|e| e.to_string())?;
    }
    for e in fs_err::read_dir(layer.join("conf"))
        .map_err(|e| e.to_string())?
        .flatten()
    {
        fs_err::copy(e.path(), run.join(e.file_name())).map_err(|e| e.to_string())?;
    }
    let temps = format!(
        "client_body_temp_path {0}/body; proxy_temp_path {0}/proxy; fastcgi_temp_path {0}/fastcgi; uwsgi_temp_path {0}/uwsgi; scgi_temp_path {0}/scgi; access_log /dev/stdout;",
        run.display()
    );
    let text = substitute_nginx(&conf, &port, &temps);
    let main_conf = run.join("nginx.conf");
    fs_err::write(&main_conf, text).map_err(|e| e.to_string())?;
    let err = Command::new(layer.join("sbin/nginx"))
        .arg("-p")
        .arg(&app)
        .args(["-e", "stderr", "-c"])
        .arg(&main_conf)
        .arg("-g")
        .arg(format!("daemon off; pid {}/nginx.pid;", run.display()))
        .exec();
    Err(format!("cannot start nginx: {err}"))
}

/// `$PORT`/`${PORT}` replaced by `port`; `temps` inserted at the start of the `http` block, with a `events {}`
/// block added when the file has none (a file with only a `server` block is wrapped in `http`).
fn substitute_nginx(conf: &str, port: &str, temps: &str) -> String {
    let text = conf.replace("${PORT}", port).replace("$PORT", port);
    let has_http = text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").trim_start();
        l.starts_with("http ") || l.starts_with("http{")
    });
    let mut out = String::new();
    if !text.lines().any(|l| l.trim_start().starts_with("events")) {
        out.push_str("events {}\n");
    }
    if has_http {
        let mut done = false;
        for line in text.lines() {
            out.push_str(line);
            out.push('\n');
            let l = line.split('#').next().unwrap_or("").trim_start();
            if !done && (l.starts_with("http ") || l.starts_with("http{")) && l.contains('{') {
                let _ = writeln!(out, "    {temps}");
                done = true;
            }
        }
    } else {
        let _ = write!(
            out,
            "http {{\n    include mime.types;\n    {temps}\n{text}\n}}\n"
        );
    }
    out
}

/// Where the site is: the root detection chose, or the Node.js build's output directory.
fn site_root(app: &Path, report: &Report) -> Result<String, String> {
    if report.language == Some(Language::Node) {
        return gp_buildpacks::node::SITE_OUTPUTS
            .iter()
            .find(|d| app.join(d).join("index.html").is_file())
            .map(|d| (*d).to_owned())
            .ok_or_else(|| {
                "package.json: the build script (`npm run build`) wrote no index.html to dist/, build/ or out/, so there is no site to serve\n  fix: make the build write the site to dist/ (or add a start command to serve the app with Node.js)".to_owned()
            });
    }
    let source = report
        .start
        .as_ref()
        .map_or("index.html", |s| s.source.as_str());
    Ok(Path::new(source)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into()))
}

fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(|e| e.to_string())?;
    let report = detect(&app);
    if report.language != Some(Language::Node) {
        for f in &report.findings {
            eprintln!("{f}");
        }
        if report.failed() {
            return Ok(1);
        }
    }
    let server = server_layer(&layers)?;
    let procs: Vec<(String, String)> = report.processes.clone();
    let web: Vec<String> =
        if app.join("nginx.conf").is_file() && report.language == Some(Language::Static) {
            nginx_layer(&layers)?;
            println!("Start command: nginx with nginx.conf ($PORT substituted)");
            vec![
                server.display().to_string(),
                "nginx".into(),
                layers.join("nginx").display().to_string(),
            ]
        } else {
            let root = site_root(&app, &report)?;
            let dir = app.join(&root);
            let zipped = precompress(&dir)?;
            println!("Precompressed {zipped} text file(s) with gzip");
            let spa = match std::env::var("BP_STATIC_SPA").map(|v| v.to_ascii_lowercase()) {
                Ok(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => true,
                Ok(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => false,
                _ => {
                    report.language == Some(Language::Node)
                        || report
                            .start
                            .as_ref()
                            .is_some_and(|s| s.value.contains("single-page"))
                }
            };
            println!(
                "Start command: {SERVER} serve --root {root}{}",
                if spa {
                    " --spa (single-page app fallback)"
                } else {
                    ""
                }
            );
            let mut cmd = vec![
                server.display().to_string(),
                "serve".into(),
                "--root".into(),
                dir.display().to_string(),
            ];
            if spa {
                cmd.push("--spa".into());
            }
            cmd
        };
    let mut launch = String::new();
    if !procs.iter().any(|(k, _)| k == "web") {
        let array: Vec<String> = web
            .iter()
            .map(|a| toml::Value::String(a.clone()).to_string())
            .collect();
        let _ = write!(
            launch,
            "[[processes]]\ntype = \"web\"\ncommand = [{}]\ndefault = true\n\n",
            array.join(", ")
        );
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
    let warnings = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    if warnings > 0 {
        println!("{warnings} warning(s) above");
    }
    let _ = ID;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::substitute_nginx;

    #[test]
    fn nginx_conf_gets_the_port_and_writable_paths() {
        let full = "worker_processes 1;\nhttp {\n  include mime.types;\n  server {\n    listen $PORT;\n    root public;\n  }\n}\n";
        let out = substitute_nginx(full, "9000", "TEMPS;");
        assert!(out.starts_with("events {}\n"), "{out}");
        assert!(out.contains("listen 9000;"), "{out}");
        assert!(out.contains("http {\n    TEMPS;\n"), "{out}");
        let snippet = "server {\n  listen ${PORT};\n}\n";
        let out = substitute_nginx(snippet, "9000", "TEMPS;");
        assert!(
            out.contains("http {\n    include mime.types;\n    TEMPS;\nserver {\n  listen 9000;"),
            "{out}"
        );
    }
}
