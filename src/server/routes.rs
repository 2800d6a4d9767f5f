//! One catch-all `/v2/` router: a request path (and its `ns=` query) becomes a
//! `Route`, or a distribution error. Nothing here touches the cache.

use crate::reference::{DOCKER_HUB, Target, validate_registry, validate_repository};

use super::errors::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /v2/`: "are you a registry?"
    Ping,
    Manifest {
        image: Image,
        target: Target,
    },
    Blob {
        image: Image,
        digest: crate::reference::Digest,
    },
    /// `GET /v2/<name>/referrers/<digest>[?artifactType=...]`
    Referrers {
        image: Image,
        digest: crate::reference::Digest,
        artifact_type: Option<String>,
    },
}

/// Which upstream repository a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub registry: String,
    pub repository: String,
}

/// Parses the raw (still percent-encoded) path and query.
pub fn parse(path: &str, query: Option<&str>) -> Result<Route, ApiError> {
    // Registry names never need escaping; an escaped path is someone probing
    // for `%2e%2e` tricks, and is refused before anything else.
    if path.contains('%') || path.contains('\\') {
        return Err(ApiError::name_invalid(
            "percent-encoded or backslash characters are not allowed in registry paths",
        ));
    }
    let rest = match path.strip_prefix("/v2") {
        Some("" | "/") => return Ok(Route::Ping),
        Some(r) => r.strip_prefix('/').ok_or_else(ApiError::not_found_route)?,
        None => return Err(ApiError::not_found_route()),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    if n < 3 {
        return Err(ApiError::not_found_route());
    }
    let (kind, reference) = (segments[n - 2], segments[n - 1]);
    if kind == "uploads" || segments[n - 3] == "uploads" {
        return Err(ApiError::unsupported(
            "dpx is a read-only mirror: push to the upstream registry instead",
        ));
    }
    let name_parts = &segments[..n - 2];
    let image = image(name_parts, ns(query))?;
    match kind {
        "manifests" => {
            let target = Target::parse(reference).map_err(|e| match e {
                crate::reference::ReferenceError::Digest { .. } => {
                    ApiError::digest_invalid(&e.to_string())
                }
                other => ApiError::tag_invalid(&other.to_string()),
            })?;
            Ok(Route::Manifest { image, target })
        }
        "blobs" => {
            let digest = reference
                .parse()
                .map_err(|e: crate::reference::ReferenceError| {
                    ApiError::digest_invalid(&e.to_string())
                })?;
            Ok(Route::Blob { image, digest })
        }
        "referrers" => {
            let digest = reference
                .parse()
                .map_err(|e: crate::reference::ReferenceError| {
                    ApiError::digest_invalid(&e.to_string())
                })?;
            Ok(Route::Referrers {
                image,
                digest,
                artifact_type: query_value(query, "artifactType"),
            })
        }
        "tags" if reference == "list" => Err(ApiError::unsupported(
            "dpx does not list tags; ask the upstream registry",
        )),
        _ => Err(ApiError::not_found_route()),
    }
}

/// containerd's mirror query `?ns=ghcr.io` names the upstream registry.
fn ns(query: Option<&str>) -> Option<String> {
    query_value(query, "ns")
}

/// The first value of a query parameter, percent-decoded.
fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    let q = query?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Mirror mode (`library/alpine` is Docker Hub), `ns=` mode, or prefix mode
/// (`ghcr.io/org/app`: a first part with a dot or port names a registry).
fn image(parts: &[&str], ns: Option<String>) -> Result<Image, ApiError> {
    let (registry, repo_parts) = match ns {
        Some(ns) => (ns, parts),
        None => match parts.split_first() {
            Some((first, rest))
                if !rest.is_empty() && (first.contains(['.', ':']) || *first == "localhost") =>
            {
                (first.to_string(), rest)
            }
            _ => (DOCKER_HUB.to_string(), parts),
        },
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    validate_registry(&registry).map_err(|e| ApiError::name_invalid(&e.to_string()))?;
    let mut repository = repo_parts.join("/");
    if registry == DOCKER_HUB && repo_parts.len() == 1 {
        repository = format!("library/{repository}");
    }
    validate_repository(&repository).map_err(|e| ApiError::name_invalid(&e.to_string()))?;
    Ok(Image {
        registry,
        repository,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn img(registry: &str, repository: &str) -> Image {
        Image {
            registry: registry.into(),
            repository: repository.into(),
        }
    }

    #[test]
    fn routes() {
        assert_eq!(parse("/v2/", None).unwrap(), Route::Ping);
        assert_eq!(parse("/v2", None).unwrap(), Route::Ping);
        assert_eq!(
            parse("/v2/library/alpine/manifests/3.20", None).unwrap(),
            Route::Manifest {
                image: img("docker.io", "library/alpine"),
                target: Target::Tag("3.20".into())
            }
        );
        assert_eq!(
            parse("/v2/org/app/manifests/v1", Some("ns=ghcr.io")).unwrap(),
            Route::Manifest {
                image: img("ghcr.io", "org/app"),
                target: Target::Tag("v1".into())
            }
        );
        assert_eq!(
            parse(&format!("/v2/ghcr.io/org/app/blobs/{D}"), None).unwrap(),
            Route::Blob {
                image: img("ghcr.io", "org/app"),
                digest: D.parse().unwrap()
            }
        );
        assert_eq!(
            parse("/v2/127.0.0.1:5001/a/manifests/x", Some("foo=bar")).unwrap(),
            Route::Manifest {
                image: img("127.0.0.1:5001", "a"),
                target: Target::Tag("x".into())
            }
        );
        assert_eq!(
            parse(
                &format!("/v2/org/app/referrers/{D}"),
                Some("artifactType=application%2Fvnd.example%2Bjson")
            )
            .unwrap(),
            Route::Referrers {
                image: img("docker.io", "org/app"),
                digest: D.parse().unwrap(),
                artifact_type: Some("application/vnd.example+json".into())
            }
        );
        assert!(parse("/v2/org/app/referrers/latest", None).is_err());
        assert_eq!(
            parse("/v2/alpine/manifests/latest", None).unwrap(),
            Route::Manifest {
                image: img("docker.io", "library/alpine"),
                target: Target::Tag("latest".into())
            }
        );
    }

    #[test]
    fn bad_input() {
        let long = format!("/v2/{}/manifests/x", "a".repeat(300));
        let bad = [
            "/v2/../etc/passwd/manifests/x",
            "/v2/%2e%2e/a/manifests/x",
            "/v2/a/../b/manifests/x",
            "/v2/A/manifests/x",
            "/v2/a/manifests/..",
            "/v2/a/blobs/sha256:zz",
            "/v2/a/blobs/../../x",
            "/v2//a/manifests/x",
            "/v3/a/manifests/x",
            "/etc/passwd",
            "/v2/a/blobs/uploads/",
            "/v2/a/tags/list",
            "/v2/a/other/x",
            long.as_str(),
        ];
        for path in bad {
            assert!(parse(path, None).is_err(), "{path}");
        }
        assert!(parse("/v2/a/manifests/x", Some("ns=../../x")).is_err());
    }
}
