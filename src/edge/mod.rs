//! The inbound Edge: a mutual-TLS SIP listener that applies the federation rules to what the peer sends.
//!
//! The caller binds the listener and owns the shutdown token ([`serve`]); each connection runs in its own task
//! with a tracing span (`remote`, `cid`, `peer_cert`). Decisions go to four sinks: one short console line
//! (tracing, `info`), the Edge log file (records in the SfB trace layout), the JSON-lines events file, and an
//! in-process broadcast channel ([`Edge::subscribe`]) that tests and the scenario runner read. The two files
//! are written by a background writer (`sinks`), never on a connection task; [`Edge::flush`] drains it.
//!
//! Client certificates are judged *after* the handshake ("accept any, then judge"): the chain is checked
//! against the trust anchors (validity and trust only), and a refused one closes the connection with a TCP
//! reset and no SIP answer, as the Edge does, with the exact reason logged. A missing certificate (when
//! required) fails inside the handshake (rustls sends `certificate_required`); with `tls.client_cert` optional
//! or none the peer gets in and Rule 2 explains that no certificate was presented. The clientAuth EKU rule is
//! left to `rules` so that the lab sees a 504 that explains it instead of a reset. A handshake that fails
//! because the peer offers only TLS versions the Edge does not accept is recorded too, with the versions
//! read from its ClientHello (`handshake`).
//!
//! Decision events follow the schema of [`crate::diagnostics::DecisionEvent`] (`"schema": 1`).
//!
//! Split by role, along a request's path:
//! - `listener`: the accept loop, the connection limit, shutdown;
//! - `transport` (and `handshake`, with the cache of the peer chains judged): one connection's TLS, bounded
//!   reads, framing, the request rate, batched writes, and the wait for the users' timers;
//! - `sinks`: the log and events files' writer thread (batches, backpressure, write failures counted);
//! - `decide`: request → facts → rules → one `Outcome` (the verdict with its record, the response, the event);
//! - `respond`: the one response path (the Edge's marks on every answer, INVITE retransmissions);
//! - `dialogs` (and `uas`, `tx`): the emulated users' calls as plain data with their timers as data, driven
//!   with the time passed in, and unit-tested without a socket;
//! - `conversations` and `subscriptions`: the users' presence (SUBSCRIBE, NOTIFY, BENOTIFY; one table per
//!   Edge) and IM (session mode, page mode) in the same shape;
//! - `peer_conn`: `send_to_peer`, the one switch point of the requests the Edge originates (a user's BYE,
//!   NOTIFY, BENOTIFY, IM replies): over the Edge's own connection to the partner, or back inbound.

mod conversations;
mod decide;
mod dialogs;
mod handshake;
mod limits;
mod listener;
mod partners;
mod peer_conn;
pub mod pool;
mod respond;
mod route_sig;
mod sinks;
mod subscriptions;
mod transport;
mod tx;
mod uas;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_rustls::TlsAcceptor;

pub use listener::serve;
pub use peer_conn::{ONE_WAY, OutboundFailure};
pub use sinks::SinkReport;

use crate::config::{ClientCertMode, EdgeConfig, TlsVersion};
use crate::diagnostics::{DecisionEvent, LogContext, LogRecord};
use crate::dns::Lookup;
use crate::pki::{self, ClientAuthMode, TrustAnchors};
use crate::rules::Policy;

/// Why the Edge could not start or stopped. Causes are in the message and not `source`s, so that `anyhow`'s
/// `{:#}` prints each once.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The TLS configuration could not be built from the identity.
    #[error("Edge TLS configuration: {0}")]
    Tls(pki::PkiError),
    /// A log or events file could not be opened.
    #[error("{field}: cannot open {}: {cause}; check that its directory exists and is writable", path.display())]
    File {
        /// The configuration key that names it (`log_file`, `events_file`).
        field: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error (not a `source`: the message includes it).
        cause: std::io::Error,
    },
    /// A limit is out of its range (the configuration's check refuses it when it is loaded; an Edge built
    /// from code is checked again here, so no limit is ever silently raised).
    #[error("`{}`: {}", .0.field, .0.message)]
    Limits(crate::config::validate::Problem),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(std::io::Error),
}

