//! Manifest media types, the Accept list, and choosing a platform from an index.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Every manifest type we can cache and serve; schema 1 is deliberately absent.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "unsupported manifest media type {0:?} (dpx handles OCI and Docker schema 2 manifests and indexes)"
    )]
    UnsupportedType(String),
    #[error("malformed {media_type} manifest: {message}")]
    Malformed { media_type: String, message: String },
}

/// A parsed manifest: either one image or an index of per-platform images.
#[derive(Debug)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Manifest {
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let malformed = |e: oci_spec::OciSpecError| ManifestError::Malformed {
            media_type: media_type.to_string(),
            message: e.to_string(),
        };
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => ImageManifest::from_reader(bytes)
                .map(|m| Manifest::Image(Box::new(m)))
                .map_err(malformed),
            OCI_INDEX | DOCKER_MANIFEST_LIST => ImageIndex::from_reader(bytes)
                .map(|i| Manifest::Index(Box::new(i)))
                .map_err(malformed),
            other => Err(ManifestError::UnsupportedType(bounded(other))),
        }
    }

    /// Whether `bytes` may be stored and served as a manifest of `media_type`:
    /// one of the four types dpx serves, parsing as that type, and naming
    /// no other type in its own `mediaType` field. Nothing else is ever cached
    /// (a captive portal's HTML page, a 100 KB Content-Type).
    pub fn check(media_type: &str, bytes: &[u8]) -> Result<(), ManifestError> {
        let claimed = match Manifest::parse(media_type, bytes)? {
            Manifest::Image(m) => m.media_type().clone(),
            Manifest::Index(i) => i.media_type().clone(),
        };
        match claimed.map(|t| t.to_string()) {
            Some(t) if t != media_type => Err(ManifestError::Malformed {
                media_type: media_type.to_string(),
                message: format!("its mediaType field says {:?}", bounded(&t)),
            }),
            _ => Ok(()),
        }
    }
}

/// At most `MAX_SHOWN` characters of a value from outside, for a message.
fn bounded(s: &str) -> String {
    const MAX_SHOWN: usize = 100;
    match s.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{}... ({} bytes)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

/// Whether `media_type` is one of the manifest types dpx stores and serves.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | DOCKER_MANIFEST | OCI_INDEX | DOCKER_MANIFEST_LIST
    )
}

/// Whether a registry's Content-Type names a manifest we understand. Some
/// registries add parameters (`; charset=utf-8`), which are dropped.
pub fn normalize_media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform containers on this machine run: always linux, the host's CPU.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    /// Whether an index entry is for this platform (a missing variant on our
    /// side matches any variant).
    pub fn matches(&self, descriptor: &Descriptor) -> bool {
        let Some(p) = descriptor.platform() else {
            return false;
        };
        p.os().to_string() == self.os
            && p.architecture().to_string() == self.architecture
            && match (&self.variant, p.variant()) {
                (None, _) => true,
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
            }
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/arm64"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Which images of an index to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformChoice {
    One(Platform),
    All,
}

