//! `project.toml` for builds (schema 0.2, and 0.1 read as 0.2): `[[io.buildpacks.build.env]]` variables, the
//! `include`/`exclude` patterns (`.gitignore` syntax) that decide which source files the build sees, and the
//! project's own buildpack group (`group`, `pre`, `post`: builder buildpacks by id, local buildpack directories by
//! `uri`, inline `script` buildpacks), which replaces or wraps the builder's order.

use std::path::{Component, Path, PathBuf};

use gp_cnb::{
    BuildpackDescriptor, GroupRef, OrderGroup, OrderToml, ProjectBuildpackRef, ProjectDescriptor,
    TomlFile,
};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// What the descriptor asks for.
#[derive(Debug, Default)]
pub struct Project {
    pub env: Vec<(String, String)>,
    filter: Option<(Gitignore, bool)>,
    group: Vec<ProjectBuildpackRef>,
    pre: Vec<ProjectBuildpackRef>,
    post: Vec<ProjectBuildpackRef>,
    dir: PathBuf,
}

/// A buildpack the project brings (a local directory or an inline script), to be placed at
/// `/cnb/buildpacks/<id>/<version>` for the build.
#[derive(Debug, Clone)]
pub struct ExtraBuildpack {
    pub dir: PathBuf,
    pub id: String,
    pub version: String,
}

/// The largest `project.toml` read: bigger is refused.
pub const MAX_PROJECT_TOML_BYTES: u64 = 1 << 20;

/// Reads `<app>/project.toml` when present: only a regular file (never through a symbolic link, never blocking on a
/// FIFO), of at most [`MAX_PROJECT_TOML_BYTES`].
pub fn load(app: &Path) -> Result<Project, String> {
    let path = app.join("project.toml");
    let text = match gp_cnb::read_input_text(&path, MAX_PROJECT_TOML_BYTES) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(Project::default()),
        Err(e) => return Err(e.to_string()),
    };
    let d = ProjectDescriptor::from_toml_str(&gp_cnb::upgrade_schema_01(&text))
        .map_err(|e| e.with_path(&path).to_string())?;
    let Some(bp) = d.io.and_then(|io| io.buildpacks) else {
        return Ok(Project::default());
    };
    let env = bp
        .build
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let base = Project {
        env,
        filter: None,
        group: bp.group,
        pre: bp.pre.group,
        post: bp.post.group,
        dir: app.to_path_buf(),
    };
    let (patterns, include) = match (bp.include.is_empty(), bp.exclude.is_empty()) {
        (true, true) => return Ok(base),
        (false, true) => (bp.include, true),
        (true, false) => (bp.exclude, false),
        (false, false) => {
            return Err(format!(
                "`{}`: `include` and `exclude` cannot both be set",
                path.display()
            ));
        }
    };
    let mut b = GitignoreBuilder::new(app);
    for p in &patterns {
        b.add_line(None, p).map_err(|e| {
            format!(
                "`{}`: pattern `{}`: {}",
                path.display(),
                gp_cnb::excerpt(p),
                gp_cnb::excerpt(&e.to_string())
            )
        })?;
    }
    let gi = b.build().map_err(|e| {
        format!(
            "`{}`: the `include`/`exclude` patterns do not compile: {}",
            path.display(),
            gp_cnb::excerpt(&e.to_string())
        )
    })?;
    Ok(Project {
        filter: Some((gi, include)),
        ..base
    })
}

