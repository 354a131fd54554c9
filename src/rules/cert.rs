//! The certificate rules: Extended Key Usage (server and client), validity against a clock passed in, the chain
//! status as findings, and [`judge_certificate`], which returns every finding for one certificate so that the
//! Edge, `check` and `certs inspect` give the same certificate the same verdict.

use super::{DomainName, Finding, Policy, ValidityState, names_match};
use crate::pki::{CertFacts, ChainStatus, Eku};

/// Which side of mutual TLS a certificate is judged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// The peer's TLS server certificate (the Edge calls the peer).
    Server,
    /// The peer's TLS client certificate (the peer calls the Edge).
    Client,
}

/// The EKU rule: a certificate may act as `role` when it has no EKU extension, or one that lists that purpose
/// or anyExtendedKeyUsage.
pub fn eku_allows(cert: &CertFacts, role: Role) -> bool {
    let (server, client) = eku_pair(cert.eku.as_ref());
    match role {
        Role::Server => server,
        Role::Client => client,
    }
}

/// [`eku_allows`] for both roles: (server, client).
pub(crate) fn eku_pair(eku: Option<&Eku>) -> (bool, bool) {
    match eku {
        None => (true, true),
        Some(e) => (e.server_auth || e.any, e.client_auth || e.any),
    }
}

/// Days left below which a certificate is reported as expiring.
const EXPIRING_DAYS: i64 = 30;

/// The validity rule at `now` (Unix seconds): not yet valid, expired, expiring (fewer than 30 days left), valid.
pub fn validity(cert: &CertFacts, now: i64, target: Option<&DomainName>) -> Finding {
    let days_left = cert.days_left(now);
    let state = if now < cert.not_before {
        ValidityState::NotYetValid
    } else if now > cert.not_after {
        ValidityState::Expired
    } else if days_left < EXPIRING_DAYS {
        ValidityState::Expiring
    } else {
        ValidityState::Valid
    };
    Finding::Validity {
        state,
        not_before: cert.not_before,
        not_after: cert.not_after,
        days_left,
        target: target.cloned(),
    }
}

/// Rule 2 for `target`: the name match as a finding.
pub fn name_rule(policy: &Policy, cert: &CertFacts, target: &DomainName) -> Finding {
    let how = names_match(cert, target.as_str(), policy.allow_wildcard);
    if how.passes() {
        Finding::NameMatches {
            target: target.clone(),
            how,
        }
    } else {
        Finding::NameMismatch {
            target: target.clone(),
            cert: Box::new(cert.clone()),
            how,
        }
    }
}

/// The clientAuth EKU rule of the inbound direction: the peer presents its certificate as TLS client.
/// `None` when it may; a FAIL when `policy.require_client_auth_eku`, else a WARN the Edge lets through.
pub fn client_auth(
    policy: &Policy,
    cert: &CertFacts,
    target: Option<&DomainName>,
) -> Option<Finding> {
    (!eku_allows(cert, Role::Client)).then(|| Finding::ClientAuthEkuMissing {
        cert: cert.display_name(),
        target: target.cloned(),
        required: policy.require_client_auth_eku,
    })
}

/// The chain status of a certificate as a finding; `anchors` names the trusted CAs when a reader names them.
pub fn chain_rule(
    target: Option<&DomainName>,
    cert: Option<&CertFacts>,
    chain: &ChainStatus,
    role: Role,
    anchors: Option<&str>,
) -> Finding {
    match chain {
        ChainStatus::Trusted => Finding::ChainTrusted {
            target: target.cloned(),
            anchors: anchors.map(str::to_owned),
        },
        _ => Finding::ChainRefused {
            target: target.cloned(),
            cert: cert.map(|c| Box::new(c.clone())),
            chain: *chain,
            role,
            anchors: anchors.map(str::to_owned),
        },
    }
}

