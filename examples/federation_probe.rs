//! A federation probe: the small SIP service an Expressway or a monitoring team writes to ask "does this
//! Skype for Business Edge federate with us?" — written against edgesim and tested against it.
//!
//! The probe connects over mutual TLS with our certificate, checks the Edge's certificate against the CA we
//! trust, sends one OPTIONS from our user to theirs, and turns the answer into a [`Finding`]: federated, or
//! refused with the Edge's ms-diagnostics reason, or which step failed. Every read is bounded in size and time.
//!
//! Run against an Edge: `cargo run --example federation_probe -- EDGE_ADDR EDGE_FQDN CERT KEY CA FROM TO`,
//! e.g. `127.0.0.1:5061 sip.skype.lab vcse.pem vcse.key ca.pem sip:probe@acano.steven.lab sip:stejanss@skype.lab`.
//! Its tests (the `tests` module below) run the probe against `edgesim::testkit` Edges, as any service's
//! integration tests would: `cargo test --test examples` (CI) or `cargo test --example federation_probe`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use edgesim::TlsIdentity;
use edgesim::diagnostics::MsDiagnostic;
use edgesim::pki::{self, ChainStatus, TrustAnchors, Usage};
use edgesim::sip::{Frame, Framer, Limits, Message, RequestBuilder, ua};
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long each step may take.
const STEP: Duration = Duration::from_secs(5);
/// Most bytes read while waiting for the answer.
const MAX_READ: usize = 64 * 1024;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The Edge answered the OPTIONS with 2xx: federation works both ways at the TLS and policy level.
    Federated {
        /// The status (200).
        status: u16,
    },
    /// The Edge refused with a SIP error; `code` and `reason` from its ms-diagnostics when it sent them.
    Refused {
        /// The SIP status.
        status: u16,
        /// The ms-diagnostics code.
        code: Option<u32>,
        /// The ms-diagnostics reason.
        reason: Option<String>,
    },
    /// The Edge's certificate is not one we trust (or names another host).
    UntrustedEdge(String),
    /// TLS failed or the Edge closed the connection without an answer (how an Edge refuses our certificate).
    NoAnswer(String),
}

/// Why the probe could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Our certificate or the CA could not be used.
    #[error("certificates: {0}")]
    Pki(#[from] pki::PkiError),
    /// The Edge's name is not a valid TLS server name.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The Edge's address.
    pub edge: SocketAddr,
    /// The Edge's FQDN (TLS server name, and a name its certificate must carry).
    pub edge_fqdn: String,
    /// Our certificate.
    pub identity: TlsIdentity,
    /// The CA PEM we trust for the Edge.
    pub ca_pem: String,
    /// Our user (`sip:probe@acano.steven.lab`).
    pub from: String,
    /// Their user (`sip:stejanss@skype.lab`).
    pub to: String,
}

impl Probe {
    /// Runs the probe once.
    pub async fn run(&self) -> Result<Finding, ProbeError> {
        let anchors = trust(&self.ca_pem)?;
        let config = pki::client_config(Some(&self.identity))?;
        let name = ServerName::try_from(self.edge_fqdn.clone())
            .map_err(|_| ProbeError::ServerName(self.edge_fqdn.clone()))?;
        let connected = tokio::time::timeout(STEP, async {
            let tcp = TcpStream::connect(self.edge).await?;
            TlsConnector::from(config).connect(name, tcp).await
        })
        .await;
        let mut tls = match connected {
            Err(_) => return Ok(Finding::NoAnswer("the TLS handshake timed out".into())),
            Ok(Err(e)) => return Ok(Finding::NoAnswer(format!("TLS: {e}"))),
            Ok(Ok(s)) => s,
        };
        let chain = pki::peer_chain(tls.get_ref().1);
        match pki::verify_chain(&chain, &anchors, Usage::ServerAuth, UnixTime::now()) {
            ChainStatus::Trusted => {}
            other => return Ok(Finding::UntrustedEdge(format!("{other:?}"))),
        }
        let names = chain
            .first()
            .and_then(|leaf| pki::CertFacts::from_der(leaf).ok())
            .map(|f| f.san_dns.unwrap_or(f.common_names))
            .unwrap_or_default();
        if !names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&self.edge_fqdn))
        {
            return Ok(Finding::UntrustedEdge(format!(
                "the certificate names {names:?}, not {}",
                self.edge_fqdn
            )));
        }
        let request = self.options();
        if let Err(e) = tls.write_all(&request).await {
            return Ok(Finding::NoAnswer(format!("sending: {e}")));
        }
        Ok(match read_final(&mut tls).await {
            Ok(answer) => classify(&answer),
            Err(why) => Finding::NoAnswer(why),
        })
    }

    /// Our OPTIONS.
    fn options(&self) -> bytes::Bytes {
        let via = format!("SIP/2.0/TLS probe.invalid:5061;branch={}", ua::branch_id());
        let from = format!("<{}>;tag={}", self.from, ua::expressway_tag());
        let to = format!("<{}>", self.to);
        let call_id = ua::uuid();
        RequestBuilder::new("OPTIONS", &self.to)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 OPTIONS")
            .header("User-Agent", "federation-probe/1")
            .body(b"")
            .build()
    }
}

/// The CA PEM as trust anchors.
fn trust(ca_pem: &str) -> Result<TrustAnchors, ProbeError> {
    let certs = pki::parse_certs(ca_pem.as_bytes(), "the probe's CA")?;
    Ok(TrustAnchors::from_certs(&certs, "the probe's CA")?)
}