impl Project {
    /// The order this project asks for, given the builder's `order` and its buildpacks directory: `None` when the
    /// project names no buildpacks. Local and inline buildpacks are prepared under `<work>/project-buildpacks`.
    pub fn order(
        &self,
        builder_order: &OrderToml,
        builder_buildpacks: &Path,
        work: &Path,
    ) -> Result<Option<(OrderToml, Vec<ExtraBuildpack>)>, String> {
        if self.group.is_empty() && self.pre.is_empty() && self.post.is_empty() {
            return Ok(None);
        }
        let mut extra = Vec::new();
        let mut refs =
            |list: &[ProjectBuildpackRef], section: &str| -> Result<Vec<GroupRef>, String> {
                list.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let at = format!("project.toml `io.buildpacks.{section}[{i}]`");
                        self.resolve(r, builder_buildpacks, work, &mut extra)
                            .map_err(|e| format!("{at}: {e}"))
                    })
                    .collect()
            };
        let (pre, group, post) = (
            refs(&self.pre, "pre.group")?,
            refs(&self.group, "group")?,
            refs(&self.post, "post.group")?,
        );
        let wrap = |middle: &[GroupRef]| OrderGroup {
            group: pre.iter().chain(middle).chain(&post).cloned().collect(),
        };
        let order = if group.is_empty() {
            builder_order.order.iter().map(|g| wrap(&g.group)).collect()
        } else {
            vec![wrap(&group)]
        };
        Ok(Some((
            OrderToml {
                order,
                ..OrderToml::default()
            },
            extra,
        )))
    }

    fn resolve(
        &self,
        r: &ProjectBuildpackRef,
        builder_buildpacks: &Path,
        work: &Path,
        extra: &mut Vec<ExtraBuildpack>,
    ) -> Result<GroupRef, String> {
        let group_ref = |id: &str, version: &str| -> Result<GroupRef, String> {
            Ok(GroupRef::new(
                id.parse().map_err(|e| format!("id `{id}`: {e}"))?,
                version
                    .parse()
                    .map_err(|e| format!("version `{version}`: {e}"))?,
            ))
        };
        if let Some(script) = &r.script {
            let id =
                r.id.as_deref()
                    .ok_or("an inline `script` buildpack needs an `id`")?;
            let version = r.version.as_deref().unwrap_or("0.0.0");
            let dir = work
                .join("project-buildpacks")
                .join(format!("inline-{}", extra.len()));
            fs_err::create_dir_all(dir.join("bin")).map_err(|e| e.to_string())?;
            let descriptor = format!(
                "api = \"{}\"\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\nname = \"inline buildpack from project.toml\"\n",
                script.api
            );
            fs_err::write(dir.join("buildpack.toml"), descriptor).map_err(|e| e.to_string())?;
            write_exec(&dir.join("bin/detect"), "#!/bin/sh\nexit 0\n")?;
            write_exec(
                &dir.join("bin/build"),
                &format!("#!{}\n{}\n", script.shell(), script.inline),
            )?;
            extra.push(ExtraBuildpack {
                dir,
                id: id.to_owned(),
                version: version.to_owned(),
            });
            return group_ref(id, version);
        }
        if let Some(uri) = &r.uri {
            let local = uri.strip_prefix("file://").unwrap_or(uri);
            if local.contains("://") || local.starts_with("urn:") {
                return Err(format!(
                    "`uri = \"{}\"`: only local buildpack directories are supported here; add image buildpacks to the builder",
                    gp_cnb::excerpt(uri)
                ));
            }
            if Path::new(local)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(format!(
                    "`uri = \"{}\"`: a local buildpack is a directory inside the app; use a relative path without `..`",
                    gp_cnb::excerpt(uri)
                ));
            }
            let dir = self.dir.join(local);
            let descriptor = dir.join("buildpack.toml");
            let text = gp_cnb::read_input_text(&descriptor, MAX_PROJECT_TOML_BYTES)
                .map_err(|e| e.to_string())?;
            let d = BuildpackDescriptor::from_toml_str(&text)
                .map_err(|e| e.with_path(&descriptor).to_string())?;
            let (id, version) = (d.buildpack.id.to_string(), d.buildpack.version.to_string());
            extra.push(ExtraBuildpack {
                dir,
                id: id.clone(),
                version: version.clone(),
            });
            return group_ref(&id, &version);
        }
        let id =
            r.id.as_deref()
                .ok_or("needs an `id`, a `uri` or a `script`")?;
        let versions: Vec<String> =
            fs_err::read_dir(builder_buildpacks.join(gp_cnb::buildpack_dir_name(id)))
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
        let version = match &r.version {
            Some(v) if versions.contains(v) => v.clone(),
            Some(v) => {
                return Err(format!(
                    "buildpack `{id}@{v}` is not in the builder (it has: {})",
                    if versions.is_empty() {
                        "no version of it".into()
                    } else {
                        versions.join(", ")
                    }
                ));
            }
            None if versions.len() == 1 => versions[0].clone(),
            None if versions.is_empty() => {
                return Err(format!("buildpack `{id}` is not in the builder"));
            }
            None => {
                return Err(format!(
                    "the builder has several versions of `{id}` ({}); name one with `version`",
                    versions.join(", ")
                ));
            }
        };
        group_ref(id, &version)
    }

    /// The directory the build should see: `app` itself, or a filtered copy under `work`.
    /// The directory the build sees as its app: `app` itself, or a copy at `<work>/app` of what project.toml's
    /// include/exclude lets through (always a copy when `copy`: sandboxed builds hand buildpacks their own).
    pub fn source_dir(&self, app: &Path, work: &Path, copy: bool) -> Result<PathBuf, String> {
        let dest = work.join("app");
        let copied = match &self.filter {
            Some((gi, include)) => copy_filtered(app, app, &dest, gi, *include),
            None if copy => copy_filtered(app, app, &dest, &Gitignore::empty(), false),
            None => return Ok(app.to_path_buf()),
        };
        copied.map_err(|e| format!("copying the source: {e}"))?;
        Ok(dest)
    }
}

fn copy_filtered(
    root: &Path,
    dir: &Path,
    dest_root: &Path,
    gi: &Gitignore,
    include: bool,
) -> std::io::Result<()> {
    fs_err::create_dir_all(dest_root.join(dir.strip_prefix(root).unwrap_or(dir)))?;
    let mut entries: Vec<_> = fs_err::read_dir(dir)?.flatten().collect();
    entries.sort_by_key(fs_err::DirEntry::file_name);
    for e in entries {
        let path = e.path();
        let ft = e.file_type()?;
        let matched = gi
            .matched_path_or_any_parents(&path, ft.is_dir())
            .is_ignore();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if ft.is_dir() {
            // With `include`, a directory is walked when it or anything below might match.
            if !include && matched {
                continue;
            }
            copy_filtered(root, &path, dest_root, gi, include)?;
            continue;
        }
        if matched != include {
            continue;
        }
        let to = dest_root.join(rel);
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent)?;
        }
        if ft.is_symlink() {
            fs_err::os::unix::fs::symlink(fs_err::read_link(&path)?, &to)?;
        } else if ft.is_file() {
            fs_err::copy(&path, &to)?;
        } else {
            // A FIFO would block the copy forever; a device is no source file.
            let kind = gp_cnb::describe_file_type(ft).unwrap_or("not a file");
            return Err(std::io::Error::other(format!(
                "`{}` is {kind}: the app source may hold only regular files, directories and symbolic links; remove it or exclude it in project.toml",
                path.display()
            )));
        }
    }
    Ok(())
}

fn write_exec(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}
