//! Stack images from Debian packages: a build image and a run image made by `mmdebstrap` from a `stack.toml`, each
//! with the CNB user, the `io.buildpacks.base.*` labels and target, and a `CycloneDX` SBOM of its packages.
//!
//! The root filesystem tar that mmdebstrap writes (reproducible for the same package versions, with
//! `SOURCE_DATE_EPOCH` fixed) becomes the image's layer byte for byte; a second small layer holds the SBOM at
//! [`SBOM_PATH`]. Same packages in, same digests out; a package update gives a new run-image digest, which is what
//! fleet patching watches.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use gp_oci::image::{ImageConfig, add_layer, add_tar_layer, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::{Desc, Layout};
use serde::Deserialize;

/// Where the package SBOM sits in stack images.
pub const SBOM_PATH: &str = "usr/share/goldenpath/sbom.cdx.json";
/// The fixed time of every stack build (file times, user database), for reproducible images.
pub const SOURCE_DATE_EPOCH: &str = "1700000000";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackToml {
    /// `io.buildpacks.base.id`-style identifier, e.g. `io.goldenpath.stacks.bookworm`.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    pub debian: DebianSource,
    #[serde(default)]
    pub user: CnbUser,
    pub build: ImagePackages,
    pub run: ImagePackages,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    /// `bookworm`, `trixie`, ...
    pub suite: String,
    /// APT source lines or mirror URLs (security included here). Empty: this machine's APT sources.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Components, default `main`.
    #[serde(default)]
    pub components: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnbUser {
    #[serde(default = "default_id")]
    pub uid: u32,
    #[serde(default = "default_id")]
    pub gid: u32,
    #[serde(default = "default_name")]
    pub name: String,
}

fn default_id() -> u32 {
    1000
}

fn default_name() -> String {
    "cnb".into()
}

impl Default for CnbUser {
    fn default() -> Self {
        Self {
            uid: default_id(),
            gid: default_id(),
            name: default_name(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePackages {
    /// Packages on top of Debian's `minbase` variant.
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(
        "`mmdebstrap` is not installed: `apt-get install mmdebstrap` (it builds the root filesystems)"
    )]
    NoMmdebstrap,
    #[error("mmdebstrap failed for the {which} image (exit {code}); last output:\n{tail}")]
    Mmdebstrap {
        which: &'static str,
        code: i32,
        tail: String,
    },
    #[error("the {which} image's root filesystem: {message}")]
    Rootfs {
        which: &'static str,
        message: String,
    },
    #[error("{0}")]
    Image(String),
}

fn img(e: impl std::fmt::Display) -> StackError {
    StackError::Image(e.to_string())
}

/// Reads and checks `stack.toml`.
pub fn load(path: &Path) -> Result<StackToml, StackError> {
    let cfg = |message: String| StackError::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = fs_err::read_to_string(path).map_err(|e| cfg(e.to_string()))?;
    parse(&text, path)
}

/// Parses and checks the text of a `stack.toml`; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<StackToml, StackError> {
    let cfg = |message: String| StackError::Config {
        path: path.to_path_buf(),
        message,
    };
    let s: StackToml = toml::from_str(text).map_err(|e| cfg(e.to_string()))?;
    if s.debian.suite.is_empty()
        || !s
            .debian
            .suite
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(cfg(format!(
            "`debian.suite` = `{}` is not a Debian suite name (e.g. `bookworm`)",
            s.debian.suite
        )));
    }
    for p in s.build.packages.iter().chain(&s.run.packages) {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
        if !ok {
            return Err(cfg(format!(
                "package `{p}` is not a Debian package name (lowercase letters, digits, `+`, `-`, `.`)"
            )));
        }
    }
    if s.user.uid == 0 || s.user.gid == 0 {
        return Err(cfg(
            "`user.uid`/`user.gid` must not be 0: buildpacks and apps run unprivileged".into(),
        ));
    }
    Ok(s)
}

/// One installed Debian package, from `/var/lib/dpkg/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub source: Option<String>,
}

/// The installed packages of a dpkg status file, sorted by name.
#[must_use]
pub fn parse_dpkg_status(text: &str) -> Vec<DebPackage> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut fields = BTreeMap::new();
        for line in para.lines() {
            if line.starts_with(' ') {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let installed = fields
            .get("Status")
            .is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(name), Some(version)) =
            (installed, fields.get("Package"), fields.get("Version"))
        {
            out.push(DebPackage {
                name: (*name).to_owned(),
                version: (*version).to_owned(),
                arch: fields.get("Architecture").unwrap_or(&"all").to_string(),
                source: fields
                    .get("Source")
                    .map(|s| s.split_whitespace().next().unwrap_or(s).to_owned()),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The package URL of a Debian package, as SBOM tools write it.
#[must_use]
pub fn deb_purl(p: &DebPackage, distro: &str, distro_version: &str) -> String {
    let upstream = match &p.source {
        Some(src) if src != &p.name => format!("&upstream={src}"),
        _ => String::new(),
    };
    format!(
        "pkg:deb/{distro}/{}@{}?arch={}{upstream}&distro={distro}-{distro_version}",
        p.name,
        p.version.replace(':', "%3A"),
        p.arch
    )
}

/// A `CycloneDX` 1.5 SBOM of `packages`.
#[must_use]
pub fn cyclonedx(
    packages: &[DebPackage],
    distro: &str,
    distro_version: &str,
    name: &str,
) -> String {
    let components: Vec<serde_json::Value> = packages
        .iter()
        .map(|p| {
            let purl = deb_purl(p, distro, distro_version);
            serde_json::json!({
                "type": "library",
                "bom-ref": purl,
                "name": p.name,
                "version": p.version,
                "purl": purl,
            })
        })
        .collect();
    let bom = serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "component": {"type": "container", "name": name},
            "tools": {"components": [{"type": "application", "name": "goldenpath", "version": env!("CARGO_PKG_VERSION")}]},
        },
        "components": components,
    });
    serde_json::to_string_pretty(&bom).unwrap_or_default()
}

/// What a stack build produced for one image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub desc: Desc,
    pub packages: Vec<DebPackage>,
    /// The layers' bytes as stored and pushed (compressed).
    pub compressed: u64,
    /// The root filesystem's bytes unpacked (the tar's length).
    pub unpacked: u64,
}

impl BuiltImage {
    /// `N Debian packages, X MiB compressed (Y MiB unpacked)`.
    #[must_use]
    pub fn summary(&self) -> String {
        #[allow(clippy::cast_precision_loss)] // sizes shown to one decimal
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        format!(
            "{} Debian packages, {:.1} MiB compressed ({:.1} MiB unpacked)",
            self.packages.len(),
            mib(self.compressed),
            mib(self.unpacked)
        )
    }
}

/// Builds the `which` (`build` or `run`) image of `stack` into `out` with `tag`. `scratch` holds the rootfs tar.
pub fn build_image(
    stack: &StackToml,
    which: &'static str,
    scratch: &Path,
    out: &Layout,
    tag: &str,
) -> Result<BuiltImage, StackError> {
    let packages = if which == "build" {
        &stack.build.packages
    } else {
        &stack.run.packages
    };
    fs_err::create_dir_all(scratch).map_err(img)?;
    let tar_path = scratch.join(format!("{which}.tar"));
    mmdebstrap(stack, which, packages, &tar_path)?;
    let (status, os_release) = read_rootfs_files(&tar_path, which)?;
    let packages = parse_dpkg_status(&status);
    let release = parse_os_release(&os_release);
    let distro = release
        .get("ID")
        .cloned()
        .unwrap_or_else(|| "debian".into());
    let version = release.get("VERSION_ID").cloned().unwrap_or_default();

    let file = fs_err::File::open(&tar_path).map_err(img)?;
    let unpacked = file.metadata().map_err(img)?.len();
    let base = add_tar_layer(out, std::io::BufReader::new(file), 6).map_err(img)?;
    let sbom = cyclonedx(
        &packages,
        &distro,
        &version,
        &format!("{}-{which}", stack.id),
    );
    let mut entries = Vec::new();
    let mut acc = String::new();
    let parent = Path::new(SBOM_PATH)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    for part in parent.split('/') {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        entries.push(Entry {
            path: acc.clone(),
            kind: Kind::Dir,
            executable: true,
        });
    }
    entries.push(Entry {
        path: SBOM_PATH.into(),
        kind: Kind::File(Source::Bytes(sbom.into_bytes())),
        executable: false,
    });
    let sbom_layer = add_layer(out, &entries, &LayerOptions::default()).map_err(img)?;
    let user = &stack.user;
    let mut labels = BTreeMap::new();
    labels.insert("io.buildpacks.base.id".into(), stack.id.clone());
    labels.insert("io.buildpacks.stack.id".into(), stack.id.clone());
    labels.insert("io.buildpacks.base.distro.name".into(), distro.clone());
    labels.insert("io.buildpacks.base.distro.version".into(), version.clone());
    labels.insert(
        "io.buildpacks.base.description".into(),
        stack
            .description
            .clone()
            .unwrap_or_else(|| format!("{distro} {} {which} image", stack.debian.suite)),
    );
    labels.insert("io.buildpacks.base.maintainer".into(), "goldenpath".into());
    labels.insert("io.goldenpath.sbom".into(), format!("/{SBOM_PATH}"));
    if which == "run" {
        labels.insert("io.buildpacks.rebasable".into(), "true".into());
    }
    let config = ImageConfig {
        user: Some(format!("{}:{}", user.uid, user.gid)),
        env: vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("CNB_USER_ID={}", user.uid),
            format!("CNB_GROUP_ID={}", user.gid),
        ],
        labels,
        ..ImageConfig::default()
    };
    let compressed = base.size + sbom_layer.size;
    let desc = write_image(out, tag, &[base, sbom_layer], &config).map_err(img)?;
    let _ = fs_err::remove_file(&tar_path);
    Ok(BuiltImage {
        desc,
        packages,
        compressed,
        unpacked,
    })
}

