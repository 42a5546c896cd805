//! `goldenpath image unpack` on hostile images: refused with the entry named, nothing outside the target touched.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use gp_oci::image::{ImageConfig, add_tar_layer, write_image};
use gp_oci::layer::{LayerInfo, MEDIA_TYPE_TAR};
use gp_oci::layout::Layout;

/// One raw ustar entry: (name, type flag, link target, contents).
type Raw<'a> = (&'a str, u8, &'a str, &'a str);

/// A tar with raw names, which no well-behaved builder would write.
fn raw_tar(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data.as_bytes());
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
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
                format!("file {:?}", fs_err::read(&p).unwrap())
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

/// `base/image` (an OCI layout tagged `v1` with `layers`), `base/precious/keep` and an empty `base/work/`.
fn setup(layers: impl FnOnce(&Layout) -> Vec<LayerInfo>) -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let layout = Layout::create(&base.path().join("image")).unwrap();
    let layers = layers(&layout);
    write_image(&layout, "v1", &layers, &ImageConfig::default()).unwrap();
    fs_err::create_dir_all(base.path().join("precious")).unwrap();
    fs_err::write(base.path().join("precious/keep"), "precious").unwrap();
    fs_err::create_dir_all(base.path().join("work")).unwrap();
    base
}

/// Runs `image unpack` into `base/work/rootfs`, which must fail with `message`, leaving `base` as it was.
fn refused(base: &Path, message: &str) {
    let before = snapshot(base);
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "unpack"])
        .arg(format!("oci:{}:v1", base.join("image").display()))
        .arg(base.join("work/rootfs"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(message), "{err}\nwanted: {message}");
    assert_eq!(snapshot(base), before);
}

#[test]
fn a_whiteout_of_dot_dot_removes_nothing() {
    let base =
        setup(|l| vec![add_tar_layer(l, &raw_tar(&[(".wh...", b'0', "", "")])[..], 1).unwrap()]);
    refused(
        base.path(),
        "layer entry `.wh...` is a whiteout of `..`, which is not a name in its directory (whiteouts are `.wh.` and one file name); the layer is refused: rebuild the image or archive without it",
    );
}

#[test]
fn a_chain_of_links_out_of_the_root_is_refused() {
    let base = setup(|l| {
        let tar = raw_tar(&[
            ("d/", b'5', "", ""),
            ("d/up", b'2', "..", ""),
            ("x", b'2', "d/up/d/up/../precious", ""),
        ]);
        vec![add_tar_layer(l, &tar[..], 1).unwrap()]
    });
    refused(
        base.path(),
        "layer entry `x` is a symlink that points outside the root; the layer is refused",
    );
}

#[test]
fn a_write_through_an_absolute_link_is_refused() {
    let base = tempfile::tempdir().unwrap();
    let precious = base.path().join("precious");
    let target = precious.display().to_string();
    let layout = Layout::create(&base.path().join("image")).unwrap();
    let layers = [
        raw_tar(&[("x", b'2', &target, "")]),
        raw_tar(&[("x/keep", b'0', "", "overwritten")]),
    ]
    .map(|t| add_tar_layer(&layout, &t[..], 1).unwrap());
    write_image(&layout, "v1", &layers, &ImageConfig::default()).unwrap();
    fs_err::create_dir_all(&precious).unwrap();
    fs_err::write(precious.join("keep"), "precious").unwrap();
    fs_err::create_dir_all(base.path().join("work")).unwrap();
    refused(
        base.path(),
        "layer entry `x/keep` would be written through a symlink (`x`); the layer is refused",
    );
}

#[test]
fn a_gzip_layer_declared_as_a_plain_tar_is_named() {
    let mut digest = String::new();
    let base = setup(|l| {
        let mut info = add_tar_layer(l, &raw_tar(&[("f", b'0', "", "x")])[..], 1).unwrap();
        info.media_type = MEDIA_TYPE_TAR;
        digest = info.digest.to_string();
        vec![info]
    });
    refused(
        base.path(),
        &format!(
            "layer `{digest}` is declared `{MEDIA_TYPE_TAR}` but its bytes are gzip-compressed; fix the media type in the image's manifest or push the layer again"
        ),
    );
}

#[test]
fn a_buildpack_archive_with_a_whiteout_of_dot_dot_spares_tmpdir() {
    let base = setup(|_| Vec::new());
    // The archive is a gzip tar: the blob of a one-layer image.
    let blobs = tempfile::tempdir().unwrap();
    let layout = Layout::create(blobs.path()).unwrap();
    let info = add_tar_layer(&layout, &raw_tar(&[(".wh...", b'0', "", "")])[..], 1).unwrap();
    let tgz = base.path().join("bp.tgz");
    fs_err::copy(layout.blob_path(&info.digest), &tgz).unwrap();
    let tmpdir = base.path().join("tmp");
    fs_err::create_dir_all(&tmpdir).unwrap();
    fs_err::write(tmpdir.join("keep"), "precious").unwrap();
    let config = base.path().join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"{}\"\n\n[[order]]\n[[order.group]]\nid = \"x/y\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"oci:{}:v1\"\n\n[[run.images]]\nimage = \"oci:{}:v1\"\n",
            tgz.display(),
            base.path().join("image").display(),
            base.path().join("image").display()
        ),
    )
    .unwrap();
    let before = snapshot(base.path());
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["builder", "create", "--launcher", "/bin/true", "--tag"])
        .arg(format!(
            "oci:{}:b",
            base.path().join("work/builder").display()
        ))
        .arg("--config")
        .arg(&config)
        .env("TMPDIR", &tmpdir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(
            "layer entry `.wh...` is a whiteout of `..`, which is not a name in its directory"
        ),
        "{err}"
    );
    let mut after = snapshot(base.path());
    after.retain(|p, _| !p.starts_with("work/builder"));
    assert_eq!(after, before);
}
