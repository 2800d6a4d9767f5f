//! Manifest content negotiation: which of the cached manifest bytes answer a
//! client's `Accept` header, decided as the distribution registry 2.8 decides
//! it (`registry/handlers/manifests.go`), so a client sees through dpx what it
//! would see from the registry itself:
//!
//! - only the four schema-2/OCI manifest types count; `*/*`, `application/json`,
//!   `q=` weights and everything else are ignored, and so is a missing header;
//!   types compare case-sensitively, as distribution 2.8 compares them;
//! - an OCI manifest or index the client does not list is 404 `MANIFEST_UNKNOWN`
//!   (by tag and by digest);
//! - a Docker manifest list asked for **by tag** by a client that lists no
//!   manifest list type is answered with its first linux/amd64 image manifest;
//! - by digest, a Docker manifest or list is always served as stored.
//!
//! One deliberate difference: where distribution would rewrite a Docker
//! schema 2 manifest into a signed schema 1 manifest (by tag, for a client
//! that does not list the schema 2 type, e.g. no `Accept` at all), dpx serves
//! the schema 2 manifest as stored. Schema 1 needs a signing key of dpx's own,
//! and Docker 28+ and containerd 2 no longer pull it.

use http::{HeaderMap, header};

use super::errors::{ApiError, ErrorCode};
use super::routes::Image;
use crate::fetch::{Fetcher, ResolvedManifest};
use crate::oci::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::reference::{Digest, Target};

/// The manifest to send for `m` (what `target` resolved to): `m` itself, the
/// linux/amd64 image of a list (fetched and cached by digest like any other),
/// or a 404 for a type the client does not accept.
pub async fn answer(
    fetcher: &Fetcher,
    image: &Image,
    target: &Target,
    headers: &HeaderMap,
    m: ResolvedManifest,
) -> Result<ResolvedManifest, ApiError> {
    let by_tag = matches!(target, Target::Tag(_));
    match decide(
        Accepts::from_headers(headers),
        by_tag,
        &m.media_type,
        &m.bytes,
    ) {
        Answer::AsIs => Ok(m),
        Answer::Refuse(message) => Err(refused(message)),
        Answer::Child(digest) => {
            let what = format!(
                "manifest {}/{}@{digest} (linux/amd64 of {target})",
                image.registry, image.repository
            );
            let child = fetcher
                .manifest_by_digest(&image.registry, &image.repository, &digest)
                .await
                .map_err(|e| ApiError::from_fetch(&e, &what, ErrorCode::ManifestUnknown))?;
            // A list served from a stale cache makes the whole answer stale.
            let freshness = if m.freshness.is_stale() {
                m.freshness
            } else {
                child.freshness
            };
            Ok(ResolvedManifest { freshness, ..child })
        }
    }
}

/// How a HEAD answered from an upstream HEAD alone goes, for a manifest of
/// `media_type` asked by tag: `Some(Ok)` as described, `Some(Err)` refused,
/// `None` when only the manifest tells (a list's linux/amd64 image for a
/// client that takes no list).
pub fn head_only(headers: &HeaderMap, media_type: &str) -> Option<Result<(), ApiError>> {
    match decide(Accepts::from_headers(headers), true, media_type, &[]) {
        Answer::AsIs => Some(Ok(())),
        Answer::Refuse(_) if media_type == DOCKER_MANIFEST_LIST => None,
        Answer::Refuse(message) => Some(Err(refused(message))),
        Answer::Child(_) => None,
    }
}

/// Which manifest types a client listed in its `Accept` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub docker_manifest: bool,
    pub docker_list: bool,
    pub oci_manifest: bool,
    pub oci_index: bool,
}

impl Accepts {
    /// No manifest type listed (also `Default`; this one fits a `const`).
    const NONE: Accepts = Accepts {
        docker_manifest: false,
        docker_list: false,
        oci_manifest: false,
        oci_index: false,
    };

    /// Every `Accept` header, each split on commas (as distribution reads them).
    pub fn from_headers(headers: &HeaderMap) -> Accepts {
        let mut values = headers.get_all(header::ACCEPT).iter();
        match (values.next(), values.next()) {
            (None, _) => Accepts::default(),
            (Some(one), None) => LAST_ACCEPT.with_borrow_mut(|(last, accepts)| {
                // A client sends the same header with every request, and
                // parsing it showed in a cached manifest's profile.
                if last.as_slice() != one.as_bytes() {
                    *accepts = Accepts::default().with(one);
                    last.clear();
                    last.extend_from_slice(one.as_bytes());
                }
                *accepts
            }),
            (Some(_), Some(_)) => headers
                .get_all(header::ACCEPT)
                .iter()
                .fold(Accepts::default(), Accepts::with),
        }
    }

