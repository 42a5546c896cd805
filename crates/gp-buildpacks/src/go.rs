//! Go: a `go.mod` module. Detection checks what `go build` would stop at — a module required without its
//! checksum in `go.sum`, a `vendor/modules.txt` that disagrees with `go.mod`, a Go version the buildpack's
//! inventory cannot satisfy — and which `main` package is the `web` process.

pub mod gomod;

use std::path::Path;

use crate::{Finding, Language, Report, Sourced, read};
use gomod::{GoMod, ToolchainError};

/// What detection looks for.
pub const LOOKS_FOR: &str = "go.mod";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &["go.mod", "go.sum", "vendor/modules.txt"];

/// Fills `report` when `dir` is a Go app; false when it is not.
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    detect_with(
        dir,
        procfile,
        std::env::var("BP_GO_TARGETS").ok().as_deref(),
        report,
    )
}

/// [`detect`] with the value of `BP_GO_TARGETS` (the platform setting that names the main packages to build).
fn detect_with(
    dir: &Path,
    procfile: &[(String, String)],
    targets_env: Option<&str>,
    report: &mut Report,
) -> bool {
    let Some(text) = read(dir, "go.mod") else {
        return false;
    };
    report.language = Some(Language::Go);
    let m = GoMod::parse(&text);
    for (line, what) in &m.errors {
        report.findings.push(
            Finding::error(
                "go.mod",
                format!("{what}: `go build` refuses the file"),
                "fix the line (`go mod edit -fmt` rewrites go.mod in its canonical form)",
            )
            .at(*line),
        );
    }
    if m.module.is_none() {
        report.findings.push(Finding::error(
            "go.mod",
            "no `module` line: go.mod must name the module",
            "add `module example.com/yourapp` as go.mod's first line (or run `go mod init example.com/yourapp`)",
        ));
    }
    report.dependencies = m
        .requires
        .iter()
        .filter(|r| !r.indirect)
        .map(|r| r.path.clone())
        .collect();
    toolchain(&m, report);
    let vendored = read(dir, "vendor/modules.txt");
    if let Some(modules) = &vendored {
        vendor_consistency(&m, modules, report);
        report.package_manager = Some(Sourced::new(
            "go modules, vendored (-mod=vendor)",
            "vendor/modules.txt",
        ));
    } else {
        if dir.join("vendor").is_dir() && !m.requires.is_empty() {
            report.findings.push(
                Finding::error(
                    "vendor",
                    "there is a vendor/ directory without vendor/modules.txt: `go build` would use vendor/ and stop at `inconsistent vendoring`",
                    "run `go mod vendor` and commit vendor/ (modules.txt with it), or delete vendor/",
                ),
            );
        }
        checksums(dir, &m, report);
    }
    targets(dir, &m, procfile, targets_env, report);
    true
}

/// The toolchain the build will use (`report.runtime`: `go1.27.3`), or the finding that none fits.
fn toolchain(m: &GoMod, report: &mut Report) {
    match gomod::choose_toolchain(m) {
        Ok((version, _)) => {
            let source = match (&m.go, &m.toolchain) {
                (_, Some((t, line))) if t != "default" => {
                    format!(
                        "go.mod:{line}: `toolchain {t}`, a minimum; the newest of the inventory"
                    )
                }
                (Some((g, line)), _) => {
                    format!("go.mod:{line}: `go {g}`, a minimum; the newest of the inventory")
                }
                _ => "go.mod has no `go` line; the newest of the inventory".to_owned(),
            };
            report.runtime = Some(Sourced::new(format!("go{version}"), source));
        }
        Err(ToolchainError::Invalid {
            line,
            directive,
            text,
        }) => {
            let example = if directive == "go" {
                "go 1.27"
            } else {
                "toolchain go1.27.3"
            };
            report.findings.push(
                Finding::error(
                    "go.mod",
                    format!("`{directive} {text}` is not a Go version"),
                    format!("write a Go version, e.g. `{example}`"),
                )
                .at(line),
            );
        }
        Err(ToolchainError::Unavailable {
            line,
            directive,
            text,
        }) => {
            let fix = if directive == "go" {
                "lower the `go` line to a version the inventory has if the code allows it (e.g. `go mod edit -go=1.27`), or ask the platform team to add the toolchain to the Go buildpack's inventory"
            } else {
                "drop the `toolchain` line or lower it (`go mod edit -toolchain=none`), or ask the platform team to add that toolchain to the Go buildpack's inventory"
            };
            report.findings.push(
                Finding::error(
                    "go.mod",
                    format!(
                        "`{directive} {text}` asks for a newer Go than the buildpack's inventory has ({}): the build will not download other toolchains",
                        gomod::inventory_list()
                    ),
                    fix,
                )
                .at(line),
            );
        }
    }
}

/// Every module go.mod requires needs its checksum in go.sum: `go build` verifies each download against it and
/// stops at `missing go.sum entry` otherwise.
fn checksums(dir: &Path, m: &GoMod, report: &mut Report) {
    let remote: Vec<_> = m.remote_requires().collect();
    let Some(first) = remote.first() else {
        report.package_manager = Some(Sourced::new("go modules (no requirements)", "go.mod"));
        return;
    };
    let Some(sum) = read(dir, "go.sum") else {
        report.findings.push(
            Finding::error(
                "go.mod",
                format!(
                    "requires {} but there is no go.sum: the build verifies every module against go.sum and would stop at `missing go.sum entry`",
                    match remote.len() {
                        1 => format!("1 module ({})", first.path),
                        n => format!("{n} modules"),
                    }
                ),
                "run `go mod tidy` and commit go.sum",
            )
            .at(first.line),
        );
        return;
    };
    report.package_manager = Some(Sourced::new("go modules", "go.sum"));
    for r in remote {
        if !gomod::sum_has(&sum, &r.path, &r.version) {
            report.findings.push(
                Finding::error(
                    "go.mod",
                    format!(
                        "requires {} {} but go.sum has no checksum for it: the build would stop at `missing go.sum entry`",
                        r.path, r.version
                    ),
                    "run `go mod tidy` and commit go.sum",
                )
                .at(r.line),
            );
        }
    }
}

