//! Running a scenario: every case in its own lab (own DNS server, own Edge or peer server, all on 127.0.0.1:0),
//! so cases run concurrently; certificates are issued once per file.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::net::TcpListener;

use super::case::{Case, CaseKind};
use super::expect::{Observed, compare, summarize_expect, summarize_observed};
use super::format::{Behaviour, DEFAULT_SIP_TLS_PORT, Direction};
use super::lab::{CaseDns, LabPki};
use super::{ScenarioError, ScenarioFile, seed_lab};

/// How many cases of one file run at once (each holds a DNS server, an Edge or peer server, and a client).
const CONCURRENT_CASES: usize = 8;

/// A case that takes longer than this is reported as an error, not waited for.
const CASE_DEADLINE: Duration = Duration::from_secs(15);

/// One case's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case name.
    pub name: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The case's description.
    pub description: Option<String>,
    /// The expectation, summarised (`504 · 1009 · 0xc3e93d6f`).
    pub expected: String,
    /// The observation, summarised the same way.
    pub got: String,
    /// Every expectation held.
    pub pass: bool,
    /// The differences (empty on PASS).
    pub detail: Vec<String>,
    /// The Edge's explanation of a rejection.
    pub explanation: Option<String>,
    /// Everything observed.
    pub observed: Observed,
    /// Wall time of the case, ms.
    pub elapsed_ms: u64,
}

/// All results of one scenario file.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// The file.
    pub path: String,
    /// Its title.
    pub title: Option<String>,
    /// One result per case, in file order.
    pub cases: Vec<CaseResult>,
    /// Wall time of the file, ms.
    pub elapsed_ms: u64,
}

impl ScenarioReport {
    /// True when every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.pass)
    }

    /// Number of failed cases.
    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| !c.pass).count()
    }
}

/// Loads and runs a scenario file.
pub async fn run_file(path: &Path) -> Result<ScenarioReport, ScenarioError> {
    run_scenario(&ScenarioFile::load(path)?).await
}

/// Runs the embedded seed lab.
pub async fn run_embedded() -> Result<ScenarioReport, ScenarioError> {
    run_scenario(&seed_lab()?).await
}

/// Runs every case of a parsed scenario.
pub async fn run_scenario(file: &ScenarioFile) -> Result<ScenarioReport, ScenarioError> {
    run_scenario_tapped(file, &crate::wire::Taps::default()).await
}

