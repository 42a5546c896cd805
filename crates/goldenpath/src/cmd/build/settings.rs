//! The arguments of `goldenpath build` settled into a [`BuildRequest`], before anything runs.

use std::path::{Path, PathBuf};

use gp_lifecycle::session::{self, BuildRequest, Builder, Cache, Output};
use gp_oci::reference::ImageRef;

use super::{BuildArgs, DEFAULT_BUILDPACKS, DEFAULT_ORDER, Sandbox};
use crate::cmd::exit;

type Refused = (u8, String);

fn usage(message: impl Into<String>) -> Refused {
    (exit::USAGE, message.into())
}

/// Settles the arguments into a request: the image name (default: the source directory's), the builder (the
/// user's or the built-in default, unless this already runs inside a build image), the caches, variables and
/// CA certificates. Combinations that cannot work are refused here, naming the flag.
pub(super) fn request(args: &BuildArgs) -> Result<BuildRequest, Refused> {
    let image = if args.image.is_empty() {
        default_image_name(&args.path)?
    } else {
        args.image.clone()
    };
    let output = match image
        .parse::<ImageRef>()
        .map_err(|e| usage(e.to_string()))?
    {
        ImageRef::Layout { path, tag } if !args.publish => Output::Layout {
            path,
            tag: tag.unwrap_or_else(|| "latest".into()),
        },
        ImageRef::Registry(r) if args.publish => Output::Registry(r),
        ImageRef::Layout { .. } => {
            return Err(usage(
                "`--publish` needs a registry image (`docker://HOST/NAME:TAG`)",
            ));
        }
        // Not published: into the store, tagged with the name as given, `:` as `_` (`app:1` -> `app_1`).
        ImageRef::Registry(_) => {
            let tagged = image.rsplit('/').next().is_some_and(|l| l.contains(':'));
            let name = if tagged {
                image.clone()
            } else {
                format!("{image}:latest")
            };
            Output::Store {
                tag: name.replace(':', "_"),
            }
        }
    };
    // Buildpacks and order named on the command line, or those of the build image this runs in, are used as
    // they are; only a bare `goldenpath build` on a machine gets a builder.
    let own_buildpacks = args.order != Path::new(DEFAULT_ORDER)
        || args.buildpacks != Path::new(DEFAULT_BUILDPACKS)
        || Path::new(DEFAULT_ORDER).is_file();
    let builder = match &args.builder {
        Some(b) => Builder::Image(b.clone()),
        None if !own_buildpacks && args.sandbox != Sandbox::None => {
            Builder::Image(crate::cmd::default_builder::for_build(&args.insecure).map_err(usage)?)
        }
        None => Builder::Local {
            buildpacks: args.buildpacks.clone(),
            order: args.order.clone(),
            launcher: args.launcher.clone(),
        },
    };
    let cache = match (&args.cache, &args.cache_image) {
        (Some(dir), _) => Cache::Dir(dir.clone()),
        (None, Some(reference)) => match reference.parse::<ImageRef>() {
            Ok(ImageRef::Registry(r)) => Cache::Image(r),
            Ok(ImageRef::Layout { .. }) => {
                return Err(usage(format!(
                    "`--cache-image {reference}`: a cache image lives in a registry; for a local cache use `--cache DIR`"
                )));
            }
            Err(e) => return Err(usage(format!("`--cache-image {reference}`: {e}"))),
        },
        (None, None) => Cache::None,
    };
    let env = args
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| usage(format!("`--env {kv}`: write NAME=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    let ca_certs = match &args.ca_certs {
        Some(c) => Some(c.clone()),
        None if args.no_host_ca_certs => None,
        None => host_ca_certs(),
    };
    let request = BuildRequest {
        run_image: args.run_image.clone(),
        sandbox: match args.sandbox {
            Sandbox::Auto => session::Sandbox::Auto,
            Sandbox::Namespaces => session::Sandbox::Namespaces,
            Sandbox::Runc => session::Sandbox::Runc,
            Sandbox::None => session::Sandbox::None,
        },
        cache,
        env,
        ca_certs,
        process_env: std::env::vars().collect(),
        // A clean git checkout records its revision, so a fleet campaign can rebuild the image from it.
        source: session::git_source(&args.path),
        ..BuildRequest::new(&args.path, builder, output)
    };
    request.check().map_err(|e| usage(e.to_string()))?;
    Ok(request)
}

/// This machine's trust store: `$SSL_CERT_FILE`, else Debian's bundle.
pub fn host_ca_certs() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            let debian = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
            debian.is_file().then_some(debian)
        })
}

/// The image name for an app directory: its name, lower-cased, with anything a tag-less image name cannot hold
/// turned into `-`.
fn default_image_name(path: &Path) -> Result<String, Refused> {
    let dir = fs_err::canonicalize(path).map_err(|e| usage(e.to_string()))?;
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    if name.is_empty() {
        return Err(usage(format!(
            "`{}` gives no image name: name the image (`goldenpath build NAME`)",
            dir.display()
        )));
    }
    Ok(name)
}
