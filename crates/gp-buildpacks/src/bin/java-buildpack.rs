//! The built-in Java buildpack (`io.goldenpath.java`), one static executable installed as both `bin/detect` and
//! `bin/build`.
//!
//! The build runs on the build image's JDK 17 (Debian's `openjdk-17-jdk-headless`). Maven apps build with the
//! Maven binary distribution from Maven Central (`$MAVEN_REPOSITORY_URL` when the platform sets it, checked
//! against the `.sha512` published beside it) unless they bring `mvnw`; Gradle apps with the distribution their
//! wrapper names (downloaded and unpacked here, `distributionSha256Sum` checked; `$GRADLE_DISTRIBUTIONS_URL`
//! replaces the base of the URL); a prebuilt jar is taken as is. The app runs on a JRE that `jlink` makes from
//! the JDK's modules (a fixed set, see [`MODULES`]) in a `jre` launch layer, with the shared libraries it links
//! that the run image lacks. The Maven repository, Maven itself, Gradle and the Gradle user home are cache
//! layers: they never reach the image.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use gp_buildpacks::support::{
    cache_key, detect_phase, env_path, layer_toml, phase_main, read_meta, reuse_sbom, sh, write,
    write_sbom,
};
use gp_buildpacks::{Language, Report, Severity, detect};

#[path = "../java/reuse.rs"]
mod reuse;
#[path = "../java/wrapper.rs"]
mod wrapper;

/// The build image's JDK.
const JDK: &str = "/usr/lib/jvm/java-17-openjdk-amd64";

/// The Maven release used when the app has no `mvnw`.
const MAVEN_VERSION: &str = "3.9.16";

const MAVEN_CENTRAL: &str = "https://repo.maven.apache.org/maven2";

/// The modules of the JRE: all of Java SE (`java.se`: Spring needs `java.desktop` for `java.beans`, JDBC drivers
/// `java.sql`, JNDI `java.naming`) and the JDK modules that apps reach only through reflection or `ServiceLoader`,
/// which `jdeps` cannot see: the EC and PKCS#11 crypto providers (TLS), extra charsets, locale data, DNS for JNDI,
/// the zip file system, plus `jdk.unsupported` (`sun.misc.Unsafe`: Netty, Kryo, ...), `jdk.httpserver`,
/// management and JFR. A fixed set, not per app: one JRE layer for every app and rebuild, no jar analysis per
/// build, and no start-time `ClassNotFoundException` for a provider that static analysis missed. Left out: the
/// compiler, jshell, jlink, debugger agents and other development tools.
const MODULES: &[&str] = &[
    "java.se",
    "jdk.charsets",
    "jdk.crypto.cryptoki",
    "jdk.crypto.ec",
    "jdk.httpserver",
    "jdk.jfr",
    "jdk.localedata",
    "jdk.management",
    "jdk.management.agent",
    "jdk.naming.dns",
    "jdk.net",
    "jdk.security.auth",
    "jdk.security.jgss",
    "jdk.unsupported",
    "jdk.xml.dom",
    "jdk.zipfs",
];

/// How the JRE is linked. No `--compress`: its zip-compressed `lib/modules` (35 MiB instead of 77 for
/// [`MODULES`] of Java 17) gzips to a layer of 42.6 MiB, the plain one to 35.6 MiB (measured with `tar | gzip -6`),
/// so the image is smaller where it is stored and pulled, and classes load without being inflated first.
const JLINK_OPTIONS: &[&str] = &["--strip-debug", "--no-man-pages", "--no-header-files"];

/// Shared libraries the run image has (the C library and the stack's `[run] packages`): never copied, so that a
/// rebased run image's fixes reach the app.
const RUN_IMAGE_LIBS: &[&str] = &[
    "libc.so",
    "libm.so",
    "ld-linux",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "libutil.so",
    "linux-vdso",
    "libgcc_s.so",
    "libz.so",
    "libssl.so",
    "libcrypto.so",
    "libexpat.so",
    "libffi.so",
    "libsqlite3.so",
    "libatomic.so",
];

/// The default JVM options at launch: the heap from the container's memory limit.
const JAVA_TOOL_OPTIONS: &str = "-XX:MaxRAMPercentage=75.0";

fn main() -> ExitCode {
    phase_main(run_detect, run_build)
}

fn run_detect() -> Result<u8, String> {
    detect_phase(Language::Java, "java")
}

/// Writes `<layers>/<layer>.toml` for a layer that only the build needs (cached between builds, never in the
/// image).
fn cache_layer_toml(layers: &Path, layer: &str, meta: &[(&str, String)]) -> Result<(), String> {
    let mut text =
        String::from("[types]\nlaunch = false\nbuild = false\ncache = true\n\n[metadata]\n");
    for (k, v) in meta {
        let _ = writeln!(text, "{k} = {}", toml::Value::String(v.clone()));
    }
    write(&layers.join(format!("{layer}.toml")), &text)
}