    /// These and the types one `Accept` header lists.
    fn with(mut self, value: &http::HeaderValue) -> Accepts {
        let Ok(value) = value.to_str() else {
            return self;
        };
        for entry in value.split(',') {
            match media_type(entry) {
                DOCKER_MANIFEST => self.docker_manifest = true,
                DOCKER_MANIFEST_LIST => self.docker_list = true,
                OCI_MANIFEST => self.oci_manifest = true,
                OCI_INDEX => self.oci_index = true,
                _ => {}
            }
        }
        self
    }
}

impl Default for Accepts {
    fn default() -> Accepts {
        Accepts::NONE
    }
}

thread_local! {
    /// The last single `Accept` header parsed on this thread, and its answer.
    static LAST_ACCEPT: std::cell::RefCell<(Vec<u8>, Accepts)> =
        const { std::cell::RefCell::new((Vec::new(), Accepts::NONE)) };
}

/// One Accept entry without its parameters, as distribution 2.8 reads it:
/// cut at `;`, trimmed, compared case-sensitively.
fn media_type(entry: &str) -> &str {
    entry.split(';').next().unwrap_or("").trim()
}

/// What to answer for a stored manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The manifest as stored.
    AsIs,
    /// This image manifest of the list instead (its linux/amd64 entry).
    Child(Digest),
    /// 404 `MANIFEST_UNKNOWN` with this message.
    Refuse(String),
}

/// Decides the answer for a manifest of `media_type` (`by_tag`: the request
/// named a tag, not a digest).
pub fn decide(accepts: Accepts, by_tag: bool, media_type: &str, bytes: &[u8]) -> Answer {
    match media_type {
        OCI_MANIFEST if !accepts.oci_manifest => Answer::Refuse(
            "OCI manifest found, but accept header does not support OCI manifests".into(),
        ),
        OCI_INDEX if !accepts.oci_index => Answer::Refuse(
            "OCI index found, but accept header does not support OCI indexes".into(),
        ),
        DOCKER_MANIFEST_LIST if by_tag && !accepts.docker_list => match linux_amd64(bytes) {
            Some(child) => Answer::Child(child),
            None => Answer::Refuse(
                "the manifest list has no linux/amd64 image, and the client accepts no manifest list type"
                    .into(),
            ),
        },
        _ => Answer::AsIs,
    }
}

/// The first linux/amd64 entry of a manifest list (any variant), as
/// distribution picks it for old clients.
fn linux_amd64(bytes: &[u8]) -> Option<Digest> {
    let list: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    list.get("manifests")?
        .as_array()?
        .iter()
        .find(|m| {
            let p = &m["platform"];
            p["os"].as_str() == Some("linux") && p["architecture"].as_str() == Some("amd64")
        })?
        .get("digest")?
        .as_str()?
        .parse()
        .ok()
}

