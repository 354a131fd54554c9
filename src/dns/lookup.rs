//! [`HickoryLookup`]: the [`Lookup`] trait over hickory's resolver, with hickory's cache off and the Edge's own
//! TTL cache on top (positive answers by record TTL, negative answers by the SOA negative TTL, both capped).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Deserialize;

use super::{DnsFailure, Lookup, LookupFuture, SrvRecord};

/// How the Edge resolves: which server, how patiently, and how its cache behaves (`[dns.resolver]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolverSettings {
    /// The nameserver (UDP and TCP), `IP` (port 53) or `IP:PORT`; absent = the `nameserver` lines of
    /// /etc/resolv.conf, port 53.
    #[serde(deserialize_with = "super::server_opt")]
    pub server: Option<SocketAddr>,
    /// Time to wait for one answer, in milliseconds.
    pub timeout_ms: u64,
    /// Tries per query in total (1 = no retry).
    pub attempts: usize,
    /// Most entries the Edge's cache holds; 0 disables it.
    pub cache_max_entries: usize,
    /// Negative TTL when the answer carries no SOA, seconds.
    pub negative_ttl_default_secs: u32,
    /// Cap on negative TTLs, seconds.
    pub negative_ttl_max_secs: u32,
    /// Cap on positive TTLs, seconds.
    pub positive_ttl_max_secs: u32,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        Self {
            server: None,
            timeout_ms: 2000,
            attempts: 2,
            cache_max_entries: 1024,
            negative_ttl_default_secs: 60,
            negative_ttl_max_secs: 300,
            positive_ttl_max_secs: 86_400,
        }
    }
}

impl ResolverSettings {
    /// Settings that ask only `server`, everything else default.
    pub fn server(server: SocketAddr) -> Self {
        Self {
            server: Some(server),
            ..Self::default()
        }
    }
}

/// Why a resolver could not be set up; each message names the field or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// dns.resolver.attempts is 0.
    #[error("dns.resolver.attempts is 0; set it to 1 or more (total tries per query)")]
    ZeroAttempts,
    /// dns.resolver.timeout_ms is 0.
    #[error("dns.resolver.timeout_ms is 0; set it to a positive number of milliseconds, e.g. 2000")]
    ZeroTimeout,
    /// The system resolver configuration could not be read.
    #[error(
        "cannot read {path}: {cause}; set dns.resolver.server (e.g. \"127.0.0.1:5353\") to name a nameserver"
    )]
    ResolvConf {
        path: PathBuf,
        // Not `source`: the message includes it, and anyhow would print it a second time.
        cause: std::io::Error,
    },
    /// The system resolver configuration names no usable nameserver.
    #[error(
        "{path} has no usable `nameserver` line; add one or set dns.resolver.server (e.g. \"127.0.0.1:5353\")"
    )]
    NoNameserver { path: PathBuf },
    /// hickory refused the configuration.
    #[error("the DNS resolver could not be built: {0}; check the [dns.resolver] settings")]
    Build(String),
}

/// Where the system resolver's nameservers are read from.
pub const SYSTEM_RESOLV_CONF: &str = "/etc/resolv.conf";

/// How messages name the system resolver: `10.0.0.53:53 (the system resolver, from /etc/resolv.conf)`.
fn system_description(servers: &[SocketAddr], path: &Path) -> String {
    let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
    format!(
        "{} (the system resolver, from {})",
        list.join(", "),
        path.display()
    )
}

/// The nameservers listed in a resolv.conf file (port 53).
pub fn resolv_conf_nameservers(path: &Path) -> Result<Vec<SocketAddr>, ResolverError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ResolverError::ResolvConf {
        path: path.to_path_buf(),
        cause,
    })?;
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                // A zone index (fe80::1%eth0) cannot be expressed here; such lines are skipped.
                (Some("nameserver"), Some(ip)) => ip.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(ResolverError::NoNameserver {
            path: path.to_path_buf(),
        });
    }
    Ok(servers)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Srv,
    A,
    Aaaa,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Kind::Srv => RecordType::SRV,
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
        }
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Srv(Vec<SrvRecord>),
    Addrs(Vec<IpAddr>),
}

struct Entry {
    expires: Instant,
    value: Result<Answer, DnsFailure>,
}