fn io(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The build's environment for the JDK's tools: `JAVA_HOME`, `PATH`, and when the platform passes CA
/// certificates, a trust store made from them for every JVM (`JAVA_TOOL_OPTIONS`).
struct JavaEnv {
    vars: Vec<(String, String)>,
    scratch: PathBuf,
}

impl JavaEnv {
    fn new() -> Result<JavaEnv, String> {
        let scratch = std::env::temp_dir().join(format!("goldenpath-java-{}", std::process::id()));
        fs_err::create_dir_all(&scratch).map_err(io)?;
        let mut vars = vec![
            ("JAVA_HOME".to_owned(), JDK.to_owned()),
            (
                "PATH".to_owned(),
                format!("{JDK}/bin:{}", std::env::var("PATH").unwrap_or_default()),
            ),
        ];
        if let Some(store) = trust_store(&scratch)? {
            vars.push((
                "JAVA_TOOL_OPTIONS".to_owned(),
                format!(
                    "-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12",
                    store.display()
                ),
            ));
        }
        Ok(JavaEnv { vars, scratch })
    }

    fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
    }
}

impl Drop for JavaEnv {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir_all(&self.scratch);
    }
}

/// A small Java program (run from source by the JDK's launcher) that writes every certificate of the PEM bundles
/// it is given into a PKCS#12 trust store: Java 17 cannot read PEM bundles itself.
const PEM_TO_TRUST_STORE: &str = r#"import java.io.*;
import java.security.KeyStore;
import java.security.cert.*;

public class PemTrustStore {
    public static void main(String[] args) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        CertificateFactory x509 = CertificateFactory.getInstance("X.509");
        int n = 0;
        for (int i = 1; i < args.length; i++) {
            try (InputStream in = new BufferedInputStream(new FileInputStream(args[i]))) {
                for (Certificate c : x509.generateCertificates(in)) {
                    store.setCertificateEntry("ca-" + n++, c);
                }
            }
        }
        try (OutputStream out = new FileOutputStream(args[0])) {
            store.store(out, "changeit".toCharArray());
        }
        System.out.println(n);
    }
}
"#;

/// The platform's CA certificates (`SSL_CERT_FILE`, from the `ca-certificates` binding) as a trust store for the
/// build's JVMs, in `scratch` (never in a layer).
fn trust_store(scratch: &Path) -> Result<Option<PathBuf>, String> {
    let Some(bundle) = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    else {
        return Ok(None);
    };
    let source = scratch.join("PemTrustStore.java");
    write(&source, PEM_TO_TRUST_STORE)?;
    let store = scratch.join("truststore.p12");
    let out = sh(
        Command::new(format!("{JDK}/bin/java"))
            .arg(&source)
            .arg(&store)
            .arg(&bundle),
        "java (making a trust store of the platform's CA certificates)",
    )?;
    println!(
        "Trusting the platform's CA certificates ({} from {})",
        out.trim(),
        bundle.display()
    );
    Ok(Some(store))
}

/// The JDK's version (`JAVA_VERSION` of its `release` file).
fn jdk_version() -> Result<String, String> {
    let release = fs_err::read_to_string(format!("{JDK}/release")).map_err(|e| {
        format!(
            "{e}: the build image has no JDK 17 at {JDK}\n  fix: build with a stack whose build image has `openjdk-17-jdk-headless`"
        )
    })?;
    release
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or_else(|| format!("{JDK}/release names no JAVA_VERSION"))
}

/// Downloads `url` to `to` with curl (which reads the platform's CA certificates).
fn download(url: &str, to: &Path, hint: &str) -> Result<(), String> {
    if let Some(p) = to.parent() {
        fs_err::create_dir_all(p).map_err(io)?;
    }
    sh(
        Command::new("curl")
            .args(["-fsSL", "--retry", "3", "-o"])
            .arg(to)
            .arg(url),
        &format!("curl {url} ({hint})"),
    )
    .map(|_| ())
}

fn digest(tool: &str, file: &Path) -> Result<String, String> {
    Ok(sh(Command::new(tool).arg(file), tool)?
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned())
}

