//! PHP detection over small app trees: Composer apps with and without a lock, plain apps, the PHP version and
//! extension checks, path repositories, and where each finding points.
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

fn findings(files: &[(&str, &str)]) -> Vec<Finding> {
    let d = app(files);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Php), "{:#?}", r.findings);
    r.findings
}

fn errors(files: &[(&str, &str)]) -> Vec<Finding> {
    findings(files)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

const LOCK_GREETING: &str = r#"{
    "packages": [
        {
            "name": "acme/greeting",
            "version": "1.0.0",
            "require": {"php": ">=8.1", "ext-mbstring": "*"}
        }
    ],
    "packages-dev": []
}
"#;

#[test]
fn composer_app_with_lock() {
    let d = app(&[
        (
            "composer.json",
            "{\n    \"require\": {\n        \"php\": \"^8.1\",\n        \"ext-mbstring\": \"*\",\n        \"acme/greeting\": \"^1.0\"\n    }\n}\n",
        ),
        ("composer.lock", LOCK_GREETING),
        ("public/index.php", "<?php echo 'hi';\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Php));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.dependencies, ["acme/greeting"]);
    let runtime = r.runtime.unwrap();
    assert_eq!(
        (runtime.value.as_str(), runtime.source.as_str()),
        ("^8.1", "composer.json (require.php)")
    );
    assert_eq!(r.package_manager.unwrap().source, "composer.lock");
    let start = r.start.unwrap();
    assert_eq!(
        start.value,
        "nginx on $PORT + php-fpm, document root public"
    );
    assert_eq!(start.source, "public/");
}

#[test]
fn plain_app_and_document_roots() {
    let d = app(&[("index.php", "<?php phpinfo();\n")]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Php));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.package_manager.is_none());
    assert_eq!(
        r.start.unwrap().value,
        "nginx on $PORT + php-fpm, document root ."
    );
    let d = app(&[("web/index.php", "<?php\n")]);
    assert_eq!(
        detect(d.path()).start.unwrap().value,
        "nginx on $PORT + php-fpm, document root web"
    );
    // A Procfile's web process wins.
    let d = app(&[
        ("index.php", "<?php\n"),
        ("Procfile", "web: php -S 0.0.0.0:$PORT\n"),
    ]);
    let start = detect(d.path()).start.unwrap();
    assert_eq!(
        (start.value.as_str(), start.source.as_str()),
        ("php -S 0.0.0.0:$PORT", "Procfile")
    );
    // Not PHP: a PHP file that is no entry point, deeper down.
    let d = app(&[
        ("lib/helper.php", "<?php\n"),
        ("requirements.txt", "flask\n"),
    ]);
    assert_eq!(detect(d.path()).language, Some(Language::Python));
}

#[test]
fn missing_index_is_a_warning() {
    let f = findings(&[
        ("composer.json", "{\"require\": {\"php\": \"^8.2\"}}\n"),
        ("public/style.css", "body {}\n"),
    ]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].file, "public/index.php");
    assert!(f[0].message.contains("`/` answers 404"), "{f:#?}");
    assert!(f[0].fix.contains("add public/index.php"), "{f:#?}");
}

