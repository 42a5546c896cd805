//! Hostile registries (the fault proxy standing alone, serving fixed content): oversized manifests, index chains
//! and fan-outs without end, blobs longer than their descriptor, links planted in the target layout, and a
//! registry that is not there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_oci::digest::Digest;
use gp_oci::layout::{Layout, MEDIA_INDEX, MEDIA_MANIFEST};
use gp_oci::registry::{ErrorKind, MAX_MANIFESTS, Registry, RegistryError, RegistrySettings};
use serde_json::json;

use crate::fault_proxy::{Content, Fault, FaultProxy, Rule};
use crate::registry_faults::{quick, reference};
use crate::registry_server::{free_port, snapshot};

const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn put(content: &mut Content, path: String, media_type: &str, body: Vec<u8>) {
    content.insert(path, (media_type.to_owned(), Arc::new(body)));
}

/// Serves `body` as manifest `sha256:...` of repository `app` and returns its digest.
fn manifest(content: &mut Content, media_type: &str, body: &serde_json::Value) -> Digest {
    let bytes = serde_json::to_vec(body).unwrap();
    let d = Digest::of(&bytes);
    put(content, format!("/v2/app/manifests/{d}"), media_type, bytes);
    d
}

fn blob(content: &mut Content, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    put(
        content,
        format!("/v2/app/blobs/{d}"),
        "application/octet-stream",
        bytes.to_vec(),
    );
    d
}

fn tag(content: &mut Content, media_type: &str, digest: &Digest) {
    let body = content[&format!("/v2/app/manifests/{digest}")].1.clone();
    content.insert("/v2/app/manifests/v1".into(), (media_type.into(), body));
}

/// An image: a config and one layer, tagged `v1`.
fn simple_image(content: &mut Content) -> (Digest, Digest, Digest) {
    let config = blob(
        content,
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = blob(content, b"not really a tar, never unpacked here");
    let m = manifest(
        content,
        MEDIA_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config.to_string(), "size": content[&format!("/v2/app/blobs/{config}")].1.len()},
            "layers": [{"mediaType": LAYER, "digest": layer.to_string(), "size": content[&format!("/v2/app/blobs/{layer}")].1.len()}],
        }),
    );
    tag(content, MEDIA_MANIFEST, &m);
    (m, config, layer)
}

fn index_of(children: &[(Digest, &str)], note: &str) -> serde_json::Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": children.iter().map(|(d, mt)| json!({"mediaType": mt, "digest": d.to_string(), "size": 1})).collect::<Vec<_>>(),
        "annotations": {"note": note},
    })
}

fn pull(proxy: &FaultProxy, dest: &Layout) -> Result<gp_oci::layout::Desc, RegistryError> {
    let source = reference(&format!("127.0.0.1:{}/app:v1", proxy.port));
    Registry::with_settings(&source, &[], quick())
        .unwrap()
        .pull(&source, dest)
}

fn oversized(length: bool) {
    let mut body =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":""#
            .to_vec();
    body.resize(5 * 1024 * 1024, b'a');
    body.extend_from_slice(b"\"}");
    let rule = Rule::new(
        "GET",
        "/manifests/v1",
        Fault::Respond {
            status: 200,
            headers: vec![("Content-Type".into(), MEDIA_MANIFEST.into())],
            body: Arc::new(body),
            length,
        },
    );
    let proxy = FaultProxy::standalone(Content::new(), vec![rule]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let before = snapshot(tmp.path());
    let e = pull(&proxy, &dest).unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TooLarge), "{e}");
    let size = if length { "5242882" } else { "over" };
    assert_eq!(
        e.to_string(),
        format!(
            "pull manifest of `127.0.0.1:{}/app:v1` failed: the manifest is {size} bytes, more than the \
             4194304-byte limit for manifests; no real image has one this large",
            proxy.port
        )
    );
    assert_eq!(
        proxy.count("GET", "/manifests/"),
        1,
        "refusals are not retried"
    );
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_manifest_over_4_mib_is_refused_by_its_content_length() {
    oversized(true);
}

