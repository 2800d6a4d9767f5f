//! Image references (`[registry/]repository[:tag][@digest]`) normalised the way
//! docker does, the `Digest` newtype, and `HostKey`: the one way a registry
//! host is written as a key.
//!
//! Everything that later becomes a path in the cache passes through here, so the
//! validation is strict: lowercase repository components, tag and digest grammar
//! from the OCI distribution spec, no `..`.

use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid repository name {name:?}: {why}")]
    Repository { name: String, why: &'static str },
    #[error(
        "invalid tag {tag:?}: tags are 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
    )]
    Tag { tag: String },
    #[error("invalid digest {digest:?}: {why}")]
    Digest { digest: String, why: &'static str },
    #[error("invalid registry host {host:?}")]
    Registry { host: String },
}

/// A content digest; only sha256 is accepted (what every registry serves today).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn from_hex(hex: &str) -> Result<Self, ReferenceError> {
        format!("sha256:{hex}").parse()
    }

    /// Digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest {
            hex: hex::encode(sha2::Sha256::digest(data)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ReferenceError::Digest {
            digest: s.to_string(),
            why,
        };
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| err("expected sha256:<64 hex digits>"))?;
        if algo != "sha256" {
            return Err(err("only sha256 digests are supported"));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err("expected 64 lowercase hex digits after sha256:"));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two plain writes, not `write!`: every manifest answer formats one.
        f.write_str("sha256:")?;
        f.write_str(&self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a reference points at inside a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Tag(String),
    Digest(Digest),
}

impl Target {
    /// Parses the `<reference>` path part of `/v2/<name>/manifests/<reference>`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.contains(':') {
            Ok(Target::Digest(s.parse()?))
        } else {
            validate_tag(s)?;
            Ok(Target::Tag(s.to_string()))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tag(t) => f.write_str(t),
            Target::Digest(d) => d.fmt(f),
        }
    }
}

/// A fully normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry name as users write it (`docker.io`, `ghcr.io`, `host:5000`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// The manifest to ask for: the digest when pinned, else the tag.
    pub fn target(&self) -> Target {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Target::Digest(d.clone()),
            (None, Some(t)) => Target::Tag(t.clone()),
            (None, None) => Target::Tag("latest".into()),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &name_tag[at + 1..];
                validate_tag(tag)?;
                (&name_tag[..at], Some(tag.to_string()))
            }
            None => (name_tag, None),
        };
        let (registry, repository) = split_registry(name)?;
        validate_repository(&repository)?;
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker Hub's names: one registry, whichever of them is written.
const DOCKER_HUB_ALIASES: &[&str] = &[
    DOCKER_HUB,
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// A registry host as dpx keys things by it: a lowercase `host[:port]`.
///
/// Two meanings, one constructor each:
/// - [`HostKey::of_endpoint`]: the host actually contacted, from an endpoint
///   URL (`registry-1.docker.io`, the port only when not the scheme's
///   default). Tokens and quota figures are kept under it.
/// - [`HostKey::of_registry`]: the registry a name stands for, with every
///   Docker Hub alias folded into `docker.io`. Credentials are kept under it,
///   so a login for `docker.io` is used at `registry-1.docker.io`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKey(String);

impl HostKey {
    /// `host[:port]` of an endpoint URL (`https://Gitlab.Example.com:443` ->
    /// `gitlab.example.com`), aliases kept apart; for text that is no URL,
    /// what follows the scheme up to the first `/`.
    pub fn of_endpoint(url: &str) -> HostKey {
        if let Ok(u) = url::Url::parse(url)
            && let Some(host) = u.host_str()
        {
            let host = host.to_ascii_lowercase();
            return HostKey(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            });
        }
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        HostKey(rest.split('/').next().unwrap_or(rest).to_ascii_lowercase())
    }

    /// The registry a name stands for: a registry name, a `host[:port]`, or a
    /// URL (`https://index.docker.io/v1/`, as Docker's config.json writes
    /// Docker Hub) becomes its `host[:port]` as written, with every Docker
    /// Hub alias folded into `docker.io`.
    pub fn of_registry(name: &str) -> HostKey {
        let name = name.trim();
        let rest = name.split_once("://").map_or(name, |(_, rest)| rest);
        HostKey(rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()).folded()
    }

    /// The registry this endpoint serves: Docker Hub's aliases folded, so an
    /// endpoint's credentials are the registry's.
    pub fn folded(self) -> HostKey {
        if DOCKER_HUB_ALIASES.contains(&self.0.as_str()) {
            HostKey(DOCKER_HUB.to_string())
        } else {
            self
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<HostKey> for String {
    fn from(key: HostKey) -> String {
        key.0
    }
}

impl PartialEq<str> for HostKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for HostKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Docker's rule: the first component is a registry when it has a '.' or ':',
/// is `localhost`, or has upper-case letters; otherwise the image is on Docker Hub.
fn split_registry(name: &str) -> Result<(String, String), ReferenceError> {
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            validate_registry(first)?;
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    let repository = if registry == DOCKER_HUB && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest
    };
    Ok((registry, repository))
}

/// A host name is at most 253 characters, a label 63 (RFC 1035). The limit
/// holds for `host[:port]` as a whole: it is one file name in the cache.
const MAX_HOST_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

pub fn validate_registry(host: &str) -> Result<(), ReferenceError> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && host.len() <= MAX_HOST_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(ReferenceError::Registry {
            host: host.to_string(),
        })
    }
}

