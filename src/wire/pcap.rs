//! Decrypted SIP as pcapng: every message in and out written as synthetic TCP segments ([`super::segments`])
//! between the connection's real addresses and ports, so Wireshark, tshark and sngrep show the ladder with no
//! keys. The peer's address is named by a name resolution block (the TLS peer's certificate name: Wireshark
//! shows it with network name resolution on, `tshark -N n`); frames carry the pcapng inbound/outbound flag.
//!
//! **Bounded**: a file is closed when the next message would take it past [`PcapLimits::max_bytes`] (a file
//! always takes at least one message, so one may pass the cap by one message). Then with
//! [`PcapLimits::keep`] > 0 it rotates like logrotate (`FILE` is always the newest, older ones are
//! `FILE.1` … `FILE.<keep>`, the oldest is deleted); with `keep == 0` writing stops at the cap and the file
//! stays as it is. A rotated file starts with its own section, interface and the names known so far;
//! connections already open continue in it without a handshake.
//!
//! **Never blocking on disk**: [`PcapWriter`] is a cheap handle over a bounded channel; a dedicated thread
//! writes. A full channel makes the caller wait (backpressure: nothing is dropped), the file is flushed
//! whenever the channel is empty, and [`PcapWriter::shutdown`] writes out everything queued. Files are
//! created with mode 0600: decrypted SIP may carry what the TLS was there to protect.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pcap_file::DataLink;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::name_resolution::{
    Ipv4Record, Ipv6Record, NameResolutionBlock, Record,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use tokio::sync::{mpsc, oneshot};

use super::WireError;
pub use super::segments::{Direction, Side};
use super::segments::{Frame, TcpFlow};

/// How big the pcapng output may grow, and how much may wait to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapLimits {
    /// Size at which a file is closed (rotated or, with `keep == 0`, the end of writing).
    pub max_bytes: u64,
    /// Rotated files kept besides the current one (`FILE.1` … `FILE.<keep>`); 0: stop at the cap.
    pub keep: usize,
    /// Commands queued for the writer thread before callers wait.
    pub queue: usize,
}

impl Default for PcapLimits {
    /// 100 MB files, 4 kept besides the current one (at most about 500 MB), 1024 queued commands.
    fn default() -> Self {
        PcapLimits {
            max_bytes: 100_000_000,
            keep: 4,
            queue: 1024,
        }
    }
}

/// What the writer thread did, returned by [`PcapWriter::shutdown`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcapStats {
    /// SIP messages written.
    pub messages: u64,
    /// Frames written (segments, handshakes, closes, acknowledgements).
    pub frames: u64,
    /// Files started after the first (rotations).
    pub rotations: u64,
    /// Messages not written because `keep == 0` and the cap was reached.
    pub over_cap: u64,
    /// Messages for a connection that was never opened (ignored).
    pub unknown_connection: u64,
}

enum Cmd {
    Opened {
        conn: u64,
        opener: Side,
        local: SocketAddr,
        remote: SocketAddr,
        peer_name: Option<String>,
        at: SystemTime,
    },
    Message {
        conn: u64,
        direction: Direction,
        bytes: Vec<u8>,
        at: SystemTime,
    },
    Closed {
        conn: u64,
        closer: Side,
        at: SystemTime,
    },
    Shutdown(oneshot::Sender<Result<PcapStats, WireError>>),
}

/// The handle connection tasks call: clone it freely; the writer thread stops on [`PcapWriter::shutdown`] or
/// when every handle is dropped (after writing what is queued).
#[derive(Debug, Clone)]
pub struct PcapWriter {
    tx: mpsc::Sender<Cmd>,
    path: PathBuf,
}

