//! Plain HTTP pushes to a registry (the shared docker-registry): blobs and
//! manifests of any media type, byte for byte, so a test controls exactly
//! what the registry serves.

use super::dpx::sha256_hex;
use super::http::request_with_body;

/// Uploads a blob (POST, then one PUT); returns its descriptor fields.
pub fn push_blob(host: &str, repo: &str, data: &[u8]) -> serde_json::Value {
    let digest = format!("sha256:{}", sha256_hex(data));
    let start = request_with_body(
        host,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        &[],
    );
    assert_eq!(start.status, 202, "start upload: {}", start.body_text());
    let location = start.header("location").expect("upload Location");
    // docker-registry answers with an absolute URL; the raw client wants the path.
    let path = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let done = request_with_body(
        host,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(done.status, 201, "finish upload: {}", done.body_text());
    serde_json::json!({"digest": digest, "size": data.len()})
}

/// Puts a manifest under `reference` (a tag or its digest); returns its
/// descriptor (media type, digest, size).
pub fn push_manifest(
    host: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> serde_json::Value {
    let resp = request_with_body(
        host,
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        body,
    );
    assert_eq!(
        resp.status,
        201,
        "put manifest {repo}:{reference}: {}",
        resp.body_text()
    );
    serde_json::json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", sha256_hex(body)),
        "size": body.len()
    })
}
