//! The Edge's own federation records, which `edgesim serve --serve-dns` publishes next to the configuration's
//! so that an Expressway pointed at the embedded server finds the Edge: `_sipfederationtls._tcp.<domain>`
//! SRV → `fqdn:port`, and the FQDN's A or AAAA record. The configuration always wins: a name it defines is
//! left as it is.
//!
//! An Edge pool ([`ZoneSet::add_pool_records`]) is published both ways Skype for Business deploys one: members
//! that share a target are one SRV record and one A record each (DNS load balancing: a client tries the next
//! address), members with targets of their own are SRV records with their own priority and weight (SRV
//! failover).

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{RData, Record, RecordType};

use hickory_proto::rr::Name;

use super::zones::{DEFAULT_TTL, ZoneError, ZoneSet, parse_name};

/// The Edge's own federation records: `_sipfederationtls._tcp.<domain>` SRV → `fqdn:port`, and the FQDN's
/// A or AAAA record when an address is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRecords {
    /// The Edge's SIP domain (`edge.domain`).
    pub domain: String,
    /// The Edge's FQDN (`edge.fqdn`), the SRV target.
    pub fqdn: String,
    /// The port the Edge listens on.
    pub port: u16,
    /// The address peers reach the Edge at; `None`: no address record is added.
    pub address: Option<IpAddr>,
}

impl EdgeRecords {
    /// The address to publish for the Edge: the configured public address, else the address it listens on,
    /// else the DNS server's own (a peer that reaches the DNS server there likely reaches the Edge too);
    /// `None` when all of them are unspecified (0.0.0.0 / ::).
    pub fn address_for(
        public: Option<IpAddr>,
        listen: SocketAddr,
        dns: SocketAddr,
    ) -> Option<IpAddr> {
        public
            .into_iter()
            .chain([listen.ip(), dns.ip()])
            .find(|ip| !ip.is_unspecified())
    }
}

/// What [`ZoneSet::add_edge_records`] did with each of the Edge's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeRecord {
    /// Added (the configuration has no record of that name and type).
    Added(Box<Record>),
    /// Not added: the configuration defines the name already (`what` says which record).
    Defined { what: String },
    /// No address record: no usable address is known.
    NoAddress { fqdn: String },
}

/// One member of an Edge pool as DNS publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolMemberRecord {
    /// The SRV target (and A/AAAA record name) of the member.
    pub target: String,
    /// SRV priority.
    pub priority: u16,
    /// SRV weight.
    pub weight: u16,
    /// The port the member listens on.
    pub port: u16,
    /// The member's address; `None`: no address record is added for it.
    pub address: Option<IpAddr>,
}

fn address_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

impl ZoneSet {
    /// Adds an Edge pool's records for `domain`: one `_sipfederationtls._tcp` SRV record per distinct target
    /// (its members' priority, weight and port, those of the first member of the target), and one A or AAAA
    /// record per member under its target. As for [`ZoneSet::add_edge_records`], the configuration wins: a
    /// SRV name or target name it defines is left as it is.
    pub fn add_pool_records(
        &mut self,
        domain: &str,
        members: &[PoolMemberRecord],
    ) -> Result<Vec<EdgeRecord>, ZoneError> {
        let srv_name = parse_name("edge.domain", &super::federation_srv_name(domain))?;
        let mut targets: Vec<(Name, &PoolMemberRecord)> = Vec::new();
        for (i, m) in members.iter().enumerate() {
            let context = format!("pool.members[{i}].target");
            let name = parse_name(&context, &m.target)?;
            if name.num_labels() < 2 {
                return Err(ZoneError::SingleLabel {
                    context,
                    name: m.target.clone(),
                });
            }
            if !targets.iter().any(|(n, _)| *n == name) {
                targets.push((name, m));
            }
        }
        let mut done = Vec::new();
        if self.defines(&srv_name, &[RecordType::SRV, RecordType::CNAME]) {
            done.push(EdgeRecord::Defined {
                what: format!("{srv_name} SRV"),
            });
        } else {
            for (name, m) in &targets {
                let srv = SRV::new(m.priority, m.weight, m.port, name.clone());
                let record = Record::from_rdata(srv_name.clone(), DEFAULT_TTL, RData::SRV(srv));
                self.push_record(record.clone());
                done.push(EdgeRecord::Added(Box::new(record)));
            }
        }
        let address_types = [RecordType::A, RecordType::AAAA, RecordType::CNAME];
        for (name, _) in &targets {
            if self.defines(name, &address_types) {
                done.push(EdgeRecord::Defined {
                    what: format!("{name} A/AAAA"),
                });
                continue;
            }
            let mut any = false;
            let mut seen = Vec::new();
            for m in members {
                let same = parse_name("pool.members.target", &m.target).is_ok_and(|n| n == *name);
                let Some(ip) = m.address.filter(|ip| !ip.is_unspecified()) else {
                    continue;
                };
                if !same || seen.contains(&ip) {
                    continue;
                }
                seen.push(ip);
                let record = Record::from_rdata(name.clone(), DEFAULT_TTL, address_rdata(ip));
                self.push_record(record.clone());
                done.push(EdgeRecord::Added(Box::new(record)));
                any = true;
            }
            if !any {
                done.push(EdgeRecord::NoAddress {
                    fqdn: name.to_string(),
                });
            }
        }
        Ok(done)
    }

