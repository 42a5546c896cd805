//! The target buildpacks build for: the run image's `os`, `architecture` and `variant`, and its distribution
//! (`io.buildpacks.base.distro.*` labels, else its `/etc/os-release`), handed to `bin/detect` and `bin/build` as
//! `CNB_TARGET_OS`, `CNB_TARGET_ARCH`, `CNB_TARGET_ARCH_VARIANT`, `CNB_TARGET_DISTRO_NAME` and
//! `CNB_TARGET_DISTRO_VERSION` (Buildpack API, "Targets").
//!
//! Without a run image (or when it says nothing), the target is the image the phases run in: this machine's
//! architecture and the build image's `/etc/os-release` (the spec has build and run images agree on all of it).

use std::path::Path;

use gp_cnb::{Distro, Target};

pub const OS: &str = "CNB_TARGET_OS";
pub const ARCH: &str = "CNB_TARGET_ARCH";
pub const ARCH_VARIANT: &str = "CNB_TARGET_ARCH_VARIANT";
pub const DISTRO_NAME: &str = "CNB_TARGET_DISTRO_NAME";
pub const DISTRO_VERSION: &str = "CNB_TARGET_DISTRO_VERSION";

/// The `CNB_TARGET_*` variables for `target` (those it has a value for), in the spec's order.
#[must_use]
pub fn env_vars(target: &Target) -> Vec<(&'static str, String)> {
    let distro = target.distro.clone().unwrap_or_default();
    [
        (OS, target.os.clone()),
        (ARCH, target.arch.clone()),
        (ARCH_VARIANT, target.variant.clone()),
        (DISTRO_NAME, distro.name),
        (DISTRO_VERSION, distro.version),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.filter(|v| !v.is_empty())?)))
    .collect()
}

/// The target a platform handed down in `CNB_TARGET_*` of this process's environment.
#[must_use]
pub fn from_env() -> Target {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (name, version) = (var(DISTRO_NAME), var(DISTRO_VERSION));
    Target {
        id: None,
        os: var(OS),
        arch: var(ARCH),
        variant: var(ARCH_VARIANT),
        distro: (name.is_some() || version.is_some()).then_some(Distro { name, version }),
    }
}

/// `ID` and `VERSION_ID` of an `os-release` file (quotes removed); `None` when it names neither.
#[must_use]
pub fn parse_os_release(text: &str) -> Option<Distro> {
    let mut distro = Distro::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_owned();
        match key.trim() {
            "ID" if !value.is_empty() => distro.name = Some(value),
            "VERSION_ID" if !value.is_empty() => distro.version = Some(value),
            _ => {}
        }
    }
    (distro.name.is_some() || distro.version.is_some()).then_some(distro)
}

/// The distribution of the root filesystem at `root` (`etc/os-release`, else `usr/lib/os-release`).
#[must_use]
pub fn distro_of_root(root: &Path) -> Option<Distro> {
    ["etc/os-release", "usr/lib/os-release"]
        .iter()
        .find_map(|f| parse_os_release(&fs_err::read_to_string(root.join(f)).ok()?))
}

/// Fills what `target` lacks from the image the phases run in: OS `linux`, this machine's architecture, and the
/// distribution of the root filesystem at `root` (`/` inside the build image).
#[must_use]
pub fn or_running(mut target: Target, root: &Path) -> Target {
    if target.os.is_none() {
        target.os = Some(std::env::consts::OS.to_owned());
    }
    if target.arch.is_none() {
        target.arch = Some(host_arch().to_owned());
    }
    let known = target.distro.clone().unwrap_or_default();
    if (known.name.is_none() || known.version.is_none())
        && let Some(found) = distro_of_root(root)
    {
        target.distro = Some(fill(known, found));
    }
    target
}

/// `known`, with the fields it lacks taken from `found`.
fn fill(known: Distro, found: Distro) -> Distro {
    Distro {
        name: known.name.or(found.name),
        version: known.version.or(found.version),
    }
}

pub use gp_cnb::host_arch;

/// The target of an image from its config (`os`, `architecture`, `variant`, the `io.buildpacks.base.id` and
/// `io.buildpacks.base.distro.*` labels); `os_release` is consulted when the labels name no distribution.
#[cfg(feature = "host")]
#[must_use]
pub fn from_image_config(
    config: &gp_oci::spec::ConfigFile,
    os_release: impl FnOnce() -> Option<String>,
) -> Target {
    let text = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    let name = text(config.label(gp_cnb::base_labels::BASE_DISTRO_NAME));
    let version = text(config.label(gp_cnb::base_labels::BASE_DISTRO_VERSION));
    // Each label wins over the os-release field it names; os-release fills what the labels leave out.
    let labelled = Distro { name, version };
    let distro = if labelled.name.is_some() && labelled.version.is_some() {
        Some(labelled)
    } else {
        match os_release().as_deref().and_then(parse_os_release) {
            Some(found) => Some(fill(labelled, found)),
            None => (labelled.name.is_some() || labelled.version.is_some()).then_some(labelled),
        }
    };
    Target {
        id: text(config.label(gp_cnb::base_labels::BASE_ID)),
        os: text(config.os()),
        arch: text(config.architecture()),
        variant: text(config.variant()),
        distro,
    }
}

