//! The checks of a parsed configuration that serde cannot express: lists that contradict each other, pairs
//! of keys, and the range of every limit.
//!
//! A zero timeout or rate is refused, not read as "off" or silently raised to 1: a lab that wants no rate
//! limit sets the top of the range. The ranges are the `*_RANGE` constants below (also in
//! `edge.example.toml`).

use std::ops::RangeInclusive;

use super::federation::{AccessEdgeConfig, FederationSettings, RoutingMethod, Source, norm};
use super::{EdgeConfig, ImConfig, Limits, PresenceConfig, UserConfig};
use crate::dns::ResolverSettings;

/// What is wrong with one key, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key, e.g. `limits.max_connections`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// `limits.max_connections`: concurrent TLS connections.
pub const MAX_CONNECTIONS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `limits.max_message_bytes`: the largest SIP message, bytes (1 KiB to 16 MiB).
pub const MAX_MESSAGE_BYTES_RANGE: RangeInclusive<u64> = 1024..=16 * 1024 * 1024;
/// `limits.max_server_message_body_size_kb`: 1 KB to 16 MB (bounded: a connection holds one body in memory).
pub const MAX_BODY_KB_RANGE: RangeInclusive<u64> = 1..=16 * 1024;
/// `limits.*_timeout_ms`: 1 ms to one day.
pub const TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=86_400_000;
/// `limits.max_requests_per_sec`: requests per second on one connection.
pub const REQUESTS_PER_SEC_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `dns.resolver.timeout_ms`: time for one DNS answer, 1 ms to one minute.
pub const DNS_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 1..=60_000;
/// `dns.resolver.attempts`: tries per query in total.
pub const DNS_ATTEMPTS_RANGE: RangeInclusive<u64> = 1..=10;
/// `dns.resolver.cache_max_entries`: 0 turns the cache off.
pub const DNS_CACHE_RANGE: RangeInclusive<u64> = 0..=1_000_000;

/// `presence.max_subscriptions_per_connection` and `_per_user`.
pub const SUBSCRIPTIONS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `presence.default_expires_s`, `min_expires_s`, `max_expires_s`: 1 s to one week.
pub const EXPIRES_S_RANGE: RangeInclusive<u64> = 1..=604_800;
/// `users[].presence.schedule[].after_s`: 1 s to one year after the Edge started.
pub const SCHEDULE_AFTER_S_RANGE: RangeInclusive<u64> = 1..=31_536_000;
/// `im.max_text_bytes`: one message's text, bytes (1 to 16 MiB, like a SIP message).
pub const IM_TEXT_BYTES_RANGE: RangeInclusive<u64> = 1..=16 * 1024 * 1024;

/// The first problem of `c`, if any.
pub fn check(c: &EdgeConfig) -> Result<(), Problem> {
    lists(c)?;
    tls(c)?;
    limits(&c.limits)?;
    resolver(&c.dns.resolver)?;
    presence(&c.presence)?;
    im(&c.im)?;
    users(&c.users, &c.im)
}

/// Every `[presence]` key in its range, and `min_expires_s <= default_expires_s <= max_expires_s`.
pub fn presence(p: &PresenceConfig) -> Result<(), Problem> {
    for (field, value) in [
        (
            "presence.max_subscriptions_per_connection",
            p.max_subscriptions_per_connection,
        ),
        (
            "presence.max_subscriptions_per_user",
            p.max_subscriptions_per_user,
        ),
    ] {
        within(
            field,
            wide(value),
            &SUBSCRIPTIONS_RANGE,
            "a number of subscriptions",
        )?;
    }
    for (field, value) in [
        ("presence.default_expires_s", p.default_expires_s),
        ("presence.min_expires_s", p.min_expires_s),
        ("presence.max_expires_s", p.max_expires_s),
    ] {
        within(field, u64::from(value), &EXPIRES_S_RANGE, "seconds")?;
    }
    if p.min_expires_s > p.max_expires_s {
        return Err(problem(
            "presence.min_expires_s",
            format!(
                "{} is above presence.max_expires_s = {}: the shortest expiry granted must not exceed the longest",
                p.min_expires_s, p.max_expires_s
            ),
        ));
    }
    if !(p.min_expires_s..=p.max_expires_s).contains(&p.default_expires_s) {
        return Err(problem(
            "presence.default_expires_s",
            format!(
                "{} is outside presence.min_expires_s..=max_expires_s ({}..={}): give a default between them",
                p.default_expires_s, p.min_expires_s, p.max_expires_s
            ),
        ));
    }
    Ok(())
}