/// [`run_scenario`], with what each case's Edge sees on the wire fed to `taps` (`scenario run --pcap`).
pub async fn run_scenario_tapped(
    file: &ScenarioFile,
    taps: &crate::wire::Taps,
) -> Result<ScenarioReport, ScenarioError> {
    let started = Instant::now();
    let pki = LabPki::build(file)?;
    let cases = futures::stream::iter(file.cases.iter())
        .map(|case| run_case(file, &pki, case, taps))
        .buffered(CONCURRENT_CASES)
        .collect::<Vec<_>>()
        .await;
    Ok(ScenarioReport {
        path: file.path.display().to_string(),
        title: file.scenario.title.clone(),
        cases,
        elapsed_ms: millis(started),
    })
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs one case and compares.
async fn run_case(
    file: &ScenarioFile,
    pki: &LabPki,
    case: &Case,
    taps: &crate::wire::Taps,
) -> CaseResult {
    let started = Instant::now();
    let observed = match tokio::time::timeout(CASE_DEADLINE, observe(file, pki, case, taps)).await {
        Ok(o) => o,
        Err(_) => Observed {
            error: Some(format!(
                "the case took longer than {} s",
                CASE_DEADLINE.as_secs()
            )),
            ..Observed::default()
        },
    };
    let detail = compare(&case.expect, &observed);
    CaseResult {
        name: case.name.clone(),
        direction: case.direction(),
        description: case.description.clone(),
        expected: summarize_expect(&case.expect),
        got: summarize_observed(&observed),
        pass: detail.is_empty(),
        detail,
        explanation: observed.explanation.clone(),
        observed,
        elapsed_ms: millis(started),
    }
}

fn failed(error: String) -> Observed {
    Observed {
        error: Some(error),
        ..Observed::default()
    }
}

/// The socket an outbound case's SRV points to.
enum PeerSocket {
    /// Listening, for the peer server.
    Listener(TcpListener),
    /// Bound but not listening: connections are refused, and no other case can take the port meanwhile.
    Closed(tokio::net::TcpSocket),
}

impl PeerSocket {
    async fn bind(behaviour: Behaviour) -> std::io::Result<PeerSocket> {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        if behaviour == Behaviour::Refuse {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(loopback)?;
            Ok(PeerSocket::Closed(socket))
        } else {
            Ok(PeerSocket::Listener(TcpListener::bind(loopback).await?))
        }
    }

    fn port(&self) -> std::io::Result<u16> {
        Ok(match self {
            PeerSocket::Listener(l) => l.local_addr()?.port(),
            PeerSocket::Closed(s) => s.local_addr()?.port(),
        })
    }
}

/// Builds the case's lab, runs it, and tears it down.
async fn observe(
    file: &ScenarioFile,
    pki: &LabPki,
    case: &Case,
    taps: &crate::wire::Taps,
) -> Observed {
    // Outbound: the peer server's socket is bound first, so SRV port 0 can name it.
    let peer_socket = match &case.kind {
        CaseKind::Inbound(_) => None,
        CaseKind::Outbound(o) => match PeerSocket::bind(o.behaviour).await {
            Ok(p) => Some(p),
            Err(e) => return failed(format!("cannot bind the peer server on 127.0.0.1: {e}")),
        },
    };
    let case_port = match &peer_socket {
        Some(p) => match p.port() {
            Ok(port) => port,
            Err(e) => return failed(format!("peer server socket: {e}")),
        },
        None => DEFAULT_SIP_TLS_PORT,
    };
    let zones = match case.zones(&file.scenario.dns.records, case_port) {
        Ok(z) => z,
        Err(e) => return failed(e.to_string()),
    };
    let dns = match CaseDns::start(zones, file.scenario.dns.timeout_ms).await {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let observed = match (&case.kind, peer_socket) {
        (CaseKind::Outbound(o), Some(socket)) => {
            drive::outbound(file, pki, o, &dns, socket, taps).await
        }
        (CaseKind::Inbound(i), _) => drive::inbound(file, pki, i, &dns, taps).await,
        (CaseKind::Outbound(_), None) => failed("the outbound case has no peer socket".into()),
    };
    dns.stop().await;
    observed
}

/// What the emulated Expressway-E sees after a 2xx to a SUBSCRIBE or an IM INVITE.
mod presence_im {
    use super::super::expect::PresenceSeen;
    use crate::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
    use crate::lab::scenario::case::InboundCase;
    use crate::presence::client::Notification;
    use crate::sip::Message;
    use std::time::Duration;

    const STEP: Duration = Duration::from_secs(5);

    fn header(m: &Message, name: &str) -> Option<String> {
        m.header_named(name)
            .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned())
    }

    fn availability(m: &Message) -> Option<String> {
        let n = Notification::read(
            header(m, "subscription-state").as_deref(),
            header(m, "Content-Type").as_deref(),
            m.body(),
        )
        .ok()?;
        n.presence.map(|p| p.class().name().to_owned())
    }

    /// The subscription's first state (in the 200 or the NOTIFY after it) and, when asked, the next; or the
    /// IM replies, then BYE.
    pub(super) async fn after(
        client: &mut PeerClient,
        case: &InboundCase,
        req: &ExpresswayRequest,
        ok: &Message,
    ) -> Result<PresenceSeen, PeerError> {
        let mut seen = PresenceSeen::default();
        if case.method == "SUBSCRIBE" {
            seen.expires = header(ok, "Expires").and_then(|e| e.parse().ok());
            let first = if ok.body().is_empty() {
                let n = client.next_request(STEP).await?;
                client.answer(&n, 200).await?;
                n
            } else {
                ok.clone()
            };
            seen.format = header(&first, "Content-Type");
            seen.availability = availability(&first);
            if case.wait_change {
                let n = client.next_request(STEP).await?;
                client.answer(&n, 200).await?;
                seen.later_availability = availability(&n);
            }
        } else if case.im.is_some() {
            let tag = ok
                .to()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned))
                .unwrap_or_default();
            client
                .send(&req.follow_up("ACK", Some(&tag)).build())
                .await?;
            let mut replies = Vec::new();
            for _ in 0..case.replies {
                let m = client.next_request(STEP).await?;
                client.answer(&m, 200).await?;
                if m.method() == Some(b"MESSAGE") {
                    replies.push(String::from_utf8_lossy(m.body()).into_owned());
                }
            }
            // A reply beyond those is queued before the BYE's answer: read up to it.
            client
                .send(&req.follow_up("BYE", Some(&tag)).build())
                .await?;
            loop {
                let Some(m) = client.recv(STEP).await? else {
                    break;
                };
                if m.is_request() {
                    client.answer(&m, 200).await?;
                    if m.method() == Some(b"MESSAGE") {
                        replies.push(String::from_utf8_lossy(m.body()).into_owned());
                    }
                } else if m.cseq().is_ok_and(|c| c.method == "BYE") {
                    break;
                }
            }
            seen.im_replies = Some(replies);
        }
        Ok(seen)
    }
}

