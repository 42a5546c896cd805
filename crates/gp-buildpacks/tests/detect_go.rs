//! Go detection over small module trees: every finding names its file, its line when known, and the fix.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use gp_buildpacks::{Finding, Language, Report, Severity, detect};

const MAIN: &str = "package main\n\nfunc main() {}\n";

fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

fn errors(r: &Report) -> Vec<&Finding> {
    r.findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

/// The one error of `r`, checked for its file, line and fix.
fn only_error(r: &Report, file: &str, line: Option<usize>, fix: &str) -> Finding {
    let errs = errors(r);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let f = errs[0];
    assert_eq!(f.file, file, "{f}");
    assert_eq!(f.line, line, "{f}");
    assert!(f.fix.contains(fix), "{f}");
    f.clone()
}

#[test]
fn modules_app_with_go_sum() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.26\n\nrequire (\n\tgithub.com/google/uuid v1.6.0\n\tgolang.org/x/text v0.14.0 // indirect\n)\n",
        ),
        (
            "go.sum",
            "github.com/google/uuid v1.6.0 h1:a=\ngithub.com/google/uuid v1.6.0/go.mod h1:b=\ngolang.org/x/text v0.14.0/go.mod h1:c=\n",
        ),
        ("main.go", MAIN),
        ("main_test.go", "package main_test\n"),
        ("internal/lib/lib.go", "package lib\n"),
        ("tools/gen.go", "//go:build ignore\n\npackage main\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Go));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.dependencies, ["github.com/google/uuid"]);
    assert_eq!(r.package_manager.as_ref().unwrap().source, "go.sum");
    let rt = r.runtime.as_ref().unwrap();
    assert_eq!(rt.value, "go1.27.3");
    assert!(
        rt.source.starts_with("go.mod:3: `go 1.26`"),
        "{}",
        rt.source
    );
    assert_eq!(r.build.as_ref().unwrap().value, "go build .");
    assert_eq!(r.start.as_ref().unwrap().value, "web");
}

#[test]
fn requirements_without_go_sum_fail_at_the_first_require() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.26\n\nrequire github.com/google/uuid v1.6.0\n",
        ),
        ("main.go", MAIN),
    ]);
    let r = detect(d.path());
    let f = only_error(&r, "go.mod", Some(5), "go mod tidy");
    assert!(f.fix.contains("commit go.sum"), "{f}");
    assert!(f.message.contains("github.com/google/uuid"), "{f}");
    assert!(f.message.contains("no go.sum"), "{f}");
    assert!(
        f.to_string()
            .starts_with("error: go.mod:5: requires 1 module")
    );
}

#[test]
fn a_require_missing_from_go_sum_is_named_at_its_line() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.26\n\nrequire (\n\tgithub.com/google/uuid v1.6.0\n\tgithub.com/other/mod v1.2.0\n)\n",
        ),
        ("go.sum", "github.com/google/uuid v1.6.0 h1:a=\n"),
        ("main.go", MAIN),
    ]);
    let r = detect(d.path());
    let f = only_error(&r, "go.mod", Some(7), "go mod tidy");
    assert!(f.message.contains("github.com/other/mod v1.2.0"), "{f}");
}

#[test]
fn no_requirements_and_local_replacements_need_no_go_sum() {
    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.27\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ./lib\n",
        ),
        ("main.go", MAIN),
        ("lib/go.mod", "module example.com/lib\n"),
        ("lib/main.go", MAIN),
    ]);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // lib/ is a nested module: not one of this module's main packages.
    assert_eq!(r.build.as_ref().unwrap().value, "go build .");
}

#[test]
fn vendored_modules_build_with_mod_vendor_and_must_agree_with_go_mod() {
    let files = [
        (
            "go.mod",
            "module example.com/v\n\ngo 1.26\n\nrequire example.com/greeting v0.1.0\n",
        ),
        (
            "vendor/modules.txt",
            "# example.com/greeting v0.1.0\n## explicit; go 1.26\nexample.com/greeting\n",
        ),
        ("vendor/example.com/greeting/g.go", "package greeting\n"),
        ("main.go", MAIN),
    ];
    let d = app(&files);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let pm = r.package_manager.as_ref().unwrap();
    assert_eq!(pm.source, "vendor/modules.txt");
    assert!(pm.value.contains("-mod=vendor"));

    let d = app(&[
        files[0],
        (
            "vendor/modules.txt",
            "# example.com/greeting v0.0.9\n## explicit\nexample.com/greeting\n",
        ),
        files[3],
    ]);
    let f = only_error(&detect(d.path()), "go.mod", Some(5), "go mod vendor");
    assert!(f.message.contains("vendor/modules.txt has v0.0.9"), "{f}");

    // vendor/ without modules.txt: Go would still read vendor/.
    let d = app(&[
        files[0],
        files[2],
        files[3],
        (
            "go.sum",
            "example.com/greeting v0.1.0 h1:a=\nexample.com/greeting v0.1.0/go.mod h1:b=\n",
        ),
    ]);
    let f = only_error(&detect(d.path()), "vendor", None, "go mod vendor");
    assert!(f.message.contains("without vendor/modules.txt"), "{f}");
}

