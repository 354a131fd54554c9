//! HEP3 (sipcapture's Extensible Encapsulation Protocol) for Homer and sngrep: every SIP message with its
//! addresses, ports, time, a capture agent id and the Call-ID as correlation id, over UDP or TCP.
//!
//! A HEP3 packet is `"HEP3"`, a 16-bit total length, then chunks of (vendor 0, type, length, value), all
//! big-endian. The chunks go in the order hep-c and captagent send them (family, protocol, ports, time,
//! protocol type, capture id, addresses, auth key, payload, correlation id), because some decoders (sngrep)
//! read that layout at fixed offsets instead of walking the chunks.
//!
//! [`HepSender`] never makes the caller wait: [`HepSender::message`] encodes and queues without blocking, a
//! full queue drops the message and counts it (a collector can be down or slow; the Edge must not be), and a
//! tokio task sends. Over TCP the packets follow each other on one stream, reconnecting after a failure.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use super::WireError;
pub use super::segments::Direction;

/// How packets reach the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HepTransport {
    /// One datagram per packet (Homer's and sngrep's default).
    Udp,
    /// Packets back to back on one TCP stream.
    Tcp,
}

/// A collector address as written on the command line: `udp:HOST:PORT` or `tcp:HOST:PORT` (an IPv6 host in
/// brackets: `udp:[::1]:9060`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepTarget {
    /// UDP or TCP.
    pub transport: HepTransport,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::str::FromStr for HepTarget {
    type Err = WireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| WireError::HepAddress {
            given: s.to_owned(),
            problem: problem.to_owned(),
        };
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("no transport: it must start with udp: or tcp:"))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => HepTransport::Udp,
            "tcp" => HepTransport::Tcp,
            _ => return Err(bad(&format!("unknown transport {scheme:?}"))),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("no port after the host"))?;
        let host = match host.strip_prefix('[') {
            Some(h) => h
                .strip_suffix(']')
                .ok_or_else(|| bad("an IPv6 address in [ ] has no closing ]"))?,
            None if host.contains(':') => {
                return Err(bad("an IPv6 address must be written in [ ]"));
            }
            None => host,
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port: u16 = port.parse().map_err(|_| {
            bad(&format!(
                "the port {port:?} is not a number from 1 to 65535"
            ))
        })?;
        if port == 0 {
            return Err(bad("the port 0 is not a collector's port"));
        }
        Ok(HepTarget {
            transport,
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for HepTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.transport {
            HepTransport::Udp => "udp",
            HepTransport::Tcp => "tcp",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}:[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}:{}:{}", self.host, self.port)
        }
    }
}

/// Chunk types (vendor 0) of the HEP3 specification.
mod chunk {
    pub const IP_FAMILY: u16 = 0x0001;
    pub const IP_PROTO: u16 = 0x0002;
    pub const SRC_IP4: u16 = 0x0003;
    pub const DST_IP4: u16 = 0x0004;
    pub const SRC_IP6: u16 = 0x0005;
    pub const DST_IP6: u16 = 0x0006;
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    pub const TIME_SEC: u16 = 0x0009;
    pub const TIME_USEC: u16 = 0x000a;
    pub const PROTO_TYPE: u16 = 0x000b;
    pub const CAPTURE_ID: u16 = 0x000c;
    pub const AUTH_KEY: u16 = 0x000e;
    pub const PAYLOAD: u16 = 0x000f;
    pub const CORRELATION_ID: u16 = 0x0011;
}

/// HEP's protocol type for SIP.
const PROTO_SIP: u8 = 1;
/// Address families as HEP writes them (the BSD values).
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// IP protocol of a TLS connection.
const IPPROTO_TCP: u8 = 6;

/// One SIP message to encapsulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepPacket<'a> {
    /// Sender's address.
    pub src: SocketAddr,
    /// Receiver's address.
    pub dst: SocketAddr,
    /// When it was sent or received.
    pub time: SystemTime,
    /// The SIP message.
    pub payload: &'a [u8],
    /// The Call-ID (HEP correlation id), if known.
    pub correlation_id: Option<&'a str>,
}