/// The Edge's own cache: answers keyed by (name, type) until their TTL runs out.
struct TtlCache {
    max_entries: usize,
    entries: Mutex<HashMap<(String, Kind), Entry>>,
}

impl TtlCache {
    fn get(&self, key: &(String, Kind)) -> Option<Result<Answer, DnsFailure>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.value.clone());
        }
        entries.remove(key);
        None
    }

    fn put(&self, key: (String, Kind), ttl: Duration, value: Result<Answer, DnsFailure>) {
        if self.max_entries == 0 || ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.max_entries {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                expires: now + ttl,
                value,
            },
        );
    }

    fn len(&self) -> usize {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.values().filter(|e| e.expires > now).count()
    }

    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// [`Lookup`] over hickory's resolver with the Edge's TTL cache.
pub struct HickoryLookup {
    resolver: TokioResolver,
    settings: ResolverSettings,
    cache: TtlCache,
    /// The servers asked, as messages name them.
    described: String,
}

/// Maps a hickory error to its distinct failure and, for negative answers, the TTL the answer allows.
fn classify(error: &NetError) -> (DnsFailure, Option<u32>) {
    if error.is_no_records_found() {
        let negative_ttl = match error {
            NetError::Dns(DnsError::NoRecordsFound(no)) => no.negative_ttl,
            _ => None,
        };
        let failure = if error.is_nx_domain() {
            DnsFailure::NxDomain
        } else {
            DnsFailure::NoRecords
        };
        return (failure, negative_ttl);
    }
    let failure = match error {
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => DnsFailure::ServFail,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => DnsFailure::Refused,
        NetError::Dns(DnsError::ResponseCode(ResponseCode::NXDomain)) => DnsFailure::NxDomain,
        NetError::Timeout => DnsFailure::Timeout,
        // hickory says "no connections available" when every connection to the server failed (e.g. ICMP
        // port unreachable): the server is not there.
        NetError::NoConnections => {
            DnsFailure::Other("it cannot be reached (no connection could be made)".into())
        }
        NetError::Io(e) => DnsFailure::Other(format!("it cannot be reached ({e})")),
        other => DnsFailure::Other(other.to_string()),
    };
    (failure, None)
}

fn fqdn(name: &str) -> String {
    format!(
        "{}.",
        name.trim().trim_end_matches('.').to_ascii_lowercase()
    )
}

impl HickoryLookup {
    /// Builds the resolver (hickory's cache off, no hosts file, no search list); call within a tokio runtime.
    pub fn new(settings: ResolverSettings) -> Result<Self, ResolverError> {
        Self::with_resolv_conf(settings, Path::new(SYSTEM_RESOLV_CONF))
    }

    /// As [`HickoryLookup::new`], with the fallback nameservers read from `resolv_conf` instead of
    /// /etc/resolv.conf.
    pub fn with_resolv_conf(
        settings: ResolverSettings,
        resolv_conf: &Path,
    ) -> Result<Self, ResolverError> {
        match settings.server {
            Some(server) => Self::with_servers(settings, &[server], server.to_string()),
            None => {
                let servers = resolv_conf_nameservers(resolv_conf)?;
                let described = system_description(&servers, resolv_conf);
                Self::with_servers(settings, &servers, described)
            }
        }
    }

    /// True when this resolver asks the system's nameservers (no server was given).
    pub fn is_system(&self) -> bool {
        self.settings.server.is_none()
    }

    /// A resolver that asks only `server`, with default settings.
    pub fn to_server(server: SocketAddr) -> Result<Self, ResolverError> {
        Self::new(ResolverSettings::server(server))
    }

