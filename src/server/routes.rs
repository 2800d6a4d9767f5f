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
    /// `GET /v2/<name>/tags/list?n=&last=`
    TagList {
        image: Image,
        /// The name as the client wrote it, echoed in the answer.
        name: String,
        page: TagPage,
    },
    /// `GET /v2/<name>/referrers/<digest>[?artifactType=...]`
    Referrers {
        image: Image,
        digest: crate::reference::Digest,
        artifact_type: Option<String>,
    },
}

/// The page of a tag list a client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagPage {
    /// At most this many tags (`n`).
    pub n: Option<usize>,
    /// Only tags sorting after this one (`last`).
    pub last: Option<String>,
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
    // `<name>/<kind>/<reference>`, the name being everything before (it
    // may hold slashes): taken as slices of the path, nothing collected.
    let mut from_end = rest.rsplitn(3, '/');
    let (Some(reference), Some(kind), Some(name)) =
        (from_end.next(), from_end.next(), from_end.next())
    else {
        return Err(ApiError::not_found_route());
    };
    let last_of_name = name.rsplit('/').next().unwrap_or(name);
    // `<name>/blobs/uploads/[<id>]` is a push; a repository may well be
    // called `uploads` (`library/uploads/manifests/1`).
    let upload = (last_of_name == "blobs" && kind == "uploads")
        || (kind == "blobs" && reference == "uploads");
    if upload {
        return Err(ApiError::unsupported(
            "dpx is a read-only mirror: push to the upstream registry instead",
        ));
    }
    let image = image(name, ns(query))?;
    match kind {
        "manifests" => {
            // An invalid tag names no manifest: 404, as the registry answers.
            let target = Target::parse(reference).map_err(|e| match e {
                crate::reference::ReferenceError::Digest { .. } => {
                    ApiError::digest_invalid(&e.to_string())
                }
                other => ApiError::manifest_unknown(&other.to_string()),
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
        "tags" if reference == "list" => Ok(Route::TagList {
            image,
            name: name.to_string(),
            page: tag_page(query)?,
        }),
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
        _ => Err(ApiError::not_found_route()),
    }
}

/// The repository name as a request path writes it (`/v2/<name>/<kind>/<ref>`),
/// which a client's token scope names; `None` for `/v2/` and non-routes.
pub fn repository_name(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    let mut parts = rest.rsplitn(3, '/');
    let (_reference, _kind, name) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty()).then_some(name)
}

/// `n` and `last` of a tag list request.
fn tag_page(query: Option<&str>) -> Result<TagPage, ApiError> {
    let mut page = TagPage::default();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            // Empty values count as absent, as in the distribution registry.
            "n" if !v.is_empty() => {
                let n = v.parse().map_err(|_| {
                    ApiError::bad_parameter(&format!(
                        "invalid n={v:?}: the page size must be a whole number, 0 or more"
                    ))
                })?;
                page.n = Some(n);
            }
            "last" if !v.is_empty() => page.last = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(page)
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
fn image(name: &str, ns: Option<String>) -> Result<Image, ApiError> {
    let (registry, repo) = match ns {
        Some(ns) => (ns, name),
        None => match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest)
            }
            _ => (DOCKER_HUB.to_string(), name),
        },
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    if registry != DOCKER_HUB {
        validate_registry(&registry).map_err(|e| ApiError::name_invalid(&e.to_string()))?;
    }
    let repository = if registry == DOCKER_HUB && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_string()
    };
    validate_repository(&repository).map_err(|e| ApiError::name_invalid(&e.to_string()))?;
    Ok(Image {
        registry,
        repository,
    })
}

/// dpx's status page and what it loads, outside `/v2/` (`status_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Html,
    Script,
    Style,
    Data,
}

