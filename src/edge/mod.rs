//! The inbound Edge: a mutual-TLS SIP listener that applies the federation rules to what the peer sends.
//!
//! The caller binds the listener and owns the shutdown token ([`serve`]); each connection runs in its own task
//! with a tracing span (`remote`, `cid`, `peer_cert`). Decisions go to four sinks: tracing, the Edge log file
//! (records in the SfB trace layout), the JSON-lines events file, and an in-process broadcast channel
//! ([`Edge::subscribe`]) that tests and the scenario runner read.
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
//! - `transport` (and `handshake`): one connection's TLS, bounded reads, framing, the request rate, batched
//!   writes, and the wait for the users' timers;
//! - `decide`: request → facts → rules → one `Outcome` (the verdict with its record, the response, the event);
//! - `respond`: the one response path (the Edge's marks on every answer, INVITE retransmissions);
//! - `dialogs` (and `uas`, `tx`): the emulated users' calls as plain data with their timers as data, driven
//!   with the time passed in, and unit-tested without a socket.

mod decide;
mod dialogs;
mod handshake;
mod limits;
mod listener;
mod peer_conn;
mod respond;
mod route_sig;
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
    pub identity: pki::Identity,
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
    lookup: Arc<dyn Lookup>,
    events: broadcast::Sender<DecisionEvent>,
    records: Mutex<std::collections::VecDeque<String>>,
    log_file: Option<Mutex<std::fs::File>>,
    events_file: Option<Mutex<std::fs::File>>,
    next_cid: AtomicU64,
    seq: AtomicU32,
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

fn open_append(path: &Path, field: &'static str) -> Result<Mutex<std::fs::File>, EdgeError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Mutex::new)
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
            .tls
            .versions
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
        let (events, _) = broadcast::channel(1024);
        let policy = Policy::from_config(&config).with_dns_server(lookup.server());
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
        );
        let users = Arc::new(dialogs::Users {
            users: config.users.clone(),
            policy: policy.clone(),
            fqdn: config.edge.fqdn.clone(),
            agent: config.edge.server().to_owned(),
        });
        Ok(Edge {
            policy,
            users,
            acceptor: TlsAcceptor::from(server),
            anchors,
            lookup,
            events,
            records: Mutex::new(std::collections::VecDeque::new()),
            log_file,
            events_file,
            // The seed's ms-received-cid is 100 (hex): start there so traces look familiar.
            next_cid: AtomicU64::new(0x100),
            seq: AtomicU32::new(0x773E),
            route_key: Arc::new(route_sig::RouteKey::random()),
            pool,
            config,
        })
    }

    /// A receiver of every decision (request verdicts and handshake rejections), from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DecisionEvent> {
        self.events.subscribe()
    }

    /// The Edge log records written so far (rendered, newest last; the last 1000 are kept).
    pub fn log_records(&self) -> Vec<String> {
        self.records
            .lock()
            .map(|r| r.iter().cloned().collect())
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

    /// The federation policy this Edge applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Renders a record in the Edge's trace layout and writes it to tracing, the log file and memory.
    fn write_record(&self, record: &LogRecord, tid: u64) -> String {
        let ctx = LogContext {
            edge_host: self.config.edge.log_host.clone(),
            pid: std::process::id() & 0xFFFF,
            tid: (tid & 0xFFFF) as u32,
            timestamp: time::OffsetDateTime::now_utc(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            record_id: u64::from(rand::random::<u32>()),
        };
        let text = record.render(&ctx);
        tracing::warn!(target: "edgesim::edge::log", "{text}");
        if let Some(f) = &self.log_file
            && let Ok(mut f) = f.lock()
        {
            use std::io::Write;
            if let Err(e) = writeln!(f, "{text}") {
                tracing::error!(error = %e, "cannot write the Edge log file");
            }
        }
        if let Ok(mut r) = self.records.lock() {
            if r.len() >= KEPT_RECORDS {
                r.pop_front();
            }
            r.push_back(text.clone());
        }
        text
    }

    /// Appends text (a rendered record) to the log file, in order with the records of [`Edge::write_record`]
    /// (the same file under the same mutex).
    pub fn log_text(&self, text: String) {
        if let Some(f) = &self.log_file
            && let Ok(mut f) = f.lock()
        {
            use std::io::Write;
            if let Err(e) = writeln!(f, "{text}") {
                tracing::error!(error = %e, "cannot write the Edge log file");
            }
        }
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

    /// Makes sure the log and events files are on disk (at shutdown).
    pub fn flush(&self) {
        for f in [&self.log_file, &self.events_file].into_iter().flatten() {
            if let Ok(f) = f.lock()
                && let Err(e) = f.sync_data()
            {
                tracing::warn!(error = %e, "cannot flush a log file");
            }
        }
    }

    /// Publishes a decision to the events file and the subscribers.
    fn publish(&self, event: DecisionEvent) {
        if let Some(f) = &self.events_file {
            match event.to_json_line() {
                Ok(line) => {
                    if let Ok(mut f) = f.lock() {
                        use std::io::Write;
                        if let Err(e) = writeln!(f, "{line}") {
                            tracing::error!(error = %e, "cannot write the events file");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot serialise a decision event"),
            }
        }
        // No subscriber is not an error.
        let _ = self.events.send(event);
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
        let identity = pki::Identity::from(&ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap());
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
