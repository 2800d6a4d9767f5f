//! Manifest media types, the Accept list, and choosing a platform from an index.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

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
            other => Err(ManifestError::UnsupportedType(other.to_string())),
        }
    }
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
}
