//! The outbound role: the Edge calls a federated peer (Skype user → Expressway-E) and reports what the internal
//! Skype client would see.
//!
//! [`call`] walks the Edge's path: policy route, SRV lookup, Rule 1, A/AAAA, TCP, TLS with the Edge
//! certificate as client certificate (SNI = SRV target), chain + Rule 2 on the server certificate, then the
//! INVITE (or OPTIONS), provisional and final responses, ACK, hold, BYE. Every rule decision and every outcome
//! comes from [`crate::rules`] (one visit per step); this module does the I/O, records the steps and renders the
//! finding the client gets.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::dns::Lookup;
use crate::pki::{ChainStatus, TlsIdentity, TrustAnchors};
use crate::rules::{
    self, ConnectFailure, Decision, DomainName, Finding, OutboundPlan, Policy, Route, Verdict, srv,
};
use crate::sip::ua;

pub mod conn;
mod exchange;
pub mod msg;
mod presence;

/// The class of a call's result: its exit code (the rulebook's [`rules::OutcomeClass`]).
pub use crate::rules::OutcomeClass;

use conn::{ConnectError, TlsVersions};
use msg::{Dialog, EDGE_SERVER};

/// How long each outbound step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// TCP connect, per address.
    pub connect: Duration,
    /// TLS handshake.
    pub handshake: Duration,
    /// From the request to its final response (the Edge's transaction timer).
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            response: Duration::from_secs(32),
        }
    }
}

/// Everything the Edge needs to call out.
#[derive(Clone)]
pub struct OutboundContext {
    /// The federation policy (routing, Rule 1/2 switches, `source=` FQDN).
    pub policy: Policy,
    /// The Edge certificate, presented as TLS client certificate.
    pub identity: TlsIdentity,
    /// The CAs the Edge trusts for peer server certificates.
    pub anchors: TrustAnchors,
    /// DNS.
    pub lookup: Arc<dyn Lookup>,
    /// The Edge FQDN (Record-Route, diagnostics `source`).
    pub edge_fqdn: String,
    /// Step timeouts.
    pub timeouts: Timeouts,
    /// What is seen on the wire goes to these (`call --pcap`); off by default.
    pub taps: crate::wire::Taps,
    /// The port an allowed partner's ProxyFqdn is dialled on: 5061, as a real Edge does (a test on loopback
    /// points it at its peer server's port).
    pub proxy_port: u16,
}

impl OutboundContext {
    /// A context with `edge_fqdn` taken from the policy, the lookup's server named in the policy's
    /// explanations, and default timeouts.
    pub fn new(
        policy: Policy,
        identity: TlsIdentity,
        anchors: TrustAnchors,
        lookup: Arc<dyn Lookup>,
    ) -> Self {
        OutboundContext {
            edge_fqdn: policy.edge_fqdn.clone(),
            policy: policy.with_dns_server(lookup.server()),
            identity,
            anchors,
            lookup,
            timeouts: Timeouts::default(),
            taps: crate::wire::Taps::default(),
            proxy_port: 5061,
        }
    }
}

impl std::fmt::Debug for OutboundContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundContext")
            .field("edge_fqdn", &self.edge_fqdn)
            .field("policy", &self.policy)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// The request the internal Skype client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CallMethod {
    /// A call: INVITE with SDP, ACK, BYE.
    Invite,
    /// A reachability ping.
    Options,
    /// A presence SUBSCRIBE (`call --subscribe`): the 200, then each NOTIFY until the watch time ends, then
    /// `Expires: 0`.
    Subscribe,
    /// A session-mode IM (`call --im`): INVITE with `m=message … sip null` and the first message embedded,
    /// the replies until the hold time ends, then BYE.
    Im,
}

impl CallMethod {
    /// The SIP method name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallMethod::Invite => "INVITE",
            CallMethod::Options => "OPTIONS",
            CallMethod::Subscribe => "SUBSCRIBE",
            CallMethod::Im => "INVITE",
        }
    }
}

