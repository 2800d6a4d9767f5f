//! The JWTs `dpx serve` hands out at `/token` and checks on every request:
//! HS256 with the key from the config directory, `aud` = `iss` = "dpx", and
//! the repositories they may pull in distribution's `access` claim.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `service` of the challenge, and the tokens' audience and issuer.
pub const SERVICE: &str = "dpx";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Access>,
}

/// One grant, as the distribution registry's tokens write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Claims {
    /// Whether the token lets its holder pull repository `name` (as the
    /// request path writes it).
    pub fn may_pull(&self, name: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == "repository" && a.name == name && a.actions.iter().any(|x| x == "pull")
        })
    }
}

/// A token as `/token` answers it.
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: SystemTime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired; log in again (docker login) to get a new one")]
    Expired,
    #[error("the token is not one of this dpx serve's (bad signature, audience or format)")]
    Invalid,
}

/// Signs and checks tokens; the key stays in memory.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl Signer {
    pub fn new(key: &[u8], lifetime: Duration) -> Signer {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[SERVICE]);
        validation.set_issuer(&[SERVICE]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        // The same process issues and checks: no clock skew to allow for.
        validation.leeway = 0;
        Signer {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            lifetime,
        }
    }

    pub fn issue(
        &self,
        user: &str,
        access: Vec<Access>,
    ) -> Result<Issued, jsonwebtoken::errors::Error> {
        let issued_at = SystemTime::now();
        let now = issued_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let lifetime = self.lifetime.as_secs().max(1);
        let claims = Claims {
            iss: SERVICE.into(),
            sub: user.into(),
            aud: SERVICE.into(),
            exp: now.saturating_add(lifetime),
            nbf: now,
            iat: now,
            jti: hex::encode(super::random_bytes::<16>()),
            access,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(Issued {
            token,
            expires_in: lifetime,
            issued_at,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// The pull grants for the `scope` parameters of a token request
/// (`repository:NAME:ACTIONS`, several per parameter when space-separated).
/// Only `pull` is granted: dpx is read-only. Other scopes are ignored.
pub fn pull_grants<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Vec<Access> {
    let mut grants: Vec<Access> = Vec::new();
    for scope in scopes.into_iter().flat_map(str::split_whitespace) {
        let Some(rest) = scope.strip_prefix("repository:") else {
            continue;
        };
        // The name may hold a port (`127.0.0.1:5001/app`): the actions follow the last colon.
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let wants_pull = actions.split(',').any(|a| a == "pull" || a == "*");
        if !wants_pull || !plausible_name(name) || grants.iter().any(|g| g.name == name) {
            continue;
        }
        grants.push(Access {
            kind: "repository".into(),
            name: name.into(),
            actions: vec!["pull".into()],
        });
    }
    grants
}

/// A repository name as a request path could hold it (the path check
/// compares it exactly; this only keeps junk out of tokens).
fn plausible_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_a_request_path_could_hold_go_into_a_token() {
        for ok in [
            "a",
            "library/alpine",
            "ghcr.io:443/org/app-1_x.y",
            &"a".repeat(512),
        ] {
            assert!(plausible_name(ok), "{ok}");
        }
        for bad in ["", "Library/alpine", "a b", "a\nb", "é", &"a".repeat(513)] {
            assert!(!plausible_name(bad), "{bad}");
        }
    }

    fn signer(key: &[u8]) -> Signer {
        Signer::new(key, Duration::from_secs(300))
    }

    #[test]
    fn scopes_become_pull_grants_only() {
        let grants = pull_grants([
            "repository:library/alpine:pull",
            "repository:127.0.0.1:5001/app:pull,push registry:catalog:*",
            "repository:other:push",
            "repository:library/alpine:pull",
            "repository:BAD NAME:pull",
        ]);
        let names: Vec<_> = grants.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["library/alpine", "127.0.0.1:5001/app"]);
        assert!(grants.iter().all(|g| g.actions == ["pull"]));
    }

    #[test]
    fn tokens_carry_their_grants_and_are_checked() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let issued = s
            .issue("dpx", pull_grants(["repository:library/a:pull"]))
            .unwrap();
        assert_eq!(issued.expires_in, 300);
        let claims = s.verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "dpx");
        assert!(claims.may_pull("library/a"));
        assert!(!claims.may_pull("library/b"));
        assert!(!claims.may_pull("a"));

        let other = signer(b"another key, another key, another");
        assert_eq!(other.verify(&issued.token), Err(TokenError::Invalid));
        let mut tampered = issued.token.clone();
        tampered.insert(tampered.find('.').unwrap() + 3, 'x');
        assert_eq!(s.verify(&tampered), Err(TokenError::Invalid));
        assert_eq!(s.verify("not a token"), Err(TokenError::Invalid));
    }

    #[test]
    fn expired_or_foreign_audience_tokens_are_refused() {
        let key = b"0123456789abcdef0123456789abcdef";
        let s = signer(key);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = Claims {
            iss: SERVICE.into(),
            sub: "dpx".into(),
            aud: SERVICE.into(),
            exp: now - 10,
            nbf: now - 20,
            iat: now - 20,
            jti: "x".into(),
            access: vec![],
        };
        let enc = EncodingKey::from_secret(key);
        let sign =
            |c: &Claims| jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &enc).unwrap();
        assert_eq!(s.verify(&sign(&claims)), Err(TokenError::Expired));
        claims.exp = now + 100;
        assert!(s.verify(&sign(&claims)).is_ok());
        claims.aud = "registry.docker.io".into();
        assert_eq!(s.verify(&sign(&claims)), Err(TokenError::Invalid));
        claims.aud = SERVICE.into();
        let none = jsonwebtoken::encode(&Header::new(Algorithm::HS384), &claims, &enc).unwrap();
        assert_eq!(s.verify(&none), Err(TokenError::Invalid));
    }
}