/// The Maven Central base URL: `$MAVEN_REPOSITORY_URL` (a mirror), else repo.maven.apache.org.
fn maven_repository() -> String {
    std::env::var("MAVEN_REPOSITORY_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| MAVEN_CENTRAL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The `maven` cache layer: Maven's binary distribution from Maven Central, SHA-512 checked.
fn maven_layer(layers: &Path) -> Result<PathBuf, String> {
    let layer = layers.join("maven");
    if read_meta(layers, "maven", "version").as_deref() == Some(MAVEN_VERSION)
        && layer.join("bin/mvn").is_file()
    {
        println!("Reusing Maven {MAVEN_VERSION} (layer unchanged)");
        return cache_layer_toml(layers, "maven", &[("version", MAVEN_VERSION.to_owned())])
            .map(|()| layer);
    }
    let base = maven_repository();
    let url = format!(
        "{base}/org/apache/maven/apache-maven/{MAVEN_VERSION}/apache-maven-{MAVEN_VERSION}-bin.tar.gz"
    );
    println!("Installing Maven {MAVEN_VERSION} from {url}");
    let _ = fs_err::remove_dir_all(&layer);
    let hint = "a mirror of Maven Central: `--env MAVEN_REPOSITORY_URL=URL`; behind a private CA: `--ca-certs FILE`";
    let tgz = layers.join("maven.download.tgz");
    let sum_file = layers.join("maven.download.sha512");
    download(&url, &tgz, hint)?;
    download(&format!("{url}.sha512"), &sum_file, hint)?;
    let want = fs_err::read_to_string(&sum_file)
        .map_err(io)?
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let got = digest("sha512sum", &tgz)?;
    let _ = fs_err::remove_file(&sum_file);
    if want.len() != 128 || got != want {
        let _ = fs_err::remove_file(&tgz);
        return Err(format!(
            "{url}: SHA-512 {got} does not match the published {url}.sha512 ({want})\n  fix: check the mirror (MAVEN_REPOSITORY_URL) serves Maven Central's files unchanged"
        ));
    }
    fs_err::create_dir_all(&layer).map_err(io)?;
    sh(
        Command::new("tar")
            .arg("-xzf")
            .arg(&tgz)
            .args(["--strip-components=1", "--no-same-owner", "-C"])
            .arg(&layer),
        "tar",
    )?;
    let _ = fs_err::remove_file(&tgz);
    cache_layer_toml(layers, "maven", &[("version", MAVEN_VERSION.to_owned())])?;
    Ok(layer)
}

/// A `settings.xml` from a binding of type `maven` (`$CNB_PLATFORM_DIR/bindings/<name>/`), with its name.
fn settings_binding() -> Option<(String, PathBuf)> {
    let platform = std::env::var_os("CNB_PLATFORM_DIR")
        .map_or_else(|| PathBuf::from("/platform"), PathBuf::from);
    find_binding(&platform.join("bindings"), "maven", "settings.xml")
}

fn find_binding(bindings: &Path, kind: &str, file: &str) -> Option<(String, PathBuf)> {
    let mut dirs: Vec<_> = fs_err::read_dir(bindings).ok()?.flatten().collect();
    dirs.sort_by_key(fs_err::DirEntry::file_name);
    dirs.into_iter().find_map(|d| {
        let t = fs_err::read_to_string(d.path().join("type")).ok()?;
        let path = d.path().join(file);
        (t.trim().eq_ignore_ascii_case(kind) && path.is_file())
            .then(|| (d.file_name().to_string_lossy().into_owned(), path))
    })
}

/// The settings Maven runs with, and what they mean for the cached repository: the binding's `settings.xml`
/// (its content keys the repository, never printed), else a generated one mirroring Central when
/// `MAVEN_REPOSITORY_URL` is set, else none.
fn maven_settings(scratch: &Path) -> Result<(Option<PathBuf>, String), String> {
    if let Some((name, path)) = settings_binding() {
        println!("Using settings.xml from the binding `{name}` (type maven)");
        let text = fs_err::read_to_string(&path)
            .map_err(|e| format!("binding `{name}`: settings.xml: {e}"))?;
        return Ok((Some(path), format!("binding\0{}", cache_key(&text))));
    }
    let base = maven_repository();
    if base == MAVEN_CENTRAL {
        return Ok((None, base));
    }
    println!("Resolving dependencies through {base} (MAVEN_REPOSITORY_URL)");
    let mut url = String::new();
    for c in base.chars() {
        match c {
            '&' => url.push_str("&amp;"),
            '<' => url.push_str("&lt;"),
            '>' => url.push_str("&gt;"),
            c => url.push(c),
        }
    }
    let path = scratch.join("settings.xml");
    write(
        &path,
        &format!(
            "<settings>\n  <mirrors>\n    <mirror>\n      <id>goldenpath-mirror</id>\n      <mirrorOf>central</mirrorOf>\n      <url>{url}</url>\n    </mirror>\n  </mirrors>\n</settings>\n"
        ),
    )?;
    Ok((Some(path), base))
}

/// Every `pom.xml` of the app (modules too), with its content: what the Maven repository layer is keyed by.
fn poms(app: &Path) -> String {
    fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<(String, String)>) {
        let Ok(rd) = fs_err::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir()
                && depth < 4
                && !name.starts_with('.')
                && name != "target"
                && name != "src"
            {
                walk(&e.path(), &path, depth + 1, out);
            } else if t.is_file() && name == "pom.xml" {
                out.push((path, fs_err::read_to_string(e.path()).unwrap_or_default()));
            }
        }
    }
    let mut found = Vec::new();
    walk(app, "", 0, &mut found);
    found.sort();
    let mut key = String::new();
    for (p, t) in found {
        let _ = write!(key, "{p}\0{t}\0");
    }
    key
}

