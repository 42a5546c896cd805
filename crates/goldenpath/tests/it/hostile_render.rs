//! `goldenpath contract render` against a hostile or interrupted output tree: nothing outside `--out` is touched,
//! a forged record is refused, and a render killed at any point leaves the old tree or the new one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::root;

fn render_cmd(contracts: &Path, out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_goldenpath"));
    c.args(["contract", "render", "--out"])
        .arg(out)
        .current_dir(contracts)
        .env_remove("GOLDENPATH_CONFIG")
        .env_remove("GOLDENPATH_TEST_ABORT_AFTER")
        .env("NO_COLOR", "1");
    c
}

fn render(contracts: &Path, out: &Path) -> Output {
    render_cmd(contracts, out).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every regular file and link below `dir` with its bytes (links as `-> target`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let meta = fs_err::symlink_metadata(&p).unwrap();
            if meta.is_symlink() {
                let t = fs_err::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", t.display()).into_bytes());
            } else if meta.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, fs_err::read(&p).unwrap());
            }
        }
    }
    out
}

/// A sentinel directory beside the tree that must stay byte-for-byte unchanged.
fn sentinel(tmp: &Path) -> (PathBuf, BTreeMap<PathBuf, Vec<u8>>) {
    let dir = tmp.join("outside");
    fs_err::create_dir_all(dir.join("dev/payments-api")).unwrap();
    fs_err::write(dir.join("secret"), "do not touch\n").unwrap();
    fs_err::write(dir.join("dev/payments-api/service.yaml"), "not yours\n").unwrap();
    let snap = snapshot(&dir);
    (dir, snap)
}

#[test]
fn render_into_the_filesystem_root_is_refused() {
    let o = render(&root().join("examples/contracts"), Path::new("/"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "error: refusing to render into `/`: it is the filesystem root; pass `--out` a dedicated directory for the \
         GitOps tree (e.g. `gitops`)\n"
    );
    assert!(!Path::new("/apps").exists() && !Path::new("/.goldenpath").exists());
}

#[test]
fn scaffold_into_the_filesystem_root_or_dot_dot_is_refused() {
    for (out, why) in [
        ("/", "is the filesystem root"),
        ("gitops/..", "ends in `..`"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
            .args(["scaffold", "--out", out])
            .current_dir(root())
            .env_remove("GOLDENPATH_CONFIG")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "error: refusing to render into `{out}`: it {why}; pass `--out` a dedicated directory for the \
                 GitOps tree (e.g. `gitops`)\n"
            )
        );
    }
    assert!(!Path::new("/.goldenpath").exists());
}

#[test]
fn a_record_listing_paths_outside_out_is_refused_and_nothing_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let (outside, before) = sentinel(tmp.path());
    let out = tmp.path().join("gitops");
    let contracts = root().join("examples/contracts");
    assert!(render(&contracts, &out).status.success());
    let record = out.join(".goldenpath/rendered.json");
    for entry in [
        "../outside/secret".to_owned(),
        outside.join("secret").display().to_string(),
    ] {
        let mut value: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&record).unwrap()).unwrap();
        value["files"][&entry] = "docs/20-contracts/app-deployments/dev/APP-0009.yaml".into();
        fs_err::write(&record, value.to_string()).unwrap();
        let tree_before = snapshot(&out);
        let o = render(&contracts, &out);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let reason = if entry.starts_with('/') {
            "is an absolute path"
        } else {
            "has a `.` or `..` component"
        };
        assert!(
            stderr(&o).ends_with(&format!(
                "error: `{}` lists `{entry}`, which {reason}; render only writes and prunes clean relative paths \
                 below the output directory: remove that entry from the record\n",
                record.display()
            )),
            "{}",
            stderr(&o)
        );
        assert_eq!(snapshot(&out), tree_before, "the tree is left as it was");
        assert_eq!(snapshot(&outside), before);
        let mut value: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&record).unwrap()).unwrap();
        value["files"].as_object_mut().unwrap().remove(&entry);
        fs_err::write(&record, value.to_string()).unwrap();
    }
}

#[test]
fn a_symlinked_directory_in_the_tree_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (outside, before) = sentinel(tmp.path());
    let out = tmp.path().join("gitops");
    fs_err::create_dir_all(out.join("apps")).unwrap();
    fs_err::os::unix::fs::symlink(outside.join("dev"), out.join("apps/dev")).unwrap();
    let o = render(&root().join("examples/contracts"), &out);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with(&format!(
            "error: `{}` is a symbolic link, where render needs a directory; render never writes through links: \
             move it away or render into another directory\n",
            out.join("apps/dev").display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&outside), before);
}

#[test]
fn a_symlink_at_a_generated_file_is_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let (outside, before) = sentinel(tmp.path());
    let out = tmp.path().join("gitops");
    let contracts = root().join("examples/contracts");
    assert!(render(&contracts, &out).status.success());
    let target = out.join("apps/dev/payments-api/service.yaml");
    fs_err::remove_file(&target).unwrap();
    fs_err::os::unix::fs::symlink(outside.join("dev/payments-api/service.yaml"), &target).unwrap();
    let o = render(&contracts, &out);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with(&format!(
            "error: `{}` is a symbolic link, where render writes a generated file; render never writes through \
             links or into special files: move it away or render into another directory\n",
            target.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&outside), before);
}