fn mmdebstrap(
    stack: &StackToml,
    which: &'static str,
    packages: &[String],
    tar_path: &Path,
) -> Result<(), StackError> {
    let user = &stack.user;
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--variant=minbase")
        .arg("--format=tar")
        .arg("--quiet")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    if !packages.is_empty() {
        cmd.arg(format!("--include={}", packages.join(",")));
    }
    if !stack.debian.components.is_empty() {
        cmd.arg(format!(
            "--components={}",
            stack.debian.components.join(",")
        ));
    }
    // The CNB user, with its home; `/workspace` and `/layers` belong to it as the lifecycle expects.
    cmd.arg(format!(
        "--customize-hook=chroot \"$1\" groupadd --gid {gid} {name} && chroot \"$1\" useradd --uid {uid} --gid {gid} --create-home --home-dir /home/{name} --shell /bin/bash {name} && mkdir -p \"$1/workspace\" \"$1/layers\" && chown {uid}:{gid} \"$1/workspace\" \"$1/layers\"",
        uid = user.uid,
        gid = user.gid,
        name = user.name,
    ));
    if which == "run" {
        // Minimal: no documentation, manuals or translations (copyright files stay), no APT caches or lists.
        for opt in [
            "path-exclude=/usr/share/man/*",
            "path-exclude=/usr/share/locale/*",
            "path-exclude=/usr/share/doc/*",
            "path-include=/usr/share/doc/*/copyright",
        ] {
            cmd.arg(format!("--dpkgopt={opt}"));
        }
    }
    cmd.arg("--customize-hook=rm -rf \"$1\"/var/cache/apt/* \"$1\"/var/lib/apt/lists/* \"$1\"/var/log/* \"$1\"/var/cache/ldconfig/aux-cache")
        .arg(&stack.debian.suite)
        .arg(tar_path);
    for m in &stack.debian.mirrors {
        cmd.arg(m);
    }
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StackError::NoMmdebstrap
        } else {
            img(e)
        }
    })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = text.lines().collect();
        return Err(StackError::Mmdebstrap {
            which,
            code: out.status.code().unwrap_or(-1),
            tail: lines[lines.len().saturating_sub(15)..].join("\n"),
        });
    }
    Ok(())
}

