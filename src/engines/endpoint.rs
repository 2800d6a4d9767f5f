//! The address engines and CI jobs reach dpx at: what `dpx serve` listens on
//! by default (`DPX_LISTEN`, else `[serve] listen`, else 127.0.0.1:5000).
//! `setup`, `env` and `doctor` all name this one address.

use crate::config::{Config, DEFAULT_LISTEN};
use crate::exit::UsageError;

/// The environment variable `dpx serve --listen` also reads.
pub const LISTEN_ENV: &str = "DPX_LISTEN";

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    File,
    Env,
    Flag,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::File => "file",
            Origin::Env => "env",
            Origin::Flag => "flag",
        }
    }
}

/// The mirror's `HOST:PORT` and where it was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `127.0.0.1:5000`, `[::1]:5000` or `localhost:5000`: what goes into engine configs.
    pub host_port: String,
    pub origin: Origin,
}

impl Endpoint {
    /// `DPX_LISTEN`, else `[serve] listen`, else the default.
    pub fn from_config(config: &Config) -> Result<Endpoint, UsageError> {
        let env = std::env::var(LISTEN_ENV).ok().filter(|v| !v.is_empty());
        let (listen, origin) = match (env, config.serve.listen.as_deref()) {
            (Some(v), _) => (v, Origin::Env),
            (None, Some(v)) => (v.to_string(), Origin::File),
            (None, None) => (DEFAULT_LISTEN.to_string(), Origin::Default),
        };
        Endpoint::parse(&listen, origin)
    }

    fn parse(listen: &str, origin: Origin) -> Result<Endpoint, UsageError> {
        let bad = |why: &str| {
            UsageError(format!(
                "the listen address {listen:?} ({} {}) {why}: set [serve] listen = \"127.0.0.1:5000\" \
                 or DPX_LISTEN to the address dpx serve listens on",
                origin.as_str(),
                match origin {
                    Origin::Env => LISTEN_ENV,
                    _ => "[serve] listen",
                }
            ))
        };
        let port = listen
            .rsplit_once(':')
            .map(|(_, p)| p)
            .ok_or_else(|| bad("has no port"))?;
        match port.parse::<u16>() {
            Ok(0) => return Err(bad("has port 0, which engines cannot be pointed at")),
            Ok(_) => {}
            Err(_) => return Err(bad("has no valid port")),
        }
        let host = &listen[..listen.len() - port.len() - 1];
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad("is not HOST:PORT"));
        }
        Ok(Endpoint {
            host_port: listen.to_string(),
            origin,
        })
    }

    /// `http://HOST:PORT`: dpx serves plain HTTP on loopback.
    pub fn url(&self) -> String {
        format!("http://{}", self.host_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_port() {
        for ok in ["127.0.0.1:5000", "[::1]:6000", "localhost:1"] {
            assert_eq!(
                Endpoint::parse(ok, Origin::File).unwrap().host_port,
                ok,
                "{ok}"
            );
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            ":5000",
            "a b:1",
            "x:y",
            "http://a:1",
        ] {
            let err = Endpoint::parse(bad, Origin::File).unwrap_err().0;
            assert!(err.contains("[serve] listen"), "{bad}: {err}");
        }
    }
}
