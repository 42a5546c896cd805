//! Layouts from people we do not trust: every case is refused with a message naming the blob, the field and what
//! was expected, nothing outside the target changes, nothing hangs, and concurrent writers lose nothing.

use std::collections::HashSet;
use std::path::Path;

use gp_oci::digest::Digest;
use gp_oci::image::{open_layer, read_image};
use gp_oci::layout::{Desc, Layout, MAX_DEPTH, MAX_JSON_BLOB, copy_image};
use serde_json::{Value, json};

use crate::{CONFIG, Crafted, INDEX, MANIFEST, snapshot};

fn digest_of(desc: &Value) -> Digest {
    desc["digest"].as_str().unwrap().parse().unwrap()
}

fn desc(v: &Value) -> Desc {
    Desc::parse(v, Path::new("test")).unwrap()
}

/// Copies `tag` of `src` into a new layout beside it; the error message.
fn copy_err(src: &Path, tag: &str) -> String {
    let layout = Layout::open(src).unwrap();
    let err = layout
        .resolve(Some(tag))
        .and_then(|d| {
            let dst = Layout::create(&src.with_extension("copy"))?;
            copy_image(&layout, &dst, &d)
        })
        .unwrap_err();
    err.to_string()
}

#[test]
fn eight_writers_times_five_tags_keep_all_forty() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let m = desc(&c.image());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (root, m) = (c.root.clone(), m.clone());
            s.spawn(move || {
                // One handle per thread, as separate processes would have.
                let l = Layout::create(&root).unwrap();
                for i in 0..5 {
                    l.set_tag(&format!("t{t}-{i}"), &m).unwrap();
                }
            });
        }
    });
    let tags: HashSet<String> = Layout::open(&c.root)
        .unwrap()
        .entries()
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(tags.len(), 40, "{tags:?}");
}

#[test]
fn an_index_entry_of_unknown_media_type_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let mut m = c.image();
    m["mediaType"] = json!("application/x-not-an-image\u{1b}[2J");
    c.index(&json!([Crafted::tagged(&m, "v1")]));
    let err = copy_err(&c.root, "v1");
    assert_eq!(
        err,
        format!(
            "`{}/index.json`: `manifests[0]` names {} with media type `\"application/x-not-an-image\\u001b[2J\"`; \
             expected `application/vnd.oci.image.manifest.v1+json`, `application/vnd.oci.image.index.v1+json` or \
             their Docker v2 forms",
            c.root.display(),
            digest_of(&m)
        )
    );
    assert!(!c.root.with_extension("copy").exists());
}

#[test]
fn a_child_of_unknown_media_type_in_an_index_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let mut m = c.image();
    m["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar");
    let index = c.json(INDEX, &json!({"schemaVersion": 2, "manifests": [m]}));
    c.index(&json!([Crafted::tagged(&index, "v1")]));
    let err = copy_err(&c.root, "v1");
    assert_eq!(
        err,
        format!(
            "index {}: `manifests[0]` names {} with media type `\"application/vnd.oci.image.layer.v1.tar\"`; \
             expected `application/vnd.oci.image.manifest.v1+json`, `application/vnd.oci.image.index.v1+json` or \
             their Docker v2 forms",
            digest_of(&index),
            digest_of(&m)
        )
    );
}

#[test]
fn a_manifest_declared_as_an_index_and_the_reverse_are_detected_by_content() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let mut m = c.image();
    m["mediaType"] = json!(INDEX);
    let index = c.json(
        MANIFEST,
        &json!({"schemaVersion": 2, "manifests": [c.image()]}),
    );
    c.index(&json!([
        Crafted::tagged(&m, "m"),
        Crafted::tagged(&index, "i")
    ]));
    assert_eq!(
        copy_err(&c.root, "m"),
        format!(
            "{} is declared as an index but its content is a manifest (its `mediaType` says so); correct the \
             `mediaType` of the descriptor that names it",
            digest_of(&m)
        )
    );
    assert_eq!(
        copy_err(&c.root, "i"),
        format!(
            "{} is declared as a manifest but its content is an index (it has `manifests` and no `config`); \
             correct the `mediaType` of the descriptor that names it",
            digest_of(&index)
        )
    );
}

#[test]
fn thirty_thousand_nested_indexes_are_refused_at_the_depth_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let mut top = c.image();
    let mut chain = vec![digest_of(&top)];
    let platform = json!({"os": "linux", "architecture": gp_oci::image::host_arch()});
    for _ in 0..30_000 {
        top["platform"] = platform.clone();
        top = c.json(INDEX, &json!({"schemaVersion": 2, "manifests": [top]}));
        chain.push(digest_of(&top));
    }
    c.index(&json!([Crafted::tagged(&top, "deep")]));
    let shown: Vec<&str> = chain
        .iter()
        .rev()
        .take(MAX_DEPTH + 1)
        .map(|d| &d.as_str()[..19])
        .collect();
    let expected = format!(
        "images in `{}` nest deeper than 8 levels: {}; an image is an index of manifests, a few levels at most",
        c.root.display(),
        shown.join(" -> ")
    );
    assert_eq!(copy_err(&c.root, "deep"), expected);
    let l = Layout::open(&c.root).unwrap();
    assert_eq!(l.gc().unwrap_err().to_string(), expected);
    let e = read_image(&l, &l.resolve(Some("deep")).unwrap()).unwrap_err();
    assert!(e.to_string().contains("nest deeper than 8 levels"), "{e}");
}