/// Reads up to the first final response (bounded by [`MAX_READ`] and [`STEP`]).
async fn read_final<S: AsyncReadExt + Unpin>(stream: &mut S) -> Result<Message, String> {
    let mut framer = Framer::new(Limits::default());
    let mut buf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        while let Some(frame) = framer.decode(&mut buf).map_err(|e| e.to_string())? {
            if let Frame::Message(m) = frame
                && m.status_code().is_some_and(|s| s >= 200)
            {
                return Ok(m);
            }
        }
        if buf.len() > MAX_READ {
            return Err("the answer is too large".into());
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Err(_) => return Err("no answer in time".into()),
            Ok(Ok(0)) => return Err("the Edge closed the connection without an answer".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("the connection failed: {e}")),
        }
    }
}

/// A final response as a finding.
fn classify(answer: &Message) -> Finding {
    let status = answer.status_code().unwrap_or_default();
    if (200..300).contains(&status) {
        return Finding::Federated { status };
    }
    let diag = answer
        .header_named("ms-diagnostics")
        .and_then(|h| MsDiagnostic::parse(&String::from_utf8_lossy(&h.value())));
    Finding::Refused {
        status,
        code: diag.as_ref().map(|d| d.code),
        reason: diag.as_ref().and_then(|d| d.reason().map(str::to_owned)),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [edge, fqdn, cert, key, ca, from, to] = a.as_slice() else {
        return Err("usage: federation_probe EDGE_ADDR EDGE_FQDN CERT KEY CA FROM TO".into());
    };
    let probe = Probe {
        edge: edge.parse()?,
        edge_fqdn: fqdn.clone(),
        identity: TlsIdentity::from_pem_files(cert.as_ref(), key.as_ref())?,
        ca_pem: std::fs::read_to_string(ca)?,
        from: from.clone(),
        to: to.clone(),
    };
    let finding = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(probe.run())?;
    println!("{finding:?}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use edgesim::config::UserAction;
    use edgesim::diagnostics::VerdictKind;
    use edgesim::testkit::{DecisionMatch, DnsMode, KeyType, LabCa, LeafSpec, TestEdge};

    use super::*;

    const CERT: &[&str] = &["vcse.acano.steven.lab"];

    async fn edge() -> TestEdge {
        TestEdge::builder()
            .user("stejanss", UserAction::Answer)
            .srv("acano.steven.lab", "vcse.acano.steven.lab")
            .start()
            .await
            .unwrap()
    }

    fn probe(edge: &TestEdge, identity: TlsIdentity) -> Probe {
        Probe {
            edge: edge.addr(),
            edge_fqdn: edge.fqdn().to_owned(),
            identity,
            ca_pem: edge.ca_pem().to_owned(),
            from: "sip:probe@acano.steven.lab".into(),
            to: "sip:stejanss@skype.lab".into(),
        }
    }

    #[tokio::test]
    async fn a_partner_that_federates() {
        let edge = edge().await;
        edge.expect_decision(
            DecisionMatch::method("OPTIONS")
                .status(200)
                .verdict(VerdictKind::Accept)
                .domain("acano.steven.lab"),
            1,
        );
        let p = probe(&edge, edge.peer_identity(CERT).unwrap());
        assert_eq!(p.run().await.unwrap(), Finding::Federated { status: 200 });
    }

    #[tokio::test]
    async fn our_certificate_lacks_the_srv_target() {
        let edge = edge().await;
        edge.expect_record("SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH", 1);
        let p = probe(&edge, edge.peer_identity(&["probe.steven.lab"]).unwrap());
        assert_eq!(
            p.run().await.unwrap(),
            Finding::Refused {
                status: 504,
                code: Some(1010),
                reason: Some(
                    "Certificate trust with another server could not be established".into()
                ),
            }
        );
    }

    #[tokio::test]
    async fn their_srv_record_is_missing() {
        // No SRV for acano.steven.lab; the in-memory lookup answers NXDOMAIN.
        let edge = TestEdge::builder()
            .user("stejanss", UserAction::Answer)
            .dns(DnsMode::Static)
            .start()
            .await
            .unwrap();
        edge.expect_decision(DecisionMatch::any().diagnostics_code(1008), 1);
        let p = probe(&edge, edge.peer_identity(CERT).unwrap());
        assert_eq!(
            p.run().await.unwrap(),
            Finding::Refused {
                status: 504,
                code: Some(1008),
                reason: Some("Unable to resolve DNS SRV record".into()),
            }
        );
    }

    #[tokio::test]
    async fn an_edge_that_does_not_trust_our_ca_closes_without_an_answer() {
        let edge = edge().await;
        edge.expect_decision(DecisionMatch::any().verdict(VerdictKind::Reject), 1);
        let other = LabCa::generate("another CA", KeyType::EcdsaP256).unwrap();
        let ours = TlsIdentity::from(&other.issue(&LeafSpec::new(CERT[0])).unwrap());
        match probe(&edge, ours).run().await.unwrap() {
            Finding::NoAnswer(_) => {}
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_edge_we_do_not_trust_gets_no_request() {
        let edge = edge().await;
        // Nothing reaches the rules: the probe stops after the handshake.
        edge.expect_decision(DecisionMatch::any(), 0);
        let mut p = probe(&edge, edge.peer_identity(CERT).unwrap());
        p.ca_pem = LabCa::generate("not the Edge's CA", KeyType::EcdsaP256)
            .unwrap()
            .chain_pem()
            .to_owned();
        assert_eq!(
            p.run().await.unwrap(),
            Finding::UntrustedEdge("UntrustedRoot".into())
        );
    }
}
