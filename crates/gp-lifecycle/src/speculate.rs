//! Early export: while buildpacks are still running, launch layers that have stopped changing are written into the
//! output layout through the layer memo, on a background thread. A buildpack that installs a runtime and then spends
//! seconds on `pip install` or `npm ci` leaves the runtime layer finished long before the build ends; compressing
//! it then takes that work out of the export. Nothing here is trusted: the exporter still fingerprints every layer
//! and takes the early result only when every file is as it was when it was read (same device, inode, size and
//! modification time), otherwise it writes the layer again. The memo itself records a layer only when its files did
//! not change while they were read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use gp_oci::layer::{LayerOptions, entries_from_dir};
use gp_oci::layout::Layout;
use gp_oci::memo::Memo;

/// Called with each layer written early.
pub type AfterWrite = Box<dyn Fn(&Layout, &gp_oci::layer::LayerInfo) + Send>;

/// How often the layers directory is looked at.
const POLL: Duration = Duration::from_millis(100);

/// A layer counts as settled after no change for one millisecond per this many bytes (at least [`POLL`]): 100 ms
/// up to 100 MiB, 400 ms for 400 MiB. (With [`MAX_ATTEMPTS`] this bounds the work a paused download can waste.)
const QUIET_BYTES_PER_MS: u64 = 1024 * 1024;

/// A layer is written early at most this many times (it kept changing after being written).
const MAX_ATTEMPTS: u32 = 2;

/// What the watcher knows of one layer.
struct Seen {
    sig: Signature,
    since: std::time::Instant,
    written: bool,
    attempts: u32,
}

/// A running early export; [`Speculator::finish`] stops it.
#[derive(Debug)]
pub struct Speculator {
    stop: Arc<AtomicBool>,
    /// Dropped (or sent to) to wake the thread from its wait at once.
    wake: Option<std::sync::mpsc::Sender<()>>,
    written: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

/// What a layer looked like at one poll: entry count, total size, newest modification (ns). Equal at two polls in a
/// row means nothing was written in between (as far as a cheap look can tell; the memo checks exactly).
type Signature = (usize, u64, i128);

fn signature(dir: &Path) -> Option<Signature> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    let (mut count, mut size, mut newest) = (0usize, 0u64, i128::MIN);
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).ok()? {
            let e = e.ok()?;
            let m = fs_err::symlink_metadata(e.path()).ok()?;
            count += 1;
            size += m.size();
            newest = newest.max(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    let m = fs_err::metadata(dir).ok()?;
    newest = newest.max(i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()));
    Some((count, size, newest))
}

/// Launch layers present now: (`<bp dir>/<layer>`, tar prefix `layers/<bp dir>/<layer>`).
fn launch_layers(layers: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for bp in fs_err::read_dir(layers).into_iter().flatten().flatten() {
        let bp_name = bp.file_name().to_string_lossy().into_owned();
        if !bp.path().is_dir() || bp_name == "config" || bp_name.starts_with('.') {
            continue;
        }
        for l in crate::layers::layer_dirs(&bp.path()) {
            if l.meta.types().launch {
                out.push((l.path, format!("layers/{bp_name}/{}", l.name)));
            }
        }
    }
    out
}

impl Speculator {
    /// Starts watching `layers` (the build's layers directory on the host); layers go into `out` through `memo`
    /// with `opts` (the exporter's).
    #[must_use]
    pub fn start(layers: &Path, out: Layout, memo: Memo, opts: LayerOptions) -> Self {
        Self::start_with(layers, out, memo, opts, None)
    }

    /// [`Speculator::start`], calling `then` with each layer written (on the same thread: to upload it early).
    #[must_use]
    pub fn start_with(
        layers: &Path,
        out: Layout,
        memo: Memo,
        opts: LayerOptions,
        then: Option<AfterWrite>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let (stop2, written2, layers) = (stop.clone(), written.clone(), layers.to_path_buf());
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            // Per layer: its signature, when it was first seen so, whether it was written in that state, and how
            // many times it was written at all.
            let mut seen: std::collections::HashMap<PathBuf, Seen> =
                std::collections::HashMap::new();
            while !stop2.load(Ordering::Relaxed) {
                if !matches!(
                    woken.recv_timeout(POLL),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                ) {
                    break; // stopped
                }
                for (dir, prefix) in launch_layers(&layers) {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(sig) = signature(&dir) else { continue };
                    let now = std::time::Instant::now();
                    let entry = seen.entry(dir.clone()).or_insert(Seen {
                        sig,
                        since: now,
                        written: false,
                        attempts: 0,
                    });
                    if entry.sig != sig {
                        *entry = Seen {
                            sig,
                            since: now,
                            written: false,
                            attempts: entry.attempts,
                        };
                        continue;
                    }
                    // Settled: unchanged for a quiet time that grows with the layer (a pause in a large download
                    // is not an end), not yet written in this state, and not rewritten over and over.
                    let quiet = POLL.max(Duration::from_millis(sig.1 / QUIET_BYTES_PER_MS));
                    if entry.written || entry.attempts >= MAX_ATTEMPTS || now - entry.since < quiet
                    {
                        continue;
                    }
                    entry.attempts += 1;
                    let written = entries_from_dir(&dir, &prefix)
                        .ok()
                        .and_then(|entries| memo.add_layer(&out, &entries, &opts).ok());
                    if let Some((info, _)) = written {
                        written2.fetch_add(1, Ordering::Relaxed);
                        if let Some(f) = &then {
                            f(&out, &info);
                        }
                    }
                    // Look again: the tree may have changed while it was being read.
                    entry.written = signature(&dir) == Some(sig);
                }
            }
        });
        Self {
            stop,
            wake: Some(wake),
            written,
            handle: Some(handle),
        }
    }

    /// Stops watching (a layer being written is finished first) and returns how many layers were written early.
    #[must_use]
    pub fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.wake = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.written.load(Ordering::Relaxed)
    }
}

impl Drop for Speculator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(layers: &Path, name: &str, content: &str) {
        let bp = layers.join("test_bp");
        fs_err::create_dir_all(bp.join(name)).unwrap();
        fs_err::write(bp.join(name).join("file"), content).unwrap();
        fs_err::write(bp.join(format!("{name}.toml")), "[types]\nlaunch = true\n").unwrap();
    }

    #[test]
    fn a_settled_layer_is_written_early_and_a_changed_one_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("layers");
        let out = Layout::create(&tmp.path().join("oci")).unwrap();
        let memo = Memo::new(&tmp.path().join("memo"));
        let opts = LayerOptions::default();
        layer(&layers, "runtime", "v1");
        let spec = Speculator::start(&layers, out.clone(), memo.clone(), opts);
        std::thread::sleep(POLL * 4);
        assert_eq!(spec.finish(), 1);
        let entries = |l: &str| {
            entries_from_dir(
                &layers.join("test_bp").join(l),
                &format!("layers/test_bp/{l}"),
            )
            .unwrap()
        };
        // The exporter's look: a hit.
        assert!(memo.add_layer(&out, &entries("runtime"), &opts).unwrap().1);
        // Changed afterwards (a new file at the same path): a miss, written anew.
        fs_err::remove_file(layers.join("test_bp/runtime/file")).unwrap();
        fs_err::write(layers.join("test_bp/runtime/file"), "v2").unwrap();
        assert!(!memo.add_layer(&out, &entries("runtime"), &opts).unwrap().1);
    }
}