impl PcapWriter {
    /// Creates `path` (mode 0600, truncated), writes the pcapng header and starts the writer thread
    /// (synchronous: a bad path fails here, at start-up, with the file named).
    pub fn open(path: &Path, limits: PcapLimits) -> Result<PcapWriter, WireError> {
        let file = Output::create(path, &BTreeMap::new())?;
        let (tx, rx) = mpsc::channel(limits.queue.max(1));
        let worker = Worker {
            path: path.to_path_buf(),
            limits,
            out: Some(file),
            conns: HashMap::new(),
            names: BTreeMap::new(),
            last: Duration::ZERO,
            stats: PcapStats::default(),
            error: None,
        };
        std::thread::Builder::new()
            .name("edgesim-pcap".into())
            .spawn(move || worker.run(rx))
            .map_err(|cause| WireError::File {
                what: "pcap",
                path: path.to_path_buf(),
                cause,
            })?;
        Ok(PcapWriter {
            tx,
            path: path.to_path_buf(),
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A connection started: `opener` sent the SYN. `peer_name` (the peer certificate's name) names
    /// `remote`'s address in the file.
    pub async fn conn_opened(
        &self,
        conn: u64,
        opener: Side,
        local: SocketAddr,
        remote: SocketAddr,
        peer_name: Option<&str>,
    ) {
        self.send(Cmd::Opened {
            conn,
            opener,
            local,
            remote,
            peer_name: peer_name.map(str::to_owned),
            at: SystemTime::now(),
        })
        .await;
    }

    /// One whole SIP message (as framed, decrypted) on connection `conn`.
    pub async fn message(&self, conn: u64, direction: Direction, bytes: &[u8]) {
        self.send(Cmd::Message {
            conn,
            direction,
            bytes: bytes.to_vec(),
            at: SystemTime::now(),
        })
        .await;
    }

    /// The connection ended; `closer` sent the first FIN.
    pub async fn conn_closed(&self, conn: u64, closer: Side) {
        self.send(Cmd::Closed {
            conn,
            closer,
            at: SystemTime::now(),
        })
        .await;
    }

    /// Commands queued and not yet taken by the writer thread (for the sink backlog gauge).
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Writes out everything queued, closes the file and stops the thread. The first write error, if any,
    /// is returned here (the thread stops writing after it).
    pub async fn shutdown(&self) -> Result<PcapStats, WireError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Shutdown(tx))
            .await
            .map_err(|_| WireError::Stopped("pcap"))?;
        rx.await.map_err(|_| WireError::Stopped("pcap"))?
    }

    async fn send(&self, cmd: Cmd) {
        // After a shutdown the thread is gone: later messages have nowhere to go, by design.
        let _ = self.tx.send(cmd).await;
    }
}

/// A file that counts what goes through it: the size the cap is checked against.
struct Counting {
    inner: BufWriter<File>,
    bytes: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One open pcapng file.
struct Output {
    writer: PcapNgWriter<Counting>,
    packets: u64,
}

fn pcap_error(path: &Path, e: pcap_file::PcapError) -> WireError {
    WireError::Pcap {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

impl Output {
    /// Creates `path` with a section header, the one interface and a name block per known name.
    fn create(path: &Path, names: &BTreeMap<IpAddr, String>) -> Result<Output, WireError> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(|cause| WireError::File {
            what: "pcap",
            path: path.to_path_buf(),
            cause,
        })?;
        let section = SectionHeaderBlock {
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "edgesim {}",
                env!("CARGO_PKG_VERSION")
            )))],
            ..Default::default()
        };
        let counting = Counting {
            inner: BufWriter::new(file),
            bytes: 0,
        };
        let writer = PcapNgWriter::with_section_header(counting, section)
            .map_err(|e| pcap_error(path, e))?;
        let mut out = Output { writer, packets: 0 };
        out.write(path, interface())?;
        for (ip, name) in names {
            out.name(path, *ip, name)?;
        }
        Ok(out)
    }

    fn bytes(&self) -> u64 {
        self.writer.get_ref().bytes
    }

    fn name(&mut self, path: &Path, ip: IpAddr, name: &str) -> Result<(), WireError> {
        let record = match ip {
            IpAddr::V4(a) => Record::Ipv4(Ipv4Record {
                ip_addr: Cow::Owned(a.octets().to_vec()),
                names: vec![Cow::Owned(name.to_owned())],
            }),
            IpAddr::V6(a) => Record::Ipv6(Ipv6Record {
                ip_addr: Cow::Owned(a.octets().to_vec()),
                names: vec![Cow::Owned(name.to_owned())],
            }),
        };
        let block = NameResolutionBlock {
            records: vec![record],
            options: vec![],
        };
        self.write(path, block)
    }

    fn write<'a>(&mut self, path: &Path, block: impl PcapNgBlock<'a>) -> Result<(), WireError> {
        self.writer
            .write_pcapng_block(block)
            .map_err(|e| pcap_error(path, e))?;
        Ok(())
    }
}

/// The one interface: Ethernet, timestamps in nanoseconds (the unit pcap-file writes them in).
fn interface() -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Borrowed("edgesim-sip")),
            InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                "decrypted SIP in synthetic TCP segments",
            )),
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    }
}

/// The flags option of a frame: pcapng's inbound (1) / outbound (2) direction bits.
fn direction_flags(d: Direction) -> u32 {
    match d {
        Direction::In => 1,
        Direction::Out => 2,
    }
}

/// An enhanced packet block's size for `data` bytes with the flags option (header and fixed fields 28,
/// data padded to 4, flags option 8, end of options 4, trailer 4).
fn epb_len(data: usize) -> u64 {
    (28 + data.div_ceil(4) * 4 + 8 + 4 + 4) as u64
}

struct Worker {
    path: PathBuf,
    limits: PcapLimits,
    /// `None` after the cap (keep == 0) or an error.
    out: Option<Output>,
    conns: HashMap<u64, TcpFlow>,
    names: BTreeMap<IpAddr, String>,
    last: Duration,
    stats: PcapStats,
    error: Option<WireError>,
}

