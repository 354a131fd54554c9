//! One worker: a persistent connection with a pipelining window (a writer and a reader over the split
//! TLS stream), or a new connection per request.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::sync::CancellationToken;

use super::report::Stats;
use super::request::Ids;
use super::{LoadSpec, Progress, Schedule, Slot};
use crate::sip::{Frame, Framer, Message};

/// Pause before reconnecting after a failed connection, so a refusing server is not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// A request in flight: when it counts from.
#[derive(Debug, Clone, Copy)]
struct Pending {
    since: Instant,
}

type PendingMap = Arc<Mutex<HashMap<u32, Pending>>>;

fn lock(p: &PendingMap) -> std::sync::MutexGuard<'_, HashMap<u32, Pending>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a worker needs; `run` consumes it and returns what it counted.
pub(crate) struct Worker {
    pub id: usize,
    pub run_id: String,
    pub spec: Arc<LoadSpec>,
    pub schedule: Arc<Schedule>,
    pub progress: Arc<Progress>,
}

/// A short, stable name for an I/O error, for the errors-by-kind table.
fn io_kind(stage: &str, e: &io::Error) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return format!("{stage}: tls {tls}");
    }
    let what = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        io::ErrorKind::UnexpectedEof => "closed by server".to_owned(),
        io::ErrorKind::BrokenPipe => "broken pipe".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::InvalidData => format!("invalid data ({e})"),
        k => format!("{k:?}"),
    };
    format!("{stage}: {what}")
}

/// The ms-diagnostics code of a response, if it has one (read by the ms-diagnostics parser).
fn diagnostic_code(m: &Message) -> Option<String> {
    let h = m.header_named("ms-diagnostics")?;
    let value = String::from_utf8_lossy(&h.value()).into_owned();
    crate::diagnostics::MsDiagnostic::code_of(&value).map(|c| c.to_string())
}

/// The `Retry-After` of a response (its delta-seconds, without comment or parameters), if it has one.
fn retry_after(m: &Message) -> Option<String> {
    let h = m.header_named("Retry-After")?;
    let v = h.value();
    let text = String::from_utf8_lossy(&v);
    let secs = text.split([';', '(']).next()?.trim();
    (!secs.is_empty()).then(|| secs.to_owned())
}

/// What a received frame meant.
enum Seen {
    /// A final answer to request `cseq`; `close` holds the ACK/BYE to send.
    Final { close: Vec<u8> },
    /// Nothing to do (provisional, keep-alive, response to our ACK/BYE, unknown).
    Nothing,
}

impl Worker {
    /// Runs until the schedule is exhausted and the requests in flight are answered or timed out.
    pub async fn run(self) -> Stats {
        let mut stats = Stats::keeping_samples(self.spec.keep_samples);
        if self.spec.new_connection_per_request {
            self.per_request(&mut stats).await;
        } else {
            self.persistent(&mut stats).await;
        }
        stats
    }

    fn error(&self, stats: &mut Stats, kind: &str, n: u64) {
        stats.errors_n(kind, n);
        self.progress.errors.fetch_add(n, Ordering::Relaxed);
    }

    /// A request that was due but never written (its connection failed or was lost): an error of `kind`.
    fn not_sent(&self, stats: &mut Stats, kind: &str) {
        stats.not_sent += 1;
        self.error(stats, kind, 1);
    }

    /// TCP connect and TLS handshake within the timeout; returns the stream and the local address.
    async fn connect(&self, stats: &mut Stats) -> Result<(TlsStream<TcpStream>, String), String> {
        let t0 = Instant::now();
        let spec = &self.spec;
        let attempt = async {
            let tcp = TcpStream::connect(spec.target)
                .await
                .map_err(|e| io_kind("connect", &e))?;
            // Small requests, pipelined: Nagle would only add delay.
            let _ = tcp.set_nodelay(true);
            let local = tcp
                .local_addr()
                .map_or_else(|_| "127.0.0.1".to_owned(), |a| a.to_string());
            let tls = TlsConnector::from(spec.tls.clone())
                .connect(spec.server_name.clone(), tcp)
                .await
                .map_err(|e| io_kind("handshake", &e))?;
            Ok::<_, String>((tls, local))
        };
        match timeout(spec.timeout, attempt).await {
            Ok(Ok(ok)) => {
                stats.handshake(t0.elapsed());
                Ok(ok)
            }
            Ok(Err(kind)) => Err(kind),
            Err(_) => Err("handshake: timed out".into()),
        }
    }

