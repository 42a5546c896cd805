//! OCI layouts: images we write are read by skopeo and umoci; images they write are copied and inspected by us
//! with identical digests; corrupt blobs are refused.

use std::path::Path;
use std::process::Command;

use gp_oci::image::{ImageConfig, add_layer, write_image};
use gp_oci::layer::{LayerOptions, entries_from_dir};
use gp_oci::layout::Layout;
use serde_json::Value;

use crate::{require_tool, run};

fn gp(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn our_image(dir: &Path) -> String {
    let src = dir.join("src");
    fs_err::create_dir_all(src.join("app")).unwrap();
    fs_err::write(src.join("app/hello.txt"), "hello from goldenpath\n").unwrap();
    let layout = Layout::create(&dir.join("ours")).unwrap();
    let entries = entries_from_dir(&src, "").unwrap();
    let layer = add_layer(
        &layout,
        &entries,
        &LayerOptions {
            uid: 1000,
            gid: 1000,
            ..LayerOptions::default()
        },
    )
    .unwrap();
    let config = ImageConfig {
        user: Some("1000:1000".into()),
        cmd: vec!["/bin/true".into()],
        ..ImageConfig::default()
    };
    write_image(&layout, "v1", &[layer], &config)
        .unwrap()
        .digest
        .to_string()
}

#[test]
fn skopeo_and_umoci_read_our_images() {
    if !(require_tool("skopeo") && require_tool("umoci")) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let digest = our_image(tmp.path());
    let ours = format!("oci:{}:v1", tmp.path().join("ours").display());
    let (ok, raw) = run(Command::new("skopeo").args(["inspect", "--raw", &ours]));
    assert!(ok, "{raw}");
    assert_eq!(
        gp_oci::digest::Digest::of(raw.trim_end().as_bytes()).to_string(),
        digest
    );
    let copy = format!("oci:{}:v1", tmp.path().join("skopeo-copy").display());
    let (ok, msg) = run(Command::new("skopeo").args(["copy", &ours, &copy]));
    assert!(ok, "{msg}");
    let (ok, out, err) = gp(&["image", "inspect", "--json", &copy]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["digest"],
        digest.as_str(),
        "skopeo kept our manifest byte for byte"
    );
    let bundle = tmp.path().join("bundle");
    let (ok, msg) = run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:v1", tmp.path().join("ours").display()))
        .arg(&bundle));
    assert!(ok, "{msg}");
    assert_eq!(
        fs_err::read_to_string(bundle.join("rootfs/app/hello.txt")).unwrap(),
        "hello from goldenpath\n"
    );
}

#[test]
fn we_read_copy_and_unpack_images_umoci_wrote() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    let content = tmp.path().join("content");
    fs_err::create_dir_all(content.join("etc")).unwrap();
    fs_err::write(content.join("etc/motd"), "from umoci\n").unwrap();
    for args in [
        vec![
            "init".to_owned(),
            "--layout".into(),
            theirs.display().to_string(),
        ],
        vec![
            "new".into(),
            "--image".into(),
            format!("{}:t", theirs.display()),
        ],
        vec![
            "insert".into(),
            "--rootless".into(),
            "--image".into(),
            format!("{}:t", theirs.display()),
            content.display().to_string(),
            "/".into(),
        ],
    ] {
        let (ok, msg) = run(Command::new("umoci").args(&args));
        assert!(ok, "umoci {args:?}: {msg}");
    }
    let their_digest = Layout::open(&theirs)
        .unwrap()
        .resolve(Some("t"))
        .unwrap()
        .digest
        .to_string();
    let src = format!("oci:{}:t", theirs.display());
    let dst = format!("oci:{}:copied", tmp.path().join("ours").display());
    let (ok, _, err) = gp(&["image", "copy", &src, &dst]);
    assert!(ok, "{err}");
    let (ok, out, err) = gp(&["image", "inspect", "--json", &dst]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"], their_digest.as_str());
    let rootfs = tmp.path().join("rootfs");
    let (ok, _, err) = gp(&["image", "unpack", &dst, &rootfs.display().to_string()]);
    assert!(ok, "{err}");
    assert_eq!(
        fs_err::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "from umoci\n"
    );
}

#[test]
fn a_corrupt_blob_is_refused_and_the_tag_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    our_image(tmp.path());
    let layout = Layout::open(&tmp.path().join("ours")).unwrap();
    let desc = layout.resolve(Some("v1")).unwrap();
    let manifest: Value = serde_json::from_slice(&layout.read_blob(&desc.digest).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    fs_err::write(layout.blob_path(&layer), b"tampered").unwrap();
    let dst = tmp.path().join("dst");
    let (ok, _, err) = gp(&[
        "image",
        "copy",
        &format!("oci:{}:v1", tmp.path().join("ours").display()),
        &format!("oci:{}:v1", dst.display()),
    ]);
    assert!(!ok);
    assert!(
        err.contains("corrupt") && err.contains(layer.as_str()),
        "{err}"
    );
    // The source is checked before the destination is created: no layout, so no tag and no leftovers.
    assert!(
        !dst.exists() || Layout::open(&dst).unwrap().resolve(Some("v1")).is_err(),
        "no tag for a half-copied image"
    );
    let leftovers: Vec<_> = fs_err::read_dir(dst.join("blobs/sha256"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}
