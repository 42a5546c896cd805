//! Java: Maven (`pom.xml`, with or without `mvnw`), Gradle (`build.gradle[.kts]` with the wrapper's
//! `gradle/wrapper/gradle-wrapper.properties`) and prebuilt executable jars; the Java version the app asks for
//! (refused above what the stack's JDK compiles and runs); Spring Boot; and Java sources that nothing builds.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::{Finding, Language, Report, Sourced, files_with_ext, read};

mod wrapper;
use wrapper::wrapper_distribution;

/// What detection looks for.
pub const LOOKS_FOR: &str = "pom.xml, build.gradle, build.gradle.kts or an executable *.jar";

/// The app files detection reads by name.
pub const INPUTS: &[&str] = &[
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "settings.gradle",
    "settings.gradle.kts",
    "gradle/wrapper/gradle-wrapper.properties",
    "system.properties",
    ".java-version",
];

/// The newest Java the stack has (Debian bookworm's `openjdk-17-jdk-headless` in the build image).
const STACK_JAVA: u32 = 17;

/// Where the Gradle wrapper's properties live.
const WRAPPER_PROPERTIES: &str = "gradle/wrapper/gradle-wrapper.properties";

/// `<tag>value</tag>` on one line of `text` (first occurrence), with its 1-based line.
fn xml_value(text: &str, tag: &str) -> Option<(String, usize)> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    text.lines().enumerate().find_map(|(i, l)| {
        let start = l.find(&open)? + open.len();
        let end = l[start..].find(&close)? + start;
        Some((l[start..end].trim().to_owned(), i + 1))
    })
}

/// `text` without XML comments (each replaced by as many newlines as it spanned, so line numbers hold).
fn strip_xml_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = after.find("-->").map_or(after.len(), |e| e + 3);
        out.extend(after[..end].chars().filter(|c| *c == '\n'));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The artifactIds of a pom's `<dependency>` elements, in order.
fn pom_dependencies(pom: &str) -> Vec<String> {
    pom.split("<dependency>")
        .skip(1)
        .filter_map(|d| {
            let d = d.split("</dependency>").next()?;
            let start = d.find("<artifactId>")? + "<artifactId>".len();
            let end = d[start..].find("</artifactId>")? + start;
            Some(d[start..end].trim().to_owned())
        })
        .collect()
}

/// The major version of a Java version string: `17`, `17.0.2`, `1.8`, `temurin-17.0.1`, `JavaVersion.VERSION_17`.
fn java_major(raw: &str) -> Option<u32> {
    let digits = raw
        .trim()
        .trim_matches(['"', '\''])
        .trim_start_matches(|c: char| !c.is_ascii_digit());
    let digits = digits.replace('_', ".");
    let mut parts = digits.split(['.', '+', '-']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        return parts.next()?.parse().ok();
    }
    Some(first)
}

/// A Java version request: the value, the file, the line.
struct Request {
    raw: String,
    file: String,
    line: Option<usize>,
    what: String,
}

fn requests(dir: &Path, pom: Option<&str>, gradle: Option<(&str, &str)>) -> Vec<Request> {
    let mut out = Vec::new();
    if let Some(text) = read(dir, "system.properties") {
        for (i, l) in text.lines().enumerate() {
            if let Some(v) = l
                .trim()
                .strip_prefix("java.runtime.version")
                .and_then(|r| r.trim_start().strip_prefix(['=', ':']))
            {
                out.push(Request {
                    raw: v.trim().to_owned(),
                    file: "system.properties".into(),
                    line: Some(i + 1),
                    what: "java.runtime.version".into(),
                });
            }
        }
    }
    if let Some(text) = read(dir, ".java-version")
        && let Some(v) = text.lines().next().map(str::trim).filter(|v| !v.is_empty())
    {
        out.push(Request {
            raw: v.to_owned(),
            file: ".java-version".into(),
            line: Some(1),
            what: "the version".into(),
        });
    }
    if let Some(pom) = pom {
        for tag in [
            "maven.compiler.release",
            "maven.compiler.source",
            "maven.compiler.target",
            "java.version",
        ] {
            if let Some((v, line)) = xml_value(pom, tag) {
                out.push(Request {
                    raw: v,
                    file: "pom.xml".into(),
                    line: Some(line),
                    what: format!("<{tag}>"),
                });
            }
        }
    }
    if let Some((file, text)) = gradle {
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            let found = ["JavaLanguageVersion.of(", "JavaVersion.VERSION_"]
                .iter()
                .find_map(|m| l.find(m).map(|at| &l[at + m.len()..]))
                .or_else(|| {
                    ["sourceCompatibility", "targetCompatibility"]
                        .iter()
                        .find_map(|k| l.strip_prefix(k))
                        .and_then(|r| r.trim_start().strip_prefix('='))
                });
            if let Some(v) = found {
                let v: String = v
                    .trim()
                    .trim_matches(['"', '\''])
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '_'))
                    .collect();
                if !v.is_empty() {
                    out.push(Request {
                        raw: v,
                        file: file.to_owned(),
                        line: Some(i + 1),
                        what: "the Java version".into(),
                    });
                }
            }
        }
    }
    out
}