/// Why a packet could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// HEP3's length field is 16 bits.
    #[error("a HEP3 packet of {0} bytes is over the 65535 the format allows")]
    TooLarge(usize),
    /// One address is IPv4 and the other IPv6.
    #[error("source {0} and destination {1} are not of one IP family")]
    MixedFamilies(SocketAddr, SocketAddr),
}

fn put(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    // A chunk's value is at most the packet's length (checked by the caller), so it fits.
    out.extend_from_slice(&((6 + value.len()) as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// Encodes one HEP3 packet: `capture_id` names this agent in Homer, `auth_key` is the collector's password.
pub fn encode(
    p: &HepPacket<'_>,
    capture_id: u32,
    auth_key: Option<&str>,
) -> Result<Vec<u8>, EncodeError> {
    let (src_ip, dst_ip) = (p.src.ip().to_canonical(), p.dst.ip().to_canonical());
    let since = p
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(128 + p.payload.len());
    out.extend_from_slice(b"HEP3\0\0");
    let family = match (src_ip, dst_ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) => AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => AF_INET6,
        _ => return Err(EncodeError::MixedFamilies(p.src, p.dst)),
    };
    put(&mut out, chunk::IP_FAMILY, &[family]);
    put(&mut out, chunk::IP_PROTO, &[IPPROTO_TCP]);
    put(&mut out, chunk::SRC_PORT, &p.src.port().to_be_bytes());
    put(&mut out, chunk::DST_PORT, &p.dst.port().to_be_bytes());
    // Seconds since 1970 in 32 bits, as the format has them (until 2106).
    put(
        &mut out,
        chunk::TIME_SEC,
        &(since.as_secs() as u32).to_be_bytes(),
    );
    put(
        &mut out,
        chunk::TIME_USEC,
        &since.subsec_micros().to_be_bytes(),
    );
    put(&mut out, chunk::PROTO_TYPE, &[PROTO_SIP]);
    put(&mut out, chunk::CAPTURE_ID, &capture_id.to_be_bytes());
    match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(&mut out, chunk::SRC_IP4, &s.octets());
            put(&mut out, chunk::DST_IP4, &d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            put(&mut out, chunk::SRC_IP6, &s.octets());
            put(&mut out, chunk::DST_IP6, &d.octets());
        }
        _ => return Err(EncodeError::MixedFamilies(p.src, p.dst)),
    }
    let total = out.len()
        + auth_key.map_or(0, |k| 6 + k.len())
        + 6
        + p.payload.len()
        + p.correlation_id.map_or(0, |c| 6 + c.len());
    if total > usize::from(u16::MAX) {
        return Err(EncodeError::TooLarge(total));
    }
    if let Some(key) = auth_key {
        put(&mut out, chunk::AUTH_KEY, key.as_bytes());
    }
    put(&mut out, chunk::PAYLOAD, p.payload);
    if let Some(c) = p.correlation_id {
        put(&mut out, chunk::CORRELATION_ID, c.as_bytes());
    }
    let len = (out.len() as u16).to_be_bytes();
    out[4..6].copy_from_slice(&len);
    Ok(out)
}

/// How the sender identifies itself and how much it queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepConfig {
    /// Capture agent id (Homer shows it as the capture node).
    pub capture_id: u32,
    /// The collector's password (HEP auth key chunk), if it has one.
    pub auth_key: Option<String>,
    /// Packets queued before new ones are dropped.
    pub queue: usize,
}

impl Default for HepConfig {
    /// Capture id 2001 (an id of the sort Homer's examples use), no password, 4096 packets queued.
    fn default() -> Self {
        HepConfig {
            capture_id: 2001,
            auth_key: None,
            queue: 4096,
        }
    }
}

