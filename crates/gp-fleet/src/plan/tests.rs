use gp_cnb::{BaseImageLabels, LifecycleMetadata, RunImageRecord};

use super::*;
use crate::facts::{BaseFacts, Distro, ImageFacts, Platform};

fn amd64() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "amd64".into(),
        variant: None,
    }
}

fn debian(version: &str) -> BaseImageLabels {
    BaseImageLabels {
        distro_name: Some("debian".into()),
        distro_version: Some(version.into()),
        rebasable: Some(true),
        ..BaseImageLabels::default()
    }
}

fn run(reference: &str, layers: &[&str]) -> BaseFacts {
    let labels = debian("12");
    BaseFacts {
        reference: reference.into(),
        digest: "sha256:run".into(),
        platform: amd64(),
        distro: Some(Distro {
            name: "debian".into(),
            version: "12".into(),
        }),
        labels,
        diff_ids: layers.iter().map(|s| (*s).to_owned()).collect(),
        builder: None,
    }
}

/// An app on run image `base` (its layers), recorded as `image`, with two app layers.
fn app(image: &str, base: &[&str]) -> ImageFacts {
    let meta = LifecycleMetadata {
        run_image: Some(RunImageRecord {
            top_layer: (*base.last().unwrap()).to_owned(),
            reference: String::new(),
            image: image.into(),
            mirrors: vec!["mirror.example/stack/run:a".into()],
        }),
        ..LifecycleMetadata::default()
    };
    let mut diff_ids: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
    diff_ids.extend(["app1".to_owned(), "app2".to_owned()]);
    ImageFacts {
        digest: "sha256:app".into(),
        platform: amd64(),
        distro: Some(Distro {
            name: "debian".into(),
            version: "12".into(),
        }),
        labels: debian("12"),
        lifecycle: Ok(Some(meta)),
        build: None,
        source: None,
        diff_ids,
        index: false,
    }
}

/// Build metadata naming one buildpack.
fn built_with(id: &str, version: &str) -> gp_cnb::BuildMetadata {
    gp_cnb::BuildMetadata {
        buildpacks: vec![gp_cnb::BuildpackRecord {
            id: id.parse().unwrap(),
            version: version.parse().unwrap(),
            homepage: None,
            api: None,
        }],
        ..gp_cnb::BuildMetadata::default()
    }
}

/// A builder holding one buildpack.
fn builder_with(id: &str, version: &str) -> BaseFacts {
    let mut builder = run("r/builder:1", &["x"]);
    builder.builder = Some(gp_cnb::BuilderMetadata {
        buildpacks: vec![gp_cnb::BuilderBuildpack {
            id: id.parse().unwrap(),
            version: version.parse().unwrap(),
            homepage: None,
            name: None,
        }],
        ..gp_cnb::BuilderMetadata::default()
    });
    builder
}

#[test]
fn a_new_run_image_of_the_same_repository_is_a_rebase() {
    let d = decide(
        &app("r.example/stack/run:a", &["a1"]),
        &run("r.example/stack/run:b", &["b1"]),
        None,
    );
    assert_eq!(d.action, Action::Rebase, "{}", d.reason);
    assert!(d.reason.to_string().contains("a1 -> b1"), "{}", d.reason);
}

#[test]
fn a_mirror_counts_as_the_run_image_and_another_repository_does_not() {
    let image = app("r.example/stack/run:a", &["a1"]);
    let d = decide(&image, &run("mirror.example/stack/run:b", &["b1"]), None);
    assert_eq!(d.action, Action::Rebase);
    let d = decide(&image, &run("r.example/other/run:b", &["b1"]), None);
    assert_eq!(d.action, Action::Rebuild);
    assert!(
        d.reason
            .to_string()
            .contains("not the image's run image or a mirror"),
        "{}",
        d.reason
    );
}

#[test]
fn the_same_base_layers_are_up_to_date() {
    let d = decide(
        &app("r/stack/run:a", &["a1", "a2"]),
        &run("r/stack/run:a", &["a1", "a2"]),
        None,
    );
    assert_eq!(d.action, Action::UpToDate);
}

