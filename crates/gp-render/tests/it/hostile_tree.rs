//! Writing the GitOps tree from hostile state: links, special files and forged records in the output directory.
//! Every case asserts the exact error and that everything outside `--out` is byte-for-byte unchanged.

use fs_err::os::unix::fs::symlink;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gp_render::RenderedFile;
use gp_render::tree::{self, MANIFEST, Planned};

/// A temp dir with `out/` (the tree) and `outside/` (a sentinel that must never change).
struct Fixture {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    outside: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let outside = tmp.path().join("outside");
        fs_err::create_dir_all(&out).unwrap();
        fs_err::create_dir_all(outside.join("dev/app")).unwrap();
        fs_err::write(outside.join("sentinel"), "keep me\n").unwrap();
        fs_err::write(outside.join("dev/app/service.yaml"), "not yours\n").unwrap();
        let before = snapshot(&outside);
        Self {
            _tmp: tmp,
            out,
            outside,
            before,
        }
    }

    fn assert_outside_unchanged(&self) {
        assert_eq!(
            snapshot(&self.outside),
            self.before,
            "outside --out changed"
        );
    }

    fn record(&self, files: &[(&str, &str)]) {
        let files: BTreeMap<_, _> = files.iter().copied().collect();
        let text = serde_json::json!({ "version": 1, "files": files });
        fs_err::create_dir_all(self.out.join(".goldenpath")).unwrap();
        fs_err::write(self.out.join(MANIFEST), text.to_string()).unwrap();
    }

    fn apply(&self, plan: &[Planned]) -> Result<tree::Outcome, String> {
        tree::apply(&self.out, plan, &BTreeSet::new()).map_err(|e| e.to_string())
    }
}

/// Every entry below `dir`: file contents, `-> target` for links, `/` for directories.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let meta = fs_err::symlink_metadata(&p).unwrap();
            if meta.is_symlink() {
                let target = fs_err::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, "/".to_owned());
                stack.push(p);
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&fs_err::read(&p).unwrap()).into(),
                );
            }
        }
    }
    out
}

fn planned(path: &str, contents: &str) -> Planned {
    Planned {
        source: "contracts/APP-0001.yaml".to_owned(),
        file: RenderedFile {
            path: PathBuf::from(path),
            contents: contents.to_owned(),
        },
    }
}

fn record_error(out: &Path, entry: &str, reason: &str) -> String {
    format!(
        "`{}` lists `{entry}`, which {reason}; render only writes and prunes clean relative paths below the output \
         directory: remove that entry from the record",
        out.join(MANIFEST).display()
    )
}

#[test]
fn a_record_entry_outside_out_is_refused_and_nothing_is_deleted() {
    for (entry, shown, reason) in [
        (
            "../outside/sentinel",
            "../outside/sentinel",
            "has a `.` or `..` component",
        ),
        (
            "apps/../../outside/sentinel",
            "apps/../../outside/sentinel",
            "has a `.` or `..` component",
        ),
        ("/etc/hostname", "/etc/hostname", "is an absolute path"),
        (
            "apps//x",
            "apps//x",
            "has an empty component (`//` or a trailing `/`)",
        ),
        ("apps/x\n", "apps/x\\n", "contains a control character"),
        (
            ".goldenpath/rendered.json",
            ".goldenpath/rendered.json",
            "is inside `.goldenpath`",
        ),
    ] {
        let f = Fixture::new();
        let entry = if entry.starts_with("/etc") {
            // An absolute path to the sentinel itself.
            f.outside.join("sentinel").display().to_string()
        } else {
            entry.to_owned()
        };
        let shown = if shown.starts_with("/etc") {
            entry.clone()
        } else {
            shown.to_owned()
        };
        f.record(&[(&entry, "contracts/APP-0001.yaml")]);
        let err = f.apply(&[]).unwrap_err();
        assert_eq!(err, record_error(&f.out, &shown, reason));
        f.assert_outside_unchanged();
    }
}

#[test]
fn a_long_record_entry_is_shown_as_a_short_excerpt() {
    let f = Fixture::new();
    let entry = format!("../{}", "x".repeat(500));
    f.record(&[(&entry, "c")]);
    let shown = format!("../{}… (503 bytes in all)", "x".repeat(77));
    assert_eq!(
        f.apply(&[]).unwrap_err(),
        record_error(&f.out, &shown, "has a `.` or `..` component")
    );
    f.assert_outside_unchanged();
}

#[test]
fn pruning_never_goes_through_a_symlinked_directory() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join("apps")).unwrap();
    symlink(f.outside.join("dev"), f.out.join("apps/dev")).unwrap();
    f.record(&[("apps/dev/app/service.yaml", "c")]);
    let err = f.apply(&[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a symbolic link, where render needs a directory; render never writes through links: move it \
             away or render into another directory",
            f.out.join("apps/dev").display()
        )
    );
    f.assert_outside_unchanged();
}