/// Builds a Maven app: `mvn` (or `./mvnw`) `package`, the local repository in the `m2` cache layer.
fn maven_build(layers: &Path, app: &Path, env: &JavaEnv, wrapper: bool) -> Result<(), String> {
    let (settings, repository) = maven_settings(&env.scratch)?;
    let mvn: Vec<String> = if wrapper {
        vec!["sh".into(), "./mvnw".into()]
    } else {
        vec![
            maven_layer(layers)?
                .join("bin/mvn")
                .to_string_lossy()
                .into_owned(),
        ]
    };
    let m2 = layers.join("m2");
    let key = cache_key(&poms(app));
    let repo_key = cache_key(&repository);
    let (old_key, old_repo) = (
        read_meta(layers, "m2", "poms"),
        read_meta(layers, "m2", "repository"),
    );
    if old_repo.as_deref() != Some(repo_key.as_str()) || !m2.join("repository").is_dir() {
        if old_repo.is_some() {
            println!(
                "The Maven repository settings changed: starting an empty Maven repository layer"
            );
        } else {
            println!("Starting the Maven repository layer");
        }
        let _ = fs_err::remove_dir_all(&m2);
    } else if old_key.as_deref() == Some(key.as_str()) {
        println!("Reusing the Maven repository layer (pom.xml unchanged)");
    } else {
        println!(
            "Reusing the Maven repository layer, updated for the changed pom.xml (only what is new is downloaded)"
        );
    }
    fs_err::create_dir_all(m2.join("repository")).map_err(io)?;
    let mut cmd = Command::new(&mvn[0]);
    cmd.args(&mvn[1..])
        .args(["-B", "--no-transfer-progress", "-DskipTests"])
        .arg(format!(
            "-Dmaven.repo.local={}",
            m2.join("repository").display()
        ));
    if let Some(s) = &settings {
        cmd.arg("-s").arg(s);
    }
    cmd.arg("package")
        .current_dir(app)
        .env("MAVEN_USER_HOME", &m2) // mvnw keeps the Maven it downloads there
        .env("HOME", &m2);
    println!(
        "Building with {} package -DskipTests",
        if wrapper { "./mvnw" } else { "mvn" }
    );
    let status = env
        .apply(&mut cmd)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", mvn.join(" ")))?;
    // Saved even when the build fails: what was downloaded stays cached.
    cache_layer_toml(layers, "m2", &[("poms", key), ("repository", repo_key)])?;
    if !status.success() {
        return Err(format!(
            "pom.xml: `{} package` failed (exit {}); see Maven's output above. For a mirror of Maven Central: `--env MAVEN_REPOSITORY_URL=URL` (or a `maven` binding with settings.xml); behind a private CA: `--ca-certs FILE`",
            if wrapper { "./mvnw" } else { "mvn" },
            status.code().unwrap_or(-1)
        ));
    }
    Ok(())
}

/// The Gradle wrapper's distribution URL, with `$GRADLE_DISTRIBUTIONS_URL` as the base when set.
fn gradle_url(app: &Path) -> Result<(String, Option<String>, usize), String> {
    let file = "gradle/wrapper/gradle-wrapper.properties";
    let text = fs_err::read_to_string(app.join(file)).map_err(|e| format!("{file}: {e}"))?;
    let (url, sum) = wrapper::wrapper_distribution(&text);
    let (url, line) = url.ok_or_else(|| format!("{file}: no distributionUrl"))?;
    let url = match std::env::var("GRADLE_DISTRIBUTIONS_URL")
        .ok()
        .filter(|b| !b.trim().is_empty())
    {
        Some(base) => format!(
            "{}/{}",
            base.trim_end_matches('/'),
            url.rsplit('/').next().unwrap_or(&url)
        ),
        None => url,
    };
    Ok((url, sum, line))
}

/// The `gradle` cache layer: the distribution the wrapper names, unpacked.
fn gradle_layer(layers: &Path, app: &Path) -> Result<PathBuf, String> {
    let (url, sum, line) = gradle_url(app)?;
    let key = cache_key(&format!("{url}\0{}", sum.as_deref().unwrap_or("")));
    let layer = layers.join("gradle");
    let name = url.rsplit('/').next().unwrap_or("gradle").to_owned();
    if read_meta(layers, "gradle", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/gradle").is_file()
    {
        println!("Reusing Gradle ({name}, layer unchanged)");
        cache_layer_toml(layers, "gradle", &[("key", key)])?;
        return Ok(layer);
    }
    println!("Installing Gradle from {url}");
    let _ = fs_err::remove_dir_all(&layer);
    let zip = layers.join("gradle.download.zip");
    if let Err(e) = download(&url, &zip, "") {
        return Err(format!(
            "gradle/wrapper/gradle-wrapper.properties:{line}: cannot download the Gradle distribution {url}: {e}\n  fix: point distributionUrl at a server this build reaches (services.gradle.org may be blocked), or set `--env GRADLE_DISTRIBUTIONS_URL=<base URL>` to a mirror that serves {name}"
        ));
    }
    if let Some(want) = &sum {
        let got = digest("sha256sum", &zip)?;
        if !got.eq_ignore_ascii_case(want.trim()) {
            let _ = fs_err::remove_file(&zip);
            return Err(format!(
                "gradle/wrapper/gradle-wrapper.properties: {url} has SHA-256 {got}, but distributionSha256Sum says {want}\n  fix: check the distribution (or the mirror), or correct distributionSha256Sum"
            ));
        }
    }
    let unpacked = layers.join("gradle.unpack");
    let _ = fs_err::remove_dir_all(&unpacked);
    fs_err::create_dir_all(&unpacked).map_err(io)?;
    sh(
        Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&zip)
            .arg("-d")
            .arg(&unpacked),
        "unzip (the Gradle distribution)",
    )?;
    let _ = fs_err::remove_file(&zip);
    // The distribution's single top directory (`gradle-8.10/`) becomes the layer.
    let tops: Vec<_> = fs_err::read_dir(&unpacked).map_err(io)?.flatten().collect();
    let top = match tops.as_slice() {
        [one] if one.file_type().is_ok_and(|t| t.is_dir()) => one.path(),
        _ => unpacked.clone(),
    };
    fs_err::rename(&top, &layer).map_err(io)?;
    let _ = fs_err::remove_dir_all(&unpacked);
    let gradle = layer.join("bin/gradle");
    if !gradle.is_file() {
        return Err(format!(
            "{url}: the distribution has no bin/gradle\n  fix: point distributionUrl at a Gradle binary distribution (gradle-<version>-bin.zip)"
        ));
    }
    fs_err::set_permissions(&gradle, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io)?;
    cache_layer_toml(layers, "gradle", &[("key", key)])?;
    Ok(layer)
}

