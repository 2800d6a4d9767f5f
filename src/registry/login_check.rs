//! Checking a username and password against a registry before `dpx login`
//! stores them: `GET /v2/` for the challenge, then the token realm with
//! Basic credentials (Bearer registries) or `/v2/` again with Basic.

use http::{Method, StatusCode, header};
use reqwest::Url;

use super::body::Reply;
use super::upstream_token::{Challenge, TokenResponse};
use super::{MAX_SMALL_BODY, RegistryClient, RegistryError, check_status, status_error};
use crate::credentials::Credentials;

/// What the registry said of the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    /// Its token service (or its Basic-protected API) accepted them.
    Accepted,
    /// Wrong username or password (401/403 with them).
    Refused,
    /// `/v2/` answers without asking for credentials: nothing to check.
    NotRequired,
}

impl RegistryClient {
    /// Checks credentials against the registry at `base_url` (the API root,
    /// e.g. `https://registry-1.docker.io`), retrying spurious failures.
    pub async fn check_login(
        &self,
        base_url: &str,
        creds: &Credentials,
    ) -> Result<LoginCheck, RegistryError> {
        self.retry
            .run(|| self.check_login_once(base_url, creds))
            .await
    }

    async fn check_login_once(
        &self,
        base_url: &str,
        creds: &Credentials,
    ) -> Result<LoginCheck, RegistryError> {
        let ping = format!("{}/v2/", base_url.trim_end_matches('/'));
        let resp = self
            .send_request(self.http.request(Method::GET, &ping), &ping)
            .await?;
        let resp = Reply::new(resp, self.low_speed);
        if resp.status().is_success() {
            return Ok(LoginCheck::NotRequired);
        }
        if resp.status() != StatusCode::UNAUTHORIZED {
            check_status(resp, &ping, "registry API").await?;
            return Err(RegistryError::Protocol {
                url: ping,
                message: "unexpected reply to GET /v2/".into(),
            });
        }
        let values: Vec<String> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let (url, what) = match Challenge::parse(values.iter().map(String::as_str)) {
            Some(Challenge::Bearer { realm, service, .. }) => {
                let mut url = Url::parse(&realm).map_err(|e| RegistryError::Token {
                    realm: realm.clone(),
                    message: format!("invalid realm URL: {e}"),
                })?;
                if let Some(s) = service {
                    url.query_pairs_mut().append_pair("service", &s);
                }
                (url.to_string(), "token")
            }
            Some(Challenge::Basic) => (ping.clone(), "registry API"),
            None => {
                return Err(RegistryError::Protocol {
                    url: ping,
                    message: "401 without a challenge dpx can answer (WWW-Authenticate)".into(),
                });
            }
        };
        let req = self
            .http
            .get(&url)
            .basic_auth(&creds.username, Some(&creds.password));
        let resp = Reply::new(self.send_request(req, &url).await?, self.low_speed);
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Ok(LoginCheck::Refused);
        }
        if !status.is_success() {
            let retry_after = super::retry_after(resp.headers());
            let body = resp.prefix(MAX_SMALL_BODY).await;
            return Err(status_error(status, retry_after, &body, &url, what));
        }
        if what == "token" {
            // A token service that says 200 must also hand out a token.
            let body = resp.bytes(MAX_SMALL_BODY as u64).await?;
            let token = TokenResponse::parse(&body)
                .ok()
                .and_then(|t| t.into_token());
            if token.is_none() {
                return Err(RegistryError::Token {
                    realm: url,
                    message: "the reply carries no token".into(),
                });
            }
        }
        Ok(LoginCheck::Accepted)
    }
}
