//! The Edge's file sinks (`log_file`, `events_file`), written by one background writer thread so that no
//! connection task ever waits for a disk.
//!
//! A decision is rendered once on the connection task: its record text into a reused buffer (the same text
//! goes to memory for [`super::Edge::log_records`] and to the log file); its event is moved to the writer,
//! which serialises it straight into its own batch buffer. Woken by an item less than [`GATHER`] after it went
//! idle (the Edge is busy), the writer lets a batch gather for [`GATHER`]; it then takes what is queued, appends it to one batch per file and writes each batch with one
//! `write` when the queue is empty (idle), when a batch reaches [`BATCH_BYTES`], or [`FLUSH_EVERY`] after the
//! last write, whichever comes first.
//!
//! Why a std thread and not a tokio task: file writes block, and the writer must make progress whatever the
//! runtime is doing — a current-thread runtime blocked on a full queue (backpressure) would otherwise wait for
//! a writer that can only run on that same thread. A thread of its own also keeps blocking writes out of
//! tokio's blocking pool, which the DNS resolver uses.
//!
//! Nothing is dropped: the queue is bounded ([`QUEUE`] items), and when it is full the connection task waits
//! for room (counted as a backpressure wait). A write that fails (disk full) loses the records of that batch
//! that did not reach the file: they are counted, the first error is kept, and [`Sinks::flush`] reports both;
//! the Edge keeps answering. The batch is kept as plain bytes and record ends rather than in a `BufWriter`, so
//! that a failed write says exactly which records were lost (a `BufWriter` keeps the failed bytes and retries
//! them with the next write).

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::diagnostics::DecisionEvent;

/// Items the queue holds before a connection task waits for the writer.
pub(super) const QUEUE: usize = 8192;
/// A batch this large is written without waiting for the queue to empty.
pub(super) const BATCH_BYTES: usize = 64 * 1024;
/// The longest time a queued record waits for its write while the queue never empties.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long the writer lets a batch gather after the first item wakes it (far below [`FLUSH_EVERY`]).
pub(super) const GATHER: Duration = Duration::from_millis(5);

/// What the connection tasks hand to the writer.
enum Item {
    /// A rendered log record (no trailing newline).
    Record(Arc<str>),
    /// Already-rendered text for the log file (a newline is added when it has none).
    Text(String),
    /// A decision event, serialised by the writer as one JSON line.
    Event(Box<DecisionEvent>),
    /// An already-serialised line for the events file (the watch list's `watch-list` events).
    EventLine(String),
    /// Write everything queued before this, sync the files, then answer.
    Flush(SyncSender<()>),
}

/// Counters shared by the connection tasks and the writer.
#[derive(Debug, Default)]
struct Counts {
    records_written: AtomicU64,
    records_lost: AtomicU64,
    events_written: AtomicU64,
    events_lost: AtomicU64,
    waits: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// What the sinks did, for the shutdown report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkReport {
    /// Log-file entries (records and raw text) written.
    pub records_written: u64,
    /// Log-file entries that could not be written.
    pub records_lost: u64,
    /// Event lines written.
    pub events_written: u64,
    /// Event lines that could not be written.
    pub events_lost: u64,
    /// How often a connection task waited because the queue was full.
    pub backpressure_waits: u64,
    /// The first write error, in words (with the file).
    pub first_error: Option<String>,
    /// Whether everything queued was written (or counted lost) within the wait.
    pub drained: bool,
}

impl SinkReport {
    /// The problems worth saying at shutdown, one sentence each; empty when all went well.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.records_lost > 0 || self.events_lost > 0 {
            out.push(format!(
                "{} log record(s) and {} event(s) could not be written ({}); the Edge kept answering",
                self.records_lost,
                self.events_lost,
                self.first_error.as_deref().unwrap_or("write error"),
            ));
        }
        if !self.drained {
            out.push(
                "the log and events writer did not finish in time: the last records may be missing"
                    .into(),
            );
        }
        out
    }
}

/// The background writer's handle: the queue's sending side and the counters.
#[derive(Debug)]
pub(super) struct Sinks {
    tx: Option<SyncSender<Item>>,
    log: bool,
    events: bool,
    counts: Arc<Counts>,
    thread: Option<JoinHandle<()>>,
}

impl Sinks {
    /// No file sinks: nothing is queued and no thread runs.
    pub(super) fn none() -> Sinks {
        Sinks {
            tx: None,
            log: false,
            events: false,
            counts: Arc::default(),
            thread: None,
        }
    }