fn gradle_build(layers: &Path, app: &Path, env: &JavaEnv) -> Result<(), String> {
    let gradle = gradle_layer(layers, app)?;
    let home = layers.join("gradle-home");
    if read_meta(layers, "gradle-home", "version").is_some() && home.is_dir() {
        println!("Reusing the Gradle user home layer (dependency cache)");
    }
    fs_err::create_dir_all(&home).map_err(io)?;
    cache_layer_toml(layers, "gradle-home", &[("version", "1".to_owned())])?;
    println!("Building with gradle build -x test");
    let status = env
        .apply(
            Command::new("sh")
                .arg(gradle.join("bin/gradle"))
                .args(["--no-daemon", "--console=plain", "build", "-x", "test"])
                .current_dir(app)
                .env("GRADLE_USER_HOME", &home),
        )
        .status()
        .map_err(|e| format!("cannot run gradle: {e}"))?;
    if !status.success() {
        return Err(format!(
            "build.gradle: `gradle build -x test` failed (exit {}); see Gradle's output above",
            status.code().unwrap_or(-1)
        ));
    }
    Ok(())
}

/// What besides the app's files decides the jar a build makes: this buildpack's own code (its executable), the
/// tool and its version, the JDK,
/// where dependencies come from (repository URLs, the settings binding's content) and the build tools' own
/// environment variables.
fn build_inputs(tool: &str, jdk: &str) -> Vec<(&'static str, String)> {
    let mut inputs = vec![
        (
            "buildpack",
            std::env::current_exe()
                .map_err(|e| e.to_string())
                .and_then(|exe| reuse::file_digest(&exe))
                .unwrap_or_else(|e| {
                    format!("{} (executable unreadable: {e})", env!("CARGO_PKG_VERSION"))
                }),
        ),
        ("tool", tool.to_owned()),
        ("jdk", jdk.to_owned()),
        ("maven", MAVEN_VERSION.to_owned()),
        ("maven-repository", maven_repository()),
        (
            "settings",
            settings_binding()
                .and_then(|(_, p)| fs_err::read_to_string(p).ok())
                .map_or_else(String::new, |t| cache_key(&t)),
        ),
    ];
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            ["MAVEN_", "GRADLE_", "JAVA_", "BP_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .collect();
    vars.sort();
    inputs.push((
        "env",
        vars.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    ));
    inputs
}

/// The jar kept under `key` by an earlier build, unless the dependency caches hold a `-SNAPSHOT` (which may have
/// changed in its repository without any change here).
fn reusable(layers: &Path, app: &Path, key: &str) -> Option<(String, Vec<reuse::Component>)> {
    let caches = [
        layers.join("m2/repository"),
        layers.join("gradle-home/caches/modules-2/files-2.1"),
    ];
    if let Some(s) = reuse::snapshot(&caches) {
        println!(
            "Building again: the dependency cache holds a snapshot ({}), which may have changed since",
            s.strip_prefix(layers).unwrap_or(&s).display()
        );
        return None;
    }
    reuse::restore(layers, app, key)
}

/// On a reused jar: the tool layers restored from the cache declared again (the lifecycle restores their
/// metadata without `[types]`, and a layer left so is not kept for the next build).
fn keep_cache_layers(layers: &Path) -> Result<(), String> {
    for name in ["maven", "m2", "gradle", "gradle-home"] {
        let Ok(text) = fs_err::read_to_string(layers.join(format!("{name}.toml"))) else {
            continue;
        };
        if !layers.join(name).is_dir() {
            continue;
        }
        let doc: toml::Table = text.parse().unwrap_or_default();
        let meta: Vec<(&str, String)> = doc
            .get("metadata")
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        cache_layer_toml(layers, name, &meta)?;
    }
    Ok(())
}

/// The SBOM of the app's jars: a Spring Boot jar's libraries, or the app jar itself.
fn sbom_components(
    layers: &Path,
    app: &Path,
    jar: &str,
    spring_boot: bool,
    scratch: &Path,
) -> Result<Vec<reuse::Component>, String> {
    let mut components = if spring_boot {
        let groups = repository_groups(&layers.join("m2/repository"), &layers.join("gradle-home"));
        boot_libraries(&app.join(jar), scratch, &groups)?
    } else {
        Vec::new()
    };
    if components.is_empty()
        && let Some((Some(g), a, v)) = jar_coordinates(&app.join(jar))
    {
        components.push((a.clone(), v.clone(), format!("pkg:maven/{g}/{a}@{v}")));
    }
    components.sort();
    components.dedup();
    Ok(components)
}

/// The main attributes of a jar's manifest (continuation lines joined).
fn manifest(jar: &Path) -> Vec<(String, String)> {
    let text = sh(
        Command::new("unzip")
            .arg("-p")
            .arg(jar)
            .arg("META-INF/MANIFEST.MF"),
        "unzip",
    )
    .unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break; // the main section ends at the first blank line
        }
        if let Some(more) = line.strip_prefix(' ') {
            if let Some(last) = out.last_mut() {
                last.1.push_str(more);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn attribute<'a>(manifest: &'a [(String, String)], key: &str) -> Option<&'a str> {
    manifest
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The executable jar the build produced (`dir/*.jar` with a `Main-Class`), relative to the app.
fn built_jar(app: &Path, dir: &str) -> Result<String, String> {
    let mut jars: Vec<String> = fs_err::read_dir(app.join(dir))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    Path::new(n).extension().is_some_and(|x| x == "jar")
                        && !["-sources.jar", "-javadoc.jar", "-tests.jar", "-plain.jar"]
                            .iter()
                            .any(|s| n.ends_with(s))
                })
                .collect()
        })
        .unwrap_or_default();
    jars.sort();
    let executable = jars
        .iter()
        .find(|j| attribute(&manifest(&app.join(dir).join(j)), "Main-Class").is_some());
    match (executable, jars.first()) {
        (Some(j), _) => Ok(format!("{dir}/{j}")),
        (None, Some(j)) => Err(format!(
            "{dir}/{j}: the jar the build made has no Main-Class in META-INF/MANIFEST.MF, so `java -jar` cannot start it\n  fix: make it executable (Spring Boot's plugin, or the jar plugin's `mainClass` with the dependencies shaded in), or add a Procfile `web:` entry"
        )),
        (None, None) => Err(format!(
            "{dir}/: the build made no jar\n  fix: check that the build packages a jar (`<packaging>jar</packaging>`, or Gradle's `java`/`application` plugin)"
        )),
    }
}

