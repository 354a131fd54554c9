//! Shared lab for the inbound Edge tests (`edge_inbound`, `edge_bad_input`) and the load and robustness tests
//! (`load_edge`, `robustness`), from the one lab builder (`edgesim::lab::builder`): a lab CA, the embedded DNS
//! server on port 0, a resolver pointed at it (or at any other address, e.g. a closed port for "DNS down"), an
//! `Edge` on 127.0.0.1:0 served by `edge::serve`, and peer certificates issued at run time.
//!
//! Two presets: [`LabBuilder::inbound`] (a few users, log and events files in a temp dir, 1 s handshake and
//! 500 ms header timeouts) and [`LabBuilder::short_limits`] (700 ms timeouts, no rate limit, 16 KiB messages,
//! the [`short_limits_records`]).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{EdgeConfig, UserAction, UserConfig};
use edgesim::diagnostics::DecisionEvent;
use edgesim::dns::{DnsServer, FaultKind, RecordSpec, ResolverSettings};
use edgesim::edge::{Edge, EdgeParts};
use edgesim::lab::builder::{self, LabCerts, LabDns, RunningEdge};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

pub use edgesim::lab::builder::fault;

/// Generous per-step timeout; the steps themselves take milliseconds.
pub const T: Duration = Duration::from_secs(3);
pub const SRV_ACANO: &str = "_sipfederationtls._tcp.acano.steven.lab";

/// The federation SRV record named `name` → `target`:5061 (the lab builder's [`builder::srv`]).
pub fn srv(name: &str, target: &str) -> RecordSpec {
    let domain = name.trim_start_matches("_sipfederationtls._tcp.");
    builder::srv(domain, target, 5061)
}

pub fn user(name: &str, action: UserAction) -> UserConfig {
    UserConfig {
        user: name.into(),
        action,
        ring_ms: 50,
        hangup_after_ms: None,
        presence: Default::default(),
        im: Default::default(),
        contacts: Vec::new(),
    }
}

/// The inbound preset's Edge config: short timeouts, a few users, a log file in a temp dir.
pub fn inbound_config(dir: &Path) -> EdgeConfig {
    let mut c = EdgeConfig {
        users: vec![
            user("stejanss", UserAction::Answer),
            user("busy", UserAction::Busy),
            user("ringer", UserAction::RingForever),
        ],
        ..EdgeConfig::default()
    };
    c.limits.handshake_timeout_ms = 1000;
    c.limits.header_timeout_ms = 500;
    c.limits.idle_timeout_ms = 2000;
    c.log_file = Some(dir.join("edge.log"));
    c.events_file = Some(dir.join("events.jsonl"));
    c
}

/// Short limits so that the robustness cases end quickly; no rate limit unless a test sets one.
pub fn short_limits_config() -> EdgeConfig {
    let mut c = EdgeConfig::default();
    c.limits.handshake_timeout_ms = 700;
    c.limits.header_timeout_ms = 700;
    c.limits.idle_timeout_ms = 5000;
    c.limits.max_requests_per_sec = 1_000_000;
    c.limits.max_message_bytes = 16 * 1024;
    c
}

/// The short-limits preset's DNS records: `acano.steven.lab`'s SRV points outside its domain
/// (`vcse.steven.lab`: the seed's mis-configuration, 504 with 1009); `steven.lab`'s SRV points at
/// `vcse.steven.lab` (passes with a `vcse.steven.lab` certificate); `servfail.lab` answers SERVFAIL (504 with
/// 1008).
pub fn short_limits_records() -> Vec<RecordSpec> {
    vec![
        srv(SRV_ACANO, "vcse.steven.lab"),
        srv("_sipfederationtls._tcp.steven.lab", "vcse.steven.lab"),
        fault("_sipfederationtls._tcp.servfail.lab", FaultKind::Servfail),
    ]
}

/// How to build a [`Lab`]: start from a preset, then change records, config or resolver.
pub struct LabBuilder {
    dir: tempfile::TempDir,
    ca_name: &'static str,
    records: Vec<RecordSpec>,
    config: EdgeConfig,
    resolver: Option<SocketAddr>,
    stop_within: Duration,
}

