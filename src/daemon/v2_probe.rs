//! `GET http://ADDRESS/v2/` with a deadline: does a registry (dpx) answer
//! there, something else, or nothing? Used by `dpx daemon` while it waits for
//! a daemon to come up and by `dpx doctor` for the configured mirror.

use std::time::Duration;

/// What answered `GET /v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A registry API: the reply carries `Docker-Distribution-API-Version: registry/2.0`.
    Registry { status: u16 },
    /// An HTTP server, but not a registry API: another program has the port.
    Other { status: u16 },
    /// Nothing: connection refused, no answer within the deadline, ...
    Nothing { reason: String },
}

impl Answer {
    /// The HTTP status, when anything answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Registry { status } | Answer::Other { status } => Some(*status),
            Answer::Nothing { .. } => None,
        }
    }
}

/// A probe of dpx's own loopback endpoints: no proxy, short deadlines.
#[derive(Clone)]
pub struct V2Probe {
    client: reqwest::Client,
    deadline: Duration,
}

impl V2Probe {
    /// `connect` for the connection, `deadline` for the whole request.
    pub fn new(connect: Duration, deadline: Duration) -> V2Probe {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(connect)
            .timeout(deadline)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        V2Probe { client, deadline }
    }

    /// Asks `http://{host_port}/v2/`.
    pub async fn probe(&self, host_port: &str) -> Answer {
        match self
            .client
            .get(format!("http://{host_port}/v2/"))
            .send()
            .await
        {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let is_registry = resp
                    .headers()
                    .get("docker-distribution-api-version")
                    .is_some_and(|v| v.as_bytes().starts_with(b"registry/2"));
                if is_registry {
                    Answer::Registry { status }
                } else {
                    Answer::Other { status }
                }
            }
            Err(e) => Answer::Nothing {
                reason: reqwest_reason(&e, self.deadline),
            },
        }
    }

    /// Whether `GET /v2/` answers with a 2xx status.
    pub async fn answers(&self, host_port: &str) -> bool {
        self.probe(host_port)
            .await
            .status()
            .is_some_and(|s| (200..300).contains(&s))
    }
}

/// The innermost cause of a reqwest error ("Connection refused"), not its URL.
pub fn reqwest_reason(e: &reqwest::Error, deadline: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", deadline.as_secs());
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