pub fn refused(message: String) -> ApiError {
    ApiError::new(ErrorCode::ManifestUnknown, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(values: &[&str]) -> Accepts {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, v.parse().unwrap());
        }
        Accepts::from_headers(&h)
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_head_from_the_upstream_head_alone_is_answered_refused_or_left_to_the_manifest() {
        // Taken as it is.
        assert!(matches!(
            head_only(&headers(&[OCI_MANIFEST]), OCI_MANIFEST),
            Some(Ok(()))
        ));
        assert!(matches!(
            head_only(&headers(&[DOCKER_MANIFEST_LIST]), DOCKER_MANIFEST_LIST),
            Some(Ok(()))
        ));
        // Refused: a type the client does not take.
        assert!(matches!(
            head_only(&headers(&[DOCKER_MANIFEST]), OCI_MANIFEST),
            Some(Err(_))
        ));
        assert!(matches!(
            head_only(&headers(&[DOCKER_MANIFEST]), OCI_INDEX),
            Some(Err(_))
        ));
        // A list for a client that takes none: only the list's bytes can say
        // whether it has a linux/amd64 image to answer with.
        assert!(head_only(&headers(&[DOCKER_MANIFEST]), DOCKER_MANIFEST_LIST).is_none());
    }

    #[test]
    fn an_oci_manifest_goes_as_it_is_to_a_client_that_takes_it() {
        assert_eq!(
            decide(accepts(&[OCI_MANIFEST]), true, OCI_MANIFEST, b"{}"),
            Answer::AsIs
        );
        assert!(matches!(
            decide(accepts(&[DOCKER_MANIFEST]), true, OCI_MANIFEST, b"{}"),
            Answer::Refuse(_)
        ));
    }

    #[test]
    fn each_request_gets_its_own_headers_answer_though_the_last_is_remembered() {
        let oci = Accepts {
            oci_manifest: true,
            ..Accepts::default()
        };
        let docker = Accepts {
            docker_manifest: true,
            ..Accepts::default()
        };
        for _ in 0..2 {
            assert_eq!(accepts(&[OCI_MANIFEST]), oci);
            assert_eq!(accepts(&[OCI_MANIFEST]), oci);
            assert_eq!(accepts(&[DOCKER_MANIFEST]), docker);
            assert_eq!(accepts(&[]), Accepts::default());
            assert_eq!(
                accepts(&[OCI_MANIFEST, DOCKER_MANIFEST]),
                Accepts {
                    oci_manifest: true,
                    docker_manifest: true,
                    ..Accepts::default()
                }
            );
            assert_eq!(accepts(&["application/json"]), Accepts::default());
        }
    }

    #[test]
    fn accept_headers_are_split_and_parameters_dropped() {
        assert_eq!(accepts(&[]), Accepts::default());
        assert_eq!(accepts(&["*/*", "application/json"]), Accepts::default());
        let all = accepts(&[
            "application/vnd.oci.image.index.v1+json; q=0.5, application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json;q=0",
            " application/vnd.docker.distribution.manifest.list.v2+json ",
        ]);
        assert_eq!(
            all,
            Accepts {
                docker_manifest: true,
                docker_list: true,
                oci_manifest: true,
                oci_index: true
            }
        );
        // distribution 2.8 compares case-sensitively.
        assert_eq!(
            accepts(&["Application/VND.OCI.image.index.v1+json"]),
            Accepts::default()
        );
    }

    #[test]
    fn lists_by_tag_fall_back_to_linux_amd64_and_oci_types_must_be_accepted() {
        let child = Digest::of(b"amd64");
        let list = serde_json::json!({"manifests": [
            {"digest": Digest::of(b"arm").to_string(), "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": child.to_string(), "platform": {"os": "linux", "architecture": "amd64", "variant": "v2"}},
        ]})
        .to_string();
        let none = Accepts::default();
        assert_eq!(
            decide(none, true, DOCKER_MANIFEST_LIST, list.as_bytes()),
            Answer::Child(child)
        );
        assert_eq!(
            decide(none, false, DOCKER_MANIFEST_LIST, list.as_bytes()),
            Answer::AsIs
        );
        assert!(matches!(
            decide(none, true, DOCKER_MANIFEST_LIST, br#"{"manifests":[]}"#),
            Answer::Refuse(_)
        ));
        assert!(matches!(
            decide(none, false, OCI_INDEX, b"{}"),
            Answer::Refuse(m) if m.contains("OCI index")
        ));
        assert!(matches!(
            decide(none, true, OCI_MANIFEST, b"{}"),
            Answer::Refuse(m) if m.contains("OCI manifest")
        ));
        assert_eq!(decide(none, true, DOCKER_MANIFEST, b"{}"), Answer::AsIs);
        let oci = Accepts {
            oci_manifest: true,
            oci_index: true,
            ..none
        };
        assert_eq!(decide(oci, true, OCI_INDEX, b"{}"), Answer::AsIs);
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]
        /// No `Accept` value, media type or body panics the negotiation.
        #[test]
        fn any_accept_header(
            values in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120), 0..4),
            media_type in proptest::prelude::prop_oneof![
                proptest::prelude::Just(DOCKER_MANIFEST_LIST.to_string()),
                proptest::prelude::Just(OCI_INDEX.to_string()),
                "\\PC{0,60}",
            ],
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            by_tag in proptest::prelude::any::<bool>(),
        ) {
            let mut h = HeaderMap::new();
            for v in &values {
                if let Ok(v) = http::HeaderValue::from_bytes(v) {
                    h.append(header::ACCEPT, v);
                }
            }
            let accepts = Accepts::from_headers(&h);
            let _ = decide(accepts, by_tag, &media_type, &body);
            let _ = head_only(&h, &media_type);
        }
    }
}