/// `/var/lib/dpkg/status` and `os-release` from the rootfs tar.
fn read_rootfs_files(tar_path: &Path, which: &'static str) -> Result<(String, String), StackError> {
    let rootfs = |message: String| StackError::Rootfs { which, message };
    let file = fs_err::File::open(tar_path).map_err(|e| rootfs(e.to_string()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let (mut status, mut release) = (None, None);
    for entry in archive.entries().map_err(|e| rootfs(e.to_string()))? {
        let mut entry = entry.map_err(|e| rootfs(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| rootfs(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let slot = match path.as_str() {
            "var/lib/dpkg/status" => &mut status,
            "usr/lib/os-release" => &mut release,
            _ => continue,
        };
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| rootfs(format!("{path}: {e}")))?;
        *slot = Some(text);
    }
    Ok((
        status.ok_or_else(|| rootfs("no /var/lib/dpkg/status".into()))?,
        release.unwrap_or_default(),
    ))
}

fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_to_purls() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n continued\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 1:2024a-0+deb12u1\n";
        let p = parse_dpkg_status(status);
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["bash", "libc6", "tzdata"]
        );
        assert_eq!(
            deb_purl(&p[1], "debian", "12"),
            "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&upstream=glibc&distro=debian-12"
        );
        assert_eq!(
            deb_purl(&p[2], "debian", "12"),
            "pkg:deb/debian/tzdata@1%3A2024a-0+deb12u1?arch=all&distro=debian-12"
        );
        let bom: serde_json::Value =
            serde_json::from_str(&cyclonedx(&p, "debian", "12", "x-run")).unwrap();
        assert_eq!(bom["components"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("stack.toml");
        fs_err::write(
            &path,
            "id = \"x\"\n[debian]\nsuite = \"bookworm\"\n[build]\npackages = [\"Bash\"]\n[run]\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("package `Bash`"), "{e}");
        fs_err::write(
            &path,
            "id = \"x\"\n[debian]\nsuite = \"bookworm\"\n[build]\n[run]\n[user]\nuid = 0\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("must not be 0"), "{e}");
    }
}
