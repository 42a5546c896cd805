//! Root filesystems from cached layers: each layer of an image unpacked once, into a directory of its own, and a
//! container's root an overlayfs mount of those directories with a writable upper directory of its own.
//!
//! Unpacking a whole image for every new version is most of the cost of a deploy: a Python app's image is about
//! 190 MB in 8,000 files, and about 1 s of unpacking on 2 cores, where its new app layer is a few kilobytes. With
//! the layers kept, a new version unpacks only the layers it does not share with a running one.
//!
//! A layer's directory depends on the layers below it (a directory the layer holds only as a parent takes its owner
//! and mode from below), so layers are keyed by their *chain*: the digest of the layer and every layer under it, as
//! the OCI chain ID is. Directories are counted by the mounts that use them and removed when the last one goes;
//! [`LayerCache::prune`] removes what an earlier process left.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gp_oci::image::open_layer;
use gp_oci::layout::{Desc, Layout};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use sha2::{Digest as _, Sha256};

use crate::RunError;

/// Prefix of the directories being unpacked or removed (never a layer: those are 64 hex digits).
const TEMPORARY: &str = ".";

/// The unpacked layers, under one directory.
#[derive(Debug)]
pub struct LayerCache {
    root: PathBuf,
    /// Mounts using each layer directory (by chain key).
    users: Mutex<HashMap<String, usize>>,
    /// Held while a layer is unpacked, so that two deploys sharing a layer unpack it once.
    unpacking: Mutex<()>,
}

/// An overlayfs root mounted from cached layers; unmounted, and its layers released, when dropped.
#[derive(Debug)]
pub struct Mounted {
    rootfs: PathBuf,
    keys: Vec<String>,
    cache: Arc<LayerCache>,
    /// Layers found in the cache and layers unpacked for this mount.
    pub cached: usize,
    pub unpacked: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn io(action: &'static str, path: &Path) -> impl Fn(std::io::Error) -> RunError + use<> {
    let path = path.to_path_buf();
    move |source| RunError::Io {
        action,
        path: path.clone(),
        source,
    }
}

/// The chain keys of `layers` (bottom first): each the hash of the key below it and the layer's digest.
fn chain_keys(layers: &[Desc]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(layers.len());
    for layer in layers {
        let mut h = Sha256::new();
        if let Some(below) = keys.last() {
            h.update(below.as_bytes());
            h.update(b" ");
        }
        h.update(layer.digest.to_string().as_bytes());
        keys.push(hex::encode(h.finalize()));
    }
    keys
}

impl LayerCache {
    /// The cache in `root` (created when missing). Directories a killed process left half-made are removed.
    pub fn open(root: &Path) -> Result<Arc<Self>, RunError> {
        fs_err::create_dir_all(root).map_err(io("create", root))?;
        for entry in fs_err::read_dir(root).map_err(io("read", root))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMPORARY) {
                let _ = fs_err::remove_dir_all(entry.path());
            }
        }
        Ok(Arc::new(Self {
            root: root.to_path_buf(),
            users: Mutex::new(HashMap::new()),
            unpacking: Mutex::new(()),
        }))
    }

    /// Mounts the image's `layers` (of `layout`, bottom first) as `<dir>/rootfs`, with `<dir>/upper` and
    /// `<dir>/work` as overlayfs's writable and work directories. Layers the cache lacks are unpacked into it first.
    /// Needs root and overlayfs; on failure nothing is mounted and no layer is held (the caller removes `<dir>`).
    pub fn mount(
        self: &Arc<Self>,
        layout: &Layout,
        layers: &[Desc],
        dir: &Path,
    ) -> Result<Mounted, RunError> {
        let keys = chain_keys(layers);
        {
            let mut users = lock(&self.users);
            for k in &keys {
                *users.entry(k.clone()).or_insert(0) += 1;
            }
        }
        // From here on the keys are released on every way out (the guard's drop).
        let mut mounted = Mounted {
            rootfs: dir.join("rootfs"),
            keys,
            cache: Arc::clone(self),
            cached: 0,
            unpacked: 0,
        };
        for (i, layer) in layers.iter().enumerate() {
            let path = self.root.join(&mounted.keys[i]);
            if path.is_dir() {
                mounted.cached += 1;
                continue;
            }
            let _one = lock(&self.unpacking);
            if path.is_dir() {
                mounted.cached += 1;
                continue;
            }
            let lower: Vec<PathBuf> = mounted.keys[..i]
                .iter()
                .rev()
                .map(|k| self.root.join(k))
                .collect();
            let lower: Vec<&Path> = lower.iter().map(PathBuf::as_path).collect();
            let unpack_err = |source| RunError::Unpack {
                path: path.clone(),
                source: Box::new(source),
            };
            let tar = open_layer(layout, layer).map_err(|e| {
                unpack_err(gp_oci::unpack::UnpackError::Read(std::io::Error::other(
                    e.to_string(),
                )))
            })?;
            gp_oci::unpack::unpack_overlay_layer(tar, &lower, &path).map_err(unpack_err)?;
            mounted.unpacked += 1;
        }
        let lower: Vec<PathBuf> = mounted
            .keys
            .iter()
            .rev()
            .map(|k| self.root.join(k))
            .collect();
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&mounted.rootfs, &upper, &work] {
            fs_err::create_dir_all(d).map_err(io("create", d))?;
        }
        overlay(&lower, &upper, &work, &mounted.rootfs).map_err(|source| RunError::Overlay {
            path: mounted.rootfs.clone(),
            source,
        })?;
        Ok(mounted)
    }

    /// Removes the layer directories no mount of this process uses (what an earlier run left); returns how many.
    pub fn prune(&self) -> usize {
        let _one = lock(&self.unpacking);
        let users = lock(&self.users);
        let Ok(entries) = fs_err::read_dir(&self.root) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !users.contains_key(&name) && self.discard(&name) {
                removed += 1;
            }
        }
        removed
    }

    /// Moves the layer `key` aside (at once: a mount starting now unpacks it anew) and removes it.
    fn discard(&self, key: &str) -> bool {
        let path = self.root.join(key);
        let aside = self
            .root
            .join(format!("{TEMPORARY}removing-{key}-{}", std::process::id()));
        if fs_err::rename(&path, &aside).is_err() {
            return false;
        }
        let _ = fs_err::remove_dir_all(&aside);
        true
    }

    fn release(&self, keys: &[String]) {
        let mut users = lock(&self.users);
        for k in keys {
            let Some(n) = users.get_mut(k) else { continue };
            *n -= 1;
            if *n == 0 {
                users.remove(k);
                self.discard(k);
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.rootfs);
        self.cache.release(&self.keys);
    }
}