/// The parts that talk to the Edge and the emulated Expressway-E.
mod drive {
    use std::sync::Arc;

    use super::*;
    use crate::config::EdgeConfig;
    use crate::diagnostics::DecisionEvent;
    use crate::diagnostics::render_params;
    use crate::dns::Lookup;
    use crate::edge::EdgeParts;
    use crate::lab::builder::{LabError, RunningEdge};
    use crate::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
    use crate::lab::peer::server::{PeerBehaviour, PeerServer, PeerServerSpec};
    use crate::lab::scenario::case::{InboundCase, OutboundCase};
    use crate::outbound::{CallRequest, OutboundContext, Timeouts};
    use crate::rules::Policy;
    use crate::sip::ua::reason_phrase;

    /// Connecting, handshaking, and waiting for a final response each get this long.
    const STEP: Duration = Duration::from_secs(5);

    /// How long to wait for the Edge's decision event once the response (or refusal) is in.
    const EVENT_WAIT: Duration = Duration::from_millis(1000);

    /// The emulated Expressway-E sends the case's request to a fresh Edge.
    pub(super) async fn inbound(
        file: &ScenarioFile,
        pki: &LabPki,
        case: &InboundCase,
        dns: &CaseDns,
        taps: &crate::wire::Taps,
    ) -> Observed {
        let s = &file.scenario;
        let config = EdgeConfig {
            faithful: s.faithful,
            edge: s.edge.clone(),
            policy: s.policy.clone(),
            federation: file.federation.clone(),
            users: s.users.clone(),
            limits: s.limits.clone(),
            ..EdgeConfig::default()
        };
        let lookup: Arc<dyn Lookup> = dns.lookup.clone();
        let running = match RunningEdge::start(EdgeParts {
            config,
            identity: pki.edge.identity.clone(),
            anchors: pki.anchors.clone(),
            lookup,
        })
        .await
        {
            Ok(r) => r,
            Err(e) => return failed(format!("the Edge did not start: {e}")),
        };
        running.edge.set_taps(taps.for_edge());
        let addr = running.addr;
        let mut events = running.edge.subscribe();

        let method = case.method.as_str();
        let mut req = ExpresswayRequest::new(method, &case.from, &case.to);
        req.from_display = case.from_display.clone();
        if let Some(uri) = &case.request_uri {
            req.request_uri = uri.clone();
        }
        if let Some(pai) = &case.pai {
            req = req.pai(pai);
        }
        if method == "MESSAGE" {
            req.body = Some(bytes::Bytes::from_static(b"hello from an edgesim scenario"));
            req.content_type = Some("text/plain".into());
        }
        if method == "SUBSCRIBE" {
            let mut sub = ExpresswayRequest::subscribe(&case.from, &case.to, &case.subscribe);
            if let Some(a) = &case.accept {
                sub.extra_headers.push(("Accept".into(), a.clone()));
            }
            sub.from_display = req.from_display.clone();
            sub.request_uri = req.request_uri.clone();
            sub.pai = req.pai.clone();
            req = sub;
        }
        if let Some(text) = &case.im {
            let mut im = ExpresswayRequest::im_invite(&case.from, &case.to, Some(text));
            im.from_display = req.from_display.clone();
            im.request_uri = req.request_uri.clone();
            im.pai = req.pai.clone();
            req = im;
        }
        let identity = case
            .cert
            .as_deref()
            .and_then(|c| pki.cert(c))
            .map(|c| &c.identity);

        let mut observed = Observed::default();
        let exchange = async {
            let mut client = PeerClient::connect(addr, &s.edge.fqdn, identity, STEP).await?;
            let response = client.request(&req.build(), STEP).await;
            let after = match &response {
                Ok(r) if r.status_code().is_some_and(|c| (200..300).contains(&c)) => {
                    presence_im::after(&mut client, case, &req, r).await
                }
                _ => Ok(Default::default()),
            };
            client.close().await;
            response.and_then(|r| after.map(|a| (r, a)))
        };
        match exchange.await {
            Ok((response, after)) => {
                observed.presence = after;
                observed.status = response.status_code();
                observed.reason = response
                    .reason()
                    .map(|r| String::from_utf8_lossy(r).into_owned());
                observed.ms_diagnostics = response
                    .header_named("ms-diagnostics")
                    .map(|h| String::from_utf8_lossy(&h.value()).trim().to_owned());
            }
            // How a refused client certificate looks from the client: an alert, a reset, or a close
            // (with TLS 1.3 the refusal arrives after connect() returned, on the first read).
            Err(PeerError::Handshake { .. } | PeerError::Reset | PeerError::Closed) => {
                observed.handshake_refused = true;
            }
            Err(e) => observed.error = Some(e.to_string()),
        }
        if let Ok(Ok(event)) = tokio::time::timeout(EVENT_WAIT, events.recv()).await {
            // The Edge decided on a request (status set) yet the client saw the connection end: that is not a
            // handshake refusal, and saying so would hide the real problem.
            if observed.handshake_refused
                && let Some(status) = event.status
            {
                observed.handshake_refused = false;
                observed.error = Some(format!(
                    "the connection ended before the response, though the Edge answered {status}"
                ));
            }
            apply_event(&mut observed, &event);
        }
        if let Err(e) = running.stop(Duration::from_secs(3)).await {
            observed.error.get_or_insert(match e {
                LabError::Stuck(_) => "the Edge did not stop within 3 s".to_owned(),
                LabError::Edge(e) => format!("the Edge stopped: {e}"),
                e => e.to_string(),
            });
        }
        observed
    }