impl From<pki::PkiError> for EdgeError {
    fn from(e: pki::PkiError) -> Self {
        EdgeError::Tls(e)
    }
}

/// Everything an Edge is built from; the caller loads or generates each part.
pub struct EdgeParts {
    /// The configuration (policy, users, limits, sinks).
    pub config: EdgeConfig,
    /// The Edge certificate chain and key.
    pub identity: pki::TlsIdentity,
    /// CAs the Edge trusts for peer certificates.
    pub anchors: TrustAnchors,
    /// How the Edge resolves federation SRV records.
    pub lookup: Arc<dyn Lookup>,
}

/// How many rendered log records [`Edge::log_records`] keeps in memory.
const KEPT_RECORDS: usize = 1000;

/// A configured inbound Edge, shared by all connection tasks.
pub struct Edge {
    config: EdgeConfig,
    acceptor: TlsAcceptor,
    anchors: TrustAnchors,
    policy: Policy,
    users: Arc<dialogs::Users>,
    /// The users' presence subscriptions and the requests the Edge originates (`subscriptions`).
    presence: Arc<Mutex<subscriptions::Hub>>,
    lookup: Arc<dyn Lookup>,
    events: broadcast::Sender<DecisionEvent>,
    records: Mutex<std::collections::VecDeque<Arc<str>>>,
    sinks: sinks::Sinks,
    peers: handshake::PeerCache,
    next_cid: AtomicU64,
    seq: AtomicU32,
    /// What is seen on the wire goes to these (pcapng, HEP, metrics, web view); off until set.
    taps: std::sync::OnceLock<crate::wire::Taps>,
    partners: partners::Partners,
    /// Signs the Edge's Record-Route and checks the Routes that come back (one random key per run).
    route_key: Arc<route_sig::RouteKey>,
    /// The Edge's own connections to its partners, for the requests it originates.
    pool: peer_conn::Pool,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("fqdn", &self.config.edge.fqdn)
            .finish_non_exhaustive()
    }
}

fn open_append(
    path: &Path,
    field: &'static str,
) -> Result<(std::fs::File, std::path::PathBuf), EdgeError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|f| (f, path.to_path_buf()))
        .map_err(|cause| EdgeError::File {
            field,
            path: path.to_path_buf(),
            cause,
        })
}

impl Edge {
    /// Checks the limits, and builds the TLS server configuration, the policy and the sinks.
    pub fn new(parts: EdgeParts) -> Result<Edge, EdgeError> {
        let EdgeParts {
            config,
            identity,
            anchors,
            lookup,
        } = parts;
        crate::config::validate::limits(&config.limits).map_err(EdgeError::Limits)?;
        let mode = match config.tls.client_cert {
            ClientCertMode::Required => ClientAuthMode::Required,
            ClientCertMode::Optional => ClientAuthMode::Optional,
            ClientCertMode::None => ClientAuthMode::None,
        };
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = config
            .tls_versions()
            .iter()
            .map(|v| match v {
                TlsVersion::Tls12 => &rustls::version::TLS12,
                TlsVersion::Tls13 => &rustls::version::TLS13,
            })
            .collect();
        let server = pki::server_config_with_versions(&identity, mode, anchors.hints(), &versions)?;
        let log_file = config
            .log_file
            .as_deref()
            .map(|p| open_append(p, "log_file"))
            .transpose()?;
        let events_file = config
            .events_file
            .as_deref()
            .map(|p| open_append(p, "events_file"))
            .transpose()?;
        let sinks = sinks::Sinks::start(log_file, events_file).map_err(EdgeError::Io)?;
        let (events, _) = broadcast::channel(1024);
        let policy = Policy::from_config(&config).with_dns_server(lookup.server());
        let presence = Arc::new(Mutex::new(subscriptions::Hub::new(
            &config,
            policy.faithful,
            std::time::Instant::now(),
        )));
        let pool = peer_conn::Pool::new(
            crate::outbound::OutboundContext::new(
                policy.clone(),
                identity.clone(),
                anchors.clone(),
                lookup.clone(),
            ),
            config
                .federation
                .access_edge
                .outgoing_tls_count_for_federated_partners as usize,
            std::time::Duration::from_millis(config.limits.idle_timeout_ms),
            presence.clone(),
        );
        let users = Arc::new(dialogs::Users {
            users: config.users.clone(),
            policy: policy.clone(),
            fqdn: config.edge.fqdn.clone(),
            agent: config.edge.server().to_owned(),
        });
        let partners = partners::Partners::new(policy.discovered);
        Ok(Edge {
            partners,
            presence,
            policy,
            users,
            acceptor: TlsAcceptor::from(server),
            anchors,
            lookup,
            events,
            records: Mutex::new(std::collections::VecDeque::new()),
            sinks,
            peers: handshake::PeerCache::new(handshake::PEER_CACHE),
            // The seed's ms-received-cid is 100 (hex): start there so traces look familiar.
            next_cid: AtomicU64::new(0x100),
            seq: AtomicU32::new(0x773E),
            taps: std::sync::OnceLock::new(),
            route_key: Arc::new(route_sig::RouteKey::random()),
            pool,
            config,
        })
    }

