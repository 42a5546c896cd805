//! Why a build session failed: the operation in each variant, the cause kept as its source, and the Platform
//! API exit code the failure stands for ([`SessionError::exit_code`]).

use std::path::PathBuf;

use crate::exit;

/// What kind of failure, for callers that map it to their own codes or retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request cannot work as given (a setting, a reference, the app directory).
    Request,
    /// An input the user controls is invalid (project.toml, a builder without its metadata).
    Input,
    /// Local files could not be read or written.
    Io,
    /// A phase failed; the code is the Platform API's.
    Phase(u8),
    /// A registry refused or failed a request.
    Registry,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Project(#[from] Box<super::project::ProjectError>),
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `setting` is how the caller named the image (`--run-image REF`).
    #[error("`{setting}`: {source}")]
    Open {
        setting: String,
        #[source]
        source: gp_oci::store::StoreError,
    },
    #[error("the builder: {0}")]
    Builder(String),
    #[error("cannot unpack the builder: {0}")]
    Unpack(#[source] Box<gp_oci::unpack::UnpackError>),
    #[error(transparent)]
    Image(#[from] Box<gp_oci::image::ImageError>),
    #[error(transparent)]
    Layout(#[from] Box<gp_oci::layout::LayoutError>),
    #[error(transparent)]
    Detect(#[from] Box<crate::detect::DetectError>),
    #[error(transparent)]
    Build(#[from] Box<crate::build::BuildError>),
    #[error(transparent)]
    Sandbox(#[from] Box<crate::sandbox::SandboxError>),
    #[error("the {phase} phase failed with exit code {code} (its output is above)")]
    PhaseFailed { phase: &'static str, code: i32 },
    #[error("the {phase} phase was killed")]
    PhaseKilled { phase: &'static str },
    #[error("{source}")]
    PhaseOutput {
        path: PathBuf,
        #[source]
        source: Box<gp_cnb::CnbError>,
    },
    #[error("cannot restore the cache: {0}")]
    RestoreCache(#[source] std::io::Error),
    #[error("cannot restore layer metadata: {0}")]
    RestoreMetadata(#[source] std::io::Error),
    #[error("`--cache-image {reference}`: {source}")]
    CacheImage {
        reference: String,
        #[source]
        source: Box<crate::cache_image::CacheImageError>,
    },
    #[error("cannot restore the cache image: {0}")]
    RestoreCacheImage(#[source] Box<crate::cache_image::CacheImageError>),
    #[error("cannot save the cache: {0}")]
    SaveCache(#[source] std::io::Error),
    #[error("cannot write the cache image: {0}")]
    SaveCacheImage(#[source] Box<crate::cache_image::CacheImageError>),
    #[error("cannot push the cache image: {0}")]
    PushCacheImage(#[source] Box<gp_oci::registry::RegistryError>),
    #[error(transparent)]
    Export(#[from] Box<crate::export::ExportError>),
    #[error("`{reference}`: {source}")]
    Registry {
        reference: String,
        #[source]
        source: Box<gp_oci::registry::RegistryError>,
    },
    #[error(transparent)]
    Push(Box<gp_oci::registry::RegistryError>),
}

impl From<super::project::ProjectError> for SessionError {
    fn from(e: super::project::ProjectError) -> Self {
        Self::Project(Box::new(e))
    }
}

impl From<gp_oci::image::ImageError> for SessionError {
    fn from(e: gp_oci::image::ImageError) -> Self {
        Self::Image(Box::new(e))
    }
}

impl From<gp_oci::layout::LayoutError> for SessionError {
    fn from(e: gp_oci::layout::LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}

impl From<crate::detect::DetectError> for SessionError {
    fn from(e: crate::detect::DetectError) -> Self {
        Self::Detect(Box::new(e))
    }
}

impl From<crate::build::BuildError> for SessionError {
    fn from(e: crate::build::BuildError) -> Self {
        Self::Build(Box::new(e))
    }
}

impl From<crate::sandbox::SandboxError> for SessionError {
    fn from(e: crate::sandbox::SandboxError) -> Self {
        Self::Sandbox(Box::new(e))
    }
}

impl From<crate::export::ExportError> for SessionError {
    fn from(e: crate::export::ExportError) -> Self {
        Self::Export(Box::new(e))
    }
}

impl SessionError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    #[must_use]
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Open { source, .. } if source.registry().is_some() => FailureKind::Registry,
            Self::Request(_) | Self::Open { .. } => FailureKind::Request,
            Self::Project(_) | Self::Builder(_) | Self::Unpack(_) | Self::Image(_) => {
                FailureKind::Input
            }
            Self::Io { .. } | Self::Layout(_) | Self::PhaseOutput { .. } => FailureKind::Io,
            Self::Registry { .. } => FailureKind::Registry,
            _ => FailureKind::Phase(self.exit_code()),
        }
    }

    /// The Platform API exit code of a failed phase; 62 (export) for registry failures, which happen while the
    /// image is written out; 2 for requests and inputs the build never started on.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Detect(e) => e.exit_code(),
            Self::Build(e) => e.exit_code(),
            Self::PhaseFailed { code, .. } => u8::try_from(*code).unwrap_or(1),
            Self::PhaseKilled { .. } => 1,
            Self::RestoreCache(_)
            | Self::RestoreMetadata(_)
            | Self::CacheImage { .. }
            | Self::RestoreCacheImage(_) => exit::RESTORE_ERROR,
            Self::Open { source, .. } if source.registry().is_some() => exit::EXPORT_ERROR,
            Self::Sandbox(_)
            | Self::SaveCache(_)
            | Self::SaveCacheImage(_)
            | Self::PushCacheImage(_)
            | Self::Export(_)
            | Self::Registry { .. }
            | Self::Push(_) => exit::EXPORT_ERROR,
            _ => 2,
        }
    }
}