/// One outbound call to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRequest {
    /// The callee, `sip:user@domain` (the domain selects the federation route).
    pub target: String,
    /// The caller, e.g. `sip:alice@skype.lab`.
    pub from: String,
    /// INVITE or OPTIONS.
    pub method: CallMethod,
    /// After a 2xx to INVITE: how long to hold the call before BYE (for SUBSCRIBE: how long to watch the
    /// NOTIFYs before unsubscribing; for an IM: how long to wait for replies).
    pub hold_ms: u64,
    /// A `Route` header for the initial request (`Test-CsFederatedPartner` with a ProxyFqdn sends
    /// `<sip:PROXY;transport=tls;lr>;ms-edge-route`); `None`: no Route.
    pub route: Option<String>,
    /// The first message of an IM ([`CallMethod::Im`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub im_text: Option<String>,
}

impl CallRequest {
    /// An INVITE from `from` to `target`, hung up at once after the answer.
    pub fn invite(target: &str, from: &str) -> Self {
        CallRequest {
            target: target.to_string(),
            from: from.to_string(),
            method: CallMethod::Invite,
            hold_ms: 0,
            route: None,
            im_text: None,
        }
    }
}

impl CallRequest {
    /// An OPTIONS ping from `from` to `target`.
    pub fn options(target: &str, from: &str) -> Self {
        CallRequest {
            method: CallMethod::Options,
            ..CallRequest::invite(target, from)
        }
    }
}

/// One thing the Edge did, for `--verbose` and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Short step name: `policy`, `srv`, `rule1`, `dns-a`, `tcp`, `tls`, `cert`, `sip`.
    pub name: String,
    /// Whether the step succeeded.
    pub ok: bool,
    /// What happened, one line.
    pub detail: String,
}

/// The result of [`call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallOutcome {
    /// The final status the Skype client receives.
    pub final_status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// The exact `ms-diagnostics` header value the client receives, if any.
    pub ms_diagnostics: Option<String>,
    /// The final response as the Skype client log would show it.
    pub response_text: String,
    /// What happened and the fix, in plain language.
    pub explanation: String,
    /// The kind of result.
    pub class: OutcomeClass,
    /// What was done, in order.
    pub steps: Vec<Step>,
    /// The SRV target used, once known.
    pub target: Option<String>,
    /// Methods sent to the peer, in order (e.g. INVITE, ACK, BYE).
    pub sent: Vec<String>,
    /// What each NOTIFY (and a piggy-backed 200) said, as a Skype client shows it (`call --subscribe`), and
    /// each IM reply (`call --im`), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
    /// The rulebook's finding the outcome is rendered from.
    #[serde(skip)]
    pub finding: Finding,
}

struct Run<'a> {
    ctx: &'a OutboundContext,
    dialog: Dialog,
    domain: String,
    steps: Vec<Step>,
    target: Option<String>,
    sent: Vec<String>,
    /// NOTIFY states and IM replies seen (`presence`).
    seen: Vec<String>,
}

impl Run<'_> {
    fn step(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.steps.push(Step {
            name: name.to_string(),
            ok,
            detail: detail.into(),
        });
    }

    /// An outcome from the Edge's own refusal (its 4xx/5xx to the client).
    fn refuse(self, v: Verdict) -> CallOutcome {
        match v.decision {
            Decision::Refuse(f) => self.finish(&f, None, EDGE_SERVER),
            // The rules never hand `call` an acceptance to refuse with.
            Decision::Accept { .. } => {
                let f = rules::outbound::edge_cert_unusable("the Edge had nothing to refuse");
                self.finish(&f, None, EDGE_SERVER)
            }
        }
    }

    /// The outcome the Skype client sees for `finding`: the status, reason and ms-diagnostics it gets, the
    /// response as its log shows it (with the answering side's tag and `Server`), the explanation and the class.
    fn finish(self, finding: &Finding, to_tag: Option<&str>, server: &str) -> CallOutcome {
        let (status, reason) = finding.sip().unwrap_or((500, "Server Internal Error"));
        let diag = finding.ms_diagnostics_value(&self.ctx.edge_fqdn);
        let tag = to_tag.map_or_else(ua::edge_tag, str::to_string);
        let response_text = self
            .dialog
            .client_view(status, reason, &tag, diag.as_deref(), server);
        CallOutcome {
            final_status: status,
            reason: reason.to_string(),
            ms_diagnostics: diag,
            response_text,
            explanation: finding.explain().to_string(),
            class: finding.class().unwrap_or(OutcomeClass::Rejected(status)),
            steps: self.steps,
            target: self.target,
            sent: self.sent,
            seen: self.seen,
            finding: finding.clone(),
        }
    }
}

