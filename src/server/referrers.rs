//! `GET /v2/<name>/referrers/<digest>`: the referrers of a digest as an OCI
//! image index, filtered here by `artifactType` when asked (so the cached
//! answer serves every filter).

use http::{Response, StatusCode, header};

use super::errors::{ApiError, ErrorCode};
use super::routes::Image;
use super::{Body, full};
use crate::fetch::CacheStatus;
use crate::fetch::{Fetcher, filter_by_artifact_type};
use crate::oci::OCI_INDEX;
use crate::reference::Digest;

pub async fn answer(
    fetcher: &Fetcher,
    image: &Image,
    subject: &Digest,
    artifact_type: Option<&str>,
    ttl: std::time::Duration,
) -> Result<(Response<Body>, CacheStatus), ApiError> {
    let what = format!(
        "referrers of {}/{}@{subject}",
        image.registry, image.repository
    );
    let found = fetcher
        .referrers(&image.registry, &image.repository, subject, ttl)
        .await
        .map_err(|e| ApiError::from_fetch(&e, &what, ErrorCode::ManifestUnknown))?;
    let status = found.freshness.cache_status();
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_INDEX)
        .header(super::DPX_CACHE, status.as_str());
    let bytes = match artifact_type {
        Some(t) => {
            builder = builder.header("oci-filters-applied", "artifactType");
            filter_by_artifact_type(&found.bytes, t)
                .ok_or_else(|| ApiError::internal(&format!("{what}: cached index unreadable")))?
                .into()
        }
        None => found.bytes,
    };
    let resp = builder
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(full(bytes))
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok((resp, status))
}
