//! No `Retry-After` or quota header may panic anything down the line: an
//! arbitrary value goes through the client's parsing, the pause after a 429,
//! and the message a paused pull prints (`server::errors` tests the answer
//! `dpx serve` gives).

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::quota::{ANONYMOUS, Quota, rfc3339};
use crate::registry::retry::parse_retry_after;
use crate::registry::{Asked, RateLimit, UpstreamReply};

/// HTTP dates up to the last one httpdate takes (31 Dec 9999), seconds, and noise.
fn retry_after() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..253_402_300_800).prop_map(|secs| httpdate::fmt_http_date(
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        )),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[ -~]{0,40}",
    ]
}

/// `ratelimit-*` values with any counts and windows (`w=` up to u64::MAX).
fn quota_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(n, w)| format!("{n};w={w}")),
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(crate::proptest_cases::config())]
    #[test]
    fn a_429_with_any_retry_after_or_window_pauses_and_says_until_when(
        value in retry_after(),
        limit in quota_value(),
        remaining in quota_value(),
    ) {
        let mut headers = HeaderMap::new();
        for (name, v) in [("ratelimit-limit", &limit), ("ratelimit-remaining", &remaining)] {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.insert(name, v);
            }
        }
        let retry_after = parse_retry_after(&value, SystemTime::now());
        let quota = Quota::default();
        quota.observe(&UpstreamReply {
            registry: "docker.io".into(),
            account: None,
            asked: Asked::ManifestGet,
            status: 429,
            rate_limit: RateLimit::from_headers(&headers),
            retry_after,
        });
        // A 429 to a GET always pauses; the message says until when.
        let stop = quota.take_pull("docker.io", ANONYMOUS).err();
        prop_assert!(stop.is_some());
        if let Some(stop) = stop {
            let _ = stop.to_string();
            let _ = stop.retry_at().map(rfc3339);
            let _ = super::FetchError::Quota(stop).to_string();
        }
    }

    #[test]
    fn any_time_prints(secs in any::<u64>()) {
        prop_assert!(!rfc3339(secs).is_empty());
    }
}
