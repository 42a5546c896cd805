//! `goldenpath image` on layouts and registries we do not control: concurrent copies into one layout keep every
//! tag, bad sources are refused with a clear message and leave nothing behind, hostile nesting exits cleanly, and
//! staging directories are never predictable names a planted link could redirect.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use gp_oci::image::{ImageConfig, add_layer, write_image};
use gp_oci::layer::{LayerOptions, entries_from_dir};
use gp_oci::layout::Layout;
use serde_json::{Value, json};

fn gp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A one-layer image tagged `v1` in a layout at `dir`.
fn image(dir: &Path) {
    let src = dir.with_extension("files");
    fs_err::create_dir_all(&src).unwrap();
    fs_err::write(src.join("hello.txt"), "hello\n").unwrap();
    let layout = Layout::create(dir).unwrap();
    let layer = add_layer(
        &layout,
        &entries_from_dir(&src, "").unwrap(),
        &LayerOptions::default(),
    )
    .unwrap();
    write_image(&layout, "v1", &[layer], &ImageConfig::default()).unwrap();
}

fn write_json(layout: &Path, v: &Value) -> Value {
    let bytes = serde_json::to_vec(v).unwrap();
    let d = gp_oci::digest::Digest::of(&bytes);
    fs_err::write(layout.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    json!({"mediaType": v["mediaType"], "digest": d.as_str(), "size": bytes.len()})
}

fn set_index(layout: &Path, desc: &Value) {
    let mut d = desc.clone();
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [d]});
    fs_err::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

#[test]
fn eight_concurrent_copies_times_five_tags_keep_all_forty() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image(&src);
    let from = format!("oci:{}:v1", src.display());
    let dst = tmp.path().join("shared");
    std::thread::scope(|s| {
        for p in 0..8 {
            let (from, dst) = (from.clone(), dst.clone());
            s.spawn(move || {
                for t in 0..5 {
                    let o = gp(&[
                        "image",
                        "copy",
                        &from,
                        &format!("oci:{}:p{p}-t{t}", dst.display()),
                    ]);
                    assert!(o.status.success(), "{}", stderr(&o));
                }
            });
        }
    });
    let tags = Layout::open(&dst).unwrap().entries().unwrap();
    assert_eq!(tags.len(), 40, "{tags:?}");
}

#[test]
fn a_copy_of_an_unknown_media_type_is_refused_and_leaves_no_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image(&src);
    let layout = Layout::open(&src).unwrap();
    let mut desc = layout.resolve(Some("v1")).unwrap().raw;
    desc["mediaType"] = json!("application/octet-stream");
    set_index(&src, &desc);
    let dst = tmp.path().join("new");
    let o = gp(&[
        "image",
        "copy",
        &format!("oci:{}:v1", src.display()),
        &format!("oci:{}:v1", dst.display()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "error: `{}/index.json`: `manifests[0]` names {} with media type `\"application/octet-stream\"`; \
             expected `application/vnd.oci.image.manifest.v1+json`, `application/vnd.oci.image.index.v1+json` or \
             their Docker v2 forms\n",
            src.display(),
            desc["digest"].as_str().unwrap()
        )
    );
    assert!(!dst.exists());
}

#[test]
fn a_copy_with_a_missing_layer_leaves_no_layout_and_an_empty_directory_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image(&src);
    let layout = Layout::open(&src).unwrap();
    let img = gp_oci::image::read_image(&layout, &layout.resolve(Some("v1")).unwrap()).unwrap();
    fs_err::remove_file(layout.blob_path(&img.layers[0].digest)).unwrap();
    let empty = tmp.path().join("empty");
    fs_err::create_dir(&empty).unwrap();
    for dst in [tmp.path().join("new"), empty.clone()] {
        let o = gp(&[
            "image",
            "copy",
            &format!("oci:{}:v1", src.display()),
            &format!("oci:{}:v1", dst.display()),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!(
                "error: blob {} is missing from `{}`\n",
                img.layers[0].digest,
                src.display()
            )
        );
    }
    assert!(!tmp.path().join("new").exists());
    assert_eq!(fs_err::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn thirty_thousand_nested_indexes_exit_with_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    image(&src);
    let mut top = Layout::open(&src).unwrap().resolve(Some("v1")).unwrap().raw;
    let platform = json!({"os": "linux", "architecture": gp_oci::image::host_arch()});
    for _ in 0..30_000 {
        top["platform"] = platform.clone();
        top = write_json(
            &src,
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]}),
        );
    }
    set_index(&src, &top);
    let from = format!("oci:{}:v1", src.display());
    let dst = format!("oci:{}", tmp.path().join("dst").display());
    for args in [
        vec!["image", "copy", &from, &dst],
        vec!["image", "inspect", &from],
        vec!["image", "unpack", &from, "/nonexistent/unpacked"],
    ] {
        let o = gp(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with(&format!(
                "error: images in `{}` nest deeper than 8 levels: ",
                src.display()
            )),
            "{e}"
        );
    }
    assert!(!tmp.path().join("dst").exists());
}

/// Answers every request on `listener` with 404 until the client gives up; calls `first` once, while the first
/// request is held.
fn refuse_all(listener: &TcpListener, first: &mut dyn FnMut()) {
    listener.set_nonblocking(false).unwrap();
    let mut called = false;
    while let Ok((mut s, _)) = listener.accept() {
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        if !called {
            first();
            called = true;
        }
        if buf.starts_with(b"STOP") {
            break;
        }
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

#[test]
fn registry_staging_directories_are_random_private_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    let outside = tmp.path().join("outside");
    fs_err::create_dir_all(&tmpdir).unwrap();
    fs_err::create_dir_all(&outside).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "inspect", &format!("127.0.0.1:{port}/app:1")])
        .env("TMPDIR", &tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The name the command used to choose, planted as a link out of the temp directory.
    let planted = tmpdir.join(format!("goldenpath-copy-{}", child.id()));
    fs_err::os::unix::fs::symlink(&outside, &planted).unwrap();
    let mut seen = Vec::new();
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            refuse_all(&listener, &mut || {
                for e in fs_err::read_dir(&tmpdir).unwrap() {
                    let e = e.unwrap();
                    let m = fs_err::symlink_metadata(e.path()).unwrap();
                    seen.push((
                        e.file_name().to_string_lossy().into_owned(),
                        m.is_dir(),
                        m.permissions().mode() & 0o777,
                    ));
                }
            });
        });
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(2));
        let mut stop = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stop.write_all(b"STOP").unwrap();
        server.join().unwrap();
    });
    seen.sort();
    let staged: Vec<_> = seen
        .iter()
        .filter(|(n, _, _)| *planted.file_name().unwrap().to_string_lossy() != **n)
        .collect();
    assert_eq!(staged.len(), 1, "{seen:?}");
    let (name, is_dir, mode) = staged[0];
    assert!(
        name.starts_with("goldenpath-copy-") && *is_dir && *mode == 0o700,
        "{seen:?}"
    );
    assert_eq!(fs_err::read_dir(&outside).unwrap().count(), 0);
    // Only the planted link is left: the staging directory is gone.
    let left: Vec<_> = fs_err::read_dir(&tmpdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![planted]);
}