/// A contracts repository with `count` dev contracts starting at `first`; `bump` changes every other one.
fn contracts(dir: &Path, range: std::ops::Range<usize>, bump: bool) {
    let apps = dir.join("docs/20-contracts/app-deployments/dev");
    if dir.exists() {
        fs_err::remove_dir_all(dir).unwrap();
    }
    fs_err::create_dir_all(&apps).unwrap();
    fs_err::copy(
        root().join("examples/contracts/goldenpath.toml"),
        dir.join("goldenpath.toml"),
    )
    .unwrap();
    for i in range {
        let replicas = if bump && i % 2 == 0 { 3 } else { 2 };
        fs_err::write(
            apps.join(format!("APP-{:04}.yaml", 1000 + i)),
            format!(
                "apiVersion: goldenpath.io/v1\nkind: AppDeploymentRequest\nid: APP-{:04}\nenvironment: dev\n\
                 owner: team-a\napplication: app-{i:03}\nspec:\n  source:\n    git:\n      \
                 url: https://github.com/goldenpath-io/app-{i:03}\n      branch: main\n  build:\n    \
                 type: buildpack\n    builder: default\n  runtime:\n    replicas: {replicas}\n    resources:\n      \
                 memory: 128Mi\n      cpu: 50m\n  ingress:\n    enabled: false\n",
                1000 + i
            ),
        )
        .unwrap();
    }
}

fn restore(out: &Path, snap: &BTreeMap<PathBuf, Vec<u8>>) {
    if out.exists() {
        fs_err::remove_dir_all(out).unwrap();
    }
    for (p, bytes) in snap {
        fs_err::create_dir_all(out.join(p).parent().unwrap()).unwrap();
        fs_err::write(out.join(p), bytes).unwrap();
    }
}

/// The record lists exactly the files on disk (outside `.goldenpath/`).
fn assert_record_matches(snap: &BTreeMap<PathBuf, Vec<u8>>) {
    let record: serde_json::Value =
        serde_json::from_slice(&snap[Path::new(".goldenpath/rendered.json")]).unwrap();
    let listed: BTreeSet<PathBuf> = record["files"]
        .as_object()
        .unwrap()
        .keys()
        .map(PathBuf::from)
        .collect();
    let on_disk: BTreeSet<PathBuf> = snap
        .keys()
        .filter(|p| !p.starts_with(".goldenpath"))
        .cloned()
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn a_render_killed_at_any_point_leaves_the_old_or_the_new_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let (outside, before) = sentinel(tmp.path());
    let repo = tmp.path().join("repo");
    let out = tmp.path().join("gitops");
    // Old: 300 contracts. New: 250 of them (every other one changed) and 50 new ones.
    contracts(&repo, 0..300, false);
    let o = render(&repo, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let old = snapshot(&out);
    contracts(&repo, 0..250, true);
    for i in 300..350 {
        let text = fs_err::read_to_string(
            repo.join("docs/20-contracts/app-deployments/dev/APP-1000.yaml"),
        )
        .unwrap()
        .replace("APP-1000", &format!("APP-{:04}", 1000 + i))
        .replace("app-000", &format!("app-{i:03}"));
        fs_err::write(
            repo.join(format!(
                "docs/20-contracts/app-deployments/dev/APP-{:04}.yaml",
                1000 + i
            )),
            text,
        )
        .unwrap();
    }
    let o = render(&repo, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let new = snapshot(&out);
    assert_ne!(old, new);
    assert_record_matches(&old);
    assert_record_matches(&new);

    let mut killed = 0;
    let points = [
        1, 2, 3, 5, 20, 150, 300, 500, 700, 850, 1000, 1150, 1300, 1500, 1800, 2200,
    ];
    for (round, n) in points.into_iter().enumerate() {
        restore(&out, &old);
        let o = render_cmd(&repo, &out)
            .env("GOLDENPATH_TEST_ABORT_AFTER", n.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            assert_eq!(snapshot(&out), new, "after {n} steps");
            continue;
        }
        assert_eq!(
            o.status.code(),
            None,
            "killed after {n} steps: {}",
            stderr(&o)
        );
        killed += 1;
        if round % 2 == 0 {
            // What the next run starts from: the journal finished or undone.
            gp_render::tree::recover(&out).unwrap();
            let now = snapshot(&out);
            assert!(
                now == old || now == new,
                "after {n} steps: neither the old nor the new tree"
            );
            assert_record_matches(&now);
        }
        let o = render(&repo, &out);
        assert!(o.status.success(), "rerun after {n} steps: {}", stderr(&o));
        assert_eq!(snapshot(&out), new, "rerun after {n} steps");
    }
    assert!(killed >= 12, "only {killed} runs were interrupted");

    // And by the clock: SIGKILL after short delays.
    for delay in [10, 40, 100, 250] {
        restore(&out, &old);
        let mut child = render_cmd(&repo, &out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        gp_render::tree::recover(&out).unwrap();
        let now = snapshot(&out);
        assert!(
            now == old || now == new,
            "killed after {delay} ms: neither the old nor the new tree"
        );
        assert_record_matches(&now);
        let o = render(&repo, &out);
        assert!(o.status.success(), "rerun after {delay} ms: {}", stderr(&o));
        assert_eq!(snapshot(&out), new);
    }
    assert_eq!(snapshot(&outside), before);
}
