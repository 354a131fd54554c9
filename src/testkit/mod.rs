//! An Edge inside your tests, in a few lines: [`TestEdge::builder`] … [`TestEdgeBuilder::start`] serves a real
//! Edge (mutual TLS, the federation rules, the emulated users) on 127.0.0.1:0 with its own lab CA and its DNS
//! answers either served by the embedded DNS server on 127.0.0.1:0 ([`DnsMode::Served`], the default: real
//! queries on the wire) or held in memory ([`DnsMode::Static`], a [`StaticLookup`]). A [`TestPeer`] sends an
//! INVITE, OPTIONS, SUBSCRIBE or MESSAGE in one call and returns the parsed response.
//!
//! Expectations ([`TestEdge::expect_decision`], [`TestEdge::expect_record`]) are checked by
//! [`TestEdge::verify`] or [`TestEdge::stop`], and otherwise when the `TestEdge` is dropped: an unmet one
//! panics there with a message that lists what was expected and every decision seen (unless the thread is
//! already panicking), as wiremock's `MockServer` does. Dropping also stops the Edge (its cancellation token)
//! and the DNS server.
//!
//! The Edge publishes a decision's event before it writes the answer, so once a [`TestPeer`] call has
//! returned, its decision is already counted: no waiting, no sleeps.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), edgesim::testkit::TestkitError> {
//! use edgesim::config::UserAction;
//! use edgesim::testkit::{DecisionMatch, TestEdge};
//!
//! let edge = TestEdge::builder()
//!     .user("stejanss", UserAction::Busy)
//!     .srv("acano.steven.lab", "vcse.acano.steven.lab")
//!     .start()
//!     .await?;
//! edge.expect_decision(DecisionMatch::method("INVITE").status(486), 1);
//!
//! let mut peer = edge.peer("2000@acano.steven.lab", &["vcse.acano.steven.lab"]).await?;
//! let answer = peer.invite("stejanss").await?;
//! assert_eq!(answer.status_code(), Some(486));
//! edge.stop().await // checks the expectations
//! # }
//! ```

mod expect;
mod peer;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast::error::TryRecvError;

pub use expect::{DecisionMatch, Times, decision_line};
pub use peer::{DEFAULT_TIMEOUT, TestPeer};

pub use crate::config::{EdgeConfig, PolicyConfig, TlsVersion, UserAction, UserConfig};
pub use crate::diagnostics::{DecisionEvent, VerdictKind};
pub use crate::dns::{FaultKind, Lookup, RecordSpec, StaticLookup};
pub use crate::lab::builder::LabError;
pub use crate::lab::peer::client::{ExpresswayRequest, PeerClient, PeerError};
pub use crate::pki::{EkuChoice, KeyType, LabCa, LeafSpec, PkiError, TlsIdentity};
pub use crate::sip::Message;
pub use tokio::sync::broadcast::Receiver;
pub use tokio_util::sync::CancellationToken;

use crate::dns::DnsServer;
use crate::edge::{Edge, EdgeParts};
use crate::lab::builder::{self, LabCerts, LabDns, RunningEdge};
use expect::{Expectation, Expected};

