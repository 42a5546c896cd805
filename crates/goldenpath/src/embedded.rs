//! What goes into images, carried inside the `goldenpath` executable: the static launcher, the in-image
//! `lifecycle`, the built-in buildpacks (their executables and `buildpack.toml`), the default stack definition and
//! the default builder's `builder.toml`. `build.rs` builds the executables statically; here they are written out,
//! once per content, under the cache (`<cache>/embedded/<digest>/`), where `builder create` and the default builder
//! take them from.
//!
//! Why embedded files rather than one multi-call executable: the launcher goes into every app image, so it must
//! stay small (about 2 MB static), while `goldenpath` itself carries a registry client, an async runtime and the
//! renderers (tens of MB); a multi-call `goldenpath` as the launcher would add that to every image.

use std::path::{Path, PathBuf};

use gp_oci::digest::Digest;

/// The launcher placed at `/cnb/lifecycle/launcher`.
pub const LAUNCHER: &[u8] = include_bytes!(env!("GP_EMBED_LAUNCHER"));
/// The in-image `lifecycle` (detect and build inside the build image).
pub const LIFECYCLE: &[u8] = include_bytes!(env!("GP_EMBED_LIFECYCLE"));

/// A built-in buildpack: its directory name, descriptor and the executable that is its `bin/detect` and `bin/build`.
#[derive(Debug, Clone, Copy)]
pub struct Buildpack {
    pub dir: &'static str,
    pub descriptor: &'static str,
    pub executable: &'static [u8],
}

/// The built-in buildpacks, in the default builder's order.
pub const BUILDPACKS: &[Buildpack] = &[
    Buildpack {
        dir: "java",
        descriptor: include_str!("../../../buildpacks/java/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_JAVA_BUILDPACK")),
    },
    Buildpack {
        dir: "go",
        descriptor: include_str!("../../../buildpacks/go/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_GO_BUILDPACK")),
    },
    Buildpack {
        dir: "dotnet",
        descriptor: include_str!("../../../buildpacks/dotnet/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_DOTNET_BUILDPACK")),
    },
    Buildpack {
        dir: "ruby",
        descriptor: include_str!("../../../buildpacks/ruby/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_RUBY_BUILDPACK")),
    },
    Buildpack {
        dir: "php",
        descriptor: include_str!("../../../buildpacks/php/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_PHP_BUILDPACK")),
    },
    Buildpack {
        dir: "python",
        descriptor: include_str!("../../../buildpacks/python/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_PYTHON_BUILDPACK")),
    },
    Buildpack {
        dir: "nodejs",
        descriptor: include_str!("../../../buildpacks/nodejs/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_NODE_BUILDPACK")),
    },
    Buildpack {
        dir: "static",
        descriptor: include_str!("../../../buildpacks/static/buildpack.toml"),
        executable: include_bytes!(env!("GP_EMBED_STATIC_BUILDPACK")),
    },
];

/// The default stack's definition (Debian bookworm).
pub const STACK_TOML: &str = include_str!("../../../stacks/bookworm/stack.toml");
/// The default builder's `builder.toml`, with `@BUILDPACKS@` and `@STACK@` to fill in.
pub const BUILDER_TOML: &str = include_str!("../../../builders/default/builder.toml.in");

/// `--version`: the package version and the commit it was built from (`unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GP_COMMIT"),
    ")"
);

/// The embedded files written out: the launcher, the lifecycle and one directory per buildpack.
#[derive(Debug, Clone)]
pub struct Files {
    pub dir: PathBuf,
    /// The content's digest: the cache key of everything made from these files.
    pub digest: Digest,
}

impl Files {
    pub fn launcher(&self) -> PathBuf {
        self.dir.join("launcher")
    }

    pub fn lifecycle(&self) -> PathBuf {
        self.dir.join("lifecycle")
    }
}

/// The digest of everything embedded (executables, descriptors, stack and builder templates).
fn content_digest() -> Digest {
    let mut all = Vec::new();
    for part in [
        LAUNCHER,
        LIFECYCLE,
        STACK_TOML.as_bytes(),
        BUILDER_TOML.as_bytes(),
    ] {
        all.extend_from_slice(Digest::of(part).as_str().as_bytes());
    }
    for bp in BUILDPACKS {
        all.extend_from_slice(bp.dir.as_bytes());
        all.extend_from_slice(Digest::of(bp.descriptor.as_bytes()).as_str().as_bytes());
        all.extend_from_slice(Digest::of(bp.executable).as_str().as_bytes());
    }
    Digest::of(&all)
}

/// Writes the embedded files under `cache` (once per content: a complete directory is reused) and returns them.
pub fn materialize(cache: &Path) -> std::io::Result<Files> {
    let digest = content_digest();
    let parent = cache.join("embedded");
    let dir = parent.join(&digest.hex()[..16]);
    let files = Files {
        dir: dir.clone(),
        digest,
    };
    if dir.join("complete").is_file() {
        return Ok(files);
    }
    fs_err::create_dir_all(&parent)?;
    // Staged in a fresh directory and renamed into place: an interrupted write is never taken for a complete one.
    let stage = tempfile::Builder::new()
        .prefix(".embedded-")
        .tempdir_in(&parent)?;
    let root = stage.path();
    write_executable(&root.join("launcher"), LAUNCHER)?;
    write_executable(&root.join("lifecycle"), LIFECYCLE)?;
    for bp in BUILDPACKS {
        let bp_dir = root.join("buildpacks").join(bp.dir);
        fs_err::create_dir_all(bp_dir.join("bin"))?;
        fs_err::write(bp_dir.join("buildpack.toml"), bp.descriptor)?;
        write_executable(&bp_dir.join("bin/detect"), bp.executable)?;
        fs_err::hard_link(bp_dir.join("bin/detect"), bp_dir.join("bin/build"))?;
    }
    fs_err::write(root.join("complete"), files.digest.as_str())?;
    match fs_err::rename(root, &dir) {
        Ok(()) => {
            let _ = stage.keep();
            Ok(files)
        }
        // Another process wrote the same content first.
        Err(_) if dir.join("complete").is_file() => Ok(files),
        Err(e) => Err(e),
    }
}

fn write_executable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, bytes)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_programs_are_static_executables_and_materialize_once() {
        for bytes in [LAUNCHER, LIFECYCLE, BUILDPACKS[0].executable] {
            assert_eq!(&bytes[..4], b"\x7fELF");
        }
        let cache = tempfile::tempdir().unwrap();
        let first = materialize(cache.path()).unwrap();
        let again = materialize(cache.path()).unwrap();
        assert_eq!(first.dir, again.dir);
        assert_eq!(fs_err::read(first.launcher()).unwrap(), LAUNCHER);
        for bp in BUILDPACKS {
            let dir = first.dir.join("buildpacks").join(bp.dir);
            assert!(dir.join("bin/build").is_file() && dir.join("buildpack.toml").is_file());
        }
    }
}