/// `[im]` in its range.
pub fn im(i: &ImConfig) -> Result<(), Problem> {
    within(
        "im.max_text_bytes",
        wide(i.max_text_bytes),
        &IM_TEXT_BYTES_RANGE,
        "a message size in bytes",
    )
}

/// Each user's `presence` (the presence core's own checks, and the schedule's range) and `im` reply.
/// Scenario files share `[[users]]`, so they can use this too.
pub fn users(users: &[UserConfig], im: &ImConfig) -> Result<(), Problem> {
    for (i, u) in users.iter().enumerate() {
        for (j, s) in u.presence.schedule.iter().enumerate() {
            within(
                &format!("users[{i}].presence.schedule[{j}].after_s"),
                s.after_s,
                &SCHEDULE_AFTER_S_RANGE,
                "seconds after the Edge started",
            )?;
        }
        crate::presence::profile::schedule(&u.presence)
            .map_err(|p| problem(&format!("users[{i}].{}", p.field), p.message))?;
        contacts(i, &u.contacts)?;
        if let crate::im::Behaviour::Reply(text) = &u.im {
            if text.is_empty() {
                return Err(problem(
                    &format!("users[{i}].im"),
                    "the reply is empty: give a text, or im = \"silent\" for no reply".into(),
                ));
            }
            if text.len() > im.max_text_bytes {
                return Err(problem(
                    &format!("users[{i}].im"),
                    format!(
                        "the reply is {} bytes, over im.max_text_bytes = {}: shorten it or raise the limit",
                        text.len(),
                        im.max_text_bytes
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn problem(field: &str, message: String) -> Problem {
    Problem {
        field: field.to_owned(),
        message,
    }
}

fn lists(c: &EdgeConfig) -> Result<(), Problem> {
    domain_lists(&c.federation).map_err(|p| problem(&p.at.field(), p.message))
}

fn tls(c: &EdgeConfig) -> Result<(), Problem> {
    if c.tls.cert.is_some() != c.tls.key.is_some() {
        return Err(problem(
            "tls.key",
            "set both tls.cert and tls.key, or neither (the lab CA then issues the Edge certificate)"
                .into(),
        ));
    }
    if c.tls.versions.as_ref().is_some_and(Vec::is_empty) {
        return Err(problem(
            "tls.versions",
            format!(
                "no TLS version left to offer; write versions = [\"1.2\"] or [\"1.2\", \"1.3\"], or remove the key \
                 to offer the profile's ([edge] version = \"{}\": TLS {})",
                c.edge.version.name(),
                super::TlsVersion::list(c.edge.version.tls_versions()),
            ),
        ));
    }
    Ok(())
}

/// `value` within `range`, else a message naming the range and what the value means.
fn within(field: &str, value: u64, range: &RangeInclusive<u64>, what: &str) -> Result<(), Problem> {
    if range.contains(&value) {
        return Ok(());
    }
    let zero = if value == 0 && *range.start() > 0 {
        " (0 does not mean \"off\")"
    } else {
        ""
    };
    Err(problem(
        field,
        format!(
            "{value} is out of range{zero}: give {what} from {} to {}",
            range.start(),
            range.end()
        ),
    ))
}

fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Every `[limits]` key in its range. Scenario files share the section, so they can use this too.
pub fn limits(l: &Limits) -> Result<(), Problem> {
    within(
        "limits.max_connections",
        wide(l.max_connections),
        &MAX_CONNECTIONS_RANGE,
        "a number of concurrent connections",
    )?;
    within(
        "limits.max_message_bytes",
        wide(l.max_message_bytes),
        &MAX_MESSAGE_BYTES_RANGE,
        "a message size in bytes",
    )?;
    within(
        "limits.max_server_message_body_size_kb",
        wide(l.max_server_message_body_size_kb),
        &MAX_BODY_KB_RANGE,
        "a body size in KB (the Edge's MaxServerMessageBodySizeKb, default 5000)",
    )?;
    for (field, value) in [
        ("limits.header_timeout_ms", l.header_timeout_ms),
        ("limits.idle_timeout_ms", l.idle_timeout_ms),
        ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
    ] {
        within(field, value, &TIMEOUT_MS_RANGE, "milliseconds")?;
    }
    within(
        "limits.max_requests_per_sec",
        u64::from(l.max_requests_per_sec),
        &REQUESTS_PER_SEC_RANGE,
        "requests per second per connection (the top of the range for no practical limit)",
    )
}

fn resolver(r: &ResolverSettings) -> Result<(), Problem> {
    within(
        "dns.resolver.timeout_ms",
        r.timeout_ms,
        &DNS_TIMEOUT_MS_RANGE,
        "milliseconds",
    )?;
    within(
        "dns.resolver.attempts",
        wide(r.attempts),
        &DNS_ATTEMPTS_RANGE,
        "a number of tries per query",
    )?;
    within(
        "dns.resolver.cache_max_entries",
        wide(r.cache_max_entries),
        &DNS_CACHE_RANGE,
        "a number of entries (0 turns the cache off)",
    )
}

// ---- Federation settings (issue 15): `[access_edge]`, `[[allowed_domains]]`, `[[blocked_domains]]`, and the
// same settings pasted from Format-List output. Ranges Microsoft documents are marked so; the others are
// edgesim's plausibility ranges (Microsoft gives none).

/// `OutgoingTlsCountForFederatedPartners`: TLS connections per federated partner (Microsoft's range).
pub const OUTGOING_TLS_COUNT_RANGE: RangeInclusive<u64> = 1..=4;
/// `DiscoveredPartnerStandardRate`: messages per second from one discovered partner.
pub const DISCOVERED_PARTNER_RATE_RANGE: RangeInclusive<u64> = 1..=100_000;
/// `MaxContactsPerDiscoveredPartner`: distinct users one discovered partner reaches per report period.
pub const MAX_CONTACTS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `DiscoveredPartnerReportPeriodMinutes`: one minute to one week.
pub const REPORT_PERIOD_MINUTES_RANGE: RangeInclusive<u64> = 1..=10_080;
/// `MaxAcceptedCertificatesStored`, `MaxRejectedCertificatesStored`: certificates cached.
pub const CERTIFICATES_STORED_RANGE: RangeInclusive<u64> = 1..=1_000_000;
/// `CertificatesDeletedPercentage`: percent of a full certificate cache deleted.
pub const CERTIFICATES_DELETED_PERCENT_RANGE: RangeInclusive<u64> = 1..=100;
/// `users[].contacts`: at most this many contacts per user.
pub const MAX_CONTACTS_PER_USER: usize = 10_000;

/// `users[i].contacts`: each a `sip:user@domain` address (scheme optional), at most [`MAX_CONTACTS_PER_USER`].
fn contacts(i: usize, contacts: &[String]) -> Result<(), Problem> {
    if contacts.len() > MAX_CONTACTS_PER_USER {
        return Err(problem(
            &format!("users[{i}].contacts"),
            format!(
                "{} contacts, over the {MAX_CONTACTS_PER_USER} edgesim keeps per user: list only the senders this user must receive unverified messages from",
                contacts.len()
            ),
        ));
    }
    for (j, c) in contacts.iter().enumerate() {
        let bare = c.trim();
        let bare = bare
            .strip_prefix("sips:")
            .or_else(|| bare.strip_prefix("sip:"))
            .unwrap_or(bare);
        let ok = match bare.split_once('@') {
            Some((user, domain)) => {
                !user.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !bare.contains(|ch: char| {
                        ch.is_whitespace() || matches!(ch, '<' | '>' | ';' | '"')
                    })
            }
            None => false,
        };
        if !ok {
            return Err(problem(
                &format!("users[{i}].contacts[{j}]"),
                format!(
                    "\"{c}\" is not a SIP address: write the sender as sip:user@domain (e.g. \"sip:2000@acano.steven.lab\"), one address per entry"
                ),
            ));
        }
    }
    Ok(())
}

/// `DnsSrvCacheRecordCount`: SRV records cached.
pub const DNS_SRV_CACHE_RANGE: RangeInclusive<u64> = 1..=10_000_000;

/// What is wrong with one federation setting, named as the cmdlet spells it (`DiscoveredPartnerStandardRate`);
/// the caller names it in its file's terms (`access_edge.discovered_partner_standard_rate`, or a pasted line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting's cmdlet name.
    pub setting: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// `access_edge.keep_crls_up_to_date_for_peers` from `KeepCrlsUpToDateForPeers`: the TOML spelling of a
/// cmdlet name.
pub fn snake_case(cmdlet_name: &str) -> String {
    let mut out = String::with_capacity(cmdlet_name.len() + 8);
    for (i, ch) in cmdlet_name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// Every Access Edge setting in its range, the identity `Global`, DNS SRV routing.
pub fn access_edge(a: &AccessEdgeConfig) -> Result<(), SettingProblem> {
    if !a.identity.trim().eq_ignore_ascii_case("global") {
        return Err(SettingProblem {
            setting: "Identity",
            message: format!(
                "\"{}\" is not Global: there is one Access Edge configuration, Identity Global; write Global or leave it out",
                a.identity
            ),
        });
    }
    if a.routing_method == RoutingMethod::UseDefaultRouting {
        return Err(SettingProblem {
            setting: "RoutingMethod",
            message: "UseDefaultRouting (every federation request through one DefaultRouteFqdn) is not emulated: \
                      edgesim routes by DNS SRV, and by ProxyFqdn for an allowed domain. Use UseDnsSrvRouting; for a \
                      fixed next hop per partner give its allowed domain a ProxyFqdn"
                .into(),
        });
    }
    let in_range = |setting: &'static str, value: u32, range: &RangeInclusive<u64>, what: &str| {
        within(setting, u64::from(value), range, what).map_err(|p| SettingProblem {
            setting,
            message: p.message,
        })
    };
    in_range(
        "OutgoingTlsCountForFederatedPartners",
        a.outgoing_tls_count_for_federated_partners,
        &OUTGOING_TLS_COUNT_RANGE,
        "a number of TLS connections per federated partner (Microsoft's range)",
    )?;
    in_range(
        "DiscoveredPartnerStandardRate",
        a.discovered_partner_standard_rate,
        &DISCOVERED_PARTNER_RATE_RANGE,
        "messages per second from one discovered partner",
    )?;
    in_range(
        "MaxContactsPerDiscoveredPartner",
        a.max_contacts_per_discovered_partner,
        &MAX_CONTACTS_RANGE,
        "a number of distinct users per discovered partner (EnableDiscoveredPartnerContactsLimit False turns the limit off)",
    )?;
    in_range(
        "DiscoveredPartnerReportPeriodMinutes",
        a.discovered_partner_report_period_minutes,
        &REPORT_PERIOD_MINUTES_RANGE,
        "minutes",
    )?;
    in_range(
        "DnsSrvCacheRecordCount",
        a.dns_srv_cache_record_count,
        &DNS_SRV_CACHE_RANGE,
        "a number of SRV records",
    )?;
    in_range(
        "MaxAcceptedCertificatesStored",
        a.max_accepted_certificates_stored,
        &CERTIFICATES_STORED_RANGE,
        "a number of certificates",
    )?;
    in_range(
        "MaxRejectedCertificatesStored",
        a.max_rejected_certificates_stored,
        &CERTIFICATES_STORED_RANGE,
        "a number of certificates",
    )?;
    in_range(
        "CertificatesDeletedPercentage",
        a.certificates_deleted_percentage,
        &CERTIFICATES_DELETED_PERCENT_RANGE,
        "a percentage",
    )
}

/// `name` is a DNS name (letters, digits, `-`, `_`, dots; a trailing dot allowed), else a message asking for
/// `what` (e.g. "the SIP domain alone, e.g. fabrikam.com").
pub fn domain_name(name: &str, what: &str) -> Result<(), String> {
    let n = name.trim().trim_end_matches('.');
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !n.is_empty() && n.len() <= 253 && n.split('.').all(label_ok) {
        return Ok(());
    }
    Err(format!("\"{name}\" is not a domain name: give {what}"))
}

/// A conflict between domain entries, found at `at` (the later of the two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProblem {
    /// The entry the message is about.
    pub at: Source,
    /// What is wrong and the fix.
    pub message: String,
}

/// No domain both allowed and blocked, and none listed twice in one list (the older `[policy]` lists may
/// repeat a domain, as they always could).
pub fn domain_lists(f: &FederationSettings) -> Result<(), ListProblem> {
    for b in &f.blocked {
        if let Some(a) = f
            .allowed
            .iter()
            .find(|a| norm(&a.domain) == norm(&b.domain))
        {
            return Err(ListProblem {
                at: b.source.clone(),
                message: format!(
                    "{} is both blocked ({}) and allowed ({}); a domain can be on only one list (as on a real Edge). Remove it from one of them.",
                    b.domain, b.source, a.source
                ),
            });
        }
    }
    let twice = |kind: &str, cmdlet: &str, entries: Vec<(&str, &Source)>| {
        for (j, (d, s)) in entries.iter().enumerate() {
            let first = entries[..j].iter().find(|(e, t)| {
                norm(e) == norm(d)
                    && !(matches!(t, Source::Policy(..)) && matches!(s, Source::Policy(..)))
            });
            if let Some((_, t)) = first {
                return Err(ListProblem {
                    at: (*s).clone(),
                    message: format!(
                        "{d} is listed twice as {kind} ({t} and {s}); a real Edge refuses the second {cmdlet}. Remove one."
                    ),
                });
            }
        }
        Ok(())
    };
    twice(
        "an allowed domain",
        "New-CsAllowedDomain",
        f.allowed
            .iter()
            .map(|a| (a.domain.as_str(), &a.source))
            .collect(),
    )?;
    twice(
        "a blocked domain",
        "New-CsBlockedDomain",
        f.blocked
            .iter()
            .map(|b| (b.domain.as_str(), &b.source))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_problem(f: impl FnOnce(&mut Limits)) -> Option<Problem> {
        let mut l = Limits::default();
        f(&mut l);
        limits(&l).err()
    }

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(check(&EdgeConfig::default()), Ok(()));
    }

    #[test]
    fn a_connection_limit_beyond_what_a_semaphore_holds_is_refused_with_the_range() {
        let p = limit_problem(|l| l.max_connections = usize::MAX >> 2).unwrap();
        assert_eq!(p.field, "limits.max_connections");
        assert_eq!(
            p.message,
            "4611686018427387903 is out of range: give a number of concurrent connections from 1 to 1000000"
        );
    }

    #[test]
    fn zero_timeouts_and_rates_are_refused_not_turned_into_one() {
        for (f, field) in [
            (
                (|l: &mut Limits| l.header_timeout_ms = 0) as fn(&mut Limits),
                "limits.header_timeout_ms",
            ),
            (|l| l.idle_timeout_ms = 0, "limits.idle_timeout_ms"),
            (
                |l| l.handshake_timeout_ms = 0,
                "limits.handshake_timeout_ms",
            ),
            (
                |l| l.max_requests_per_sec = 0,
                "limits.max_requests_per_sec",
            ),
            (|l| l.max_connections = 0, "limits.max_connections"),
        ] {
            let p = limit_problem(f).unwrap();
            assert_eq!(p.field, field);
            assert!(
                p.message
                    .starts_with("0 is out of range (0 does not mean \"off\"): give "),
                "{}",
                p.message
            );
        }
        let p = limit_problem(|l| l.max_message_bytes = 100).unwrap();
        assert_eq!(
            p.message,
            "100 is out of range: give a message size in bytes from 1024 to 16777216"
        );
        let p = limit_problem(|l| l.idle_timeout_ms = 86_400_001).unwrap();
        assert_eq!(
            p.message,
            "86400001 is out of range: give milliseconds from 1 to 86400000"
        );
    }

    #[test]
    fn the_ends_of_each_range_are_accepted() {
        let mut l = Limits {
            max_connections: 1,
            max_message_bytes: 1024,
            max_server_message_body_size_kb: 1,
            header_timeout_ms: 1,
            idle_timeout_ms: 1,
            handshake_timeout_ms: 1,
            max_requests_per_sec: 1,
        };
        assert_eq!(limits(&l), Ok(()));
        l = Limits {
            max_connections: 1_000_000,
            max_message_bytes: 16 * 1024 * 1024,
            max_server_message_body_size_kb: 16 * 1024,
            header_timeout_ms: 86_400_000,
            idle_timeout_ms: 86_400_000,
            handshake_timeout_ms: 86_400_000,
            max_requests_per_sec: 1_000_000,
        };
        assert_eq!(limits(&l), Ok(()));
    }

    #[test]
    fn a_body_limit_out_of_range_names_the_edge_setting() {
        let l = Limits {
            max_server_message_body_size_kb: 0,
            ..Limits::default()
        };
        let p = limits(&l).unwrap_err();
        assert_eq!(p.field, "limits.max_server_message_body_size_kb");
        assert_eq!(
            p.message,
            "0 is out of range (0 does not mean \"off\"): give a body size in KB (the Edge's MaxServerMessageBodySizeKb, default 5000) from 1 to 16384"
        );
        assert_eq!(Limits::default().max_server_message_body_size_kb, 5000);
        assert_eq!(Limits::default().idle_timeout_ms, 20 * 60 * 1000);
    }

    #[test]
    fn resolver_zeroes_are_refused_but_a_zero_cache_is_off() {
        let mut c = EdgeConfig::default();
        c.dns.resolver.cache_max_entries = 0;
        assert_eq!(check(&c), Ok(()));
        c.dns.resolver.attempts = 0;
        assert_eq!(check(&c).unwrap_err().field, "dns.resolver.attempts");
        c.dns.resolver.attempts = 1;
        c.dns.resolver.timeout_ms = 0;
        assert_eq!(check(&c).unwrap_err().field, "dns.resolver.timeout_ms");
    }
}