    fn since(&self, slot: Slot) -> Instant {
        // With a rate, latency counts from the intended send time (no coordinated omission).
        if self.spec.rate.is_some() {
            slot.at
        } else {
            Instant::now()
        }
    }

    /// Interprets one frame; counts it.
    fn on_frame(
        &self,
        stats: &mut Stats,
        frame: Frame,
        pending: &PendingMap,
        ids: &Ids<'_>,
    ) -> Seen {
        let template = &self.spec.request;
        let m = match frame {
            Frame::Message(m) => m,
            Frame::Ping | Frame::Pong => return Seen::Nothing,
            Frame::Invalid { error, .. } => {
                self.error(stats, &format!("read: unparsable message ({error})"), 1);
                return Seen::Nothing;
            }
        };
        let Ok(cseq) = m.cseq() else {
            self.error(stats, "read: message without a valid CSeq", 1);
            return Seen::Nothing;
        };
        if !cseq.method.eq_ignore_ascii_case(&template.method) {
            // Answers to our ACK/BYE, or requests the server sends us.
            return Seen::Nothing;
        }
        let status = match m.status_code() {
            Some(s) if s < 200 => {
                stats.provisional += 1;
                return Seen::Nothing;
            }
            Some(s) => s.to_string(),
            None => "echo".to_owned(),
        };
        let Some(p) = lock(pending).remove(&cseq.seq) else {
            self.error(stats, "read: answer to no request in flight", 1);
            return Seen::Nothing;
        };
        stats.answer(&status, diagnostic_code(&m).as_deref(), p.since.elapsed());
        if status == "503" {
            stats.retry_after(retry_after(&m).as_deref());
        }
        self.progress.answered.fetch_add(1, Ordering::Relaxed);
        let mut close = Vec::new();
        if m.status_code().is_some() {
            template.write_close(&mut close, ids, cseq.seq, &m);
        }
        Seen::Final { close }
    }

    /// Persistent connections, reconnecting after a failure while there is work left.
    async fn persistent(&self, stats: &mut Stats) {
        let mut generation: u64 = 0;
        // Every worker connects at least once, even when the others already took all the requests: a run
        // with `--requests 0 --hold S` just opens and holds connections.
        while generation == 0 || !self.schedule.finished() {
            let (stream, local) = match self.connect(stats).await {
                Ok(s) => s,
                Err(kind) => {
                    // Every attempt counts: a failed connection takes the request it was opened for, so a
                    // server that refuses every connection ends the run like one that answers.
                    let pause = Instant::now() + RECONNECT_PAUSE;
                    let resume = match self.schedule.take() {
                        Some(slot) => {
                            self.not_sent(stats, &kind);
                            slot.at.max(pause)
                        }
                        None => {
                            if generation == 0 {
                                self.error(stats, &kind, 1);
                            }
                            pause
                        }
                    };
                    generation += 1;
                    tokio::select! {
                        _ = sleep_until(resume) => {}
                        _ = self.schedule.cancel.cancelled() => {}
                    }
                    continue;
                }
            };
            let ids = Ids {
                run: &self.run_id,
                conn: (self.id as u64) << 32 | generation,
                host: local,
            };
            generation += 1;
            self.drive(stream, &ids, stats).await;
        }
    }

