use super::*;

const LIFECYCLE: &str = r#"{
  "app": [{"sha": "sha256:app1"}, {"sha": "sha256:app2"}],
  "sbom": {"sha": "sha256:sbom"},
  "config": {"sha": "sha256:config"},
  "launcher": {"sha": "sha256:launcher"},
  "process-types": {"sha": "sha256:pt"},
  "exec-env": "production",
  "buildpacks": [
    {
      "key": "heroku/nodejs-engine",
      "version": "3.0.0",
      "layers": {
        "dist": {
          "sha": "sha256:dist",
          "data": {"version": "20.11.0", "exec-env": ["production"]},
          "build": true,
          "launch": true,
          "cache": true
        }
      },
      "store": {"metadata": {"last": "x"}}
    }
  ],
  "runImage": {
    "topLayer": "sha256:top",
    "reference": "registry.example.com/run@sha256:abc",
    "image": "registry.example.com/run:noble",
    "mirrors": ["mirror.example.com/run:noble"]
  },
  "futureKey": {"ignored": true}
}"#;

#[test]
fn lifecycle_metadata_round_trip() {
    let md = LifecycleMetadata::from_label(LIFECYCLE).unwrap();
    assert_eq!(md.app.len(), 2);
    let layer = &md.buildpacks[0].layers[&"dist".parse::<LayerName>().unwrap()];
    assert!(layer.build && layer.launch && layer.cache);
    assert_eq!(md.run_image().unwrap().top_layer, "sha256:top");
    let label = md.to_label().unwrap();
    assert_eq!(LifecycleMetadata::from_label(&label).unwrap(), md);
    let pretty: serde_json::Value = serde_json::from_str(&label).unwrap();
    insta::assert_json_snapshot!(pretty);
}

#[test]
fn deprecated_stack_run_image() {
    let md = LifecycleMetadata::from_label(
        r#"{"buildpacks": [], "stack": {"runImage": {"image": "old/run", "mirrors": ["m/run"]}}}"#,
    )
    .unwrap();
    assert_eq!(md.run_image().unwrap().image, "old/run");
    assert_eq!(md.run_image().unwrap().mirrors, ["m/run"]);
}

#[test]
fn layer_record_from_content() {
    let layer = LayerContentMetadata::from_toml_str(
        "[types]\nlaunch = true\n[metadata]\nversion = \"1.2\"\n",
    )
    .unwrap();
    let record = LayerRecord::from_content("sha256:x", &layer).unwrap();
    assert!(record.launch && !record.build && !record.cache);
    assert_eq!(record.data, serde_json::json!({"version": "1.2"}));
}

const BUILD: &str = r#"{
  "processes": [
    {
      "type": "web",
      "command": ["node", "server.js"],
      "args": ["--port", "8080"],
      "direct": true,
      "working-dir": "/workspace",
      "buildpackID": "heroku/nodejs",
      "exec-env": ["*"]
    },
    {
      "type": "legacy",
      "command": "npm start",
      "args": [],
      "direct": false,
      "buildpackID": "old/bp"
    }
  ],
  "buildpacks": [
    {"id": "heroku/nodejs", "version": "3.0.0", "homepage": "https://example.com", "api": "0.10"}
  ],
  "launcher": {
    "version": "0.20.0",
    "source": {"git": {"repository": "github.com/buildpacks/lifecycle", "commit": "abc123"}}
  }
}"#;

#[test]
fn build_metadata_round_trip() {
    let md = BuildMetadata::from_label(BUILD).unwrap();
    assert_eq!(
        md.processes[1].command,
        ProcessCommand::Legacy("npm start".into())
    );
    assert_eq!(md.buildpacks[0].api, Some(BuildpackApi::new(0, 10)));
    let label = md.to_label().unwrap();
    assert_eq!(BuildMetadata::from_label(&label).unwrap(), md);
    let pretty: serde_json::Value = serde_json::from_str(&label).unwrap();
    insta::assert_json_snapshot!(pretty);
}

#[test]
fn project_metadata_toml_and_label() {
    let toml_text = r#"
[source]
type = "git"
[source.version]
commit = "0123abc"
[source.metadata]
repository = "https://github.com/example/app"
refs = ["main"]
"#;
    let md = ProjectMetadata::from_toml_str(toml_text).unwrap();
    assert_eq!(md.source.as_ref().unwrap().kind.as_deref(), Some("git"));
    let label = md.to_label().unwrap();
    assert_eq!(
        label,
        r#"{"source":{"type":"git","version":{"commit":"0123abc"},"metadata":{"refs":["main"],"repository":"https://github.com/example/app"}}}"#
    );
    assert_eq!(ProjectMetadata::from_label(&label).unwrap(), md);
    let back = ProjectMetadata::from_toml_str(&md.to_toml_string().unwrap()).unwrap();
    assert_eq!(back, md);
}

#[test]
fn label_errors_name_the_label() {
    let err =
        LifecycleMetadata::from_label(r#"{"buildpacks": [{"key": "app", "version": "1.0.0"}]}"#)
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with(
            "invalid `io.buildpacks.lifecycle.metadata` label: invalid buildpack id `app`"
        ),
        "{err}"
    );
    let err = BuildMetadata::from_label("not json")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid `io.buildpacks.build.metadata` label: expected ident at line 1 column 2"
    );
}

#[test]
fn cache_metadata_round_trip() {
    // The shape the reference lifecycle writes on cache images.
    let label = r#"{"buildpacks":[{"key":"paketo-buildpacks/npm-install","version":"1.2.3",
        "layers":{"npm-cache":{"sha":"sha256:aa","data":{"cache_sha":"x"},"build":false,"launch":false,"cache":true}}}]}"#;
    let md = CacheMetadata::from_label(label).unwrap();
    let layer = &md.buildpacks[0].layers[&"npm-cache".parse::<LayerName>().unwrap()];
    assert!(layer.cache && !layer.launch);
    assert_eq!(layer.data["cache_sha"], "x");
    assert_eq!(
        CacheMetadata::from_label(&md.to_label().unwrap()).unwrap(),
        md
    );
}

#[test]
fn metadata_processes_become_records_when_they_name_a_buildpack() {
    let mut p = MetadataProcess {
        kind: "worker".parse().unwrap(),
        command: ProcessCommand::Argv(vec!["bin/worker".into()]),
        args: vec!["-v".into()],
        direct: true,
        working_dir: Some("/workspace".into()),
        buildpack_id: None,
        exec_env: vec!["*".into()],
    };
    assert_eq!(
        ProcessRecord::try_from(&p).unwrap_err().to_string(),
        "process `worker` names no buildpack"
    );
    p.buildpack_id = Some("heroku/procfile".parse().unwrap());
    assert_eq!(
        ProcessRecord::try_from(&p).unwrap(),
        ProcessRecord {
            kind: p.kind.clone(),
            command: p.command.clone(),
            args: p.args.clone(),
            direct: true,
            working_dir: p.working_dir.clone(),
            buildpack_id: "heroku/procfile".parse().unwrap(),
            exec_env: p.exec_env.clone(),
        }
    );
}