#[test]
fn pruning_a_link_removes_the_link_only() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join("apps/dev")).unwrap();
    symlink(f.outside.join("sentinel"), f.out.join("apps/dev/x.yaml")).unwrap();
    fs_err::write(f.out.join("README.md"), "hand-written\n").unwrap();
    f.record(&[("apps/dev/x.yaml", "c")]);
    let outcome = f.apply(&[]).unwrap();
    assert_eq!(outcome.pruned, [f.out.join("apps/dev/x.yaml")]);
    // The emptied directories go; the root and files render does not own stay.
    assert!(!f.out.join("apps").exists());
    assert_eq!(
        fs_err::read_to_string(f.out.join("README.md")).unwrap(),
        "hand-written\n"
    );
    f.assert_outside_unchanged();
}

#[test]
fn a_symlinked_directory_in_the_tree_is_refused_before_writing() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join("apps")).unwrap();
    symlink(&f.outside, f.out.join("apps/dev")).unwrap();
    let err = f
        .apply(&[
            planned("argocd/dev/app.yaml", "a\n"),
            planned("apps/dev/app/service.yaml", "kind: Service\n"),
        ])
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a symbolic link, where render needs a directory; render never writes through links: move it \
             away or render into another directory",
            f.out.join("apps/dev").display()
        )
    );
    assert!(
        !f.out.join("argocd").exists(),
        "nothing is written when one target is refused"
    );
    f.assert_outside_unchanged();
}

#[test]
fn a_file_where_a_directory_is_needed_is_refused() {
    let f = Fixture::new();
    fs_err::write(f.out.join("apps"), "a file\n").unwrap();
    let err = f
        .apply(&[planned("apps/dev/app/service.yaml", "x\n")])
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a regular file, where render needs a directory; render never writes through links: move it \
             away or render into another directory",
            f.out.join("apps").display()
        )
    );
    f.assert_outside_unchanged();
}

#[test]
fn a_link_where_a_generated_file_goes_is_refused_even_if_recorded() {
    for recorded in [false, true] {
        let f = Fixture::new();
        fs_err::create_dir_all(f.out.join("apps/dev/app")).unwrap();
        symlink(
            f.outside.join("dev/app/service.yaml"),
            f.out.join("apps/dev/app/service.yaml"),
        )
        .unwrap();
        if recorded {
            f.record(&[("apps/dev/app/service.yaml", "contracts/APP-0001.yaml")]);
        }
        let err = f
            .apply(&[planned("apps/dev/app/service.yaml", "kind: Service\n")])
            .unwrap_err();
        assert_eq!(
            err,
            format!(
                "`{}` is a symbolic link, where render writes a generated file; render never writes through links \
                 or into special files: move it away or render into another directory",
                f.out.join("apps/dev/app/service.yaml").display()
            )
        );
        f.assert_outside_unchanged();
    }
}

#[test]
fn a_fifo_where_a_generated_file_goes_is_refused_without_hanging() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join("apps/dev/app")).unwrap();
    let fifo = f.out.join("apps/dev/app/service.yaml");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    f.record(&[("apps/dev/app/service.yaml", "contracts/APP-0001.yaml")]);
    let err = f
        .apply(&[planned("apps/dev/app/service.yaml", "x\n")])
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a FIFO, where render writes a generated file; render never writes through links or into \
             special files: move it away or render into another directory",
            fifo.display()
        )
    );
    f.assert_outside_unchanged();
}

#[test]
fn a_record_that_is_a_link_is_refused_by_name() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join(".goldenpath")).unwrap();
    symlink(f.outside.join("sentinel"), f.out.join(MANIFEST)).unwrap();
    let err = f.apply(&[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a symbolic link, where render writes a generated file; render never writes through links or \
             into special files: move it away or render into another directory",
            f.out.join(MANIFEST).display()
        )
    );
    f.assert_outside_unchanged();
}

#[test]
fn links_planted_at_the_old_predictable_temp_names_are_never_followed() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join("apps/dev/app")).unwrap();
    fs_err::create_dir_all(f.out.join(".goldenpath")).unwrap();
    let pid = std::process::id();
    let planted = [
        f.out.join(format!("apps/dev/app/.service.yaml.tmp-{pid}")),
        f.out.join(format!(".goldenpath/.rendered.json.tmp-{pid}")),
    ];
    for p in &planted {
        symlink(f.outside.join("sentinel"), p).unwrap();
    }
    let outcome = f
        .apply(&[planned("apps/dev/app/service.yaml", "kind: Service\n")])
        .unwrap();
    assert_eq!(outcome.written, [f.out.join("apps/dev/app/service.yaml")]);
    assert_eq!(
        fs_err::read_to_string(f.out.join("apps/dev/app/service.yaml")).unwrap(),
        "kind: Service\n"
    );
    for p in &planted {
        assert!(fs_err::symlink_metadata(p).unwrap().is_symlink());
    }
    f.assert_outside_unchanged();
}