/// Checks every version request: one the stack cannot build or run is an error at its file and line.
fn check_versions(reqs: &[Request], findings: &mut Vec<Finding>) {
    for r in reqs {
        if r.raw.starts_with("${") {
            continue; // a property reference: the property itself is checked where it is set
        }
        let Some(major) = java_major(&r.raw) else {
            let mut f = Finding::error(
                &r.file,
                format!("{} `{}` is not a Java version", r.what, r.raw),
                format!("write a Java major version such as `{STACK_JAVA}`"),
            );
            f.line = r.line;
            findings.push(f);
            continue;
        };
        if major > STACK_JAVA {
            let mut f = Finding::error(
                &r.file,
                format!(
                    "{} asks for Java {major} (`{}`), but this stack has Java {STACK_JAVA} only (Debian bookworm's openjdk-{STACK_JAVA}, which builds and runs the app)",
                    r.what, r.raw
                ),
                format!(
                    "set it to {STACK_JAVA} (the code must then compile for Java {STACK_JAVA}), or build with a stack whose build image has JDK {major}"
                ),
            );
            f.line = r.line;
            findings.push(f);
        } else if major < 8 {
            let mut f = Finding::error(
                &r.file,
                format!(
                    "{} asks for Java {major} (`{}`), which JDK {STACK_JAVA} no longer compiles for",
                    r.what, r.raw
                ),
                "set it to 8 or higher (17 is what the app runs on)",
            );
            f.line = r.line;
            findings.push(f);
        }
    }
}

/// The Java sources of an app, relative paths, sorted (top level and `src/main/java`, a few levels deep).
fn java_sources(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = crate::support::sorted_entries(&base.join(rel)) else {
            return;
        };
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && depth < 8 && out.len() < 50 {
                walk(base, &path, depth + 1, out);
            } else if t.is_file() && Path::new(&name).extension().is_some_and(|x| x == "java") {
                out.push(path);
            }
        }
    }
    let mut out: Vec<String> = files_with_ext(dir, "java");
    walk(dir, "src/main/java", 0, &mut out);
    out
}