/// Path components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 bytes.
pub fn validate_repository(name: &str) -> Result<(), ReferenceError> {
    let err = |why| ReferenceError::Repository {
        name: name.to_string(),
        why,
    };
    if name.is_empty() {
        return Err(err("the repository name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(err("longer than 255 characters"));
    }
    for component in name.split('/') {
        if component.is_empty() {
            return Err(err("empty path component"));
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err("repository names must be lowercase"));
        }
        if !valid_component(component) {
            return Err(err(
                "components are lowercase letters and digits separated by '.', '_', '__' or '-'",
            ));
        }
    }
    Ok(())
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            expect_alnum = false;
            i += 1;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: '.', '_', '__', or a run of '-'.
        let sep_len = match b {
            b'.' => 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => bytes[i..].iter().take_while(|&&x| x == b'-').count(),
            _ => return false,
        };
        i += sep_len;
        expect_alnum = true;
    }
    !expect_alnum
}

pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag {
            tag: tag.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        for name in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
            "https://index.docker.io/v1/",
            "https://registry-1.docker.io",
            "Docker.IO",
        ] {
            assert_eq!(HostKey::of_registry(name), "docker.io", "{name}");
        }
        assert_eq!(HostKey::of_registry("ghcr.io"), "ghcr.io");
        assert_eq!(
            HostKey::of_registry("http://127.0.0.1:5000/v2/"),
            "127.0.0.1:5000"
        );
        let registry_of = |url| HostKey::of_endpoint(url).folded();
        assert_eq!(registry_of("https://registry-1.docker.io"), "docker.io");
        assert_eq!(registry_of("http://127.0.0.1:5001"), "127.0.0.1:5001");
        assert_eq!(
            registry_of("https://gitlab.example.com:8443/x"),
            "gitlab.example.com:8443"
        );
    }

    #[test]
    fn endpoints_keep_aliases_apart_and_drop_default_ports_only() {
        assert_eq!(
            HostKey::of_endpoint("https://Gitlab.Example.com:443"),
            "gitlab.example.com"
        );
        assert_eq!(
            HostKey::of_endpoint("http://gitlab.example.com:80/x"),
            "gitlab.example.com"
        );
        assert_eq!(
            HostKey::of_endpoint("https://r.example:8443"),
            "r.example:8443"
        );
        assert_eq!(HostKey::of_endpoint("http://[::1]:5000"), "[::1]:5000");
        assert_eq!(HostKey::of_endpoint("not a url/x"), "not a url");
        assert_eq!(
            HostKey::of_endpoint("https://registry-1.docker.io"),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("library/alpine", "docker.io/library/alpine:latest"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
            ("ghcr.io/org/app:1.2", "ghcr.io/org/app:1.2"),
            ("host:5000/a/b:tag", "host:5000/a/b:tag"),
            ("localhost/app", "localhost/app:latest"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
            ("user/a.b-c__d", "docker.io/user/a.b-c__d:latest"),
            ("x---y/z", "docker.io/x---y/z:latest"),
        ];
        for (input, want) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), want, "{input}");
        }
    }

    #[test]
    fn digests() {
        let r: Reference = format!("alpine@{D}").parse().unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().map(|d| d.to_string()).as_deref(), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));
        let r: Reference = format!("host:5000/a:v1@{D}").parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.target(), Target::Digest(D.parse().unwrap()));
    }

    #[test]
    fn rejects_invalid() {
        let bad = [
            "",
            "Alpine",
            "user/App",
            "alpine:",
            "alpine:-x",
            "alpine:.x",
            "a/../b",
            "..",
            "a//b",
            "a/b/",
            "a_-b",
            "-a",
            "a.",
            "alpine@sha256:abc",
            "alpine@md5:0123456789abcdef0123456789abcdef",
            "alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
            "host:abc/app",
            "ex ample.com/app",
        ];
        for input in bad {
            assert!(
                input.parse::<Reference>().is_err(),
                "{input:?} should be rejected"
            );
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(long.parse::<Reference>().is_err());
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(long_tag.parse::<Reference>().is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(Target::parse("v1").unwrap(), Target::Tag("v1".into()));
        assert!(matches!(Target::parse(D).unwrap(), Target::Digest(_)));
        for bad in ["", "..", "../x", "sha256:zz", "a/b"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn digest_of_and_from_hex() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
    }

    /// A host longer than DNS allows is no registry; before the limit it
    /// reached the cache as a file name too long to open (a 500 from serve).
    #[test]
    fn registry_hosts_and_labels_over_the_dns_limits_are_invalid() {
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(longest.len(), 253);
        validate_registry(&longest).unwrap();
        validate_registry(&format!("{label}.io:5000")).unwrap();
        for bad in [
            format!("{longest}c"),
            format!("{}:5000", &longest[..250]),
            format!("{label}a.io"),
            format!("{}.example", "h".repeat(300)),
        ] {
            assert!(validate_registry(&bad).is_err(), "{bad}");
            let name = format!("{bad}/app:v1");
            assert!(name.parse::<Reference>().is_err(), "{name}");
        }
    }

    #[test]
    fn a_host_key_reads_back_as_its_host() {
        let key = HostKey::of_registry("GHCR.io");
        assert_eq!(key.as_str(), "ghcr.io");
        assert_eq!(key.to_string(), "ghcr.io");
        assert_eq!(String::from(key.clone()), "ghcr.io");
        assert_eq!(key.clone().into_string(), "ghcr.io");
        assert!(key == *"ghcr.io" && key != *"ghcr.io:443");
        assert!(key == "ghcr.io" && key != "docker.io");
    }

    #[test]
    fn a_repository_name_may_be_255_characters_long() {
        assert_eq!(validate_repository(&"a".repeat(MAX_NAME_LEN)), Ok(()));
        assert!(validate_repository(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        let path = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        assert_eq!(validate_repository(&path), Ok(()));
    }

    /// Whether `name` is a repository name by the distribution spec's grammar,
    /// checked another way than `valid_component` does: the separators
    /// between runs of `[a-z0-9]` must each be `.`, `_`, `__` or a run of `-`.
    fn in_grammar(name: &str) -> bool {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        name.len() <= MAX_NAME_LEN
            && name.split('/').all(|component| {
                let separators: Vec<&str> =
                    component.split(alnum).filter(|s| !s.is_empty()).collect();
                let words = component
                    .split(|c: char| !alnum(c))
                    .filter(|s| !s.is_empty())
                    .count();
                component.starts_with(alnum)
                    && component.ends_with(alnum)
                    && words == separators.len() + 1
                    && separators
                        .iter()
                        .all(|s| matches!(*s, "." | "_" | "__") || s.bytes().all(|b| b == b'-'))
            })
    }

    fn tag_in_grammar(tag: &str) -> bool {
        (1..=128).contains(&tag.len())
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }

    /// Text shaped like references: their characters, case and lengths.
    fn reference_like() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![
            "\\PC{0,80}",
            "[a-zA-Z0-9:/@._ -]{0,60}",
            "([a-z0-9.:-]{1,12}/)?[a-z0-9._/-]{1,30}(:[a-zA-Z0-9._-]{0,12})?(@sha256:[0-9a-f]{64})?",
        ]
    }

    /// References built from the grammar, so most are valid.
    fn grammar_reference() -> impl proptest::strategy::Strategy<
        Value = (Option<String>, Vec<String>, Option<String>, Option<String>),
    > {
        (
            proptest::option::of(
                "[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){1,2}(:[0-9]{1,5})?|localhost(:[0-9]{1,5})?",
            ),
            proptest::collection::vec("[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}", 1..4),
            proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"),
            proptest::option::of("[0-9a-f]{64}"),
        )
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No text panics the parser; what it accepts is in the grammar and
        /// prints back to the same reference.
        #[test]
        fn any_text_is_a_valid_reference_or_refused(input in reference_like()) {
            if let Ok(r) = input.parse::<Reference>() {
                proptest::prop_assert!(validate_registry(&r.registry).is_ok(), "{r:?}");
                proptest::prop_assert!(in_grammar(&r.repository), "{r:?}");
                proptest::prop_assert!(r.tag.is_some() || r.digest.is_some(), "{r:?}");
                if let Some(tag) = &r.tag {
                    proptest::prop_assert!(tag_in_grammar(tag), "{r:?}");
                }
                proptest::prop_assert_eq!(r.to_string().parse::<Reference>(), Ok(r));
            }
        }

        /// Names built by the grammar are accepted, normalised as docker does.
        #[test]
        fn grammar_references_are_accepted((registry, path, tag, hex) in grammar_reference()) {
            let mut text = path.join("/");
            if let Some(r) = &registry {
                text = format!("{r}/{text}");
            }
            if let Some(t) = &tag {
                text = format!("{text}:{t}");
            }
            if let Some(h) = &hex {
                text = format!("{text}@sha256:{h}");
            }
            let r = text.parse::<Reference>();
            // A first part with a '.' is a registry host, where '_' is no letter.
            if registry.is_none() && path.len() > 1 && path[0].contains('.') && validate_registry(&path[0]).is_err() {
                proptest::prop_assert!(r.is_err(), "{text}: {r:?}");
                return Ok(());
            }
            proptest::prop_assert!(r.is_ok(), "{text}: {r:?}");
            let Ok(r) = r else { return Ok(()) };
            let name = path.join("/");
            match &registry {
                Some(host) => {
                    proptest::prop_assert_eq!(&r.registry, host);
                    proptest::prop_assert_eq!(&r.repository, &name);
                }
                // Docker's rule: a first part with a '.' or ':' is a registry.
                None if path.len() > 1 && path[0].contains(['.', ':']) => {
                    proptest::prop_assert_eq!(&r.registry, &path[0]);
                    proptest::prop_assert_eq!(r.repository.clone(), path[1..].join("/"));
                }
                None if path.len() == 1 => {
                    proptest::prop_assert_eq!(r.registry.as_str(), DOCKER_HUB);
                    proptest::prop_assert_eq!(r.repository.clone(), format!("library/{name}"));
                }
                None => proptest::prop_assert_eq!(&r.repository, &name),
            }
            let want_tag = match (&tag, &hex) {
                (None, None) => Some("latest".to_string()),
                _ => tag.clone(),
            };
            proptest::prop_assert_eq!(r.tag, want_tag);
            proptest::prop_assert_eq!(r.digest.map(|d| d.hex().to_string()), hex);
        }

        /// A digest is accepted exactly when it is `sha256:` and 64 lowercase hex
        /// digits, and prints back as written.
        #[test]
        fn any_text_is_a_digest_only_if_it_prints_back(
            input in proptest::prop_oneof!["\\PC{0,80}", "(sha256|sha512|SHA256):[0-9a-fA-F]{60,68}"],
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            if let Ok(d) = input.parse::<Digest>() {
                proptest::prop_assert_eq!(d.to_string(), input.clone());
                proptest::prop_assert!(d.hex().len() == 64 && d.hex().bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
            let d = Digest::of(&data);
            proptest::prop_assert_eq!(d.to_string().parse::<Digest>(), Ok(d.clone()));
            proptest::prop_assert_eq!(Digest::from_hex(d.hex()), Ok(d.clone()));
            let json = serde_json::to_string(&d).unwrap_or_default();
            proptest::prop_assert_eq!(serde_json::from_str::<Digest>(&json).ok(), Some(d));
        }

        /// The `<reference>` of a manifest path is a tag or a digest that
        /// prints back as written, never a path.
        #[test]
        fn any_manifest_reference_is_a_tag_or_digest(input in reference_like()) {
            if let Ok(t) = Target::parse(&input) {
                proptest::prop_assert_eq!(t.to_string(), input.clone());
                proptest::prop_assert!(!input.contains('/') && !input.starts_with('.'));
            }
        }

        /// Any registry name or URL keys to a lowercase host without a path.
        #[test]
        fn any_registry_name_keys_to_a_lowercase_host(input in "\\PC{0,60}") {
            let key = HostKey::of_registry(&input);
            proptest::prop_assert!(!key.as_str().contains('/'));
            proptest::prop_assert!(!key.as_str().bytes().any(|b| b.is_ascii_uppercase()));
            let endpoint = HostKey::of_endpoint(&input);
            proptest::prop_assert!(!endpoint.as_str().bytes().any(|b| b.is_ascii_uppercase()));
        }
    }
}
