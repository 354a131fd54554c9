//! Load generator: mutual-TLS connections sending SIP requests to an Edge (or any SIP-over-TLS server),
//! pipelined per connection within a window or one connection per request, with a fixed rate or as fast
//! as possible; it counts final responses by status and ms-diagnostics code, latencies, handshakes and
//! errors by kind.
//!
//! Latency is measured from the request's *intended* send time when a rate is set (so a stalled server
//! cannot hide queueing delay: no coordinated omission), from the actual send time otherwise.
//! A final response to an INVITE is acknowledged (ACK, and BYE after a 2xx) as a real Expressway would,
//! so the server's transactions complete. A server that echoes the request back (a bare TLS echo, for
//! comparison) is counted as `echo` responses.
//!
//! Past one machine: a run split over N processes ([`LoadSpec::into_shard`], [`shard`]), each writing its
//! result with its histograms ([`ShardResult`]; the format is in [`result_file`]), merged into one summary
//! ([`merge()`]).

mod conn;
mod merge;
mod report;
mod request;
pub mod result_file;
pub mod shard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use rustls_pki_types::ServerName;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use merge::{MergedRun, ShardsSummary, merge, merge_histograms};
pub use report::{LoadReport, Outcome, Percentiles};
pub use request::RequestTemplate;
pub use result_file::{ShardResult, parse_results, read_results};
pub use shard::{Shard, ShardError, ShardPlan};

/// When a run stops sending.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// After this many requests.
    Requests(u64),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server's TCP address.
    pub target: SocketAddr,
    /// SNI and the name the TLS client is told (any certificate is accepted).
    pub server_name: ServerName<'static>,
    /// The TLS client configuration (client certificate, no resumption): see [`crate::pki::client_config`].
    pub tls: Arc<rustls::ClientConfig>,
    /// The request to send.
    pub request: RequestTemplate,
    /// Concurrent connections (workers).
    pub connections: usize,
    /// Requests in flight per connection (1 = one at a time).
    pub window: usize,
    /// Requests per second over all connections; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// When to stop sending.
    pub stop: Stop,
    /// Open a new TLS connection for every request (handshake-bound load).
    pub new_connection_per_request: bool,
    /// How long to wait for a final response (and for a handshake) before counting a timeout.
    pub timeout: Duration,
    /// Keep each persistent connection open, idle, this long after its last answer (to measure what idle
    /// connections cost the server).
    pub hold: Duration,
    /// The share of a run split over several generator processes that this spec is, with the whole run;
    /// `None`: the whole run. Set by [`LoadSpec::into_shard`].
    pub shard: Option<ShardPlan>,
    /// Also keep every latency sample (µs, as recorded in the histogram) for [`RunOutput::samples`]; memory
    /// grows with the run (for tests that check the histograms against the samples).
    pub keep_samples: bool,
}

impl LoadSpec {
    /// A spec with one connection, window 16, 1000 requests as fast as possible and a 5 s timeout.
    pub fn new(
        target: SocketAddr,
        server_name: ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
        request: RequestTemplate,
    ) -> Self {
        LoadSpec {
            target,
            server_name,
            tls,
            request,
            connections: 1,
            window: 16,
            rate: None,
            stop: Stop::Requests(1000),
            new_connection_per_request: false,
            timeout: Duration::from_secs(5),
            hold: Duration::ZERO,
            shard: None,
            keep_samples: false,
        }
    }
}

/// Live counters of a run, for a progress display; read them while [`run`] is going.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests written.
    pub sent: AtomicU64,
    /// Final responses received.
    pub answered: AtomicU64,
    /// Errors of any kind.
    pub errors: AtomicU64,
}

impl Progress {
    /// `(sent, answered, errors)` now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// Hands out request slots (index and intended send time) to the workers, shared by all of them.
#[derive(Debug)]
struct Schedule {
    start: Instant,
    rate: Option<f64>,
    limit: Option<u64>,
    deadline: Option<Instant>,
    next: AtomicU64,
    cancel: CancellationToken,
    /// Where a shard's slots sit between two of its slots, so that the shards' schedules interleave.
    phase: f64,
}

/// One request to send: its intended send time.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Instant,
}

impl Schedule {
    fn new(spec: &LoadSpec, cancel: CancellationToken) -> Self {
        let start = Instant::now();
        let (limit, deadline) = match spec.stop {
            Stop::Requests(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(start + d)),
        };
        Schedule {
            start,
            rate: spec.rate.filter(|r| *r > 0.0),
            limit,
            deadline,
            next: AtomicU64::new(0),
            cancel,
            phase: spec.shard.map_or(0.0, |p| p.shard().phase()),
        }
    }