#[test]
fn another_distro_is_a_rebuild_and_another_architecture_is_refused() {
    let image = app("r/stack/run:a", &["a1"]);
    let mut other = run("r/stack/run:b", &["b1"]);
    other.distro = Some(Distro {
        name: "ubuntu".into(),
        version: "24.04".into(),
    });
    let d = decide(&image, &other, None);
    assert_eq!(d.action, Action::Rebuild);
    assert_eq!(
        d.reason.to_string(),
        "the image's run image is debian 12, the new one ubuntu 24.04: another distro"
    );
    let mut arm = run("r/stack/run:b", &["b1"]);
    arm.platform.arch = "arm64".into();
    let d = decide(&image, &arm, None);
    assert_eq!(d.action, Action::Skip);
    assert!(d.reason.to_string().contains("refused"), "{}", d.reason);
}

#[test]
fn rebasable_false_on_either_side_is_a_rebuild() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.labels.rebasable = Some(false);
    assert_eq!(
        decide(&image, &run("r/stack/run:b", &["b1"]), None).reason,
        Reason::ImageNotRebasable
    );
    let mut r = run("r/stack/run:b", &["b1"]);
    r.labels.rebasable = Some(false);
    let image = app("r/stack/run:a", &["a1"]);
    assert_eq!(
        decide(&image, &r, None).reason,
        Reason::RunImageNotRebasable
    );
}

#[test]
fn older_platform_images_need_the_stack_id_and_their_mixins() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.labels.stack_id = Some("io.example.stack".parse().unwrap());
    image.labels.stack_mixins = vec!["libssl".into(), "curl".into()];
    let mut r = run("r/stack/run:b", &["b1"]);
    r.labels.stack_id = Some("io.example.stack".parse().unwrap());
    r.labels.stack_mixins = vec!["libssl".into()];
    assert_eq!(
        decide(&image, &r, None).reason,
        Reason::Mixins {
            missing: vec!["curl".into()]
        }
    );
    r.labels.stack_id = Some("io.example.other".parse().unwrap());
    assert!(matches!(
        decide(&image, &r, None).reason,
        Reason::StackId { .. }
    ));
}

#[test]
fn images_without_cnb_metadata_are_skipped() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.lifecycle = Ok(None);
    let d = decide(&image, &run("r/stack/run:b", &["b1"]), None);
    assert_eq!(d.action, Action::Skip);
    assert!(
        d.reason.to_string().contains("not a CNB image"),
        "{}",
        d.reason
    );
}

#[test]
fn a_buildpack_version_changed_in_the_builder_is_a_rebuild() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.build = Some(built_with("gp/python", "1.0.0"));
    let builder = builder_with("gp/python", "1.1.0");
    // Even on the current run image.
    let d = decide(&image, &run("r/stack/run:a", &["a1"]), Some(&builder));
    assert_eq!(d.action, Action::Rebuild);
    assert_eq!(
        d.reason.to_string(),
        "buildpack gp/python 1.0.0 -> 1.1.0 in the builder"
    );
}

#[test]
fn images_of_another_builder_are_not_rebuilt_for_its_buildpacks() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.build = Some(built_with("test/node", "1.0.0"));
    let builder = builder_with("gp/python", "1.1.0");
    let d = decide(&image, &run("r/stack/run:b", &["b1"]), Some(&builder));
    assert_eq!(d.action, Action::Rebase, "{}", d.reason);
}

#[test]
fn docker_hub_names_compare_normalised_and_labels_never_panic_the_planner() {
    let image = app("paketobuildpacks/run-jammy-base:latest", &["a1"]);
    let d = decide(
        &image,
        &run("docker.io/paketobuildpacks/run-jammy-base:0.1.2", &["b1"]),
        None,
    );
    assert_eq!(d.action, Action::Rebase, "{}", d.reason);
    let mut odd = app("r/stack/run:a", &["a1"]);
    if let Ok(Some(m)) = &mut odd.lifecycle {
        m.run_image.as_mut().unwrap().top_layer = "sha256:aéééééééééééééé".into();
    }
    let d = decide(&odd, &run("r/stack/run:b", &["b1"]), None);
    assert_eq!(d.action, Action::Rebuild);
    assert!(d.reason.to_string().contains("aéééééééééé"), "{}", d.reason);
}

#[test]
fn a_multi_platform_index_is_skipped_with_the_reason() {
    let mut image = app("r/stack/run:a", &["a1"]);
    image.index = true;
    let d = decide(&image, &run("r/stack/run:b", &["b1"]), None);
    assert_eq!(d.action, Action::Skip);
    assert!(
        d.reason.to_string().contains("multi-platform"),
        "{}",
        d.reason
    );
}
