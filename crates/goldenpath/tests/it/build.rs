//! `goldenpath build --sandbox none` with the lifecycle's test buildpacks: detect, build, export into a layout.

use std::path::Path;
use std::process::Command;

use crate::{require_tool, run};

fn build(tmp: &Path, app: &Path, tag: &str) -> (bool, String) {
    let order = crate::js_order(tmp);
    run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("build")
        .arg(format!("oci:{}:{tag}", tmp.join("out").display()))
        .arg("--path")
        .arg(app)
        .arg("--buildpacks")
        .arg(crate::test_buildpacks())
        .arg("--order")
        .arg(&order)
        .arg("--launcher")
        .arg("/bin/true"))
}

fn digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once("@sha256:").map(|(_, d)| d.to_owned()))
        .unwrap_or_default()
}

#[test]
fn builds_a_reproducible_cnb_image_that_umoci_unpacks() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    let (ok, first) = build(tmp.path(), &app, "a");
    assert!(ok, "{first}");
    assert!(
        first.contains("===> DETECTING") && first.contains("[test/npm] node-tool ok"),
        "{first}"
    );
    let (ok, second) = build(tmp.path(), &app, "b");
    assert!(ok, "{second}");
    assert_eq!(
        digest(&first),
        digest(&second),
        "a rebuild with no change gives the same image"
    );
    if !require_tool("umoci") {
        return;
    }
    let bundle = tmp.path().join("bundle");
    let (ok, msg) = run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:a", tmp.path().join("out").display()))
        .arg(&bundle));
    assert!(ok, "{msg}");
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("layers/test_node/node/bin/node-tool").is_file());
    assert!(rootfs.join("workspace/package.json").is_file());
    assert_eq!(
        fs_err::read_link(rootfs.join("cnb/process/web")).unwrap(),
        Path::new("/cnb/lifecycle/launcher")
    );
    assert!(rootfs.join("layers/config/metadata.toml").is_file());
}

#[test]
fn an_app_no_buildpack_detects_fails_with_exit_20() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("empty");
    fs_err::create_dir_all(&app).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &format!("oci:{}:x", tmp.path().join("out").display()),
            "--path",
        ])
        .arg(&app)
        .arg("--buildpacks")
        .arg(crate::test_buildpacks())
        .arg("--order")
        .arg({
            let order = tmp.path().join("order.toml");
            fs_err::write(
                &order,
                "[[order]]\n[[order.group]]\nid = \"test/js\"\nversion = \"1.0.0\"\n",
            )
            .unwrap();
            order
        })
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(20),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn run_image(dir: &Path, release: &str) -> String {
    use gp_oci::image::{ImageConfig, add_layer, write_image};
    use gp_oci::layer::{Entry, Kind, LayerOptions, Source};
    let layout = gp_oci::layout::Layout::create(dir).unwrap();
    let entries = vec![
        Entry {
            path: "etc".into(),
            kind: Kind::Dir,
            executable: true,
        },
        Entry {
            path: "etc/os-release".into(),
            kind: Kind::File(Source::Bytes(release.as_bytes().to_vec())),
            executable: false,
        },
    ];
    let layer = add_layer(&layout, &entries, &LayerOptions::default()).unwrap();
    write_image(&layout, "run", &[layer], &ImageConfig::default()).unwrap();
    format!("oci:{}:run", dir.display())
}

#[test]
fn rebase_moves_the_tag_onto_a_patched_run_image() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    let v1 = run_image(&tmp.path().join("run-v1"), "VERSION=1\n");
    let v2 = run_image(&tmp.path().join("run-v2"), "VERSION=2 (security fix)\n");
    let order = crate::js_order(tmp.path());
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let (ok, out) = run(crate::test_build(&image, &order, &app).args(["--run-image", &v1]));
    assert!(ok, "{out}");
    assert!(out.contains("(1 from the run image)"), "{out}");
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath")).args([
        "rebase",
        &image,
        "--run-image",
        &v2,
    ]));
    assert!(ok, "{out}");
    let (ok, json) =
        run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args(["image", "inspect", "--json", &image]));
    assert!(ok, "{json}");
    let start = json.find('{').unwrap();
    let v: serde_json::Value = serde_json::from_str(&json[start..]).unwrap();
    let run_image = &v["buildpacks"]["io.buildpacks.lifecycle.metadata"]["runImage"];
    assert_eq!(run_image["image"], v2.as_str());
    // In a layout, the run image is identified by its image ID (the config digest).
    assert!(
        run_image["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("sha256:") && r.len() == 71),
        "{v}"
    );
}

