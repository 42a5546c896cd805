//! Build plans: what `/bin/detect` writes (`provides`/`requires`/`or`), the resolved `plan.toml`,
//! the Buildpack Plan given to `/bin/build`, and what `/bin/build` hands back in `build.toml` and
//! `store.toml`.

use serde::{Deserialize, Serialize};

use crate::file::{CnbError, TomlFile, is_false};
use crate::ids::{BuildpackId, BuildpackVersion};

/// A dependency a buildpack can provide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provide {
    pub name: String,
}

/// A dependency a buildpack requires, with buildpack-specific metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Require {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// One potential build plan: a pairing of `provides` and `requires`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanAlternative {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<Provide>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Require>,
}

/// The build plan a `/bin/detect` writes to `$CNB_BUILD_PLAN_PATH`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<Provide>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Require>,
    /// Further alternatives, tried after the top-level pairing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub or: Vec<PlanAlternative>,
}

impl BuildPlan {
    /// Every potential build plan, in the order detection tries them: the top-level pairing
    /// first, then each `[[or]]` entry.
    #[must_use]
    pub fn alternatives(&self) -> Vec<PlanAlternative> {
        std::iter::once(PlanAlternative {
            provides: self.provides.clone(),
            requires: self.requires.clone(),
        })
        .chain(self.or.iter().cloned())
        .collect()
    }
}