#[test]
fn the_filesystem_root_and_dot_dot_are_refused_as_out() {
    let msg = |p: &str, why: &str| {
        format!(
            "refusing to render into `{p}`: it {why}; pass `--out` a dedicated directory for the GitOps tree (e.g. \
             `gitops`)"
        )
    };
    for (out, why) in [
        ("/", "is the filesystem root"),
        ("/.", "is the filesystem root"),
        ("//", "is the filesystem root"),
        ("/tmp/..", "ends in `..`"),
        ("gitops/..", "ends in `..`"),
        ("", "is empty"),
    ] {
        let err = tree::apply(
            Path::new(out),
            &[planned("apps/x.yaml", "x\n")],
            &BTreeSet::new(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), msg(out, why));
    }
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("root");
    symlink("/", &link).unwrap();
    let err = tree::apply(&link, &[planned("apps/x.yaml", "x\n")], &BTreeSet::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        msg(&link.display().to_string(), "is the filesystem root")
    );
    assert!(!Path::new("/apps/x.yaml").exists());
}

#[test]
fn a_forged_journal_is_refused_and_nothing_outside_changes() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join(".goldenpath")).unwrap();
    let journal = serde_json::json!({
        "version": 1, "committed": true, "writes": [], "deletes": ["../outside/sentinel"],
        "record_temp": null, "created_dirs": [],
    });
    fs_err::write(f.out.join(".goldenpath/journal.json"), journal.to_string()).unwrap();
    let err = f.apply(&[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is not a journal written by goldenpath (`../outside/sentinel` has a `.` or `..` component); move \
             it away, then check the tree against `.goldenpath/rendered.json`",
            f.out.join(".goldenpath/journal.json").display()
        )
    );
    f.assert_outside_unchanged();
}

#[test]
fn a_staged_journal_rolls_back_and_a_committed_one_rolls_forward() {
    for committed in [false, true] {
        let f = Fixture::new();
        f.apply(&[planned("apps/dev/a.yaml", "old\n")]).unwrap();
        let temp = ".gp-tmp-0123456789abcdef";
        fs_err::create_dir_all(f.out.join("apps/prod")).unwrap();
        fs_err::write(f.out.join("apps/dev").join(temp), "new\n").unwrap();
        fs_err::write(
            f.out.join(".goldenpath").join(".gp-tmp-00000000000000aa"),
            "{}",
        )
        .unwrap();
        let journal = serde_json::json!({
            "version": 1, "committed": committed,
            "writes": [{ "path": "apps/dev/a.yaml", "temp": temp }],
            "deletes": [], "record_temp": null, "created_dirs": ["apps/prod"],
        });
        fs_err::write(f.out.join(".goldenpath/journal.json"), journal.to_string()).unwrap();
        tree::recover(&f.out).unwrap();
        let expected = if committed { "new\n" } else { "old\n" };
        assert_eq!(
            fs_err::read_to_string(f.out.join("apps/dev/a.yaml")).unwrap(),
            expected
        );
        assert!(!f.out.join("apps/dev").join(temp).exists());
        assert!(!f.out.join(".goldenpath/journal.json").exists());
        assert!(!f.out.join(".goldenpath/.gp-tmp-00000000000000aa").exists());
        assert_eq!(f.out.join("apps/prod").exists(), committed);
        f.assert_outside_unchanged();
    }
}

#[test]
fn a_second_render_on_a_locked_tree_is_refused() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join(".goldenpath")).unwrap();
    let held = fs_err::File::open(f.out.join(".goldenpath")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let err = f.apply(&[planned("apps/x.yaml", "x\n")]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is locked by another goldenpath run on this tree; wait for it to finish, then run again",
            f.out.join(".goldenpath").display()
        )
    );
    drop(held);
    assert!(f.apply(&[planned("apps/x.yaml", "x\n")]).is_ok());
    f.assert_outside_unchanged();
}

#[test]
fn a_symlinked_goldenpath_directory_is_refused() {
    let f = Fixture::new();
    fs_err::os::unix::fs::symlink(&f.outside, f.out.join(".goldenpath")).unwrap();
    let err = f.apply(&[planned("apps/x.yaml", "x\n")]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is a symbolic link, where render needs a directory; render never writes through links: move it \
             away or render into another directory",
            f.out.join(".goldenpath").display()
        )
    );
    assert!(!f.out.join("apps").exists());
    f.assert_outside_unchanged();
}

#[test]
fn an_oversized_record_is_refused_by_name() {
    let f = Fixture::new();
    fs_err::create_dir_all(f.out.join(".goldenpath")).unwrap();
    let file = fs_err::File::create(f.out.join(MANIFEST)).unwrap();
    file.set_len(64 * 1024 * 1024 + 1).unwrap();
    let err = f.apply(&[]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "`{}` is larger than 67108864 bytes, so render did not write it: move it away",
            f.out.join(MANIFEST).display()
        )
    );
    f.assert_outside_unchanged();
}