    /// This Edge with its wire taps (`serve --pcap/--hep/--metrics/--ui`).
    pub fn with_taps(self, taps: crate::wire::Taps) -> Edge {
        self.set_taps(taps);
        self
    }

    /// Sets the wire taps of an Edge already shared (a lab's); only the first call counts, and connections
    /// accepted before it are not tapped.
    pub fn set_taps(&self, taps: crate::wire::Taps) {
        if let Some(m) = taps.metrics() {
            let backlog = self.sinks.events_backlog();
            m.on_scrape(Box::new(move |m| {
                m.backlog(crate::wire::metrics::Sink::Events, backlog() as usize);
            }));
        }
        if self.taps.set(taps).is_err() {
            tracing::warn!("the Edge's wire taps were already set: the new ones are ignored");
        }
    }

    /// The wire taps (to shut them down after the Edge stopped).
    pub fn taps(&self) -> &crate::wire::Taps {
        static OFF: std::sync::OnceLock<crate::wire::Taps> = std::sync::OnceLock::new();
        self.taps
            .get()
            .unwrap_or_else(|| OFF.get_or_init(crate::wire::Taps::default))
    }

    /// A receiver of every decision (request verdicts and handshake rejections), from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DecisionEvent> {
        self.events.subscribe()
    }

    /// The Edge log records written so far (rendered, newest last; the last 1000 are kept).
    pub fn log_records(&self) -> Vec<String> {
        self.records
            .lock()
            .map(|r| r.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default()
    }

    /// The requests the Edge originated that could not reach or trust the peer over its own connection
    /// (oldest first, the last 100).
    pub fn outbound_failures(&self) -> Vec<OutboundFailure> {
        self.pool.failures()
    }

    /// How many of the Edge's own connections to `domain` are open.
    pub async fn outbound_connections(&self, domain: &str) -> usize {
        self.pool.open_to(domain).await
    }

    /// The configuration this Edge runs with.
    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    /// Sets `user`'s presence (`user` or `user@domain`) from now on, in place of its configured schedule, and
    /// sends it to every live subscription to that user.
    pub fn set_presence(&self, user: &str, state: crate::presence::PresenceState) {
        if let Ok(mut hub) = self.presence.lock() {
            hub.set_presence(user, state, std::time::Instant::now());
        }
    }

    /// The federation policy this Edge applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Renders a record in the Edge's trace layout, once, and hands the text to memory and the log file.
    fn write_record(&self, record: &LogRecord, tid: u64) -> Arc<str> {
        thread_local! {
            // The rendering buffer, reused by every record rendered on this thread.
            static RENDER: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(1024));
        }
        let ctx = LogContext {
            edge_host: self.config.edge.log_host.clone(),
            pid: std::process::id() & 0xFFFF,
            tid: (tid & 0xFFFF) as u32,
            timestamp: time::OffsetDateTime::now_utc(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            record_id: u64::from(rand::random::<u32>()),
        };
        let text: Arc<str> = RENDER.with_borrow_mut(|buf| {
            buf.clear();
            record.render_into(&ctx, buf);
            Arc::from(buf.as_str())
        });
        tracing::debug!(target: "edgesim::edge::log", "{text}");
        // Memory first, the file queue second: a reader of `log_records` never sees fewer records than the
        // file holds.
        if let Ok(mut r) = self.records.lock() {
            if r.len() >= KEPT_RECORDS {
                r.pop_front();
            }
            r.push_back(text.clone());
        }
        self.sinks.record(text.clone());
        text
    }

    /// With `[log] protocol = true`, writes a message in or out as the Edge's `TL_INFO(TF_PROTOCOL)` record.
    fn log_protocol(
        &self,
        direction: crate::diagnostics::protocol::Direction,
        peer: &str,
        message: &[u8],
        tid: u64,
    ) {
        // Only `log_text` knows whether there is a log file (the sinks may move it to a background writer).
        if !self.config.log.protocol {
            return;
        }
        let record = crate::diagnostics::protocol::ProtocolRecord {
            direction,
            peer,
            message,
        };
        let text = record.render(&self.log_context(tid));
        self.log_text(text);
    }

    /// The trace-line context of the next record written by connection `tid`.
    fn log_context(&self, tid: u64) -> LogContext {
        LogContext {
            edge_host: self.config.edge.log_host.clone(),
            pid: std::process::id() & 0xFFFF,
            tid: (tid & 0xFFFF) as u32,
            timestamp: time::OffsetDateTime::now_utc(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            record_id: u64::from(rand::random::<u32>()),
        }
    }

    /// Appends an already-rendered record (e.g. a `TF_PROTOCOL` message trace) to the log file, in order with
    /// the decision records; without a log file, nothing.
    pub(crate) fn log_text(&self, text: String) {
        self.sinks.text(text);
    }

    /// Writes everything queued to the log and events files and syncs them, waiting at most 5 s for the
    /// writer; then what the sinks did (written, lost to write errors, backpressure waits).
    pub fn flush(&self) -> SinkReport {
        self.flush_within(std::time::Duration::from_secs(5))
    }

    /// [`Edge::flush`], waiting at most `wait`.
    pub fn flush_within(&self, wait: std::time::Duration) -> SinkReport {
        self.sinks.flush(wait)
    }

    /// Publishes a decision: one short console line, the events file and the subscribers.
    fn publish(&self, event: DecisionEvent) {
        console_line(&event);
        self.publish_event(event);
    }

    /// A request the Edge originated toward `domain` that its own connection could not carry (the route, the
    /// connection, the peer's certificate, or the peer refusing the Edge's): kept for
    /// [`Edge::outbound_failures`], its warning line (in place of the console's decision line), the Edge
    /// record of its finding when the finding has one (1010's `0xc3e93d67`; `call`'s 1008/1009/1046/1047 have
    /// none catalogued, and none is made up), and its event, with the "works one way only" note. `request` is
    /// the request's bytes, when known (a TLS alert after the handshake names only its method).
    fn outbound_failed(
        &self,
        domain: &str,
        method: &str,
        request: Option<&bytes::Bytes>,
        v: &crate::rules::Verdict,
    ) {
        let Some(failure) = self.pool.record(domain, method, v) else {
            return;
        };
        let Some(finding) = v.finding() else { return };
        let m = request.and_then(|b| crate::sip::Message::parse(b.clone()).ok());
        let start_line = m
            .as_ref()
            .map(|m| respond::text(m.start_line()))
            .unwrap_or_default();
        let call_id = m
            .as_ref()
            .and_then(|m| m.call_id().ok().map(|c| respond::text(&c)))
            .unwrap_or_default();
        let cseq = m
            .as_ref()
            .and_then(|m| m.cseq().ok().map(|c| format!("{} {}", c.seq, c.method)))
            .unwrap_or_default();
        let line = crate::rules::RequestLine {
            start_line: &start_line,
            call_id: &call_id,
            cseq: &cseq,
            peer: domain,
        };
        let v = crate::rules::Verdict::new(
            crate::rules::Decision::Refuse(finding.clone()),
            &self.config.edge.fqdn,
            Some(&line),
        );
        if let Some(r) = v.log() {
            self.write_record(r, 0);
        }
        let event = v.to_event(crate::diagnostics::EventContext {
            time: time::OffsetDateTime::now_utc(),
            remote: String::new(),
            peer_cert: None,
            method: method.to_owned(),
            call_id,
            domain: Some(domain.to_owned()),
        });
        // Nothing was answered: the request was the Edge's own.
        self.publish_event(DecisionEvent {
            status: None,
            explanation: Some(failure.explanation),
            call_id: event.call_id.clone().filter(|c| !c.is_empty()),
            ..event
        });
    }

    /// The events file and the subscribers.
    fn publish_event(&self, event: DecisionEvent) {
        if !self.sinks.events() {
            // No subscriber is not an error.
            let _ = self.events.send(event);
        } else if self.events.receiver_count() == 0 {
            self.sinks.event(event);
        } else {
            self.sinks.event(event.clone());
            let _ = self.events.send(event);
        }
    }
}

/// The console's one line per decision, at `info`: the status sent, the method, the sender domain, the Call-ID
/// and, when the Edge wrote a record, its result code. The record and the explanation are in the log file, the
/// events file and at `debug`; the connection's span (remote, cid, peer certificate) prefixes the line.
fn console_line(event: &DecisionEvent) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let rc = event.result_code.as_deref().unwrap_or("");
    let sep = if rc.is_empty() { "" } else { ": " };
    match (&event.method, event.status) {
        (None, _) => {
            let who = event.peer_cert.as_deref().unwrap_or(&event.remote);
            tracing::info!("handshake refused for {who}{sep}{rc}");
        }
        (Some(m), status) => {
            let domain = event.domain.as_deref().unwrap_or("(no domain)");
            let call_id = event.call_id.as_deref().unwrap_or("");
            match status {
                Some(s) => tracing::info!("{s} {m} from {domain} ({call_id}){sep}{rc}"),
                None => tracing::info!("no answer to {m} from {domain} ({call_id}){sep}{rc}"),
            }
        }
    }
}

