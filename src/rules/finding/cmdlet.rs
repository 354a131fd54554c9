//! `check DOMAIN --as-test-csfederatedpartner`: an outbound OPTIONS outcome in the terms of the
//! `Test-CsFederatedPartner` cmdlet, whose result object prints `TargetFqdn`, `Result` (`Success` /
//! `Failure`), `Latency`, `Error` (`<status>, <reason>`) and `Diagnosis` (`ErrorCode=<code>,Source=<fqdn>,
//! Reason=<reason>`, the layout the Test-Cs* cmdlets print, notes `edge-behaviour.md` [TEST-CSAV]).
//!
//! What counts as `Success` [I]: the cmdlet's OPTIONS goes to a user that does not exist (`Options_User`), so
//! a final answer *from the peer* proves the route: a 2xx, or the peer's own 404 for that user. Any other
//! error the peer sends, and every failure of the Edge itself (no SRV, Rule 1, the certificate, TCP/TLS, no
//! answer in time), is `Failure` with the status the Front End would see and the Edge's diagnostic.

use super::Finding;
use crate::report::{Line, Status};

/// The cmdlet's result for one outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CmdletOutcome {
    /// `Success` or `Failure`.
    pub result: &'static str,
    /// `504, Server time-out`; `None` on success.
    pub error: Option<String>,
    /// `ErrorCode=1008,Source=sip.skype.lab,Reason=Unable to resolve DNS SRV record`; `None` without one.
    pub diagnosis: Option<String>,
}

impl Finding {
    /// The `Test-CsFederatedPartner` result of this outbound OPTIONS outcome, `source` being the Edge FQDN.
    pub fn test_cs_federated_partner(&self, source: &str) -> CmdletOutcome {
        let success = match self {
            Finding::PeerAnswered(_) => true,
            Finding::PeerRejected(a) => a.status == 404,
            _ => false,
        };
        if success {
            return CmdletOutcome {
                result: "Success",
                error: None,
                diagnosis: None,
            };
        }
        let error = self
            .sip()
            .map(|(status, reason)| format!("{status}, {reason}"));
        let diagnosis = self.ms_diagnostic(source).map(|d| {
            format!(
                "ErrorCode={},Source={},Reason={}",
                d.code,
                d.param("source").unwrap_or(source),
                d.reason().unwrap_or_default()
            )
        });
        CmdletOutcome {
            result: "Failure",
            error,
            diagnosis,
        }
    }

    /// The `test-csfederatedpartner` line of `check`: PASS on `Success`, FAIL on `Failure`, with the Edge's
    /// explanation and fix.
    pub fn cmdlet_line(&self, source: &str, request_uri: &str) -> Line {
        let out = self.test_cs_federated_partner(source);
        let x = self.explain();
        let (status, detail) = match out.error {
            None => (
                Status::Pass,
                format!(
                    "Result Success: OPTIONS {request_uri} was answered by the peer. {}",
                    x.problem
                ),
            ),
            Some(e) => (
                Status::Fail,
                format!("Result Failure, Error {e}: {}", x.problem),
            ),
        };
        Line::new(
            status,
            "test-csfederatedpartner",
            detail,
            x.fix.filter(|_| status == Status::Fail),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::DnsFailure;
    use crate::rules::finding::PeerAnswer;
    use crate::rules::{DomainName, NoSrv};

    fn answer(status: u16, reason: &str) -> Box<PeerAnswer> {
        Box::new(PeerAnswer {
            target: "vcse.acano.steven.lab".into(),
            method: "OPTIONS".into(),
            status,
            reason: reason.into(),
            peer_diag: None,
            domain: "acano.steven.lab".into(),
            callee: "sip:Options_User@acano.steven.lab".into(),
            edge_domain: "skype.lab".into(),
        })
    }

    #[test]
    fn results_errors_and_diagnoses_in_the_cmdlet_layout() {
        let ok = Finding::PeerAnswered(answer(200, "OK"));
        assert_eq!(
            ok.test_cs_federated_partner("sip.skype.lab"),
            CmdletOutcome {
                result: "Success",
                error: None,
                diagnosis: None
            }
        );
        assert_eq!(
            Finding::PeerRejected(answer(404, "Not Found"))
                .test_cs_federated_partner("sip.skype.lab")
                .result,
            "Success"
        );
        let refused = Finding::PeerRejected(answer(403, "Forbidden"));
        assert_eq!(
            refused.test_cs_federated_partner("sip.skype.lab"),
            CmdletOutcome {
                result: "Failure",
                error: Some("403, Forbidden".into()),
                diagnosis: Some(
                    "ErrorCode=1034,Source=sip.skype.lab,Reason=Previous hop federated peer did not report diagnostic information".into()
                ),
            }
        );
        let no_srv = Finding::NoSrv {
            domain: DomainName::new("acano.steven.lab"),
            why: NoSrv::Dns(DnsFailure::NxDomain),
            server: "127.0.0.1:53".into(),
        };
        assert_eq!(
            no_srv.test_cs_federated_partner("sip.skype.lab"),
            CmdletOutcome {
                result: "Failure",
                error: Some("504, Server time-out".into()),
                diagnosis: Some(
                    "ErrorCode=1008,Source=sip.skype.lab,Reason=Unable to resolve DNS SRV record"
                        .into()
                ),
            }
        );
        let line = no_srv.cmdlet_line("sip.skype.lab", "sip:Options_User@acano.steven.lab");
        assert_eq!(line.status, Status::Fail);
        assert_eq!(line.rule, "test-csfederatedpartner");
        assert!(
            line.detail
                .starts_with("Result Failure, Error 504, Server time-out: "),
            "{}",
            line.detail
        );
        let line = ok.cmdlet_line("sip.skype.lab", "sip:Options_User@acano.steven.lab");
        assert_eq!(line.status, Status::Pass);
        assert!(
            line.detail.starts_with(
                "Result Success: OPTIONS sip:Options_User@acano.steven.lab was answered by the peer. "
            ),
            "{}",
            line.detail
        );
        assert_eq!(line.fix, None);
    }
}
