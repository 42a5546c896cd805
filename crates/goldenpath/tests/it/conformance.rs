//! CNB conformance, end to end through `goldenpath build --sandbox none`: the lifecycle's test buildpacks, written
//! from the Buildpack API 0.12 and Platform API 0.15 specifications, each assert one rule (what a buildpack sees,
//! what survives a rebuild, what the image's labels say). `docs/lifecycle.md` lists which test covers which rule.

use std::path::{Path, PathBuf};

use gp_oci::image::{ImageConfig, add_layer, read_image, write_image};
use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
use gp_oci::layout::Layout;

use crate::run;

/// A run image in a layout at `dir` (tag `run`): one layer with `etc/os-release`, and `labels`.
fn run_image(dir: &Path, os_release: &str, labels: &[(&str, &str)]) -> String {
    let layout = Layout::create(dir).unwrap();
    let entries = vec![
        Entry {
            path: "etc".into(),
            kind: Kind::Dir,
            executable: true,
        },
        Entry {
            path: "etc/os-release".into(),
            kind: Kind::File(Source::Bytes(os_release.as_bytes().to_vec())),
            executable: false,
        },
    ];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    let config = ImageConfig {
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ImageConfig::default()
    };
    write_image(&layout, "run", &[layer], &config).unwrap();
    format!("oci:{}:run", dir.display())
}

/// An app with `files` and an order of the one test buildpack `id`.
fn app_for(tmp: &Path, id: &str, files: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let app = tmp.join("app");
    std::fs::create_dir_all(&app).unwrap();
    for (name, text) in files {
        std::fs::write(app.join(name), text).unwrap();
    }
    let order = tmp.join("order.toml");
    std::fs::write(
        &order,
        format!("[[order]]\n[[order.group]]\nid = \"{id}\"\nversion = \"1.0.0\"\n"),
    )
    .unwrap();
    (app, order)
}

fn arch() -> &'static str {
    gp_oci::image::host_arch()
}

/// The one line of `out` that starts with `[<id>] <prefix>`, without the buildpack prefix.
fn line<'a>(out: &'a str, id: &str, prefix: &str) -> &'a str {
    let start = format!("[{id}] {prefix}");
    out.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("[{id}] "))
                .filter(|_| l.starts_with(&start))
        })
        .unwrap_or_else(|| panic!("no line `{start}` in:\n{out}"))
}

/// A label of the image tagged `tag` in the layout at `dir`, as JSON when it parses.
fn label(dir: &Path, tag: &str, key: &str) -> Option<String> {
    let layout = Layout::open(dir).unwrap();
    let desc = layout.resolve(Some(tag)).unwrap();
    let img = read_image(&layout, &desc).unwrap();
    img.config["config"]["Labels"][key]
        .as_str()
        .map(str::to_owned)
}

/// Buildpack API "Targets": detect and build both see every `CNB_TARGET_*` the run image defines, from its
/// `io.buildpacks.base.distro.*` labels.
#[test]
fn target_variables_come_from_the_run_image_labels_in_detect_and_build() {
    let tmp = tempfile::tempdir().unwrap();
    let run_ref = run_image(
        &tmp.path().join("run"),
        "ID=alpine\nVERSION_ID=3.20\n",
        &[
            ("io.buildpacks.base.distro.name", "debian"),
            ("io.buildpacks.base.distro.version", "12"),
        ],
    );
    let (app, order) = app_for(tmp.path(), "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &run_ref]));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=debian CNB_TARGET_DISTRO_VERSION=12",
        arch()
    );
    assert_eq!(
        line(&out, "test/target", "detect saw: "),
        format!("detect saw: {want}")
    );
    assert_eq!(
        line(&out, "test/target", "build saw: "),
        format!("build saw: {want}")
    );
}