    /// One persistent connection: a writer and a reader sharing the in-flight map and the window.
    async fn drive(&self, stream: TlsStream<TcpStream>, ids: &Ids<'_>, stats: &mut Stats) {
        let (rd, wr) = tokio::io::split(stream);
        let pending: PendingMap = Arc::default();
        let window = Arc::new(Semaphore::new(self.spec.window.max(1)));
        let done_sending = CancellationToken::new();
        let dead = CancellationToken::new();
        let (close_tx, close_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let mut wstats = Stats::new();
        let writer = self.writer(
            wr,
            ids,
            &pending,
            &window,
            close_rx,
            &done_sending,
            &dead,
            &mut wstats,
        );
        let reader = self.reader(
            rd,
            ids,
            &pending,
            &window,
            close_tx,
            &done_sending,
            &dead,
            stats,
        );
        tokio::join!(writer, reader);
        stats.merge(wstats);
    }

    #[allow(clippy::too_many_arguments)]
    async fn writer<S: AsyncWrite + AsyncRead>(
        &self,
        mut wr: WriteHalf<S>,
        ids: &Ids<'_>,
        pending: &PendingMap,
        window: &Semaphore,
        mut close_rx: mpsc::UnboundedReceiver<Vec<u8>>,
        done_sending: &CancellationToken,
        dead: &CancellationToken,
        stats: &mut Stats,
    ) {
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut cseq: u32 = 1;
        let mut held: Option<Slot> = None;
        let mut sending = true;
        loop {
            if sending && held.is_none() {
                held = self.schedule.take();
                if held.is_none() {
                    sending = false;
                    done_sending.cancel();
                }
            }
            let due = held.map(|s| s.at);
            tokio::select! {
                biased;
                _ = dead.cancelled() => break,
                close = close_rx.recv() => match close {
                    Some(bytes) => buf.extend_from_slice(&bytes),
                    // The reader is gone: nothing more to send.
                    None => break,
                },
                permit = async {
                    if let Some(at) = due {
                        sleep_until(at).await;
                    }
                    window.acquire().await
                }, if due.is_some() => {
                    let (Ok(permit), Some(slot)) = (permit, held.take()) else { break };
                    permit.forget();
                    self.push_request(&mut buf, ids, &mut cseq, slot, pending, stats);
                    // Batch whatever else is due and fits the window into the same write.
                    while let Ok(p) = window.try_acquire() {
                        match self.schedule.take() {
                            Some(s) if s.at <= Instant::now() => {
                                p.forget();
                                self.push_request(&mut buf, ids, &mut cseq, s, pending, stats);
                            }
                            Some(s) => {
                                held = Some(s);
                                break;
                            }
                            None => {
                                sending = false;
                                done_sending.cancel();
                                break;
                            }
                        }
                    }
                }
            }
            while let Ok(bytes) = close_rx.try_recv() {
                buf.extend_from_slice(&bytes);
            }
            if !buf.is_empty() {
                let res = async {
                    wr.write_all(&buf).await?;
                    wr.flush().await
                }
                .await;
                buf.clear();
                if let Err(e) = res {
                    self.error(stats, &io_kind("write", &e), 1);
                    dead.cancel();
                    break;
                }
            }
        }
        // A slot taken but never sent is lost work: count it.
        if held.is_some() {
            self.not_sent(stats, "not sent: connection lost");
        }
        done_sending.cancel();
        if !self.spec.hold.is_zero() && !dead.is_cancelled() {
            tokio::select! {
                _ = sleep(self.spec.hold) => {}
                _ = self.schedule.cancel.cancelled() => {}
            }
        }
        let _ = timeout(Duration::from_millis(500), wr.shutdown()).await;
    }

    fn push_request(
        &self,
        buf: &mut Vec<u8>,
        ids: &Ids<'_>,
        cseq: &mut u32,
        slot: Slot,
        pending: &PendingMap,
        stats: &mut Stats,
    ) {
        let seq = *cseq;
        // Step 2: an INVITE answered 2xx uses seq+1 for its BYE.
        *cseq = cseq.wrapping_add(2) & 0x7fff_ffff;
        self.spec.request.write(buf, ids, seq);
        lock(pending).insert(
            seq,
            Pending {
                since: self.since(slot),
            },
        );
        stats.sent += 1;
        self.progress.sent.fetch_add(1, Ordering::Relaxed);
    }

    #[allow(clippy::too_many_arguments)]
    async fn reader<S: AsyncRead + AsyncWrite>(
        &self,
        mut rd: ReadHalf<S>,
        ids: &Ids<'_>,
        pending: &PendingMap,
        window: &Semaphore,
        close_tx: mpsc::UnboundedSender<Vec<u8>>,
        done_sending: &CancellationToken,
        dead: &CancellationToken,
        stats: &mut Stats,
    ) {
        let mut framer = Framer::default();
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        let outcome: Result<(), String> = loop {
            let in_flight = lock(pending).len();
            if in_flight == 0 && done_sending.is_cancelled() {
                break Ok(());
            }
            let wait = if in_flight > 0 {
                self.spec.timeout
            } else {
                Duration::from_secs(3600)
            };
            let read = tokio::select! {
                r = timeout(wait, rd.read_buf(&mut rbuf)) => r,
                _ = done_sending.cancelled(), if in_flight == 0 => continue,
                _ = dead.cancelled() => break Err("write failed".into()),
            };
            match read {
                Err(_) => break Err("timeout: no answer".into()),
                Ok(Err(e)) => break Err(io_kind("read", &e)),
                Ok(Ok(0)) => break Err("read: closed by server".into()),
                Ok(Ok(_)) => {}
            }
            loop {
                match framer.decode(&mut rbuf) {
                    Ok(Some(frame)) => {
                        if let Seen::Final { close } = self.on_frame(stats, frame, pending, ids) {
                            window.add_permits(1);
                            if !close.is_empty() {
                                let _ = close_tx.send(close);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.error(stats, &format!("read: unframeable stream ({e})"), 1);
                        rbuf.clear();
                        break;
                    }
                }
            }
        };
        if let Err(kind) = outcome {
            let lost = {
                let mut p = lock(pending);
                let n = p.len() as u64;
                p.clear();
                n
            };
            // A clean close with nothing in flight (idle timeout) is not an error.
            if lost > 0 || !kind.contains("closed by server") {
                self.error(stats, &kind, lost.max(1));
            }
            dead.cancel();
        }
        window.close();
    }

    /// A new connection per request: connect, send one, read its final answer, acknowledge, close.
    async fn per_request(&self, stats: &mut Stats) {
        let mut generation: u64 = 0;
        while let Some(slot) = self.schedule.take() {
            sleep_until(slot.at).await;
            let (mut stream, local) = match self.connect(stats).await {
                Ok(s) => s,
                Err(kind) => {
                    self.not_sent(stats, &kind);
                    continue;
                }
            };
            let ids = Ids {
                run: &self.run_id,
                conn: (self.id as u64) << 32 | generation,
                host: local,
            };
            generation += 1;
            let pending: PendingMap = Arc::default();
            let mut buf = Vec::with_capacity(2048);
            let mut cseq = 1;
            self.push_request(&mut buf, &ids, &mut cseq, slot, &pending, stats);
            let res = async {
                stream.write_all(&buf).await?;
                stream.flush().await
            }
            .await;
            if let Err(e) = res {
                self.error(stats, &io_kind("write", &e), 1);
                continue;
            }
            match self.one_answer(&mut stream, &ids, &pending, stats).await {
                Ok(close) => {
                    if !close.is_empty() {
                        let _ = stream.write_all(&close).await;
                    }
                    let _ = timeout(Duration::from_millis(500), stream.shutdown()).await;
                }
                Err(kind) => self.error(stats, &kind, 1),
            }
        }
    }

    async fn one_answer(
        &self,
        stream: &mut TlsStream<TcpStream>,
        ids: &Ids<'_>,
        pending: &PendingMap,
        stats: &mut Stats,
    ) -> Result<Vec<u8>, String> {
        let mut framer = Framer::default();
        let mut rbuf = BytesMut::with_capacity(4096);
        let deadline = Instant::now() + self.spec.timeout;
        loop {
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                stream.read_buf(&mut rbuf),
            )
            .await
            {
                Err(_) => return Err("timeout: no answer".into()),
                Ok(Err(e)) => return Err(io_kind("read", &e)),
                Ok(Ok(0)) => return Err("read: closed by server".into()),
                Ok(Ok(_)) => {}
            }
            loop {
                match framer.decode(&mut rbuf) {
                    Ok(Some(frame)) => {
                        if let Seen::Final { close } = self.on_frame(stats, frame, pending, ids) {
                            return Ok(close);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(format!("read: unframeable stream ({e})")),
                }
            }
        }
    }
}
