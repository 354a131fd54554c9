//! How the outbound role words what it found, for people: routes, TLS versions, SRV records.
//! No `{:?}` of a library value reaches what `call` and `check` print; these functions are the one wording.

use crate::dns::SrvRecord;
use crate::rules::Route;

/// How the policy routes a domain, in words.
pub fn route(route: &Route) -> String {
    match route {
        Route::Blocked => "on the blocked domain list".into(),
        Route::FixedFqdn(f) => format!("an allowed partner with the fixed Edge {f}"),
        Route::Discover => "partner discovery (DNS SRV)".into(),
        Route::NotAllowed => "not an allowed domain, and partner discovery is off".into(),
    }
}

/// A negotiated TLS version as people write it: `TLS 1.2`, `TLS 1.3`.
pub fn tls_version(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".into(),
        other => format!("TLS version 0x{:04x}", u16::from(other)),
    }
}

/// An SRV target as written in DNS: `.` for RFC 2782's "decidedly not available", else the name.
pub fn srv_target(record: &SrvRecord) -> &str {
    if crate::rules::srv_decidedly_unavailable(record) {
        "."
    } else {
        &record.target
    }
}

/// One SRV record: `priority weight port target`.
pub fn srv(record: &SrvRecord) -> String {
    format!(
        "{} {} {} {}",
        record.priority,
        record.weight,
        record.port,
        srv_target(record)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_for_people() {
        assert_eq!(
            route(&Route::NotAllowed),
            "not an allowed domain, and partner discovery is off"
        );
        assert_eq!(tls_version(rustls::ProtocolVersion::TLSv1_2), "TLS 1.2");
        assert_eq!(
            tls_version(rustls::ProtocolVersion::TLSv1_1),
            "TLS version 0x0302"
        );
        let dot = SrvRecord {
            priority: 0,
            weight: 0,
            port: 0,
            target: String::new(),
        };
        assert_eq!(srv(&dot), "0 0 0 .");
    }
}