/// The domain of a `sip:user@domain` target (lower-case), or `None`.
pub fn target_domain(target: &str) -> Option<String> {
    let uri = crate::sip::Uri::parse(target.trim().as_bytes())?;
    let host = uri.host();
    (!host.is_empty()).then_some(host)
}

/// Places one outbound call as the Edge and reports what the internal Skype client would see.
pub async fn call(ctx: &OutboundContext, req: &CallRequest) -> CallOutcome {
    let domain = target_domain(&req.target).unwrap_or_default();
    let mut run = Run {
        ctx,
        dialog: Dialog::new(&req.target, &req.from, req.method.as_str(), &ctx.edge_fqdn)
            .for_request(req)
            .with_route(req.route.clone()),
        domain: domain.clone(),
        steps: Vec::new(),
        target: None,
        sent: Vec::new(),
        seen: Vec::new(),
    };
    if domain.is_empty() {
        run.step("policy", false, format!("{} has no domain", req.target));
        let v = Verdict::refuse(rules::outbound::bad_target(&req.target), &ctx.edge_fqdn);
        return run.refuse(v);
    }

    // Policy, then SRV + Rule 1 (or the fixed partner FQDN).
    let (target, port) = match ctx.policy.plan_outbound(&domain) {
        OutboundPlan::Reject { route, verdict } => {
            run.step("policy", false, format!("{domain}: {}", route.describe()));
            return run.refuse(verdict);
        }
        OutboundPlan::UseFixedFqdn(f) => {
            run.step(
                "policy",
                true,
                format!("{domain} is an allowed partner with fixed Edge {f}: no SRV lookup"),
            );
            (f.to_string(), ctx.proxy_port)
        }
        OutboundPlan::LookupSrv(name) => {
            run.step(
                "policy",
                true,
                format!("{domain}: {}", Route::Discover.describe()),
            );
            let answer = ctx.lookup.srv(&name).await;
            match &answer {
                Ok(records) => {
                    let list: Vec<String> = records.iter().map(srv::srv_text).collect();
                    run.step(
                        "srv",
                        true,
                        format!("{name} (from {}): {}", ctx.lookup.server(), list.join(", ")),
                    );
                }
                Err(f) => run.step(
                    "srv",
                    false,
                    format!("{name}: {}", f.describe(&ctx.lookup.server())),
                ),
            }
            match ctx.policy.decide_outbound_srv(&domain, &answer) {
                Ok(r) => {
                    run.step("rule1", true, format!("{} is in {domain}", r.target));
                    (r.target.clone(), r.port)
                }
                Err(v) => {
                    // Rule 1's refusal, or no usable SRV (a failed lookup, no records, or only "." targets).
                    if let Some(Finding::SrvNotInDomain { .. }) = v.finding() {
                        run.step("rule1", false, format!("no SRV target is in {domain}"));
                    } else if answer.is_ok() {
                        run.step(
                            "srv",
                            false,
                            format!("{name}: no usable SRV record (a target of \".\" means, per RFC 2782, the service is decidedly not available)"),
                        );
                    }
                    return run.refuse(v);
                }
            }
        }
    };
    run.target = Some(target.clone());

    // A/AAAA.
    let answer = ctx.lookup.addrs(&target).await;
    let addrs = match ctx
        .policy
        .addresses(&DomainName::new(&domain), &target, answer)
    {
        Finding::Addresses { addrs, .. } => {
            let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            run.step("dns-a", true, format!("{target} → {}", list.join(", ")));
            addrs
        }
        refusal => {
            let why = match &refusal {
                Finding::NoAddress {
                    failure: Some(f), ..
                } => f.describe(&ctx.lookup.server()),
                _ => "no addresses".to_string(),
            };
            run.step("dns-a", false, format!("{target}: {why}"));
            return run.refuse(Verdict::refuse(refusal, &ctx.edge_fqdn));
        }
    };

    connect_phase(run, req, &target, port, addrs).await
}

