//! `project.toml`, the project descriptor (schema 0.2): the `[_]` table and `[io.buildpacks]`.
//!
//! Tables of other tools (other reverse domains, e.g. `[com.example]`, or other keys under
//! `[io]`) are kept verbatim so that a round trip does not lose them. Schema 0.1 (`[project]`, `[build]`, still
//! written by many apps and read by pack) is read through [`upgrade_schema_01`], which maps it onto 0.2.

use serde::{Deserialize, Serialize};

use crate::api::{ApiVersion, BuildpackApi};
use crate::buildpack_toml::License;
use crate::file::{CnbError, TomlFile};

/// The most `io.buildpacks.include` or `io.buildpacks.exclude` patterns a project may have.
pub const MAX_PATTERNS: usize = 1000;
/// The longest `include`/`exclude` pattern, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;

/// The supported schema version.
pub const PROJECT_SCHEMA: ApiVersion = ApiVersion::new(0, 2);

/// A project descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectDescriptor {
    #[serde(rename = "_", default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoTable>,
    /// Other tools' top-level tables.
    #[serde(flatten)]
    pub other: toml::Table,
}

/// The `[_]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectSection {
    #[serde(rename = "schema-version")]
    pub schema_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Any string; project versions follow no scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(
        default,
        rename = "documentation-url",
        skip_serializing_if = "Option::is_none"
    )]
    pub documentation_url: Option<String>,
    #[serde(
        default,
        rename = "source-url",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// The `[io]` table: `buildpacks` plus anything other `io.*` tools put there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IoTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<ProjectBuildpacks>,
    #[serde(flatten)]
    pub other: toml::Table,
}

/// `[io.buildpacks]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectBuildpacks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// `.gitignore`-style patterns; exclusive with `exclude`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<ProjectBuildpackRef>,
    #[serde(default, skip_serializing_if = "ProjectGroup::is_empty")]
    pub pre: ProjectGroup,
    #[serde(default, skip_serializing_if = "ProjectGroup::is_empty")]
    pub post: ProjectGroup,
    #[serde(default, skip_serializing_if = "ProjectBuild::is_empty")]
    pub build: ProjectBuild,
}

/// `[io.buildpacks.pre]` / `[io.buildpacks.post]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectGroup {
    #[serde(default)]
    pub group: Vec<ProjectBuildpackRef>,
}

impl ProjectGroup {
    fn is_empty(&self) -> bool {
        self.group.is_empty()
    }
}

/// `[io.buildpacks.build]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectBuild {
    #[serde(default)]
    pub env: Vec<ProjectEnvVar>,
}

impl ProjectBuild {
    fn is_empty(&self) -> bool {
        self.env.is_empty()
    }
}

/// One `[[io.buildpacks.build.env]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectEnvVar {
    pub name: String,
    pub value: String,
}

/// A buildpack in a project's group: by id (and optional version), by URI, or an inline script.
///
/// `version` is a plain string here: the schema's own example uses `1.0`, which is not a
/// buildpack version, and the platform resolves it against what the builder offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectBuildpackRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<InlineScript>,
}

/// `[io.buildpacks.group.script]`: an inline buildpack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineScript {
    pub api: BuildpackApi,
    pub inline: String,
    /// Defaults to `/bin/sh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

impl InlineScript {
    #[must_use]
    pub fn shell(&self) -> &str {
        self.shell.as_deref().unwrap_or("/bin/sh")
    }
}

