//! Java detection over small app trees: Maven, the Maven wrapper, Gradle with its wrapper properties, prebuilt
//! jars, version requests (each source, refused above the stack's Java 17 at its file and line), Spring Boot and
//! sources that nothing builds.
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

const BOOT_POM: &str = r"<project>
  <parent>
    <groupId>org.springframework.boot</groupId>
    <artifactId>spring-boot-starter-parent</artifactId>
    <version>3.5.7</version>
  </parent>
  <artifactId>demo</artifactId>
  <properties>
    <java.version>17</java.version>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.springframework.boot</groupId>
      <artifactId>spring-boot-starter-web</artifactId>
    </dependency>
    <!-- <dependency><artifactId>commented-out</artifactId></dependency> -->
    <dependency>
      <groupId>org.postgresql</groupId>
      <artifactId>postgresql</artifactId>
    </dependency>
  </dependencies>
</project>
";

#[test]
fn maven_spring_boot_app() {
    let d = app(&[("pom.xml", BOOT_POM)]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Java));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let pm = r.package_manager.as_ref().unwrap();
    assert_eq!(
        (pm.value.as_str(), pm.source.as_str()),
        ("maven", "pom.xml")
    );
    assert_eq!(r.dependencies, ["spring-boot-starter-web", "postgresql"]);
    let rt = r.runtime.as_ref().unwrap();
    assert_eq!((rt.value.as_str(), rt.source.as_str()), ("17", "pom.xml:9"));
    let start = r.start.as_ref().unwrap();
    assert_eq!(
        start.value,
        "java -Dserver.port=${PORT:-8080} -jar target/<artifactId>-<version>.jar"
    );
    assert_eq!(start.source, "pom.xml (Spring Boot)");
    assert_eq!(r.build.as_ref().unwrap().value, "mvn package -DskipTests");
}

#[test]
fn maven_wrapper_needs_its_properties() {
    let pom = "<project><artifactId>x</artifactId></project>\n";
    let d = app(&[("pom.xml", pom), ("mvnw", "#!/bin/sh\n")]);
    let r = detect(d.path());
    assert_eq!(r.package_manager.as_ref().unwrap().value, "mvnw");
    assert_eq!(
        r.build.as_ref().unwrap().value,
        "./mvnw package -DskipTests"
    );
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "mvnw");
    assert!(
        e[0].message
            .contains(".mvn/wrapper/maven-wrapper.properties")
    );
    assert!(e[0].fix.contains("mvn wrapper:wrapper"), "{}", e[0].fix);
    // Not a Spring Boot app: no server.port.
    assert_eq!(
        r.start.as_ref().unwrap().value,
        "java -jar target/<artifactId>-<version>.jar"
    );
    let d = app(&[
        ("pom.xml", pom),
        ("mvnw", "#!/bin/sh\n"),
        (
            ".mvn/wrapper/maven-wrapper.properties",
            "distributionUrl=x\n",
        ),
    ]);
    assert!(detect(d.path()).findings.is_empty());
}

