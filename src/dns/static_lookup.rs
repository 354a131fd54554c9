//! [`StaticLookup`]: the [`Lookup`] trait over records held in memory, for tests that want the Edge's DNS
//! answers without a DNS server (the testkit's `static_dns` mode).
//!
//! It reads the same [`RecordSpec`]s as the embedded server and answers as that server would for a name inside
//! its zones: SRV sorted by priority then weight (desc), CNAMEs followed (at most [`MAX_CNAME_HOPS`]), a name
//! that owns other records or has names below it is NODATA, any other name NXDOMAIN, and a `FAULT` record turns
//! every query for its name and below into SERVFAIL, REFUSED or a timeout. Unlike the server it has no zones,
//! so there is no REFUSED for a name outside them, and no TTLs (nothing is cached).

use std::net::IpAddr;

use super::{DnsFailure, FaultKind, Lookup, LookupFuture, RecordSpec, SrvRecord};

/// Most CNAME links followed before the lookup gives up (a loop, or a chain no resolver would follow).
pub const MAX_CNAME_HOPS: usize = 8;

/// What [`Lookup::server`] says of a [`StaticLookup`], so messages say where the answer came from.
pub const STATIC_SERVER: &str = "StaticLookup (in-memory records)";

/// A [`Lookup`] that answers from records in memory; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct StaticLookup {
    records: Vec<RecordSpec>,
}

/// A name as compared: trimmed, no trailing dot, lower case.
fn norm(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is `owner` or below it.
fn at_or_below(name: &str, owner: &str) -> bool {
    name == owner
        || name
            .strip_suffix(owner)
            .is_some_and(|head| head.ends_with('.'))
}

fn owner(spec: &RecordSpec) -> &str {
    match spec {
        RecordSpec::Srv { name, .. }
        | RecordSpec::A { name, .. }
        | RecordSpec::Aaaa { name, .. }
        | RecordSpec::Cname { name, .. }
        | RecordSpec::Txt { name, .. }
        | RecordSpec::Fault { name, .. } => name,
    }
}

impl StaticLookup {
    /// No records: every name is NXDOMAIN.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers from `records` (the embedded server's record type, so one list serves both modes).
    pub fn from_records(records: &[RecordSpec]) -> Self {
        StaticLookup {
            records: records.to_vec(),
        }
    }

    /// Adds one record.
    pub fn with(mut self, record: RecordSpec) -> Self {
        self.records.push(record);
        self
    }

    /// The records held.
    pub fn records(&self) -> &[RecordSpec] {
        &self.records
    }

    /// The fault configured for `name` or a name above it, as the failure a resolver reports.
    fn fault(&self, name: &str) -> Option<DnsFailure> {
        self.records.iter().find_map(|r| match r {
            RecordSpec::Fault { name: owner, kind } if at_or_below(name, &norm(owner)) => {
                Some(match kind {
                    FaultKind::Servfail => DnsFailure::ServFail,
                    FaultKind::Refused => DnsFailure::Refused,
                    FaultKind::Drop => DnsFailure::Timeout,
                })
            }
            _ => None,
        })
    }

    /// Why `name` has no records of the asked type: NODATA when it owns others or has names below it, else
    /// NXDOMAIN.
    fn absent(&self, name: &str) -> DnsFailure {
        let exists = self
            .records
            .iter()
            .filter(|r| !matches!(r, RecordSpec::Fault { .. }))
            .any(|r| at_or_below(&norm(owner(r)), name));
        if exists {
            DnsFailure::NoRecords
        } else {
            DnsFailure::NxDomain
        }
    }

    /// `name` after following its CNAME chain.
    fn canonical(&self, name: &str) -> Result<String, DnsFailure> {
        let mut current = norm(name);
        for _ in 0..=MAX_CNAME_HOPS {
            if let Some(f) = self.fault(&current) {
                return Err(f);
            }
            let next = self.records.iter().find_map(|r| match r {
                RecordSpec::Cname { name, target, .. } if norm(name) == current => {
                    Some(norm(target))
                }
                _ => None,
            });
            match next {
                Some(t) => current = t,
                None => return Ok(current),
            }
        }
        Err(DnsFailure::Other(format!(
            "more than {MAX_CNAME_HOPS} CNAME links from {}",
            norm(name)
        )))
    }

    /// The SRV answer for `name`.
    pub fn srv_now(&self, name: &str) -> Result<Vec<SrvRecord>, DnsFailure> {
        let name = self.canonical(name)?;
        let mut out: Vec<SrvRecord> = self
            .records
            .iter()
            .filter_map(|r| match r {
                RecordSpec::Srv {
                    name: owner,
                    priority,
                    weight,
                    port,
                    target,
                    ..
                } if norm(owner) == name => Some(SrvRecord {
                    priority: *priority,
                    weight: *weight,
                    port: *port,
                    target: norm(target),
                }),
                _ => None,
            })
            .collect();
        if out.is_empty() {
            return Err(self.absent(&name));
        }
        // The order the hickory adapter gives, so both modes route alike.
        out.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.weight.cmp(&a.weight))
                .then(a.target.cmp(&b.target))
                .then(a.port.cmp(&b.port))
        });
        Ok(out)
    }

    /// The A and AAAA answer for `host` (an IP address is its own answer, as with the hickory adapter).
    pub fn addrs_now(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        if let Ok(ip) = host.trim().trim_end_matches('.').parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = self.canonical(host)?;
        let out: Vec<IpAddr> = self
            .records
            .iter()
            .filter_map(|r| match r {
                RecordSpec::A {
                    name: owner,
                    address,
                    ..
                } if norm(owner) == name => Some(IpAddr::V4(*address)),
                RecordSpec::Aaaa {
                    name: owner,
                    address,
                    ..
                } if norm(owner) == name => Some(IpAddr::V6(*address)),
                _ => None,
            })
            .collect();
        if out.is_empty() {
            return Err(self.absent(&name));
        }
        Ok(out)
    }
}

