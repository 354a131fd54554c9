//! Each method of [`Finding`], with the exact strings, for the findings whose words several readers share.

use super::*;
use crate::diagnostics::{Hresult, ResultCode, VerdictKind, Winsock};
use crate::report::Line;
use crate::report::Status;

const EDGE: &str = "sip.skype.lab";

fn cert(names: &[&str]) -> CertFacts {
    CertFacts {
        common_names: vec![names[0].into()],
        san_dns: Some(names.iter().map(|s| (*s).to_owned()).collect()),
        issuer: "CN=edgesim lab CA".into(),
        ..CertFacts::default()
    }
}

fn request() -> RequestLine<'static> {
    RequestLine {
        start_line: "INVITE sip:stejanss@skype.lab SIP/2.0",
        call_id: "c1",
        cseq: "1 INVITE",
        peer: "vcse.steven.lab:25002",
    }
}

fn mismatch() -> Finding {
    Finding::NameMismatch {
        target: "vcse.cms.steven.lab".into(),
        cert: Box::new(cert(&["vcse.steven.lab"])),
        how: NameMatch::Absent,
    }
}

#[test]
fn rule2_refusal_on_every_surface() {
    let f = mismatch();
    assert_eq!(f.severity(), Status::Fail);
    assert_eq!(f.rule(), "cert");
    assert_eq!(f.sip(), Some((504, "Server time-out")));
    assert_eq!(f.hresult(), Some(Hresult::WrongPrincipal));
    assert_eq!(
        f.ms_diagnostic(EDGE).unwrap().render(),
        r#"1010;reason="Certificate trust with another server could not be established";ErrorType="The peer certificate does not contain a matching FQDN";tls-target="vcse.cms.steven.lab";PeerServer="vcse.steven.lab";HRESULT="0x80090322 (SEC_E_WRONG_PRINCIPAL)";source="sip.skype.lab""#
    );
    let log = f.log_record(&request()).unwrap();
    assert_eq!(log.result_code, ResultCode::CERT_MISMATCH);
    assert_eq!(
        log.render_data(),
        r#"expectedfqdn="vcse.cms.steven.lab";certName="vcse.steven.lab";info="The peer certificate does not contain a matching FQDN""#
    );
    assert_eq!(f.class(), Some(OutcomeClass::CertMismatch));
    assert_eq!(f.verdict_kind(), VerdictKind::Reject);
    let x = f.explain();
    assert_eq!(
        x.problem,
        "The peer certificate vcse.steven.lab does not name vcse.cms.steven.lab: its SAN lists vcse.steven.lab."
    );
    assert_eq!(
        x.fix.as_deref(),
        Some(
            "add vcse.cms.steven.lab to the certificate's SAN (the SIP domain itself need not be there)."
        )
    );
    assert_eq!(
        f.check_lines(),
        vec![Line::new(
            Status::Fail,
            "cert",
            "vcse.cms.steven.lab is not in the certificate of vcse.steven.lab (SAN: vcse.steven.lab); the Edge answers 504 with ms-diagnostics 1010 SEC_E_WRONG_PRINCIPAL",
            Some("add vcse.cms.steven.lab to the certificate's SAN".into()),
        )]
    );
    let i = f.inspect_line().unwrap();
    assert_eq!(i.text, "add vcse.cms.steven.lab to the certificate's SAN");
    assert_eq!(
        i.line,
        Line::new(
            Status::Fail,
            "name vcse.cms.steven.lab",
            "the certificate does not name vcse.cms.steven.lab (in its SAN, or in its CN without a SAN)",
            Some("add vcse.cms.steven.lab to the certificate's SAN".into()),
        )
    );
}

#[test]
fn an_explanation_reads_problem_then_fix() {
    let x = Finding::DomainBlocked {
        domain: "spam.lab".into(),
    }
    .explain();
    assert_eq!(
        x.to_string(),
        "spam.lab is on the Edge's blocked domain list. Fix: remove it from [[blocked_domains]] (or policy.blocked_domains; on a real Edge Remove-CsBlockedDomain -Identity spam.lab)."
    );
    let only = Finding::EdgeCertUnusable { why: "x".into() }.explain();
    assert_eq!(only.fix, None);
    assert_eq!(only.to_string(), "The Edge certificate cannot be used: x");
}

