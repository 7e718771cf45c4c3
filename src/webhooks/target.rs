//! The SSRF guard: a webhook is never sent to an address inside the hub's own network.
//!
//! A subscription names a host; what matters is where it resolves *when the event is sent*
//! (DNS can change after the subscription was checked, and a rebinding name answers a public
//! address to the check and a private one to the connection). So the guard is the HTTP
//! client's own resolver: the connection can only be made to an address it let through, and
//! an address literal in the URL, which no resolver sees, is checked before sending.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;

/// Networks no webhook is sent to: unspecified, loopback, private (RFC 1918, unique local),
/// link-local (with the cloud metadata services at 169.254.169.254 and fd00:ec2::254), shared
/// address space (CGNAT, RFC 6598), and the other special-purpose blocks of the IANA
/// registries that are not the public internet.
const REFUSED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

static REFUSED_NETS: LazyLock<Vec<IpNet>> =
    LazyLock::new(|| REFUSED.iter().filter_map(|net| net.parse().ok()).collect());

/// Whether `ip` is outside the public internet. IPv4 addresses embedded in IPv6 (mapped,
/// and NAT64's well-known prefix) are judged as the IPv4 address they reach.
pub fn is_refused(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => match v6.segments() {
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(hi) << 16) | u32::from(lo),
                )),
                _ => ip,
            },
        },
        IpAddr::V4(_) => ip,
    };
    REFUSED_NETS.iter().any(|net| net.contains(&ip))
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Plain `http://` where only `https://` is allowed.
    #[error("a webhook address starts with https://")]
    NotHttps,
    /// The host is, or resolves to, an address outside the public internet.
    #[error(
        "{0} is not a public internet address; webhooks are not sent inside the hub's network"
    )]
    Private(IpAddr),
}

/// Whether targets may be private (tests, on-premises receivers).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Private addresses and plain `http://` are allowed.
    pub allow_private: bool,
}

impl Policy {
    /// Refuses a URL's scheme or its address literal; a host name is the resolver's to check.
    pub fn check_url(self, url: &url::Url) -> Result<(), Refused> {
        if self.allow_private {
            return Ok(());
        }
        if url.scheme() != "https" {
            return Err(Refused::NotHttps);
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        match literal {
            Some(ip) if is_refused(ip) => Err(Refused::Private(ip)),
            _ => Ok(()),
        }
    }

    /// The addresses of `host` that may be reached: an error when it resolves only to
    /// refused ones. Resolution is the system's (`getaddrinfo` on a blocking thread).
    pub async fn resolve(self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| ResolveError::Lookup(e.to_string()))?
            .collect();
        if self.allow_private {
            return Ok(found);
        }
        let (kept, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            found.into_iter().partition(|a| !is_refused(a.ip()));
        match (kept.is_empty(), refused.first()) {
            (true, Some(first)) => Err(ResolveError::Refused(Refused::Private(first.ip()))),
            _ => Ok(kept),
        }
    }

    /// At subscription time: refuses a URL whose scheme, address literal or resolved addresses
    /// are not allowed. A host that does not resolve (yet) is accepted: the guard at delivery
    /// time decides where it may go.
    pub async fn check_target(self, url: &url::Url, wait: Duration) -> Result<(), Refused> {
        self.check_url(url)?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        match tokio::time::timeout(wait, self.resolve(host)).await {
            Ok(Err(ResolveError::Refused(refused))) => Err(refused),
            _ => Ok(()),
        }
    }
}

/// Why a host gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// It does not resolve.
    #[error("cannot resolve the host: {0}")]
    Lookup(String),
    /// It resolves only to refused addresses.
    #[error(transparent)]
    Refused(Refused),
}

/// The HTTP client's resolver: connections go only to addresses the policy lets through.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver(pub Policy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl GuardedResolver {
    /// For [`reqwest::ClientBuilder::dns_resolver`].
    pub fn shared(policy: Policy) -> Arc<Self> {
        Arc::new(Self(policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_cgnat_and_metadata_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            assert!(is_refused(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_refused(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(REFUSED_NETS.len(), REFUSED.len());
    }

    #[test]
    fn the_policy_refuses_http_and_private_literals_unless_allowed() {
        let strict = Policy {
            allow_private: false,
        };
        let open = Policy {
            allow_private: true,
        };
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            strict.check_url(&url("http://example.org/")),
            Err(Refused::NotHttps)
        );
        assert!(matches!(
            strict.check_url(&url("https://[::1]:8443/")),
            Err(Refused::Private(_))
        ));
        assert!(strict.check_url(&url("https://example.org/")).is_ok());
        assert!(open.check_url(&url("http://127.0.0.1:9/")).is_ok());
    }
}
