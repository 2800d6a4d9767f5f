//! Docker Hub's pull-quota headers: `ratelimit-limit: 100;w=21600`,
//! `ratelimit-remaining: 76;w=21600`, `docker-ratelimit-source: <ip>`, and the
//! `x-ratelimit-*` variants some replies carry instead.

use std::time::SystemTime;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// The quota window in seconds, from `w=`; not assumed.
    pub window_secs: Option<u64>,
    pub source: Option<String>,
    /// Seconds since the Unix epoch when the headers were seen.
    pub observed_at: u64,
}

impl RateLimit {
    /// Reads the quota headers from a reply; `None` when it carries none (an
    /// unlimited account, or a registry that is not Docker Hub).
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let limit = header(headers, "ratelimit-limit").map(parse_value);
        let remaining = header(headers, "ratelimit-remaining").map(parse_value);
        if limit.is_none() && remaining.is_none() {
            return None;
        }
        let source = header(headers, "docker-ratelimit-source").map(str::to_string);
        let window_secs = limit
            .and_then(|(_, w)| w)
            .or(remaining.and_then(|(_, w)| w));
        Some(RateLimit {
            limit: limit.and_then(|(n, _)| n),
            remaining: remaining.and_then(|(n, _)| n),
            window_secs,
            source,
            observed_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
    }
}

/// The documented name or its `x-` variant (HeaderMap names are already lowercase).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .or_else(|| headers.get(format!("x-{name}").as_str()))
        .and_then(|v| v.to_str().ok())
        .map(|v| unquote(v.trim()))
}

/// `100;w=21600` -> (Some(100), Some(21600)). Also takes the bare `100`, extra
/// parameters in any order (`100; comment="x";W=21600`), quoted values, and the
/// IETF draft's list form `100, 100;w=21600`: the count is the first item's,
/// the window the first `w=` of any item.
fn parse_value(v: &str) -> (Option<u64>, Option<u64>) {
    let mut items = v.split(',');
    let count = items
        .next()
        .and_then(|item| item.split(';').next())
        .and_then(|n| unquote(n.trim()).parse().ok());
    let window = v
        .split([',', ';'])
        .filter_map(|param| param.split_once('='))
        .filter(|(key, _)| key.trim().eq_ignore_ascii_case("w"))
        .find_map(|(_, w)| unquote(w.trim()).parse().ok());
    (count, window)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn documented_names() {
        let rl = RateLimit::from_headers(&headers(&[
            ("ratelimit-limit", "100;w=21600"),
            ("ratelimit-remaining", "76;w=21600"),
            ("docker-ratelimit-source", "192.0.2.1"),
        ]))
        .unwrap();
        assert_eq!(rl.limit, Some(100));
        assert_eq!(rl.remaining, Some(76));
        assert_eq!(rl.window_secs, Some(21600));
        assert_eq!(rl.source.as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn x_prefixed_and_other_windows() {
        let mut h = HeaderMap::new();
        h.insert("X-RateLimit-Limit", HeaderValue::from_static("200;w=3600"));
        h.insert("X-RateLimit-Remaining", HeaderValue::from_static("7"));
        let rl = RateLimit::from_headers(&h).unwrap();
        assert_eq!(
            (rl.limit, rl.remaining, rl.window_secs),
            (Some(200), Some(7), Some(3600))
        );
    }

    #[test]
    fn absent_headers_mean_unknown() {
        assert!(RateLimit::from_headers(&HeaderMap::new()).is_none());
    }

    #[test]
    fn odd_forms() {
        for (value, expected) in [
            ("100", (Some(100), None)),
            (" 100 ; w=21600 ", (Some(100), Some(21600))),
            ("100;comment=\"pulls\";W=3600", (Some(100), Some(3600))),
            ("100;w=\"21600\"", (Some(100), Some(21600))),
            ("\"100\";w=60", (Some(100), Some(60))),
            ("100, 100;w=21600", (Some(100), Some(21600))),
            ("100;q=1, 5000;w=86400", (Some(100), Some(86400))),
            ("w=21600", (None, Some(21600))),
            ("-1;w=x", (None, None)),
            ("", (None, None)),
        ] {
            assert_eq!(parse_value(value), expected, "{value:?}");
        }
    }

    #[test]
    fn source_and_remaining_alone() {
        let rl = RateLimit::from_headers(&headers(&[
            ("x-ratelimit-remaining", "0;w=21600"),
            ("docker-ratelimit-source", "\"3f2c1a\""),
        ]))
        .unwrap();
        assert_eq!(
            (rl.limit, rl.remaining, rl.window_secs),
            (None, Some(0), Some(21600))
        );
        assert_eq!(rl.source.as_deref(), Some("3f2c1a"));
        // A source alone is not a quota.
        assert!(RateLimit::from_headers(&headers(&[("docker-ratelimit-source", "x")])).is_none());
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]
        /// Whatever the spelling, extra parameters and their order, the figures
        /// that were sent are the figures read.
        #[test]
        fn sent_figures_are_read(
            limit: u64,
            remaining: u64,
            window: u64,
            extra in "[a-vx-z][a-z]{0,6}=[a-z0-9\"]{0,8}",
            window_first: bool,
            x_prefixed: bool,
        ) {
            let value = |n: u64| if window_first {
                format!("{n};w={window};{extra}")
            } else {
                format!("{n}; {extra} ;w={window}")
            };
            let prefix = if x_prefixed { "X-RateLimit" } else { "RateLimit" };
            let mut h = HeaderMap::new();
            for (name, n) in [("Limit", limit), ("Remaining", remaining)] {
                h.insert(
                    http::HeaderName::try_from(format!("{prefix}-{name}")).unwrap(),
                    HeaderValue::try_from(value(n)).unwrap(),
                );
            }
            let rl = RateLimit::from_headers(&h).unwrap();
            proptest::prop_assert_eq!(
                (rl.limit, rl.remaining, rl.window_secs),
                (Some(limit), Some(remaining), Some(window))
            );
        }
    }
}
