//! DNS: SRV and A/AAAA lookups behind one small trait, the hickory adapter with the Edge's TTL cache, and the
//! embedded authoritative server that serves a lab's zones on loopback.
//!
//! Owned by the dns work. Other modules rely on the types below; keep their shape.

use std::net::{IpAddr, SocketAddr};

mod edge;
mod lookup;
pub mod server;
mod static_lookup;
mod zones;

pub use lookup::{HickoryLookup, ResolverError, ResolverSettings, resolv_conf_nameservers};
pub use server::{
    DnsServer, DnsZonesConfig, EdgeRecord, EdgeRecords, FaultKind, PoolMemberRecord, RecordSpec,
    Zone, ZoneError, ZoneSet,
};
pub use static_lookup::{MAX_CNAME_HOPS, STATIC_SERVER, StaticLookup};

/// The DNS port, used when a server is given as an address only (`--dns 127.0.0.1`, like resolv.conf).
pub const DNS_PORT: u16 = 53;

/// Parses a DNS server given as `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6 address; without a port, 53.
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| {
            format!(
                "`{text}` is not an IP address with an optional port: write e.g. 127.0.0.1 (port 53), 127.0.0.1:5353 or [::1]:5353"
            )
        })
}

/// A DNS server address in a configuration: `IP` (port 53) or `IP:PORT`, read with [`parse_server`] as every
/// flag reads it (`server = "127.0.0.1"` means port 53, as in resolv.conf and `--dns`).
pub(crate) fn server_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    parse_server(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// One SRV record, normalised: target lower-case without the trailing dot (so a target of `.`, RFC 2782's
/// "service decidedly not available", is the empty string).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// Why a lookup produced no usable answer; every kind stays distinct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub enum DnsFailure {
    #[error("the name does not exist (NXDOMAIN)")]
    NxDomain,
    #[error("the name exists but has no records of that type")]
    NoRecords,
    #[error("the DNS server answered SERVFAIL")]
    ServFail,
    #[error("the DNS server refused the query")]
    Refused,
    #[error("no answer from the DNS server in time")]
    Timeout,
    #[error("DNS lookup failed: {0}")]
    Other(String),
}

impl DnsFailure {
    /// True when the server answered about the name (NXDOMAIN, NODATA); false when the server itself failed
    /// (SERVFAIL, REFUSED, no answer, unreachable).
    pub fn is_answer(&self) -> bool {
        matches!(self, DnsFailure::NxDomain | DnsFailure::NoRecords)
    }

    /// The failure in words that name the server asked, e.g. `the DNS server 127.0.0.1:53 did not answer in
    /// time`; `server` is what [`Lookup::server`] returns (empty: the plain [`Display`](std::fmt::Display) text).
    pub fn describe(&self, server: &str) -> String {
        if server.is_empty() {
            return self.to_string();
        }
        match self {
            DnsFailure::NxDomain => format!("the name does not exist (NXDOMAIN from {server})"),
            DnsFailure::NoRecords => {
                format!("the name exists but has no records of that type (NODATA from {server})")
            }
            DnsFailure::ServFail => format!("the DNS server {server} answered SERVFAIL"),
            DnsFailure::Refused => format!("the DNS server {server} refused the query"),
            DnsFailure::Timeout => format!("the DNS server {server} did not answer in time"),
            DnsFailure::Other(why) => {
                format!("the lookup with the DNS server {server} failed: {why}")
            }
        }
    }

    /// A short upper-case tag for reports: NXDOMAIN, NODATA, SERVFAIL, REFUSED, TIMEOUT or ERROR.
    pub fn tag(&self) -> &'static str {
        match self {
            DnsFailure::NxDomain => "NXDOMAIN",
            DnsFailure::NoRecords => "NODATA",
            DnsFailure::ServFail => "SERVFAIL",
            DnsFailure::Refused => "REFUSED",
            DnsFailure::Timeout => "TIMEOUT",
            DnsFailure::Other(_) => "ERROR",
        }
    }
}