/// Platform API `run-image.target`: a run image without distribution labels has them inferred from its
/// `/etc/os-release`.
#[test]
fn target_distribution_falls_back_to_the_run_image_os_release() {
    let tmp = tempfile::tempdir().unwrap();
    let run_ref = run_image(
        &tmp.path().join("run"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=\"3.20.1\"\n",
        &[],
    );
    let (app, order) = app_for(tmp.path(), "test/target", &[("target.txt", "")]);
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &run_ref]));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=alpine CNB_TARGET_DISTRO_VERSION=3.20.1",
        arch()
    );
    assert_eq!(
        line(&out, "test/target", "detect saw: "),
        format!("detect saw: {want}")
    );
    assert_eq!(
        line(&out, "test/target", "build saw: "),
        format!("build saw: {want}")
    );
}

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
    let _ = std::fs::remove_dir_all(&unpacked);
    let tar = gp_oci::image::open_layer(&layout, &img.layers[i]).unwrap();
    gp_oci::unpack::unpack_layer(tar, &unpacked).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![unpacked.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
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
    std::fs::remove_file(app.join("project.toml")).unwrap();
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
            "reference": run_img.manifest["config"]["digest"],
            "topLayer": run_img.config["rootfs"]["diff_ids"][0],
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
    let config = &img.config["config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/cnb/process/web"])
    );
    assert_eq!(config["WorkingDir"], "/workspace");
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
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

    let labels = &config["Labels"];
    let build: serde_json::Value =
        serde_json::from_str(labels["io.buildpacks.build.metadata"].as_str().unwrap()).unwrap();
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
        serde_json::from_str(labels["io.buildpacks.lifecycle.metadata"].as_str().unwrap()).unwrap();
    let diff_ids: Vec<&str> = img.config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
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
        img.config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
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
            std::fs::read_link(unpacked.join("cnb/process").join(kind)).unwrap(),
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
    assert_eq!(
        img.config["config"]["Entrypoint"],
        serde_json::json!(["/cnb/lifecycle/launcher"])
    );
    let life: serde_json::Value = serde_json::from_str(
        img.config["config"]["Labels"]["io.buildpacks.lifecycle.metadata"]
            .as_str()
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

/// Buildpack API "Targets" in the sandbox: the static `lifecycle` in the build image hands the run image's target to
/// detect and build (the run image's distro label, its os-release for the version).
#[test]
fn target_variables_reach_sandboxed_detect_and_build() {
    let root_user =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !root_user || !std::path::Path::new("/bin/busybox").is_file() {
        return; // the sandboxed tests run as root in CI, with busybox
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let build_ref = crate::sandbox::busybox_image(&base, "build", "ID=busybox\nVERSION_ID=1\n");
    let run_ref = crate::sandbox::busybox_image(&base, "run", "ID=busybox\nVERSION_ID=1.36\n");
    let config = tmp.path().join("builder.toml");
    std::fs::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"{}/test_target/1.0.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/target\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"{build_ref}\"\n\n[[run.images]]\nimage = \"{run_ref}\"\n",
            crate::test_buildpacks().display()
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:target", tmp.path().join("builders").display());
    let bins = crate::sandbox::static_bins();
    let (ok, out) = run(std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["builder", "create", "--tag", &builder, "--config"])
        .arg(&config)
        .arg("--launcher")
        .arg(bins.join("launcher"))
        .arg("--lifecycle")
        .arg(bins.join("lifecycle")));
    assert!(ok, "{out}");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("target.txt"), "").unwrap();
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(std::process::Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["build", &image, "--builder", &builder, "--path"])
        .arg(&app));
    assert!(ok, "{out}");
    let want = format!(
        "CNB_TARGET_OS=linux CNB_TARGET_ARCH={} CNB_TARGET_ARCH_VARIANT=<unset> CNB_TARGET_DISTRO_NAME=busybox CNB_TARGET_DISTRO_VERSION=1.36",
        arch()
    );
    assert_eq!(
        line(&out, "test/target", "detect saw: "),
        format!("detect saw: {want}")
    );
    assert_eq!(
        line(&out, "test/target", "build saw: "),
        format!("build saw: {want}")
    );
}
