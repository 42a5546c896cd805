//! The Java example apps through the default builder: `java-gradle` (the JDK's HTTP server, built by a Gradle
//! distribution the wrapper properties name — here a stand-in made by the test and served on loopback, since
//! Gradle's site is not reachable), `java-maven` (Spring Boot with its dependencies from Maven Central), each run
//! under runc as the CNB user and answering HTTP; a one-line change reuses the JRE, Maven and the Maven
//! repository; the SBOM lists the Spring Boot jar's libraries as syft sees them; `java-no-build-file` fails alike
//! in `detect` and `build`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::apps::{build, copy_app, get, ready, start_image};
use crate::registry::free_port;
use crate::run;

/// A stand-in for Gradle's `bin/gradle`: compiles `src/main/java` with the JDK's javac and writes
/// `build/libs/<rootProject.name>.jar` with the `mainClass` of build.gradle — what `gradle build` does for this
/// app, without Gradle.
const STUB_GRADLE: &str = r#"#!/bin/sh
set -eu
name=$(sed -n "s/^rootProject.name *= *['\"]\(.*\)['\"].*/\1/p" settings.gradle)
main=$(sed -n "s/.*mainClass *= *['\"]\(.*\)['\"].*/\1/p" build.gradle | head -n 1)
echo "stand-in gradle $*: $name ($main)"
rm -rf build && mkdir -p build/classes build/libs
javac -d build/classes $(find src/main/java -name '*.java' | sort)
jar --create --date=1980-01-02T00:00:02Z --file "build/libs/$name.jar" --main-class "$main" -C build/classes .
"#;

/// Serves `body` for every request on a loopback port (a thread for the test's life); the port.
fn serve(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    port
}

/// A Gradle "binary distribution" zip (`gradle-8.10.2/bin/gradle`), and its SHA-256.
fn stub_distribution(tmp: &Path) -> (Vec<u8>, String) {
    let dir = tmp.join("stub-gradle");
    let bin = dir.join("gradle-8.10.2/bin");
    fs_err::create_dir_all(&bin).unwrap();
    fs_err::write(bin.join("gradle"), STUB_GRADLE).unwrap();
    let (ok, out) = run(Command::new("chmod").arg("755").arg(bin.join("gradle")));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new("zip")
        .args(["-q", "-r", "-X", "dist.zip", "gradle-8.10.2"])
        .current_dir(&dir));
    assert!(ok, "{out}");
    let zip = fs_err::read(dir.join("dist.zip")).unwrap();
    let (ok, out) = run(Command::new("sha256sum").arg(dir.join("dist.zip")));
    assert!(ok, "{out}");
    (zip, out.split_whitespace().next().unwrap().to_owned())
}

fn set_wrapper(app: &Path, url: &str, sum: &str) {
    fs_err::write(
        app.join("gradle/wrapper/gradle-wrapper.properties"),
        format!(
            "distributionBase=GRADLE_USER_HOME\ndistributionPath=wrapper/dists\ndistributionUrl={}\ndistributionSha256Sum={sum}\n",
            url.replace(':', "\\:")
        ),
    )
    .unwrap();
}

