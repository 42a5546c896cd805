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

/// What is wrong with the app's `project.toml` or the buildpacks it names.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Read(Box<gp_cnb::InputError>),
    #[error(transparent)]
    Parse(Box<gp_cnb::CnbError>),
    #[error("`{}`: `include` and `exclude` cannot both be set", path.display())]
    IncludeAndExclude { path: PathBuf },
    /// `pattern` and `message` are escaped excerpts (the file is the user's, its text is not trusted).
    #[error("`{}`: pattern `{pattern}`: {message}", path.display())]
    Pattern {
        path: PathBuf,
        pattern: String,
        message: String,
    },
    #[error("`{}`: the `include`/`exclude` patterns do not compile: {message}", path.display())]
    Patterns { path: PathBuf, message: String },
    /// A buildpack entry (`io.buildpacks.group[0]`) is wrong.
    #[error("project.toml `{at}`: {source}")]
    Entry {
        at: String,
        #[source]
        source: Box<ProjectError>,
    },
    #[error("{0}")]
    Unnamed(&'static str),
    #[error("id `{id}`: {source}")]
    Id {
        id: String,
        #[source]
        source: gp_cnb::IdError,
    },
    #[error("version `{version}`: {source}")]
    Version {
        version: String,
        #[source]
        source: gp_cnb::IdError,
    },
    #[error(
        "`uri = \"{uri}\"`: only local buildpack directories are supported here; add image buildpacks to the builder"
    )]
    RemoteUri { uri: String },
    #[error(
        "`uri = \"{uri}\"`: a local buildpack is a directory inside the app; use a relative path without `..`"
    )]
    UriOutsideApp { uri: String },
    /// `has` says which versions the builder has, when that helps.
    #[error("buildpack `{id}` is not in the builder{has}")]
    NotInBuilder { id: String, has: String },
    #[error("the builder has several versions of `{id}` ({versions}); name one with `version`")]
    Ambiguous { id: String, versions: String },
    /// Preparing the project's own buildpacks (the error names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("copying the source: {0}")]
    Copy(#[source] std::io::Error),
}

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
pub fn load(app: &Path) -> Result<Project, ProjectError> {
    let path = app.join("project.toml");
    let text = match gp_cnb::read_input_text(&path, MAX_PROJECT_TOML_BYTES) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(Project::default()),
        Err(e) => return Err(ProjectError::Read(Box::new(e))),
    };
    let d = ProjectDescriptor::from_toml_str(&gp_cnb::upgrade_schema_01(&text))
        .map_err(|e| ProjectError::Parse(Box::new(e.with_path(&path))))?;
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
            return Err(ProjectError::IncludeAndExclude { path });
        }
    };
    let mut b = GitignoreBuilder::new(app);
    for p in &patterns {
        b.add_line(None, p).map_err(|e| ProjectError::Pattern {
            path: path.clone(),
            pattern: gp_cnb::excerpt(p),
            message: gp_cnb::excerpt(&e.to_string()),
        })?;
    }
    let gi = b.build().map_err(|e| ProjectError::Patterns {
        path: path.clone(),
        message: gp_cnb::excerpt(&e.to_string()),
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
    ) -> Result<Option<(OrderToml, Vec<ExtraBuildpack>)>, ProjectError> {
        if self.group.is_empty() && self.pre.is_empty() && self.post.is_empty() {
            return Ok(None);
        }
        let mut extra = Vec::new();
        let mut refs =
            |list: &[ProjectBuildpackRef], section: &str| -> Result<Vec<GroupRef>, ProjectError> {
                list.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        self.resolve(r, builder_buildpacks, work, &mut extra)
                            .map_err(|e| ProjectError::Entry {
                                at: format!("io.buildpacks.{section}[{i}]"),
                                source: Box::new(e),
                            })
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
    ) -> Result<GroupRef, ProjectError> {
        let group_ref = |id: &str, version: &str| -> Result<GroupRef, ProjectError> {
            Ok(GroupRef::new(
                id.parse().map_err(|source| ProjectError::Id {
                    id: id.to_owned(),
                    source,
                })?,
                version.parse().map_err(|source| ProjectError::Version {
                    version: version.to_owned(),
                    source,
                })?,
            ))
        };
        if let Some(script) = &r.script {
            let id = r.id.as_deref().ok_or(ProjectError::Unnamed(
                "an inline `script` buildpack needs an `id`",
            ))?;
            let version = r.version.as_deref().unwrap_or("0.0.0");
            let dir = work
                .join("project-buildpacks")
                .join(format!("inline-{}", extra.len()));
            fs_err::create_dir_all(dir.join("bin"))?;
            let descriptor = format!(
                "api = \"{}\"\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\nname = \"inline buildpack from project.toml\"\n",
                script.api
            );
            fs_err::write(dir.join("buildpack.toml"), descriptor)?;
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
                return Err(ProjectError::RemoteUri {
                    uri: gp_cnb::excerpt(uri),
                });
            }
            if Path::new(local)
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(ProjectError::UriOutsideApp {
                    uri: gp_cnb::excerpt(uri),
                });
            }
            let dir = self.dir.join(local);
            let descriptor = dir.join("buildpack.toml");
            let text = gp_cnb::read_input_text(&descriptor, MAX_PROJECT_TOML_BYTES)
                .map_err(|e| ProjectError::Read(Box::new(e)))?;
            let d = BuildpackDescriptor::from_toml_str(&text)
                .map_err(|e| ProjectError::Parse(Box::new(e.with_path(&descriptor))))?;
            let (id, version) = (d.buildpack.id.to_string(), d.buildpack.version.to_string());
            extra.push(ExtraBuildpack {
                dir,
                id: id.clone(),
                version: version.clone(),
            });
            return group_ref(&id, &version);
        }
        let id = r.id.as_deref().ok_or(ProjectError::Unnamed(
            "needs an `id`, a `uri` or a `script`",
        ))?;
        let version = builder_version(id, r.version.as_deref(), builder_buildpacks)?;
        group_ref(id, &version)
    }

    /// The directory the build should see: `app` itself, or a filtered copy under `work`.
    /// The directory the build sees as its app: `app` itself, or a copy at `<work>/app` of what project.toml's
    /// include/exclude lets through (always a copy when `copy`: sandboxed builds hand buildpacks their own).
    pub fn source_dir(&self, app: &Path, work: &Path, copy: bool) -> Result<PathBuf, ProjectError> {
        let dest = work.join("app");
        let copied = match &self.filter {
            Some((gi, include)) => copy_filtered(app, app, &dest, gi, *include),
            None if copy => copy_filtered(app, app, &dest, &Gitignore::empty(), false),
            None => return Ok(app.to_path_buf()),
        };
        copied.map_err(ProjectError::Copy)?;
        Ok(dest)
    }
}

/// The version of `id` the builder has: `version` when it has that one, its only one when none is named.
fn builder_version(
    id: &str,
    version: Option<&str>,
    builder_buildpacks: &Path,
) -> Result<String, ProjectError> {
    let versions: Vec<String> =
        fs_err::read_dir(builder_buildpacks.join(gp_cnb::buildpack_dir_name(id)))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    match version {
        Some(v) if versions.iter().any(|h| h == v) => Ok(v.to_owned()),
        Some(v) => Err(ProjectError::NotInBuilder {
            id: format!("{id}@{v}"),
            has: if versions.is_empty() {
                " (it has: no version of it)".into()
            } else {
                format!(" (it has: {})", versions.join(", "))
            },
        }),
        None if versions.len() == 1 => Ok(versions[0].clone()),
        None if versions.is_empty() => Err(ProjectError::NotInBuilder {
            id: id.to_owned(),
            has: String::new(),
        }),
        None => Err(ProjectError::Ambiguous {
            id: id.to_owned(),
            versions: versions.join(", "),
        }),
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

fn write_exec(path: &Path, text: &str) -> Result<(), ProjectError> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, text)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
