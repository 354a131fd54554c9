//! DNS: SRV and A/AAAA lookups behind one small trait, the hickory adapter with the Edge's TTL cache, and the
//! embedded authoritative server that serves a lab's zones on loopback.
//!
//! Owned by the dns work. Other modules rely on the types below; keep their shape.

use std::net::IpAddr;

mod lookup;
pub mod server;

pub use lookup::{HickoryLookup, ResolverError, ResolverSettings, resolv_conf_nameservers};
pub use server::{DnsServer, DnsZonesConfig, FaultKind, RecordSpec, Zone, ZoneError, ZoneSet};

/// One SRV record, normalised: target lower-case without the trailing dot.
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
}

/// The federation SRV name of a SIP domain.
pub fn federation_srv_name(domain: &str) -> String {
    format!("_sipfederationtls._tcp.{}", domain.trim_end_matches('.'))
}
