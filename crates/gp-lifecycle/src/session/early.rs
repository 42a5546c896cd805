//! Early export: settled launch layers are written while buildpacks still run (see [`crate::speculate`]), into
//! the store (a layer that changes after it was written early leaves an unreferenced blob, which a cache may hold
//! but a layout the user named should not); the exporter's memo takes them from there. When publishing, each is
//! also uploaded right away on a thread of its own, which the session waits for before pushing the image.

use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use gp_oci::layout::Desc;

use super::builder::Resolved;
use super::{Output, Session, SessionError};
use crate::progress::Event;
use crate::speculate::{AfterWrite, Speculator};

/// Uploads of layers written early, owned by one build (waited for before its push, and at its end).
#[derive(Debug, Default)]
pub(super) struct Uploads(Mutex<Vec<JoinHandle<()>>>);

impl Uploads {
    fn add(&self, handle: JoinHandle<()>) {
        if let Ok(mut h) = self.0.lock() {
            h.push(handle);
        }
    }

    /// Waits for every upload started so far.
    pub(super) fn wait(&self) {
        let pending = self
            .0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for h in pending {
            let _ = h.join();
        }
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        self.wait();
    }
}

pub(super) fn start(
    session: &Session<'_>,
    resolved: &Resolved,
    layers: &Path,
    uploads: &Uploads,
) -> Result<Speculator, SessionError> {
    let layout = session.store.images()?;
    let upload: Option<AfterWrite> = match &session.request.output {
        Output::Registry(target) => {
            let (tx, rx) = std::sync::mpsc::channel::<Desc>();
            let store = layout.clone();
            let images = session.store.clone();
            let target = target.clone();
            uploads.add(std::thread::spawn(move || {
                let Ok(reg) = images.registry(&target) else {
                    return;
                };
                for desc in rx {
                    let _ = reg.push_blobs(&store, &[desc], &target); // a failure here is retried by the push
                }
            }));
            Some(Box::new(
                move |_: &gp_oci::layout::Layout, info: &gp_oci::layer::LayerInfo| {
                    let _ = tx.send(Desc::new(info.media_type, info.digest.clone(), info.size));
                },
            ))
        }
        _ => None,
    };
    Ok(Speculator::start_with(
        layers,
        layout,
        session.store.memo(),
        session.layer_options(resolved)?,
        upload,
    ))
}

pub(super) fn finish(session: &Session<'_>, early: Speculator) {
    let n = early.finish();
    if n > 0 {
        session.clock.event(Event::notice(format!(
            "Wrote {n} settled launch layer(s) while buildpacks ran"
        )));
    }
}