    fn with_servers(
        settings: ResolverSettings,
        servers: &[SocketAddr],
        described: String,
    ) -> Result<Self, ResolverError> {
        if settings.attempts == 0 {
            return Err(ResolverError::ZeroAttempts);
        }
        if settings.timeout_ms == 0 {
            return Err(ResolverError::ZeroTimeout);
        }
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.timeout = Duration::from_millis(settings.timeout_ms);
        opts.attempts = settings.attempts - 1;
        opts.use_hosts_file = ResolveHosts::Never;
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| ResolverError::Build(e.to_string()))?;
        Ok(Self {
            resolver,
            cache: TtlCache {
                max_entries: settings.cache_max_entries,
                entries: Mutex::new(HashMap::new()),
            },
            settings,
            described,
        })
    }

    /// IPv4 addresses of `host` only (A records), through the cache.
    pub async fn ipv4(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        match self.cached(host, Kind::A).await? {
            Answer::Addrs(a) => Ok(a),
            Answer::Srv(_) => Err(DnsFailure::NoRecords),
        }
    }

    /// IPv6 addresses of `host` only (AAAA records), through the cache.
    pub async fn ipv6(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        match self.cached(host, Kind::Aaaa).await? {
            Answer::Addrs(a) => Ok(a),
            Answer::Srv(_) => Err(DnsFailure::NoRecords),
        }
    }

    /// Forgets every cached answer.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Live (unexpired) entries in the cache.
    pub fn cached_entries(&self) -> usize {
        self.cache.len()
    }

    async fn cached(&self, name: &str, kind: Kind) -> Result<Answer, DnsFailure> {
        let key = (fqdn(name), kind);
        if let Some(hit) = self.cache.get(&key) {
            return hit;
        }
        let (value, ttl) = self.query(&key.0, kind).await;
        if let Some(ttl) = ttl {
            self.cache.put(key, ttl, value.clone());
        }
        value
    }

    /// One query to the server; the TTL is how long the outcome may be cached (None: not at all).
    async fn query(
        &self,
        name: &str,
        kind: Kind,
    ) -> (Result<Answer, DnsFailure>, Option<Duration>) {
        let lookup = match self.resolver.lookup(name, kind.record_type()).await {
            Ok(lookup) => lookup,
            Err(e) => {
                let (failure, negative_ttl) = classify(&e);
                let ttl = match failure {
                    DnsFailure::NxDomain | DnsFailure::NoRecords => {
                        Some(self.negative_ttl(negative_ttl))
                    }
                    _ => None,
                };
                return (Err(failure), ttl);
            }
        };
        let mut min_ttl: Option<u32> = None;
        let mut srv = Vec::new();
        let mut addrs = Vec::new();
        for record in lookup.answers() {
            let wanted = match (&record.data, kind) {
                (RData::SRV(s), Kind::Srv) => {
                    let target = s.target.to_ascii();
                    srv.push(SrvRecord {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: target.trim_end_matches('.').to_ascii_lowercase(),
                    });
                    true
                }
                (RData::A(a), Kind::A) => {
                    addrs.push(IpAddr::V4(a.0));
                    true
                }
                (RData::AAAA(a), Kind::Aaaa) => {
                    addrs.push(IpAddr::V6(a.0));
                    true
                }
                // CNAMEs on the way count too: the answer is only as fresh as its shortest link.
                (RData::CNAME(_), _) => true,
                _ => false,
            };
            if wanted {
                min_ttl = Some(min_ttl.map_or(record.ttl, |t| t.min(record.ttl)));
            }
        }
        let value = match kind {
            Kind::Srv if srv.is_empty() => Err(DnsFailure::NoRecords),
            Kind::Srv => {
                srv.sort_by(|a, b| {
                    a.priority
                        .cmp(&b.priority)
                        .then(b.weight.cmp(&a.weight))
                        .then(a.target.cmp(&b.target))
                        .then(a.port.cmp(&b.port))
                });
                Ok(Answer::Srv(srv))
            }
            _ if addrs.is_empty() => Err(DnsFailure::NoRecords),
            _ => Ok(Answer::Addrs(addrs)),
        };
        let ttl = match &value {
            Ok(_) => Duration::from_secs(u64::from(
                min_ttl
                    .unwrap_or(0)
                    .min(self.settings.positive_ttl_max_secs),
            )),
            // An answer without the wanted records carries no SOA here: the default negative TTL applies.
            Err(_) => self.negative_ttl(None),
        };
        (value, Some(ttl))
    }

    fn negative_ttl(&self, from_answer: Option<u32>) -> Duration {
        let secs = from_answer
            .unwrap_or(self.settings.negative_ttl_default_secs)
            .min(self.settings.negative_ttl_max_secs);
        Duration::from_secs(u64::from(secs))
    }
}

impl Lookup for HickoryLookup {
    fn srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a, Vec<SrvRecord>> {
        Box::pin(async move {
            match self.cached(name, Kind::Srv).await? {
                Answer::Srv(records) => Ok(records),
                Answer::Addrs(_) => Err(DnsFailure::Other(
                    "cache held addresses for an SRV name".into(),
                )),
            }
        })
    }

