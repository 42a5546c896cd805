//! Orders and groups: `[[order]]` in `buildpack.toml` and `order.toml`, the detected `group.toml`,
//! and the system buildpacks of `system.toml`.

use serde::{Deserialize, Serialize};

use crate::api::BuildpackApi;
use crate::file::{CnbError, TomlFile, is_false};
use crate::ids::{BuildpackId, BuildpackVersion};

/// A buildpack (or extension) reference inside an order group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    /// Defaults to `false`; written only when `true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Execution environments the entry applies to; empty means all.
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

impl GroupRef {
    #[must_use]
    pub fn new(id: BuildpackId, version: BuildpackVersion) -> Self {
        Self {
            id,
            version,
            optional: false,
            exec_env: Vec::new(),
        }
    }

    /// Whether this entry applies in execution environment `env` (`*` in the list means all).
    #[must_use]
    pub fn applies_to(&self, env: &str) -> bool {
        self.exec_env.is_empty() || self.exec_env.iter().any(|e| e == env || e == "*")
    }
}

/// One `[[order]]` entry: a group tried as a unit during detection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderGroup {
    #[serde(default)]
    pub group: Vec<GroupRef>,
}

/// `order.toml`: the platform's order of buildpack groups and, optionally, of image extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderToml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderGroup>,
    #[serde(
        default,
        rename = "order-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order_extensions: Vec<OrderGroup>,
}

impl OrderToml {
    /// The order with system buildpacks merged into every group, as the detector does: `pre`
    /// buildpacks first and `post` buildpacks last, each skipped in a group that already holds a
    /// buildpack with the same id. Extension orders are left alone.
    #[must_use]
    pub fn with_system(&self, system: &SystemToml) -> Self {
        let merge = |group: &OrderGroup| {
            let missing = |r: &&GroupRef| !group.group.iter().any(|g| g.id == r.id);
            let pre = system.system.pre.buildpacks.iter().filter(missing);
            let post = system.system.post.buildpacks.iter().filter(missing);
            OrderGroup {
                group: pre.chain(&group.group).chain(post).cloned().collect(),
            }
        };
        Self {
            order: self.order.iter().map(merge).collect(),
            order_extensions: self.order_extensions.clone(),
        }
    }
}

impl TomlFile for OrderToml {
    const FILE: &'static str = "order.toml";
}

/// A resolved group member in `group.toml` (or `metadata.toml`): the reference plus its API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    pub api: BuildpackApi,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    #[serde(default, rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
}

/// `group.toml`: the group the detector selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupToml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<GroupMember>,
    #[serde(
        default,
        rename = "group-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group_extensions: Vec<GroupMember>,
}

impl TomlFile for GroupToml {
    const FILE: &'static str = "group.toml";

    fn validate(&self) -> Result<(), CnbError> {
        let mut seen: Vec<&BuildpackId> = Vec::new();
        for (i, member) in self.group.iter().enumerate() {
            if let Some(prev) = seen.iter().find(|s| s.eq_ignore_case(&member.id)) {
                return Err(CnbError::field(
                    Self::FILE,
                    format!("group[{i}].id"),
                    format!(
                        "`{}` duplicates `{prev}` (buildpack ids are unique ignoring case)",
                        member.id
                    ),
                ));
            }
            seen.push(&member.id);
        }
        Ok(())
    }
}

/// `[system]` of `system.toml`: buildpacks merged before and after every order group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemBuildpacks {
    #[serde(default, skip_serializing_if = "SystemGroup::is_empty")]
    pub pre: SystemGroup,
    #[serde(default, skip_serializing_if = "SystemGroup::is_empty")]
    pub post: SystemGroup,
}

/// `system.pre` or `system.post`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemGroup {
    #[serde(default)]
    pub buildpacks: Vec<GroupRef>,
}

impl SystemGroup {
    fn is_empty(&self) -> bool {
        self.buildpacks.is_empty()
    }
}

/// `system.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemToml {
    #[serde(default)]
    pub system: SystemBuildpacks,
}

