//! The platform directory as buildpacks see it: user-provided variables in `<platform>/env/` (applied to the
//! environment of buildpacks that do not ask for a clear one) and service bindings in `<platform>/bindings/`
//! (announced with `SERVICE_BINDING_ROOT`).

use std::path::Path;

use gp_cnb::env::{EnvMap, apply_platform_env, read_platform_env};

/// The environment for one buildpack: `base`, plus the platform variables unless `clear_env`, plus
/// `SERVICE_BINDING_ROOT` when the platform has bindings.
pub fn buildpack_env(base: &EnvMap, platform: &Path, clear_env: bool) -> Result<EnvMap, String> {
    let mut env = base.clone();
    if !clear_env {
        apply_platform_env(&mut env, read_platform_env(platform))
            .map_err(|e| format!("`{}`: {e}", platform.join("env").display()))?;
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
        fs_err::create_dir_all(tmp.path().join("env")).unwrap();
        fs_err::write(tmp.path().join("env/BP_NODE_VERSION"), "20").unwrap();
        fs_err::write(tmp.path().join("env/PATH"), "/opt/tools/bin").unwrap();
        fs_err::create_dir_all(tmp.path().join("bindings/ca-certificates")).unwrap();
        let base: EnvMap = [("PATH".to_owned(), "/usr/bin".to_owned())].into();
        let env = buildpack_env(&base, tmp.path(), false).unwrap();
        assert_eq!(env["BP_NODE_VERSION"], "20");
        assert_eq!(env["PATH"], "/opt/tools/bin:/usr/bin");
        assert!(env["SERVICE_BINDING_ROOT"].ends_with("bindings"));
        let clear = buildpack_env(&base, tmp.path(), true).unwrap();
        assert!(!clear.contains_key("BP_NODE_VERSION"));
    }

    #[test]
    fn platform_env_keeps_values_verbatim_and_skips_what_is_not_a_variable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("env");
        fs_err::create_dir_all(dir.join("NESTED")).unwrap();
        fs_err::write(dir.join("NESTED/INNER"), "x").unwrap();
        fs_err::write(dir.join("GREETING"), " hello\n").unwrap();
        fs_err::write(dir.join("A=B"), "skipped").unwrap();
        let env = buildpack_env(&EnvMap::new(), tmp.path(), false).unwrap();
        let expected: EnvMap = [("GREETING".to_owned(), " hello\n".to_owned())].into();
        assert_eq!(env, expected);

        fs_err::write(dir.join("BAD"), [0xff]).unwrap();
        let err = buildpack_env(&EnvMap::new(), tmp.path(), false).unwrap_err();
        assert_eq!(
            err,
            format!(
                "`{}`: env file `BAD` is not UTF-8; environment values must be text",
                dir.display()
            )
        );
        assert!(buildpack_env(&EnvMap::new(), tmp.path(), true).is_ok());
    }
}