#[test]
fn many_references_to_one_child_are_walked_once() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let m = c.image();
    // 3 levels of 2,000 references each: 8*10^9 visits without a visited set.
    let mut top = m.clone();
    for _ in 0..3 {
        let list: Vec<Value> = (0..2_000).map(|_| top.clone()).collect();
        top = c.json(INDEX, &json!({"schemaVersion": 2, "manifests": list}));
    }
    c.index(&json!([Crafted::tagged(&top, "wide")]));
    let src = Layout::open(&c.root).unwrap();
    let dst = Layout::create(&tmp.path().join("dst")).unwrap();
    let start = std::time::Instant::now();
    let copied = copy_image(&src, &dst, &src.resolve(Some("wide")).unwrap()).unwrap();
    assert_eq!(copied, 3 + 3, "3 indexes + manifest, config, layer");
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn a_hundred_megabyte_manifest_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    // A sparse file: never read, so its digest is irrelevant; the descriptor's size alone refuses it.
    let fake = Digest::of(b"big");
    let path = c.root.join("blobs/sha256").join(fake.hex());
    fs_err::File::create(&path)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let big = json!({"mediaType": MANIFEST, "digest": fake.as_str(), "size": 100 << 20});
    // Declared small, but the file is big: refused by its real size.
    let lying = json!({"mediaType": MANIFEST, "digest": fake.as_str(), "size": 100});
    c.index(&json!([
        Crafted::tagged(&big, "big"),
        Crafted::tagged(&lying, "lying")
    ]));
    assert_eq!(
        copy_err(&c.root, "big"),
        format!(
            "manifest {fake} in `{}` is 104857600 bytes, over the limit of {MAX_JSON_BLOB} bytes; refused unread \
             (real ones are a few KiB)",
            c.root.display()
        )
    );
    assert_eq!(
        copy_err(&c.root, "lying"),
        format!(
            "blob {fake} in `{}` is corrupt: it is 104857600 bytes but its descriptor says `size` 100; copy the \
             image into the layout again",
            c.root.display()
        )
    );
}

#[test]
fn malformed_descriptors_name_the_blob_the_field_and_what_was_found() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let no_config = c.json(MANIFEST, &json!({"schemaVersion": 2, "layers": []}));
    let mut negative = c.image();
    negative["size"] = json!(-1);
    let no_digest = c.json(
        INDEX,
        &json!({"schemaVersion": 2, "manifests": [{"mediaType": MANIFEST, "size": 1}]}),
    );
    let config = c.json(CONFIG, &json!({}));
    let bad_layer = c.json(
        MANIFEST,
        &json!({"schemaVersion": 2, "config": config, "layers": [{"mediaType": "x", "digest": "sha256:`rm -rf`", "size": 1}]}),
    );
    c.index(&json!([
        Crafted::tagged(&no_config, "no-config"),
        Crafted::tagged(&negative, "negative"),
        Crafted::tagged(&no_digest, "no-digest"),
        Crafted::tagged(&bad_layer, "bad-layer"),
    ]));
    assert_eq!(
        copy_err(&c.root, "no-config"),
        format!(
            "manifest {}: `config` is missing; expected a descriptor object with `mediaType`, `digest` and `size`",
            digest_of(&no_config)
        )
    );
    let l = Layout::open(&c.root).unwrap();
    assert_eq!(
        l.resolve(Some("negative")).unwrap_err().to_string(),
        format!(
            "`{}/index.json`: `manifests[1]` has `size` a number (`-1`); expected the blob's length in bytes, a \
             whole number 0 or more",
            c.root.display()
        )
    );
    c.index(&json!([
        Crafted::tagged(&no_digest, "no-digest"),
        Crafted::tagged(&bad_layer, "bad-layer"),
    ]));
    assert_eq!(
        copy_err(&c.root, "no-digest"),
        format!(
            "index {}: `manifests[0]` has no `digest`; expected `sha256:<64 hex digits>`",
            digest_of(&no_digest)
        )
    );
    assert_eq!(
        copy_err(&c.root, "bad-layer"),
        format!(
            "manifest {}: `layers[0]` has `digest` `\"sha256:\\u{{60}}rm -rf\\u{{60}}\"`; expected `sha256:` and 64 \
             lower-case hex digits",
            digest_of(&bad_layer)
        )
    );
}