/// Copies the shared libraries `objects` link that the run image lacks into `lib`; how many.
fn copy_libraries(objects: &[PathBuf], lib: &Path) -> Result<usize, String> {
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
                .filter(|p| p.starts_with('/'))
            else {
                continue;
            };
            let name = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = lib.join(&name);
            if RUN_IMAGE_LIBS.iter().any(|l| name.starts_with(l)) || dest.exists() {
                continue;
            }
            let real = fs_err::canonicalize(path).map_err(io)?;
            fs_err::copy(&real, &dest).map_err(io)?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn shared_objects(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs_err::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            shared_objects(&p, out);
        } else if p.extension().is_some_and(|x| x == "so") {
            out.push(p);
        }
    }
}

/// The `jre` launch layer: `jlink` of [`MODULES`], plus the libraries it links that the run image lacks, with
/// `JAVA_HOME` and the default JVM options for launch. Reused while the JDK and the module set are unchanged.
fn jre_layer(layers: &Path, version: &str) -> Result<PathBuf, String> {
    let layer = layers.join("jre");
    let key = cache_key(&format!(
        "{version}\0{}\0{}\0{JAVA_TOOL_OPTIONS}",
        MODULES.join(","),
        JLINK_OPTIONS.join(" ")
    ));
    if read_meta(layers, "jre", "key").as_deref() == Some(key.as_str())
        && layer.join("bin/java").is_file()
        && layer.join(".sbom.cdx.json").is_file()
    {
        println!("Reusing the JRE (Java {version}, jlink layer unchanged)");
        reuse_sbom(layers, "jre")?;
        // The lifecycle restores `jre.toml` without `[types]`: declared again, or the layer is let go.
        layer_toml(
            layers,
            "jre",
            false,
            &[("key", key), ("version", version.to_owned())],
        )?;
        return Ok(layer);
    }
    println!(
        "Making a JRE of Java {version} with jlink ({} modules: {})",
        MODULES.len(),
        MODULES.join(", ")
    );
    let _ = fs_err::remove_dir_all(&layer);
    sh(
        Command::new(format!("{JDK}/bin/jlink"))
            .arg("--add-modules")
            .arg(MODULES.join(","))
            .args(JLINK_OPTIONS)
            .arg("--output")
            .arg(&layer),
        "jlink",
    )?;
    // X11 and the splash screen: a server JRE runs headless, and the run image has no X libraries.
    for x in [
        "lib/libawt_xawt.so",
        "lib/libsplashscreen.so",
        "lib/libjawt.so",
    ] {
        let _ = fs_err::remove_file(layer.join(x));
    }
    let cacerts = layer.join("lib/security/cacerts");
    if fs_err::symlink_metadata(&cacerts).map_or(true, |m| !m.is_file()) {
        return Err(format!(
            "jlink made no regular lib/security/cacerts from {JDK} (a link to the build image's trust store would dangle in the run image)\n  fix: build with a stack whose JDK's java.base module carries its cacerts"
        ));
    }
    let mut objects = vec![layer.join("bin/java")];
    shared_objects(&layer.join("lib"), &mut objects);
    objects.sort();
    let copied = copy_libraries(&objects, &layer.join("lib"))?;
    println!("  {copied} shared libraries the run image lacks");
    let env = layer.join("env.launch");
    write(&env.join("JAVA_TOOL_OPTIONS.default"), JAVA_TOOL_OPTIONS)?;
    write(&env.join("JAVA_HOME.override"), &layer.to_string_lossy())?;
    write_sbom(
        &layers.join("jre.sbom.cdx.json"),
        &[(
            "openjdk".to_owned(),
            version.to_owned(),
            format!("pkg:generic/openjdk@{version}"),
        )],
    )?;
    layer_toml(
        layers,
        "jre",
        false,
        &[("key", key), ("version", version.to_owned())],
    )?;
    Ok(layer)
}