impl LabBuilder {
    /// The inbound tests' lab: [`inbound_config`], no DNS records.
    pub fn inbound() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = inbound_config(dir.path());
        LabBuilder {
            dir,
            ca_name: "edgesim test CA",
            records: Vec::new(),
            config,
            resolver: None,
            stop_within: Duration::from_secs(3),
        }
    }

    /// The load and robustness tests' lab: [`short_limits_config`], [`short_limits_records`].
    pub fn short_limits() -> Self {
        LabBuilder {
            dir: tempfile::tempdir().unwrap(),
            ca_name: "edgesim load test CA",
            records: short_limits_records(),
            config: short_limits_config(),
            resolver: None,
            stop_within: Duration::from_secs(5),
        }
    }

    /// The embedded DNS server's records (replaces the preset's).
    pub fn records(mut self, records: Vec<RecordSpec>) -> Self {
        self.records = records;
        self
    }

    /// Changes the preset's Edge config.
    pub fn config(mut self, tweak: impl FnOnce(&mut EdgeConfig)) -> Self {
        tweak(&mut self.config);
        self
    }

    /// Points the Edge's resolver at `addr` (which may be a closed port) instead of starting the embedded DNS
    /// server.
    pub fn resolver(mut self, addr: SocketAddr) -> Self {
        self.resolver = Some(addr);
        self
    }

    pub async fn start(self) -> Lab {
        let LabCerts { ca, edge, anchors } = LabCerts::new(self.ca_name, "sip.skype.lab").unwrap();
        let (resolver, dns) = match self.resolver {
            Some(addr) => (addr, None),
            None => {
                let dns = LabDns::with_records(&self.records)
                    .await
                    .expect("DNS server");
                (dns.addr(), Some(dns.server))
            }
        };
        let cache = ResolverSettings::default().cache_max_entries;
        let lookup = builder::resolver(resolver, 300, cache).unwrap();
        let running = RunningEdge::start(EdgeParts {
            config: self.config,
            identity: TlsIdentity::from(&edge),
            anchors,
            lookup: Arc::new(lookup),
        })
        .await
        .unwrap();
        Lab {
            ca,
            edge: running.edge.clone(),
            addr: running.addr,
            dns,
            dir: self.dir,
            running,
            stop_within: self.stop_within,
        }
    }
}

/// An inbound-preset lab with `records` and `tweak` applied to its config.
pub async fn lab(records: Vec<RecordSpec>, tweak: impl FnOnce(&mut EdgeConfig)) -> Lab {
    LabBuilder::inbound()
        .records(records)
        .config(tweak)
        .start()
        .await
}

/// A short-limits lab with `tweak` applied to its config.
pub async fn short_limits_lab(tweak: impl FnOnce(&mut EdgeConfig)) -> Lab {
    LabBuilder::short_limits().config(tweak).start().await
}

pub struct Lab {
    pub ca: LabCa,
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    /// The embedded DNS server; `None` when the resolver was pointed elsewhere.
    pub dns: Option<DnsServer>,
    pub dir: tempfile::TempDir,
    running: RunningEdge,
    stop_within: Duration,
}

impl Lab {
    /// The embedded DNS server (panics if the lab was built with [`LabBuilder::resolver`]).
    pub fn dns(&self) -> &DnsServer {
        self.dns
            .as_ref()
            .expect("this lab has no embedded DNS server")
    }

    /// A peer certificate from the lab CA.
    pub fn cert(&self, spec: LeafSpec) -> TlsIdentity {
        TlsIdentity::from(&self.ca.issue(&spec).unwrap())
    }

    /// An Expressway-E connected with a certificate naming `names` (CN = first).
    pub async fn peer(&self, names: &[&str]) -> PeerClient {
        let id = self.cert(LeafSpec::new(names[0]).san(names));
        self.peer_with(Some(&id)).await
    }

    pub async fn peer_with(&self, id: Option<&TlsIdentity>) -> PeerClient {
        PeerClient::connect(self.addr, "sip.skype.lab", id, T)
            .await
            .unwrap()
    }

    /// The next decision event.
    pub async fn event(rx: &mut tokio::sync::broadcast::Receiver<DecisionEvent>) -> DecisionEvent {
        tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap()
    }

    /// The health check run after every robustness case: a new connection, with a `vcse.steven.lab`
    /// certificate, gets 200 to an OPTIONS that passes the federation rules (short-limits records).
    pub async fn assert_healthy(&self) {
        let mut p = self.peer(&["vcse.steven.lab"]).await;
        let req =
            ExpresswayRequest::new("OPTIONS", "sip:vcse@steven.lab", "sip:stejanss@skype.lab")
                .build();
        let r = p.request(&req, T).await.unwrap();
        assert_eq!(
            r.status_code(),
            Some(200),
            "the Edge no longer answers a good request"
        );
        p.close().await;
    }

    /// Stops the Edge and checks that `serve` returns.
    pub async fn stop(self) {
        self.running.stop(self.stop_within).await.unwrap();
        if let Some(dns) = self.dns {
            dns.shutdown().await;
        }
    }
}

/// An INVITE from 2000@acano.steven.lab to stejanss@skype.lab, Expressway style.
pub fn invite() -> ExpresswayRequest {
    ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The value of a header of a message, as text.
pub fn header(m: &edgesim::sip::Message, name: &str) -> Option<String> {
    m.header_named(name).map(|h| text(&h.value()))
}

/// The ms-diagnostics code of a response (read by the ms-diagnostics parser).
pub fn diag_code(m: &edgesim::sip::Message) -> Option<String> {
    let v = m.header_named("ms-diagnostics")?.value();
    edgesim::diagnostics::MsDiagnostic::code_of(&String::from_utf8_lossy(&v)).map(|c| c.to_string())
}