fn check_names<'a>(
    file: &'static str,
    prefix: &str,
    names: impl Iterator<Item = (&'static str, usize, &'a str)>,
) -> Result<(), CnbError> {
    for (section, i, name) in names {
        if name.is_empty() {
            return Err(CnbError::field(
                file,
                format!("{prefix}{section}[{i}].name"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

fn check_alternative(prefix: &str, alt: &PlanAlternative) -> Result<(), CnbError> {
    let provides = alt
        .provides
        .iter()
        .enumerate()
        .map(|(i, p)| ("provides", i, p.name.as_str()));
    let requires = alt
        .requires
        .iter()
        .enumerate()
        .map(|(i, r)| ("requires", i, r.name.as_str()));
    check_names(BuildPlan::FILE, prefix, provides.chain(requires))
}

impl BuildPlan {
    /// Image extensions may only provide: errors at the first `requires`.
    pub fn check_extension(&self) -> Result<(), CnbError> {
        let top = (!self.requires.is_empty()).then(|| "requires".to_owned());
        let nested = self
            .or
            .iter()
            .position(|alt| !alt.requires.is_empty())
            .map(|i| format!("or[{i}].requires"));
        match top.or(nested) {
            Some(field) => Err(CnbError::field(
                Self::FILE,
                field,
                "must be empty: image extensions only provide",
            )),
            None => Ok(()),
        }
    }
}

impl TomlFile for BuildPlan {
    const FILE: &'static str = "build plan";

    fn validate(&self) -> Result<(), CnbError> {
        check_alternative(
            "",
            &PlanAlternative {
                provides: self.provides.clone(),
                requires: self.requires.clone(),
            },
        )?;
        for (i, alt) in self.or.iter().enumerate() {
            check_alternative(&format!("or[{i}]."), alt)?;
        }
        Ok(())
    }
}

/// A buildpack or extension that provided a plan entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanProvider {
    pub id: BuildpackId,
    pub version: BuildpackVersion,
    #[serde(default, skip_serializing_if = "is_false")]
    pub extension: bool,
}

/// One resolved entry of `plan.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub providers: Vec<PlanProvider>,
    pub requires: Vec<Require>,
}

impl PlanEntry {
    /// The dependency name all requirements share (validated on parse).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.requires.first().map(|r| r.name.as_str())
    }
}

/// `plan.toml`: the build plan the detector resolved for the selected group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanToml {
    #[serde(default)]
    pub entries: Vec<PlanEntry>,
}

impl TomlFile for PlanToml {
    const FILE: &'static str = "plan.toml";

    fn validate(&self) -> Result<(), CnbError> {
        for (i, entry) in self.entries.iter().enumerate() {
            let field = |f: &str| format!("entries[{i}].{f}");
            if entry.providers.is_empty() {
                return Err(CnbError::field(
                    Self::FILE,
                    field("providers"),
                    "must list at least one buildpack or extension",
                ));
            }
            let Some(name) = entry.name() else {
                return Err(CnbError::field(
                    Self::FILE,
                    field("requires"),
                    "must list at least one requirement",
                ));
            };
            if let Some((j, other)) = entry
                .requires
                .iter()
                .enumerate()
                .find(|(_, r)| r.name != name)
            {
                return Err(CnbError::field(
                    Self::FILE,
                    field(&format!("requires[{j}].name")),
                    format!(
                        "is `{}` but the entry is for `{name}` (all requirements of an entry share one name)",
                        other.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The Buildpack Plan (`$CNB_BP_PLAN_PATH`): the entries a buildpack is asked to meet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildpackPlan {
    #[serde(default)]
    pub entries: Vec<Require>,
}

impl TomlFile for BuildpackPlan {
    const FILE: &'static str = "Buildpack Plan";
}

/// A plan entry the buildpack did not meet, deferred to the next provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmet {
    pub name: String,
}

/// A legacy bill-of-materials entry (`[[bom]]`, deprecated in Buildpack API 0.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BomEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

/// `<layers>/build.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildToml {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<Unmet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bom: Vec<BomEntry>,
}

impl BuildToml {
    /// Errors naming the first unmet entry whose name is not in the Buildpack Plan.
    pub fn check_against(&self, plan: &BuildpackPlan) -> Result<(), CnbError> {
        for (i, unmet) in self.unmet.iter().enumerate() {
            if !plan.entries.iter().any(|e| e.name == unmet.name) {
                return Err(CnbError::field(
                    Self::FILE,
                    format!("unmet[{i}].name"),
                    format!(
                        "is `{}`, which is not an entry of this buildpack's plan",
                        unmet.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl TomlFile for BuildToml {
    const FILE: &'static str = "build.toml";
}

/// `<layers>/store.toml`: buildpack data persisted across builds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreToml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<toml::Table>,
}

impl TomlFile for StoreToml {
    const FILE: &'static str = "store.toml";
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETECT_OUTPUT: &str = r#"
[[provides]]
name = "node"

[[requires]]
name = "node"
[requires.metadata]
version = "20.*"
version-source = ".nvmrc"

[[or]]
[[or.provides]]
name = "node"
[[or.provides]]
name = "yarn"

[[or.requires]]
name = "node"
[[or.requires]]
name = "yarn"
[or.requires.metadata]
version = "1.22"
"#;

    #[test]
    fn build_plan_round_trip() {
        let plan = BuildPlan::from_toml_str(DETECT_OUTPUT).unwrap();
        let alts = plan.alternatives();
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[1].provides[1].name, "yarn");
        assert_eq!(
            alts[0].requires[0].metadata.as_ref().unwrap()["version"].as_str(),
            Some("20.*")
        );
        let text = plan.to_toml_string().unwrap();
        assert_eq!(BuildPlan::from_toml_str(&text).unwrap(), plan);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn build_plan_errors() {
        assert_eq!(
            BuildPlan::from_toml_str("[[or]]\n[[or.requires]]\nname = \"\"\n")
                .unwrap_err()
                .to_string(),
            "invalid build plan: `or[0].requires[0].name` must not be empty"
        );
        assert!(
            BuildPlan::from_toml_str("").unwrap().alternatives()[0]
                .requires
                .is_empty()
        );
    }

    const PLAN: &str = r#"
[[entries]]
[[entries.providers]]
id = "heroku/nodejs-engine"
version = "3.0.0"
[[entries.providers]]
id = "samples/node-ext"
version = "0.1.0"
extension = true

[[entries.requires]]
name = "node"
[entries.requires.metadata]
version = "20.*"

[[entries.requires]]
name = "node"
"#;

    #[test]
    fn plan_toml_round_trip_and_rules() {
        let plan = PlanToml::from_toml_str(PLAN).unwrap();
        assert_eq!(plan.entries[0].name(), Some("node"));
        assert!(plan.entries[0].providers[1].extension);
        assert!(!plan.entries[0].providers[0].extension);
        let text = plan.to_toml_string().unwrap();
        assert_eq!(PlanToml::from_toml_str(&text).unwrap(), plan);
        assert!(PlanToml::from_toml_str("").unwrap().entries.is_empty());

        let mixed = format!("{PLAN}[[entries.requires]]\nname = \"npm\"\n");
        assert_eq!(
            PlanToml::from_toml_str(&mixed).unwrap_err().to_string(),
            "invalid plan.toml: `entries[0].requires[2].name` is `npm` but the entry is for `node` (all requirements of an entry share one name)"
        );
        let no_provider = "[[entries]]\nproviders = []\n[[entries.requires]]\nname = \"node\"\n";
        assert_eq!(
            PlanToml::from_toml_str(no_provider)
                .unwrap_err()
                .to_string(),
            "invalid plan.toml: `entries[0].providers` must list at least one buildpack or extension"
        );
    }

    #[test]
    fn buildpack_plan_build_and_store() {
        let bp_plan = BuildpackPlan::from_toml_str(
            "[[entries]]\nname = \"node\"\n[entries.metadata]\nversion = \"20\"\n",
        )
        .unwrap();
        let again = BuildpackPlan::from_toml_str(&bp_plan.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, bp_plan);

        let build = BuildToml::from_toml_str(
            "[[unmet]]\nname = \"node\"\n[[bom]]\nname = \"gcc\"\n[bom.metadata]\nversion = \"12\"\n",
        )
        .unwrap();
        assert_eq!(
            BuildToml::from_toml_str(&build.to_toml_string().unwrap()).unwrap(),
            build
        );
        assert!(build.check_against(&bp_plan).is_ok());
        let stray = BuildToml::from_toml_str("[[unmet]]\nname = \"ruby\"\n").unwrap();
        assert_eq!(
            stray.check_against(&bp_plan).unwrap_err().to_string(),
            "invalid build.toml: `unmet[0].name` is `ruby`, which is not an entry of this buildpack's plan"
        );

        let store = StoreToml::from_toml_str("[metadata]\nlast-sha = \"abc\"\n").unwrap();
        assert_eq!(
            StoreToml::from_toml_str(&store.to_toml_string().unwrap()).unwrap(),
            store
        );
    }
}