/// The peer presented no (readable) certificate for `target` when the Edge called it.
pub fn absent(target: &DomainName) -> Finding {
    Finding::NoPeerCertificate {
        target: target.clone(),
        dir: super::Direction::Outbound,
        sender: DomainName::default(),
        setting: crate::config::ClientCertMode::Required,
    }
}

/// `check`: how the Edge judges `cert` when the peer presents it as its TLS client certificate (calls to the
/// Edge): the handshake's chain rule, then the clientAuth EKU rule, as the Edge applies them.
pub fn as_client(
    policy: &Policy,
    target: &DomainName,
    cert: &CertFacts,
    chain: &ChainStatus,
) -> Finding {
    if *chain != ChainStatus::Trusted {
        return chain_rule(Some(target), Some(cert), chain, Role::Client, None);
    }
    client_auth(policy, cert, Some(target)).unwrap_or_else(|| Finding::ClientCertAccepted {
        cert: cert.display_name(),
    })
}

/// Whether the Edge's own certificate can be its TLS client certificate toward the peer (`check`).
pub fn edge_cert(cert: &CertFacts) -> Finding {
    Finding::EdgeCertClientAuth {
        cert: cert.display_name(),
        allowed: eku_allows(cert, Role::Client),
    }
}

/// What a certificate presents (`check`).
pub fn presented(cert: &CertFacts, target: &DomainName) -> Finding {
    Finding::CertPresented {
        target: target.clone(),
        subject: cert.subject.clone(),
        issuer: cert.issuer.clone(),
        san: cert.san_dns.clone(),
    }
}

/// Every finding about one certificate, by rule. A reader destructures it whole, so no finding can be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertJudgement {
    /// Rule 2, one finding per target.
    pub names: Vec<Finding>,
    /// No SAN extension (the Edge falls back to the CN; others do not).
    pub san: Option<Finding>,
    /// A wildcard name.
    pub wildcard: Option<Finding>,
    /// Server and Client Authentication.
    pub eku: Finding,
    /// Validity at the time given.
    pub validity: Finding,
    /// The chain, when a chain status was given; `None` also when the chain's only problem is the validity
    /// the `validity` finding reports (an expired or not yet valid certificate itself).
    pub chain: Option<Finding>,
}

/// Every finding for `cert` presented for `targets` (none: no name rule), with the chain status `chain` if it was
/// verified, at `now` (Unix seconds). The same certificate gets the same findings in every reader.
pub fn judge_certificate(
    policy: &Policy,
    targets: &[DomainName],
    cert: &CertFacts,
    chain: Option<(&ChainStatus, Option<&str>)>,
    now: i64,
) -> CertJudgement {
    let first = targets.first();
    let names_for_fix = match targets {
        [] => "the FQDN the Edge expects".to_owned(),
        many => many
            .iter()
            .map(DomainName::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let validity = validity(cert, now, first);
    let leaf_valid = matches!(
        validity,
        Finding::Validity {
            state: ValidityState::Valid | ValidityState::Expiring,
            ..
        }
    );
    let chain = chain.and_then(|(status, anchors)| {
        // An expired (or not yet valid) leaf is the validity finding's fact; the chain repeats it only when the
        // leaf is valid (then a CA of the chain is out of its validity).
        let repeats_validity = matches!(status, ChainStatus::Expired | ChainStatus::NotYetValid);
        (leaf_valid || !repeats_validity)
            .then(|| chain_rule(first, Some(cert), status, Role::Server, anchors))
    });
    CertJudgement {
        names: targets.iter().map(|t| name_rule(policy, cert, t)).collect(),
        san: cert.san_dns.is_none().then(|| Finding::NoSan {
            names: names_for_fix.clone(),
        }),
        wildcard: cert.has_wildcard().then_some(Finding::WildcardName {
            names: names_for_fix,
        }),
        eku: Finding::Eku {
            eku: cert.eku,
            client_required: policy.require_client_auth_eku,
        },
        validity,
        chain,
    }
}
