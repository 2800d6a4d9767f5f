//! The registry token flow: parse a `WWW-Authenticate: Bearer` challenge, ask the
//! realm for a token (anonymous or Basic), and cache tokens until they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// What a 401 asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

impl Challenge {
    /// The first challenge we can answer among the header values.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        for value in values {
            let Ok(challenges) = http_auth::parse_challenges(value) else {
                continue;
            };
            for c in challenges {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                if c.scheme.eq_ignore_ascii_case("bearer") {
                    if let Some(realm) = param("realm") {
                        return Some(Challenge::Bearer {
                            realm,
                            service: param("service"),
                            scope: param("scope"),
                        });
                    }
                } else if c.scheme.eq_ignore_ascii_case("basic") {
                    return Some(Challenge::Basic);
                }
            }
        }
        None
    }
}

/// Token endpoint reply: `token` and/or `access_token`, optional `expires_in`.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// Tokens live at least this long when the realm doesn't say (per the spec).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// A realm may promise any lifetime; tokens are asked for again after this
/// long whatever it says (and no `Instant` arithmetic can overflow).
const MAX_TOKEN_LIFETIME: u64 = 24 * 60 * 60;
/// Renew a little early so a token doesn't expire in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

impl TokenResponse {
    /// Reads a token endpoint's reply body.
    pub fn parse(body: &[u8]) -> Result<TokenResponse, serde_json::Error> {
        serde_json::from_slice(body)
    }

    pub fn into_token(self) -> Option<(String, Duration)> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = self
            .expires_in
            .unwrap_or(DEFAULT_TOKEN_LIFETIME)
            .clamp(DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME);
        Some((token, Duration::from_secs(lifetime)))
    }
}

/// Bearer tokens per (registry, scope), kept until shortly before they expire.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl TokenCache {
    pub fn get(&self, registry: &str, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let (token, expires) = tokens.get(&(registry.to_string(), scope.to_string()))?;
        (Instant::now() < *expires).then(|| token.clone())
    }

    pub fn put(&self, registry: &str, scope: &str, token: String, lifetime: Duration) {
        let now = Instant::now();
        let lifetime = lifetime.min(Duration::from_secs(MAX_TOKEN_LIFETIME));
        let expires = now
            .checked_add(lifetime.saturating_sub(EXPIRY_MARGIN))
            .unwrap_or(now);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert((registry.to_string(), scope.to_string()), (token, expires));
        }
    }

    pub fn forget(&self, registry: &str, scope: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(&(registry.to_string(), scope.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_realm_promising_days_gets_its_token_asked_again_within_a_day() {
        let reply = |expires_in: Option<u64>| {
            TokenResponse::parse(
                serde_json::json!({"token": "t", "expires_in": expires_in})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
            .into_token()
            .unwrap()
            .1
        };
        assert_eq!(reply(Some(10 * 24 * 3600)), Duration::from_secs(24 * 3600));
        assert_eq!(reply(Some(3600)), Duration::from_secs(3600));
        assert_eq!(
            reply(Some(1)),
            Duration::from_secs(60),
            "at least the spec's 60 s"
        );
        assert_eq!(reply(None), Duration::from_secs(60));
    }

    #[test]
    fn a_forgotten_token_is_asked_again_and_others_stay() {
        let cache = TokenCache::default();
        cache.put(
            "docker.io",
            "repository:a:pull",
            "ta".into(),
            Duration::from_secs(300),
        );
        cache.put(
            "docker.io",
            "repository:b:pull",
            "tb".into(),
            Duration::from_secs(300),
        );
        assert_eq!(
            cache.get("docker.io", "repository:a:pull").as_deref(),
            Some("ta")
        );
        cache.forget("docker.io", "repository:a:pull");
        assert_eq!(cache.get("docker.io", "repository:a:pull"), None);
        assert_eq!(
            cache.get("docker.io", "repository:b:pull").as_deref(),
            Some("tb")
        );
        // Within the renewal margin a token counts as expired.
        cache.put(
            "docker.io",
            "repository:c:pull",
            "tc".into(),
            Duration::from_secs(3),
        );
        assert_eq!(cache.get("docker.io", "repository:c:pull"), None);
    }

    #[test]
    fn parses_docker_hub_challenge() {
        let c = Challenge::parse([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        ]);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse([r#"Basic realm="x""#]),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse(["garbage ,,, ="]), None);
    }

    #[test]
    fn token_response_forms() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Duration::from_secs(60))));
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"t","access_token":"t","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("t".into(), Duration::from_secs(300))));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"t","expires_in":5}"#).unwrap();
        assert_eq!(
            t.into_token().map(|(_, d)| d),
            Some(Duration::from_secs(60))
        );
        let t: TokenResponse = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(t.into_token(), None);
        // A realm promising forever gets a day, and nothing overflows.
        let t = TokenResponse::parse(br#"{"token":"t","expires_in":18446744073709551615}"#)
            .unwrap()
            .into_token()
            .unwrap();
        assert_eq!(t.1, Duration::from_secs(MAX_TOKEN_LIFETIME));
        let c = TokenCache::default();
        c.put("r", "s", t.0, Duration::MAX);
        assert_eq!(c.get("r", "s").as_deref(), Some("t"));
    }

    #[test]
    fn cache_expires() {
        let c = TokenCache::default();
        c.put("r", "s", "tok".into(), Duration::from_secs(60));
        assert_eq!(c.get("r", "s").as_deref(), Some("tok"));
        assert_eq!(c.get("r", "other"), None);
        c.put("r", "s", "tok".into(), Duration::from_secs(1));
        assert_eq!(c.get("r", "s"), None);
    }
}
