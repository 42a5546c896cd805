//! The platform directory as buildpacks see it: user-provided variables in `<platform>/env/` (applied to the
//! environment of buildpacks that do not ask for a clear one) and service bindings in `<platform>/bindings/`
//! (announced with `SERVICE_BINDING_ROOT`).

use std::path::Path;

use gp_cnb::env::{EnvMap, apply_platform_env};

/// The environment for one buildpack: `base`, plus the platform variables unless `clear_env`, plus
/// `SERVICE_BINDING_ROOT` when the platform has bindings.
pub fn buildpack_env(base: &EnvMap, platform: &Path, clear_env: bool) -> Result<EnvMap, String> {
    let mut env = base.clone();
    if !clear_env {
        let dir = platform.join("env");
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_file())
                    .filter_map(|e| {
                        Some((
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).ok()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        apply_platform_env(&mut env, files).map_err(|e| format!("`{}`: {e}", dir.display()))?;
    }
    let bindings = platform.join("bindings");
    if bindings.is_dir() {
        env.insert(
            "SERVICE_BINDING_ROOT".into(),
            bindings.to_string_lossy().into_owned(),
        );
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_env_applies_unless_clear_env_and_bindings_are_announced() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("env")).unwrap();
        std::fs::write(tmp.path().join("env/BP_NODE_VERSION"), "20").unwrap();
        std::fs::write(tmp.path().join("env/PATH"), "/opt/tools/bin").unwrap();
        std::fs::create_dir_all(tmp.path().join("bindings/ca-certificates")).unwrap();
        let base: EnvMap = [("PATH".to_owned(), "/usr/bin".to_owned())].into();
        let env = buildpack_env(&base, tmp.path(), false).unwrap();
        assert_eq!(env["BP_NODE_VERSION"], "20");
        assert_eq!(env["PATH"], "/opt/tools/bin:/usr/bin");
        assert!(env["SERVICE_BINDING_ROOT"].ends_with("bindings"));
        let clear = buildpack_env(&base, tmp.path(), true).unwrap();
        assert!(!clear.contains_key("BP_NODE_VERSION"));
    }
}
