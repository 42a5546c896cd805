//! Reads a realistic build's files from disk (a copy of `tests/fixtures/node-app`), round-trips
//! every one, and checks the rules that span files.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use gp_cnb::env::{EnvAction, EnvMap, apply_env_dir};
use gp_cnb::{
    AnalyzedToml, BuildExecutable, BuildToml, BuildpackApi, BuildpackDescriptor, BuildpackPlan,
    CnbError, GroupToml, LaunchToml, LayerContentMetadata, MetadataProcess, MetadataToml,
    OrderToml, PlanToml, ProcessCommand, Procfile, ProjectDescriptor, ReportToml, RunToml,
    TomlFile,
};

fn copy_dir(from: &Path, to: &Path) {
    fs_err::create_dir_all(to).expect("create fixture dir");
    for entry in fs_err::read_dir(from).expect("list fixture dir") {
        let entry = entry.expect("fixture dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("fixture file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&src, dir.path());
    let root = dir.path().to_path_buf();
    Fixture { _dir: dir, root }
}

/// Reads `rel`, checks every key in it is modelled, then checks serialize -> parse gives the same
/// value.
fn read<T: TomlFile + PartialEq + Debug>(fx: &Fixture, rel: &str) -> T {
    let value = T::from_path(fx.root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let text = fs_err::read_to_string(fx.root.join(rel)).expect("read fixture");
    let (_, unknown) = T::from_toml_str_with_unknown_keys(&text).expect("parse fixture");
    assert!(unknown.is_empty(), "{rel}: unmodelled keys {unknown:?}");
    let text = value.to_toml_string().expect("serialize");
    assert_eq!(
        T::from_toml_str(&text).expect("reparse"),
        value,
        "{rel} round trip"
    );
    value
}

const BP_LAYERS: &str = "layers/heroku_nodejs-engine";

#[test]
fn every_file_round_trips() {
    let fx = fixture("node-app");
    read::<BuildpackDescriptor>(&fx, "buildpack/buildpack.toml");
    read::<ProjectDescriptor>(&fx, "app/project.toml");
    read::<OrderToml>(&fx, "platform/order.toml");
    read::<RunToml>(&fx, "platform/run.toml");
    read::<GroupToml>(&fx, "layers/group.toml");
    read::<PlanToml>(&fx, "layers/plan.toml");
    read::<AnalyzedToml>(&fx, "layers/analyzed.toml");
    read::<ReportToml>(&fx, "layers/report.toml");
    read::<LayerContentMetadata>(&fx, &format!("{BP_LAYERS}/dist.toml"));
    read::<LaunchToml>(&fx, &format!("{BP_LAYERS}/launch.toml"));
    read::<BuildToml>(&fx, &format!("{BP_LAYERS}/build.toml"));
}

#[test]
fn cross_file_rules() {
    let fx = fixture("node-app");
    let descriptor: BuildpackDescriptor = read(&fx, "buildpack/buildpack.toml");
    let analyzed: AnalyzedToml = read(&fx, "layers/analyzed.toml");
    let run_target = analyzed.run_image.unwrap().target.unwrap();
    assert!(
        descriptor
            .effective_targets(BuildExecutable::Unix)
            .iter()
            .any(|t| t.satisfies(&run_target))
    );

    // The detected group is one of the order's groups, minus the optional buildpack if it failed.
    let order: OrderToml = read(&fx, "platform/order.toml");
    let group: GroupToml = read(&fx, "layers/group.toml");
    for member in &group.group {
        assert!(
            order.order[0]
                .group
                .iter()
                .any(|r| r.id == member.id && r.version == member.version)
        );
        assert!(member.api.is_supported());
    }

    // The buildpack's outputs agree with its API and its plan.
    let launch: LaunchToml = read(&fx, &format!("{BP_LAYERS}/launch.toml"));
    launch.check_api(descriptor.api).unwrap();
    assert!(launch.check_api(BuildpackApi::new(0, 9)).is_err());
    let plan: PlanToml = read(&fx, "layers/plan.toml");
    let bp_plan = BuildpackPlan {
        entries: plan.entries[0].requires.clone(),
    };
    let build: BuildToml = read(&fx, &format!("{BP_LAYERS}/build.toml"));
    build.check_against(&bp_plan).unwrap();
}

#[test]
fn procfile_and_project_env_feed_the_launcher_config() {
    let fx = fixture("node-app");
    let procfile: Procfile = fs_err::read_to_string(fx.root.join("app/Procfile"))
        .unwrap()
        .parse()
        .unwrap();
    let processes: Vec<MetadataProcess> = procfile
        .to_processes(&["bash", "-c"])
        .into_iter()
        .map(|p| MetadataProcess {
            direct: true,
            buildpack_id: Some("heroku/procfile".parse().unwrap()),
            exec_env: vec!["*".into()],
            ..p.into()
        })
        .collect();
    let metadata = MetadataToml {
        default_process_type: Some("web".parse().unwrap()),
        processes,
        ..MetadataToml::default()
    };
    let text = metadata.to_toml_string().unwrap();
    let again = MetadataToml::from_toml_str(&text).unwrap();
    assert_eq!(
        again.process("worker").unwrap().command,
        ProcessCommand::Argv(vec![
            "bash".into(),
            "-c".into(),
            "node worker.js --queue default".into()
        ])
    );
    insta::assert_snapshot!(text);

    let project: ProjectDescriptor = read(&fx, "app/project.toml");
    let vars = &project.buildpacks().unwrap().build.env;
    let mut env = EnvMap::new();
    apply_env_dir(
        &mut env,
        vars.iter().map(|v| (v.name.as_str(), v.value.as_bytes())),
        EnvAction::Override,
    )
    .unwrap();
    assert_eq!(env["NODE_ENV"], "production");
}

#[test]
fn errors_carry_the_path() {
    let fx = fixture("node-app");
    let path = fx.root.join("layers/group.toml");
    fs_err::write(
        &path,
        "[[group]]\nid = \"heroku/nodejs-engine\"\nversion = \"3.0\"\napi = \"0.10\"\n",
    )
    .unwrap();
    let err = GroupToml::from_path(&path).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, CnbError::InvalidToml { .. }));
    assert!(
        message.starts_with(&format!("invalid group.toml at `{}`:", path.display())),
        "{message}"
    );
    assert!(
        message.contains("invalid buildpack version `3.0`"),
        "{message}"
    );

    let missing = fx.root.join("layers/nope.toml");
    let err = ReportToml::from_path(&missing).unwrap_err();
    assert!(matches!(&err, CnbError::CannotRead { path, .. } if *path == missing));
}
