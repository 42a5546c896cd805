//! Rebuilds' source: the git revision an image records, checked out into a scratch directory. The image's labels
//! are data here, never options: the commit must be a commit id, the path must stay inside the checkout.

use crate::facts::SourceRevision;
use crate::patch::JobError;

/// Clones `source.repository` into `dir` and checks out `source.commit`.
pub(crate) fn check_out(source: &SourceRevision, dir: &std::path::Path) -> Result<(), JobError> {
    // The image's labels say where its source is: taken as data, never as options to git.
    let commit = &source.commit;
    if !(7..=64).contains(&commit.len()) || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JobError::fatal(format!(
            "the recorded source commit `{}` is not a commit id; rebuild the image from its source with \
             `goldenpath build`",
            commit.escape_debug()
        )));
    }
    let git = |what: &str, args: &[&std::ffi::OsStr]| -> Result<(), JobError> {
        let out = std::process::Command::new("git")
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| JobError::fatal(format!("cannot run git: {e}; install git")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(JobError {
                message: format!(
                    "git {what} of `{}` failed: {}",
                    source.repository,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                // A clone over the network may fail for a moment; a missing commit will not come back.
                retryable: what == "clone",
            })
        }
    };
    let url = source
        .repository
        .strip_prefix("file://")
        .unwrap_or(&source.repository);
    git(
        "clone",
        &[
            "clone".as_ref(),
            "--quiet".as_ref(),
            "--no-checkout".as_ref(),
            "--".as_ref(),
            url.as_ref(),
            dir.as_os_str(),
        ],
    )?;
    git(
        "checkout",
        &[
            "-C".as_ref(),
            dir.as_os_str(),
            "checkout".as_ref(),
            "--quiet".as_ref(),
            "--detach".as_ref(),
            commit.as_ref(),
            "--".as_ref(),
        ],
    )
}

/// The app's directory inside a checkout: a relative path that stays inside it.
pub(crate) fn app_dir(
    checkout: &std::path::Path,
    path: Option<&str>,
) -> Result<std::path::PathBuf, JobError> {
    let Some(p) = path else {
        return Ok(checkout.to_path_buf());
    };
    let rel = std::path::Path::new(p);
    if rel.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        Ok(checkout.join(rel))
    } else {
        Err(JobError::fatal(format!(
            "the recorded source path `{}` leaves the repository; rebuild the image from its source with \
             `goldenpath build`",
            p.escape_debug()
        )))
    }
}

impl SourceRevision {
    /// Back into the project-metadata shape a build records.
    #[must_use]
    pub fn to_project_source(&self) -> gp_cnb::ProjectSource {
        let text = |k: &str, v: &str| (k.to_owned(), serde_json::Value::String(v.to_owned()));
        let mut metadata = serde_json::Map::from_iter([text("repository", &self.repository)]);
        if let Some(p) = &self.path {
            metadata.insert("path".into(), p.clone().into());
        }
        gp_cnb::ProjectSource {
            kind: Some("git".into()),
            version: Some(serde_json::Map::from_iter([text("commit", &self.commit)])),
            metadata: Some(metadata),
        }
    }
}