#[test]
fn check_quotes_the_codes_the_edge_sends() {
    let expired = Finding::Validity {
        state: ValidityState::Expired,
        not_before: 0,
        not_after: 86_400,
        days_left: -1,
        target: Some("vcse.acano.steven.lab".into()),
    };
    assert_eq!(
        expired.check_lines()[0].detail,
        "the certificate expired on 1970-01-02; the Edge answers 504 with ms-diagnostics 1010 SEC_E_CERT_EXPIRED"
    );
    let reset = Finding::TlsProbe {
        target: "vcse.lab".into(),
        version: TlsVersion::Tls12,
        probe: TlsProbe::Refused {
            detail: "reset".into(),
            timed_out: false,
        },
    };
    assert!(
        reset.check_lines()[0]
            .fix
            .as_deref()
            .unwrap()
            .ends_with("the Edge sees this as ms-diagnostics 1047 WSAECONNRESET"),
        "{:?}",
        reset.check_lines()
    );
    let dead = Finding::AddressDead {
        target: "vcse.lab".into(),
        addr: "127.0.0.2:5061".parse().unwrap(),
        kind: Some(ConnectFailure::Refused),
        detail: "Connection refused".into(),
        live: None,
    };
    assert_eq!(
        dead.check_lines(),
        vec![Line::new(
            Status::Fail,
            "tcp",
            "vcse.lab 127.0.0.2:5061: Connection refused (connection refused, WSAECONNREFUSED)",
            Some("check that the Expressway-E listens for SIP TLS on port 5061 (the SRV port) and that firewalls allow it from the Edge".into()),
        )]
    );
    let refused = Finding::ConnectFailed {
        target: "vcse.lab".into(),
        kind: ConnectFailure::Refused,
    };
    assert_eq!(refused.winsock(), Some(Winsock::ConnRefused));
    assert_eq!(refused.diagnostic_code(), Some(1046));
    assert_eq!(refused.class(), Some(OutcomeClass::ConnectFailed));
}

#[test]
fn a_chain_line_is_about_the_target() {
    let trusted = Finding::ChainTrusted {
        target: Some("vcse.acano.steven.lab".into()),
        anchors: None,
    };
    assert_eq!(
        trusted.check_lines()[0].detail,
        "the certificate chain of vcse.acano.steven.lab leads to a CA the Edge trusts"
    );
    let inspect = Finding::ChainTrusted {
        target: None,
        anchors: Some("ca.pem".into()),
    };
    assert_eq!(
        inspect.inspect_line().unwrap().text,
        "trusted: leads to ca.pem"
    );
}

#[test]
fn the_eku_finding_is_two_check_lines_and_one_inspect_line() {
    let server_only = Finding::Eku {
        eku: Some(Eku {
            server_auth: true,
            client_auth: false,
            any: false,
        }),
        client_required: true,
    };
    assert_eq!(server_only.severity(), Status::Fail);
    let lines = server_only.check_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].status, Status::Pass);
    assert_eq!(lines[1].status, Status::Fail);
    assert!(lines[1].detail.starts_with(
        "Public CAs stop issuing clientAuth (2026–2027; Cisco FN74362): this certificate has Server Authentication"
    ));
    let i = server_only.inspect_line().unwrap();
    assert_eq!(i.line.rule, "eku");
    assert!(
        i.line
            .detail
            .starts_with("serverAuth present but clientAuth missing")
    );
    let relaxed = Finding::Eku {
        eku: Some(Eku {
            server_auth: true,
            client_auth: false,
            any: false,
        }),
        client_required: false,
    };
    assert_eq!(relaxed.severity(), Status::Warn);
    assert_eq!(relaxed.check_lines()[1].status, Status::Warn);
}

