//! Distribution-spec errors: one typed value, turned into
//! `{"errors":[{"code":..,"message":..}]}` in one place.

use http::StatusCode;

use crate::fetch::FetchError;
use crate::registry::RegistryError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for the `Retry-After` header (a 429 says when to come back).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn name_invalid(why: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name: {why}"),
        )
    }

    pub fn digest_invalid(why: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", why)
    }

    /// A manifest that cannot exist, such as one named by an invalid tag:
    /// the registry answers 404 for it, as for any unknown manifest.
    pub fn manifest_unknown(why: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", why)
    }

    pub fn unsupported(why: &str) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", why)
    }

    /// A query parameter dpx cannot honour (the spec has no code of its own for it).
    pub fn bad_parameter(why: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", why)
    }

    /// A path that is no endpoint of the registry API. The spec has no
    /// "no such route" code; UNSUPPORTED says what it is.
    pub fn not_found_route() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "no such route: dpx serves the pull side of the registry API under /v2/",
        )
    }

    /// The upstream is down and dpx has nothing to answer with.
    pub fn unavailable(why: &str) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", why)
    }

    pub fn internal(why: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", why)
    }

    /// Maps a pull-through failure to what a container engine should see.
    pub fn from_fetch(e: &FetchError, what: &str, unknown_code: &'static str) -> ApiError {
        // Behind another dpx process that got stuck: try again later.
        if e.is_stalled() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                format!("{what}: {e}"),
            );
        }
        if let Some(stop) = e.quota_stop() {
            let retry = stop
                .retry_at()
                .map(|at| format!("; retry after {}", crate::fetch::quota::rfc3339(at)))
                .unwrap_or_default();
            return ApiError {
                // When dpx looks again (at least a second: 0 means "now" to some clients).
                retry_after: stop.retry_after_secs(),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOOMANYREQUESTS",
                    format!("{what} is not cached and was not asked upstream: {stop}{retry}"),
                )
            };
        }
        // Nothing was sent (a client only gets a 200 once the first bytes
        // are stored): say why, rather than a 200 cut off at byte 0.
        if e.is_disk_full() {
            // The client's message names no path; the operator's log does.
            tracing::error!("{what}: {e}");
            return ApiError::unavailable(&format!(
                "{what} is not cached and cannot be: the disk holding the dpx cache is full; \
                 free space on it (`dpx purge`, or [cache] max_size) and retry"
            ));
        }
        if e.is_not_member() {
            return ApiError::new(StatusCode::NOT_FOUND, unknown_code, format!("{what}: {e}"));
        }
        let Some(reg) = e.registry() else {
            return ApiError::internal(&format!("{what}: {e}"));
        };
        match reg {
            RegistryError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                unknown_code,
                format!("{what} is not in the cache and upstream does not have it: {reg}"),
            ),
            RegistryError::RateLimited { retry_after, .. } => {
                let when = match retry_after {
                    Some(d) => format!(
                        "retry after {}",
                        crate::fetch::quota::rfc3339(
                            crate::cache::now_secs().saturating_add(d.as_secs())
                        )
                    ),
                    None => "wait for the quota to reset and retry".to_string(),
                };
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOOMANYREQUESTS",
                    format!(
                        "{what} is not cached and upstream refused: {reg}; {when} (`dpx ratelimit --cached` shows the last figures seen)"
                    ),
                )
            }
            RegistryError::Denied { status, .. } | RegistryError::LoginRefused { status, .. } => {
                let (status, code) = if *status == 401 {
                    (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
                } else {
                    (StatusCode::FORBIDDEN, "DENIED")
                };
                ApiError::new(status, code, format!("{what}: {reg}"))
            }
            RegistryError::NonPublic { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "DENIED", format!("{what}: {reg}"))
            }
            // Docker shows the error body only for 4xx replies; for a 5xx it
            // prints "unexpected HTTP status" and the user learns nothing.
            // Manifests (the first thing an engine asks for) therefore get a
            // 404 MANIFEST_UNKNOWN (a 4xx must carry a spec code) with the
            // message saying why; blobs and tag lists keep the honest 503.
            e if e.is_upstream_failure() && unknown_code == "MANIFEST_UNKNOWN" => ApiError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                ApiError::unavailable_message(what, reg, true),
            ),
            // A tag list (NAME_UNKNOWN) is nothing a prefetch keeps.
            e if e.is_upstream_failure() => ApiError::unavailable(&ApiError::unavailable_message(
                what,
                reg,
                unknown_code != "NAME_UNKNOWN",
            )),
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "UNKNOWN", format!("{what}: {reg}")),
        }
    }

    fn unavailable_message(what: &str, reg: &RegistryError, prefetchable: bool) -> String {
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
            "errors": [{ "code": self.code, "message": self.message, "detail": null }]
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch_err(e: RegistryError) -> FetchError {
        FetchError::Registry(e)
    }

    fn down() -> RegistryError {
        RegistryError::Unreachable {
            url: "http://up".into(),
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn an_uncached_manifest_with_the_upstream_down_is_a_404_manifest_unknown() {
        let e = ApiError::from_fetch(&fetch_err(down()), "manifest x", "MANIFEST_UNKNOWN");
        assert_eq!((e.status.as_u16(), e.code), (404, "MANIFEST_UNKNOWN"));
        assert!(
            e.message.contains("upstream registry is unavailable"),
            "{}",
            e.message
        );
        let e = ApiError::from_fetch(&fetch_err(down()), "blob x", "BLOB_UNKNOWN");
        assert_eq!((e.status.as_u16(), e.code), (503, "UNAVAILABLE"));
    }

    #[test]
    fn client_errors_use_spec_codes() {
        let denied = |status| RegistryError::Denied {
            url: "http://up".into(),
            status,
            message: "no".into(),
        };
        let e = ApiError::from_fetch(&fetch_err(denied(401)), "m", "MANIFEST_UNKNOWN");
        assert_eq!((e.status.as_u16(), e.code), (401, "UNAUTHORIZED"));
        let e = ApiError::from_fetch(&fetch_err(denied(403)), "m", "MANIFEST_UNKNOWN");
        assert_eq!((e.status.as_u16(), e.code), (403, "DENIED"));
        let missing = RegistryError::NotFound {
            what: "m".into(),
            url: "http://up".into(),
        };
        let e = ApiError::from_fetch(&fetch_err(missing), "m", "BLOB_UNKNOWN");
        assert_eq!((e.status.as_u16(), e.code), (404, "BLOB_UNKNOWN"));
        let route = ApiError::not_found_route();
        assert_eq!((route.status.as_u16(), route.code), (404, "UNSUPPORTED"));
    }

    proptest::proptest! {
        /// Whatever wait an upstream asked for, or a pause until whenever,
        /// the answer is a 429 that says until when.
        #[test]
        fn any_retry_after_or_pause_is_a_429(secs in proptest::prelude::any::<u64>(), until in proptest::prelude::any::<u64>()) {
            let refused = fetch_err(RegistryError::RateLimited {
                url: "http://up".into(),
                message: "slow down".into(),
                retry_after: Some(std::time::Duration::from_secs(secs)),
            });
            let e = ApiError::from_fetch(&refused, "m", "MANIFEST_UNKNOWN");
            proptest::prop_assert_eq!(e.status.as_u16(), 429);
            let paused = FetchError::Quota(crate::fetch::QuotaStop::Held {
                registry: "docker.io".into(),
                identity: "anonymous".into(),
                since: until / 2,
                next_probe_at: until,
            });
            let e = ApiError::from_fetch(&paused, "m", "MANIFEST_UNKNOWN");
            proptest::prop_assert_eq!(e.status.as_u16(), 429);
            proptest::prop_assert!(e.message.contains("retry after"), "{}", e.message);
        }
    }
}