/// The run image's target, read from its config and, when its labels name no distribution, from the
/// `etc/os-release` (or `usr/lib/os-release`) of its top-most layer that has one.
#[cfg(feature = "host")]
#[must_use]
pub fn of_image(layout: &gp_oci::layout::Layout, desc: &gp_oci::layout::Desc) -> Option<Target> {
    let img = gp_oci::image::read_image(layout, desc).ok()?;
    Some(from_image_config(&img.config, || {
        img.layers
            .iter()
            .rev()
            .find_map(|l| os_release_in_layer(layout, l))
    }))
}

#[cfg(feature = "host")]
fn os_release_in_layer(
    layout: &gp_oci::layout::Layout,
    layer: &gp_oci::layout::Desc,
) -> Option<String> {
    use std::io::Read;
    let reader = gp_oci::image::open_layer(layout, layer).ok()?;
    let mut archive = tar::Archive::new(reader);
    let mut fallback = None;
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if path != "etc/os-release" && path != "usr/lib/os-release" {
            continue;
        }
        let is_etc = path == "etc/os-release";
        let mut text = String::new();
        // An os-release file is a few hundred bytes; more is not one.
        entry
            .by_ref()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .ok()?;
        if is_etc {
            return Some(text);
        }
        fallback = Some(text);
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_gives_id_and_version_id_without_quotes() {
        let text = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"24.04\"\nID_LIKE=debian\n";
        assert_eq!(parse_os_release(text), Some(Distro::new("ubuntu", "24.04")));
        assert_eq!(parse_os_release("NAME=nothing\n"), None);
    }

    #[cfg(feature = "host")]
    fn config_of(v: serde_json::Value) -> gp_oci::spec::ConfigFile {
        serde_json::from_value(v).unwrap()
    }

    #[cfg(feature = "host")]
    #[test]
    fn labels_win_over_os_release_and_every_known_field_becomes_a_variable() {
        let config = config_of(serde_json::json!({
            "os": "linux", "architecture": "arm", "variant": "v7",
            "config": {"Labels": {
                "io.buildpacks.base.distro.name": "debian",
                "io.buildpacks.base.distro.version": "12"
            }}
        }));
        let t = from_image_config(&config, || Some("ID=alpine\nVERSION_ID=3.20\n".into()));
        assert_eq!(
            env_vars(&t),
            [
                (OS, "linux".to_owned()),
                (ARCH, "arm".to_owned()),
                (ARCH_VARIANT, "v7".to_owned()),
                (DISTRO_NAME, "debian".to_owned()),
                (DISTRO_VERSION, "12".to_owned()),
            ]
        );
        let bare = config_of(serde_json::json!({"os": "linux", "architecture": "amd64"}));
        let t = from_image_config(&bare, || Some("ID=alpine\nVERSION_ID=3.20\n".into()));
        assert_eq!(t.distro, Some(Distro::new("alpine", "3.20")));
        assert_eq!(t.variant, None);
        let half = config_of(
            serde_json::json!({"config": {"Labels": {"io.buildpacks.base.distro.name": "debian"}}}),
        );
        let t = from_image_config(&half, || Some("ID=alpine\nVERSION_ID=3.20\n".into()));
        assert_eq!(t.distro, Some(Distro::new("debian", "3.20")));
    }

    #[test]
    fn the_running_image_fills_what_the_run_image_does_not_say() {
        let tmp = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(tmp.path().join("usr/lib")).unwrap();
        fs_err::write(
            tmp.path().join("usr/lib/os-release"),
            "ID=ubuntu\nVERSION_ID=\"22.04\"\n",
        )
        .unwrap();
        let t = or_running(Target::default(), tmp.path());
        assert_eq!(t.os.as_deref(), Some("linux"));
        assert_eq!(t.arch.as_deref(), Some(host_arch()));
        assert_eq!(t.distro, Some(Distro::new("ubuntu", "22.04")));
        let given = Target {
            distro: Some(Distro::new("debian", "12")),
            ..Target::default()
        };
        assert_eq!(
            or_running(given, tmp.path()).distro,
            Some(Distro::new("debian", "12"))
        );
    }
}