impl Lookup for StaticLookup {
    fn srv<'a>(&'a self, name: &'a str) -> LookupFuture<'a, Vec<SrvRecord>> {
        Box::pin(async move { self.srv_now(name) })
    }

    fn addrs<'a>(&'a self, host: &'a str) -> LookupFuture<'a, Vec<IpAddr>> {
        Box::pin(async move { self.addrs_now(host) })
    }

    fn server(&self) -> String {
        STATIC_SERVER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn srv(name: &str, priority: u16, weight: u16, target: &str) -> RecordSpec {
        RecordSpec::Srv {
            name: name.into(),
            priority,
            weight,
            port: 5061,
            target: target.into(),
            ttl: 60,
        }
    }

    fn a(name: &str, last: u8) -> RecordSpec {
        RecordSpec::A {
            name: name.into(),
            address: Ipv4Addr::new(127, 0, 0, last),
            ttl: 60,
        }
    }

    fn lab() -> StaticLookup {
        StaticLookup::from_records(&[
            srv(
                "_sipfederationtls._tcp.acano.steven.lab",
                20,
                5,
                "b.acano.steven.lab.",
            ),
            srv(
                "_sipfederationtls._tcp.Acano.Steven.Lab",
                10,
                1,
                "VCSE2.acano.steven.lab",
            ),
            srv(
                "_sipfederationtls._tcp.acano.steven.lab",
                10,
                9,
                "vcse.acano.steven.lab",
            ),
            a("vcse.acano.steven.lab", 1),
            RecordSpec::Aaaa {
                name: "vcse.acano.steven.lab".into(),
                address: Ipv6Addr::LOCALHOST,
                ttl: 60,
            },
            RecordSpec::Cname {
                name: "sip.acano.steven.lab".into(),
                target: "vcse.acano.steven.lab".into(),
                ttl: 60,
            },
            RecordSpec::Cname {
                name: "loop1.lab".into(),
                target: "loop2.lab".into(),
                ttl: 60,
            },
            RecordSpec::Cname {
                name: "loop2.lab".into(),
                target: "loop1.lab".into(),
                ttl: 60,
            },
            srv("_sipfederationtls._tcp.gone.lab", 0, 0, "."),
            RecordSpec::Fault {
                name: "servfail.lab".into(),
                kind: FaultKind::Servfail,
            },
            RecordSpec::Fault {
                name: "refused.lab".into(),
                kind: FaultKind::Refused,
            },
            RecordSpec::Fault {
                name: "silent.lab".into(),
                kind: FaultKind::Drop,
            },
        ])
    }

    fn targets(r: Result<Vec<SrvRecord>, DnsFailure>) -> Vec<String> {
        r.unwrap()
            .into_iter()
            .map(|s| format!("{} {} {}:{}", s.priority, s.weight, s.target, s.port))
            .collect()
    }

    #[test]
    fn srv_answers_are_normalised_and_sorted_like_the_resolver() {
        assert_eq!(
            targets(lab().srv_now("_SIPFEDERATIONTLS._tcp.acano.steven.lab.")),
            [
                "10 9 vcse.acano.steven.lab:5061",
                "10 1 vcse2.acano.steven.lab:5061",
                "20 5 b.acano.steven.lab:5061",
            ]
        );
        // RFC 2782's "decidedly not available" target reads as the empty string, as from the resolver.
        assert_eq!(
            targets(lab().srv_now("_sipfederationtls._tcp.gone.lab")),
            ["0 0 :5061"]
        );
    }

    #[test]
    fn absent_names_are_nxdomain_and_names_without_the_type_nodata() {
        let l = lab();
        assert_eq!(
            l.srv_now("_sipfederationtls._tcp.nobody.lab"),
            Err(DnsFailure::NxDomain)
        );
        // Owns an A record but no SRV.
        assert_eq!(
            l.srv_now("vcse.acano.steven.lab"),
            Err(DnsFailure::NoRecords)
        );
        // An empty non-terminal: names exist below it.
        assert_eq!(l.addrs_now("acano.steven.lab"), Err(DnsFailure::NoRecords));
        assert_eq!(l.addrs_now("x.acano.steven.lab"), Err(DnsFailure::NxDomain));
        assert_eq!(
            StaticLookup::new().addrs_now("a.lab"),
            Err(DnsFailure::NxDomain)
        );
    }

    #[test]
    fn addresses_follow_cnames_and_literals_answer_themselves() {
        let l = lab();
        let both = vec![
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        assert_eq!(l.addrs_now("VCSE.acano.steven.lab."), Ok(both.clone()));
        assert_eq!(l.addrs_now("sip.acano.steven.lab"), Ok(both));
        assert_eq!(
            l.addrs_now("127.0.0.9"),
            Ok(vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))])
        );
        assert_eq!(
            l.addrs_now("loop1.lab"),
            Err(DnsFailure::Other(
                "more than 8 CNAME links from loop1.lab".into()
            ))
        );
    }

    #[test]
    fn faults_cover_their_name_and_below_only() {
        let l = lab();
        assert_eq!(
            l.srv_now("_sipfederationtls._tcp.servfail.lab"),
            Err(DnsFailure::ServFail)
        );
        assert_eq!(l.addrs_now("servfail.lab"), Err(DnsFailure::ServFail));
        assert_eq!(l.addrs_now("x.refused.lab"), Err(DnsFailure::Refused));
        assert_eq!(l.addrs_now("silent.lab"), Err(DnsFailure::Timeout));
        // A longer label that merely ends with the same letters is not below the fault.
        assert_eq!(l.addrs_now("notservfail.lab"), Err(DnsFailure::NxDomain));
    }

    #[tokio::test]
    async fn the_trait_answers_as_the_inherent_methods_and_names_itself() {
        let l: std::sync::Arc<dyn Lookup> = std::sync::Arc::new(lab().with(a("extra.lab", 7)));
        assert_eq!(
            l.addrs("extra.lab").await,
            Ok(vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7))])
        );
        assert_eq!(
            l.srv("_sipfederationtls._tcp.servfail.lab").await,
            Err(DnsFailure::ServFail)
        );
        assert_eq!(l.server(), "StaticLookup (in-memory records)");
        assert_eq!(
            DnsFailure::NxDomain.describe(&l.server()),
            "the name does not exist (NXDOMAIN from StaticLookup (in-memory records))"
        );
    }
}