    /// Adds the Edge's own SRV record and its FQDN's address record, each unless the set already defines that
    /// name (an SRV of the SRV name; any A, AAAA or CNAME of the FQDN): the configuration always wins.
    pub fn add_edge_records(&mut self, edge: &EdgeRecords) -> Result<Vec<EdgeRecord>, ZoneError> {
        let srv_name = parse_name("edge.domain", &super::federation_srv_name(&edge.domain))?;
        let fqdn = parse_name("edge.fqdn", &edge.fqdn)?;
        if fqdn.num_labels() < 2 {
            return Err(ZoneError::SingleLabel {
                context: "edge.fqdn".into(),
                name: edge.fqdn.clone(),
            });
        }
        let mut done = Vec::new();
        if self.defines(&srv_name, &[RecordType::SRV, RecordType::CNAME]) {
            done.push(EdgeRecord::Defined {
                what: format!("{srv_name} SRV"),
            });
        } else {
            let srv = SRV::new(0, 0, edge.port, fqdn.clone());
            let record = Record::from_rdata(srv_name, DEFAULT_TTL, RData::SRV(srv));
            self.push_record(record.clone());
            done.push(EdgeRecord::Added(Box::new(record)));
        }
        let address_types = [RecordType::A, RecordType::AAAA, RecordType::CNAME];
        if self.defines(&fqdn, &address_types) {
            done.push(EdgeRecord::Defined {
                what: format!("{fqdn} A/AAAA"),
            });
        } else if let Some(ip) = edge.address.filter(|ip| !ip.is_unspecified()) {
            let rdata = match ip {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            let record = Record::from_rdata(fqdn, DEFAULT_TTL, rdata);
            self.push_record(record.clone());
            done.push(EdgeRecord::Added(Box::new(record)));
        } else {
            done.push(EdgeRecord::NoAddress {
                fqdn: fqdn.to_string(),
            });
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::RecordSpec;
    use std::net::Ipv6Addr;

    #[test]
    fn edge_address_prefers_public_then_listen_then_dns() {
        let sock = |s: &str| s.parse::<SocketAddr>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let any = sock("0.0.0.0:5061");
        assert_eq!(
            EdgeRecords::address_for(Some(ip("192.0.2.10")), sock("127.0.0.1:5061"), any),
            Some(ip("192.0.2.10"))
        );
        assert_eq!(
            EdgeRecords::address_for(None, sock("127.0.0.2:5061"), sock("127.0.0.3:53")),
            Some(ip("127.0.0.2"))
        );
        assert_eq!(
            EdgeRecords::address_for(None, any, sock("127.0.0.3:53")),
            Some(ip("127.0.0.3"))
        );
        assert_eq!(EdgeRecords::address_for(None, any, sock("[::]:53")), None);
    }

    fn added(done: &[EdgeRecord]) -> Vec<String> {
        done.iter()
            .map(|d| match d {
                EdgeRecord::Added(r) => r.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_pool_is_one_srv_per_target_and_one_address_per_member() {
        let member = |target: &str, priority, ip: [u8; 4], port| PoolMemberRecord {
            target: target.into(),
            priority,
            weight: 10,
            port,
            address: Some(IpAddr::from(ip)),
        };
        // DNS load balancing: one target, many A records.
        let mut set = ZoneSet::new();
        let done = set
            .add_pool_records(
                "skype.lab",
                &[
                    member("sip.skype.lab", 0, [127, 0, 0, 2], 5061),
                    member("sip.skype.lab", 0, [127, 0, 0, 3], 5061),
                ],
            )
            .unwrap();
        assert_eq!(
            added(&done),
            vec![
                "_sipfederationtls._tcp.skype.lab. 60 IN SRV 0 10 5061 sip.skype.lab.",
                "sip.skype.lab. 60 IN A 127.0.0.2",
                "sip.skype.lab. 60 IN A 127.0.0.3",
            ]
        );
        // SRV priorities: a target each; a member without an address gets no record and says so.
        let mut set = ZoneSet::new();
        let mut third = member("sip3.skype.lab", 30, [0, 0, 0, 0], 5063);
        third.address = None;
        let done = set
            .add_pool_records(
                "skype.lab",
                &[
                    member("sip1.skype.lab", 10, [127, 0, 0, 2], 5061),
                    member("sip2.skype.lab", 20, [127, 0, 0, 3], 5062),
                    third,
                ],
            )
            .unwrap();
        assert_eq!(
            added(&done),
            vec![
                "_sipfederationtls._tcp.skype.lab. 60 IN SRV 10 10 5061 sip1.skype.lab.",
                "_sipfederationtls._tcp.skype.lab. 60 IN SRV 20 10 5062 sip2.skype.lab.",
                "_sipfederationtls._tcp.skype.lab. 60 IN SRV 30 10 5063 sip3.skype.lab.",
                "sip1.skype.lab. 60 IN A 127.0.0.2",
                "sip2.skype.lab. 60 IN A 127.0.0.3",
                "NoAddress { fqdn: \"sip3.skype.lab.\" }",
            ]
        );
        // The configuration's SRV record wins.
        let mut set = ZoneSet::from_records(&[RecordSpec::Srv {
            name: "_sipfederationtls._tcp.skype.lab".into(),
            priority: 0,
            weight: 0,
            port: 5061,
            target: "sip.skype.lab".into(),
            ttl: 60,
        }])
        .unwrap();
        let done = set
            .add_pool_records(
                "skype.lab",
                &[member("sip.skype.lab", 0, [127, 0, 0, 2], 5061)],
            )
            .unwrap();
        assert_eq!(
            added(&done),
            vec![
                "Defined { what: \"_sipfederationtls._tcp.skype.lab. SRV\" }",
                "sip.skype.lab. 60 IN A 127.0.0.2",
            ]
        );
    }

    #[test]
    fn edge_records_are_added_unless_defined() {
        let edge = EdgeRecords {
            domain: "skype.lab".into(),
            fqdn: "sip.skype.lab".into(),
            port: 5061,
            address: Some(IpAddr::from([127, 0, 0, 2])),
        };
        let mut set = ZoneSet::new();
        let done = set.add_edge_records(&edge).unwrap();
        let added: Vec<String> = done
            .iter()
            .map(|d| match d {
                EdgeRecord::Added(r) => r.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            added,
            vec![
                "_sipfederationtls._tcp.skype.lab. 60 IN SRV 0 0 5061 sip.skype.lab.",
                "sip.skype.lab. 60 IN A 127.0.0.2",
            ]
        );
        // The configuration's own records win, each name on its own.
        let mut set = ZoneSet::from_records(&[RecordSpec::Aaaa {
            name: "SIP.skype.lab.".into(),
            address: Ipv6Addr::LOCALHOST,
            ttl: 60,
        }])
        .unwrap();
        let done = set.add_edge_records(&edge).unwrap();
        assert!(matches!(done[0], EdgeRecord::Added(_)), "{done:?}");
        assert_eq!(
            done[1],
            EdgeRecord::Defined {
                what: "sip.skype.lab. A/AAAA".into()
            }
        );
        let none = EdgeRecords {
            address: None,
            ..edge
        };
        let done = ZoneSet::new().add_edge_records(&none).unwrap();
        assert_eq!(
            done[1],
            EdgeRecord::NoAddress {
                fqdn: "sip.skype.lab.".into()
            }
        );
    }
}