#[test]
fn a_manifest_over_4_mib_without_a_length_is_cut_at_the_limit() {
    oversized(false);
}

#[test]
fn a_blob_longer_than_its_descriptor_is_refused() {
    let mut content = Content::new();
    let (_, config, _) = simple_image(&mut content);
    let path = format!("/v2/app/blobs/{config}");
    let mut long = content[&path].1.to_vec();
    long.extend_from_slice(&[b' '; 4096]);
    content.insert(path, ("application/octet-stream".into(), Arc::new(long)));
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let before = snapshot(tmp.path());
    let e = pull(&proxy, &dest).unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TooLarge), "{e}");
    assert!(e.to_string().ends_with("bytes the descriptor names"), "{e}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_20000_deep_index_chain_stops_at_the_depth_limit() {
    let mut content = Content::new();
    let (m, _, _) = simple_image(&mut content);
    let mut top = (m, MEDIA_MANIFEST);
    for i in 0..20_000 {
        top = (
            manifest(&mut content, MEDIA_INDEX, &index_of(&[top], &i.to_string())),
            MEDIA_INDEX,
        );
    }
    tag(&mut content, MEDIA_INDEX, &top.0);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let before = snapshot(tmp.path());
    let e = pull(&proxy, &dest).unwrap_err();
    assert!(matches!(e, RegistryError::TooDeep { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("nests image indexes more than 8 deep"),
        "{e}"
    );
    assert_eq!(proxy.count("GET", "/manifests/"), 8);
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn a_fan_out_of_shared_indexes_fetches_each_once() {
    // 300 entries naming one index of 300 entries naming one index of 300 entries naming one image: 300^3 paths,
    // four distinct manifests.
    let mut content = Content::new();
    let (m, config, layer) = simple_image(&mut content);
    let mut child = (m, MEDIA_MANIFEST);
    for level in 0..3 {
        let entries = vec![child; 300];
        child = (
            manifest(
                &mut content,
                MEDIA_INDEX,
                &index_of(&entries, &level.to_string()),
            ),
            MEDIA_INDEX,
        );
    }
    tag(&mut content, MEDIA_INDEX, &child.0);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let start = Instant::now();
    pull(&proxy, &dest).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    // The tag, then each of the three levels' one child by digest.
    assert_eq!(proxy.count("GET", "/manifests/"), 4);
    assert_eq!(proxy.count("GET", "/blobs/"), 2);
    assert!(dest.has_blob(&config) && dest.has_blob(&layer));
}

#[test]
fn a_fan_out_of_distinct_manifests_stops_at_the_manifest_limit() {
    // An index of 300 distinct indexes of 300 distinct (empty) indexes: 90,301 manifests.
    let mut content = Content::new();
    let mut mids = Vec::new();
    for i in 0..300 {
        // Past the limit nothing is asked for: only the first two indexes' leaves are served.
        let leaves: Vec<(Digest, &str)> = (0..300)
            .map(|j| {
                let leaf = index_of(&[], &format!("{i}-{j}"));
                let d = if i < 2 {
                    manifest(&mut content, MEDIA_INDEX, &leaf)
                } else {
                    Digest::of(&serde_json::to_vec(&leaf).unwrap())
                };
                (d, MEDIA_INDEX)
            })
            .collect();
        mids.push((
            manifest(
                &mut content,
                MEDIA_INDEX,
                &index_of(&leaves, &i.to_string()),
            ),
            MEDIA_INDEX,
        ));
    }
    let top = manifest(&mut content, MEDIA_INDEX, &index_of(&mids, "top"));
    tag(&mut content, MEDIA_INDEX, &top);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let before = snapshot(tmp.path());
    let e = pull(&proxy, &dest).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`127.0.0.1:{}/app@{}` names more than {MAX_MANIFESTS} distinct manifests through its indexes; refusing \
             to pull them",
            proxy.port, mids[1].0
        )
    );
    // The tag, then one manifest per distinct digest up to the limit; the one past it is never asked for.
    assert_eq!(proxy.count("GET", "/manifests/"), 1 + MAX_MANIFESTS);
    // Manifests completed before the refusal stay as verified, untagged blobs (`gc` removes them); no tag moved.
    let after = snapshot(tmp.path());
    for (path, what) in &after {
        if let Some(b) = before.get(path) {
            assert_eq!(b, what, "{}", path.display());
        } else {
            let name = path
                .strip_prefix("dest/blobs/sha256")
                .unwrap()
                .to_string_lossy();
            assert_eq!(what, &format!("file sha256:{name}"));
        }
    }
    assert!(
        after.len() < before.len() + MAX_MANIFESTS,
        "{}",
        after.len()
    );
}

#[test]
fn a_link_planted_at_the_old_temp_path_is_never_written_through() {
    let mut content = Content::new();
    let (_, config, layer) = simple_image(&mut content);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(outside.join("victim"), b"precious").unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let blobs = dest.root().join("blobs/sha256");
    for d in [&config, &layer] {
        let planted = blobs.join(format!(".pull-{}-{}", std::process::id(), d.hex()));
        fs_err::os::unix::fs::symlink(outside.join("victim"), planted).unwrap();
    }
    // A dangling link where a blob goes: replaced by the blob, never followed.
    fs_err::os::unix::fs::symlink(outside.join("created"), blobs.join(layer.hex())).unwrap();
    let before = snapshot(&outside);
    pull(&proxy, &dest).unwrap();
    assert_eq!(
        snapshot(&outside),
        before,
        "a file outside the layout changed"
    );
    let meta = fs_err::symlink_metadata(blobs.join(layer.hex())).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        Digest::of(&fs_err::read(blobs.join(layer.hex())).unwrap()),
        layer
    );
}