    /// The next slot, or `None` when the run is over (limit, deadline or cancellation).
    fn take(&self) -> Option<Slot> {
        if self.cancel.is_cancelled() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if self.limit.is_some_and(|l| i >= l) {
            return None;
        }
        let now = Instant::now();
        let at = match self.rate {
            Some(r) => self.start + Duration::from_secs_f64((i as f64 + self.phase) / r),
            None => now,
        };
        if self.deadline.is_some_and(|d| at >= d || now >= d) {
            return None;
        }
        Some(Slot { at })
    }

    /// Whether no more slots will be handed out (checked without taking one).
    fn finished(&self) -> bool {
        self.cancel.is_cancelled()
            || self
                .limit
                .is_some_and(|l| self.next.load(Ordering::Relaxed) >= l)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Runs the load described by `spec` until it stops or `cancel` fires, then waits (up to `spec.timeout`)
/// for the responses still in flight. Call within a tokio runtime.
pub async fn run(spec: LoadSpec, progress: Arc<Progress>, cancel: CancellationToken) -> LoadReport {
    run_with_result(spec, progress, cancel).await.report
}

/// What [`run_with_result`] returns.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The summary.
    pub report: LoadReport,
    /// The run's result for `--out` and `load merge`: counts, timing window, histograms.
    pub result: ShardResult,
    /// Every latency sample, µs, when [`LoadSpec::keep_samples`] asked for them.
    pub samples: Option<Vec<u64>>,
}

/// [`run`], returning besides the summary the run's (or shard's) result with its histograms.
pub async fn run_with_result(
    spec: LoadSpec,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> RunOutput {
    let spec = Arc::new(spec);
    let started = SystemTime::now();
    let schedule = Arc::new(Schedule::new(&spec, cancel));
    let run_id = spec
        .shard
        .map_or(Shard::WHOLE, |p| p.shard())
        .run_id(&request::run_id());
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..spec.connections.max(1) {
        let ctx = conn::Worker {
            id: worker,
            run_id: run_id.clone(),
            spec: spec.clone(),
            schedule: schedule.clone(),
            progress: progress.clone(),
        };
        workers.spawn(ctx.run());
    }
    let mut stats = report::Stats::new();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(s) => stats.merge(s),
            Err(e) => stats.error(&format!("worker task failed: {e}")),
        }
    }
    let elapsed = schedule.start.elapsed();
    let result = ShardResult::from_stats(&spec, &run_id, &stats, started, elapsed);
    let samples = stats.samples.take();
    RunOutput {
        report: LoadReport::from_stats(&spec, stats, elapsed),
        result,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: Option<f64>, stop: Stop) -> LoadSpec {
        let mut s = LoadSpec::new(
            "127.0.0.1:5061".parse().unwrap(),
            ServerName::try_from("sip.skype.lab").unwrap(),
            crate::pki::client_config(None).unwrap(),
            RequestTemplate::new("OPTIONS", "sip:a@b", "sip:c@d"),
        );
        s.rate = rate;
        s.stop = stop;
        s
    }

    #[test]
    fn a_request_count_hands_out_exactly_that_many_slots() {
        let s = Schedule::new(&spec(None, Stop::Requests(3)), CancellationToken::new());
        assert!(!s.finished());
        assert_eq!((0..5).filter_map(|_| s.take()).count(), 3);
        assert!(s.finished());
    }

    #[test]
    fn a_rate_spaces_the_intended_send_times() {
        let s = Schedule::new(
            &spec(Some(1000.0), Stop::Requests(3)),
            CancellationToken::new(),
        );
        let at: Vec<Instant> = (0..3).filter_map(|_| s.take()).map(|x| x.at).collect();
        assert_eq!(at[1] - at[0], Duration::from_millis(1));
        assert_eq!(at[2] - at[0], Duration::from_millis(2));
    }

    #[test]
    fn a_duration_ends_at_its_deadline_and_cancel_ends_at_once() {
        let s = Schedule::new(
            &spec(Some(10.0), Stop::Duration(Duration::from_millis(250))),
            CancellationToken::new(),
        );
        // 10/s for 250 ms: slots at 0, 100 and 200 ms.
        assert_eq!((0..10).filter_map(|_| s.take()).count(), 3);
        let cancel = CancellationToken::new();
        let s = Schedule::new(&spec(None, Stop::Requests(100)), cancel.clone());
        cancel.cancel();
        assert!(s.take().is_none() && s.finished());
    }
}