/// What the sender did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HepStats {
    /// Packets handed to the socket.
    pub sent: u64,
    /// Messages dropped because the queue was full.
    pub dropped_full: u64,
    /// Messages that could not be encoded (over 64 KiB).
    pub dropped_unencodable: u64,
    /// Packets lost to a socket error (collector down, connection reset).
    pub send_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    dropped_full: AtomicU64,
    dropped_unencodable: AtomicU64,
    send_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> HepStats {
        HepStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_unencodable: self.dropped_unencodable.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }
}

enum Cmd {
    Packet(Vec<u8>),
    Shutdown(oneshot::Sender<()>),
}

/// The handle connection tasks call (clone freely); a tokio task sends.
#[derive(Debug, Clone)]
pub struct HepSender {
    tx: mpsc::Sender<Cmd>,
    counters: Arc<Counters>,
    capture_id: u32,
    auth_key: Option<Arc<str>>,
}

/// How long one connect or write to a TCP collector may take, and the pause after a failure.
const TCP_TIMEOUT: Duration = Duration::from_secs(2);
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl HepSender {
    /// Resolves the collector and starts the sending task (a UDP socket is bound now; a TCP collector is
    /// connected on the first packet, so it may start after edgesim). Call inside a tokio runtime.
    pub async fn start(target: &HepTarget, config: HepConfig) -> Result<HepSender, WireError> {
        let io_err = |what: String| move |cause| WireError::Io { what, cause };
        let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(io_err(format!(
                "HEP collector {target}: cannot resolve the host"
            )))?
            .next()
            .ok_or_else(|| WireError::HepAddress {
                given: target.to_string(),
                problem: "the host has no address".into(),
            })?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let link = match target.transport {
            HepTransport::Udp => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(bind).await.map_err(io_err(format!(
                    "HEP collector {target}: cannot open a UDP socket"
                )))?;
                socket
                    .connect(addr)
                    .await
                    .map_err(io_err(format!("HEP collector {target}: cannot reach it")))?;
                Link::Udp(socket)
            }
            HepTransport::Tcp => Link::Tcp {
                addr,
                stream: None,
                retry_at: None,
            },
        };
        tokio::spawn(run(link, rx, counters.clone()));
        Ok(HepSender {
            tx,
            counters,
            capture_id: config.capture_id,
            auth_key: config.auth_key.map(Arc::from),
        })
    }

    /// Queues one SIP message on the connection between `local` and `remote` (never waits: a full queue
    /// drops it and counts it in [`HepStats::dropped_full`]).
    pub fn message(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        direction: Direction,
        payload: &[u8],
        call_id: Option<&str>,
    ) {
        let (src, dst) = match direction {
            Direction::In => (remote, local),
            Direction::Out => (local, remote),
        };
        let packet = HepPacket {
            src,
            dst,
            time: SystemTime::now(),
            payload,
            correlation_id: call_id,
        };
        let bytes = match encode(&packet, self.capture_id, self.auth_key.as_deref()) {
            Ok(b) => b,
            Err(e) => {
                self.counters
                    .dropped_unencodable
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "HEP: message not sent");
                return;
            }
        };
        if self.tx.try_send(Cmd::Packet(bytes)).is_err() {
            self.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Packets queued and not yet sent (for the sink backlog gauge).
    pub fn backlog(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The counters so far.
    pub fn stats(&self) -> HepStats {
        self.counters.snapshot()
    }

    /// Sends what is queued, closes the connection and stops the task; returns the final counters.
    pub async fn shutdown(&self) -> HepStats {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.counters.snapshot()
    }
}

enum Link {
    Udp(UdpSocket),
    Tcp {
        addr: SocketAddr,
        stream: Option<TcpStream>,
        /// After a failure, packets before this instant are dropped without a new connect attempt.
        retry_at: Option<Instant>,
    },
}

impl Link {
    async fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Udp(socket) => socket.send(packet).await.map(|_| ()),
            Link::Tcp {
                addr,
                stream,
                retry_at,
            } => {
                if stream.is_none() {
                    if retry_at.is_some_and(|t| Instant::now() < t) {
                        return Err(std::io::Error::other(
                            "collector unreachable, retrying soon",
                        ));
                    }
                    match tokio::time::timeout(TCP_TIMEOUT, TcpStream::connect(*addr)).await {
                        Ok(Ok(s)) => {
                            let _ = s.set_nodelay(true);
                            *stream = Some(s);
                            *retry_at = None;
                        }
                        Ok(Err(e)) => {
                            *retry_at = Some(Instant::now() + RETRY_AFTER);
                            return Err(e);
                        }
                        Err(_) => {
                            *retry_at = Some(Instant::now() + RETRY_AFTER);
                            return Err(std::io::ErrorKind::TimedOut.into());
                        }
                    }
                }
                let Some(s) = stream.as_mut() else {
                    return Err(std::io::ErrorKind::NotConnected.into());
                };
                let result = match tokio::time::timeout(TCP_TIMEOUT, s.write_all(packet)).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                };
                if result.is_err() {
                    // A partial write leaves the stream out of step: start again on a new connection.
                    *stream = None;
                }
                result
            }
        }
    }

    async fn close(&mut self) {
        if let Link::Tcp {
            stream: Some(s), ..
        } = self
        {
            let _ = s.shutdown().await;
        }
    }
}

