//! Integration tests of the OCI engine: layouts written by hand, registries behind a fault-injecting proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::must_use_candidate)] // test helpers: a panic is the failure report

mod fault_proxy;
mod hostile_layout;
mod registry_faults;
mod registry_limits;
mod registry_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gp_oci::digest::Digest;
use serde_json::{Value, json};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A layout written byte by byte, without the engine: what a hostile pull request or registry could hand us.
#[derive(Debug)]
pub struct Crafted {
    pub root: PathBuf,
}

impl Crafted {
    pub fn new(root: &Path) -> Self {
        fs_err::create_dir_all(root.join("blobs/sha256")).unwrap();
        fs_err::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let c = Self {
            root: root.to_path_buf(),
        };
        c.index(&json!([]));
        c
    }

    /// Writes `bytes` as a blob; its digest.
    pub fn blob(&self, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        fs_err::write(self.root.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        d
    }

    /// Writes `v` as a JSON blob; a descriptor of it with `media_type`.
    pub fn json(&self, media_type: &str, v: &Value) -> Value {
        let bytes = serde_json::to_vec(v).unwrap();
        let d = self.blob(&bytes);
        json!({"mediaType": media_type, "digest": d.as_str(), "size": bytes.len()})
    }

    /// A one-layer image (layer: a tar holding `hello`); its manifest descriptor.
    pub fn image(&self) -> Value {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "hello", &b"hello"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let layer = self.blob(&tar);
        let diff = layer.clone();
        let config = self.json(
            CONFIG,
            &json!({"architecture": gp_oci::image::host_arch(), "os": "linux", "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [diff.as_str()]}}),
        );
        self.json(
            MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config,
                    "layers": [{"mediaType": TAR, "digest": layer.as_str(), "size": tar.len()}]}),
        )
    }

    /// Replaces `index.json`'s `manifests` with `manifests`.
    pub fn index(&self, manifests: &Value) {
        let v = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        fs_err::write(
            self.root.join("index.json"),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
    }

    /// `desc` tagged `tag`, as an `index.json` entry.
    pub fn tagged(desc: &Value, tag: &str) -> Value {
        let mut d = desc.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        d
    }

    pub fn blob_path(&self, desc: &Value) -> PathBuf {
        let d: Digest = desc["digest"].as_str().unwrap().parse().unwrap();
        self.root.join("blobs/sha256").join(d.hex())
    }
}

/// Everything under `dir` (paths, kinds, modes, link targets, bytes), to prove it did not change.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs_err::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode();
        let what = if m.is_symlink() {
            format!("link {mode:o} {}", fs_err::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            for e in fs_err::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            format!("dir {mode:o}")
        } else if m.is_file() {
            format!("file {mode:o} {}", Digest::of(&fs_err::read(&p).unwrap()))
        } else {
            format!("special {mode:o}")
        };
        out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), what);
    }
    out
}
