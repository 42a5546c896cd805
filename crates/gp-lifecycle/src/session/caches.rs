//! Restore before the build (cache directory, cache image, the previous image's layer metadata) and save after
//! it (cache directory, cache image).

use std::path::Path;

use gp_cnb::GroupToml;
use gp_oci::reference::RegistryRef;

use super::builder::Resolved;
use super::{Cache, Session, SessionError};
use crate::analyze::Previous;
use crate::progress::{Event, Phase};

pub(super) fn restore(
    session: &Session<'_>,
    resolved: &Resolved,
    layers: &Path,
    group: &GroupToml,
    previous: Option<&Previous>,
) -> Result<(), SessionError> {
    let cache = &session.request.cache;
    if *cache != Cache::None || previous.is_some() {
        session.clock.start(Phase::Restoring, None);
    }
    match cache {
        Cache::Image(r) => restore_image(session, resolved, r, layers, group)?,
        Cache::Dir(dir) => {
            let restored =
                crate::cache::restore(dir, layers, group).map_err(SessionError::RestoreCache)?;
            for r in &restored {
                session.clock.event(Event::notice(format!("Restored {r}")));
            }
        }
        Cache::None => {}
    }
    if let Some(p) = previous {
        let restored = crate::analyze::restore_metadata(p, group, layers)
            .map_err(SessionError::RestoreMetadata)?;
        for r in &restored {
            session.clock.event(Event::notice(format!(
                "Restored metadata of {r} (from the previous image)"
            )));
        }
    }
    Ok(())
}

pub(super) fn save(
    session: &Session<'_>,
    resolved: &Resolved,
    layers: &Path,
    group: &GroupToml,
) -> Result<(), SessionError> {
    match &session.request.cache {
        Cache::None => Ok(()),
        Cache::Dir(dir) => {
            session.clock.start(Phase::Caching, None);
            let saved = crate::cache::save(dir, layers, group).map_err(SessionError::SaveCache)?;
            session
                .clock
                .event(Event::notice(format!("Cached {} layer(s)", saved.len())));
            Ok(())
        }
        Cache::Image(r) => {
            session.clock.start(Phase::Caching, None);
            save_image(session, resolved, r, layers, group)
        }
    }
}

fn registry(
    session: &Session<'_>,
    r: &RegistryRef,
) -> Result<gp_oci::registry::Registry, SessionError> {
    session
        .store
        .registry(r)
        .map_err(|source| SessionError::Registry {
            reference: format!("--cache-image {r}"),
            source: Box::new(source),
        })
}

/// Pulls the cache image (a first build has none: noted, not an error) and restores the group's layers from it.
fn restore_image(
    session: &Session<'_>,
    resolved: &Resolved,
    r: &RegistryRef,
    layers: &Path,
    group: &GroupToml,
) -> Result<(), SessionError> {
    use crate::cache_image::CacheImage;
    use gp_oci::registry::ErrorKind;
    let store = session.store.images()?;
    let desc = match registry(session, r)?.pull(r, &store) {
        Ok(d) => d,
        Err(e) if e.kind() == Some(&ErrorKind::NotFound) => {
            session.clock.event(Event::notice(format!(
                "No cache image to restore from yet ({r})"
            )));
            return Ok(());
        }
        Err(e) => {
            // Building without the cache is still right; the push at the end will say if access is the problem.
            session.clock.event(Event::warning(format!(
                "cannot pull the cache image, building without it: {e}"
            )));
            return Ok(());
        }
    };
    // Held while its layers are restored: nothing collects them meanwhile.
    let _held = session.store.hold("cache-restore", &desc)?;
    let image = CacheImage::read(&store, &desc).map_err(|source| SessionError::CacheImage {
        reference: r.to_string(),
        source: Box::new(source),
    })?;
    let opts = session.layer_options(resolved)?;
    let memo = session.store.memo();
    let restored = crate::cache_image::restore(&image, &store, layers, group, Some((&memo, &opts)))
        .map_err(|e| SessionError::RestoreCacheImage(Box::new(e)))?;
    for name in &restored {
        session.clock.event(Event::notice(format!(
            "Restored {name} (from the cache image)"
        )));
    }
    Ok(())
}

/// Writes the cache image of this build's `cache = true` layers and pushes it.
fn save_image(
    session: &Session<'_>,
    resolved: &Resolved,
    r: &RegistryRef,
    layers: &Path,
    group: &GroupToml,
) -> Result<(), SessionError> {
    let held = session.store.reserve("cache")?;
    let memo = session.store.memo();
    let (desc, names) = crate::cache_image::save(
        held.layout(),
        held.tag(),
        layers,
        group,
        Some(&memo),
        &session.layer_options(resolved)?,
    )
    .map_err(|e| SessionError::SaveCacheImage(Box::new(e)))?;
    let stats = registry(session, r)?
        .push(held.layout(), &desc, r, None)
        .map_err(|e| SessionError::PushCacheImage(Box::new(e)))?;
    session.clock.event(Event::Pushed {
        reference: r.to_string(),
        digest: desc.digest.to_string(),
        uploaded: stats.uploaded,
        mounted: stats.mounted,
        present: stats.present,
        cache: true,
        layers: names.len(),
    });
    Ok(())
}