/// How long [`TestEdge::stop`] waits for the Edge to finish its connections.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Why a test Edge could not start, a peer could not talk to it, or its expectations were not met.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The lab (certificates, DNS records or server, resolver, the Edge) could not be built or stopped.
    #[error("{0}")]
    Lab(#[from] LabError),
    /// A certificate could not be issued.
    #[error("{0}")]
    Pki(#[from] PkiError),
    /// The peer could not connect or got no usable answer.
    #[error("{0}")]
    Peer(#[from] PeerError),
    /// Expectations were not met (the message lists them and what was seen).
    #[error("{0}")]
    Unmet(String),
}

/// Where the Edge's DNS answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsMode {
    /// The embedded DNS server on 127.0.0.1:0, asked over UDP/TCP by the Edge's real resolver.
    #[default]
    Served,
    /// A [`StaticLookup`] in memory: no server, no sockets, same records.
    Static,
}

/// How to build a [`TestEdge`]; every setting has a lab default (`sip.skype.lab` serving `skype.lab`, partner
/// discovery on, no users, no DNS records).
#[derive(Debug, Clone)]
pub struct TestEdgeBuilder {
    config: EdgeConfig,
    records: Vec<RecordSpec>,
    dns: DnsMode,
    ca_name: String,
}

impl Default for TestEdgeBuilder {
    fn default() -> Self {
        TestEdgeBuilder {
            config: EdgeConfig::default(),
            records: Vec::new(),
            dns: DnsMode::Served,
            ca_name: "edgesim testkit CA".into(),
        }
    }
}

impl TestEdgeBuilder {
    /// The SIP domain the Edge serves (`skype.lab`).
    pub fn domain(mut self, domain: &str) -> Self {
        self.config.edge.domain = domain.to_owned();
        self
    }

    /// The Edge's FQDN: its certificate's name and the `source=` of its ms-diagnostics (`sip.skype.lab`).
    pub fn fqdn(mut self, fqdn: &str) -> Self {
        self.config.edge.fqdn = fqdn.to_owned();
        self
    }

    /// An emulated user (`stejanss` or `sip:stejanss@skype.lab`) that does `action` with an INVITE at once
    /// (no ringing time; [`TestEdgeBuilder::user_config`] sets the rest).
    pub fn user(self, user: &str, action: UserAction) -> Self {
        self.user_config(UserConfig {
            user: user.to_owned(),
            action,
            ring_ms: 0,
            hangup_after_ms: None,
            presence: Default::default(),
            im: Default::default(),
            contacts: Vec::new(),
        })
    }

    /// An emulated user with every setting (presence, IM behaviour, ringing, hang-up).
    pub fn user_config(mut self, user: UserConfig) -> Self {
        self.config.users.push(user);
        self
    }

    /// Changes the federation policy (allowed and blocked domains, discovery, wildcard, EKU).
    pub fn policy(mut self, change: impl FnOnce(&mut PolicyConfig)) -> Self {
        change(&mut self.config.policy);
        self
    }

    /// The product version the Edge plays (`[edge] version`: its `Server` header; `sfb2015` by default).
    pub fn version(mut self, version: crate::config::EdgeVersion) -> Self {
        self.config.edge.version = version;
        self
    }

    /// The TLS versions the Edge accepts (`[tls] versions`; by default the version profile's: TLS 1.2 only for
    /// the default `sfb2015`).
    pub fn tls_versions(mut self, versions: &[TlsVersion]) -> Self {
        self.config.tls.versions = Some(versions.to_vec());
        self
    }

    /// Changes anything else of the configuration (limits, `faithful`, presence, IM, sinks).
    pub fn config(mut self, change: impl FnOnce(&mut EdgeConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// A DNS record (SRV, A, AAAA, CNAME, TXT, or a FAULT).
    pub fn record(mut self, record: RecordSpec) -> Self {
        self.records.push(record);
        self
    }

    /// The federation SRV record of `domain` (`_sipfederationtls._tcp.<domain>`) → `target:5061`.
    pub fn srv(self, domain: &str, target: &str) -> Self {
        self.record(builder::srv(domain, target, 5061))
    }

    /// A DNS fault (SERVFAIL, REFUSED or silence) for `name` and every name below it.
    pub fn dns_fault(self, name: &str, kind: FaultKind) -> Self {
        self.record(builder::fault(name, kind))
    }

    /// Where the DNS answers come from (served by default).
    pub fn dns(mut self, mode: DnsMode) -> Self {
        self.dns = mode;
        self
    }

    /// The lab CA's common name (`edgesim testkit CA`).
    pub fn ca_name(mut self, name: &str) -> Self {
        self.ca_name = name.to_owned();
        self
    }

    /// Issues the certificates, starts DNS (when served) and serves the Edge on 127.0.0.1:0.
    pub async fn start(self) -> Result<TestEdge, TestkitError> {
        let certs = LabCerts::new(&self.ca_name, &self.config.edge.fqdn)?;
        let (lookup, dns): (Arc<dyn Lookup>, Option<DnsServer>) = match self.dns {
            DnsMode::Served => {
                let dns = LabDns::with_records(&self.records).await?;
                // The configuration's timeout and cache (`config.dns.resolver`), one attempt: the server is
                // on loopback, and a retry would only hide a fault record's timeout behind a second wait.
                let r = &self.config.dns.resolver;
                let lookup = dns.lookup(r.timeout_ms, r.cache_max_entries)?;
                (Arc::new(lookup), Some(dns.server))
            }
            DnsMode::Static => (Arc::new(StaticLookup::from_records(&self.records)), None),
        };
        let running = RunningEdge::start(EdgeParts {
            config: self.config,
            identity: TlsIdentity::from(&certs.edge),
            anchors: certs.anchors.clone(),
            lookup,
        })
        .await?;
        let seen = Arc::new(Mutex::new(Seen {
            events: running.edge.subscribe(),
            decisions: Vec::new(),
            lost: 0,
        }));
        let token = running.shutdown_token().clone();
        tokio::spawn(keep_reading(
            running.edge.subscribe(),
            seen.clone(),
            token.clone(),
        ));
        Ok(TestEdge {
            edge: running.edge.clone(),
            addr: running.addr,
            token,
            running: Some(running),
            dns,
            certs,
            seen,
            expectations: Mutex::new(Vec::new()),
        })
    }
}

/// The decisions read so far from the Edge's broadcast channel.
#[derive(Debug)]
struct Seen {
    events: Receiver<DecisionEvent>,
    decisions: Vec<DecisionEvent>,
    lost: u64,
}

impl Seen {
    /// Reads every event already sent. The Edge sends an event before it writes the answer, so this sees
    /// every decision whose answer a peer has read.
    fn drain(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(e) => self.decisions.push(e),
                Err(TryRecvError::Lagged(n)) => self.lost += n,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }
}

/// Drains the testkit's receiver whenever the Edge publishes, so that a test making more decisions than the
/// channel holds (1024) between two looks loses none; `wake` only signals, its own lag does not matter.
async fn keep_reading(
    mut wake: Receiver<DecisionEvent>,
    seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
) {
    loop {
        let woke = tokio::select! {
            () = stop.cancelled() => return,
            r = wake.recv() => r,
        };
        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = woke {
            return;
        }
        lock(&seen).drain();
    }
}

/// The seen decisions, also after a panic elsewhere poisoned the lock (the data is still whole: every
/// change is one push).
fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running Edge on 127.0.0.1:0; see the module documentation. Stops on drop.
pub struct TestEdge {
    edge: Arc<Edge>,
    addr: SocketAddr,
    token: CancellationToken,
    running: Option<RunningEdge>,
    dns: Option<DnsServer>,
    certs: LabCerts,
    seen: Arc<Mutex<Seen>>,
    expectations: Mutex<Vec<Expectation>>,
}

impl std::fmt::Debug for TestEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEdge")
            .field("fqdn", &self.fqdn())
            .field("addr", &self.addr)
            .field("dns", &self.dns_addr())
            .finish_non_exhaustive()
    }
}

impl TestEdge {
    /// A builder with the lab defaults.
    pub fn builder() -> TestEdgeBuilder {
        TestEdgeBuilder::default()
    }

    /// Where the Edge listens (127.0.0.1, a port the kernel chose).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Edge's FQDN (its certificate's name: the TLS server name to connect with).
    pub fn fqdn(&self) -> &str {
        &self.edge.config().edge.fqdn
    }

    /// The SIP domain the Edge serves.
    pub fn domain(&self) -> &str {
        &self.edge.config().edge.domain
    }

    /// The lab CA's certificate, PEM: what the peer side trusts for the Edge, and the issuer of peer
    /// certificates the Edge trusts.
    pub fn ca_pem(&self) -> &str {
        self.certs.ca.chain_pem()
    }

    /// The lab CA, to issue certificates for the peer side (any names, EKU, key, validity).
    pub fn issuer(&self) -> &LabCa {
        &self.certs.ca
    }

    /// A peer certificate from the lab CA naming `names` (CN = the first, SANs = all).
    pub fn peer_identity(&self, names: &[&str]) -> Result<TlsIdentity, TestkitError> {
        let first = names.first().copied().unwrap_or("peer.invalid");
        Ok(TlsIdentity::from(
            &self.certs.issue(&LeafSpec::new(first).san(names))?,
        ))
    }

    /// A [`TestPeer`] sending as `from` (`user@domain`), with a lab certificate naming `cert_names`.
    pub async fn peer(&self, from: &str, cert_names: &[&str]) -> Result<TestPeer, TestkitError> {
        let id = self.peer_identity(cert_names)?;
        self.peer_with(from, Some(&id)).await
    }

    /// A [`TestPeer`] sending as `from` with `identity` (any certificate, or none).
    pub async fn peer_with(
        &self,
        from: &str,
        identity: Option<&TlsIdentity>,
    ) -> Result<TestPeer, TestkitError> {
        TestPeer::connect(self.addr, self.fqdn(), self.domain(), from, identity).await
    }

    /// The embedded DNS server's address (`None` with [`DnsMode::Static`]).
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns.as_ref().map(DnsServer::local_addr)
    }

    /// How many queries the embedded DNS server has received (`None` with [`DnsMode::Static`]): proof that
    /// the Edge asked over the wire.
    pub fn dns_queries(&self) -> Option<u64> {
        self.dns.as_ref().map(DnsServer::queries_received)
    }

    /// A receiver of every decision from now on (the Edge's broadcast channel).
    pub fn subscribe(&self) -> Receiver<DecisionEvent> {
        self.edge.subscribe()
    }

    /// Every decision the Edge made since it started, oldest first.
    pub fn decisions(&self) -> Vec<DecisionEvent> {
        self.with_seen(|s| s.decisions.clone())
    }

    /// The Edge's log records (rendered in the SfB trace layout, oldest first, the last 1000).
    pub fn records(&self) -> Vec<String> {
        self.edge.log_records()
    }

    /// The Edge itself (configuration, policy).
    pub fn edge(&self) -> &Arc<Edge> {
        &self.edge
    }

    /// The token that stops the Edge when cancelled.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.token
    }

    /// Expects `times` decisions matching `decision` by the end of the test (`1`, `1..=3`, `2..`).
    pub fn expect_decision(&self, decision: DecisionMatch, times: impl Into<Times>) {
        self.expect(Expected::Decision(decision), times.into());
    }

    /// Expects `times` Edge log records containing `text` (a result code such as
    /// `SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH`, a `Data:` pair …).
    pub fn expect_record(&self, text: &str, times: impl Into<Times>) {
        self.expect(Expected::Record(text.to_owned()), times.into());
    }

    /// Drops every expectation (e.g. after a [`TestEdge::check`] whose failure the test asserted).
    pub fn clear_expectations(&self) {
        if let Ok(mut x) = self.expectations.lock() {
            x.clear();
        }
    }

    fn expect(&self, what: Expected, times: Times) {
        if let Ok(mut x) = self.expectations.lock() {
            x.push(Expectation { what, times });
        }
    }

    fn with_seen<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        let mut seen = lock(&self.seen);
        seen.drain();
        f(&mut seen)
    }

    /// `Err` with the message of the unmet expectations, if any are unmet now.
    pub fn check(&self) -> Result<(), TestkitError> {
        let (decisions, lost) = self.with_seen(|s| (s.decisions.clone(), s.lost));
        let records = self.records();
        let expectations = self
            .expectations
            .lock()
            .map(|x| x.clone())
            .unwrap_or_default();
        let name = format!("{} at {}", self.fqdn(), self.addr);
        match expect::unmet(&name, &expectations, &decisions, &records, lost) {
            None => Ok(()),
            Some(message) => Err(TestkitError::Unmet(message)),
        }
    }

    /// Panics with the message of the unmet expectations, if any.
    pub fn verify(&self) {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
    }

    /// Stops the Edge (waiting for `serve` to return) and the DNS server, then checks the expectations.
    pub async fn stop(mut self) -> Result<(), TestkitError> {
        if let Some(running) = self.running.take() {
            running.stop(STOP_WITHIN).await?;
        }
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
        }
        let checked = self.check();
        // Reported here: the drop must not report them again.
        self.clear_expectations();
        checked
    }
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        self.token.cancel();
        if std::thread::panicking() {
            return;
        }
        if let Err(e) = self.check() {
            panic!("{e}");
        }
    }
}
