//! The sender domain of an inbound request: who is asking to federate.

use super::DomainName;

/// The sender domain: the first sip:/sips: P-Asserted-Identity host, else the From host; normalised. The caller
/// passes hosts only, skipping tel: PAIs (they carry no domain). `None` when neither names a host.
pub fn sender_domain(
    first_pai_sip_host: Option<&str>,
    from_host: Option<&str>,
) -> Option<DomainName> {
    first_pai_sip_host
        .map(DomainName::new)
        .filter(|h| !h.is_empty())
        .or_else(|| from_host.map(DomainName::new).filter(|h| !h.is_empty()))
}
