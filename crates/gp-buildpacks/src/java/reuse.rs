//! Reusing the last build's jar when nothing that made it changed: the app's files (the build tool's output
//! directories left out), the tool and its version, the JDK, the repositories and settings, and this buildpack's
//! version. A CNB rebuild runs the buildpack again even when the source is the same; without this, every rebuild
//! pays a JVM start, the build tool's reactor and a repackaged jar (3–4 s for a small Spring Boot app).
//!
//! Never reused when the dependency caches hold `-SNAPSHOT` artifacts: those change in their repository without
//! any change here, and Maven or Gradle would fetch the newer one.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The cache layer holding the last build's output directory (with the jar) and the jar's SBOM components.
pub const LAYER: &str = "app-output";

/// An SBOM component: name, version, purl.
pub type Component = (String, String, String);

/// Build tools' output directories: `target` beside a `pom.xml`, `build` beside a Gradle build file, `.gradle`.
fn is_output(dir: &Path, name: &str) -> bool {
    match name {
        "target" => dir.join("pom.xml").is_file(),
        "build" => dir.join("build.gradle").is_file() || dir.join("build.gradle.kts").is_file(),
        ".gradle" => true,
        _ => false,
    }
}

/// Hashes every file under `dir` (path, executable bit, content; a symbolic link's target), in name order.
fn hash_tree(base: &Path, rel: &Path, hasher: &mut Sha256, depth: usize) -> Result<(), String> {
    if depth > 64 {
        return Err(format!(
            "{}: directories nested more than 64 deep",
            rel.display()
        ));
    }
    let dir = base.join(rel);
    for e in gp_buildpacks::support::sorted_entries(&dir).map_err(|e| e.to_string())? {
        let name = e.file_name();
        let path = rel.join(&name);
        let meta = fs_err::symlink_metadata(e.path()).map_err(|e| e.to_string())?;
        let label = path.to_string_lossy();
        if meta.is_dir() {
            if is_output(&dir, &name.to_string_lossy()) {
                continue;
            }
            hasher.update(format!("d {label}\0").as_bytes());
            hash_tree(base, &path, hasher, depth + 1)?;
        } else if meta.file_type().is_symlink() {
            let target = fs_err::read_link(e.path()).map_err(|e| e.to_string())?;
            hasher.update(format!("l {label}\0{}\0", target.display()).as_bytes());
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            hasher.update(format!("f {label} {exec} {}\0", meta.len()).as_bytes());
            let mut f = fs_err::File::open(e.path()).map_err(|e| e.to_string())?;
            std::io::copy(&mut f, hasher).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The SHA-256 of a file's content (`sha256:…`).
pub fn file_digest(path: &Path) -> Result<String, String> {
    let mut hasher = Sha256::new();
    let mut f = fs_err::File::open(path).map_err(|e| e.to_string())?;
    std::io::copy(&mut f, &mut hasher).map_err(|e| e.to_string())?;
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// The key of a build of `app` with `inputs` (tool, versions, settings: anything else that decides the jar).
pub fn key(app: &Path, inputs: &[(&str, String)]) -> Result<String, String> {
    let mut hasher = Sha256::new();
    for (k, v) in inputs {
        hasher.update(format!("{k}={v}\0").as_bytes());
    }
    hash_tree(app, Path::new(""), &mut hasher, 0)?;
    Ok(format!("sha256:{:x}", hasher.finalize()))
}

/// The first `-SNAPSHOT` artifact directory under `dirs` (Maven's local repository, Gradle's module cache).
pub fn snapshot(dirs: &[PathBuf]) -> Option<PathBuf> {
    fn walk(dir: &Path, depth: usize) -> Option<PathBuf> {
        if depth > 12 {
            return None;
        }
        for e in fs_err::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy().ends_with("-SNAPSHOT") {
                return Some(p);
            }
            if let Some(found) = walk(&p, depth + 1) {
                return Some(found);
            }
        }
        None
    }
    dirs.iter().find_map(|d| walk(d, 0))
}

/// A path relative to the app, as this buildpack writes them (no `..`, not absolute).
fn below(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// `cp -a FROM/. TO`: a tree with its modes and links.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    fs_err::create_dir_all(to).map_err(|e| e.to_string())?;
    gp_buildpacks::support::sh(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(from.join("."))
            .arg(to),
        "cp -a",
    )
    .map(drop)
}

/// The jar (relative to the app) and SBOM components the last build kept under `key`; its output directory is
/// copied back into the app, so that the image is the one the build tool would have made.
pub fn restore(layers: &Path, app: &Path, key: &str) -> Option<(String, Vec<Component>)> {
    let meta = |k: &str| gp_buildpacks::support::read_meta(layers, LAYER, k);
    if meta("key").as_deref() != Some(key) {
        return None;
    }
    let (jar, out) = (meta("jar")?, meta("output")?);
    if !below(&jar) || !below(&out) {
        return None;
    }
    let layer = layers.join(LAYER);
    let components: Vec<Component> =
        serde_json::from_str(&fs_err::read_to_string(layer.join("components.json")).ok()?).ok()?;
    copy_tree(&layer.join("output"), &app.join(&out)).ok()?;
    app.join(&jar).is_file().then_some((jar, components))
}

/// Keeps the output directory `out` (with `jar` in it; both relative to the app) and the jar's SBOM
/// `components` under `key` for the next build.
pub fn save(
    layers: &Path,
    app: &Path,
    (out, jar): (&str, &str),
    key: &str,
    components: &[Component],
) -> Result<(), String> {
    let layer = layers.join(LAYER);
    let _ = fs_err::remove_dir_all(&layer);
    copy_tree(&app.join(out), &layer.join("output"))?;
    gp_buildpacks::support::write(
        &layer.join("components.json"),
        &serde_json::to_string(components).map_err(|e| e.to_string())?,
    )?;
    declare(layers, key, (out, jar))
}

/// Writes the layer's `<layers>/app-output.toml`: a cache layer (never in the image) with its key and jar. A
/// reused layer is declared again, or the lifecycle lets it go.
pub fn declare(layers: &Path, key: &str, (out, jar): (&str, &str)) -> Result<(), String> {
    let s = |v: &str| toml::Value::String(v.to_owned());
    gp_buildpacks::support::write(
        &layers.join(format!("{LAYER}.toml")),
        &format!(
            "[types]\nlaunch = false\nbuild = false\ncache = true\n\n[metadata]\nkey = {}\noutput = {}\njar = {}\n",
            s(key),
            s(out),
            s(jar)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_source_and_not_the_build_output() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path();
        fs_err::create_dir_all(app.join("src/main/java/target")).unwrap();
        fs_err::write(app.join("pom.xml"), "<project/>").unwrap();
        fs_err::write(app.join("src/main/java/target/A.java"), "class A {}").unwrap();
        let inputs = [("tool", "maven".to_owned())];
        let first = key(app, &inputs).unwrap();
        // Output of a build changes nothing.
        fs_err::create_dir_all(app.join("target")).unwrap();
        fs_err::write(app.join("target/app.jar"), "jar").unwrap();
        assert_eq!(key(app, &inputs).unwrap(), first);
        // A source change does, also in a package named `target`; so does another tool version.
        fs_err::write(app.join("src/main/java/target/A.java"), "class A { }").unwrap();
        let changed = key(app, &inputs).unwrap();
        assert_ne!(changed, first);
        assert_ne!(key(app, &[("tool", "mvnw".to_owned())]).unwrap(), changed);
    }

    #[test]
    fn a_kept_jar_comes_back_only_under_its_key() {
        let d = tempfile::tempdir().unwrap();
        let (layers, app) = (d.path().join("layers"), d.path().join("app"));
        fs_err::create_dir_all(app.join("target/classes")).unwrap();
        fs_err::write(app.join("target/app.jar"), "jar bytes").unwrap();
        fs_err::write(app.join("target/classes/A.class"), "class").unwrap();
        let comps = vec![("a".to_owned(), "1".to_owned(), "pkg:maven/g/a@1".to_owned())];
        save(&layers, &app, ("target", "target/app.jar"), "k1", &comps).unwrap();
        fs_err::remove_dir_all(app.join("target")).unwrap();
        assert!(restore(&layers, &app, "k2").is_none());
        let (jar, back) = restore(&layers, &app, "k1").unwrap();
        assert_eq!((jar.as_str(), back), ("target/app.jar", comps));
        assert_eq!(
            fs_err::read_to_string(app.join("target/app.jar")).unwrap(),
            "jar bytes"
        );
        assert!(
            app.join("target/classes/A.class").is_file(),
            "the whole output directory"
        );
    }

    #[test]
    fn snapshots_in_a_repository_are_found() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("m2/repository");
        fs_err::create_dir_all(repo.join("org/x/lib/1.0")).unwrap();
        assert!(snapshot(std::slice::from_ref(&repo)).is_none());
        fs_err::create_dir_all(repo.join("org/x/dev/2.0-SNAPSHOT")).unwrap();
        assert!(snapshot(&[repo]).unwrap().ends_with("2.0-SNAPSHOT"));
    }
}