/// Unmounts an overlay root (lazily: a process still inside keeps it until it leaves). Nothing mounted there is
/// fine; used for what a killed process left too.
pub fn unmount(rootfs: &Path) -> std::io::Result<()> {
    match rustix::mount::unmount(rootfs, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Mounts overlayfs at `target`: `lower` top first. The new mount API takes one lower directory per call
/// (`lowerdir+`, Linux 6.8), so no number of layers meets the one-page limit of the old `mount(2)` options string;
/// older kernels get that string.
fn overlay(lower: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> std::io::Result<()> {
    let new_api = || -> std::io::Result<()> {
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for l in lower {
            rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", l)?;
        }
        rustix::mount::fsconfig_set_string(fs.as_fd(), "upperdir", upper)?;
        rustix::mount::fsconfig_set_string(fs.as_fd(), "workdir", work)?;
        rustix::mount::fsconfig_create(fs.as_fd())?;
        let m = rustix::mount::fsmount(
            fs.as_fd(),
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::empty(),
        )?;
        rustix::mount::move_mount(
            m.as_fd(),
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    };
    let Err(new_err) = new_api() else {
        return Ok(());
    };
    let joined: Vec<String> = lower.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        joined.join(":"),
        upper.display(),
        work.display()
    );
    // The old options string cannot say a path with `,` or `:` in it.
    let paths = [upper.display().to_string(), work.display().to_string()];
    if joined.iter().chain(&paths).any(|p| p.contains([',', ':'])) {
        return Err(new_err);
    }
    let data = std::ffi::CString::new(data).map_err(|_| new_err)?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    enum T<'a> {
        Dir(&'a str, u32),
        File(&'a str, &'a str),
        Sym(&'a str, &'a str),
    }

    fn tar_of(entries: &[T<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_ustar();
            let (name, data, mode) = match e {
                T::Dir(n, mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    (*n, &b""[..], *mode)
                }
                T::File(n, d) => (*n, d.as_bytes(), 0o644),
                T::Sym(n, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_link_name(target).unwrap();
                    (*n, &b""[..], 0o777)
                }
            };
            h.set_path(name).unwrap();
            h.set_mode(mode);
            h.set_uid(if name.starts_with("workspace") {
                1000
            } else {
                0
            });
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// Everything below `dir`: kind, mode, owner, contents or link target.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs_err::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = fs_err::symlink_metadata(&p).unwrap();
                let what = if m.is_symlink() {
                    format!("link {}", fs_err::read_link(&p).unwrap().display())
                } else if m.is_dir() {
                    todo.push(p.clone());
                    "dir".to_owned()
                } else {
                    format!("file {:?}", fs_err::read_to_string(&p).unwrap())
                };
                let key = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(
                    key,
                    format!("{what} {:o} {}:{}", m.mode(), m.uid(), m.gid()),
                );
            }
        }
        out
    }

    fn is_root() -> bool {
        fs_err::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    }

    /// Three layers with what overlayfs must get right: a whiteout, an opaque directory, a directory that a
    /// layer has only as a parent (owned by the CNB user below), a replaced file and a link.
    fn image(tmp: &Path) -> (Layout, Vec<Desc>) {
        let layout = Layout::create(&tmp.join("layout")).unwrap();
        let layers = [
            tar_of(&[
                T::Dir("etc/", 0o755),
                T::File("etc/a", "a"),
                T::File("etc/b", "b"),
                T::Dir("opt/", 0o755),
                T::File("opt/x", "x"),
                T::Dir("workspace/", 0o750),
            ]),
            tar_of(&[
                T::File("etc/.wh.a", ""),
                T::File("opt/.wh..wh..opq", ""),
                T::File("opt/y", "y"),
                T::File("workspace/app.py", "print()"),
                T::Sym("link", "/etc/b"),
            ]),
            tar_of(&[
                T::File("etc/b", "new b"),
                T::File("srv/www/index.html", "hi"),
            ]),
        ];
        let descs = layers
            .iter()
            .map(|l| {
                let digest = layout.write_blob(l).unwrap();
                Desc::parse_in(
                    &serde_json::json!({
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digest.to_string(),
                        "size": l.len()
                    }),
                    "test",
                    "a layer",
                )
                .unwrap()
            })
            .collect();
        (layout, descs)
    }

    #[test]
    fn an_overlay_root_is_the_image_unpacked_whole_and_its_layers_go_with_it() {
        if !is_root() {
            eprintln!("skipped: overlayfs roots need root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (layout, layers) = image(tmp.path());
        let whole = tmp.path().join("whole");
        gp_oci::unpack::unpack_layers(
            layers.iter().map(|l| {
                open_layer(&layout, l).map_err(|e| {
                    gp_oci::unpack::UnpackError::Read(std::io::Error::other(e.to_string()))
                })
            }),
            &whole,
        )
        .unwrap();
        let cache = LayerCache::open(&tmp.path().join("layers")).unwrap();
        let first = cache
            .mount(&layout, &layers, &tmp.path().join("one"))
            .unwrap();
        assert_eq!((first.cached, first.unpacked), (0, 3));
        assert_eq!(snapshot(&first.rootfs), snapshot(&whole));
        // A second version sharing the two lower layers unpacks only its own top one.
        let second = cache
            .mount(&layout, &layers[..2], &tmp.path().join("two"))
            .unwrap();
        assert_eq!((second.cached, second.unpacked), (2, 0));
        // Writes go to the version's own upper directory, never into the shared layers.
        fs_err::write(first.rootfs.join("etc/b"), "changed").unwrap();
        assert_eq!(
            fs_err::read_to_string(second.rootfs.join("etc/b")).unwrap(),
            "b"
        );
        let rootfs = first.rootfs.clone();
        drop(first);
        assert!(
            fs_err::read_dir(&rootfs).unwrap().next().is_none(),
            "unmounted"
        );
        let kept = |c: &LayerCache| fs_err::read_dir(&c.root).unwrap().count();
        assert_eq!(kept(&cache), 2, "the top layer went with its last user");
        drop(second);
        assert_eq!(kept(&cache), 0);
        // What an earlier process left is pruned.
        fs_err::create_dir_all(cache.root.join(chain_keys(&layers)[0].clone())).unwrap();
        assert_eq!(LayerCache::open(&cache.root).unwrap().prune(), 1);
    }

    fn desc(n: u8) -> Desc {
        Desc::parse_in(
            &serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": format!("sha256:{}", hex::encode([n; 32])),
                "size": 1
            }),
            "test",
            "a layer",
        )
        .unwrap()
    }

    #[test]
    fn a_layer_is_keyed_by_everything_below_it() {
        let ab = chain_keys(&[desc(1), desc(2)]);
        let cb = chain_keys(&[desc(3), desc(2)]);
        assert_eq!(ab.len(), 2);
        assert_ne!(
            ab[1], cb[1],
            "the same layer on another base is another directory"
        );
        assert_eq!(chain_keys(&[desc(1)])[0], ab[0], "a shared base is shared");
        assert!(
            ab.iter()
                .all(|k| k.len() == 64 && !k.starts_with(TEMPORARY))
        );
    }
}
