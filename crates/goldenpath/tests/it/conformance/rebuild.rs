//! What a rebuild gets back: layer metadata without `[types]`, layer SBOMs, `store.toml`.

use std::path::Path;

use gp_oci::image::read_image;
use gp_oci::layout::Layout;

use super::{app_for, label, line};
use crate::run;

/// Round `round` of building the `test/rebuild` app in `tmp` (same image, same local cache each round).
fn rebuild(tmp: &Path, round: u32) -> String {
    let (app, order) = app_for(tmp, "test/rebuild", &[("round.txt", &round.to_string())]);
    let image = format!("oci:{}:app", tmp.join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app)
        .arg("--cache")
        .arg(tmp.join("cache")));
    assert!(ok, "round {round}:\n{out}");
    out
}

/// `io.buildpacks.lifecycle.metadata` of the `test/rebuild` image in `tmp`, as JSON.
fn lifecycle_metadata(tmp: &Path) -> serde_json::Value {
    let text = label(&tmp.join("out"), "app", "io.buildpacks.lifecycle.metadata").unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Buildpack API "Layer Types": a restored `<layer>.toml` (from the cache or the previous image) has its metadata and
/// no `[types]`; a layer the buildpack then ignores is neither in the image nor in the cache, and is gone from the
/// next build.
#[test]
fn restored_layer_metadata_excludes_types_and_an_ignored_layer_is_let_go() {
    let tmp = tempfile::tempdir().unwrap();
    let first = rebuild(tmp.path(), 1);
    assert_eq!(
        line(&first, "test/rebuild", "cached.toml"),
        "cached.toml: absent"
    );
    let second = rebuild(tmp.path(), 2);
    for layer in ["cached", "dropped", "kept"] {
        assert_eq!(
            line(&second, "test/rebuild", &format!("{layer}.toml")),
            format!("{layer}.toml: [metadata] from = \"round 1\" "),
        );
    }
    assert_eq!(
        line(&second, "test/rebuild", "cached/"),
        "cached/: cached contents"
    );
    assert_eq!(
        line(&second, "test/rebuild", "dropped/"),
        "dropped/: dropped contents"
    );
    assert_eq!(line(&second, "test/rebuild", "kept/"), "kept/: absent");
    let meta = lifecycle_metadata(tmp.path());
    let layers = &meta["buildpacks"][0]["layers"];
    assert_eq!(
        layers.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["cached", "kept"],
        "{meta}"
    );
    assert_eq!(layers["cached"]["launch"], true);
    assert_eq!(layers["cached"]["cache"], true);
    assert_eq!(layers["kept"]["launch"], true);
    assert_eq!(layers["kept"]["data"]["from"], "round 1");
    assert!(!tmp.path().join("cache/test_rebuild/dropped").exists());
    assert!(!tmp.path().join("cache/test_rebuild/dropped.toml").exists());
    let third = rebuild(tmp.path(), 3);
    assert_eq!(
        line(&third, "test/rebuild", "dropped.toml"),
        "dropped.toml: absent"
    );
    assert_eq!(line(&third, "test/rebuild", "dropped/"), "dropped/: absent");
    assert_eq!(
        line(&third, "test/rebuild", "cached.toml"),
        "cached.toml: [metadata] from = \"round 1\" "
    );
}

/// The files of the SBOM layer (`sbom.sha` of the lifecycle metadata) of the `test/rebuild` image in `tmp`.
fn sbom_layer_files(tmp: &Path) -> Vec<String> {
    let meta = lifecycle_metadata(tmp);
    let sha = meta["sbom"]["sha"].as_str().expect("an SBOM layer");
    let layout = Layout::open(&tmp.join("out")).unwrap();
    let desc = layout.resolve(Some("app")).unwrap();
    let img = read_image(&layout, &desc).unwrap();
    let i = img
        .layer_infos()
        .unwrap()
        .iter()
        .position(|l| l.diff_id.as_str() == sha)
        .unwrap();
    let unpacked = tmp.join("sbom-layer");
    let _ = fs_err::remove_dir_all(&unpacked);
    let tar = gp_oci::image::open_layer(&layout, &img.layers[i]).unwrap();
    gp_oci::unpack::unpack_layer(tar, &unpacked).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![unpacked.clone()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(&unpacked)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push(rel);
            }
        }
    }
    files.sort();
    files
}

fn sbom_of(layer: &str) -> String {
    format!(
        "{layer}.sbom.cdx.json: {{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.4\",\"components\":[{{\"name\":\"{layer}\"}}]}} "
    )
}

/// Buildpack API "Layer Types" (Metadata and SBOM restored) and Platform API restorer: the layer SBOM of a cached
/// layer comes back from the cache, that of a launch-only layer from the previous image, on every rebuild; a kept
/// layer's SBOM stays in the image's SBOM layer.
#[test]
fn layer_sboms_of_cached_and_kept_layers_survive_rebuilds() {
    let tmp = tempfile::tempdir().unwrap();
    let first = rebuild(tmp.path(), 1);
    assert_eq!(
        line(&first, "test/rebuild", "cached.sbom"),
        "cached.sbom.cdx.json: absent"
    );
    for round in [2, 3] {
        let out = rebuild(tmp.path(), round);
        for layer in ["cached", "kept"] {
            assert_eq!(
                line(&out, "test/rebuild", &format!("{layer}.sbom")),
                sbom_of(layer),
                "round {round}"
            );
        }
        assert_eq!(
            sbom_layer_files(tmp.path()),
            [
                "layers/sbom/launch/test_rebuild/cached/sbom.cdx.json",
                "layers/sbom/launch/test_rebuild/kept/sbom.cdx.json",
            ],
            "round {round}"
        );
    }
    assert!(
        tmp.path()
            .join("cache/test_rebuild/cached.sbom.cdx.json")
            .is_file()
    );
    assert!(
        !tmp.path()
            .join("cache/test_rebuild/dropped.sbom.cdx.json")
            .exists()
    );
}

/// Buildpack API `store.toml` and Platform API analyzer: the buildpack's `store.toml` is kept in
/// `io.buildpacks.lifecycle.metadata` (`buildpacks[].store.metadata`) and written back before the next build.
#[test]
fn store_toml_is_kept_in_the_image_and_restored_into_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    let first = rebuild(tmp.path(), 1);
    assert_eq!(
        line(&first, "test/rebuild", "store.toml"),
        "store.toml: absent"
    );
    assert_eq!(
        lifecycle_metadata(tmp.path())["buildpacks"][0]["store"],
        serde_json::json!({"metadata": {"round": "1"}})
    );
    let second = rebuild(tmp.path(), 2);
    assert_eq!(
        line(&second, "test/rebuild", "store.toml"),
        "store.toml: [metadata] round = \"1\" "
    );
    let third = rebuild(tmp.path(), 3);
    assert_eq!(
        line(&third, "test/rebuild", "store.toml"),
        "store.toml: [metadata] round = \"2\" "
    );
    assert_eq!(
        lifecycle_metadata(tmp.path())["buildpacks"][0]["store"],
        serde_json::json!({"metadata": {"round": "3"}})
    );
}