/// `-mod=vendor` builds only when vendor/modules.txt lists each requirement at go.mod's version.
fn vendor_consistency(m: &GoMod, modules: &str, report: &mut Report) {
    let listed = gomod::vendored_modules(modules);
    for r in &m.requires {
        match listed.iter().find(|(p, _)| *p == r.path) {
            Some((_, v)) if *v == r.version => {}
            found => report.findings.push(
                Finding::error(
                    "go.mod",
                    match found {
                        Some((_, v)) => format!(
                            "requires {} {} but vendor/modules.txt has {v}: `go build -mod=vendor` would stop at `inconsistent vendoring`",
                            r.path, r.version
                        ),
                        None => format!(
                            "requires {} {} but vendor/modules.txt does not list it: `go build -mod=vendor` would stop at `inconsistent vendoring`",
                            r.path, r.version
                        ),
                    },
                    "run `go mod vendor` and commit vendor/",
                )
                .at(r.line),
            ),
        }
    }
}

/// The main packages to build and which one is `web`: `BP_GO_TARGETS` names them (the first is `web`), else every
/// main package of the module is built, and the Procfile's `web` or the only one runs.
fn targets(
    dir: &Path,
    m: &GoMod,
    procfile: &[(String, String)],
    targets_env: Option<&str>,
    report: &mut Report,
) {
    let module = m.module.as_ref().map_or("app", |(p, _)| p.as_str());
    let found = gomod::main_packages(dir);
    let chosen = targets_env
        .map(gomod::parse_targets)
        .filter(|t| !t.is_empty());
    let list = chosen.clone().unwrap_or_else(|| found.clone());
    if let Some(named) = &chosen {
        for t in named {
            if !found.contains(t) {
                report.findings.push(Finding::error(
                    "BP_GO_TARGETS",
                    format!(
                        "names `{t}`, which is not a main package of the module{}",
                        if dir.join(t).is_dir() {
                            " (no .go file there says `package main`)"
                        } else {
                            " (no such directory)"
                        }
                    ),
                    format!(
                        "name main packages of the module{}, e.g. `--env BP_GO_TARGETS=./cmd/web`",
                        if found.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", found.join(", "))
                        }
                    ),
                ));
            }
        }
    }
    if list.is_empty() {
        report.findings.push(Finding::error(
            "go.mod",
            "the module has no `package main`: there is nothing to run",
            "add a main package (a .go file with `package main` and `func main()`), e.g. main.go or cmd/web/main.go",
        ));
        return;
    }
    let names: Vec<String> = list.iter().map(|t| gomod::binary_name(t, module)).collect();
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|o| o == n) {
            report.findings.push(Finding::error(
                "go.mod",
                format!(
                    "main packages {} and {} both build an executable named `{n}`",
                    list[j], list[i]
                ),
                "rename one of the directories, or choose one with `--env BP_GO_TARGETS=...`",
            ));
        }
    }
    report.build = Some(Sourced::new(
        format!("go build {}", list.join(" ")),
        if chosen.is_some() {
            "BP_GO_TARGETS"
        } else {
            "the module's main packages"
        },
    ));
    report.start = if let Some((_, cmd)) = procfile.iter().find(|(k, _)| k == "web") {
        Some(Sourced::new(cmd.clone(), "Procfile"))
    } else if chosen.is_some() || list.len() == 1 {
        Some(Sourced::new(
            names[0].clone(),
            if chosen.is_some() {
                format!("BP_GO_TARGETS: {}", list[0])
            } else {
                format!("the only main package, {}", list[0])
            },
        ))
    } else {
        report.findings.push(Finding::error(
            "Procfile",
            format!(
                "the module has {} main packages ({}) and nothing says which one is the `web` process",
                list.len(),
                list.join(", ")
            ),
            format!(
                "add a Procfile with `web: {}` (each main package is built and on PATH by its name), or build with `--env BP_GO_TARGETS={}` (the first target is `web`)",
                names[0], list[0]
            ),
        ));
        None
    };
}

#[cfg(test)]
mod tests {
    use super::detect_with;
    use crate::Report;

    #[test]
    fn bp_go_targets_chooses_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("go.mod", "module example.com/multi\n\ngo 1.26\n"),
            ("cmd/api/main.go", "package main\n\nfunc main() {}\n"),
            ("cmd/worker/main.go", "package main\n\nfunc main() {}\n"),
        ] {
            let path = dir.path().join(name);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        }
        let mut r = Report::default();
        assert!(detect_with(dir.path(), &[], Some("./cmd/worker"), &mut r));
        assert!(!r.failed(), "{:?}", r.findings);
        assert_eq!(r.start.as_ref().unwrap().value, "worker");
        assert_eq!(r.build.as_ref().unwrap().value, "go build ./cmd/worker");

        let mut r = Report::default();
        detect_with(dir.path(), &[], Some("cmd/nope"), &mut r);
        let f = &r.findings[0];
        assert_eq!(f.file, "BP_GO_TARGETS");
        assert!(f.message.contains("`./cmd/nope`"), "{f}");
        assert!(f.fix.contains("./cmd/api, ./cmd/worker"), "{f}");
    }
}