/// Describes a descriptor's platform for messages, e.g. `linux/arm64/v8`.
pub fn describe_platform(d: &Descriptor) -> String {
    match d.platform() {
        Some(p) => {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        }
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!("linux/amd64".parse::<Platform>().unwrap().variant, None);
        for bad in ["linux", "", "linux/", "a/b/c/d", "linux/../x"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn media_type_parameters_are_dropped() {
        assert_eq!(
            normalize_media_type("application/json; charset=utf-8"),
            "application/json"
        );
    }

    #[test]
    fn only_a_body_of_the_type_it_claims_passes_the_check() {
        let image = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
            "layers":[]}"#;
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(Manifest::check(OCI_MANIFEST, image).is_ok());
        assert!(Manifest::check(OCI_INDEX, index).is_ok());
        // The type the body names wins over nothing: a mismatch is refused.
        assert!(Manifest::check(DOCKER_MANIFEST, image).is_err());
        assert!(Manifest::check(DOCKER_MANIFEST_LIST, index).is_err());
        assert!(Manifest::check(OCI_MANIFEST, index).is_err());
        assert!(Manifest::check(OCI_INDEX, image).is_err());
        assert!(Manifest::check("text/html", b"<html>Sign in</html>").is_err());
        assert!(Manifest::check(OCI_MANIFEST, b"<html>Sign in</html>").is_err());
        assert!(Manifest::check(OCI_MANIFEST, br#"{"schemaVersion":2}"#).is_err());
        let huge = format!("application/x-{}", "a".repeat(100_000));
        let e = Manifest::check(&huge, image).unwrap_err().to_string();
        assert!(e.len() < 400, "{e}");
    }

    #[test]
    fn rejects_schema1_and_garbage() {
        assert!(matches!(
            Manifest::parse(
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                b"{}"
            ),
            Err(ManifestError::UnsupportedType(_))
        ));
        assert!(matches!(
            Manifest::parse(OCI_MANIFEST, b"not json"),
            Err(ManifestError::Malformed { .. })
        ));
    }

    fn entry(platform: Option<(&str, &str, Option<&str>)>) -> Descriptor {
        let mut json = serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        });
        if let Some((os, architecture, variant)) = platform {
            json["platform"] = serde_json::json!({"os": os, "architecture": architecture});
            if let Some(v) = variant {
                json["platform"]["variant"] = v.into();
            }
        }
        serde_json::from_value(json).expect("a descriptor")
    }

    #[test]
    fn a_platform_matches_its_os_arch_and_variant_only() {
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let armv7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(arm64.matches(&entry(Some(("linux", "arm64", None)))));
        // No variant asked: any variant is taken.
        assert!(arm64.matches(&entry(Some(("linux", "arm64", Some("v8"))))));
        assert!(!arm64.matches(&entry(Some(("windows", "arm64", None)))));
        assert!(!arm64.matches(&entry(Some(("linux", "amd64", None)))));
        assert!(!arm64.matches(&entry(None)), "an entry with no platform");
        assert!(armv7.matches(&entry(Some(("linux", "arm", Some("v7"))))));
        assert!(!armv7.matches(&entry(Some(("linux", "arm", Some("v6"))))));
        assert!(!armv7.matches(&entry(Some(("linux", "arm", None)))));
    }

    #[test]
    fn manifests_are_capped_at_the_specs_four_mib() {
        assert_eq!(MAX_MANIFEST_BYTES, 4_194_304);
    }

    #[test]
    fn platform_parts_are_letters_digits_and_underscores() {
        let p: Platform = "linux/x86_64/v_2".parse().unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "x86_64", Some("v_2"))
        );
        for bad in ["linux/arm/v-7", "linux/arm/", "lin ux/arm", "linux/arm 64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
    #[test]
    fn the_host_platform_is_linux_on_this_cpu() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        let want = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        if matches!(std::env::consts::ARCH, "x86_64" | "aarch64") {
            assert_eq!(host.architecture, want);
            assert_eq!(host.variant, None);
        }
    }

    #[test]
    fn platforms_are_described_for_messages() {
        assert_eq!(
            describe_platform(&entry(Some(("linux", "arm64", Some("v8"))))),
            "linux/arm64/v8"
        );
        assert_eq!(
            describe_platform(&entry(Some(("linux", "amd64", None)))),
            "linux/amd64"
        );
        assert_eq!(describe_platform(&entry(None)), "unknown");
    }

    #[test]
    fn only_the_four_manifest_types_are_served() {
        for t in [
            OCI_MANIFEST,
            DOCKER_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST_LIST,
        ] {
            assert!(is_manifest_type(t), "{t}");
        }
        assert!(!is_manifest_type("application/json"));
        assert!(!is_manifest_type(""));
    }

    #[test]
    fn long_values_are_cut_for_messages() {
        let short = "a".repeat(100);
        assert_eq!(bounded(&short), short);
        let long = "é".repeat(101);
        assert_eq!(
            bounded(&long),
            format!("{}... (202 bytes)", "é".repeat(100))
        );
    }

    /// JSON shaped like manifests and indexes, with fields of any type.
    fn manifest_like() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            Just(serde_json::Value::Null),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,20}".prop_map(serde_json::Value::from),
            Just(serde_json::json!([])),
            Just(
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2})
            ),
            Just(
                serde_json::json!([{"mediaType": OCI_MANIFEST, "digest": "sha256:x", "size": -1, "platform": {"os": 1}}])
            ),
        ];
        (
            proptest::sample::subsequence(
                vec![
                    "schemaVersion",
                    "mediaType",
                    "config",
                    "layers",
                    "manifests",
                    "annotations",
                    "subject",
                ],
                0..7,
            ),
            proptest::collection::vec(value, 7),
        )
            .prop_map(|(keys, values)| {
                let map: serde_json::Map<String, serde_json::Value> =
                    keys.into_iter().map(String::from).zip(values).collect();
                serde_json::Value::Object(map).to_string().into_bytes()
            })
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No body or media type panics the manifest parser; only the four
        /// types pass, and what passes the check parses.
        #[test]
        fn any_body_parses_or_is_refused(
            media_type in prop_oneof![
                Just(OCI_MANIFEST.to_string()),
                Just(DOCKER_MANIFEST.to_string()),
                Just(OCI_INDEX.to_string()),
                Just(DOCKER_MANIFEST_LIST.to_string()),
                "\\PC{0,300}",
            ],
            body in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), manifest_like()],
        ) {
            let parsed = Manifest::parse(&media_type, &body);
            if parsed.is_ok() {
                prop_assert!(is_manifest_type(&media_type));
            }
            match Manifest::check(&media_type, &body) {
                Ok(()) => prop_assert!(parsed.is_ok()),
                Err(e) => prop_assert!(e.to_string().len() < 1000 + body.len()),
            }
        }

        /// `os/arch[/variant]` prints back as written; anything else is refused.
        #[test]
        fn platforms_print_back(input in prop_oneof!["\\PC{0,30}", "[a-z0-9_]{0,6}(/[a-z0-9_.]{0,6}){0,3}"]) {
            if let Ok(p) = input.parse::<Platform>() {
                prop_assert_eq!(p.to_string(), input.clone());
                prop_assert!(p.matches(&entry(Some((&p.os, &p.architecture, p.variant.as_deref())))));
            }
        }
    }
}