    /// Fills what the Edge's decision says: its log record and explanation. The ms-diagnostics stay what the
    /// response carried, so a faithful Edge's bare 504 is observed as bare.
    fn apply_event(observed: &mut Observed, event: &DecisionEvent) {
        observed.result_code = event.result_code.clone();
        if event.result_code.is_some() || !event.log_data.is_empty() {
            observed.log_data = Some(render_params(&event.log_data));
        }
        observed.explanation = event.explanation.clone();
    }

    /// A fresh Edge calls the emulated Expressway-E's server.
    pub(super) async fn outbound(
        file: &ScenarioFile,
        pki: &LabPki,
        case: &OutboundCase,
        dns: &CaseDns,
        socket: PeerSocket,
        taps: &crate::wire::Taps,
    ) -> Observed {
        let s = &file.scenario;
        let behaviour = match (case.behaviour, case.peer_ms_diagnostics.clone()) {
            (Behaviour::Answer(code), Some(diag)) => {
                PeerBehaviour::AnswerWithDiagnostics(code, diag)
            }
            (Behaviour::Answer(code), None) => {
                PeerBehaviour::Answer(code, reason_phrase(code).into())
            }
            (Behaviour::ResetHandshake, _) => PeerBehaviour::ResetHandshake,
            (Behaviour::CloseAfterHandshake, _) => PeerBehaviour::CloseAfterHandshake,
            // `refuse` has no server; the value is unused.
            (Behaviour::Silent | Behaviour::Refuse, _) => PeerBehaviour::Silent,
        };
        let cert = case.cert.as_deref().and_then(|c| pki.cert(c));
        // Held until the call is over, so a refused port stays this case's.
        let mut _closed = None;
        let server = match (socket, cert) {
            (PeerSocket::Listener(listener), Some(cert)) => {
                match PeerServer::start(
                    listener,
                    PeerServerSpec::new(cert.identity.clone(), behaviour),
                ) {
                    Ok(server) => Some(server),
                    Err(e) => return failed(format!("the peer server did not start: {e}")),
                }
            }
            (PeerSocket::Listener(_), None) => {
                return failed("the case has no peer certificate (`cert`)".into());
            }
            (PeerSocket::Closed(socket), _) => {
                _closed = Some(socket);
                None
            }
        };
        let lookup: Arc<dyn Lookup> = dns.lookup.clone();
        let mut ctx = OutboundContext::new(
            Policy::from_config(&EdgeConfig {
                edge: s.edge.clone(),
                policy: s.policy.clone(),
                federation: file.federation.clone(),
                faithful: s.faithful,
                ..EdgeConfig::default()
            }),
            pki.edge.identity.clone(),
            pki.anchors.clone(),
            lookup,
        );
        ctx.timeouts = Timeouts {
            connect: Duration::from_secs(2),
            handshake: Duration::from_secs(2),
            response: STEP,
        };
        ctx.taps = taps.clone();
        let outcome =
            crate::outbound::call(&ctx, &CallRequest::invite(&case.target, &case.from)).await;
        if let Some(server) = server {
            server.shutdown().await;
        }
        Observed {
            status: Some(outcome.final_status),
            reason: Some(outcome.reason.clone()),
            ms_diagnostics: outcome.ms_diagnostics.clone(),
            explanation: (outcome.final_status >= 300 && !outcome.explanation.is_empty())
                .then(|| outcome.explanation.clone()),
            ..Observed::default()
        }
    }
}