impl Worker {
    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        while let Some(cmd) = rx.blocking_recv() {
            if let Cmd::Shutdown(reply) = cmd {
                self.flush();
                let result = match self.error.take() {
                    Some(e) => Err(e),
                    None => Ok(self.stats.clone()),
                };
                let _ = reply.send(result);
                return;
            }
            if let Err(e) = self.handle(cmd) {
                tracing::error!(error = %e, "pcap writing stopped");
                self.out = None;
                self.error.get_or_insert(e);
            }
            if rx.is_empty() {
                self.flush();
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out
            && let Err(cause) = out.writer.get_mut().flush()
        {
            tracing::error!(error = %cause, "pcap writing stopped");
            self.out = None;
            self.error.get_or_insert(WireError::File {
                what: "pcap",
                path: self.path.clone(),
                cause,
            });
        }
    }

    /// Timestamps never go backwards in the file (commands from several tasks can race by microseconds).
    fn stamp(&mut self, at: SystemTime) -> Duration {
        let t = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last = self.last.max(t);
        self.last
    }

    fn handle(&mut self, cmd: Cmd) -> Result<(), WireError> {
        match cmd {
            Cmd::Opened {
                conn,
                opener,
                local,
                remote,
                peer_name,
                at,
            } => {
                let (flow, frames) =
                    TcpFlow::open(local, remote, opener, rand::random(), rand::random()).map_err(
                        |e| WireError::Pcap {
                            path: self.path.clone(),
                            cause: e.to_string(),
                        },
                    )?;
                let remote_ip = flow.addresses().1.ip();
                self.conns.insert(conn, flow);
                if let Some(name) = peer_name
                    && self.names.get(&remote_ip) != Some(&name)
                {
                    if let Some(out) = &mut self.out {
                        out.name(&self.path, remote_ip, &name)?;
                    }
                    self.names.insert(remote_ip, name);
                }
                let ts = self.stamp(at);
                self.frames(&frames, ts, false).map(|_| ())
            }
            Cmd::Message {
                conn,
                direction,
                bytes,
                at,
            } => {
                let ts = self.stamp(at);
                let Some(flow) = self.conns.get_mut(&conn) else {
                    self.stats.unknown_connection += 1;
                    return Ok(());
                };
                let frames = flow.data(direction, &bytes).map_err(|e| WireError::Pcap {
                    path: self.path.clone(),
                    cause: e.to_string(),
                })?;
                if self.frames(&frames, ts, true)? {
                    self.stats.messages += 1;
                }
                Ok(())
            }
            Cmd::Closed { conn, closer, at } => {
                let ts = self.stamp(at);
                let Some(mut flow) = self.conns.remove(&conn) else {
                    return Ok(());
                };
                let frames = flow.close(closer).map_err(|e| WireError::Pcap {
                    path: self.path.clone(),
                    cause: e.to_string(),
                })?;
                self.frames(&frames, ts, false).map(|_| ())
            }
            Cmd::Shutdown(_) => Ok(()),
        }
    }

    /// Writes `frames` (one message, or a handshake/close), rotating first if they would pass the cap.
    /// Returns whether they were written.
    fn frames(&mut self, frames: &[Frame], ts: Duration, message: bool) -> Result<bool, WireError> {
        let size: u64 = frames.iter().map(|f| epb_len(f.bytes.len())).sum();
        let full = self
            .out
            .as_ref()
            .is_some_and(|o| o.packets > 0 && o.bytes() + size > self.limits.max_bytes);
        if full {
            self.flush();
            if self.limits.keep == 0 {
                if self.out.take().is_some() {
                    tracing::warn!(path = %self.path.display(), max_bytes = self.limits.max_bytes, "pcap reached its size cap: writing stopped (keep = 0)");
                }
            } else {
                self.out = None;
                self.rotate()?;
                self.stats.rotations += 1;
            }
        }
        let Some(out) = &mut self.out else {
            if message {
                self.stats.over_cap += 1;
            }
            return Ok(false);
        };
        for f in frames {
            out.write(
                &self.path,
                EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: ts,
                    original_len: f.bytes.len() as u32,
                    data: Cow::Borrowed(&f.bytes),
                    options: vec![EnhancedPacketOption::Flags(direction_flags(f.direction))],
                },
            )?;
            out.packets += 1;
            self.stats.frames += 1;
        }
        Ok(true)
    }

    /// `FILE.<keep-1>` → `FILE.<keep>` … `FILE` → `FILE.1`, then a fresh `FILE` with the known names.
    fn rotate(&mut self) -> Result<(), WireError> {
        let numbered = |n: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let io_err = |path: PathBuf, cause| WireError::File {
            what: "pcap",
            path,
            cause,
        };
        let oldest = numbered(self.limits.keep);
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(oldest, e)),
        }
        for n in (1..self.limits.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1)).map_err(|e| io_err(from, e))?;
            }
        }
        std::fs::rename(&self.path, numbered(1)).map_err(|e| io_err(self.path.clone(), e))?;
        self.out = Some(Output::create(&self.path, &self.names)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_estimate_matches_what_pcap_file_writes() {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        w.write_pcapng_block(interface()).unwrap();
        for len in [0usize, 1, 3, 4, 5, 54, 1500] {
            let data = vec![0u8; len];
            let before = w.get_ref().len();
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_secs(1),
                original_len: len as u32,
                data: Cow::Borrowed(&data),
                options: vec![EnhancedPacketOption::Flags(direction_flags(Direction::In))],
            })
            .unwrap();
            assert_eq!((w.get_ref().len() - before) as u64, epb_len(len), "{len}");
        }
    }
}
