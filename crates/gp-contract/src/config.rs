//! The platform config `goldenpath.toml` at the contracts repository root: environments (cluster, namespace
//! pattern, ingress domain), the container registry, builders and policy. Built-in defaults apply when absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::ids::{BuilderName, EnvName, Hostname};
use crate::model::BindingType;
use crate::quantity::Quantity;
use crate::source::SourceFile;

pub const CONFIG_FILE: &str = "goldenpath.toml";
/// The largest `goldenpath.toml` read, in bytes: bigger is refused.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Validated platform config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformConfig {
    /// Where it came from (`None`: built-in defaults).
    pub path: Option<PathBuf>,
    pub registry: String,
    pub environments: BTreeMap<EnvName, Environment>,
    /// Contract builder name -> kpack `ClusterBuilder` name.
    pub builders: BTreeMap<BuilderName, String>,
    pub policy: Policy,
    pub gitops: Gitops,
    /// `[kpack]`: the buildpacks and stack of the scaffolded kpack resources.
    pub kpack: crate::kpack_config::KpackBuildpacks,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Environment {
    pub cluster: Cluster,
    /// Namespace pattern with `{application}`, `{environment}` and `{owner}` placeholders.
    pub namespace: String,
    pub domain: Hostname,
    pub ingress_class: String,
    pub min_replicas: u32,
}

/// Argo CD destination: a cluster API server URL or a registered cluster name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Cluster {
    Server(String),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub max_replicas: u32,
    pub min_memory: Quantity,
    pub max_memory: Quantity,
    pub max_cpu: Quantity,
    pub binding_types: Vec<BindingType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gitops {
    /// The `GitOps` repository Argo CD reads.
    pub repo_url: String,
    pub revision: String,
    /// Directory of the rendered tree inside that repository.
    pub path: String,
    pub argocd_project: String,
    pub argocd_namespace: String,
}

const PLACEHOLDERS: [&str; 3] = ["{application}", "{environment}", "{owner}"];

impl Default for PlatformConfig {
    fn default() -> Self {
        let env = |name: &str, min_replicas| {
            (
                name.parse::<EnvName>()
                    .unwrap_or_else(|_| unreachable!("valid name")),
                Environment {
                    cluster: Cluster::Server("https://kubernetes.default.svc".to_owned()),
                    namespace: "{application}-{environment}".to_owned(),
                    domain: format!("{name}.goldenpath.io")
                        .parse()
                        .unwrap_or_else(|_| unreachable!("valid host")),
                    ingress_class: "nginx".to_owned(),
                    min_replicas,
                },
            )
        };
        Self {
            path: None,
            registry: "localhost:5000/goldenpath".to_owned(),
            environments: [
                env("dev", 1),
                env("test", 1),
                env("staging", 1),
                env("prod", 2),
            ]
            .into(),
            builders: [(crate::model::default_builder(), "default".to_owned())].into(),
            policy: Policy::default(),
            gitops: Gitops::default(),
            kpack: crate::kpack_config::KpackBuildpacks::default(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        let q = |s: &str| {
            s.parse::<Quantity>()
                .unwrap_or_else(|_| unreachable!("valid quantity"))
        };
        Self {
            max_replicas: 20,
            min_memory: q("64Mi"),
            max_memory: q("8Gi"),
            max_cpu: q("4"),
            binding_types: BindingType::ALL.to_vec(),
        }
    }
}

impl Default for Gitops {
    fn default() -> Self {
        Self {
            repo_url: "https://github.com/goldenpath-io/platform".to_owned(),
            revision: "main".to_owned(),
            path: "gitops".to_owned(),
            argocd_project: "default".to_owned(),
            argocd_namespace: "argocd".to_owned(),
        }
    }
}

impl PlatformConfig {
    /// The namespace for an application in an environment.
    #[must_use]
    pub fn namespace(
        &self,
        env: &Environment,
        environment: &str,
        application: &str,
        owner: &str,
    ) -> String {
        env.namespace
            .replace("{application}", application)
            .replace("{environment}", environment)
            .replace("{owner}", owner)
    }

    /// The config that applies to `path`: the nearest `goldenpath.toml` in it or its ancestors. Whatever is there
    /// counts, not only a regular file: a directory, FIFO or link named `goldenpath.toml` is then refused by name
    /// when loaded, never silently skipped for the defaults.
    #[must_use]
    pub fn find_for(path: &Path) -> Option<PathBuf> {
        let start = if path.is_dir() { path } else { path.parent()? };
        let abs = std::path::absolute(start).ok()?;
        abs.ancestors()
            .map(|d| d.join(CONFIG_FILE))
            .find(|p| p.symlink_metadata().is_ok())
            .map(|p| relative_to_cwd(&p))
    }

    /// Loads and validates a config file (a regular file of at most [`MAX_CONFIG_BYTES`]); every problem is a
    /// diagnostic pointing into the file.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let text = gp_cnb::read_input_text(path, MAX_CONFIG_BYTES).map_err(|e| {
            vec![Diagnostic::error(
                Code::Io,
                path,
                crate::source::Span::default(),
                e.to_string(),
            )]
        })?;
        Self::parse(&SourceFile::new(path, text))
    }

    pub fn parse(src: &SourceFile) -> Result<Self, Vec<Diagnostic>> {
        let raw: RawConfig = match toml::from_str(src.text()) {
            Ok(raw) => raw,
            Err(e) => {
                let span = src.span_from_range(e.span().unwrap_or(0..0));
                let message = e.message().trim().to_owned();
                let hint = unknown_key_hint(&message);
                return Err(vec![
                    Diagnostic::error(
                        Code::Config,
                        src.path(),
                        span,
                        format!("invalid `{CONFIG_FILE}`: {message}"),
                    )
                    .field(key_path_at(src, span.start.offset))
                    .maybe_hint(hint),
                ]);
            }
        };
        let mut cx = ConfigCx {
            src,
            diags: Vec::new(),
        };
        let config = cx.build(raw);
        if cx.diags.is_empty() {
            Ok(config)
        } else {
            Err(cx.diags)
        }
    }
}

