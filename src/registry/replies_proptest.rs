//! No upstream reply may panic dpx: arbitrary token replies, challenges,
//! Retry-After values, rate-limit headers, error bodies and manifest headers
//! go through the same parsing the client uses.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use proptest::prelude::*;

use super::retry::{RetryPolicy, parse_retry_after};
use super::upstream_token::{Challenge, TokenCache, TokenResponse};
use super::{Failure, ManifestHead, RateLimit, sniff_media_type, status_error};

/// Header values as a server may send them: any bytes HTTP allows in a value.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        "[0-9]{1,25}(;w=[0-9]{0,25})?".prop_map(String::into_bytes),
    ]
}

fn headers(pairs: &[(&str, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    map
}

proptest! {
    #![proptest_config(crate::proptest_cases::config())]
    #[test]
    fn token_replies(
        raw in proptest::collection::vec(any::<u8>(), 0..200),
        token in "[ -~]{0,20}",
        expires in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            Just("1e400".to_string()),
            Just("null".to_string()),
        ],
    ) {
        let _ = TokenResponse::parse(&raw).map(TokenResponse::into_token);
        let body = format!(r#"{{"token":{},"expires_in":{expires}}}"#, serde_json::json!(token));
        if let Ok(Some((t, lifetime))) = TokenResponse::parse(body.as_bytes()).map(TokenResponse::into_token) {
            prop_assert!(lifetime >= Duration::from_secs(60));
            prop_assert!(lifetime <= Duration::from_secs(24 * 60 * 60));
            let cache = TokenCache::default();
            cache.put("r", "s", t.clone(), lifetime);
            prop_assert_eq!(cache.get("r", "s"), Some(t));
        }
    }

    #[test]
    fn challenges(
        raw in proptest::collection::vec("[ -~]{0,80}", 0..3),
        realm in "[a-zA-Z0-9:/._-]{1,30}",
        service in "[a-zA-Z0-9._-]{0,20}",
    ) {
        let _ = Challenge::parse(raw.iter().map(String::as_str));
        let value = format!(r#"Bearer realm="{realm}",service="{service}""#);
        let parsed = Challenge::parse([value.as_str()]);
        prop_assert_eq!(parsed, Some(Challenge::Bearer { realm, service: Some(service), scope: None }));
    }

    #[test]
    fn challenges_of_any_text(raw in proptest::collection::vec("\\PC{0,120}", 0..3)) {
        let _ = Challenge::parse(raw.iter().map(String::as_str));
    }

    #[test]
    fn retry_after_values(value in "[ -~]{0,40}", secs in any::<u64>(), now_secs in 0u64..(1u64 << 40)) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now_secs);
        let _ = parse_retry_after(&value, now);
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(Duration::from_secs(secs)));
        // Whatever the server asks, no single wait exceeds the cap.
        let policy = RetryPolicy::default();
        let mut retry = policy.start();
        let err = status_error(StatusCode::SERVICE_UNAVAILABLE, parse_retry_after(&value, now), b"", "u", "x");
        if let Some(delay) = retry.next_delay(&err) {
            prop_assert!(delay <= policy.max_delay);
        }
    }

    #[test]
    fn rate_limit_headers(limit in header_value(), remaining in header_value(), source in header_value()) {
        let map = headers(&[
            ("ratelimit-limit", limit.clone()),
            ("x-ratelimit-remaining", remaining),
            ("docker-ratelimit-source", source),
        ]);
        let rl = RateLimit::from_headers(&map);
        if let Some(value) = map.get("ratelimit-limit").and_then(|v| v.to_str().ok())
            && let Ok(n) = value.trim().split(';').next().unwrap_or("").trim().parse::<u64>()
        {
            prop_assert_eq!(rl.and_then(|r| r.limit), Some(n));
        }
    }

    #[test]
    fn error_bodies(
        status in 400u16..600,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[ -~]{0,300}".prop_map(String::into_bytes),
            ("[A-Z_]{0,20}", "[ -~]{0,100}").prop_map(|(c, m)| {
                serde_json::json!({"errors": [{"code": c, "message": m}]}).to_string().into_bytes()
            }),
        ],
    ) {
        let Ok(status) = StatusCode::from_u16(status) else { return Ok(()) };
        let err = status_error(status, None, &body, "u", "x");
        let expected = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Failure::Spurious
        } else {
            Failure::Answer
        };
        prop_assert_eq!(err.failure(), expected);
        let _ = err.to_string();
    }

    #[test]
    fn manifest_headers(content_type in header_value(), digest in header_value(), length in header_value(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let map = headers(&[("content-type", content_type), ("docker-content-digest", digest)]);
        let mut map = map;
        if let Ok(v) = HeaderValue::from_bytes(&length) {
            map.insert("content-length", v);
        }
        let head = ManifestHead::from_headers(&map);
        let sent = map.get("content-length").and_then(|v| v.to_str().ok());
        prop_assert_eq!(head.size, sent.and_then(|v| v.trim().parse::<u64>().ok()));
        if let Some(d) = head.digest {
            let sent = map.get("docker-content-digest").and_then(|v| v.to_str().ok());
            prop_assert_eq!(Some(d.to_string()), sent.map(str::to_string));
        }
        let _ = sniff_media_type(&body);
    }
}
