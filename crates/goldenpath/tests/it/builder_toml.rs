//! pack's `builder.toml` shapes with the project's test buildpacks: order groups with and without versions, a
//! composite buildpack by uri, a composite packaged as a `.cnb` by `goldenpath buildpack package`, and the errors
//! for an order entry that names no buildpack or an ambiguous one.

use std::path::Path;
use std::process::Command;

use crate::build::run_image;
use crate::{run, test_buildpacks};

fn gp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_goldenpath"))
}

fn create(config: &Path, builder: &str) -> (bool, String) {
    run(gp()
        .args(["builder", "create", "--tag", builder, "--config"])
        .arg(config))
}

#[test]
#[allow(clippy::too_many_lines)] // one story: package, create, inspect, build, then each refusal
fn pack_builder_toml_shapes_build() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let build_image = run_image(&tmp.join("build-image"), "ID=build\n");
    let run_ref = run_image(&tmp.join("run-image"), "ID=run\n");
    let bps = test_buildpacks();
    // The composite `test/js` with its parts, as one `.cnb` buildpackage.
    let (ok, out) = run(gp()
        .args(["buildpack", "package"])
        .arg(tmp.join("js.cnb"))
        .arg("--path")
        .arg(bps.join("test_js/1.0.0"))
        .arg("--dependency")
        .arg(bps.join("test_node/1.0.0"))
        .arg("--dependency")
        .arg(bps.join("test_npm/1.0.0")));
    assert!(ok, "{out}");
    let config = tmp.join("builder.toml");
    let write = |body: &str| {
        fs_err::write(
            &config,
            format!(
                "{body}\n[build]\nimage = \"{build_image}\"\n\n[[run.images]]\nimage = \"{run_ref}\"\n"
            ),
        )
        .unwrap();
    };
    // Buildpacks from the `.cnb`, and the composite once more by uri (the same buildpack twice is taken once);
    // one order group with a version, one without.
    write(&format!(
        "[[buildpacks]]\nuri = \"js.cnb\"\n\n[[buildpacks]]\nuri = \"{b}/test_js/1.0.0\"\n\n[[buildpacks]]\nuri = \"{b}/test_hello/1.0.0\"\n\n\
         [[order]]\n[[order.group]]\nid = \"test/hello\"\n\n[[order]]\n[[order.group]]\nid = \"test/js\"\nversion = \"1.0.0\"\n",
        b = bps.display()
    ));
    let builder = format!("oci:{}:b", tmp.join("builder").display());
    let (ok, out) = create(&config, &builder);
    assert!(ok, "{out}");
    let (ok, json) = run(gp().args(["image", "inspect", "--json", &builder]));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    let labels = &v["buildpacks"];
    let order = &labels["io.buildpacks.buildpack.order"];
    assert_eq!(order[0]["group"][0]["id"], "test/hello");
    assert_eq!(order[0]["group"][0]["version"], "1.0.0", "filled in");
    let ids: Vec<&str> = labels["io.buildpacks.builder.metadata"]["buildpacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["test/js", "test/node", "test/npm", "test/hello"]);

    let app = tmp.join("app");
    fs_err::create_dir_all(&app).unwrap();
    fs_err::write(app.join("package.json"), "{}").unwrap();
    let (ok, out) = run(gp()
        .args(["build", &format!("oci:{}:app", tmp.join("apps").display())])
        // The test build image is no root filesystem to run in: buildpacks run on the host.
        .args(["--builder", &builder, "--sandbox", "none", "--path"])
        .arg(&app)
        .env("XDG_CACHE_HOME", tmp.join("cache")));
    assert!(ok, "{out}");
    assert!(out.contains("[test/npm] node-tool ok"), "{out}");

    // A version the builder lacks, an id it lacks, and an id it holds in two versions.
    let second = tmp.join("hello-2");
    let (ok, out) = run(Command::new("cp")
        .arg("-r")
        .arg(bps.join("test_hello/1.0.0"))
        .arg(&second));
    assert!(ok, "{out}");
    let descriptor = second.join("buildpack.toml");
    let text = fs_err::read_to_string(&descriptor).unwrap();
    fs_err::write(
        &descriptor,
        text.replace("version = \"1.0.0\"", "version = \"2.0.0\""),
    )
    .unwrap();
    let two = format!(
        "[[buildpacks]]\nuri = \"{b}/test_hello/1.0.0\"\n\n[[buildpacks]]\nuri = \"{second}\"\n\n",
        b = bps.display(),
        second = second.display()
    );
    for (order, expected) in [
        (
            "[[order]]\n[[order.group]]\nid = \"test/hello\"\n",
            "the order names `test/hello` without a version, and the builder holds `1.0.0`, `2.0.0`: write `version = \"...\"` in that `[[order.group]]` entry",
        ),
        (
            "[[order]]\n[[order.group]]\nid = \"test/hello\"\nversion = \"3.0.0\"\n",
            "the order names `test/hello@3.0.0`, which is not among the builder's buildpacks",
        ),
        (
            "[[order]]\n[[order.group]]\nid = \"test/ruby\"\n",
            "the order names `test/ruby@(any version)`, which is not among the builder's buildpacks",
        ),
    ] {
        write(&format!("{two}{order}"));
        let (ok, out) = create(&config, &builder);
        assert!(!ok && out.contains(expected), "{out}");
    }
    // A builder for another platform is refused before any work.
    write(&format!(
        "{two}[[order]]\n[[order.group]]\nid = \"test/hello\"\nversion = \"1.0.0\"\n\n[[targets]]\nos = \"windows\"\narch = \"amd64\"\n"
    ));
    let (ok, out) = create(&config, &builder);
    assert!(
        !ok && out.contains("`[[targets]]` lists `windows/amd64`, not this machine's `linux/"),
        "{out}"
    );
}