/// The compressed size of the image `tag` in the OCI layout (its config and layers), and of its largest layer.
fn image_size(layout: &Path, tag: &str) -> (u64, u64) {
    let blob = |digest: &str| {
        layout.join(format!(
            "blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        ))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(blob(&tag_digest(layout, tag))).unwrap()).unwrap();
    let sizes: Vec<u64> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .collect();
    (
        sizes.iter().sum::<u64>() + manifest["config"]["size"].as_u64().unwrap(),
        sizes.iter().copied().max().unwrap_or(0),
    )
}

/// The build output's timing lines (Maven's total, the lifecycle's phases), for the test's log.
fn timings(out: &str) -> String {
    out.lines()
        .filter(|l| {
            l.contains("Total time") || l.starts_with("*** Phases") || l.starts_with("*** Total")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn du(path: &Path) -> String {
    let (ok, out) = run(Command::new("du").args(["-sh"]).arg(path));
    assert!(ok, "{out}");
    out.split_whitespace().next().unwrap_or("").to_owned()
}

/// `(name, version)` of every component of a `CycloneDX` file.
fn components(file: &Path) -> BTreeSet<(String, String)> {
    let bom: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(file).unwrap()).unwrap();
    bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// syft's `java-archive` packages in the image, but the app's own jar and the JRE's: the libraries our SBOM
/// lists. (syft also reports the JRE as a `binary` package `openjdk`, from its `release` file.)
fn syft_jars(tmp: &Path, tag: &str) -> Option<BTreeSet<(String, String)>> {
    let report = crate::apps::syft_report(tmp, tag)?;
    Some(
        report["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            // The app's own jar, and the JRE's `lib/jrt-fs.jar`, are not libraries of the app.
            .filter(|a| {
                a["type"] == "java-archive" && a["name"] != "java-maven" && a["name"] != "jrt-fs"
            })
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    a["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    )
}

#[test]
#[allow(clippy::too_many_lines)] // one story per app, sharing the builds
fn java_apps_build_run_rebuild_and_fail_alike() {
    if !ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // java-no-build-file: the same error in the preflight and in the build.
    let broken = copy_app("java-no-build-file", &tmp.join("broken"));
    let o = Command::new(env!("CARGO_BIN_EXE_goldenpath"))
        .arg("detect")
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let preflight = String::from_utf8_lossy(&o.stdout).into_owned();
    let error = preflight
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("error: src/main/java/io/goldenpath/example/Main.java: Java sources"),
        "{error}"
    );
    let (ok, out) = build(tmp, &broken, "broken");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&error),
        "the build says what detect said:\n{error}\n---\n{out}"
    );
    assert!(out.contains("fix: add a pom.xml"), "{out}");

    // java-gradle: an unreachable distribution fails naming the URL and the mirror setting.
    let gradle = copy_app("java-gradle", &tmp.join("gradle"));
    let dead = format!("http://127.0.0.1:{}/gradle-8.10.2-bin.zip", free_port());
    set_wrapper(&gradle, &dead, "0");
    let (ok, out) = build(tmp, &gradle, "gradle");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "gradle/wrapper/gradle-wrapper.properties:3: cannot download the Gradle distribution {dead}"
        )),
        "{out}"
    );
    assert!(out.contains("GRADLE_DISTRIBUTIONS_URL"), "{out}");

    // java-gradle with the stand-in distribution on loopback, SHA-256 checked.
    let (zip, sum) = stub_distribution(tmp);
    let url = format!("http://127.0.0.1:{}/gradle-8.10.2-bin.zip", serve(zip));
    set_wrapper(&gradle, &url, &sum);
    let t = Instant::now();
    let (ok, out) = build(tmp, &gradle, "gradle");
    assert!(ok, "{out}");
    eprintln!(
        "java-gradle cold build: {:?}\n{}",
        t.elapsed(),
        timings(&out)
    );
    assert!(
        out.contains(&format!("Installing Gradle from {url}")),
        "{out}"
    );
    assert!(
        out.contains("stand-in gradle --no-daemon --console=plain build -x test"),
        "{out}"
    );
    assert!(out.contains("Making a JRE of Java 17"), "{out}");
    assert!(
        out.contains("Start command: exec java -jar build/libs/java-gradle.jar"),
        "{out}"
    );
    let port = free_port();
    let app = start_image(&tmp.join("images"), "gradle", tmp, port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"java-gradle\""), "{answer}");
    drop(app);
    let main = gradle.join("src/main/java/io/goldenpath/example/Main.java");
    let text = fs_err::read_to_string(&main).unwrap();
    fs_err::write(&main, text.replace("Hello from GoldenPath", "Hello again")).unwrap();
    let (ok, out) = build(tmp, &gradle, "gradle");
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing Gradle (gradle-8.10.2-bin.zip, layer unchanged)"),
        "{out}"
    );
    assert!(out.contains("Reusing the JRE (Java 17"), "{out}");
    let _ = fs_err::remove_dir_all(tmp.join("bundle-gradle"));
    let port = free_port();
    let app = start_image(&tmp.join("images"), "gradle", tmp, port);
    let answer = get(port);
    assert!(answer.contains("Hello again"), "{answer}");
    drop(app);
    // Disk is scarce on CI machines: each unpacked image is a few hundred MB.
    let _ = fs_err::remove_dir_all(tmp.join("bundle-gradle"));

    // java-maven: Spring Boot, Maven and the dependencies from Maven Central (one cold build, one rebuild).
    let maven = copy_app("java-maven", &tmp.join("maven"));
    let t = Instant::now();
    let (ok, out) = build(tmp, &maven, "maven");
    assert!(ok, "{out}");
    eprintln!(
        "java-maven cold build: {:?}\n{}",
        t.elapsed(),
        timings(&out)
    );
    assert!(
        out.contains("Installing Maven 3.9.16 from https://"),
        "{out}"
    );
    assert!(
        out.contains(
            "Start command: exec java -Dserver.port=${PORT:-8080} -jar target/java-maven-0.1.0.jar"
        ),
        "{out}"
    );
    let port = free_port();
    let app = start_image(&tmp.join("images"), "maven", tmp, port);
    let answer = get(port);
    assert!(answer.contains("\"app\":\"java-maven\""), "{answer}");
    drop(app);
    let rootfs = tmp.join("bundle-maven/rootfs");
    let jre = rootfs.join("layers/io.goldenpath.java/jre");
    assert!(jre.join("bin/java").is_file());
    assert!(!jre.join("bin/javac").exists(), "a JRE, not the JDK");
    let (size, largest) = image_size(&tmp.join("images"), "maven");
    eprintln!(
        "java-maven image: {} MB compressed (largest layer {} MB); JRE layer unpacked {}",
        size >> 20,
        largest >> 20,
        du(&jre)
    );
    let ours = components(&rootfs.join("layers/sbom/launch/io.goldenpath.java/sbom.cdx.json"));
    for lib in [
        "spring-boot",
        "spring-webmvc",
        "tomcat-embed-core",
        "jackson-databind",
    ] {
        assert!(ours.iter().any(|(n, _)| n == lib), "{lib} in {ours:#?}");
    }
    assert!(ours.contains(&("spring-boot".to_owned(), "3.5.7".to_owned())));
    let bom =
        fs_err::read_to_string(rootfs.join("layers/sbom/launch/io.goldenpath.java/sbom.cdx.json"))
            .unwrap();
    assert!(
        bom.contains("pkg:maven/org.springframework.boot/spring-boot@3.5.7"),
        "{bom}"
    );
    if let Some(seen) = syft_jars(tmp, "maven") {
        assert_eq!(seen, ours, "Maven jars: syft vs our launch SBOM");
        let _ = fs_err::remove_dir_all(tmp.join("syft-maven"));
    }

    // A one-line change: the JRE, Maven and the Maven repository are reused.
    let src = maven.join("src/main/java/io/goldenpath/example/Application.java");
    let text = fs_err::read_to_string(&src).unwrap();
    fs_err::write(&src, text.replace("Hello from GoldenPath", "Hello again")).unwrap();
    let t = Instant::now();
    let (ok, out) = build(tmp, &maven, "maven");
    assert!(ok, "{out}");
    eprintln!(
        "java-maven one-line change: {:?}\n{}",
        t.elapsed(),
        timings(&out)
    );
    assert!(
        out.contains("Reusing the Maven repository layer (pom.xml unchanged)"),
        "{out}"
    );
    assert!(
        out.contains("Reusing Maven 3.9.16 (layer unchanged)"),
        "{out}"
    );
    assert!(out.contains("Reusing the JRE (Java 17"), "{out}");
    assert!(!out.contains("Reusing the application jar"), "{out}");
    let changed = tag_digest(&tmp.join("images"), "maven");

    // No change: Maven does not run, the jar is the one kept, and so is the whole image.
    let t = Instant::now();
    let (ok, out) = build(tmp, &maven, "maven");
    assert!(ok, "{out}");
    eprintln!(
        "java-maven no-change rebuild: {:?}\n{}",
        t.elapsed(),
        timings(&out)
    );
    assert!(
        out.contains("Reusing the application jar target/java-maven-0.1.0.jar"),
        "{out}"
    );
    assert!(!out.contains("Building with mvn"), "{out}");
    assert_eq!(tag_digest(&tmp.join("images"), "maven"), changed);
    let _ = fs_err::remove_dir_all(tmp.join("bundle-maven"));
    let port = free_port();
    let app = start_image(&tmp.join("images"), "maven", tmp, port);
    let answer = get(port);
    assert!(answer.contains("Hello again"), "{answer}");
    drop(app);
    let _ = fs_err::remove_dir_all(tmp.join("bundle-maven"));

    // The build after a reused one still has Maven and its repository cached.
    fs_err::write(
        &src,
        text.replace("Hello from GoldenPath", "Hello a third time"),
    )
    .unwrap();
    let (ok, out) = build(tmp, &maven, "maven");
    assert!(ok, "{out}");
    assert!(
        out.contains("Reusing the Maven repository layer (pom.xml unchanged)")
            && out.contains("Reusing Maven 3.9.16 (layer unchanged)")
            && out.contains("Building with mvn"),
        "{out}"
    );
}

/// The manifest digest `tag` names in the layout.
fn tag_digest(layout: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}