/// Rewrites a schema 0.1 descriptor (`[project]`, `[build]` with `include`, `exclude`, `[[build.env]]` and
/// `[[build.buildpacks]]`, `[metadata]`) as schema 0.2 TOML; any other text is returned unchanged. Fields 0.1 does
/// not have in 0.2 are kept where 0.2 keeps tool data (`[_.metadata]`).
#[must_use]
pub fn upgrade_schema_01(text: &str) -> String {
    let Ok(mut table) = text.parse::<toml::Table>() else {
        return text.to_owned();
    };
    if table.contains_key("_") || !(table.contains_key("build") || table.contains_key("project")) {
        return text.to_owned();
    }
    let mut section = match table.remove("project") {
        Some(toml::Value::Table(p)) => p,
        _ => toml::Table::new(),
    };
    section.insert("schema-version".into(), "0.2".into());
    if let Some(m) = table.remove("metadata") {
        section.insert("metadata".into(), m);
    }
    let mut bp = toml::Table::new();
    if let Some(toml::Value::Table(mut build)) = table.remove("build") {
        for key in ["include", "exclude", "builder"] {
            if let Some(v) = build.remove(key) {
                bp.insert(key.into(), v);
            }
        }
        if let Some(v) = build.remove("buildpacks") {
            bp.insert("group".into(), v);
        }
        if let Some(v) = build.remove("env") {
            let mut b = toml::Table::new();
            b.insert("env".into(), v);
            bp.insert("build".into(), b.into());
        }
    }
    table.insert("_".into(), section.into());
    let mut io = match table.remove("io") {
        Some(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    io.insert("buildpacks".into(), bp.into());
    table.insert("io".into(), io.into());
    toml::to_string(&table).unwrap_or_else(|_| text.to_owned())
}

impl ProjectDescriptor {
    /// The `[io.buildpacks]` table, if present.
    #[must_use]
    pub fn buildpacks(&self) -> Option<&ProjectBuildpacks> {
        self.io.as_ref().and_then(|io| io.buildpacks.as_ref())
    }
}

fn check_refs(section: &str, refs: &[ProjectBuildpackRef]) -> Result<(), CnbError> {
    for (i, r) in refs.iter().enumerate() {
        let field = format!("io.buildpacks.{section}[{i}]");
        let chosen = [r.version.is_some(), r.uri.is_some(), r.script.is_some()]
            .into_iter()
            .filter(|b| *b)
            .count();
        if chosen > 1 {
            return Err(CnbError::field(
                ProjectDescriptor::FILE,
                field,
                "sets more than one of `version`, `uri` and `script`; keep one",
            ));
        }
        if r.id.is_none() && r.uri.is_none() && r.script.is_none() {
            return Err(CnbError::field(
                ProjectDescriptor::FILE,
                field,
                "needs an `id`, a `uri` or a `script` table",
            ));
        }
    }
    Ok(())
}

fn check_patterns(field: &str, patterns: &[String]) -> Result<(), CnbError> {
    if patterns.len() > MAX_PATTERNS {
        return Err(CnbError::field(
            ProjectDescriptor::FILE,
            format!("io.buildpacks.{field}"),
            format!(
                "has {} patterns, over the limit of {MAX_PATTERNS}: use directory patterns (`dir/`) and wildcards (`*.log`) instead of listing files",
                patterns.len()
            ),
        ));
    }
    if let Some((i, p)) = patterns
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() > MAX_PATTERN_BYTES)
    {
        return Err(CnbError::field(
            ProjectDescriptor::FILE,
            format!("io.buildpacks.{field}[{i}]"),
            format!(
                "is {} bytes, over the limit of {MAX_PATTERN_BYTES} for one pattern: shorten it",
                p.len()
            ),
        ));
    }
    Ok(())
}

impl TomlFile for ProjectDescriptor {
    const FILE: &'static str = "project.toml";

    fn validate(&self) -> Result<(), CnbError> {
        let Some(project) = &self.project else {
            return Err(CnbError::field(
                Self::FILE,
                "_.schema-version",
                "is missing; this looks like schema 0.1 — add `[_]` with `schema-version = \"0.2\"` and move `[build]` under `[io.buildpacks]`",
            ));
        };
        let schema: BuildpackApi = project.schema_version.parse().map_err(|_| {
            CnbError::field(
                Self::FILE,
                "_.schema-version",
                format!("`{}` is not a version", project.schema_version),
            )
        })?;
        if schema.0 != PROJECT_SCHEMA {
            return Err(CnbError::field(
                Self::FILE,
                "_.schema-version",
                format!("`{schema}` is not supported; use `{PROJECT_SCHEMA}`"),
            ));
        }
        let Some(bp) = self.buildpacks() else {
            return Ok(());
        };
        if !bp.include.is_empty() && !bp.exclude.is_empty() {
            return Err(CnbError::field(
                Self::FILE,
                "io.buildpacks.include",
                "cannot be combined with `io.buildpacks.exclude`; keep one of them",
            ));
        }
        for (field, patterns) in [("include", &bp.include), ("exclude", &bp.exclude)] {
            check_patterns(field, patterns)?;
        }
        check_refs("group", &bp.group)?;
        check_refs("pre.group", &bp.pre.group)?;
        check_refs("post.group", &bp.post.group)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_01_reads_as_02() {
        let v01 = "[project]\nid = \"io.buildpacks.bash-script\"\nname = \"Bash Script\"\n\n[build]\nexclude = [\"README.md\", \"bp\"]\n\n[[build.env]]\nname = \"A\"\nvalue = \"1\"\n\n[[build.buildpacks]]\nuri = \"bp/\"\n";
        let d = ProjectDescriptor::from_toml_str(&upgrade_schema_01(v01)).unwrap();
        let bp = d.buildpacks().unwrap();
        assert_eq!(bp.exclude, ["README.md", "bp"]);
        assert_eq!(bp.group[0].uri.as_deref(), Some("bp/"));
        assert_eq!(bp.build.env[0].name, "A");
        assert_eq!(d.project.unwrap().schema_version, "0.2");
        // 0.2 text passes through untouched.
        assert_eq!(upgrade_schema_01(PROJECT), PROJECT);
    }

    const PROJECT: &str = r#"
[_]
id = "io.buildpacks.my-app"
name = "My App"
version = "0.1"
schema-version = "0.2"
authors = ["Jane <jane@example.com>"]
source-url = "https://github.com/example/my-app"

[[_.licenses]]
type = "MIT"

[_.metadata]
cdn = "https://cdn.example.com"

[[_.metadata.assets]]
url = "https://cdn.example.com/assets/foo.jar"
checksum = "3b1b39893d8e34a6d0bd44095afcd5c4"

[io.buildpacks]
builder = "cnbs/sample-builder:noble"
include = ["cmd/", "go.mod", "go.sum", "*.go"]

[[io.buildpacks.pre.group]]
uri = "docker://example/pre-buildpack:1"

[[io.buildpacks.group]]
id = "io.buildpacks/java"
version = "1.0"

[[io.buildpacks.group]]
id = "example/hello"
  [io.buildpacks.group.script]
  api = "0.10"
  inline = "echo hello"

[[io.buildpacks.build.env]]
name = "JAVA_OPTS"
value = "-Xmx1g"

[io.other-tool]
keep = true

[com.example.deploy]
replicas = 3
"#;

    #[test]
    fn round_trip_keeps_other_tables() {
        let p = ProjectDescriptor::from_toml_str(PROJECT).unwrap();
        let bp = p.buildpacks().unwrap();
        assert_eq!(bp.group.len(), 2);
        assert_eq!(bp.group[1].script.as_ref().unwrap().shell(), "/bin/sh");
        assert_eq!(bp.build.env[0].value, "-Xmx1g");
        assert!(p.other.contains_key("com"));
        assert!(p.io.as_ref().unwrap().other.contains_key("other-tool"));
        let text = p.to_toml_string().unwrap();
        assert_eq!(ProjectDescriptor::from_toml_str(&text).unwrap(), p);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn pattern_limits_name_the_field_and_the_limit() {
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("\"f{i}\"")).collect();
        let text = format!(
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\nexclude = [{}]\n",
            many.join(",")
        );
        assert_eq!(
            ProjectDescriptor::from_toml_str(&text)
                .unwrap_err()
                .to_string(),
            "invalid project.toml: `io.buildpacks.exclude` has 1001 patterns, over the limit of 1000: use directory patterns (`dir/`) and wildcards (`*.log`) instead of listing files"
        );
        let text = format!(
            "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\ninclude = [\"a\", \"{}\"]\n",
            "x".repeat(MAX_PATTERN_BYTES + 1)
        );
        assert_eq!(
            ProjectDescriptor::from_toml_str(&text)
                .unwrap_err()
                .to_string(),
            "invalid project.toml: `io.buildpacks.include[1]` is 1025 bytes, over the limit of 1024 for one pattern: shorten it"
        );
    }

    #[test]
    fn errors() {
        let msg = |t: &str| ProjectDescriptor::from_toml_str(t).unwrap_err().to_string();
        assert_eq!(
            msg("[project]\nid = \"x\"\n"),
            "invalid project.toml: `_.schema-version` is missing; this looks like schema 0.1 — add `[_]` with `schema-version = \"0.2\"` and move `[build]` under `[io.buildpacks]`"
        );
        assert_eq!(
            msg("[_]\nschema-version = \"0.3\"\n"),
            "invalid project.toml: `_.schema-version` `0.3` is not supported; use `0.2`"
        );
        assert_eq!(
            msg(
                "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\ninclude = [\"a\"]\nexclude = [\"b\"]\n"
            ),
            "invalid project.toml: `io.buildpacks.include` cannot be combined with `io.buildpacks.exclude`; keep one of them"
        );
        assert_eq!(
            msg(
                "[_]\nschema-version = \"0.2\"\n[[io.buildpacks.post.group]]\nid = \"a\"\nversion = \"1\"\nuri = \"x\"\n"
            ),
            "invalid project.toml: `io.buildpacks.post.group[0]` sets more than one of `version`, `uri` and `script`; keep one"
        );
        assert_eq!(
            msg("[_]\nschema-version = \"0.2\"\n[[io.buildpacks.group]]\nversion = \"1\"\n"),
            "invalid project.toml: `io.buildpacks.group[0]` needs an `id`, a `uri` or a `script` table"
        );
    }
}
