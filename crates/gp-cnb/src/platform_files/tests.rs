use super::*;

const ANALYZED: &str = r#"
[image]
reference = "registry.example.com/app@sha256:prev"

[metadata]
[[metadata.app]]
sha = "sha256:slice"
[metadata.config]
sha = "sha256:config"
[[metadata.buildpacks]]
key = "heroku/nodejs-engine"
version = "3.0.0"
[metadata.buildpacks.layers.dist]
sha = "sha256:dist"
launch = true
cache = true
[metadata.buildpacks.layers.dist.data]
version = "20.11.0"
[metadata.runImage]
topLayer = "sha256:top"
reference = "registry.example.com/run@sha256:abc"

[run-image]
image = "registry.example.com/run:noble"
reference = "registry.example.com/run@sha256:abc"
[run-image.target]
os = "linux"
arch = "amd64"
[run-image.target.distro]
name = "ubuntu"
version = "24.04"

[build-image]
reference = "registry.example.com/build@sha256:def"
"#;

#[test]
fn analyzed_round_trip() {
    let analyzed = AnalyzedToml::from_toml_str(ANALYZED).unwrap();
    let run = analyzed.run_image.as_ref().unwrap();
    assert_eq!(
        run.target
            .as_ref()
            .unwrap()
            .distro
            .as_ref()
            .unwrap()
            .version
            .as_deref(),
        Some("24.04")
    );
    let md = analyzed.metadata.as_ref().unwrap();
    assert_eq!(md.buildpacks[0].layers.len(), 1);
    let text = analyzed.to_toml_string().unwrap();
    assert_eq!(AnalyzedToml::from_toml_str(&text).unwrap(), analyzed);
    insta::assert_snapshot!(text);
    assert_eq!(
        AnalyzedToml::from_toml_str("").unwrap(),
        AnalyzedToml::default()
    );
}

#[test]
fn report_round_trip_and_size_forms() {
    let text = r#"
[image]
tags = ["registry.example.com/app:latest", "registry.example.com/app:v1"]
digest = "sha256:0123"
manifest-size = 1234
"#;
    let report = ReportToml::from_toml_str(text).unwrap();
    assert_eq!(report.image.manifest_size, Some(1234));
    let again = ReportToml::from_toml_str(&report.to_toml_string().unwrap()).unwrap();
    assert_eq!(again, report);
    let quoted = ReportToml::from_toml_str("[image]\nmanifest-size = \"99\"\n").unwrap();
    assert_eq!(quoted.image.manifest_size, Some(99));
    let daemon =
        ReportToml::from_toml_str("[image]\ntags = [\"app\"]\nimage-id = \"sha256:id\"\n").unwrap();
    assert_eq!(daemon.image.image_id.as_deref(), Some("sha256:id"));
    let err = ReportToml::from_toml_str("[image]\nmanifest-size = \"big\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`big` is not a size in bytes"), "{err}");
}

const METADATA: &str = r#"
buildpack-default-process-type = "web"

[[buildpacks]]
id = "heroku/nodejs-engine"
version = "3.0.0"
api = "0.10"

[[processes]]
type = "web"
command = ["node", "server.js"]
args = ["--port", "8080"]
direct = true
buildpack-id = "heroku/nodejs-engine"
exec-env = ["*"]

[[processes]]
type = "test"
command = ["npm", "test"]
exec-env = ["test"]

[[slices]]
paths = ["public/*"]
"#;

#[test]
fn metadata_round_trip() {
    let md = MetadataToml::from_toml_str(METADATA).unwrap();
    assert!(md.process("web").unwrap().applies_to("production"));
    assert!(!md.process("test").unwrap().applies_to("production"));
    let text = md.to_toml_string().unwrap();
    assert_eq!(MetadataToml::from_toml_str(&text).unwrap(), md);
    insta::assert_snapshot!(text);
    let bad = METADATA.replace("= \"web\"\n\n", "= \"worker\"\n\n");
    assert_eq!(
        MetadataToml::from_toml_str(&bad).unwrap_err().to_string(),
        "invalid metadata.toml: `buildpack-default-process-type` names `worker`, which is not among `processes`"
    );
}

#[test]
fn run_and_stack() {
    let run = RunToml::from_toml_str(
        "[[images]]\nimage = \"example/run:noble\"\nmirrors = [\"m1/run:noble\", \"m2/run:noble\"]\n\n[[images]]\nimage = \"example/run-slim:noble\"\n",
    )
    .unwrap();
    assert_eq!(
        run.find("m2/run:noble").unwrap().image.as_deref(),
        Some("example/run:noble")
    );
    assert!(run.find("other").is_none());
    assert_eq!(
        RunToml::from_toml_str(&run.to_toml_string().unwrap()).unwrap(),
        run
    );
    assert_eq!(
        RunToml::from_toml_str("[[images]]\nmirrors = [\"m\"]\n")
            .unwrap_err()
            .to_string(),
        "invalid run.toml: `images[0].mirrors` must not be set without `image`"
    );

    let stack = StackToml::from_toml_str(
        "[run-image]\nimage = \"example/run:bionic\"\nmirrors = [\"m/run:bionic\"]\n[build-image]\nimage = \"example/build:bionic\"\n",
    )
    .unwrap();
    assert_eq!(stack.to_run_toml().images[0].mirrors, ["m/run:bionic"]);
    assert_eq!(
        StackToml::from_toml_str(&stack.to_toml_string().unwrap()).unwrap(),
        stack
    );
}

#[test]
fn launch_processes_become_metadata_processes() {
    let mut p = Process::new("web".parse().unwrap(), ["node", "server.js"]);
    p.args = vec!["--port".into(), "8080".into()];
    p.default = true;
    p.working_dir = Some("/workspace/api".into());
    p.exec_env = vec!["production".into()];
    let m = MetadataProcess::from(p.clone());
    assert_eq!(
        m,
        MetadataProcess {
            kind: p.kind.clone(),
            command: p.command.clone(),
            args: p.args.clone(),
            direct: false,
            working_dir: p.working_dir.clone(),
            buildpack_id: None,
            exec_env: p.exec_env.clone(),
        }
    );
    p.direct = Some(true);
    assert!(MetadataProcess::from(p).direct);
}