#[test]
fn a_blobs_directory_that_is_a_link_is_refused() {
    let mut content = Content::new();
    simple_image(&mut content);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let blobs = dest.root().join("blobs/sha256");
    fs_err::remove_dir_all(&blobs).unwrap();
    fs_err::os::unix::fs::symlink(&outside, &blobs).unwrap();
    let before = snapshot(&outside);
    let e = pull(&proxy, &dest).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "`{}` is not a directory (a symbolic link or another file); blobs are only written into the layout's \
             own `blobs/sha256` directory: remove it and retry",
            blobs.display()
        )
    );
    assert_eq!(snapshot(&outside), before);
}

#[test]
fn an_unreachable_registry_fails_fast_naming_its_address() {
    let port = free_port();
    let source = reference(&format!("127.0.0.1:{port}/app:v1"));
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let start = Instant::now();
    // The default settings: an address nothing listens on is tried twice, not four times.
    let e = Registry::with_settings(&source, &[], RegistrySettings::default())
        .unwrap()
        .pull(&source, &dest)
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(e.kind(), Some(&ErrorKind::Unreachable), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "authenticate to `127.0.0.1:{port}/app:v1` failed: "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://127.0.0.1:{port}/v2/")),
        "{text}"
    );
    assert!(text.ends_with("(after 2 attempts)"), "{text}");
}

#[test]
fn a_hostile_descriptor_is_named_in_a_short_escaped_excerpt() {
    let mut content = Content::new();
    let evil = format!("sha256:\u{1b}]0;pwned\u{7}{}", "f".repeat(100_000));
    let m = manifest(
        &mut content,
        MEDIA_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": evil, "size": 2},
            "layers": [],
        }),
    );
    tag(&mut content, MEDIA_MANIFEST, &m);
    let proxy = FaultProxy::standalone(content, vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let dest = Layout::create(&tmp.path().join("dest")).unwrap();
    let before = snapshot(tmp.path());
    let text = pull(&proxy, &dest).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!(
            "manifest of `127.0.0.1:{}/app:v1` names a malformed descriptor: ",
            proxy.port
        )),
        "{text}"
    );
    // Escaped as JSON escapes it (the layout's descriptor parser names the value): no control byte gets through.
    assert!(text.contains("\\u001b]0;pwned\\u0007fff"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.len() < 400, "{}", text.len());
    assert_eq!(snapshot(tmp.path()), before);
}
