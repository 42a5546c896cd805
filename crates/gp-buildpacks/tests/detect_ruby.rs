//! Ruby detection over small app trees: the Gemfile and its lock, version requests, vendor/cache, start commands,
//! and every finding with its file, line and fix.
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

fn errors(files: &[(&str, &str)]) -> Vec<Finding> {
    let d = app(files);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Ruby));
    r.findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

const GEMFILE: &str = "source \"https://rubygems.org\"\n\nruby \"~> 3.1\"\n\ngem \"rack\", \"~> 2.2\"\ngem 'puma' # the server\n# gem \"commented\"\ngroup :test do\n  gem \"minitest\"\nend\n";

const LOCK: &str = "GEM
  remote: https://rubygems.org/
  specs:
    minitest (5.15.0)
    nio4r (2.5.8)
    nio4r (2.5.8-x86_64-linux)
    puma (5.6.5-x86_64-linux)
      nio4r (~> 2.0)
    rack (2.2.22)

PLATFORMS
  ruby
  x86_64-linux

DEPENDENCIES
  minitest
  puma
  rack (~> 2.2)

RUBY VERSION
   ruby 3.1.2p20

BUNDLED WITH
   2.3.15
";

#[test]
fn gemfile_with_lock_and_config_ru_starts_puma() {
    let d = app(&[
        ("Gemfile", GEMFILE),
        ("Gemfile.lock", LOCK),
        ("config.ru", "run ->(_) { [200, {}, []] }\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Ruby));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.dependencies, ["rack", "puma", "minitest"]);
    let pm = r.package_manager.unwrap();
    assert_eq!(
        (pm.value.as_str(), pm.source.as_str()),
        ("bundler", "Gemfile.lock")
    );
    let rt = r.runtime.unwrap();
    assert_eq!(
        (rt.value.as_str(), rt.source.as_str()),
        ("~> 3.1", "Gemfile:3")
    );
    assert_eq!(
        r.start.unwrap().value,
        "bundle exec puma -b tcp://0.0.0.0:$PORT"
    );
}

#[test]
fn no_lock_is_refused_with_bundle_lock_as_the_fix() {
    let e = errors(&[("Gemfile", GEMFILE)]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "Gemfile");
    assert_eq!(e[0].line, None);
    assert!(
        e[0].message
            .contains("no Gemfile.lock next to the Gemfile with 3 gems"),
        "{}",
        e[0]
    );
    assert!(e[0].fix.contains("`bundle lock`"), "{}", e[0]);
    assert!(e[0].fix.contains("commit the Gemfile.lock"), "{}", e[0]);
}

#[test]
fn out_of_date_lock_names_the_gemfile_line() {
    let gemfile = format!("{GEMFILE}gem \"sinatra\"\n");
    let e = errors(&[("Gemfile", &gemfile), ("Gemfile.lock", LOCK)]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("Gemfile", Some(11)));
    assert!(
        e[0].message
            .contains("gem `sinatra` is not in Gemfile.lock's DEPENDENCIES"),
        "{}",
        e[0]
    );
    assert!(e[0].fix.contains("bundle lock"), "{}", e[0]);
}

#[test]
fn merge_conflict_in_the_lock_names_its_line() {
    let lock = LOCK.replace(
        "    rack (2.2.22)\n",
        "<<<<<<< HEAD\n    rack (2.2.22)\n=======\n    rack (2.2.21)\n>>>>>>> other\n",
    );
    let e = errors(&[("Gemfile", GEMFILE), ("Gemfile.lock", &lock)]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("Gemfile.lock", Some(9)));
    assert!(e[0].message.contains("merge conflict"), "{}", e[0]);
    assert!(e[0].fix.contains("bundle lock"), "{}", e[0]);
}

#[test]
fn a_lock_for_other_platforms_only_is_refused() {
    let lock = LOCK.replace("  ruby\n  x86_64-linux\n", "  arm64-darwin-23\n");
    let e = errors(&[("Gemfile", GEMFILE), ("Gemfile.lock", &lock)]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("Gemfile.lock", None));
    assert!(
        e[0].message.contains("PLATFORMS lists arm64-darwin-23"),
        "{}",
        e[0]
    );
    assert_eq!(
        e[0].fix,
        "run `bundle lock --add-platform x86_64-linux` and commit Gemfile.lock"
    );
}

#[test]
fn vendor_cache_must_hold_every_locked_gem() {
    let complete = [
        ("Gemfile", GEMFILE),
        ("Gemfile.lock", LOCK),
        ("config.ru", "run ->(_) { [200, {}, []] }\n"),
        ("vendor/cache/minitest-5.15.0.gem", ""),
        ("vendor/cache/nio4r-2.5.8.gem", ""),
        ("vendor/cache/puma-5.6.5-x86_64-linux.gem", ""),
        ("vendor/cache/rack-2.2.22.gem", ""),
    ];
    let d = app(&complete);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(
        r.package_manager.unwrap().source,
        "Gemfile.lock, vendor/cache"
    );
    // The build leaves out the test group: minitest need not be cached. Nor a gem only a test gem needs.
    let gemfile = GEMFILE.replace(
        "gem 'puma' # the server\n",
        "gem 'puma' # the server\ngem \"rack-test\", groups: [:development, :test]\nif ENV[\"CI\"]\n  gem \"ci_reporter\", group: :test\nend\n",
    );
    let lock = LOCK
        .replace("    rack (2.2.22)\n", "    ci_reporter (1.0)\n    rack (2.2.22)\n    rack-test (2.1.0)\n      rack (>= 1.3)\n      test_only (~> 1.0)\n    test_only (1.0.0)\n")
        .replace("  rack (~> 2.2)\n", "  ci_reporter\n  rack (~> 2.2)\n  rack-test\n");
    let mut files = complete.to_vec();
    files.retain(|(n, _)| !n.contains("minitest"));
    files.retain(|(n, _)| *n != "Gemfile" && *n != "Gemfile.lock");
    files.push(("Gemfile", &gemfile));
    files.push(("Gemfile.lock", &lock));
    let d = app(&files);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The platform gem alone does for nio4r, too; rack missing is an error on its lock line.
    let mut files = complete.to_vec();
    files.retain(|(n, _)| !n.contains("rack-") && !n.contains("nio4r-2.5.8.gem"));
    files.push(("vendor/cache/nio4r-2.5.8-x86_64-linux.gem", ""));
    let e = errors(&files);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("Gemfile.lock", Some(9)));
    assert!(
        e[0].message.contains("vendor/cache has no rack-2.2.22.gem"),
        "{}",
        e[0]
    );
    assert!(e[0].fix.contains("bundle cache"), "{}", e[0]);
}

#[test]
fn version_requests_from_ruby_version_and_gemfile_file() {
    let d = app(&[
        ("Gemfile", "source \"https://rubygems.org\"\ngem \"rack\"\n"),
        ("Gemfile.lock", LOCK),
        (".ruby-version", "ruby-3.1.2\n"),
    ]);
    let rt = detect(d.path()).runtime.unwrap();
    assert_eq!(
        (rt.value.as_str(), rt.source.as_str()),
        ("3.1.2", ".ruby-version:1")
    );
    let d = app(&[
        ("Gemfile", "ruby file: \".tool-ruby\"\ngem \"rack\"\n"),
        ("Gemfile.lock", LOCK),
        (".tool-ruby", "3.1\n"),
    ]);
    let rt = detect(d.path()).runtime.unwrap();
    assert_eq!(
        (rt.value.as_str(), rt.source.as_str()),
        ("3.1", ".tool-ruby:1")
    );
    let e = errors(&[
        ("Gemfile", "gem \"rack\"\nruby file: \".tool-ruby\"\n"),
        ("Gemfile.lock", LOCK),
    ]);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("Gemfile", Some(2)));
    assert!(
        e[0].message.contains("names a file the app does not have"),
        "{}",
        e[0]
    );
    assert!(e[0].fix.contains("commit .tool-ruby"), "{}", e[0]);
}

#[test]
fn start_commands_procfile_rails_rackup_or_none() {
    let rails_lock = LOCK.replace(
        "    rack (2.2.22)\n",
        "    rack (2.2.22)\n    rails (7.0.8)\n    railties (7.0.8)\n",
    );
    let d = app(&[
        ("Gemfile", "gem \"rails\"\n"),
        (
            "Gemfile.lock",
            &rails_lock.replace("  rack (~> 2.2)\n", "  rack (~> 2.2)\n  rails\n"),
        ),
        ("bin/rails", "#!/usr/bin/env ruby\n"),
        ("config.ru", "run Rails.application\n"),
    ]);
    let r = detect(d.path());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(
        r.start.unwrap().value,
        "bin/rails server -b 0.0.0.0 -p $PORT"
    );
    let d = app(&[
        ("Gemfile", "gem \"rack\"\n"),
        (
            "Gemfile.lock",
            &LOCK.replace("    puma (5.6.5-x86_64-linux)\n      nio4r (~> 2.0)\n", ""),
        ),
        ("config.ru", "run ->(_) { [200, {}, []] }\n"),
        ("Procfile", "worker: bundle exec ruby worker.rb\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(
        r.start.unwrap().value,
        "bundle exec rackup -o 0.0.0.0 -p $PORT"
    );
    let d = app(&[
        ("Gemfile", "gem \"rack\"\n"),
        ("Gemfile.lock", LOCK),
        ("Procfile", "web: bundle exec ruby server.rb -p $PORT\n"),
    ]);
    let s = detect(d.path()).start.unwrap();
    assert_eq!(
        (s.value.as_str(), s.source.as_str()),
        ("bundle exec ruby server.rb -p $PORT", "Procfile")
    );
    // Rails in the lock without bin/rails: a warning, and no start command (no config.ru either).
    let d = app(&[("Gemfile", "gem \"rack\"\n"), ("Gemfile.lock", &rails_lock)]);
    let r = detect(d.path());
    assert!(!r.failed(), "{:#?}", r.findings);
    assert!(r.start.is_none());
    let warnings: Vec<String> = r.findings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Gemfile.lock: a Rails app without bin/rails")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Procfile: no start command") && w.contains("fix: add a Procfile")),
        "{warnings:#?}"
    );
}

#[test]
fn not_ruby_without_a_gemfile() {
    let d = app(&[("Gemfile.lock", LOCK), ("config.ru", "run nil\n")]);
    assert_ne!(detect(d.path()).language, Some(Language::Ruby));
}