/// The status page's route of `path`, if it is one.
pub fn page(path: &str) -> Option<Page> {
    match path {
        "/" => Some(Page::Html),
        "/_dpx/page.js" => Some(Page::Script),
        "/_dpx/page.css" => Some(Page::Style),
        "/_dpx/page.json" => Some(Page::Data),
        _ => None,
    }
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
    fn repository_names_as_the_path_writes_them() {
        assert_eq!(repository_name("/v2/"), None);
        assert_eq!(repository_name("/v2"), None);
        assert_eq!(repository_name("/v2/x"), None);
        assert_eq!(repository_name("/v2/alpine/manifests/3"), Some("alpine"));
        assert_eq!(
            repository_name(&format!("/v2/127.0.0.1:5001/a/b/blobs/{D}")),
            Some("127.0.0.1:5001/a/b")
        );
        assert_eq!(repository_name("/v2/a/tags/list"), Some("a"));
        assert_eq!(repository_name("/token"), None);
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
            "/v2/a/other/x",
            long.as_str(),
        ];
        for path in bad {
            assert!(parse(path, None).is_err(), "{path}");
        }
        assert!(parse("/v2/a/manifests/x", Some("ns=../../x")).is_err());
    }

    fn code(path: &str) -> (u16, &'static str) {
        let e = parse(path, None).unwrap_err();
        (e.status.as_u16(), e.code.as_str())
    }

    #[test]
    fn invalid_tags_are_unknown_manifests_and_bad_digests_invalid() {
        assert_eq!(
            code("/v2/a/manifests/.INVALID_MANIFEST_NAME"),
            (404, "MANIFEST_UNKNOWN")
        );
        assert_eq!(code("/v2/a/manifests/.."), (404, "MANIFEST_UNKNOWN"));
        assert_eq!(code("/v2/a/manifests/sha256:zz"), (400, "DIGEST_INVALID"));
        assert_eq!(code("/v2/a/blobs/sha256:zz"), (400, "DIGEST_INVALID"));
        assert_eq!(code("/v2/a/other/x"), (404, "UNSUPPORTED"));
        assert_eq!(code("/etc/passwd"), (404, "UNSUPPORTED"));
    }

    #[test]
    fn only_real_upload_routes_are_refused() {
        for path in [
            "/v2/a/blobs/uploads/",
            "/v2/a/blobs/uploads/some-id",
            "/v2/org/uploads/blobs/uploads/",
            "/v2/a/blobs/uploads",
        ] {
            assert_eq!(code(path), (405, "UNSUPPORTED"), "{path}");
        }
        assert_eq!(
            parse("/v2/library/uploads/manifests/1", None).unwrap(),
            Route::Manifest {
                image: img("docker.io", "library/uploads"),
                target: Target::Tag("1".into())
            }
        );
        assert_eq!(
            parse(&format!("/v2/org/uploads/blobs/{D}"), None).unwrap(),
            Route::Blob {
                image: img("docker.io", "org/uploads"),
                digest: D.parse().unwrap()
            }
        );
        assert_eq!(
            parse("/v2/uploads/manifests/1", None).unwrap(),
            Route::Manifest {
                image: img("docker.io", "library/uploads"),
                target: Target::Tag("1".into())
            }
        );
        assert!(matches!(
            parse("/v2/a/uploads/tags/list", None),
            Ok(Route::TagList { .. })
        ));
    }

    #[test]
    fn tag_lists_and_their_pages() {
        assert_eq!(
            parse("/v2/127.0.0.1:5000/demo/tags/list", Some("n=2&last=v1")).unwrap(),
            Route::TagList {
                image: img("127.0.0.1:5000", "demo"),
                name: "127.0.0.1:5000/demo".into(),
                page: TagPage {
                    n: Some(2),
                    last: Some("v1".into())
                }
            }
        );
        assert_eq!(
            parse("/v2/alpine/tags/list", Some("last=&ns=docker.io")).unwrap(),
            Route::TagList {
                image: img("docker.io", "library/alpine"),
                name: "alpine".into(),
                page: TagPage::default()
            }
        );
        assert_eq!(
            parse("/v2/a/tags/list", Some("n=")).unwrap(),
            parse("/v2/a/tags/list", None).unwrap()
        );
        for bad in ["n=-1", "n=abc", "n=1.5", "n=99999999999999999999999"] {
            let e = parse("/v2/a/tags/list", Some(bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (400, "UNSUPPORTED"),
                "{bad}"
            );
        }
        assert_eq!(code("/v2/a/tags/other"), (404, "UNSUPPORTED"));
    }

    /// Request paths as clients and probes write them: registry-shaped
    /// segments, traversal, encodings and noise.
    fn request_path() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment = prop_oneof![
            "[a-z0-9._-]{1,10}",
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("%2e%2e".to_string()),
            Just("%252e".to_string()),
            Just("%2f".to_string()),
            Just("manifests".to_string()),
            Just("blobs".to_string()),
            Just("uploads".to_string()),
            Just("tags".to_string()),
            Just("list".to_string()),
            Just("referrers".to_string()),
            Just(D.to_string()),
            Just("ghcr.io".to_string()),
            Just("localhost:5000".to_string()),
            "\\PC{0,12}",
        ];
        prop_oneof![
            proptest::collection::vec(segment, 0..7).prop_map(|s| format!("/v2/{}", s.join("/"))),
            "\\PC{0,60}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No path or query panics the router; a refusal is a 4xx; an
        /// accepted route names a valid registry and repository, and the
        /// name the client gate checks a token against is the one routed.
        #[test]
        fn any_request_is_routed_or_refused_with_a_4xx(
            path in request_path(),
            query in proptest::option::of(proptest::prelude::prop_oneof![
                "(ns|n|last|artifactType)=[ -~]{0,20}(&(ns|n|last)=[ -~]{0,10})?",
                "\\PC{0,30}",
            ]),
        ) {
            match parse(&path, query.as_deref()) {
                Err(e) => proptest::prop_assert!(e.status.is_client_error(), "{path}: {e:?}"),
                Ok(Route::Ping) => proptest::prop_assert!(path == "/v2" || path == "/v2/"),
                Ok(route) => {
                    let image = match &route {
                        Route::Manifest { image, .. }
                        | Route::Blob { image, .. }
                        | Route::TagList { image, .. }
                        | Route::Referrers { image, .. } => image,
                        Route::Ping => unreachable!(),
                    };
                    proptest::prop_assert!(validate_registry(&image.registry).is_ok());
                    proptest::prop_assert!(validate_repository(&image.repository).is_ok());
                    proptest::prop_assert!(!path.contains("..") && !path.contains('%') && !path.contains('\\'));
                    let name = repository_name(&path);
                    proptest::prop_assert!(name.is_some(), "{path}");
                    if let (Some(name), Route::TagList { name: listed, .. }) = (name, &route) {
                        proptest::prop_assert_eq!(name, listed.as_str());
                    }
                    if query.is_none() {
                        let written = name.unwrap_or_default();
                        proptest::prop_assert!(
                            image.repository == written
                                || image.repository == format!("library/{written}")
                                || format!("{}/{}", image.registry, image.repository) == written
                                || format!("{}/{}", image.registry, image.repository.trim_start_matches("library/")) == written,
                            "{path}: {image:?}"
                        );
                    }
                }
            }
        }
    }
}