/// Whether the zip at `path` has an entry whose name starts with one of `prefixes` (entry names are stored
/// uncompressed in the central directory, at the end of the file: only the last 8 MiB are read).
fn jar_has_entry(path: &Path, prefixes: &[&str]) -> bool {
    let Ok(mut f) = fs_err::File::open(path) else {
        return false;
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let tail = len.min(8 << 20);
    if f.seek(SeekFrom::Start(len - tail)).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    if f.take(tail).read_to_end(&mut buf).is_err() {
        return false;
    }
    prefixes
        .iter()
        .any(|p| buf.windows(p.len()).any(|w| w == p.as_bytes()))
}

/// Fills `report` when `dir` is a Java app; false when it is not.
#[allow(clippy::too_many_lines)] // one pass over the three kinds of app, in the order a reader checks them
pub fn detect(dir: &Path, procfile: &[(String, String)], report: &mut Report) -> bool {
    let pom = read(dir, "pom.xml").map(|p| strip_xml_comments(&p));
    let gradle_file = ["build.gradle", "build.gradle.kts"]
        .into_iter()
        .find(|f| dir.join(f).is_file());
    let gradle = gradle_file.and_then(|f| read(dir, f).map(|t| (f, t)));
    let jars = files_with_ext(dir, "jar");
    if pom.is_none() && gradle_file.is_none() && jars.is_empty() {
        let sources = java_sources(dir);
        let Some(first) = sources.first() else {
            return false;
        };
        report.language = Some(Language::Java);
        report.findings.push(Finding::error(
            first.clone(),
            format!(
                "Java sources ({}{}) but no pom.xml, build.gradle or build.gradle.kts at the app's root: nothing says how to compile them, which dependencies they need or what to run",
                sources.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if sources.len() > 3 { ", ..." } else { "" }
            ),
            "add a pom.xml (Maven) at the app's root, or a build.gradle with the Gradle wrapper (`gradle wrapper` writes gradlew and gradle/wrapper/gradle-wrapper.properties; commit them), or commit the built executable jar",
        ));
        return true;
    }
    report.language = Some(Language::Java);
    let spring_boot;
    if let Some(pom) = &pom {
        let wrapper = dir.join("mvnw").is_file();
        report.package_manager = Some(if wrapper {
            Sourced::new("mvnw", "mvnw")
        } else {
            Sourced::new("maven", "pom.xml")
        });
        report.dependencies = pom_dependencies(pom);
        spring_boot =
            pom.contains("spring-boot-maven-plugin") || pom.contains("spring-boot-starter-parent");
        report.build = Some(Sourced::new(
            if wrapper {
                "./mvnw package -DskipTests"
            } else {
                "mvn package -DskipTests"
            },
            "pom.xml",
        ));
        if wrapper && !dir.join(".mvn/wrapper/maven-wrapper.properties").is_file() {
            report.findings.push(Finding::error(
                "mvnw",
                "the Maven wrapper script is there but .mvn/wrapper/maven-wrapper.properties is not: mvnw does not know which Maven to download",
                "run `mvn wrapper:wrapper` and commit .mvn/wrapper/, or delete mvnw to build with Maven from Maven Central",
            ));
        }
    } else if let Some(file) = gradle_file {
        report.package_manager = Some(Sourced::new("gradle", WRAPPER_PROPERTIES));
        let text = gradle.as_ref().map_or("", |(_, t)| t.as_str());
        spring_boot = text.contains("org.springframework.boot");
        report.build = Some(Sourced::new("gradle build -x test", file));
        match read(dir, WRAPPER_PROPERTIES) {
            None => report.findings.push(Finding::error(
                file,
                format!(
                    "a Gradle build without {WRAPPER_PROPERTIES}: the build does not know which Gradle distribution to use (Gradle is not in the stack)"
                ),
                "run `gradle wrapper` and commit gradlew and the gradle/wrapper/ directory",
            )),
            Some(props) => {
                if wrapper_distribution(&props).0.is_none() {
                    report.findings.push(Finding::error(
                        WRAPPER_PROPERTIES,
                        "no `distributionUrl`: the build does not know which Gradle distribution to use",
                        "add `distributionUrl=https\\://services.gradle.org/distributions/gradle-<version>-bin.zip` (or your mirror's URL)",
                    ));
                }
            }
        }
        report.dependencies = text
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                let rest = ["implementation", "runtimeOnly", "api"]
                    .iter()
                    .find_map(|k| l.strip_prefix(k))?;
                let coord = rest
                    .trim_start_matches(['(', ' '])
                    .trim_matches(['"', '\'', ')']);
                coord.split(':').nth(1).map(str::to_owned)
            })
            .collect();
    } else {
        let jar = jars[0].clone();
        report.package_manager = Some(Sourced::new("jar", jar.clone()));
        spring_boot = jar_has_entry(
            &dir.join(&jar),
            &["org/springframework/boot/loader/", "BOOT-INF/"],
        );
        if jars.len() > 1 {
            report.findings.push(Finding::warning(
                jar.clone(),
                format!(
                    "{} jars at the app's root ({}): the first is started",
                    jars.len(),
                    jars.join(", ")
                ),
                "keep only the executable jar at the top (libraries in a subdirectory), or add a Procfile `web:` entry",
            ));
        }
    }
    let reqs = requests(
        dir,
        pom.as_deref(),
        gradle.as_ref().map(|(f, t)| (*f, t.as_str())),
    );
    check_versions(&reqs, &mut report.findings);
    report.runtime = reqs.first().map(|r| {
        Sourced::new(
            r.raw.clone(),
            match r.line {
                Some(l) => format!("{}:{l}", r.file),
                None => r.file.clone(),
            },
        )
    });
    let port = if spring_boot {
        "-Dserver.port=${PORT:-8080} "
    } else {
        ""
    };
    report.start = if let Some((_, cmd)) = procfile.iter().find(|(k, _)| k == "web") {
        Some(Sourced::new(cmd.clone(), "Procfile"))
    } else {
        let (jar, source) = match report.package_manager.as_ref().map(|p| p.value.as_str()) {
            Some("jar") => (jars[0].clone(), jars[0].clone()),
            Some("gradle") => (
                "build/libs/<name>.jar".to_owned(),
                "build.gradle".to_owned(),
            ),
            _ => (
                "target/<artifactId>-<version>.jar".to_owned(),
                "pom.xml".to_owned(),
            ),
        };
        Some(Sourced::new(
            format!("java {port}-jar {jar}"),
            if spring_boot {
                format!("{source} (Spring Boot)")
            } else {
                source
            },
        ))
    };
    true
}

#[cfg(test)]
mod tests {
    use super::{java_major, strip_xml_comments, xml_value};

    #[test]
    fn majors() {
        for (raw, major) in [
            ("17", Some(17)),
            ("1.8", Some(8)),
            ("17.0.2", Some(17)),
            ("temurin-21.0.1", Some(21)),
            ("VERSION_11", Some(11)),
            ("VERSION_1_8", Some(8)),
            ("'21'", Some(21)),
            ("latest", None),
        ] {
            assert_eq!(java_major(raw), major, "{raw}");
        }
    }

    #[test]
    fn xml_lines_survive_comments() {
        let pom = strip_xml_comments(
            "<project>\n<!-- <java.version>21</java.version>\n -->\n<java.version>17</java.version>\n",
        );
        assert_eq!(xml_value(&pom, "java.version"), Some(("17".into(), 4)));
    }
}
