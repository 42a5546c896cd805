//! Hostile contracts trees: links, FIFOs, huge files and values. Every input is refused by name or reported with a
//! short escaped excerpt; nothing outside the tree is read into the output; nothing blocks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use gp_contract::check::{MAX_CONTRACT_BYTES, MAX_DIAGNOSTICS_PER_FILE};
use gp_contract::output::{render_github, render_human, render_json, render_sarif};
use gp_contract::{Code, ConfigSource, Report, check_files, collect_files};

/// A value that must never reach any output.
const MARKER: &str = "GP_SECRET_MARKER_5f1c";

const VALID: &str = "apiVersion: goldenpath.io/v1\nkind: AppDeploymentRequest\nid: APP-0001\nenvironment: dev\nowner: payments-team\napplication: payments-api\nspec:\n  source:\n    git: https://github.com/example/payments-api.git\n  build:\n    type: buildpacks\n";

/// `<tmp>/app-deployments/dev`, and a secret file outside it.
fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dev = tmp.path().join("app-deployments/dev");
    fs_err::create_dir_all(&dev).unwrap();
    let secret = tmp.path().join("secret.txt");
    fs_err::write(&secret, format!("TOKEN={MARKER}\nid: {MARKER}\n")).unwrap();
    (tmp, dev, secret)
}

/// Every output format, concatenated.
fn all_outputs(report: &Report) -> String {
    [
        render_human(report, false),
        render_json(report),
        render_github(report),
        render_sarif(report),
    ]
    .concat()
}

/// Checks `paths` on another thread; fails instead of hanging.
fn check_within(paths: Vec<PathBuf>, configs: ConfigSource) -> Report {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let files = collect_files(&paths).unwrap();
        let _ = tx.send(check_files(&files, &configs));
    });
    rx.recv_timeout(Duration::from_mins(1))
        .expect("checking must not block")
}

fn messages(report: &Report) -> Vec<(Code, String)> {
    report
        .diagnostics()
        .map(|d| (d.code, d.message.clone()))
        .collect()
}

fn snapshot(secret: &Path) -> String {
    fs_err::read_to_string(secret).unwrap()
}

#[test]
fn symlinked_contract_is_refused_by_name_and_never_read() {
    let (_tmp, dev, secret) = tree();
    let before = snapshot(&secret);
    let link = dev.join("APP-0001.yaml");
    fs_err::os::unix::fs::symlink(&secret, &link).unwrap();
    let report = check_within(vec![dev.clone()], ConfigSource::Defaults);
    assert_eq!(
        messages(&report),
        [(
            Code::Io,
            format!(
                "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
                link.display()
            )
        )]
    );
    let out = all_outputs(&report);
    assert!(!out.contains(MARKER), "{out}");
    assert_eq!(snapshot(&secret), before);
}

#[test]
fn link_to_proc_environ_leaks_nothing() {
    let (_tmp, dev, _) = tree();
    let link = dev.join("APP-0001.yaml");
    fs_err::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
    let report = check_within(vec![link.clone()], ConfigSource::Defaults);
    assert_eq!(report.diagnostics().count(), 1);
    let out = all_outputs(&report);
    for (key, _) in std::env::vars() {
        assert!(!out.contains(&format!("{key}=")), "{key} leaked: {out}");
    }
}

#[test]
fn symlinked_directory_in_the_tree_is_refused() {
    let (tmp, dev, _) = tree();
    let outside = tmp.path().join("outside");
    fs_err::create_dir(&outside).unwrap();
    fs_err::write(outside.join("APP-0002.yaml"), format!("id: {MARKER}\n")).unwrap();
    let link = dev.join("more");
    fs_err::os::unix::fs::symlink(&outside, &link).unwrap();
    let report = check_within(vec![dev.clone()], ConfigSource::Defaults);
    assert_eq!(
        messages(&report),
        [(
            Code::Io,
            format!(
                "`{}` is a symbolic link; inputs are read only from regular files: replace the link with the file itself",
                link.display()
            )
        )]
    );
    assert!(!all_outputs(&report).contains(MARKER));
}