#[test]
fn toolchain_requests_the_inventory_lacks_fail_with_the_line() {
    let d = app(&[
        ("go.mod", "module example.com/web\n\ngo 1.30\n"),
        ("main.go", MAIN),
    ]);
    let r = detect(d.path());
    let f = only_error(&r, "go.mod", Some(3), "go mod edit -go=");
    assert!(f.message.contains("`go 1.30`"), "{f}");
    assert!(f.message.contains("go1.27.3"), "{f}");

    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.26\ntoolchain go1.28.1\n",
        ),
        ("main.go", MAIN),
    ]);
    let f = only_error(&detect(d.path()), "go.mod", Some(4), "-toolchain=none");
    assert!(f.message.contains("`toolchain go1.28.1`"), "{f}");

    // An older `toolchain` is a minimum, as Go reads it: go1.27.3 satisfies it.
    let d = app(&[
        (
            "go.mod",
            "module example.com/web\n\ngo 1.26\ntoolchain go1.25.1\n",
        ),
        ("main.go", MAIN),
    ]);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.runtime.as_ref().unwrap().value, "go1.27.3");
    assert!(
        r.runtime
            .as_ref()
            .unwrap()
            .source
            .contains("go.mod:4: `toolchain go1.25.1`")
    );

    let d = app(&[
        ("go.mod", "module example.com/web\n\ngo 1.x\n"),
        ("main.go", MAIN),
    ]);
    only_error(&detect(d.path()), "go.mod", Some(3), "go 1.27");
}

#[test]
fn syntax_errors_and_missing_module_line() {
    let d = app(&[
        ("go.mod", "go 1.26\nrequire github.com/a/b\n"),
        ("main.go", MAIN),
    ]);
    let r = detect(d.path());
    let errs = errors(&r);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .any(|f| f.line == Some(2) && f.fix.contains("go mod edit -fmt"))
    );
    assert!(
        errs.iter()
            .any(|f| f.line.is_none() && f.fix.contains("go mod init"))
    );
}

#[test]
fn several_main_packages_need_a_choice() {
    let files = [
        ("go.mod", "module example.com/multi\n\ngo 1.26\n"),
        ("cmd/api/main.go", MAIN),
        ("cmd/worker/main.go", MAIN),
    ];
    let d = app(&files);
    let r = detect(d.path());
    let f = only_error(&r, "Procfile", None, "BP_GO_TARGETS=./cmd/api");
    assert!(f.fix.contains("web: api"), "{f}");
    assert!(f.message.contains("./cmd/api, ./cmd/worker"), "{f}");
    assert_eq!(
        r.build.as_ref().unwrap().value,
        "go build ./cmd/api ./cmd/worker"
    );

    // The Procfile chooses; every main package is still built.
    let d = app(&[
        files[0],
        files[1],
        files[2],
        ("Procfile", "web: api --listen :$PORT\nworker: worker\n"),
    ]);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let start = r.start.as_ref().unwrap();
    assert_eq!(
        (start.value.as_str(), start.source.as_str()),
        ("api --listen :$PORT", "Procfile")
    );
}

#[test]
fn no_main_package_and_clashing_names() {
    let d = app(&[
        ("go.mod", "module example.com/lib\n\ngo 1.26\n"),
        ("lib.go", "package lib\n"),
    ]);
    let f = only_error(&detect(d.path()), "go.mod", None, "package main");
    assert!(f.message.contains("nothing to run"), "{f}");

    let d = app(&[
        ("go.mod", "module example.com/two\n\ngo 1.26\n"),
        ("a/web/main.go", MAIN),
        ("b/web/main.go", MAIN),
        ("Procfile", "web: web\n"),
    ]);
    let f = only_error(&detect(d.path()), "go.mod", None, "BP_GO_TARGETS");
    assert!(f.message.contains("./a/web and ./b/web"), "{f}");
}

#[test]
fn go_mod_wins_over_package_json() {
    let d = app(&[
        ("go.mod", "module example.com/web\n\ngo 1.26\n"),
        ("main.go", MAIN),
        ("package.json", "{}"),
    ]);
    assert_eq!(detect(d.path()).language, Some(Language::Go));
}