#[test]
fn builder_create_then_build_with_the_builder() {
    let tmp = tempfile::tempdir().unwrap();
    let build_image = run_image(&tmp.path().join("build-image"), "ID=build\n");
    let run_ref = run_image(&tmp.path().join("run-image"), "ID=run\n");
    let bps = crate::test_buildpacks();
    // One buildpack as pack users ship them: a .tgz with buildpack.toml at its top.
    let npm_tgz = tmp.path().join("npm.tgz");
    let (ok, out) = run(Command::new("tar")
        .arg("-czf")
        .arg(&npm_tgz)
        .arg("-C")
        .arg(bps.join("test_npm/1.0.0"))
        .arg("."));
    assert!(ok, "{out}");
    let config = tmp.path().join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "description = \"test builder\"\n\n[[buildpacks]]\nuri = \"{b}/test_node/1.0.0\"\n\n[[buildpacks]]\nuri = \"file://{npm}\"\n\n[[buildpacks]]\nuri = \"{b}/test_js/1.0.0\"\n\n[[order]]\n[[order.group]]\nid = \"test/js\"\nversion = \"1.0.0\"\n\n[build]\nimage = \"{build_image}\"\n\n[[run.images]]\nimage = \"{run_ref}\"\n",
            b = bps.display(),
            npm = npm_tgz.display()
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:builder", tmp.path().join("builders").display());
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "builder",
            "create",
            "--tag",
            &builder,
            "--launcher",
            "/bin/true",
            "--config",
        ])
        .arg(&config));
    assert!(ok, "{out}");
    let (ok, json) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "inspect", "--json", &builder]));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    let labels = &v["buildpacks"];
    assert_eq!(
        labels["io.buildpacks.builder.metadata"]["buildpacks"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(
        labels["io.buildpacks.buildpack.layers"]["test/node"]["1.0.0"]["layerDiffID"].is_string(),
        "{labels:#}"
    );
    assert_eq!(
        labels["io.buildpacks.buildpack.order"][0]["group"][0]["id"],
        "test/js"
    );

    // A missing buildpack in the order is a clear error.
    let bad = tmp.path().join("bad.toml");
    fs_err::write(
        &bad,
        fs_err::read_to_string(&config)
            .unwrap()
            .replace("id = \"test/js\"", "id = \"test/ruby\""),
    )
    .unwrap();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "builder",
            "create",
            "--tag",
            &builder,
            "--launcher",
            "/bin/true",
            "--config",
        ])
        .arg(&bad));
    assert!(!ok && out.contains("test/ruby@1.0.0"), "{out}");

    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    let image = format!("oci:{}:app", tmp.path().join("apps").display());
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        // The test build image is no root filesystem to run in: buildpacks run on the host.
        .args([
            "build",
            &image,
            "--builder",
            &builder,
            "--sandbox",
            "none",
            "--path",
        ])
        .arg(&app)
        .env("XDG_CACHE_HOME", tmp.path().join("cache")));
    assert!(ok, "{out}");
    assert!(
        out.contains("(1 from the run image)") && out.contains("[test/npm] node-tool ok"),
        "{out}"
    );
}

#[test]
fn cached_layers_are_restored_for_the_next_build() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, order) = crate::js_app(tmp.path());
    let cache = tmp.path().join("cache");
    let build = |tag: &str| {
        run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args([
                "build",
                &format!("oci:{}:{tag}", tmp.path().join("out").display()),
                "--launcher",
                "/bin/true",
                "--order",
            ])
            .arg(&order)
            .arg("--cache")
            .arg(&cache)
            .arg("--path")
            .arg(&app)
            .arg("--buildpacks")
            .arg(crate::test_buildpacks()))
    };
    let (ok, first) = build("a");
    assert!(ok, "{first}");
    assert!(
        first.contains("Cached 1 layer(s)") && !first.contains("reusing cached node"),
        "{first}"
    );
    fs_err::write(app.join("server.js"), "changed source").unwrap();
    let (ok, second) = build("b");
    assert!(ok, "{second}");
    assert!(
        second.contains("Restored test/node:node") && second.contains("reusing cached node layer"),
        "{second}"
    );
}

