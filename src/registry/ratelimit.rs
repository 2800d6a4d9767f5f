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
        .map(str::trim)
}

/// `100;w=21600` -> (Some(100), Some(21600)); the integer is the part before `;`.
fn parse_value(v: &str) -> (Option<u64>, Option<u64>) {
    let mut parts = v.split(';');
    let count = parts.next().and_then(|n| n.trim().parse().ok());
    let window = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok());
    (count, window)
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
}
