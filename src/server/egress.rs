//! Which upstream hosts `dpx serve` may contact for a client. Prefix mode and
//! `?ns=` let any local client name a host; without this check a web page or
//! container on the machine could make dpx reach the LAN or loopback services.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use super::ApiError;
use crate::reference::DOCKER_HUB;

/// How long a host found public is trusted before it is resolved again.
const REMEMBER: Duration = Duration::from_secs(60);
/// Hosts remembered at most (the map is cleared when full).
const REMEMBER_MAX: usize = 1024;
/// A lookup slower than this is left to the registry client's own deadlines.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Egress {
    /// `[serve] registries`: when set, the only hosts allowed.
    allow_list: Option<BTreeSet<String>>,
    /// Hosts with a `[registries."HOST"]` table: the user named them, so they may be private.
    configured: BTreeSet<String>,
    public: Mutex<HashMap<String, Instant>>,
}

impl Egress {
    pub fn new(
        allow_list: Option<impl IntoIterator<Item = String>>,
        configured: impl IntoIterator<Item = String>,
    ) -> Egress {
        Egress {
            allow_list: allow_list.map(|l| l.into_iter().map(|h| h.to_ascii_lowercase()).collect()),
            configured: configured
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            public: Mutex::default(),
        }
    }

    /// Anyone may be contacted (tests of the server alone).
    pub fn open() -> Egress {
        Egress::new(None::<Vec<String>>, Vec::new())
    }

    /// Ok if dpx may contact `host` (`name[:port]`) for a client; a 403 `DENIED` saying
    /// which config key allows it otherwise.
    pub async fn check(&self, host: &str) -> Result<(), ApiError> {
        let key = host.to_ascii_lowercase();
        if let Some(list) = &self.allow_list
            && !list.contains(&key)
        {
            return Err(denied(format!(
                "dpx serve does not contact {host}: it is not in the [serve] registries allow-list \
                 of the config file; add \"{host}\" there to allow it"
            )));
        }
        // Docker Hub's endpoint is built in and public: no lookup, so serving
        // the cache during an outage never waits on DNS.
        if key == DOCKER_HUB || self.configured.contains(&key) || self.remembered(&key) {
            return Ok(());
        }
        let lookup = match host.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() && !host.ends_with(']') => {
                host.to_string()
            }
            _ => format!("{host}:443"),
        };
        // An unresolvable (or slow to resolve) host is left to the registry
        // client, which reports it; remembered, so each request doesn't wait again.
        let Ok(Ok(addrs)) =
            tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(lookup)).await
        else {
            self.remember(key);
            return Ok(());
        };
        if let Some(ip) = addrs.map(|a| a.ip()).find(|ip| !is_public(*ip)) {
            return Err(denied(format!(
                "dpx serve does not contact {host}: it resolves to the non-public address {ip}; \
                 add a [registries.\"{host}\"] table to the config file to allow it"
            )));
        }
        self.remember(key);
        Ok(())
    }

    fn remember(&self, key: String) {
        if let Ok(mut public) = self.public.lock() {
            if public.len() >= REMEMBER_MAX {
                public.clear();
            }
            public.insert(key, Instant::now());
        }
    }

    fn remembered(&self, key: &str) -> bool {
        self.public
            .lock()
            .ok()
            .and_then(|p| p.get(key).copied())
            .is_some_and(|at| at.elapsed() < REMEMBER)
    }
}

fn denied(message: String) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        code: "DENIED",
        message,
        retry_after: None,
    }
}

/// Not loopback, private, link-local, shared (CGNAT), unspecified or the like.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "52.1.2.3", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn refuses_private_hosts_unless_configured() {
        let egress = Egress::new(None::<Vec<String>>, vec!["127.0.0.1:5001".to_string()]);
        assert!(egress.check("127.0.0.1:5001").await.is_ok());
        let err = egress.check("127.0.0.1:5002").await.unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(err.code, "DENIED");
        assert!(
            err.message.contains("[registries.\"127.0.0.1:5002\"]"),
            "{}",
            err.message
        );
        for host in ["localhost:80", "[::1]:5000", "10.0.0.1", "169.254.169.254"] {
            assert!(egress.check(host).await.is_err(), "{host}");
        }
    }

    #[tokio::test]
    async fn docker_hub_needs_no_lookup_and_an_unresolvable_host_is_looked_up_once() {
        let egress = Egress::new(None::<Vec<String>>, Vec::<String>::new());
        assert!(egress.check("docker.io").await.is_ok());
        assert!(!egress.remembered("docker.io"), "no lookup was needed");
        assert!(egress.check("nowhere.invalid").await.is_ok());
        assert!(egress.remembered("nowhere.invalid"));
    }

    #[tokio::test]
    async fn an_allow_list_admits_only_its_hosts() {
        let egress = Egress::new(
            Some(vec!["127.0.0.1:5001".to_string()]),
            vec!["127.0.0.1:5001".to_string(), "127.0.0.1:5003".to_string()],
        );
        assert!(egress.check("127.0.0.1:5001").await.is_ok());
        let err = egress.check("127.0.0.1:5003").await.unwrap_err();
        assert!(
            err.message.contains("[serve] registries"),
            "{}",
            err.message
        );
        assert!(egress.check("ghcr.io").await.is_err());
    }
}