async fn run(mut link: Link, mut rx: mpsc::Receiver<Cmd>, counters: Arc<Counters>) {
    let mut warned = false;
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Packet(p) => match link.send(&p).await {
                Ok(()) => {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    warned = false;
                }
                Err(e) => {
                    counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    if !warned {
                        tracing::warn!(error = %e, "HEP collector: cannot send (counting losses until it answers)");
                        warned = true;
                    }
                }
            },
            Cmd::Shutdown(done) => {
                link.close().await;
                let _ = done.send(());
                return;
            }
        }
    }
    link.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_packet_byte_for_byte() {
        let p = HepPacket {
            src: "127.0.0.2:40001".parse().unwrap(),
            dst: "127.0.0.1:5061".parse().unwrap(),
            time: SystemTime::UNIX_EPOCH + Duration::new(0x6500_0001, 123_456_789),
            payload: b"OPTIONS sip:a SIP/2.0\r\n\r\n",
            correlation_id: Some("c-1"),
        };
        let got = encode(&p, 0x0102_0304, Some("pw")).unwrap();
        let mut want: Vec<u8> = Vec::new();
        want.extend_from_slice(b"HEP3");
        want.extend_from_slice(&[0, 141]); // total length
        want.extend_from_slice(&[0, 0, 0, 1, 0, 7, 2]); // family IPv4
        want.extend_from_slice(&[0, 0, 0, 2, 0, 7, 6]); // TCP
        want.extend_from_slice(&[0, 0, 0, 7, 0, 8, 0x9c, 0x41]); // src port 40001
        want.extend_from_slice(&[0, 0, 0, 8, 0, 8, 0x13, 0xc5]); // dst port 5061
        want.extend_from_slice(&[0, 0, 0, 9, 0, 10, 0x65, 0, 0, 1]); // seconds
        want.extend_from_slice(&[0, 0, 0, 10, 0, 10, 0, 1, 0xe2, 0x40]); // 123456 µs
        want.extend_from_slice(&[0, 0, 0, 11, 0, 7, 1]); // SIP
        want.extend_from_slice(&[0, 0, 0, 12, 0, 10, 1, 2, 3, 4]); // capture id
        want.extend_from_slice(&[0, 0, 0, 3, 0, 10, 127, 0, 0, 2]);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 10, 127, 0, 0, 1]);
        want.extend_from_slice(&[0, 0, 0, 14, 0, 8, b'p', b'w']);
        want.extend_from_slice(&[0, 0, 0, 15, 0, 31]);
        want.extend_from_slice(b"OPTIONS sip:a SIP/2.0\r\n\r\n");
        want.extend_from_slice(&[0, 0, 0, 17, 0, 9, b'c', b'-', b'1']);
        assert_eq!(want.len(), 141);
        assert_eq!(got, want);
    }

    #[test]
    fn ipv6_and_ipv4_mapped_addresses() {
        let p = HepPacket {
            src: "[::1]:5061".parse().unwrap(),
            dst: "[2001:db8::7]:40000".parse().unwrap(),
            time: SystemTime::UNIX_EPOCH,
            payload: b"x",
            correlation_id: None,
        };
        let got = encode(&p, 1, None).unwrap();
        assert_eq!(&got[6..13], &[0, 0, 0, 1, 0, 7, 10]);
        let ips = &got[6 + 7 + 7 + 8 + 8 + 10 + 10 + 7 + 10..];
        assert_eq!(&ips[..6], &[0, 0, 0, 5, 0, 22]);
        assert_eq!(&ips[6..22], &std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(&ips[22..28], &[0, 0, 0, 6, 0, 22]);
        assert_eq!(&ips[44..], &[0, 0, 0, 15, 0, 7, b'x']);
        let mapped = HepPacket {
            src: "[::ffff:127.0.0.1]:5061".parse().unwrap(),
            dst: "127.0.0.2:1".parse().unwrap(),
            ..p.clone()
        };
        assert_eq!(encode(&mapped, 1, None).unwrap()[12], AF_INET);
        let mixed = HepPacket {
            dst: "127.0.0.2:1".parse().unwrap(),
            ..p
        };
        assert_eq!(
            encode(&mixed, 1, None).unwrap_err().to_string(),
            "source [::1]:5061 and destination 127.0.0.2:1 are not of one IP family"
        );
    }

    #[test]
    fn a_message_over_the_16_bit_length_is_refused() {
        let big = vec![b'x'; 65_500];
        let p = HepPacket {
            src: "127.0.0.2:1".parse().unwrap(),
            dst: "127.0.0.1:2".parse().unwrap(),
            time: SystemTime::UNIX_EPOCH,
            payload: &big,
            correlation_id: None,
        };
        assert!(matches!(
            encode(&p, 1, None),
            Err(EncodeError::TooLarge(n)) if n > 65535
        ));
        let fits = vec![b'x'; 65_400];
        let p = HepPacket {
            payload: &fits,
            ..p
        };
        let b = encode(&p, 1, None).unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])), b.len());
    }

    #[test]
    fn targets_parse_and_bad_ones_say_what_to_write() {
        let t: HepTarget = "udp:127.0.0.1:9060".parse().unwrap();
        assert_eq!(
            t,
            HepTarget {
                transport: HepTransport::Udp,
                host: "127.0.0.1".into(),
                port: 9060
            }
        );
        let t: HepTarget = "TCP:[::1]:9061".parse().unwrap();
        assert_eq!((t.transport, t.host.as_str()), (HepTransport::Tcp, "::1"));
        assert_eq!(t.to_string(), "tcp:[::1]:9061");
        let t: HepTarget = "udp:homer.lab:9060".parse().unwrap();
        assert_eq!(t.host, "homer.lab");
        for (given, problem) in [
            ("127.0.0.1:9060", "unknown transport \"127.0.0.1\""),
            ("homer", "no transport: it must start with udp: or tcp:"),
            ("sctp:h:1", "unknown transport \"sctp\""),
            ("udp:homer", "no port after the host"),
            ("udp::9060", "no host"),
            ("udp:h:x", "the port \"x\" is not a number from 1 to 65535"),
            (
                "udp:h:70000",
                "the port \"70000\" is not a number from 1 to 65535",
            ),
            ("udp:h:0", "the port 0 is not a collector's port"),
            ("udp:::1:9060", "an IPv6 address must be written in [ ]"),
            ("udp:[::1:9060", "an IPv6 address in [ ] has no closing ]"),
        ] {
            let e = given.parse::<HepTarget>().unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "HEP collector {given:?}: {problem}; write udp:HOST:PORT or tcp:HOST:PORT (e.g. udp:127.0.0.1:9060)"
                )
            );
        }
    }
}
