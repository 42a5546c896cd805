//! `[kpack]` in `goldenpath.toml`: which buildpacks and stack the scaffolded kpack `ClusterStore`,
//! `ClusterStack` and `ClusterBuilder`s use -- Paketo's (the default), or our own buildpackages and stack
//! images (`goldenpath`), named by digest so that a cluster builds with exactly what the platform team published.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The buildpacks behind the cluster's builders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "buildpacks")]
pub enum KpackBuildpacks {
    /// Paketo's language families and Jammy stack (by tag, as Paketo publishes them).
    #[default]
    Paketo,
    /// The project's own buildpackages (`goldenpath buildpack package`) and stack images (`goldenpath stack build`).
    Goldenpath(GoldenpathKpack),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoldenpathKpack {
    /// Buildpackage images, each `REPOSITORY@sha256:...`.
    pub store: Vec<String>,
    /// The buildpack ids in detection order (the `default` builder's order; a builder named after a language gets
    /// that one).
    pub order: Vec<String>,
    pub stack_id: String,
    pub build_image: String,
    pub run_image: String,
}

/// The default stack's id (`stacks/bookworm/stack.toml`).
pub const GOLDENPATH_STACK_ID: &str = "io.goldenpath.stacks.bookworm";
/// The built-in buildpacks, in the default builder's order.
pub const GOLDENPATH_ORDER: [&str; 2] = ["io.goldenpath.python", "io.goldenpath.nodejs"];

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RawKpack {
    pub buildpacks: Option<Spanned<String>>,
    #[serde(default)]
    pub store: Vec<Spanned<String>>,
    #[serde(default)]
    pub order: Vec<String>,
    pub stack_id: Option<String>,
    pub build_image: Option<Spanned<String>>,
    pub run_image: Option<Spanned<String>>,
}

/// A problem with `[kpack]`: the field, where, the message and the fix.
pub(crate) struct KpackProblem {
    pub field: String,
    pub span: std::ops::Range<usize>,
    pub message: String,
    pub hint: &'static str,
}

/// `REPOSITORY@sha256:<64 hex>`: a reference that names one image's content.
fn is_digest_reference(s: &str) -> bool {
    s.split_once("@sha256:").is_some_and(|(repo, hex)| {
        !repo.is_empty()
            && !repo.contains("://")
            && hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

const DIGEST_HINT: &str = "publish it (`goldenpath image copy`, `goldenpath buildpack package REF`) and write the reference with its digest, e.g. `registry.example/goldenpath/python@sha256:<64 hex digits>`";

pub(crate) fn check(
    raw: RawKpack,
    whole: std::ops::Range<usize>,
) -> Result<KpackBuildpacks, Vec<KpackProblem>> {
    let mut problems = Vec::new();
    let which = raw
        .buildpacks
        .as_ref()
        .map_or("paketo", |b| b.get_ref().as_str());
    match which {
        "paketo" => {
            if !raw.store.is_empty() || raw.build_image.is_some() || raw.run_image.is_some() {
                problems.push(KpackProblem {
                    field: "kpack".into(),
                    span: whole,
                    message: "`kpack.store`, `kpack.build-image` and `kpack.run-image` apply to `buildpacks = \"goldenpath\"` only".into(),
                    hint: "add `buildpacks = \"goldenpath\"`, or remove them to use Paketo's",
                });
            }
            return if problems.is_empty() {
                Ok(KpackBuildpacks::Paketo)
            } else {
                Err(problems)
            };
        }
        "goldenpath" => {}
        other => {
            let span = raw.buildpacks.as_ref().map_or(whole.clone(), Spanned::span);
            problems.push(KpackProblem {
                field: "kpack.buildpacks".into(),
                span,
                message: format!("`kpack.buildpacks` is `{other}`: it is `paketo` or `goldenpath`"),
                hint: "write `buildpacks = \"goldenpath\"` for GoldenPath's own buildpackages, or leave it out for Paketo's",
            });
            return Err(problems);
        }
    }
    if raw.store.is_empty() {
        problems.push(KpackProblem {
            field: "kpack.store".into(),
            span: whole.clone(),
            message:
                "`buildpacks = \"goldenpath\"` needs `store`: the buildpackage images, by digest"
                    .into(),
            hint: DIGEST_HINT,
        });
    }
    for (n, s) in raw.store.iter().enumerate() {
        if !is_digest_reference(s.get_ref()) {
            problems.push(KpackProblem {
                field: format!("kpack.store[{n}]"),
                span: s.span(),
                message: format!(
                    "`kpack.store[{n}]` `{}` is not a digest reference",
                    s.get_ref()
                ),
                hint: DIGEST_HINT,
            });
        }
    }
    let mut image = |field: &str, v: Option<&Spanned<String>>| -> String {
        match v {
            Some(v) if is_digest_reference(v.get_ref()) => v.get_ref().clone(),
            Some(v) => {
                problems.push(KpackProblem {
                    field: format!("kpack.{field}"),
                    span: v.span(),
                    message: format!(
                        "`kpack.{field}` `{}` is not a digest reference",
                        v.get_ref()
                    ),
                    hint: DIGEST_HINT,
                });
                String::new()
            }
            None => {
                problems.push(KpackProblem {
                    field: format!("kpack.{field}"),
                    span: whole.clone(),
                    message: format!("`buildpacks = \"goldenpath\"` needs `{field}`, by digest"),
                    hint: DIGEST_HINT,
                });
                String::new()
            }
        }
    };
    let build_image = image("build-image", raw.build_image.as_ref());
    let run_image = image("run-image", raw.run_image.as_ref());
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(KpackBuildpacks::Goldenpath(GoldenpathKpack {
        store: raw.store.into_iter().map(Spanned::into_inner).collect(),
        order: if raw.order.is_empty() {
            GOLDENPATH_ORDER.iter().map(|s| (*s).to_owned()).collect()
        } else {
            raw.order
        },
        stack_id: raw
            .stack_id
            .unwrap_or_else(|| GOLDENPATH_STACK_ID.to_owned()),
        build_image,
        run_image,
    }))
}