    fn server(&self) -> String {
        self.described.clone()
    }

    fn addrs<'a>(&'a self, host: &'a str) -> LookupFuture<'a, Vec<IpAddr>> {
        Box::pin(async move {
            if let Ok(ip) = host.trim_end_matches('.').parse::<IpAddr>() {
                return Ok(vec![ip]);
            }
            let (v4, v6) = tokio::join!(self.cached(host, Kind::A), self.cached(host, Kind::Aaaa));
            let mut out = Vec::new();
            let mut v4_error = None;
            let mut v6_error = None;
            match v4 {
                Ok(Answer::Addrs(a)) => out.extend(a),
                Ok(Answer::Srv(_)) => {}
                Err(e) => v4_error = Some(e),
            }
            match v6 {
                Ok(Answer::Addrs(a)) => out.extend(a),
                Ok(Answer::Srv(_)) => {}
                Err(e) => v6_error = Some(e),
            }
            if !out.is_empty() {
                return Ok(out);
            }
            // Both failed: the A failure speaks unless it is only "no A records" and AAAA failed worse.
            Err(match (v4_error, v6_error) {
                (Some(DnsFailure::NoRecords), Some(other)) => other,
                (Some(e), _) | (None, Some(e)) => e,
                (None, None) => DnsFailure::NoRecords,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_lists_nameservers_on_port_53() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "# comment\nsearch lab\nnameserver 10.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:2\n",
        )
        .unwrap();
        let servers = resolv_conf_nameservers(&path).unwrap();
        assert_eq!(
            servers,
            vec![
                "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        std::fs::write(&path, "search lab\n").unwrap();
        let err = resolv_conf_nameservers(&path).unwrap_err();
        assert!(err.to_string().contains("dns.resolver.server"), "{err}");
    }

    #[test]
    fn cache_expires_evicts_soonest_and_skips_zero_ttl() {
        let cache = TtlCache {
            max_entries: 2,
            entries: Mutex::new(HashMap::new()),
        };
        let key = |n: &str| (n.to_string(), Kind::A);
        let v = || Ok(Answer::Addrs(vec![IpAddr::from([127, 0, 0, 1])]));
        cache.put(key("zero."), Duration::ZERO, v());
        assert!(cache.get(&key("zero.")).is_none());
        cache.put(key("short."), Duration::from_millis(30), v());
        cache.put(
            key("long."),
            Duration::from_secs(60),
            Err(DnsFailure::NxDomain),
        );
        cache.put(key("third."), Duration::from_secs(60), v());
        assert!(
            cache.get(&key("short.")).is_none(),
            "the soonest to expire went first"
        );
        assert_eq!(
            cache.get(&key("long.")).unwrap().err(),
            Some(DnsFailure::NxDomain)
        );
        assert_eq!(cache.len(), 2);
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn settings_are_checked() {
        let bad = ResolverSettings {
            attempts: 0,
            ..ResolverSettings::server("127.0.0.1:53".parse().unwrap())
        };
        assert!(matches!(
            HickoryLookup::new(bad),
            Err(ResolverError::ZeroAttempts)
        ));
        let settings: ResolverSettings =
            toml::from_str("server = \"127.0.0.1:5353\"\ntimeout_ms = 500\n").unwrap();
        assert_eq!(settings.server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(settings.attempts, 2);
        assert!(toml::from_str::<ResolverSettings>("servr = \"x\"").is_err());
        // An address without a port means 53, as in resolv.conf.
        let settings: ResolverSettings = toml::from_str("server = \"127.0.0.1\"").unwrap();
        assert_eq!(settings.server, Some("127.0.0.1:53".parse().unwrap()));
        let err = toml::from_str::<ResolverSettings>("server = \"dns.lab\"").unwrap_err();
        assert!(
            err.to_string().contains("write e.g. 127.0.0.1 (port 53)"),
            "{err}"
        );
    }

    #[test]
    fn system_resolver_is_described_with_its_servers_and_file() {
        let servers = ["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()];
        assert_eq!(
            system_description(&servers, Path::new("/etc/resolv.conf")),
            "10.0.0.53:53, [::1]:53 (the system resolver, from /etc/resolv.conf)"
        );
    }
}