/// `(group, artifact, version)` of a library jar from its `META-INF/maven/*/*/pom.properties` (the one matching
/// its file name when it embeds several), else from its file name alone (`name-1.2.3.jar`).
fn jar_coordinates(jar: &Path) -> Option<(Option<String>, String, String)> {
    let file = jar.file_name()?.to_string_lossy().into_owned();
    let text = sh(
        Command::new("unzip")
            .arg("-p")
            .arg(jar)
            .arg("META-INF/maven/*/pom.properties"),
        "unzip",
    )
    .unwrap_or_default();
    let mut poms = Vec::new();
    let (mut g, mut a, mut v) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if let Some(x) = line.strip_prefix("groupId=") {
            g = Some(x.to_owned());
        } else if let Some(x) = line.strip_prefix("artifactId=") {
            a = Some(x.to_owned());
        } else if let Some(x) = line.strip_prefix("version=") {
            v = Some(x.to_owned());
        }
        if let (Some(gg), Some(aa), Some(vv)) = (&g, &a, &v) {
            poms.push((gg.clone(), aa.clone(), vv.clone()));
            (g, a, v) = (None, None, None);
        }
    }
    if let Some((g, a, v)) = poms
        .iter()
        .find(|(_, a, v)| file == format!("{a}-{v}.jar"))
        .or_else(|| poms.first())
    {
        return Some((Some(g.clone()), a.clone(), v.clone()));
    }
    let stem = file.strip_suffix(".jar")?;
    let at = stem
        .match_indices('-')
        .find(|(i, _)| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?
        .0;
    Some((None, stem[..at].to_owned(), stem[at + 1..].to_owned()))
}

/// Where the build's repositories keep each jar: file name -> group, from the layout of the Maven local
/// repository (`<group as dirs>/<artifact>/<version>/<artifact>-<version>.jar`) and Gradle's module cache
/// (`files-2.1/<group>/<artifact>/<version>/<sha1>/<file>`). Jars built by Gradle (Spring's own, Micrometer,
/// Tomcat) carry no `pom.properties`: their group comes from here.
fn repository_groups(maven: &Path, gradle: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        for e in fs_err::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) && depth < 16 {
                walk(&p, depth + 1, out);
            } else if p.extension().is_some_and(|x| x == "jar") {
                out.push(p);
            }
        }
    }
    let mut groups = std::collections::BTreeMap::new();
    let mut jars = Vec::new();
    walk(maven, 0, &mut jars);
    for jar in &jars {
        let Ok(rel) = jar.strip_prefix(maven) else {
            continue;
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if let [group @ .., artifact, version, file] = parts.as_slice()
            && !group.is_empty()
            && file.starts_with(&format!("{artifact}-{version}"))
        {
            groups
                .entry(file.clone())
                .or_insert_with(|| group.join("."));
        }
    }
    let files = gradle.join("caches/modules-2/files-2.1");
    let mut jars = Vec::new();
    walk(&files, 0, &mut jars);
    for jar in &jars {
        let Ok(rel) = jar.strip_prefix(&files) else {
            continue;
        };
        let parts: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        if let [group, _artifact, _version, _sha1, file] = parts.as_slice() {
            groups.entry(file.clone()).or_insert_with(|| group.clone());
        }
    }
    groups
}