/// Buildpackage images in a registry: pushed by `goldenpath buildpack package REF`, named in `builder.toml` as
/// `docker://REF`, `image = "REF"` and a plain `uri = "REF"`.
#[test]
fn buildpackages_from_a_registry() {
    if !crate::require_tool("docker-registry") {
        return;
    }
    let registry = crate::registry::RegistryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let bps = test_buildpacks();
    let reg = format!("127.0.0.1:{}", registry.port);
    for (name, dir) in [
        ("hello", "test_hello"),
        ("node", "test_node"),
        ("npm", "test_npm"),
    ] {
        let (ok, out) = run(gp()
            .args([
                "buildpack",
                "package",
                &format!("{reg}/bp/{name}:1"),
                "--path",
            ])
            .arg(bps.join(dir).join("1.0.0"))
            .env("XDG_CACHE_HOME", tmp.join("cache")));
        assert!(ok, "{out}");
        assert!(out.contains("packaged and pushed"), "{out}");
    }
    let build_image = run_image(&tmp.join("build-image"), "ID=build\n");
    let config = tmp.join("builder.toml");
    fs_err::write(
        &config,
        format!(
            "[[buildpacks]]\nuri = \"docker://{reg}/bp/hello:1\"\n\n[[buildpacks]]\nimage = \"{reg}/bp/node:1\"\n\n\
             [[buildpacks]]\nuri = \"{reg}/bp/npm:1\"\n\n[[order]]\n[[order.group]]\nid = \"test/hello\"\n\n\
             [build]\nimage = \"{build_image}\"\n"
        ),
    )
    .unwrap();
    let builder = format!("oci:{}:b", tmp.join("builder").display());
    let (ok, out) = run(gp()
        .args(["builder", "create", "--tag", &builder, "--config"])
        .arg(&config)
        .env("XDG_CACHE_HOME", tmp.join("cache")));
    assert!(ok, "{out}");
    let (ok, json) = run(gp().args(["image", "inspect", "--json", &builder]));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json[json.find('{').unwrap()..]).unwrap();
    let layers = &v["buildpacks"]["io.buildpacks.buildpack.layers"];
    for id in ["test/hello", "test/node", "test/npm"] {
        assert!(
            layers[id]["1.0.0"]["layerDiffID"].is_string(),
            "{id}: {layers:#}"
        );
    }
}
