//! `GET /v2/<name>/tags/list`: the upstream's whole list (through the cache,
//! with the tag TTL), sorted and paged here with `n` and `last` the way the
//! distribution registry pages it, `Link: <...>; rel="next"` included.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, Uri, header};

use super::errors::{ApiError, ErrorCode};
use super::routes::{Image, TagPage};
use super::{Body, full};
use crate::fetch::CacheStatus;
use crate::fetch::Fetcher;

pub async fn respond(
    fetcher: &Fetcher,
    ttl: Duration,
    image: &Image,
    name: &str,
    page: &TagPage,
    uri: &Uri,
) -> Result<(Response<Body>, CacheStatus), ApiError> {
    let what = format!("tag list of {}/{}", image.registry, image.repository);
    let list = fetcher
        .tag_list(&image.registry, &image.repository, ttl)
        .await
        // An outage is an honest 503: no client shows a tag list's error body
        // for a 4xx either (skopeo prints only the status), and a 404 would
        // claim the repository does not exist.
        .map_err(|e| ApiError::from_fetch(&e, &what, ErrorCode::NameUnknown))?;
    let status = list.freshness.cache_status();
    let (tags, next) = paginate(list.tags, page);
    let body = serde_json::json!({ "name": name, "tags": tags }).to_string();
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(super::DPX_CACHE, status.as_str());
    if let (Some(n), Some(last)) = (page.n, next) {
        resp = resp.header(header::LINK, next_link(uri, n, &last));
    }
    let resp = resp
        .body(full(Bytes::from(body)))
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    // A stale answer was logged where the upstream failed, once.
    Ok((resp, status))
}

/// Sorts, keeps the tags after `last` (which need not exist), and at most `n`
/// of them; returns the page and, when more follow, the `last` of the next.
fn paginate(mut tags: Vec<String>, page: &TagPage) -> (Vec<String>, Option<String>) {
    tags.sort();
    tags.dedup();
    if let Some(last) = &page.last {
        let after = tags.partition_point(|t| t <= last);
        tags.drain(..after);
    }
    match page.n {
        // As in the distribution registry, `n=0` is an empty page with no next.
        Some(0) => (Vec::new(), None),
        Some(n) if n < tags.len() => {
            tags.truncate(n);
            let next = tags.last().cloned();
            (tags, next)
        }
        _ => (tags, None),
    }
}

/// `</v2/<name>/tags/list?last=..&n=..>; rel="next"`, keeping the request's
/// other parameters (containerd's `ns=` must survive to the next page).
fn next_link(uri: &Uri, n: usize, last: &str) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("last", last);
    query.append_pair("n", &n.to_string());
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k != "n" && k != "last" {
            query.append_pair(&k, &v);
        }
    }
    format!("<{}?{}>; rel=\"next\"", uri.path(), query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: Option<usize>, last: Option<&str>) -> TagPage {
        TagPage {
            n,
            last: last.map(str::to_string),
        }
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_are_sorted_and_last_is_exclusive() {
        let all = tags(&["v2", "b", "Z-up", "10", "a", "_x", "a"]);
        assert_eq!(
            paginate(all.clone(), &page(None, None)),
            (tags(&["10", "Z-up", "_x", "a", "b", "v2"]), None)
        );
        assert_eq!(
            paginate(all.clone(), &page(Some(2), None)),
            (tags(&["10", "Z-up"]), Some("Z-up".into()))
        );
        assert_eq!(
            paginate(all.clone(), &page(Some(2), Some("Z-up"))),
            (tags(&["_x", "a"]), Some("a".into()))
        );
        // The last page: no next.
        assert_eq!(
            paginate(all.clone(), &page(Some(2), Some("a"))),
            (tags(&["b", "v2"]), None)
        );
        assert_eq!(
            paginate(all.clone(), &page(Some(10), Some("a"))),
            (tags(&["b", "v2"]), None)
        );
        // `last` that is no tag: the tags sorting after it.
        assert_eq!(
            paginate(all.clone(), &page(None, Some("aa"))),
            (tags(&["b", "v2"]), None)
        );
        assert_eq!(
            paginate(all.clone(), &page(None, Some("zzz"))),
            (vec![], None)
        );
        assert_eq!(paginate(all, &page(Some(0), None)), (vec![], None));
        assert_eq!(paginate(vec![], &page(Some(3), None)), (vec![], None));
    }

    #[test]
    fn next_links_keep_other_parameters() {
        let uri: Uri = "/v2/library/demo/tags/list?n=2&ns=docker.io"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&uri, 2, "v1"),
            "</v2/library/demo/tags/list?last=v1&n=2&ns=docker.io>; rel=\"next\""
        );
        let uri: Uri = "/v2/a/tags/list?last=x&n=1".parse().unwrap();
        assert_eq!(
            next_link(&uri, 1, "a+b"),
            "</v2/a/tags/list?last=a%2Bb&n=1>; rel=\"next\""
        );
    }
}