impl TomlFile for SystemToml {
    const FILE: &'static str = "system.toml";
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"
[[order]]
[[order.group]]
id = "paketo-buildpacks/node-engine"
version = "3.2.1"

[[order.group]]
id = "paketo-buildpacks/npm-install"
version = "1.4.0"
optional = true

[[order]]
[[order.group]]
id = "paketo-buildpacks/python"
version = "2.0.0"
exec-env = ["test"]

[[order-extensions]]
[[order-extensions.group]]
id = "samples/curl"
version = "0.0.1"
"#;

    #[test]
    fn order_round_trip() {
        let order = OrderToml::from_toml_str(ORDER).unwrap();
        assert_eq!(order.order.len(), 2);
        assert!(order.order[0].group[1].optional);
        assert!(
            !order.order[0].group[0].optional,
            "optional defaults to false"
        );
        assert!(order.order[1].group[0].applies_to("test"));
        assert!(!order.order[1].group[0].applies_to("production"));
        let text = order.to_toml_string().unwrap();
        assert_eq!(OrderToml::from_toml_str(&text).unwrap(), order);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn order_requires_version() {
        let err = OrderToml::from_toml_str("[[order]]\n[[order.group]]\nid = \"a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid order.toml: TOML parse error at line 2, column 1"),
            "{err}"
        );
        assert!(err.contains("missing field `version`"), "{err}");
    }

    #[test]
    fn group_round_trip_and_unique_ids() {
        let text = r#"
[[group]]
id = "heroku/nodejs-engine"
version = "3.0.0"
api = "0.10"
homepage = "https://github.com/heroku/buildpacks-nodejs"

[[group-extensions]]
id = "samples/curl"
version = "0.0.1"
api = "0.9"
"#;
        let group = GroupToml::from_toml_str(text).unwrap();
        assert_eq!(group.group[0].api, BuildpackApi::new(0, 10));
        let again = GroupToml::from_toml_str(&group.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, group);

        let dup = "[[group]]\nid = \"a/B\"\nversion = \"1.0.0\"\napi = \"0.10\"\n\
                   [[group]]\nid = \"a/b\"\nversion = \"1.0.0\"\napi = \"0.10\"\n";
        assert_eq!(
            GroupToml::from_toml_str(dup).unwrap_err().to_string(),
            "invalid group.toml: `group[1].id` `a/b` duplicates `a/B` (buildpack ids are unique ignoring case)"
        );
    }

    #[test]
    fn system_buildpacks_merge_into_every_group() {
        let order = OrderToml::from_toml_str(ORDER).unwrap();
        let system = SystemToml::from_toml_str(
            "[[system.pre.buildpacks]]\nid = \"paketo-buildpacks/python\"\nversion = \"9.9.9\"\n\
             [[system.post.buildpacks]]\nid = \"example/post\"\nversion = \"1.0.0\"\noptional = true\n",
        )
        .unwrap();
        let merged = order.with_system(&system);
        let ids = |g: &OrderGroup| g.group.iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ids(&merged.order[0]),
            [
                "paketo-buildpacks/python",
                "paketo-buildpacks/node-engine",
                "paketo-buildpacks/npm-install",
                "example/post"
            ]
        );
        // The second group already has python: its own entry stays, the system one is skipped.
        assert_eq!(
            ids(&merged.order[1]),
            ["paketo-buildpacks/python", "example/post"]
        );
        assert_eq!(merged.order[1].group[0].version.to_string(), "2.0.0");
        assert_eq!(merged.order_extensions, order.order_extensions);
    }

    #[test]
    fn system_round_trip() {
        let text = r#"
[[system.pre.buildpacks]]
id = "example/pre"
version = "1.0.0"

[[system.post.buildpacks]]
id = "example/post"
version = "1.0.0"
optional = true
"#;
        let system = SystemToml::from_toml_str(text).unwrap();
        assert!(system.system.post.buildpacks[0].optional);
        let again = SystemToml::from_toml_str(&system.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, system);
    }
}