#[test]
fn users_and_limits_answer_with_their_headers() {
    let f = Finding::UnknownUser {
        uri: "sip:nobody@skype.lab".into(),
        users: vec!["stejanss".into()],
    };
    assert_eq!(f.sip(), Some((404, "Not Found")));
    assert_eq!(
        f.ms_diagnostic(EDGE).unwrap().render(),
        r#"4005;reason="Destination URI either not enabled for SIP or does not exist""#
    );
    assert_eq!(f.verdict_kind(), VerdictKind::Accept);
    assert_eq!(
        f.explain().to_string(),
        "sip:nobody@skype.lab is not one of the Edge's users (stejanss): the Edge answered 404 Not Found with ms-diagnostics 4005. Fix: call one of them, or add the user to [[users]] in the Edge configuration."
    );
    assert_eq!(f.log_record(&request()), None);
    let calls = Finding::TooManyCalls { max: 3 };
    assert_eq!(calls.sip(), Some((503, "Service Unavailable")));
    assert_eq!(
        calls.response_headers(),
        vec![("Retry-After", "5".to_owned())]
    );
}

#[test]
fn peer_answers_pass_their_diagnostics_through_or_get_1034() {
    let answer = PeerAnswer {
        target: "vcse.steven.lab".into(),
        method: "INVITE".into(),
        status: 404,
        reason: "Not Found".into(),
        peer_diag: Some("4005 ;reason=\"theirs\"".into()),
        domain: "steven.lab".into(),
        callee: "sip:x@steven.lab".into(),
        edge_domain: "skype.lab".into(),
    };
    let own = Finding::PeerRejected(Box::new(answer.clone()));
    // Verbatim, spacing and all.
    assert_eq!(
        own.ms_diagnostics_value(EDGE).as_deref(),
        Some("4005 ;reason=\"theirs\"")
    );
    assert_eq!(own.diagnostic_code(), Some(4005));
    assert_eq!(own.class(), Some(OutcomeClass::Rejected(404)));
    let bare = Finding::PeerRejected(Box::new(PeerAnswer {
        peer_diag: None,
        ..answer
    }));
    assert_eq!(
        bare.ms_diagnostics_value(EDGE).as_deref(),
        Some(
            r#"1034;reason="Previous hop federated peer did not report diagnostic information";Domain="steven.lab";PeerServer="vcse.steven.lab";source="sip.skype.lab""#
        )
    );
    assert!(
        bare.explain()
            .problem
            .contains("without ms-diagnostics, so the Edge added 1034.")
    );
}

#[test]
fn handshake_refusals_have_a_record_and_no_sip_answer() {
    let f = Finding::ChainRefused {
        target: None,
        cert: Some(Box::new(cert(&["vcse.steven.lab"]))),
        chain: ChainStatus::Expired,
        role: Role::Client,
        anchors: None,
    };
    assert_eq!(f.sip(), None);
    assert_eq!(f.ms_diagnostic(EDGE), None);
    let log = f
        .log_record(&RequestLine::connection("10.0.0.1:1"))
        .unwrap();
    assert_eq!(log.result_code, ResultCode::CLIENT_CERT_REJECTED);
    assert_eq!(log.peer, "10.0.0.1:1");
    assert_eq!(
        log.render_data(),
        r#"reason="expired";certName="vcse.steven.lab""#
    );
    assert_eq!(f.rule(), "inbound");
}

#[test]
fn outcome_classes_name_their_exit_codes() {
    assert_eq!(OutcomeClass::CertExpired.exit_code(), 14);
    assert_eq!(OutcomeClass::Rejected(486).name(), "rejected");
    assert_eq!(
        serde_json::to_string(&OutcomeClass::HandshakeReset).unwrap(),
        "\"handshake-reset\""
    );
}

#[test]
fn findings_and_verdicts_stay_small() {
    // A finding travels in every refusal; the large facts (certificates, the peer's answer) are boxed.
    assert!(std::mem::size_of::<Finding>() <= 128);
    assert!(std::mem::size_of::<crate::rules::Verdict>() < 128);
}
