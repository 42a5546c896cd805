//! What a build is asked to do, settled before any work starts: plain values, no command-line types. A caller
//! (the CLI, a service) fills a [`BuildRequest`]; [`BuildRequest::check`] refuses combinations that cannot work,
//! naming the setting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gp_oci::reference::RegistryRef;

use super::SessionError;

/// One build: the app, where its image goes, what builds it and with which caches.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The application source directory (never written to).
    pub app: PathBuf,
    pub output: Output,
    pub builder: Builder,
    /// The run image (`oci:PATH[:TAG]` or a registry image); `None`: the builder's, else only the CNB layers.
    pub run_image: Option<String>,
    pub sandbox: Sandbox,
    pub cache: Cache,
    /// Build-time environment (`NAME`, `VALUE`), written to `<platform>/env`; wins over project.toml's.
    pub env: Vec<(String, String)>,
    /// CA certificates (PEM) buildpacks trust to reach package registries: passed as a `ca-certificates`
    /// binding and through `SSL_CERT_FILE`, `PIP_CERT`, `REQUESTS_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`. Never
    /// written into images.
    pub ca_certs: Option<PathBuf>,
    /// The environment buildpacks that run directly (no sandbox) inherit.
    pub process_env: BTreeMap<String, String>,
    /// The executable that sets the namespaces sandbox up (it must call
    /// [`crate::sandbox::init`] when run with [`crate::sandbox::INIT_ARG`]); `None`: the current executable.
    pub sandbox_helper: Option<PathBuf>,
    /// Where the source came from (e.g. [`git_source`]), recorded as `io.buildpacks.project.metadata` so the
    /// image can be rebuilt from it later; `None`: what the app's `project.toml` declares, if anything.
    pub source: Option<gp_cnb::ProjectSource>,
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI layout the caller names, under `tag`.
    Layout { path: PathBuf, tag: String },
    /// The store's own layout, under `tag` (`app_1` for `app:1`).
    Store { tag: String },
    /// Pushed to a registry (exported into the store first, so the next build finds its layers there).
    Registry(RegistryRef),
}

/// Which buildpacks build the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builder {
    /// A builder image (`oci:PATH[:TAG]` or a registry image): its build image, buildpacks, order, lifecycle
    /// and run image.
    Image(String),
    /// Buildpacks, order and launcher on this machine (inside a build image, or a caller's own).
    Local {
        buildpacks: PathBuf,
        order: PathBuf,
        launcher: PathBuf,
    },
}

/// How buildpacks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// With a builder image: namespaces where the kernel allows them, else runc, else directly.
    Auto,
    /// User, mount and PID namespaces in the builder's root filesystem (works rootless).
    Namespaces,
    /// A runc container on the builder's root filesystem (as root).
    Runc,
    /// Directly, in this process's environment (already inside the build image).
    None,
}

/// Where `cache = true` layers are kept between builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cache {
    None,
    /// A local directory.
    Dir(PathBuf),
    /// A registry image, pulled (missing blobs only) before and pushed after the build.
    Image(RegistryRef),
}

impl BuildRequest {
    /// A request with the defaults: image into the store under `tag`, local buildpacks, no caches, no
    /// certificates, buildpacks inheriting nothing.
    #[must_use]
    pub fn new(app: impl Into<PathBuf>, builder: Builder, output: Output) -> Self {
        Self {
            app: app.into(),
            output,
            builder,
            run_image: None,
            sandbox: Sandbox::Auto,
            cache: Cache::None,
            env: Vec::new(),
            ca_certs: None,
            process_env: BTreeMap::new(),
            sandbox_helper: None,
            source: None,
        }
    }

    /// Refuses what cannot work, naming the setting: a sandbox without a builder image, an unnamed env
    /// variable, an app that is not a directory.
    pub fn check(&self) -> Result<(), SessionError> {
        let request = |m: &str| Err(SessionError::Request(m.to_owned()));
        if matches!(self.sandbox, Sandbox::Namespaces | Sandbox::Runc)
            && matches!(self.builder, Builder::Local { .. })
        {
            return request(
                "a sandboxed build runs buildpacks in a builder's root filesystem: pass `--builder`",
            );
        }
        for (k, _) in &self.env {
            if k.is_empty() || k.contains(['=', '/', '\0']) {
                return Err(SessionError::Request(format!(
                    "`--env {k}=…`: not a variable name; write NAME=VALUE"
                )));
            }
        }
        if !self.app.is_dir() {
            return Err(SessionError::Request(format!(
                "`--path {}`: not a directory",
                self.app.display()
            )));
        }
        Ok(())
    }
}

/// The git revision `app` is checked out at, as CNB's `git` project source (`version.commit`,
/// `metadata.repository`, and `metadata.path` when the app is a subdirectory): the `origin` remote's URL, else the
/// repository's own path. `None` when `app` is not in a git work tree, `git` is missing, or the tree has changes
/// not committed (the commit would not rebuild this source).
#[must_use]
pub fn git_source(app: &std::path::Path) -> Option<gp_cnb::ProjectSource> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(app)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // One process for the commit, the work tree's root and the app's place in it (a build's hot path).
    let where_ = git(&["rev-parse", "HEAD", "--show-toplevel", "--show-prefix"])?;
    let mut lines = where_.lines();
    let (commit, top) = (lines.next()?.to_owned(), lines.next()?.to_owned());
    let prefix = lines.next().unwrap_or_default().to_owned();
    if commit.len() < 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if !git(&["status", "--porcelain", "--untracked-files=normal", "."])?.is_empty() {
        return None;
    }
    let repository = git(&["config", "--get", "remote.origin.url"])
        .filter(|u| !u.is_empty())
        .map_or_else(|| format!("file://{top}"), |u| without_credentials(&u));
    let text = |k: &str, v: String| (k.to_owned(), serde_json::Value::String(v));
    let mut metadata = serde_json::Map::from_iter([text("repository", repository)]);
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        metadata.insert("path".into(), prefix.into());
    }
    Some(gp_cnb::ProjectSource {
        kind: Some("git".into()),
        version: Some(serde_json::Map::from_iter([text("commit", commit)])),
        metadata: Some(metadata),
    })
}

/// A git URL without the user and password a CI job may have put in it (`https://token@host/...`): the URL goes
/// into an image label anyone who can pull the image reads. `git@host:org/repo` (a user, no secret) stays.
fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_never_reach_the_label() {
        assert_eq!(
            without_credentials("https://gitlab-ci-token:s3cr3t@gitlab.example.com/g/app.git"),
            "https://gitlab.example.com/g/app.git"
        );
        assert_eq!(
            without_credentials("https://github.com/o/r"),
            "https://github.com/o/r"
        );
        assert_eq!(
            without_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(
            without_credentials("ssh://git@host/o/r@x"),
            "ssh://host/o/r@x"
        );
    }
}
