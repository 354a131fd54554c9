//! Prometheus metrics of one Edge, in the text exposition (OpenMetrics) on `GET /metrics`.
//!
//! Names follow Kamailio's `kamailio_<group>_<stat>` (`edgesim_tls_handshakes_total`,
//! `edgesim_sip_requests_total`, …) with labels where Kamailio puts a suffix. Each [`EdgeMetrics`] has its own
//! registry (no process-global one), so several Edges in one process never mix. Label values that come from
//! the network are bounded: an unknown SIP method counts as `other`, a status outside 100–699 as `other`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `edgesim_tls_handshakes_total` | counter | `result` ([`HandshakeResult`]) |
//! | `edgesim_tls_connections_open` | gauge | |
//! | `edgesim_sip_requests_total` | counter | `method` |
//! | `edgesim_sip_responses_total` | counter | `status`, `ms_diagnostics` (code or `none`) |
//! | `edgesim_sip_decision_latency_seconds` | histogram | |
//! | `edgesim_dns_lookups_total` | counter | `result` ([`DnsResult`]) |
//! | `edgesim_sink_backlog` | gauge | `sink` ([`Sink`]) |

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::WireError;
use crate::dns::DnsFailure;

/// How a TLS handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeResult {
    /// Completed and the client certificate (if any) was accepted.
    Ok,
    /// Not completed within the handshake timeout.
    Timeout,
    /// The client presented no certificate where one is required.
    NoCertificate,
    /// Completed, then the client certificate chain was refused (untrusted, expired, …): connection reset.
    CertificateRefused,
    /// A TLS error (no common parameters, not TLS at all, an alert).
    TlsError,
    /// The connection was lost during the handshake.
    Lost,
}

impl HandshakeResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeResult::Ok => "ok",
            HandshakeResult::Timeout => "timeout",
            HandshakeResult::NoCertificate => "no_certificate",
            HandshakeResult::CertificateRefused => "certificate_refused",
            HandshakeResult::TlsError => "tls_error",
            HandshakeResult::Lost => "lost",
        }
    }
}

/// How a DNS lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsResult {
    /// Records came back.
    Ok,
    /// NXDOMAIN.
    NxDomain,
    /// The name exists without records of the type.
    NoRecords,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// No answer in time.
    Timeout,
    /// Anything else.
    Error,
}

impl DnsResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsResult::Ok => "ok",
            DnsResult::NxDomain => "nxdomain",
            DnsResult::NoRecords => "no_records",
            DnsResult::ServFail => "servfail",
            DnsResult::Refused => "refused",
            DnsResult::Timeout => "timeout",
            DnsResult::Error => "error",
        }
    }
}

impl From<&DnsFailure> for DnsResult {
    fn from(f: &DnsFailure) -> Self {
        match f {
            DnsFailure::NxDomain => DnsResult::NxDomain,
            DnsFailure::NoRecords => DnsResult::NoRecords,
            DnsFailure::ServFail => DnsResult::ServFail,
            DnsFailure::Refused => DnsResult::Refused,
            DnsFailure::Timeout => DnsResult::Timeout,
            DnsFailure::Other(_) => DnsResult::Error,
        }
    }
}

/// A sink whose queue the backlog gauge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The JSON-lines events file and subscribers.
    Events,
    /// The pcapng writer.
    Pcap,
    /// The HEP sender.
    Hep,
}

impl Sink {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Events => "events",
            Sink::Pcap => "pcap",
            Sink::Hep => "hep",
        }
    }
}

/// SIP methods counted by name; any other counts as `other` (the label set stays bounded).
const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "MESSAGE",
    "INFO",
    "UPDATE",
    "PRACK",
    "REFER",
    "SUBSCRIBE",
    "NOTIFY",
    "BENOTIFY",
    "PUBLISH",
    "REGISTER",
    "SERVICE",
    "NEGOTIATE",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    status: String,
    ms_diagnostics: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

/// One Edge's metrics and their registry.
pub struct EdgeMetrics {
    registry: Registry,
    handshakes: Family<ResultLabel, Counter>,
    connections: Gauge,
    requests: Family<MethodLabel, Counter>,
    responses: Family<ResponseLabels, Counter>,
    decision_latency: Histogram,
    dns: Family<ResultLabel, Counter>,
    backlog: Family<SinkLabel, Gauge>,
    /// Run before each [`EdgeMetrics::encode`]: sets the gauges read from elsewhere (the sinks' queues).
    refresh: std::sync::Mutex<Option<Refresh>>,
}

/// A gauge refresher ([`EdgeMetrics::on_scrape`]).
pub type Refresh = Box<dyn Fn(&EdgeMetrics) + Send + Sync>;