/// The `[[users]]` entries nobody can reach, with their domain: an `@domain` that is not the Edge's.
pub fn unreachable_users(cfg: &EdgeConfig) -> Vec<(String, String)> {
    let policy = Policy::from_config(cfg);
    cfg.users
        .iter()
        .filter_map(|u| match uas::user_entry(&u.user) {
            (_, Some(d)) if !policy.serves_host(d, None) => Some((u.user.clone(), d.to_owned())),
            _ => None,
        })
        .collect()
}

/// The remote as written in events: `ip:port`.
fn remote_text(remote: SocketAddr) -> String {
    remote.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::{HickoryLookup, ResolverSettings};
    use crate::pki::{KeyType, LabCa, LeafSpec};

    #[test]
    fn an_edge_refuses_a_limit_out_of_range_instead_of_raising_it() {
        let ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
        let identity = pki::TlsIdentity::from(&ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap());
        // Never asked: the Edge is not started.
        let lookup =
            HickoryLookup::new(ResolverSettings::server("127.0.0.1:9".parse().unwrap())).unwrap();
        let mut config = EdgeConfig::default();
        config.limits.max_connections = 0;
        let err = Edge::new(EdgeParts {
            config,
            identity,
            anchors: TrustAnchors::default(),
            lookup: Arc::new(lookup),
        })
        .unwrap_err();
        assert!(matches!(err, EdgeError::Limits(_)));
        assert_eq!(
            err.to_string(),
            "`limits.max_connections`: 0 is out of range (0 does not mean \"off\"): give a number of concurrent connections from 1 to 1000000"
        );
    }
}