    /// Starts the writer for the files given (already opened for append). Without any, no thread is started.
    pub(super) fn start(
        log: Option<(File, std::path::PathBuf)>,
        events: Option<(File, std::path::PathBuf)>,
    ) -> std::io::Result<Sinks> {
        if log.is_none() && events.is_none() {
            return Ok(Sinks::none());
        }
        let counts = Arc::<Counts>::default();
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (log_on, events_on) = (log.is_some(), events.is_some());
        let mut writer = Writer {
            log: log.map(|(f, p)| Batch::new(f, p)),
            events: events.map(|(f, p)| Batch::new(f, p)),
            counts: counts.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("edge-sinks".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Sinks {
            tx: Some(tx),
            log: log_on,
            events: events_on,
            counts,
            thread: Some(thread),
        })
    }

    /// Whether an events file is written.
    pub(super) fn events(&self) -> bool {
        self.events
    }

    /// Queues a rendered record for the log file.
    pub(super) fn record(&self, text: Arc<str>) {
        if self.log {
            self.send(Item::Record(text));
        }
    }

    /// Queues already-rendered text for the log file.
    pub(super) fn text(&self, text: String) {
        if self.log {
            self.send(Item::Text(text));
        }
    }

    /// Queues an event for the events file.
    pub(super) fn event(&self, event: DecisionEvent) {
        if self.events {
            self.send(Item::Event(Box::new(event)));
        }
    }

    /// Queues an already-serialised JSON line for the events file, in order with the decision events.
    pub(super) fn event_line(&self, line: String) {
        if self.events {
            self.send(Item::EventLine(line));
        }
    }

    /// Hands `item` to the writer; when the queue is full, waits for room (backpressure, never a drop).
    fn send(&self, item: Item) {
        let Some(tx) = &self.tx else { return };
        let item = match tx.try_send(item) {
            Ok(()) => return,
            Err(TrySendError::Full(item)) => item,
            Err(TrySendError::Disconnected(item)) => return self.lost(&item),
        };
        self.counts.waits.fetch_add(1, Ordering::Relaxed);
        // On a multi-thread runtime, tell tokio this worker blocks so its other tasks move elsewhere; a
        // current-thread runtime can simply block: the writer does not need it to make room.
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let sent = if multi {
            tokio::task::block_in_place(|| tx.send(item))
        } else {
            tx.send(item)
        };
        if let Err(mpsc::SendError(item)) = sent {
            self.lost(&item);
        }
    }

    /// The writer is gone (it panicked): the item is counted lost.
    fn lost(&self, item: &Item) {
        let counter = match item {
            Item::Record(_) | Item::Text(_) => &self.counts.records_lost,
            Item::Event(_) | Item::EventLine(_) => &self.counts.events_lost,
            Item::Flush(_) => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        note_error(&self.counts, "the log writer stopped".into());
    }

    /// Writes everything queued so far and syncs the files, waiting at most `wait`; then the counts.
    pub(super) fn flush(&self, wait: Duration) -> SinkReport {
        let drained = match &self.tx {
            None => true,
            Some(tx) => {
                let deadline = Instant::now() + wait;
                let (ack, done) = mpsc::sync_channel(1);
                let mut item = Item::Flush(ack);
                // Bounded: a full queue is retried until the deadline instead of waiting for ever.
                let queued = loop {
                    match tx.try_send(item) {
                        Ok(()) => break true,
                        Err(TrySendError::Full(i)) if Instant::now() < deadline => {
                            item = i;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(_) => break false,
                    }
                };
                queued
                    && done
                        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                        .is_ok()
            }
        };
        self.report(drained)
    }

    /// The counts so far.
    fn report(&self, drained: bool) -> SinkReport {
        let c = &self.counts;
        SinkReport {
            records_written: c.records_written.load(Ordering::Relaxed),
            records_lost: c.records_lost.load(Ordering::Relaxed),
            events_written: c.events_written.load(Ordering::Relaxed),
            events_lost: c.events_lost.load(Ordering::Relaxed),
            backpressure_waits: c.waits.load(Ordering::Relaxed),
            first_error: c.first_error.lock().ok().and_then(|e| e.clone()),
            drained,
        }
    }
}

impl Drop for Sinks {
    /// Closes the queue (the writer writes what is left and ends) and waits a bounded moment for it.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Keeps the first write error (later ones are usually the same disk-full), and says it once.
fn note_error(counts: &Counts, error: String) {
    if let Ok(mut first) = counts.first_error.lock()
        && first.is_none()
    {
        tracing::error!("{error}; the Edge keeps answering and counts what is lost");
        *first = Some(error);
    }
}

/// One file's pending bytes, with where each entry ends (to count exactly what a failed write lost).
struct Batch {
    file: File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn new(file: File, path: std::path::PathBuf) -> Batch {
        Batch {
            file,
            path,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            ends: Vec::with_capacity(256),
        }
    }

    /// Ends the entry being appended.
    fn end_entry(&mut self) {
        if self.buf.last() != Some(&b'\n') {
            self.buf.push(b'\n');
        }
        self.ends.push(self.buf.len());
    }

    /// Writes the batch; returns (entries written, entries lost, the error).
    fn write_out(&mut self) -> (u64, u64, Option<std::io::Error>) {
        if self.ends.is_empty() {
            return (0, 0, None);
        }
        let mut done = 0;
        let mut error = None;
        while done < self.buf.len() {
            match self.file.write(&self.buf[done..]) {
                Ok(0) => {
                    error = Some(std::io::Error::from(std::io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let lost = self.ends.iter().filter(|&&end| end > done).count() as u64;
        let written = self.ends.len() as u64 - lost;
        self.buf.clear();
        self.ends.clear();
        (written, lost, error)
    }
}

/// The writer thread's state.
struct Writer {
    log: Option<Batch>,
    events: Option<Batch>,
    counts: Arc<Counts>,
}

impl Writer {
    /// Takes items until every sender is gone, writing in batches.
    fn run(&mut self, rx: &Receiver<Item>) {
        // Parked only with both batches written: nothing waits on disk while the writer sleeps.
        let mut parked = Instant::now();
        while let Ok(item) = rx.recv() {
            let flush = matches!(item, Item::Flush(_));
            // Busy (parked for less than GATHER): let a batch gather. While the writer sleeps (rather than waits
            // on the queue), handing it an item costs a sender no wake-up, and the Edge's core no switch to this
            // thread per record. Quiet: write at once, so a record is on disk a moment after its answer.
            let busy = parked.elapsed() < GATHER;
            self.take(item);
            if busy && !flush {
                std::thread::sleep(GATHER);
            }
            let mut last_write = Instant::now();
            // Take whatever else is queued, writing when the queue is empty, a batch is full or it is time.
            loop {
                let big = [&self.log, &self.events]
                    .into_iter()
                    .flatten()
                    .any(|b| b.buf.len() >= BATCH_BYTES);
                if big || last_write.elapsed() >= FLUSH_EVERY {
                    self.write_out();
                    last_write = Instant::now();
                }
                match rx.try_recv() {
                    Ok(item) => self.take(item),
                    Err(TryRecvError::Empty) => {
                        self.write_out();
                        parked = Instant::now();
                        break;
                    }
                    Err(TryRecvError::Disconnected) => {
                        self.write_out();
                        return;
                    }
                }
            }
        }
        self.write_out();
    }

    /// Appends one item to its batch (or, for a flush, writes, syncs and answers).
    fn take(&mut self, item: Item) {
        match item {
            Item::Record(text) => {
                if let Some(b) = &mut self.log {
                    b.buf.extend_from_slice(text.as_bytes());
                    b.end_entry();
                }
            }
            Item::Text(text) => {
                if let Some(b) = &mut self.log {
                    b.buf.extend_from_slice(text.as_bytes());
                    b.end_entry();
                }
            }
            Item::EventLine(line) => {
                if let Some(b) = &mut self.events {
                    b.buf.extend_from_slice(line.as_bytes());
                    b.end_entry();
                }
            }
            Item::Event(event) => {
                if let Some(b) = &mut self.events {
                    let start = b.buf.len();
                    match serde_json::to_writer(&mut b.buf, &*event) {
                        Ok(()) => b.end_entry(),
                        Err(e) => {
                            b.buf.truncate(start);
                            self.counts.events_lost.fetch_add(1, Ordering::Relaxed);
                            note_error(
                                &self.counts,
                                format!("cannot serialise a decision event: {e}"),
                            );
                        }
                    }
                }
            }
            Item::Flush(ack) => {
                self.write_out();
                for b in [&self.log, &self.events].into_iter().flatten() {
                    if let Err(e) = b.file.sync_data() {
                        // A sync error is not a lost record (the write succeeded); it is still worth saying.
                        tracing::warn!(error = %e, file = %b.path.display(), "cannot sync a log file");
                    }
                }
                let _ = ack.send(());
            }
        }
    }

    /// Writes both batches, counting what was written and what was lost.
    fn write_out(&mut self) {
        let counts = &self.counts;
        for (batch, written, lost) in [
            (&mut self.log, &counts.records_written, &counts.records_lost),
            (
                &mut self.events,
                &counts.events_written,
                &counts.events_lost,
            ),
        ] {
            let Some(b) = batch else { continue };
            let (w, l, e) = b.write_out();
            written.fetch_add(w, Ordering::Relaxed);
            lost.fetch_add(l, Ordering::Relaxed);
            if let Some(e) = e {
                note_error(counts, format!("cannot write {}: {e}", b.path.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{EventContext, VerdictKind};

    fn event(n: u32) -> DecisionEvent {
        let ctx = EventContext {
            time: time::macros::datetime!(2026-12-02 13:00:00 UTC),
            remote: "127.0.0.1:5000".into(),
            peer_cert: Some("vcse.steven.lab".into()),
            method: "INVITE".into(),
            call_id: format!("call-{n}"),
            domain: Some("acano.steven.lab".into()),
        };
        DecisionEvent::for_request(ctx, VerdictKind::Reject)
    }

    fn open(path: &std::path::Path) -> (File, std::path::PathBuf) {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        (f, path.to_path_buf())
    }

    #[test]
    fn records_text_and_events_reach_their_files_in_order_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let (log, events) = (dir.path().join("edge.log"), dir.path().join("events.jsonl"));
        let sinks = Sinks::start(Some(open(&log)), Some(open(&events))).unwrap();
        sinks.record(Arc::from("TL WARN(TF_DIAG) one\nbody one"));
        sinks.text("TL INFO(TF_PROTOCOL) message\n".into());
        sinks.record(Arc::from("TL WARN(TF_DIAG) two\nbody two"));
        sinks.event(event(1));
        sinks.event(event(2));
        let report = sinks.flush(Duration::from_secs(5));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "TL WARN(TF_DIAG) one\nbody one\nTL INFO(TF_PROTOCOL) message\nTL WARN(TF_DIAG) two\nbody two\n"
        );
        let lines: Vec<String> = std::fs::read_to_string(&events)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines,
            [
                event(1).to_json_line().unwrap(),
                event(2).to_json_line().unwrap()
            ]
        );
        assert_eq!(
            report,
            SinkReport {
                records_written: 3,
                events_written: 2,
                drained: true,
                ..SinkReport::default()
            }
        );
        assert!(report.problems().is_empty());
    }

    #[test]
    fn a_full_disk_is_counted_and_reported_and_the_other_file_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl");
        // /dev/full: every write fails with ENOSPC, as on a full disk.
        let full = std::path::Path::new("/dev/full");
        let sinks = Sinks::start(Some(open(full)), Some(open(&events))).unwrap();
        for n in 0..10 {
            sinks.record(Arc::from(format!("record {n}").as_str()));
            sinks.event(event(n));
        }
        let report = sinks.flush(Duration::from_secs(5));
        assert_eq!(report.records_lost, 10);
        assert_eq!(report.records_written, 0);
        assert_eq!(report.events_written, 10);
        assert_eq!(
            std::fs::read_to_string(&events).unwrap().lines().count(),
            10
        );
        let error = report.first_error.clone().unwrap();
        assert!(
            error.starts_with("cannot write /dev/full: No space left on device"),
            "{error}"
        );
        assert_eq!(
            report.problems(),
            [format!(
                "10 log record(s) and 0 event(s) could not be written ({error}); the Edge kept answering"
            )]
        );
    }

    #[test]
    fn a_writer_that_cannot_keep_up_makes_the_sender_wait_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("slow.log");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opened read-write so that opening does not wait for a reader; writes block once the pipe (64 KiB)
        // is full, until the reader below starts.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let sinks = Arc::new(Sinks::start(Some((file, fifo.clone())), None).unwrap());
        let total = QUEUE + 4000;
        let sender = {
            let sinks = sinks.clone();
            std::thread::spawn(move || {
                for n in 0..total {
                    sinks.record(Arc::from(
                        format!("record {n:06} {}", "x".repeat(80)).as_str(),
                    ));
                }
            })
        };
        // The queue fills behind the blocked writer: the sender must wait rather than drop.
        let deadline = Instant::now() + Duration::from_secs(30);
        while sinks.counts.waits.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "the sender never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let f = std::fs::File::open(&fifo).unwrap();
            let mut lines = 0usize;
            let mut last = String::new();
            for line in std::io::BufReader::new(f).lines() {
                let line = line.unwrap();
                assert_eq!(line, format!("record {lines:06} {}", "x".repeat(80)));
                lines += 1;
                last = line;
                if lines == total {
                    break;
                }
            }
            (lines, last)
        });
        sender.join().unwrap();
        let report = sinks.flush(Duration::from_secs(30));
        let (lines, _) = reader.join().unwrap();
        assert_eq!(lines, total);
        assert_eq!(report.records_written, total as u64);
        assert_eq!(report.records_lost, 0);
        assert!(report.backpressure_waits > 0);
        assert!(report.drained);
    }

    #[test]
    fn dropping_the_sinks_writes_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("edge.log");
        let sinks = Sinks::start(Some(open(&log)), None).unwrap();
        for n in 0..100 {
            sinks.record(Arc::from(format!("r{n}").as_str()));
        }
        drop(sinks);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 100);
        assert!(text.ends_with("r99\n"));
    }
}
