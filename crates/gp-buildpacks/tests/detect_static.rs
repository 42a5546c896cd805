//! Detection of static sites: where the site is, single-page apps, and what fails (with file, line and fix).
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use gp_buildpacks::{Finding, Language, Severity, detect};

fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

#[test]
fn site_roots_in_order_of_precedence() {
    let d = app(&[("index.html", "<h1>root</h1>")]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Static));
    assert_eq!(r.start.as_ref().unwrap().value, "static server: ./");
    assert_eq!(r.start.as_ref().unwrap().source, "index.html");
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    // public/ wins over the root, dist/ (build output) over both.
    let d = app(&[("index.html", "x"), ("public/index.html", "y")]);
    assert_eq!(detect(d.path()).start.unwrap().source, "public/index.html");
    let d = app(&[
        ("index.html", "x"),
        ("public/index.html", "y"),
        ("dist/index.html", "z"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.start.as_ref().unwrap().source, "dist/index.html");
    assert_eq!(r.start.unwrap().value, "static server: dist/");
    // Not a site: an index.html elsewhere.
    let d = app(&[("docs/index.html", "x")]);
    assert_eq!(detect(d.path()).language, None);
}

#[test]
fn a_node_app_is_not_a_static_site() {
    let d = app(&[
        ("package.json", "{\"scripts\": {\"start\": \"node s.js\"}}"),
        ("package-lock.json", "{}"),
        ("index.html", "x"),
    ]);
    assert_eq!(detect(d.path()).language, Some(Language::Node));
}

#[test]
fn single_page_apps_are_detected() {
    let d = app(&[
        (
            "dist/index.html",
            "<html>\n<body>\n<div id=\"root\"></div>\n<script type=\"module\" src=\"/assets/index-BkG1x2Lp.js\"></script>\n</body>\n</html>\n",
        ),
        ("dist/assets/index-BkG1x2Lp.js", "x"),
    ]);
    let r = detect(d.path());
    assert!(r.start.unwrap().value.contains("single-page app"));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn missing_assets_are_errors_at_their_line() {
    let d = app(&[
        (
            "public/index.html",
            "<html><head>\n<link rel=\"stylesheet\" href=\"/css/site.css?v=2\">\n<link rel=\"canonical\" href=\"/elsewhere\">\n<script src='https://cdn.example/x.js'></script>\n</head><body><script src=\"js/app.js\"></script>\n<script src=\"ok.js\"></script><a href=\"/about\">about</a></body></html>\n",
        ),
        ("public/ok.js", ""),
    ]);
    let r = detect(d.path());
    let e = errors(&r.findings);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].file, "public/index.html");
    assert_eq!(e[0].line, Some(2));
    assert!(
        e[0].message.contains("`/css/site.css?v=2`")
            && e[0].message.contains("public/css/site.css does not exist"),
        "{}",
        e[0].message
    );
    assert_eq!(
        e[0].fix,
        "add public/css/site.css, or correct the path in public/index.html"
    );
    assert_eq!(e[1].line, Some(5));
    assert!(
        e[1].message.contains("public/js/app.js"),
        "{}",
        e[1].message
    );
}

#[test]
fn the_example_apps() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps");
    let r = detect(&root.join("static"));
    assert_eq!(r.language, Some(Language::Static));
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let r = detect(&root.join("static-missing-asset"));
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].file.as_str(), e[0].line), ("index.html", Some(9)));
    let r = detect(&root.join("dotnet-no-project"));
    assert_eq!(r.language, Some(Language::Dotnet));
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].file, "Program.cs");
    assert!(e[0].fix.contains("dotnet new web"), "{}", e[0].fix);
}

#[test]
fn nginx_conf_findings() {
    let d = app(&[(
        "nginx.conf",
        "user www-data;\npid /run/nginx.pid;\nhttp {\n  server {\n    listen 80;\n    root public;\n  }\n}\n",
    )]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Static));
    assert_eq!(
        r.runtime.as_ref().unwrap().value,
        "nginx (Debian nginx-light)"
    );
    let e = errors(&r.findings);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!((e[0].line, e[1].line), (Some(2), Some(5)));
    assert_eq!(e[0].fix, "remove the `pid` line");
    assert!(e[1].fix.contains("listen $PORT;"));
    let w: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert_eq!((w.len(), w[0].line), (1, Some(1)));
    // No listen at all.
    let d = app(&[("nginx.conf", "server {\n  root public;\n}\n")]);
    let e = detect(d.path()).findings;
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("no `listen $PORT;`"));
    // Good.
    let d = app(&[
        (
            "nginx.conf",
            "server {\n  listen ${PORT};\n  root public;\n}\n",
        ),
        ("public/index.html", "x"),
    ]);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.start.unwrap().value.starts_with("nginx"));
}
