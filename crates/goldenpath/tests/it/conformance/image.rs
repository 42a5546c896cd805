//! The exported image: its config, labels, process links, and the detector's failure.

use std::path::Path;

use gp_oci::image::read_image;
use gp_oci::layout::Layout;

use super::{app_for, label, run_image};
use crate::run;

/// Platform API exporter: the image has `io.buildpacks.project.metadata`, the JSON of `project-metadata.toml`
/// (`source.type`, `source.version`, `source.metadata`), written from the app's `project.toml`; `{}` without one.
#[test]
fn project_metadata_label_comes_from_project_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let project = "[_]\nschema-version = \"0.2\"\nid = \"example/app\"\nversion = \"1.2.3\"\nsource-url = \"https://example.com/app.git\"\n";
    let (app, order) = app_for(
        tmp.path(),
        "test/target",
        &[("target.txt", ""), ("project.toml", project)],
    );
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(&mut crate::test_build(&image, &order, &app));
    assert!(ok, "{out}");
    let text = label(
        &tmp.path().join("out"),
        "app",
        "io.buildpacks.project.metadata",
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        serde_json::json!({"source": {
            "type": "project",
            "version": {"declared": "1.2.3"},
            "metadata": {"url": "https://example.com/app.git"}
        }})
    );
    fs_err::remove_file(app.join("project.toml")).unwrap();
    let (ok, out) = run(&mut crate::test_build(&image, &order, &app));
    assert!(ok, "{out}");
    assert_eq!(
        label(
            &tmp.path().join("out"),
            "app",
            "io.buildpacks.project.metadata"
        )
        .as_deref(),
        Some("{}")
    );
}

