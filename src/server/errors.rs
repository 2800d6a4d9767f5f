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
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
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

    pub fn tag_invalid(why: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "TAG_INVALID", why)
    }

    pub fn unsupported(why: &str) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", why)
    }

    pub fn not_found_route() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such route: dpx serves the pull side of the registry API under /v2/",
        )
    }

    pub fn internal(why: &str) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", why)
    }

    /// Maps a pull-through failure to what a container engine should see.
    pub fn from_fetch(e: &FetchError, what: &str, unknown_code: &'static str) -> ApiError {
        let Some(reg) = e.registry() else {
            return ApiError::internal(&format!("{what}: {e}"));
        };
        match reg {
            RegistryError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                unknown_code,
                format!("{what} is not in the cache and upstream does not have it: {reg}"),
            ),
            RegistryError::RateLimited { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                format!(
                    "{what} is not cached and upstream refused: {reg}; wait for the quota to reset and retry (`dpx pull --json IMAGE` shows the remaining quota)"
                ),
            ),
            RegistryError::Denied { status, .. } => ApiError::new(
                if *status == 401 {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                },
                "DENIED",
                format!("{what}: {reg}"),
            ),
            // Docker shows the error body only for 4xx replies; for a 5xx it
            // prints "unexpected HTTP status" and the user learns nothing.
            // Manifests (the first thing an engine asks for) therefore get a
            // 404 with the UNAVAILABLE code; blobs keep the honest 503.
            e if e.is_outage() => ApiError::new(
                if unknown_code == "MANIFEST_UNKNOWN" {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                "UNAVAILABLE",
                format!(
                    "{what} is not cached and the upstream registry is unavailable ({reg}); try again when it is back, or prefetch it while it is up"
                ),
            ),
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "UNKNOWN", format!("{what}: {reg}")),
        }
    }

    pub fn body(&self) -> String {
        serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message, "detail": null }]
        })
        .to_string()
    }
}