/// The libraries of a Spring Boot jar (`BOOT-INF/lib/*.jar`) as SBOM components; `groups` names the group of
/// jars that carry no `pom.properties`.
fn boot_libraries(
    jar: &Path,
    scratch: &Path,
    groups: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(String, String, String)>, String> {
    let dir = scratch.join("boot-lib");
    let _ = fs_err::remove_dir_all(&dir);
    fs_err::create_dir_all(&dir).map_err(io)?;
    // Exit 11: no such entries (a jar without libraries).
    let _ = Command::new("unzip")
        .args(["-q", "-o", "-j"])
        .arg(jar)
        .arg("BOOT-INF/lib/*.jar")
        .arg("-d")
        .arg(&dir)
        .status();
    let mut libs: Vec<PathBuf> = fs_err::read_dir(&dir)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .collect();
    libs.sort();
    let mut out = Vec::new();
    for lib in &libs {
        if let Some((group, artifact, version)) = jar_coordinates(lib) {
            let file = lib
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let group = group.or_else(|| groups.get(&file).cloned());
            let purl = match &group {
                Some(g) => format!("pkg:maven/{g}/{artifact}@{version}"),
                None => format!("pkg:generic/{artifact}@{version}"),
            };
            out.push((artifact, version, purl));
        }
    }
    let _ = fs_err::remove_dir_all(&dir);
    Ok(out)
}

#[allow(clippy::too_many_lines)] // the build in the order it happens
fn run_build() -> Result<u8, String> {
    let layers = env_path("CNB_LAYERS_DIR", 1)?;
    let app = std::env::current_dir().map_err(io)?;
    let report: Report = detect(&app);
    for f in &report.findings {
        eprintln!("{f}");
    }
    if report.failed() {
        return Ok(1);
    }
    let version = jdk_version()?;
    println!("Building on JDK {version} ({JDK}, the build image's openjdk-17)");
    if let Some(r) = &report.runtime {
        println!("Java version requested: {} ({})", r.value, r.source);
    }
    let tool = report
        .package_manager
        .as_ref()
        .map(|p| (p.value.clone(), p.source.clone()))
        .unwrap_or_default();
    let builds = matches!(tool.0.as_str(), "maven" | "mvnw" | "gradle");
    let key = if builds {
        Some(reuse::key(&app, &build_inputs(&tool.0, &version))?)
    } else {
        None
    };
    let reused = key.as_deref().and_then(|k| reusable(&layers, &app, k));
    // No JVM runs for a reused jar: the trust store (a JVM of its own) is made only when one will.
    let env = if reused.is_none() {
        Some(JavaEnv::new()?)
    } else {
        None
    };
    let jar = match (&reused, &env, tool.0.as_str()) {
        (Some((jar, _)), _, _) => {
            println!("Reusing the application jar {jar} (source, tools and settings unchanged)");
            keep_cache_layers(&layers)?;
            jar.clone()
        }
        (None, Some(env), "maven" | "mvnw") => {
            maven_build(&layers, &app, env, tool.0 == "mvnw")?;
            built_jar(&app, "target")?
        }
        (None, Some(env), "gradle") => {
            gradle_build(&layers, &app, env)?;
            built_jar(&app, "build/libs")?
        }
        _ => tool.1.clone(),
    };
    let mf = manifest(&app.join(&jar));
    let main_class = attribute(&mf, "Main-Class").unwrap_or("");
    let spring_boot = main_class.starts_with("org.springframework.boot.loader.");
    let has_web = report.processes.iter().any(|(k, _)| k == "web");
    if main_class.is_empty() && !has_web {
        return Err(format!(
            "{jar}: no Main-Class in META-INF/MANIFEST.MF, so `java -jar` cannot start it\n  fix: commit an executable jar (one with a Main-Class), or add a Procfile `web:` entry"
        ));
    }
    println!(
        "Application jar: {jar} (Main-Class {main_class}{})",
        attribute(&mf, "Start-Class")
            .map_or_else(String::new, |s| format!(", Spring Boot, Start-Class {s}"))
    );
    jre_layer(&layers, &version)?;
    let reused_jar = reused.is_some();
    let components = match (reused, &env) {
        (Some((_, components)), _) => components,
        (None, Some(env)) => sbom_components(&layers, &app, &jar, spring_boot, &env.scratch)?,
        (None, None) => Vec::new(),
    };
    // The tool's output directory, kept for the next build with the jar's SBOM.
    let out = if tool.0 == "gradle" {
        "build"
    } else {
        "target"
    };
    match (&key, reused_jar) {
        (Some(key), true) => reuse::declare(&layers, key, (out, &jar))?,
        (Some(key), false) => reuse::save(&layers, &app, (out, &jar), key, &components)?,
        _ => {}
    }
    println!("  {} jars in the SBOM", components.len());
    if !components.is_empty() {
        write_sbom(&layers.join("launch.sbom.cdx.json"), &components)?;
    }
    let port = if spring_boot
        || report
            .start
            .as_ref()
            .is_some_and(|s| s.value.contains("-Dserver.port"))
    {
        "-Dserver.port=${PORT:-8080} "
    } else {
        ""
    };
    let start = format!("exec java {port}-jar {jar}");
    let mut procs: Vec<(String, String)> = report.processes.clone();
    if !has_web {
        procs.insert(0, ("web".into(), start.clone()));
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
    println!(
        "Start command: {}",
        procs
            .iter()
            .find(|(k, _)| k == "web")
            .map_or(start.as_str(), |(_, c)| c.as_str())
    );
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
    use super::find_binding;

    #[test]
    fn maven_binding_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        for (name, kind, file) in [
            ("a-ca", "ca-certificates", "ca.crt"),
            ("b-other", "maven", "other.xml"),
            ("c-maven", "Maven\n", "settings.xml"),
        ] {
            fs_err::create_dir_all(b.join(name)).unwrap();
            fs_err::write(b.join(name).join("type"), kind).unwrap();
            fs_err::write(b.join(name).join(file), "x").unwrap();
        }
        let (name, path) = find_binding(b, "maven", "settings.xml").unwrap();
        assert_eq!(name, "c-maven");
        assert_eq!(path, b.join("c-maven/settings.xml"));
        assert!(find_binding(&b.join("none"), "maven", "settings.xml").is_none());
    }
}