#[test]
fn fifo_named_like_a_contract_is_refused_without_blocking() {
    let (_tmp, dev, _) = tree();
    let fifo = dev.join("APP-0001.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let report = check_within(vec![dev.clone()], ConfigSource::Defaults);
    assert_eq!(
        messages(&report),
        [(
            Code::Io,
            format!(
                "`{}` is a FIFO (named pipe), not a regular file: replace it with a regular file (or remove it)",
                fifo.display()
            )
        )]
    );
}

#[test]
fn config_that_is_a_link_a_directory_or_a_fifo_is_refused() {
    for kind in ["link", "dir", "fifo"] {
        let (tmp, dev, secret) = tree();
        fs_err::write(dev.join("APP-0001.yaml"), VALID).unwrap();
        let config = tmp.path().join("goldenpath.toml");
        let what = match kind {
            "link" => {
                fs_err::os::unix::fs::symlink(&secret, &config).unwrap();
                "is a symbolic link; inputs are read only from regular files: replace the link with the file itself"
            }
            "dir" => {
                fs_err::create_dir(&config).unwrap();
                "is a directory, not a regular file: replace it with a regular file (or remove it)"
            }
            _ => {
                assert!(
                    std::process::Command::new("mkfifo")
                        .arg(&config)
                        .status()
                        .unwrap()
                        .success()
                );
                "is a FIFO (named pipe), not a regular file: replace it with a regular file (or remove it)"
            }
        };
        let report = check_within(vec![dev.clone()], ConfigSource::Discover);
        let shown: Vec<(Code, String)> = messages(&report);
        assert_eq!(
            shown[0],
            (Code::Io, format!("`{}` {what}", config.display())),
            "{kind}"
        );
        assert_eq!(
            shown[1].0,
            Code::Config,
            "{kind}: the contract is not checked"
        );
        assert_eq!(report.error_count(), 1, "{kind}");
        assert!(!all_outputs(&report).contains(MARKER), "{kind}");
    }
}

#[test]
fn oversized_contract_is_refused_with_size_and_limit() {
    let (_tmp, dev, _) = tree();
    let big = dev.join("APP-0001.yaml");
    let size = MAX_CONTRACT_BYTES + 1;
    fs_err::write(&big, "#".repeat(usize::try_from(size).unwrap())).unwrap();
    let report = check_within(vec![big.clone()], ConfigSource::Defaults);
    assert_eq!(
        messages(&report),
        [(
            Code::Io,
            format!(
                "`{}` is {size} bytes, over the limit of {MAX_CONTRACT_BYTES} bytes: inputs of this kind are small text files; check that it is the file you meant",
                big.display()
            )
        )]
    );
}

#[test]
fn binary_contract_is_refused_with_line_and_offset() {
    let (_tmp, dev, _) = tree();
    let f = dev.join("APP-0001.yaml");
    fs_err::write(&f, b"apiVersion: x\nkind: \xff\xfe\n").unwrap();
    let report = check_within(vec![f.clone()], ConfigSource::Defaults);
    assert_eq!(
        messages(&report),
        [(
            Code::Io,
            format!(
                "`{}` is not UTF-8 text (line 2, byte offset 20): save it as UTF-8 text",
                f.display()
            )
        )]
    );
}

#[test]
fn huge_values_are_echoed_as_short_escaped_excerpts_in_every_format() {
    let (_tmp, dev, _) = tree();
    let f = dev.join("APP-0001.yaml");
    // One 900 KB line, with a terminal escape in the value (a YAML escape, so it parses).
    let value = format!("\\e[2J{}", "A".repeat(900 * 1024));
    fs_err::write(
        &f,
        VALID.replace("id: APP-0001", &format!("id: \"{value}\"")),
    )
    .unwrap();
    let report = check_within(vec![f.clone()], ConfigSource::Defaults);
    let ids: Vec<&str> = report
        .diagnostics()
        .filter(|d| d.field.as_deref() == Some("id"))
        .map(|d| d.message.as_str())
        .collect();
    let shown = format!("\\u{{1b}}[2J{}", "A".repeat(76));
    assert_eq!(
        ids,
        [
            format!("`id`: id `{shown}… (921604 bytes in all)` is not of the form `APP-NNNN`")
                .as_str()
        ]
    );
    for (name, out) in [
        ("human", render_human(&report, false)),
        ("json", render_json(&report)),
        ("github", render_github(&report)),
        ("sarif", render_sarif(&report)),
    ] {
        assert!(out.len() < 20_000, "{name}: {} bytes", out.len());
        assert!(!out.contains('\u{1b}'), "{name} holds a raw escape");
    }
    let human = render_human(&report, false);
    let snippet = human.lines().find(|l| l.starts_with("3 | ")).unwrap();
    assert_eq!(snippet, format!("3 | id: \"\\e[2J{}…", "A".repeat(150)));
}

#[test]
fn raw_control_characters_in_a_line_are_shown_as_pictures() {
    let (_tmp, dev, _) = tree();
    let f = dev.join("APP-0001.yaml");
    fs_err::write(
        &f,
        "apiVersion: goldenpath.io/v1\nkind: \u{1b}]0;owned\u{7}\n",
    )
    .unwrap();
    let report = check_within(vec![f.clone()], ConfigSource::Defaults);
    let human = render_human(&report, false);
    assert!(
        !human.contains('\u{1b}') && !human.contains('\u{7}'),
        "{human}"
    );
    assert!(human.contains("kind: ␛]0;owned␇"), "{human}");
}

#[test]
fn many_problems_are_capped_and_counted_in_linear_time() {
    let (_tmp, dev, _) = tree();
    let f = dev.join("APP-0001.yaml");
    let mut keys = String::new();
    for i in 0..16_000 {
        let _ = writeln!(keys, "unknown{i}: {i}");
    }
    fs_err::write(&f, format!("{VALID}{keys}")).unwrap();
    let started = std::time::Instant::now();
    let report = check_within(vec![f.clone()], ConfigSource::Defaults);
    let outputs = all_outputs(&report);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "{took:?}");
    let diags: Vec<_> = report.diagnostics().collect();
    assert_eq!(diags.len(), MAX_DIAGNOSTICS_PER_FILE + 1);
    let last = diags.last().unwrap();
    assert_eq!(last.code, Code::TooManyProblems);
    assert_eq!(
        last.message,
        "and 15901 more problems in this file (15901 errors, 0 warnings): only the first 100 are shown"
    );
    assert!(outputs.len() < 1_000_000, "{}", outputs.len());
}