/// Platform API `io.buildpacks.lifecycle.metadata`: `runImage.reference` identifies the run image uniquely (here,
/// in a layout, its image ID: the config digest), `runImage.image` is the name given, `runImage.topLayer` its top
/// layer's diff ID.
#[test]
fn run_image_reference_identifies_the_run_image_uniquely() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let run_ref = run_image(&run_dir, "ID=alpine\n", &[]);
    let (app, order) = app_for(tmp.path(), "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &run_ref]));
    assert!(ok, "{out}");
    let layout = Layout::open(&run_dir).unwrap();
    let run_img = read_image(&layout, &layout.resolve(Some("run")).unwrap()).unwrap();
    let meta: serde_json::Value = serde_json::from_str(
        &label(
            &tmp.path().join("out"),
            "app",
            "io.buildpacks.lifecycle.metadata",
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["runImage"],
        serde_json::json!({
            "image": run_ref,
            "reference": run_img.config_desc.digest.as_str(),
            "topLayer": run_img.config.diff_ids()[0],
        })
    );
}

/// The image config and labels of the `test/js` image (`test/node`, `test/npm`) built in `tmp`.
fn js_image(tmp: &Path) -> (gp_oci::image::Image, Layout, String) {
    let (app, order) = crate::js_app(tmp);
    let image = format!("oci:{}:app", tmp.join("out").display());
    let (ok, out) = run(&mut crate::test_build(&image, &order, &app));
    assert!(ok, "{out}");
    let layout = Layout::open(&tmp.join("out")).unwrap();
    let img = read_image(&layout, &layout.resolve(Some("app")).unwrap()).unwrap();
    (img, layout, out)
}

/// Platform API exporter: the image's `Entrypoint`, `Env` and `WorkingDir`, and the shape of
/// `io.buildpacks.build.metadata` and `io.buildpacks.lifecycle.metadata` (every key the spec's schema requires).
#[test]
fn image_config_and_labels_follow_the_exporter_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, _, out) = js_image(tmp.path());
    assert!(
        out.contains("\nSetting default process type 'web'\n"),
        "{out}"
    );
    let config = &img.config;
    assert_eq!(config.entrypoint(), ["/cnb/process/web"]);
    assert_eq!(config.working_dir(), Some("/workspace"));
    let env: Vec<&str> = config.env().iter().map(String::as_str).collect();
    for want in [
        "CNB_APP_DIR=/workspace",
        "CNB_DEPRECATION_MODE=quiet",
        "CNB_LAYERS_DIR=/layers",
        "CNB_PLATFORM_API=0.15",
    ] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/cnb/process:")),
        "{env:?}"
    );

    let build: serde_json::Value =
        serde_json::from_str(config.label("io.buildpacks.build.metadata").unwrap()).unwrap();
    assert_eq!(
        build["buildpacks"],
        serde_json::json!([
            {"id": "test/node", "version": "1.0.0", "api": "0.10"},
            {"id": "test/npm", "version": "1.0.0", "api": "0.12"}
        ])
    );
    let worker = &build["processes"][1];
    assert_eq!(worker["type"], "worker");
    assert_eq!(worker["command"], serde_json::json!(["node", "worker.js"]));
    assert_eq!(worker["args"], serde_json::json!(["--queue", "jobs"]));
    assert_eq!(worker["buildpackID"], "test/npm");
    assert!(worker["direct"].is_boolean(), "{worker}");
    assert_eq!(build["launcher"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        build["launcher"]["source"]["git"]["repository"]
            .as_str()
            .is_some_and(|r| r.starts_with("https://")),
        "{build}"
    );

    let life: serde_json::Value =
        serde_json::from_str(config.label("io.buildpacks.lifecycle.metadata").unwrap()).unwrap();
    let diff_ids: Vec<&str> = config.diff_ids().iter().map(String::as_str).collect();
    for key in ["sbom", "config", "launcher"] {
        let sha = life[key]["sha"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {life}"));
        assert!(diff_ids.contains(&sha), "{key} is a layer of the image");
    }
    assert_eq!(life["app"].as_array().unwrap().len(), 1);
    let node = &life["buildpacks"][0];
    assert_eq!(node["key"], "test/node");
    assert_eq!(node["version"], "1.0.0");
    let mut keys: Vec<&String> = node["layers"]["node"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["build", "cache", "launch", "sha"]);
    assert_eq!(
        life["buildpacks"][1],
        serde_json::json!({"key": "test/npm", "version": "1.0.0", "layers": {}})
    );
}

/// Platform API exporter: `/cnb/process/<type>` link to `/cnb/lifecycle/launcher`; an image without processes
/// has no process-type layer and the launcher as its entrypoint.
#[test]
fn process_type_links_are_absolute_and_absent_without_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let (img, layout, _) = js_image(tmp.path());
    let life: serde_json::Value = serde_json::from_str(
        img.config
            .label("io.buildpacks.lifecycle.metadata")
            .unwrap(),
    )
    .unwrap();
    let sha = life["process-types"]["sha"].as_str().unwrap();
    let i = img
        .layer_infos()
        .unwrap()
        .iter()
        .position(|l| l.diff_id.as_str() == sha)
        .unwrap();
    let unpacked = tmp.path().join("process-types");
    gp_oci::unpack::unpack_layer(
        gp_oci::image::open_layer(&layout, &img.layers[i]).unwrap(),
        &unpacked,
    )
    .unwrap();
    for kind in ["web", "worker"] {
        assert_eq!(
            fs_err::read_link(unpacked.join("cnb/process").join(kind)).unwrap(),
            Path::new("/cnb/lifecycle/launcher")
        );
    }

    let bare = tmp.path().join("bare");
    let (app, order) = app_for(&bare, "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", bare.join("out").display());
    let (ok, out) = run(&mut crate::test_build(&image, &order, &app));
    assert!(ok, "{out}");
    assert!(!out.contains("Setting default process type"), "{out}");
    let layout = Layout::open(&bare.join("out")).unwrap();
    let img = read_image(&layout, &layout.resolve(Some("app")).unwrap()).unwrap();
    assert_eq!(img.config.entrypoint(), ["/cnb/lifecycle/launcher"]);
    let life: serde_json::Value = serde_json::from_str(
        img.config
            .label("io.buildpacks.lifecycle.metadata")
            .unwrap(),
    )
    .unwrap();
    assert!(life.get("process-types").is_none(), "{life}");
    // Run image none: app, launcher, config (no SBOM, no process types).
    assert_eq!(img.layers.len(), 3, "{life}");
}

/// Platform API detector: no group passes: exit 20, the reference lines, then ours.
#[test]
fn no_group_passing_detection_exits_20_with_the_reference_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, order) = app_for(tmp.path(), "test/target", &[]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let o = crate::test_build(&image, &order, &app).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(20), "{err}");
    let reference = "ERROR: No buildpack groups passed detection.\nERROR: Please check that you are running against the correct path.\n";
    let at = err.find(reference).unwrap_or_else(|| panic!("{err}"));
    assert!(
        err[at + reference.len()..].contains("no buildpack group passed detection"),
        "{err}"
    );
}
