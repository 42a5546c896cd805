//! The registry's catalog (`GET /v2/_catalog`), paged by its `Link` header: the repositories under a prefix, for
//! callers that patch "everything in this registry".

use oci_client::{Reference, RegistryOperation};

use super::error::{ErrorKind, Failure};
use super::{Registry, RegistryError};

/// Repositories asked for per page (the distribution spec lets a registry return fewer).
const PAGE: usize = 1000;
/// A catalog page's body is a list of names: 16 MiB is far past any real one.
pub(super) const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Pages followed at most (a registry whose `Link` loops is cut off here).
const MAX_PAGES: usize = 10_000;

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    repositories: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Tags {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// The registry's repositories whose names start with `prefix` (a path: `team` matches `team/app` and
    /// `team`, not `teamwork`), sorted.
    pub fn catalog(&self, prefix: &str) -> Result<Vec<String>, RegistryError> {
        let prefix = prefix.trim_matches('/');
        let probe = if prefix.is_empty() { "library" } else { prefix };
        let mut names = Vec::new();
        for body in self.pages(probe, "/v2/_catalog", &format!("/v2/_catalog?n={PAGE}"))? {
            let page: Page = parse(&body, &self.host)?;
            names.extend(page.repositories.into_iter().filter(|n| {
                prefix.is_empty()
                    || n == prefix
                    || n.strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            }));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The tags of `repository`, sorted.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let base = format!("/v2/{repository}/tags/list");
        let mut tags = Vec::new();
        for body in self.pages(repository, &base, &format!("{base}?n={PAGE}"))? {
            let page: Tags = parse(&body, &self.host)?;
            tags.extend(page.tags.unwrap_or_default());
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// The bodies of a paged listing, from `first` on, following `Link` headers that stay under `base`.
    fn pages(
        &self,
        repository: &str,
        base: &str,
        first: &str,
    ) -> Result<Vec<Vec<u8>>, RegistryError> {
        let probe = Reference::with_tag(self.host.clone(), repository.to_owned(), "latest".into());
        let auth = self.authenticate(&probe, RegistryOperation::Pull)?;
        let what = format!("{}{base}", self.host);
        let mut next = Some(first.to_owned());
        let mut bodies = Vec::new();
        while let Some(path) = next.take() {
            if bodies.len() >= MAX_PAGES {
                return Err(RegistryError::Request {
                    operation: "list",
                    reference: what,
                    kind: ErrorKind::Other,
                    message: format!(
                        "more than {MAX_PAGES} pages; the registry's `Link` header loops"
                    ),
                });
            }
            let (body, link) =
                self.retry("list", &what, || self.http.page(&self.host, &path, &auth))?;
            bodies.push(body);
            next = link.as_deref().and_then(|l| next_page(l, base));
        }
        Ok(bodies)
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], host: &str) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| RegistryError::Request {
        operation: "list",
        reference: host.to_owned(),
        kind: ErrorKind::Other,
        message: format!("the listing is not the JSON the distribution spec defines: {e}"),
    })
}

/// The path of a `Link: </v2/_catalog?last=x&n=100>; rel="next"` header (absolute URLs are cut to their path),
/// if it stays under `base`.
fn next_page(link: &str, base: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        params.contains("rel=\"next\"").then_some(())?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let path = match target.find("://") {
            Some(i) => &target[target[i + 3..].find('/').map(|j| i + 3 + j)?..],
            None => target,
        };
        path.starts_with(base).then(|| path.to_owned())
    })
}

impl Failure {
    pub(super) fn catalog_too_large() -> Self {
        Self::new(
            ErrorKind::TooLarge,
            format!("a catalog page is over {MAX_PAGE_BYTES} bytes"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_page("</v2/_catalog?last=b&n=2>; rel=\"next\"", "/v2/_catalog").as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(
            next_page(
                "<https://r.example/v2/_catalog?last=b>; rel=\"next\"",
                "/v2/_catalog"
            )
            .as_deref(),
            Some("/v2/_catalog?last=b")
        );
        assert_eq!(
            next_page("</elsewhere>; rel=\"next\"", "/v2/_catalog"),
            None
        );
        assert_eq!(
            next_page("</v2/_catalog?last=b>; rel=\"prev\"", "/v2/_catalog"),
            None
        );
    }
}