#[test]
fn java_above_the_stack_is_refused_at_file_and_line() {
    let pom = "<project>\n  <properties>\n    <maven.compiler.release>21</maven.compiler.release>\n    <maven.compiler.source>1.8</maven.compiler.source>\n  </properties>\n</project>\n";
    let d = app(&[("pom.xml", pom)]);
    let r = detect(d.path());
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("pom.xml", Some(3)));
    assert!(
        e[0].message.contains(
            "<maven.compiler.release> asks for Java 21 (`21`), but this stack has Java 17 only"
        ),
        "{}",
        e[0].message
    );
    assert!(e[0].fix.starts_with("set it to 17"), "{}", e[0].fix);
    assert_eq!(
        e[0].to_string().lines().next().unwrap(),
        format!("error: pom.xml:3: {}", e[0].message)
    );

    // system.properties and .java-version, each at its line; they come first as the runtime request.
    let d = app(&[
        ("pom.xml", "<project></project>\n"),
        ("system.properties", "# runtime\njava.runtime.version=25\n"),
        (".java-version", "temurin-21.0.2\n"),
    ]);
    let r = detect(d.path());
    let e = errors(&r.findings);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), (".java-version", Some(1)));
    assert!(e[0].message.contains("Java 21"));
    assert_eq!(
        (e[1].file.as_str(), e[1].line),
        ("system.properties", Some(2))
    );
    assert!(
        e[1].message
            .contains("java.runtime.version asks for Java 25")
    );
    assert_eq!(r.runtime.as_ref().unwrap().source, "system.properties:2");

    // Too old for JDK 17's javac; not a version at all; a property reference is left to where it is set.
    let d = app(&[
        (
            "pom.xml",
            "<project>\n<properties>\n<maven.compiler.release>${java.version}</maven.compiler.release>\n<java.version>1.6</java.version>\n</properties>\n</project>\n",
        ),
        ("system.properties", "java.runtime.version=latest\n"),
    ]);
    let r = detect(d.path());
    let e = errors(&r.findings);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("pom.xml", Some(4)));
    assert!(e[0].message.contains("Java 6"), "{}", e[0].message);
    assert!(e[0].fix.contains("8 or higher"));
    assert_eq!(
        (e[1].file.as_str(), e[1].line),
        ("system.properties", Some(1))
    );
    assert!(e[1].message.contains("`latest` is not a Java version"));

    // 17 and below are fine.
    let d = app(&[
        ("pom.xml", "<project></project>\n"),
        ("system.properties", "java.runtime.version=11\n"),
        (".java-version", "17.0.9\n"),
    ]);
    assert!(errors(&detect(d.path()).findings).is_empty());
}

#[test]
fn gradle_with_wrapper_properties() {
    let build = "plugins {\n  id 'application'\n}\njava {\n  toolchain {\n    languageVersion = JavaLanguageVersion.of(21)\n  }\n}\ndependencies {\n  implementation 'com.google.guava:guava:33.0.0-jre'\n}\n";
    let d = app(&[
        ("build.gradle", build),
        (
            "gradle/wrapper/gradle-wrapper.properties",
            "distributionUrl=https\\://services.gradle.org/distributions/gradle-8.10.2-bin.zip\n",
        ),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Java));
    let pm = r.package_manager.as_ref().unwrap();
    assert_eq!(
        (pm.value.as_str(), pm.source.as_str()),
        ("gradle", "gradle/wrapper/gradle-wrapper.properties")
    );
    assert_eq!(r.dependencies, ["guava"]);
    assert_eq!(r.build.as_ref().unwrap().value, "gradle build -x test");
    assert_eq!(
        r.start.as_ref().unwrap().value,
        "java -jar build/libs/<name>.jar"
    );
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].file.as_str(), e[0].line), ("build.gradle", Some(6)));
    assert!(e[0].message.contains("Java 21"));

    // Kotlin DSL, Spring Boot plugin, no wrapper properties.
    let d = app(&[(
        "build.gradle.kts",
        "plugins {\n  id(\"org.springframework.boot\") version \"3.5.7\"\n}\n",
    )]);
    let r = detect(d.path());
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "build.gradle.kts");
    assert!(
        e[0].message
            .contains("without gradle/wrapper/gradle-wrapper.properties")
    );
    assert!(e[0].fix.contains("gradle wrapper"));
    assert!(r.start.as_ref().unwrap().value.contains("-Dserver.port"));

    // Wrapper properties without a distributionUrl.
    let d = app(&[
        ("build.gradle", "plugins { id 'java' }\n"),
        (
            "gradle/wrapper/gradle-wrapper.properties",
            "zipStoreBase=x\n",
        ),
    ]);
    let e: Vec<Finding> = errors(&detect(d.path()).findings)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "gradle/wrapper/gradle-wrapper.properties");
    assert!(e[0].message.contains("no `distributionUrl`"));
    assert!(e[0].fix.contains("distributionUrl="));
}