#[test]
fn packages_without_lock_fail_at_composer_json() {
    let e = errors(&[
        (
            "composer.json",
            "{\n    \"name\": \"x/y\",\n    \"require\": {\n        \"php\": \"^8.2\",\n        \"monolog/monolog\": \"^3.5\"\n    }\n}\n",
        ),
        ("public/index.php", "<?php\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "composer.json");
    assert_eq!(e[0].line, Some(3));
    assert!(
        e[0].message
            .contains("requires `monolog/monolog` but there is no composer.lock"),
        "{e:#?}"
    );
    assert_eq!(
        e[0].fix,
        "run `composer update --lock` (or `composer install`) and commit composer.lock"
    );
    // Only platform requirements: no lock needed.
    assert!(
        errors(&[(
            "composer.json",
            "{\"require\": {\"php\": \">=8.0\", \"ext-intl\": \"*\", \"composer-runtime-api\": \"^2\"}}"
        )])
        .is_empty()
    );
    // A committed vendor/ stands in for the lock, with a warning.
    let f = findings(&[
        (
            "composer.json",
            "{\"require\": {\"monolog/monolog\": \"^3\"}}",
        ),
        ("vendor/composer/installed.json", "{\"packages\": []}"),
        ("vendor/autoload.php", "<?php\n"),
        ("index.php", "<?php\n"),
    ]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!((f[0].file.as_str(), f[0].line), ("composer.json", Some(1)));
}

#[test]
fn php_version_outside_the_stack_fails_with_the_line() {
    let e = errors(&[
        (
            "composer.json",
            "{\n  \"require\": {\n    \"php\": \"^8.3\"\n  }\n}\n",
        ),
        ("index.php", "<?php\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.json", Some(3)));
    assert!(
        e[0].message
            .contains("requires PHP `^8.3`, but this stack provides PHP 8.2 only"),
        "{e:#?}"
    );
    assert!(e[0].fix.contains("`require.php`"), "{e:#?}");
    for ok in [
        "^8.2",
        ">=7.4",
        "~8.2.0",
        "8.2.*",
        "^7.4 || ^8.0",
        ">=8.1 <8.4",
    ] {
        assert!(
            errors(&[(
                "composer.json",
                &format!("{{\"require\": {{\"php\": \"{ok}\"}}}}")
            )])
            .is_empty(),
            "{ok}"
        );
    }
    for bad in ["^7.4", "~8.1.0", ">=8.3", "8.0 - 8.1"] {
        assert_eq!(
            errors(&[(
                "composer.json",
                &format!("{{\"require\": {{\"php\": \"{bad}\"}}}}")
            )])
            .len(),
            1,
            "{bad}"
        );
    }
}

#[test]
fn extensions_the_stack_lacks_are_refused() {
    let e = errors(&[
        (
            "composer.json",
            "{\n  \"require\": {\n    \"php\": \"^8.2\",\n    \"ext-redis\": \"*\",\n    \"ext-pdo_pgsql\": \"*\",\n    \"ext-json\": \"*\"\n  }\n}\n",
        ),
        ("index.php", "<?php\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.json", Some(4)));
    assert!(
        e[0].message.contains(
            "requires the PHP extension `redis` (ext-redis), which this stack does not provide"
        ),
        "{e:#?}"
    );
    assert!(
        e[0].fix.contains("this stack has: bcmath, calendar"),
        "{e:#?}"
    );
    assert!(e[0].fix.contains("pdo_pgsql"), "{e:#?}");
    // A locked package's requirement too, pointed at composer.lock.
    let lock = LOCK_GREETING.replace("ext-mbstring", "ext-imagick");
    let e = errors(&[
        (
            "composer.json",
            "{\"require\": {\"acme/greeting\": \"^1.0\"}}",
        ),
        ("composer.lock", &lock),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.lock", Some(4)));
    assert!(
        e[0].message
            .contains("`acme/greeting` requires the PHP extension `imagick`"),
        "{e:#?}"
    );
}

#[test]
fn stale_lock_bad_json_and_missing_path_repository() {
    let e = errors(&[
        (
            "composer.json",
            "{\n  \"require\": {\n    \"acme/greeting\": \"^1.0\",\n    \"acme/other\": \"^2\"\n  }\n}\n",
        ),
        ("composer.lock", LOCK_GREETING),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.json", Some(4)));
    assert!(
        e[0].message
            .contains("`acme/other`, which composer.lock does not list"),
        "{e:#?}"
    );
    assert_eq!(
        e[0].fix,
        "run `composer update acme/other` and commit composer.lock"
    );

    let e = errors(&[(
        "composer.json",
        "{\n  \"require\": {\n    \"php\": \"^8.2\",\n  }\n}\n",
    )]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.json", Some(4)));
    assert!(e[0].message.starts_with("is not valid JSON"), "{e:#?}");

    let e = errors(&[
        (
            "composer.json",
            "{\"require\": {\"acme/greeting\": \"^1\"}}",
        ),
        ("composer.lock", "{\"packages\": [\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "composer.lock");
    assert!(e[0].fix.contains("composer update --lock"), "{e:#?}");

    let e = errors(&[
        (
            "composer.json",
            "{\n  \"repositories\": [\n    {\"type\": \"path\", \"url\": \"packages/greeting\"}\n  ]\n}\n",
        ),
        ("index.php", "<?php\n"),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("composer.json", Some(3)));
    assert!(
        e[0].message
            .contains("`packages/greeting` has no composer.json"),
        "{e:#?}"
    );
    assert!(
        e[0].fix
            .contains("commit the package at packages/greeting/"),
        "{e:#?}"
    );
}

#[test]
fn the_example_apps() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps");
    let r = detect(&root.join("php"));
    assert_eq!(r.language, Some(Language::Php));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.dependencies, ["goldenpath/greeting"]);
    let r = detect(&root.join("php-no-lock"));
    assert_eq!(r.language, Some(Language::Php));
    assert!(r.failed());
    assert_eq!(r.findings[0].file, "composer.json");
}
