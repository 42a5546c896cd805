//! What the build takes from its builder: buildpacks, order, launcher, run image and, for a sandboxed build,
//! the build image's root filesystem (unpacked once per builder digest) and its CNB user.

use std::path::PathBuf;

use gp_cnb::{BuilderMetadata, JsonLabel};

use super::sandboxed::{BuildImage, Runner};
use super::{Builder, Sandbox, Session, SessionError};
use crate::progress::{Event, Phase};

/// The builder, resolved to files on this machine.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub buildpacks: PathBuf,
    pub order: PathBuf,
    pub launcher: PathBuf,
    pub run_image: Option<String>,
    /// Set when detect and build run in the sandbox.
    pub build_image: Option<BuildImage>,
    /// The builder image (`None` for a local builder directory).
    pub image: Option<crate::session::BuilderImage>,
}

pub(super) fn resolve(
    session: &Session<'_>,
    runner: Option<Runner>,
) -> Result<Resolved, SessionError> {
    let request = session.request;
    let reference = match &request.builder {
        Builder::Local {
            buildpacks,
            order,
            launcher,
        } => {
            return Ok(Resolved {
                buildpacks: buildpacks.clone(),
                order: order.clone(),
                launcher: launcher.clone(),
                run_image: request.run_image.clone(),
                build_image: None,
                image: None,
            });
        }
        Builder::Image(reference) => reference,
    };
    let opened = session.open(reference, "--builder")?;
    let img = gp_oci::image::read_image(&opened.layout, &opened.desc)?;
    let root = session.store.builder_dir(&opened.desc);
    if !root.is_dir() {
        session.clock.start(
            Phase::Unpacking,
            Some("the builder (once per builder digest)".into()),
        );
        let label = "unpacking the builder".to_owned();
        session.clock.event(Event::Activity {
            label: label.clone(),
            done: false,
        });
        let unpacked = unpack(&opened.layout, &img, &root);
        session.clock.event(Event::Activity { label, done: true });
        unpacked?;
    }
    let meta = img
        .config
        .label(BuilderMetadata::KEY)
        .and_then(|label| BuilderMetadata::from_label(label).ok());
    let run_image = request
        .run_image
        .clone()
        .or_else(|| meta.as_ref()?.images.first().map(|r| r.image.clone()));
    let image = Some(crate::session::BuilderImage {
        digest: opened.desc.digest.to_string(),
        lifecycle: meta.map(|m| m.lifecycle.version).filter(|v| !v.is_empty()),
    });
    let env: Vec<(String, String)> = img
        .config
        .env_vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let id = |name: &str| -> Result<u32, SessionError> {
        let value = env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        value
            .ok_or_else(|| {
                SessionError::Builder(format!(
                    "its image config has no `{name}`: a build image must name its CNB user"
                ))
            })?
            .parse()
            .map_err(|_| SessionError::Builder(format!("its `{name}` is not a number")))
    };
    let mut runner = runner;
    if runner.is_some() && !root.join("cnb/lifecycle/lifecycle").is_file() {
        if request.sandbox != Sandbox::Auto {
            return Err(SessionError::Builder(
                "it has no `/cnb/lifecycle/lifecycle` for sandboxed builds: recreate it with `goldenpath builder create --lifecycle`, or build with `--sandbox none` inside the build image".into(),
            ));
        }
        session.clock.event(Event::note(
            "the builder has no `/cnb/lifecycle/lifecycle`: buildpacks run directly (`--sandbox none`)",
        ));
        runner = None;
    }
    let build_image = match runner {
        Some(runner) => Some(BuildImage {
            runner,
            rootfs: root.clone(),
            uid: id("CNB_USER_ID")?,
            gid: id("CNB_GROUP_ID")?,
            env: env.clone(),
        }),
        None => None,
    };
    Ok(Resolved {
        buildpacks: root.join("cnb/buildpacks"),
        order: root.join("cnb/order.toml"),
        launcher: root.join("cnb/lifecycle/launcher"),
        run_image,
        build_image,
        image,
    })
}

/// Unpacks `img` into `dest`, beside and then renamed: an interrupted unpack never passes for a complete one.
fn unpack(
    layout: &gp_oci::layout::Layout,
    img: &gp_oci::image::Image,
    dest: &std::path::Path,
) -> Result<(), SessionError> {
    let readers = img.layers.iter().map(|l| {
        gp_oci::image::open_layer(layout, l)
            .map_err(|e| gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string())))
    });
    // The unpacker stages into a fresh sibling and renames it into place; when another build unpacked the same
    // builder first, its complete tree is there and is used.
    match gp_oci::unpack::unpack_layers(readers, dest) {
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(SessionError::Unpack(Box::new(e))),
        Ok(()) => Ok(()),
    }
}