/// A zip with the given entry names (stored, empty): enough for the central directory.
fn zip(names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for name in names {
        let offset = u32::try_from(out.len()).unwrap();
        let n = u16::try_from(name.len()).unwrap();
        out.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        central
            .extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        central.extend_from_slice(&n.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&central);
    out
}

#[test]
fn prebuilt_jars() {
    let dir = tempfile::tempdir().unwrap();
    let boot = zip(&[
        "META-INF/MANIFEST.MF",
        "org/springframework/boot/loader/launch/JarLauncher.class",
        "BOOT-INF/lib/spring-core-6.2.12.jar",
    ]);
    fs_err::write(dir.path().join("app.jar"), &boot).unwrap();
    let r = detect(dir.path());
    assert_eq!(r.language, Some(Language::Java));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let pm = r.package_manager.as_ref().unwrap();
    assert_eq!((pm.value.as_str(), pm.source.as_str()), ("jar", "app.jar"));
    assert_eq!(
        r.start.as_ref().unwrap().value,
        "java -Dserver.port=${PORT:-8080} -jar app.jar"
    );

    // A plain jar, and a second one: the first is started, with a warning naming both.
    fs_err::write(
        dir.path().join("app.jar"),
        zip(&["META-INF/MANIFEST.MF", "a/Main.class"]),
    )
    .unwrap();
    fs_err::write(dir.path().join("lib.jar"), zip(&["b/B.class"])).unwrap();
    let r = detect(dir.path());
    assert_eq!(r.start.as_ref().unwrap().value, "java -jar app.jar");
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!(r.findings[0].severity, Severity::Warning);
    assert_eq!(r.findings[0].file, "app.jar");
    assert!(r.findings[0].message.contains("app.jar, lib.jar"));

    // A Procfile's web process wins.
    fs_err::write(
        dir.path().join("Procfile"),
        "web: java -Xss1m -jar app.jar\n",
    )
    .unwrap();
    let r = detect(dir.path());
    let start = r.start.as_ref().unwrap();
    assert_eq!(
        (start.value.as_str(), start.source.as_str()),
        ("java -Xss1m -jar app.jar", "Procfile")
    );
}

#[test]
fn java_sources_without_a_build_file_fail_naming_the_files() {
    let d = app(&[
        ("src/main/java/com/example/App.java", "class App {}\n"),
        ("src/main/java/com/example/Util.java", "class Util {}\n"),
    ]);
    let r = detect(d.path());
    assert_eq!(r.language, Some(Language::Java));
    let e = errors(&r.findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].file, "src/main/java/com/example/App.java");
    assert!(
        e[0].message.starts_with(
            "Java sources (src/main/java/com/example/App.java, src/main/java/com/example/Util.java) but no pom.xml, build.gradle or build.gradle.kts"
        ),
        "{}",
        e[0].message
    );
    assert!(e[0].fix.contains("add a pom.xml"));
    assert!(
        e[0].fix
            .contains("gradle/wrapper/gradle-wrapper.properties")
    );

    // Nothing Java at all: not claimed.
    let d = app(&[("README.md", "hello\n")]);
    assert_ne!(detect(d.path()).language, Some(Language::Java));
}

#[test]
fn example_apps() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/apps");
    let r = detect(&root.join("java-maven"));
    assert_eq!(r.language, Some(Language::Java));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.start.as_ref().unwrap().value.contains("-Dserver.port"));
    let r = detect(&root.join("java-gradle"));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(r.package_manager.as_ref().unwrap().value, "gradle");
    assert_eq!(r.runtime.as_ref().unwrap().source, "build.gradle:8");
    let r = detect(&root.join("java-no-build-file"));
    assert!(r.failed());
    assert_eq!(
        r.findings[0].file,
        "src/main/java/io/goldenpath/example/Main.java"
    );
}
