//! Which addresses dpx may connect to for a registry that a client named
//! (`dpx serve`'s prefix hosts and `?ns=`) rather than the config file:
//! public ones only. The rule is applied to the addresses actually connected
//! to — a resolver for names, the URL for IP literals — on every connection,
//! so a name that changes its answer (DNS rebinding) or fails to resolve never
//! reaches loopback or the LAN, and nothing is remembered between lookups.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A connection refused because every address of `host` is non-public.
#[derive(Debug, thiserror::Error)]
#[error("{host} is not a public address")]
pub struct NonPublicAddress {
    pub host: String,
}

/// Resolves names with the system's resolver and keeps only public addresses.
#[derive(Clone, Default)]
pub struct PublicOnly;

impl PublicOnly {
    pub fn resolver() -> Arc<PublicOnly> {
        Arc::new(PublicOnly)
    }
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public = only_public(&host, found)?;
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The public addresses among `found`; an error naming `host` when there are none.
pub fn only_public(
    host: &str,
    found: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, NonPublicAddress> {
    let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
    if public.is_empty() {
        return Err(NonPublicAddress {
            host: host.to_string(),
        });
    }
    Ok(public)
}

/// For a URL host that is an IP literal (no resolver sees it): an error
/// unless it is public. Names pass (the resolver checks them).
pub fn check_literal(url: &reqwest::Url) -> Result<(), NonPublicAddress> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(NonPublicAddress {
            host: url.host_str().unwrap_or_default().to_string(),
        })
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
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    // ::a.b.c.d (IPv4-compatible, deprecated) carries an IPv4 address too.
    let compatible = ip.segments()[..6].iter().all(|s| *s == 0);
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || compatible
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
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "1.1.1.1",
            "52.1.2.3",
            "2606:4700::1111",
            "100.128.0.1",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_lookup_keeps_only_public_addresses_and_fails_without_any() {
        let addr = |s: &str| SocketAddr::new(s.parse().unwrap(), 0);
        let mixed = vec![addr("127.0.0.1"), addr("1.1.1.1"), addr("::1")];
        assert_eq!(only_public("a", mixed).unwrap(), vec![addr("1.1.1.1")]);
        let err = only_public(
            "evil.test",
            vec![addr("127.0.0.1"), addr("::ffff:10.0.0.1")],
        )
        .unwrap_err();
        assert_eq!(err.host, "evil.test");
        assert!(only_public("none", Vec::new()).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_for_loopback_on_every_lookup() {
        let resolver = PublicOnly;
        for _ in 0..2 {
            let name: Name = "localhost".parse().unwrap();
            let err = match resolver.resolve(name).await {
                Ok(addrs) => panic!("resolved: {:?}", addrs.collect::<Vec<_>>()),
                Err(e) => e,
            };
            assert!(err.downcast_ref::<NonPublicAddress>().is_some(), "{err}");
        }
    }

    #[test]
    fn ip_literals_are_checked_names_left_to_the_resolver() {
        for url in [
            "http://127.0.0.1:8080/v2/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest",
        ] {
            assert!(check_literal(&url.parse().unwrap()).is_err(), "{url}");
        }
        for url in [
            "https://1.1.1.1/",
            "https://localhost/",
            "https://evil.test/",
        ] {
            assert!(check_literal(&url.parse().unwrap()).is_ok(), "{url}");
        }
    }
}