#[test]
fn platform_env_and_ca_certificates_reach_buildpacks() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, order) = crate::js_app(tmp.path());
    let ca = tmp.path().join("corp-ca.pem");
    fs_err::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "build",
            &format!("oci:{}:x", tmp.path().join("out").display()),
            "--launcher",
            "/bin/true",
            "--env",
            "BP_GREETING=hello",
            "--order",
        ])
        .arg(&order)
        .arg("--ca-certs")
        .arg(&ca)
        .arg("--path")
        .arg(&app)
        .arg("--buildpacks")
        .arg(crate::test_buildpacks()));
    assert!(ok, "{out}");
    assert!(out.contains("greeting: hello"), "{out}");
    assert!(out.contains("bindings: ca-certificates"), "{out}");
    assert!(out.contains("ca file: -----BEGIN"), "{out}");
}

#[test]
fn project_toml_sets_build_env_and_excludes_files() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(app.join("secrets")).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    fs_err::write(app.join("debug.log"), "noise").unwrap();
    fs_err::write(app.join("secrets/key"), "do not ship").unwrap();
    fs_err::write(
        app.join("project.toml"),
        "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"*.log\", \"secrets/\"]\n\n[[io.buildpacks.build.env]]\nname = \"BP_GREETING\"\nvalue = \"from-project\"\n",
    )
    .unwrap();
    let order = crate::js_order(tmp.path());
    let image = format!("oci:{}:x", tmp.path().join("out").display());
    let (ok, out) = run(&mut crate::test_build(&image, &order, &app));
    assert!(ok, "{out}");
    assert!(out.contains("greeting: from-project"), "{out}");
    let rootfs = tmp.path().join("rootfs");
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["image", "unpack", &image])
        .arg(&rootfs));
    assert!(ok, "{out}");
    assert!(rootfs.join("workspace/package.json").is_file());
    assert!(
        !rootfs.join("workspace/debug.log").exists() && !rootfs.join("workspace/secrets").exists()
    );
}

/// Analyze: the previous image's launch-layer metadata is restored; a buildpack that keeps a layer (`.toml`, no
/// directory) gets the previous image's layer, byte for byte, in the new image.
#[test]
fn launch_layers_kept_from_the_previous_image() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("keep.txt"), "v1").unwrap();
    let order = tmp.path().join("order.toml");
    fs_err::write(
        &order,
        "[[order]]\n[[order.group]]\nid = \"test/keep\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    let image = format!("oci:{}:app", tmp.path().join("out").display());
    let build = || {
        let (ok, out) = run(crate::test_build(&image, &order, &app)
            .args(["--sandbox", "none"])
            .env("XDG_CACHE_HOME", tmp.path().join("cache")));
        assert!(ok, "{out}");
        out
    };
    let layers = || -> Vec<String> {
        let (ok, json) = run(Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args(["image", "inspect", "--json", &image]));
        assert!(ok, "{json}");
        let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
        let meta = &v["buildpacks"]["io.buildpacks.lifecycle.metadata"]["buildpacks"][0]["layers"]
            ["runtime"];
        assert_eq!(meta["data"]["version"], "1", "{v:#}");
        vec![meta["sha"].as_str().unwrap().to_owned()]
    };
    let first = build();
    assert!(first.contains("built the runtime layer"), "{first}");
    let before = layers();
    fs_err::write(app.join("keep.txt"), "v2").unwrap();
    let second = build();
    assert!(
        second.contains("Restored metadata of test/keep:runtime (from the previous image)")
            && second.contains("keeping the runtime layer from the previous image"),
        "{second}"
    );
    assert_eq!(layers(), before, "the kept layer is the previous image's");
}

#[test]
fn json_streams_the_builds_events_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, order) = crate::js_app(tmp.path());
    let image = format!("oci:{}:json", tmp.path().join("out").display());
    let o = crate::test_build(&image, &order, &app)
        .arg("--json")
        .env("GOLDENPATH_CACHE_DIR", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}`: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for want in [
        "phase-started",
        "detected",
        "output",
        "buildpack-times",
        "exported",
        "finished",
    ] {
        assert!(kinds.contains(&want), "no `{want}` in {kinds:?}");
    }
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert!(
        last["digest"].as_str().unwrap().starts_with("sha256:"),
        "{last}"
    );
    assert_eq!(last["processes"], serde_json::json!(["web", "worker"]));
    let times = events
        .iter()
        .find(|e| e["event"] == "buildpack-times")
        .unwrap();
    assert!(times["total_ms"].is_u64(), "{times}");

    // A failure is an event too, and the exit code the Platform API gives it.
    fs_err::remove_file(app.join("package.json")).unwrap();
    let o = crate::test_build(&image, &order, &app)
        .arg("--json")
        .env("GOLDENPATH_CACHE_DIR", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(20));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let failed: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(failed["event"], "failed");
    assert_eq!(failed["exit_code"], 20);
}