/// Boxed future, so the trait stays object-safe.
pub type LookupFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DnsFailure>> + Send + 'a>>;

/// The lookups the Edge makes. `name` is a plain domain name (no trailing dot needed).
pub trait Lookup: Send + Sync + 'static {
    /// SRV records of `name` (e.g. `_sipfederationtls._tcp.acano.steven.lab`), sorted by priority then weight (desc).
    fn srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a, Vec<SrvRecord>>;
    /// A and AAAA addresses of `host`.
    fn addrs<'a>(&'a self, host: &'a str) -> LookupFuture<'a, Vec<IpAddr>>;
    /// The server(s) asked, for messages: `127.0.0.1:5353`, or `10.0.0.53:53 (the system resolver, from
    /// /etc/resolv.conf)`.
    fn server(&self) -> String;
}

/// The federation SRV name of a SIP domain.
pub fn federation_srv_name(domain: &str) -> String {
    format!("_sipfederationtls._tcp.{}", domain.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_without_port_means_53() {
        let ok = |t: &str| parse_server(t).unwrap().to_string();
        assert_eq!(ok("127.0.0.1"), "127.0.0.1:53");
        assert_eq!(ok(" 127.0.0.1:5353 "), "127.0.0.1:5353");
        assert_eq!(ok("::1"), "[::1]:53");
        assert_eq!(ok("[::1]"), "[::1]:53");
        assert_eq!(ok("[::1]:5353"), "[::1]:5353");
        assert_eq!(
            parse_server("dns.lab:53").unwrap_err(),
            "`dns.lab:53` is not an IP address with an optional port: write e.g. 127.0.0.1 (port 53), 127.0.0.1:5353 or [::1]:5353"
        );
    }

    #[test]
    fn configuration_servers_read_as_the_flags_do() {
        let dns = |text: &str| {
            crate::config::EdgeConfig::from_toml(text, std::path::Path::new("edge.toml"))
                .map(|c| c.dns)
                .map_err(|e| e.to_string())
        };
        let c = dns("[dns]\nserve = \"127.0.0.1\"\nresolver = { server = \"::1\" }\n").unwrap();
        assert_eq!(c.serve, Some("127.0.0.1:53".parse().unwrap()));
        assert_eq!(c.resolver.server, Some("[::1]:53".parse().unwrap()));
        let c = dns("[dns]\nserve = \"127.0.0.1:5353\"\n").unwrap();
        assert_eq!(c.serve, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(dns("").unwrap().serve, None);
        let e = dns("[dns]\nserve = \"dns.lab\"\n").unwrap_err();
        assert!(
            e.contains("`dns.lab` is not an IP address with an optional port"),
            "{e}"
        );
    }

    #[test]
    fn every_failure_names_the_server() {
        let s = "127.0.0.1:5353";
        let all = [
            (
                DnsFailure::NxDomain,
                "the name does not exist (NXDOMAIN from 127.0.0.1:5353)",
            ),
            (
                DnsFailure::NoRecords,
                "the name exists but has no records of that type (NODATA from 127.0.0.1:5353)",
            ),
            (
                DnsFailure::ServFail,
                "the DNS server 127.0.0.1:5353 answered SERVFAIL",
            ),
            (
                DnsFailure::Refused,
                "the DNS server 127.0.0.1:5353 refused the query",
            ),
            (
                DnsFailure::Timeout,
                "the DNS server 127.0.0.1:5353 did not answer in time",
            ),
            (
                DnsFailure::Other("it cannot be reached (no connection could be made)".into()),
                "the lookup with the DNS server 127.0.0.1:5353 failed: it cannot be reached (no connection could be made)",
            ),
        ];
        for (i, (failure, words)) in all.iter().enumerate() {
            assert_eq!(failure.describe(s), *words);
            assert_eq!(failure.describe(""), failure.to_string());
            // The first two are answers about the name; the rest are the server failing.
            assert_eq!(failure.is_answer(), i < 2, "{failure:?}");
        }
    }
}