#[test]
fn manifests_as_an_object_is_named_not_taken_for_no_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let m = c.image();
    fs_err::write(
        c.root.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": {"1": m}})).unwrap(),
    )
    .unwrap();
    let before = snapshot(&c.root);
    let l = Layout::open(&c.root).unwrap();
    let expected = format!(
        "`{}/index.json`: `manifests` is an object (`{{\"1\":{{\"mediaType\":\"application/vnd.oci.i...`); expected \
         a list of descriptors (`[]` when there are no images)",
        c.root.display(),
    );
    assert_eq!(l.resolve(Some("1")).unwrap_err().to_string(), expected);
    // Tagging does not replace what it cannot read: nothing is lost.
    assert_eq!(
        l.set_tag("v2", &desc(&m)).unwrap_err().to_string(),
        expected
    );
    let mut after = snapshot(&c.root);
    assert!(after.remove(Path::new(gp_oci::layout::LOCK_FILE)).is_some());
    assert_eq!(after, before);
}

#[test]
fn links_fifos_and_directories_as_blobs_are_refused_by_name_without_reading() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(outside.join("secret"), b"secret").unwrap();
    let before = snapshot(&outside);
    let c = Crafted::new(&tmp.path().join("l"));
    let m = c.image();
    c.index(&json!([Crafted::tagged(&m, "v1")]));
    let blob = c.blob_path(&m);
    for (kind, make) in [
        ("a symbolic link", "link"),
        ("a FIFO", "fifo"),
        ("a directory", "dir"),
    ] {
        let _ = fs_err::remove_file(&blob);
        let _ = fs_err::remove_dir(&blob);
        match make {
            "link" => fs_err::os::unix::fs::symlink(outside.join("secret"), &blob).unwrap(),
            "fifo" => assert!(
                std::process::Command::new("mkfifo")
                    .arg(&blob)
                    .status()
                    .unwrap()
                    .success()
            ),
            _ => fs_err::create_dir(&blob).unwrap(),
        }
        assert_eq!(
            copy_err(&c.root, "v1"),
            format!(
                "`{}` is {kind}, not a regular file; refused unread (a layout holds only regular files): remove it",
                blob.display()
            )
        );
    }
    assert_eq!(snapshot(&outside), before);
}

#[test]
fn a_linked_blobs_directory_is_refused_and_nothing_is_written_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir_all(outside.join("sha256")).unwrap();
    let before = snapshot(&outside);
    let dst = tmp.path().join("dst");
    fs_err::create_dir(&dst).unwrap();
    fs_err::os::unix::fs::symlink(&outside, dst.join("blobs")).unwrap();
    assert_eq!(
        Layout::create(&dst).unwrap_err().to_string(),
        format!(
            "`{}/blobs` is a symbolic link, not a directory; refused (a layout's `blobs/sha256` must be real \
             directories): remove it",
            dst.display()
        )
    );
    assert_eq!(snapshot(&outside), before);
}

#[test]
fn planted_links_at_old_temp_names_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let l = Layout::open(&c.root).unwrap();
    // The names writers used to choose (`.tmp-<pid>-<n>`, `.tmp-layer-<pid>-<n>`), linked outside.
    for n in 0..64 {
        for name in [
            format!(".tmp-{}-{n}", std::process::id()),
            format!(".tmp-layer-{}-{n}", std::process::id()),
        ] {
            fs_err::os::unix::fs::symlink(
                outside.join(&name),
                c.root.join("blobs/sha256").join(&name),
            )
            .unwrap();
        }
    }
    fs_err::write(outside.join("keep"), b"keep").unwrap();
    let before = snapshot(&outside);
    for i in 0..64 {
        l.write_blob(format!("blob {i}").as_bytes()).unwrap();
    }
    let m = desc(&c.image());
    l.set_tag("v1", &m).unwrap();
    let entries = gp_oci::layer::entries_from_dir(&c.root.join("blobs"), "").unwrap();
    gp_oci::image::add_layer(&l, &entries, &gp_oci::layer::LayerOptions::default()).unwrap();
    assert_eq!(snapshot(&outside), before);
}

#[test]
fn layers_are_streamed_and_verified_before_use() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Crafted::new(&tmp.path().join("l"));
    let m = c.image();
    c.index(&json!([Crafted::tagged(&m, "v1")]));
    let l = Layout::open(&c.root).unwrap();
    let img = read_image(&l, &l.resolve(Some("v1")).unwrap()).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut open_layer(&l, &img.layers[0]).unwrap(), &mut out).unwrap();
    assert_eq!(out.len(), 2048);
    // Same length, other bytes: refused before a byte reaches the caller.
    let layer = l.blob_path(&img.layers[0].digest);
    let mut bytes = fs_err::read(&layer).unwrap();
    bytes[600] ^= 1;
    fs_err::write(&layer, &bytes).unwrap();
    let Err(err) = open_layer(&l, &img.layers[0]) else {
        panic!("tampered layer opened")
    };
    assert_eq!(
        err.to_string(),
        format!(
            "blob {} in `{}` is corrupt: its content hashes to {}",
            img.layers[0].digest,
            c.root.display(),
            Digest::of(&bytes)
        )
    );
}
