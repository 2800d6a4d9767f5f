//! Distribution-spec errors: one typed value, turned into
//! `{"errors":[{"code":..,"message":..}]}` in one place.

use http::StatusCode;

use crate::fetch::{ErrorKind, FetchError};

/// The distribution spec's error codes; each has the HTTP status it is
/// usually sent with (`ApiError::with_status` for the exceptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    DigestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    Unsupported,
    Unauthorized,
    Denied,
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown | ErrorCode::ManifestUnknown | ErrorCode::NameUnknown => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::DigestInvalid | ErrorCode::NameInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for the `Retry-After` header (a 429 says when to come back).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error with another status than the code's usual one.
    pub fn with_status(self, status: StatusCode) -> ApiError {
        ApiError { status, ..self }
    }

    pub fn name_invalid(why: &str) -> ApiError {
        ApiError::new(
            ErrorCode::NameInvalid,
            format!("invalid repository name: {why}"),
        )
    }

    pub fn digest_invalid(why: &str) -> ApiError {
        ApiError::new(ErrorCode::DigestInvalid, why)
    }

    /// A manifest that cannot exist, such as one named by an invalid tag:
    /// the registry answers 404 for it, as for any unknown manifest.
    pub fn manifest_unknown(why: &str) -> ApiError {
        ApiError::new(ErrorCode::ManifestUnknown, why)
    }

    pub fn unsupported(why: &str) -> ApiError {
        ApiError::new(ErrorCode::Unsupported, why)
    }

    /// A query parameter dpx cannot honour (the spec has no code of its own for it).
    pub fn bad_parameter(why: &str) -> ApiError {
        ApiError::new(ErrorCode::Unsupported, why).with_status(StatusCode::BAD_REQUEST)
    }

    /// A path that is no endpoint of the registry API. The spec has no
    /// "no such route" code; UNSUPPORTED says what it is.
    pub fn not_found_route() -> ApiError {
        ApiError::new(
            ErrorCode::Unsupported,
            "no such route: dpx serves the pull side of the registry API under /v2/",
        )
        .with_status(StatusCode::NOT_FOUND)
    }

    /// The upstream is down and dpx has nothing to answer with.
    pub fn unavailable(why: &str) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, why)
    }

    pub fn internal(why: &str) -> ApiError {
        ApiError::new(ErrorCode::Unknown, why)
    }

    /// Maps a pull-through failure to what a container engine should see;
    /// `unknown` is the code for content that is not there.
    pub fn from_fetch(e: &FetchError, what: &str, unknown: ErrorCode) -> ApiError {
        ApiError::from_kind(e.kind(), e, what, unknown)
    }

    /// Maps a failure of kind `kind`, which `e` describes.
    fn from_kind(
        kind: ErrorKind,
        e: &dyn std::fmt::Display,
        what: &str,
        unknown: ErrorCode,
    ) -> ApiError {
        match kind {
            // Behind another dpx process that got stuck: try again later.
            ErrorKind::Stalled => ApiError::new(ErrorCode::Unavailable, format!("{what}: {e}")),
            ErrorKind::QuotaSaved {
                retry_at,
                retry_after_secs,
            } => {
                let retry = retry_at
                    .map(|at| format!("; retry after {}", crate::fetch::quota::rfc3339(at)))
                    .unwrap_or_default();
                ApiError {
                    // When dpx looks again (at least a second: 0 means "now" to some clients).
                    retry_after: retry_after_secs,
                    ..ApiError::new(
                        ErrorCode::TooManyRequests,
                        format!("{what} is not cached and was not asked upstream: {e}{retry}"),
                    )
                }
            }
            // Nothing was sent (a client only gets a 200 once the first bytes
            // are stored): say why, rather than a 200 cut off at byte 0.
            ErrorKind::DiskFull => {
                // The client's message names no path; the operator's log does.
                tracing::error!("{what}: {e}");
                ApiError::unavailable(&format!(
                    "{what} is not cached and cannot be: the disk holding the dpx cache is full; \
                     free space on it (`dpx purge`, or [cache] max_size) and retry"
                ))
            }
            ErrorKind::NotMember => ApiError::new(unknown, format!("{what}: {e}")),
            ErrorKind::Internal => ApiError::internal(&format!("{what}: {e}")),
            ErrorKind::NotFound => ApiError::new(
                unknown,
                format!("{what} is not in the cache and upstream does not have it: {e}"),
            ),
            ErrorKind::RateLimited { retry_after } => {
                let when = match retry_after {
                    Some(d) => format!(
                        "retry after {}",
                        crate::fetch::quota::rfc3339(
                            crate::fetch::now_secs().saturating_add(d.as_secs())
                        )
                    ),
                    None => "wait for the quota to reset and retry".to_string(),
                };
                ApiError::new(
                    ErrorCode::TooManyRequests,
                    format!(
                        "{what} is not cached and upstream refused: {e}; {when} (`dpx ratelimit --cached` shows the last figures seen)"
                    ),
                )
            }
            ErrorKind::Unauthorized => {
                ApiError::new(ErrorCode::Unauthorized, format!("{what}: {e}"))
            }
            ErrorKind::Denied => ApiError::new(ErrorCode::Denied, format!("{what}: {e}")),
            // Docker shows the error body only for 4xx replies; for a 5xx it
            // prints "unexpected HTTP status" and the user learns nothing.
            // Manifests (the first thing an engine asks for) therefore get a
            // 404 MANIFEST_UNKNOWN (a 4xx must carry a spec code) with the
            // message saying why; blobs and tag lists keep the honest 503.
            ErrorKind::Unavailable if unknown == ErrorCode::ManifestUnknown => ApiError::new(
                ErrorCode::ManifestUnknown,
                ApiError::unavailable_message(what, e, true),
            ),
            // A tag list (NAME_UNKNOWN) is nothing a prefetch keeps.
            ErrorKind::Unavailable => ApiError::unavailable(&ApiError::unavailable_message(
                what,
                e,
                unknown != ErrorCode::NameUnknown,
            )),
            ErrorKind::BadUpstreamReply => {
                ApiError::new(ErrorCode::Unknown, format!("{what}: {e}"))
                    .with_status(StatusCode::BAD_GATEWAY)
            }
        }
    }

    fn unavailable_message(what: &str, reg: &dyn std::fmt::Display, prefetchable: bool) -> String {
        let hint = if prefetchable {
            ", or prefetch it while it is up"
        } else {
            ""
        };
        format!(
            "{what} is not cached and the upstream registry is unavailable ({reg}); try again when it is back{hint}"
        )
    }

    pub fn body(&self) -> String {
        serde_json::json!({
            "errors": [{ "code": self.code.as_str(), "message": self.message, "detail": null }]
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream failure of `kind`, as `from_fetch` maps it (which kind a
    /// registry failure is: `fetch::error`'s tests).
    fn from_upstream(kind: ErrorKind, what: &str, unknown: ErrorCode) -> ApiError {
        ApiError::from_kind(kind, &"http://up: connection refused", what, unknown)
    }

    #[test]
    fn an_uncached_manifest_with_the_upstream_down_is_a_404_manifest_unknown() {
        let down = ErrorKind::Unavailable;
        let e = from_upstream(down, "manifest x", ErrorCode::ManifestUnknown);
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (404, "MANIFEST_UNKNOWN")
        );
        assert!(
            e.message.contains("upstream registry is unavailable"),
            "{}",
            e.message
        );
        let e = from_upstream(down, "blob x", ErrorCode::BlobUnknown);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (503, "UNAVAILABLE"));
    }

    #[test]
    fn client_errors_use_spec_codes() {
        let e = from_upstream(ErrorKind::Unauthorized, "m", ErrorCode::ManifestUnknown);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (401, "UNAUTHORIZED"));
        let e = from_upstream(ErrorKind::Denied, "m", ErrorCode::ManifestUnknown);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (403, "DENIED"));
        let e = from_upstream(ErrorKind::NotFound, "m", ErrorCode::BlobUnknown);
        assert_eq!((e.status.as_u16(), e.code.as_str()), (404, "BLOB_UNKNOWN"));
        let route = ApiError::not_found_route();
        assert_eq!(
            (route.status.as_u16(), route.code.as_str()),
            (404, "UNSUPPORTED")
        );
    }

    #[test]
    fn every_code_has_its_spec_name_and_usual_status() {
        use ErrorCode::*;
        let table = [
            (BlobUnknown, "BLOB_UNKNOWN", 404),
            (DigestInvalid, "DIGEST_INVALID", 400),
            (ManifestUnknown, "MANIFEST_UNKNOWN", 404),
            (NameInvalid, "NAME_INVALID", 400),
            (NameUnknown, "NAME_UNKNOWN", 404),
            (Unsupported, "UNSUPPORTED", 405),
            (Unauthorized, "UNAUTHORIZED", 401),
            (Denied, "DENIED", 403),
            (TooManyRequests, "TOOMANYREQUESTS", 429),
            (Unavailable, "UNAVAILABLE", 503),
            (Unknown, "UNKNOWN", 500),
        ];
        for (code, name, status) in table {
            assert_eq!((code.as_str(), code.status().as_u16()), (name, status));
            let e = ApiError::new(code, "why");
            assert_eq!((e.status.as_u16(), e.retry_after), (status, None));
        }
    }

    #[test]
    fn each_constructor_answers_its_code_status_and_message() {
        let seen = |e: ApiError| (e.code.as_str(), e.status.as_u16(), e.message);
        assert_eq!(
            seen(ApiError::name_invalid("x")),
            ("NAME_INVALID", 400, "invalid repository name: x".into())
        );
        assert_eq!(
            seen(ApiError::digest_invalid("x")),
            ("DIGEST_INVALID", 400, "x".into())
        );
        assert_eq!(
            seen(ApiError::manifest_unknown("x")),
            ("MANIFEST_UNKNOWN", 404, "x".into())
        );
        assert_eq!(
            seen(ApiError::unsupported("x")),
            ("UNSUPPORTED", 405, "x".into())
        );
        assert_eq!(
            seen(ApiError::bad_parameter("x")),
            ("UNSUPPORTED", 400, "x".into())
        );
        assert_eq!(
            seen(ApiError::unavailable("x")),
            ("UNAVAILABLE", 503, "x".into())
        );
        assert_eq!(seen(ApiError::internal("x")), ("UNKNOWN", 500, "x".into()));
        let teapot = ApiError::new(ErrorCode::Denied, "x").with_status(StatusCode::IM_A_TEAPOT);
        assert_eq!(seen(teapot), ("DENIED", 418, "x".into()));
    }

    #[test]
    fn the_body_is_the_spec_error_document() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::new(ErrorCode::NameUnknown, "no \"such\" name").body())
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"errors": [{"code": "NAME_UNKNOWN", "message": "no \"such\" name", "detail": null}]})
        );
    }

    #[test]
    fn each_fetch_failure_kind_is_answered_as_an_engine_should_see_it() {
        let seen = |kind, unknown| {
            let e = from_upstream(kind, "blob x", unknown);
            (e.code.as_str(), e.status.as_u16())
        };
        assert_eq!(
            seen(ErrorKind::Stalled, ErrorCode::BlobUnknown),
            ("UNAVAILABLE", 503)
        );
        assert_eq!(
            seen(ErrorKind::DiskFull, ErrorCode::BlobUnknown),
            ("UNAVAILABLE", 503)
        );
        assert_eq!(
            seen(ErrorKind::NotMember, ErrorCode::BlobUnknown),
            ("BLOB_UNKNOWN", 404)
        );
        assert_eq!(
            seen(ErrorKind::NotMember, ErrorCode::ManifestUnknown),
            ("MANIFEST_UNKNOWN", 404)
        );
        assert_eq!(
            seen(ErrorKind::Internal, ErrorCode::BlobUnknown),
            ("UNKNOWN", 500)
        );
        assert_eq!(
            seen(ErrorKind::BadUpstreamReply, ErrorCode::BlobUnknown),
            ("UNKNOWN", 502)
        );
        assert_eq!(
            seen(
                ErrorKind::RateLimited { retry_after: None },
                ErrorCode::BlobUnknown
            ),
            ("TOOMANYREQUESTS", 429)
        );
        let saved = from_upstream(
            ErrorKind::QuotaSaved {
                retry_at: Some(0),
                retry_after_secs: Some(42),
            },
            "blob x",
            ErrorCode::BlobUnknown,
        );
        assert_eq!(
            (
                saved.code.as_str(),
                saved.status.as_u16(),
                saved.retry_after
            ),
            ("TOOMANYREQUESTS", 429, Some(42))
        );
        assert!(
            saved.message.contains("; retry after 1970-01-01"),
            "{}",
            saved.message
        );
        let full = from_upstream(ErrorKind::DiskFull, "blob x", ErrorCode::BlobUnknown);
        assert!(
            full.message.contains("disk holding the dpx cache is full"),
            "{}",
            full.message
        );
        assert!(
            !full.message.contains("connection refused"),
            "the client's message names no path"
        );
    }

    #[test]
    fn only_what_a_prefetch_keeps_is_suggested_for_prefetch() {
        let hint = ", or prefetch it while it is up";
        let message = |unknown| from_upstream(ErrorKind::Unavailable, "x", unknown).message;
        assert!(message(ErrorCode::BlobUnknown).ends_with(hint));
        assert!(message(ErrorCode::ManifestUnknown).ends_with(hint));
        assert!(!message(ErrorCode::NameUnknown).contains("prefetch"));
        assert_eq!(
            from_upstream(ErrorKind::Unavailable, "x", ErrorCode::NameUnknown)
                .status
                .as_u16(),
            503
        );
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]
        /// Whatever wait an upstream asked for, or a pause until whenever,
        /// the answer is a 429 that says until when.
        #[test]
        fn any_retry_after_or_pause_is_a_429(secs in proptest::prelude::any::<u64>(), until in proptest::prelude::any::<u64>()) {
            let refused = ErrorKind::RateLimited {
                retry_after: Some(std::time::Duration::from_secs(secs)),
            };
            let e = from_upstream(refused, "m", ErrorCode::ManifestUnknown);
            proptest::prop_assert_eq!(e.status.as_u16(), 429);
            let paused = FetchError::Quota(crate::fetch::QuotaStop::Held {
                registry: "docker.io".into(),
                identity: "anonymous".into(),
                since: until / 2,
                next_probe_at: until,
            });
            let e = ApiError::from_fetch(&paused, "m", ErrorCode::ManifestUnknown);
            proptest::prop_assert_eq!(e.status.as_u16(), 429);
            proptest::prop_assert!(e.message.contains("retry after"), "{}", e.message);
        }
    }
}