/// Places `req` straight to `target:port` at `addrs` (no policy, SRV or A lookup): TCP, TLS, certificate, SIP.
/// `edgesim check` uses it for its OPTIONS ping.
pub async fn call_to(
    ctx: &OutboundContext,
    req: &CallRequest,
    target: &str,
    port: u16,
    addrs: Vec<std::net::IpAddr>,
) -> CallOutcome {
    let run = Run {
        ctx,
        dialog: Dialog::new(&req.target, &req.from, req.method.as_str(), &ctx.edge_fqdn)
            .for_request(req)
            .with_route(req.route.clone()),
        domain: target_domain(&req.target).unwrap_or_default(),
        steps: Vec::new(),
        target: Some(target.to_string()),
        sent: Vec::new(),
        seen: Vec::new(),
    };
    connect_phase(run, req, target, port, addrs).await
}

async fn connect_phase(
    mut run: Run<'_>,
    req: &CallRequest,
    target: &str,
    port: u16,
    addrs: Vec<std::net::IpAddr>,
) -> CallOutcome {
    let ctx = run.ctx;
    let target = target.to_string();
    // TCP + TLS.
    let config = match conn::client_config(Some(&ctx.identity), TlsVersions::Any) {
        Ok(c) => c,
        Err(e) => {
            run.step("tls", false, e.to_string());
            let v = Verdict::refuse(rules::outbound::edge_cert_unusable(&e), &ctx.edge_fqdn);
            return run.refuse(v);
        }
    };
    let t = ctx.timeouts;
    let mut failed = Vec::new();
    let connected = conn::connect_any(
        &addrs,
        port,
        &target,
        config,
        t.connect,
        t.handshake,
        &mut failed,
    )
    .await;
    for e in &failed {
        let (name, _, detail) = connect_error_parts(e);
        run.step(name, false, format!("{detail}; trying the next address"));
    }
    let connected = match connected {
        Ok(c) => c,
        Err(e) => return connect_failed(run, &target, e),
    };
    run.step("tcp", true, format!("connected to {}", connected.addr));
    run.step(
        "tls",
        true,
        format!(
            "{} with SNI {target}, Edge certificate presented",
            connected.version
        ),
    );

    // Chain + Rule 2.
    let (facts, status) = connected.judge_chain(&ctx.anchors);
    if let Err(v) = ctx.policy.decide_outbound_cert(&target, &facts, &status) {
        // A trusted chain fails on Rule 2: say that, not the chain's (good) state.
        let problem = match &status {
            ChainStatus::Trusted => format!("does not name {target} (its chain is trusted)"),
            other => rules::chain_words(other).0,
        };
        run.step(
            "cert",
            false,
            format!("{}: {problem}", facts.display_name()),
        );
        return run.refuse(v);
    }
    run.step(
        "cert",
        true,
        format!("{} names {target}; chain trusted", facts.display_name()),
    );
    exchange::sip_exchange(run, connected, req, &target).await
}

/// A connection failure as a step: its name (`tcp`, `tls`), its Winsock kind, and what happened.
fn connect_error_parts(e: &ConnectError) -> (&'static str, ConnectFailure, String) {
    match e {
        ConnectError::Tcp { addr, kind, detail } => ("tcp", *kind, format!("{addr}: {detail}")),
        ConnectError::Tls { addr, kind, detail } => ("tls", *kind, format!("{addr}: {detail}")),
        ConnectError::BadName(n) => (
            "tls",
            ConnectFailure::HostUnreachable,
            format!("{n} cannot be sent as SNI"),
        ),
    }
}

fn connect_failed(mut run: Run<'_>, target: &str, e: ConnectError) -> CallOutcome {
    let (name, kind, detail) = connect_error_parts(&e);
    run.step(name, false, detail);
    let v = run.ctx.policy.outbound_connect_failure(target, kind);
    run.refuse(v)
}