/// The dotted key at a byte offset: the enclosing `[table]` header plus the key on that line.
fn key_path_at(src: &SourceFile, offset: usize) -> String {
    let text = src.text();
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    let key = if key.starts_with('[') { "" } else { key };
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t,
        (None, _) => key.to_owned(),
    }
}

fn relative_to_cwd(p: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| p.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
}

/// serde says "unknown field `x`, expected one of `a`, `b`": turn that into a did-you-mean.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    did_you_mean(field, candidates.iter().copied()).map(|m| format!("did you mean `{m}`?"))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawConfig {
    registry: Option<RawRegistry>,
    environments: Option<BTreeMap<Spanned<String>, RawEnvironment>>,
    builders: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    policy: Option<RawPolicy>,
    gitops: Option<RawGitops>,
    kpack: Option<Spanned<crate::kpack_config::RawKpack>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawRegistry {
    prefix: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawEnvironment {
    cluster: Cluster,
    namespace: Option<Spanned<String>>,
    domain: Spanned<String>,
    ingress_class: Option<String>,
    min_replicas: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawPolicy {
    max_replicas: Option<u32>,
    min_memory: Option<Spanned<String>>,
    max_memory: Option<Spanned<String>>,
    max_cpu: Option<Spanned<String>>,
    binding_types: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawGitops {
    repo_url: Option<Spanned<String>>,
    revision: Option<String>,
    path: Option<String>,
    argocd_project: Option<String>,
    argocd_namespace: Option<String>,
}

struct ConfigCx<'a> {
    src: &'a SourceFile,
    diags: Vec<Diagnostic>,
}

impl ConfigCx<'_> {
    fn err(&mut self, field: &str, range: std::ops::Range<usize>, message: String, hint: &str) {
        let span = self.src.span_from_range(range);
        self.diags.push(
            Diagnostic::error(Code::Config, self.src.path(), span, message)
                .field(field)
                .hint(hint),
        );
    }

    fn parse_spanned<T: std::str::FromStr<Err = crate::ids::Invalid>>(
        &mut self,
        field: &str,
        v: &Spanned<String>,
    ) -> Option<T> {
        match v.get_ref().parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                let hint = e.hint.unwrap_or_default();
                self.err(field, v.span(), format!("`{field}`: {}", e.message), &hint);
                None
            }
        }
    }

    fn build(&mut self, raw: RawConfig) -> PlatformConfig {
        let mut config = PlatformConfig {
            path: Some(self.src.path().to_path_buf()),
            ..PlatformConfig::default()
        };
        if let Some(r) = raw.registry {
            self.check_registry(&r.prefix);
            r.prefix
                .get_ref()
                .trim_end_matches('/')
                .clone_into(&mut config.registry);
        }
        if let Some(envs) = raw.environments {
            config.environments = self.environments(envs);
        }
        if let Some(builders) = raw.builders {
            config.builders = builders
                .into_iter()
                .filter_map(|(k, v)| {
                    let name = self.parse_spanned::<BuilderName>("builders", &k)?;
                    let target =
                        self.parse_spanned::<BuilderName>(&format!("builders.{name}"), &v)?;
                    Some((name, target.to_string()))
                })
                .collect();
        }
        if let Some(p) = raw.policy {
            self.policy(p, &mut config.policy);
        }
        if let Some(k) = raw.kpack {
            let whole = k.span();
            match crate::kpack_config::check(k.into_inner(), whole) {
                Ok(kpack) => config.kpack = kpack,
                Err(problems) => {
                    for p in problems {
                        self.err(&p.field, p.span, p.message, p.hint);
                    }
                }
            }
        }
        if let Some(g) = raw.gitops {
            if let Some(url) = g.repo_url
                && self
                    .parse_spanned::<crate::ids::GitUrl>("gitops.repo-url", &url)
                    .is_some()
            {
                config.gitops.repo_url = url.into_inner();
            }
            let d = &mut config.gitops;
            d.revision = g.revision.unwrap_or(std::mem::take(&mut d.revision));
            d.path = g.path.unwrap_or(std::mem::take(&mut d.path));
            d.argocd_project = g
                .argocd_project
                .unwrap_or(std::mem::take(&mut d.argocd_project));
            d.argocd_namespace = g
                .argocd_namespace
                .unwrap_or(std::mem::take(&mut d.argocd_namespace));
        }
        config
    }

    fn check_registry(&mut self, prefix: &Spanned<String>) {
        let p = prefix.get_ref().trim_end_matches('/');
        let host = p.split('/').next().unwrap_or("");
        let host_ok = !host.is_empty()
            && (host.contains('.') || host.contains(':') || host == "localhost")
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        let path_ok = p.split('/').skip(1).all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
                })
        });
        if !(host_ok && path_ok) || p.contains("://") {
            self.err(
                "registry.prefix",
                prefix.span(),
                format!(
                    "`registry.prefix` `{}` is not a registry host with an optional path",
                    prefix.get_ref()
                ),
                "use e.g. `123456789012.dkr.ecr.eu-west-2.amazonaws.com` (no scheme, no tag)",
            );
        }
    }

    fn environments(
        &mut self,
        envs: BTreeMap<Spanned<String>, RawEnvironment>,
    ) -> BTreeMap<EnvName, Environment> {
        let mut out = BTreeMap::new();
        for (k, raw) in envs {
            let Some(name) = self.parse_spanned::<EnvName>("environments", &k) else {
                continue;
            };
            let field = format!("environments.{name}");
            let domain = self.parse_spanned::<Hostname>(&format!("{field}.domain"), &raw.domain);
            let namespace = raw.namespace.map_or_else(
                || "{application}-{environment}".to_owned(),
                |ns| self.namespace(&field, &ns),
            );
            match &raw.cluster {
                Cluster::Server(s) if !s.starts_with("https://") => {
                    let range = k.span();
                    self.err(&format!("{field}.cluster.server"), range, format!("`{field}.cluster.server` `{s}` is not an https URL"), "use the API server URL, e.g. `https://kubernetes.default.svc`, or `cluster = { name = \"...\" }`");
                }
                _ => {}
            }
            if let Some(domain) = domain {
                out.insert(
                    name,
                    Environment {
                        cluster: raw.cluster,
                        namespace,
                        domain,
                        ingress_class: raw.ingress_class.unwrap_or_else(|| "nginx".to_owned()),
                        min_replicas: raw.min_replicas.unwrap_or(1),
                    },
                );
            }
        }
        out
    }

    fn namespace(&mut self, field: &str, ns: &Spanned<String>) -> String {
        let mut probe = ns.get_ref().clone();
        for p in PLACEHOLDERS {
            probe = probe.replace(p, "x");
        }
        let ok = probe.len() <= 63
            && !probe.is_empty()
            && probe
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !probe.starts_with('-')
            && !probe.ends_with('-');
        if !ok {
            self.err(
                &format!("{field}.namespace"),
                ns.span(),
                format!("`{field}.namespace` `{}` does not make a valid namespace", ns.get_ref()),
                "use lower-case letters, digits, `-` and the placeholders {application}, {environment}, {owner}",
            );
        }
        ns.get_ref().clone()
    }

    fn policy(&mut self, p: RawPolicy, out: &mut Policy) {
        out.max_replicas = p.max_replicas.unwrap_or(out.max_replicas);
        for (field, value, slot) in [
            ("policy.min-memory", p.min_memory, &mut out.min_memory),
            ("policy.max-memory", p.max_memory, &mut out.max_memory),
            ("policy.max-cpu", p.max_cpu, &mut out.max_cpu),
        ] {
            if let Some(v) = value
                && let Some(q) = self.parse_spanned::<Quantity>(field, &v)
            {
                *slot = q;
            }
        }
        if let Some(types) = p.binding_types {
            out.binding_types = types
                .iter()
                .filter_map(|t| {
                    let parsed = t.get_ref().parse::<BindingType>().ok();
                    if parsed.is_none() {
                        let all: Vec<&str> = BindingType::ALL.iter().map(|b| b.as_str()).collect();
                        self.err(
                            "policy.binding-types",
                            t.span(),
                            format!(
                                "`policy.binding-types`: `{}` is not a binding type",
                                t.get_ref()
                            ),
                            &format!("use some of {}", crate::decode::list(&all)),
                        );
                    }
                    parsed
                })
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PlatformConfig, Vec<Diagnostic>> {
        PlatformConfig::parse(&SourceFile::new("goldenpath.toml", s.to_owned()))
    }

    #[test]
    fn empty_file_gives_defaults_with_path() {
        let c = parse("").unwrap();
        assert_eq!(c.environments.len(), 4);
        assert_eq!(c.policy, Policy::default());
    }

    #[test]
    fn full_config_parses() {
        let c = parse(
            r#"
[registry]
prefix = "123456789012.dkr.ecr.eu-west-2.amazonaws.com"
[environments.dev]
cluster = { server = "https://kubernetes.default.svc" }
domain = "dev.example.com"
[environments.prod]
cluster = { name = "prod-eks" }
namespace = "{owner}-{application}"
domain = "example.com"
min-replicas = 3
[builders]
default = "paketo-base"
[policy]
max-cpu = "2"
binding-types = ["database"]
"#,
        )
        .unwrap();
        assert_eq!(c.environments.len(), 2);
        assert_eq!(
            c.builders.values().next().map(String::as_str),
            Some("paketo-base")
        );
        assert_eq!(c.policy.binding_types, vec![BindingType::Database]);
    }

    #[test]
    fn unknown_keys_get_suggestions_and_positions() {
        let e = parse("[policy]\nmax-replica = 3\n").unwrap_err();
        assert_eq!(e[0].span.start.line, 2);
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `max-replicas`?"));
    }

    #[test]
    fn semantic_errors_point_at_values() {
        let e = parse(
            "[environments.dev]\ncluster = { server = \"https://x\" }\ndomain = \"Not A Domain\"\n",
        )
        .unwrap_err();
        assert_eq!(e[0].span.start.line, 3);
        assert_eq!(e[0].field.as_deref(), Some("environments.dev.domain"));
    }
}