impl std::fmt::Debug for EdgeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeMetrics").finish_non_exhaustive()
    }
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeMetrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> EdgeMetrics {
        let mut registry = Registry::with_prefix("edgesim");
        let handshakes = Family::<ResultLabel, Counter>::default();
        let connections = Gauge::default();
        let requests = Family::<MethodLabel, Counter>::default();
        let responses = Family::<ResponseLabels, Counter>::default();
        // 0.5 ms to about 4 s: DNS timeouts and slow resolvers land in the top buckets.
        let decision_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let dns = Family::<ResultLabel, Counter>::default();
        let backlog = Family::<SinkLabel, Gauge>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes by result",
            handshakes.clone(),
        );
        registry.register(
            "tls_connections_open",
            "TLS connections open now",
            connections.clone(),
        );
        registry.register(
            "sip_requests",
            "SIP requests received, by method",
            requests.clone(),
        );
        registry.register(
            "sip_responses",
            "SIP responses sent, by status and ms-diagnostics code",
            responses.clone(),
        );
        registry.register(
            "sip_decision_latency_seconds",
            "Time from a request's arrival to the Edge's decision",
            decision_latency.clone(),
        );
        registry.register("dns_lookups", "DNS lookups by result", dns.clone());
        registry.register(
            "sink_backlog",
            "Items queued for a sink and not yet written",
            backlog.clone(),
        );
        EdgeMetrics {
            registry,
            handshakes,
            connections,
            requests,
            responses,
            decision_latency,
            dns,
            backlog,
            refresh: std::sync::Mutex::new(None),
        }
    }

    /// Runs `refresh` before every [`EdgeMetrics::encode`] (replacing an earlier one), to set gauges whose
    /// figures live elsewhere, such as the sinks' queue lengths.
    pub fn on_scrape(&self, refresh: Refresh) {
        if let Ok(mut r) = self.refresh.lock() {
            *r = Some(refresh);
        }
    }

    /// Counts a handshake.
    pub fn handshake(&self, result: HandshakeResult) {
        self.handshakes
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    /// Counts a request (an unknown method as `other`).
    pub fn request(&self, method: &str) {
        let method = METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(method))
            .copied()
            .unwrap_or("other");
        self.requests.get_or_create(&MethodLabel { method }).inc();
    }

    /// Counts a response sent with `status` and its ms-diagnostics code, if any.
    pub fn response(&self, status: u16, ms_diagnostics: Option<u32>) {
        let status = if (100..=699).contains(&status) {
            status.to_string()
        } else {
            "other".to_owned()
        };
        let ms_diagnostics = ms_diagnostics.map_or_else(|| "none".to_owned(), |c| c.to_string());
        self.responses
            .get_or_create(&ResponseLabels {
                status,
                ms_diagnostics,
            })
            .inc();
    }

    /// Records how long a decision took.
    pub fn decision_latency(&self, took: Duration) {
        self.decision_latency.observe(took.as_secs_f64());
    }

    /// A connection was accepted (before its handshake).
    pub fn conn_opened(&self) {
        self.connections.inc();
    }

    /// A connection ended (call once per [`EdgeMetrics::conn_opened`]).
    pub fn conn_closed(&self) {
        self.connections.dec();
    }

    /// Counts a DNS lookup.
    pub fn dns(&self, result: DnsResult) {
        self.dns
            .get_or_create(&ResultLabel {
                result: result.as_str(),
            })
            .inc();
    }

    /// Sets a sink's queued item count.
    pub fn backlog(&self, sink: Sink, queued: usize) {
        self.backlog
            .get_or_create(&SinkLabel {
                sink: sink.as_str(),
            })
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    /// The text exposition (OpenMetrics, ending in `# EOF`).
    pub fn encode(&self) -> String {
        if let Ok(r) = self.refresh.lock()
            && let Some(r) = r.as_ref()
        {
            r(self);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`EdgeMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Most requests' headers a scraper may send (bounds every read), and the time it has to send them.
const MAX_HEADER_BYTES: usize = 8 * 1024;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapers served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

fn respond(metrics: &EdgeMetrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        );
    }
    if req.method() != Method::GET {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served on /metrics\n",
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET"),
        );
        return r;
    }
    let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(CONTENT_TYPE),
    );
    r
}

/// Serves `GET /metrics` on `listener` (HTTP/1.1) until `shutdown` is cancelled; open scrapes are cut then.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
) -> Result<(), WireError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                // A failed accept (e.g. the peer reset first) concerns that connection only.
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: accept failed");
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&metrics, &req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "metrics: connection ended with an error");
                },
            }
        });
    }
    conns.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_status_labels_stay_bounded() {
        let m = EdgeMetrics::new();
        m.request("invite");
        m.request("XYZZY");
        m.request("FOO");
        m.response(504, Some(1009));
        m.response(999, None);
        let text = m.encode();
        assert!(
            text.contains("edgesim_sip_requests_total{method=\"INVITE\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("edgesim_sip_requests_total{method=\"other\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "edgesim_sip_responses_total{status=\"504\",ms_diagnostics=\"1009\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "edgesim_sip_responses_total{status=\"other\",ms_diagnostics=\"none\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn dns_failures_map_to_their_labels() {
        assert_eq!(DnsResult::from(&DnsFailure::ServFail).as_str(), "servfail");
        assert_eq!(DnsResult::from(&DnsFailure::NxDomain).as_str(), "nxdomain");
        assert_eq!(
            DnsResult::from(&DnsFailure::Other("x".into())).as_str(),
            "error"
        );
    }
}
