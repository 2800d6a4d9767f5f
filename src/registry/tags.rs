//! Listing a repository's tags: `GET /v2/<repo>/tags/list`, following the
//! upstream's `Link: <...>; rel="next"` pages. A tag list is no pull on
//! Docker Hub (only manifest GETs are).

use http::{Method, header};
use reqwest::Url;
use serde::Deserialize;

use super::{RegistryClient, RegistryError, RetryPolicy, Upstream, check_status, same_origin};

/// All pages of one tag list together. Docker Hub's largest repositories
/// have tens of thousands of tags, well under a megabyte of JSON.
const MAX_TAG_LIST_BYTES: usize = 8 * 1024 * 1024;
/// Registries that page in small steps still finish well within this.
const MAX_TAG_LIST_PAGES: usize = 200;

#[derive(Deserialize)]
struct TagListPage {
    /// `null` for a repository without tags, on some registries.
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// Every tag of `repo`, in the upstream's order. Each page has the
    /// retry budget; the list as a whole falls over to the next upstream.
    pub async fn list_tags(
        &self,
        registry: &str,
        repo: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let mut route = self.route(registry)?;
        loop {
            let result = self
                .list_tags_from(route.upstream(), repo, route.retry_policy())
                .await;
            if !route.next_after(&result) {
                return result;
            }
        }
    }

    async fn list_tags_from(
        &self,
        up: &Upstream,
        repo: &str,
        policy: RetryPolicy,
    ) -> Result<Vec<String>, RegistryError> {
        let first = format!("{}/v2/{}/tags/list", up.url(), up.repository(repo));
        let origin = parse_url(&first)?;
        let what = format!("tag list of {repo}");
        let mut visited = std::collections::HashSet::from([first.clone()]);
        let mut url = first;
        let mut tags = Vec::new();
        let mut budget = MAX_TAG_LIST_BYTES;
        for _ in 0..MAX_TAG_LIST_PAGES {
            let (next, body) = policy
                .run(|| self.tag_list_page(up, repo, &url, &what, budget))
                .await?;
            budget = budget.saturating_sub(body.len());
            let page: TagListPage =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    url: url.clone(),
                    message: format!("invalid tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            let Some(next) = next else {
                return Ok(tags);
            };
            let next = parse_url(&url)?
                .join(&next)
                .map_err(|e| RegistryError::Protocol {
                    url: url.clone(),
                    message: format!("bad Link header {next:?}: {e}"),
                })?;
            // The next page carries our token: it stays with the registry.
            if !same_origin(&next, &origin) {
                return Err(RegistryError::Protocol {
                    url,
                    message: format!("the next page of the tag list is on another host ({next})"),
                });
            }
            url = next.to_string();
            if !visited.insert(url.clone()) {
                return Err(RegistryError::Protocol {
                    url,
                    message: "the tag list's pages link back to an earlier page".into(),
                });
            }
        }
        Err(RegistryError::Protocol {
            url,
            message: format!("the tag list has more than {MAX_TAG_LIST_PAGES} pages"),
        })
    }
    /// One page: its body (at most `budget` bytes) and the `rel="next"` link.
    async fn tag_list_page(
        &self,
        up: &Upstream,
        repo: &str,
        url: &str,
        what: &str,
        budget: usize,
    ) -> Result<(Option<String>, bytes::Bytes), RegistryError> {
        let resp = self
            .send(up, repo, Method::GET, url, Some("application/json"), None)
            .await?;
        let resp = check_status(resp, url, what).await?;
        let next = resp
            .headers()
            .get_all(header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link)
            .map(str::to_string);
        let body = resp.bytes(budget as u64).await.map_err(|e| match e {
            RegistryError::Protocol { url, .. } => RegistryError::Protocol {
                url,
                message: format!("the tag list is larger than {MAX_TAG_LIST_BYTES} bytes"),
            },
            other => other,
        })?;
        Ok((next, body))
    }
}

fn parse_url(url: &str) -> Result<Url, RegistryError> {
    Url::parse(url).map_err(|e| RegistryError::Protocol {
        url: url.to_string(),
        message: format!("invalid URL: {e}"),
    })
}

/// The target of the `rel="next"` entry of a `Link` header value
/// (`<url>; rel="next"`, possibly among other comma-separated links).
fn next_link(value: &str) -> Option<&str> {
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..].find('<').map_or(rest.len(), |i| close + i);
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            p.trim()
                .strip_prefix("rel=")
                .is_some_and(|r| r.trim_matches('"').split(' ').any(|r| r == "next"))
        });
        if is_next {
            return Some(target);
        }
        rest = &rest[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn next_links() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?n=1&last=x>;rel=next"#),
            Some("https://r.example/v2/a/tags/list?n=1&last=x")
        );
        assert_eq!(
            next_link(r#"</first>; rel="prev", </second>; rel="next""#),
            Some("/second")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<unclosed; rel=next"), None);
        assert_eq!(next_link(""), None);
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]
        /// No `Link` value panics; a target found lies inside its `<...>`.
        #[test]
        fn any_link_header(value in "\\PC{0,120}") {
            if let Some(target) = next_link(&value) {
                let wrapped = format!("<{target}>");
                proptest::prop_assert!(value.contains(&wrapped));
            }
        }
    }
}
