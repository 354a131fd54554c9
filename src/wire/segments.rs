//! Synthetic TCP for decrypted SIP: a connection's messages as Ethernet/IP/TCP frames with correct checksums
//! and sequence numbers, so Wireshark's TCP analysis reads them as a clean stream (handshake, data, close).
//!
//! Pure: the caller gives the initial sequence numbers and gets frames (bytes), no clock and no I/O.

use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

/// Who sent a message on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the peer (remote → local).
    In,
    /// Sent to the peer (local → remote).
    Out,
}

/// An end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// edgesim's end.
    Local,
    /// The peer's end.
    Remote,
}

impl Direction {
    fn sender(self) -> Side {
        match self {
            Direction::In => Side::Remote,
            Direction::Out => Side::Local,
        }
    }
}

impl Side {
    fn direction(self) -> Direction {
        match self {
            Side::Remote => Direction::In,
            Side::Local => Direction::Out,
        }
    }
}

/// The window every synthetic segment advertises (no window scaling).
const WINDOW: u16 = 65535;
/// Largest payload in one synthetic segment: a big message becomes several, as on a real wire.
pub const MAX_SEGMENT: usize = 16 * 1024;
/// When this much of one side's data is unacknowledged, the other side sends a pure ACK, so that the data
/// in flight never reaches the advertised window (Wireshark would flag "window full").
const ACK_EVERY: u32 = 32 * 1024;
/// Locally administered MAC addresses for the two ends.
const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const REMOTE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// One frame and the direction it travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Ethernet frame bytes.
    pub bytes: Vec<u8>,
    /// Which way it went.
    pub direction: Direction,
}

/// Why frames could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// One end is IPv4 and the other IPv6.
    #[error("local {local} and remote {remote} are not of one IP family")]
    MixedFamilies {
        /// The local address.
        local: SocketAddr,
        /// The remote address.
        remote: SocketAddr,
    },
    /// The frame builder refused (not expected with segments of at most [`MAX_SEGMENT`] bytes).
    #[error("cannot build a TCP frame: {0}")]
    Build(String),
}

/// The TCP state of one synthetic connection.
#[derive(Debug, Clone)]
pub struct TcpFlow {
    local: SocketAddr,
    remote: SocketAddr,
    /// Next sequence number each side sends.
    next_local: u32,
    next_remote: u32,
    /// The highest acknowledgement each side's data has received.
    acked_local: u32,
    acked_remote: u32,
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) as plain IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

const ACK: Flags = Flags {
    syn: false,
    ack: true,
    psh: false,
    fin: false,
};

impl TcpFlow {
    /// A connection opened by `opener` with a three-way handshake; `isn_local`/`isn_remote` are the initial
    /// sequence numbers. Returns the flow and the SYN, SYN-ACK and ACK frames.
    pub fn open(
        local: SocketAddr,
        remote: SocketAddr,
        opener: Side,
        isn_local: u32,
        isn_remote: u32,
    ) -> Result<(TcpFlow, Vec<Frame>), FrameError> {
        let (local, remote) = (canonical(local), canonical(remote));
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(FrameError::MixedFamilies { local, remote });
        }
        let mut flow = TcpFlow {
            local,
            remote,
            next_local: isn_local,
            next_remote: isn_remote,
            acked_local: isn_local,
            acked_remote: isn_remote,
        };
        let other = flow.other(opener);
        let syn = Flags {
            syn: true,
            ack: false,
            psh: false,
            fin: false,
        };
        let syn_ack = Flags { ack: true, ..syn };
        let mut frames = vec![flow.frame(opener, &syn, &[])?];
        flow.advance(opener, 1);
        frames.push(flow.frame(other, &syn_ack, &[])?);
        flow.advance(other, 1);
        frames.push(flow.frame(opener, &ACK, &[])?);
        Ok((flow, frames))
    }

    /// The local and remote addresses (IPv4-mapped IPv6 shown as IPv4).
    pub fn addresses(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }

    /// One message sent in `direction`: PSH/ACK segments of at most [`MAX_SEGMENT`] bytes, with a pure ACK
    /// from the receiver whenever [`ACK_EVERY`] bytes are unacknowledged.
    pub fn data(&mut self, direction: Direction, payload: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let sender = direction.sender();
        let receiver = self.other(sender);
        let push = Flags { psh: true, ..ACK };
        let mut frames = Vec::new();
        for chunk in payload.chunks(MAX_SEGMENT) {
            frames.push(self.frame(sender, &push, chunk)?);
            self.advance(sender, chunk.len() as u32);
            if self.unacked(sender) >= ACK_EVERY {
                frames.push(self.frame(receiver, &ACK, &[])?);
            }
        }
        Ok(frames)
    }

    /// The connection closed by `closer`: FIN/ACK, FIN/ACK, ACK.
    pub fn close(&mut self, closer: Side) -> Result<Vec<Frame>, FrameError> {
        let other = self.other(closer);
        let fin = Flags { fin: true, ..ACK };
        let mut frames = vec![self.frame(closer, &fin, &[])?];
        self.advance(closer, 1);
        frames.push(self.frame(other, &fin, &[])?);
        self.advance(other, 1);
        frames.push(self.frame(closer, &ACK, &[])?);
        Ok(frames)
    }

    fn other(&self, side: Side) -> Side {
        match side {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }

    fn advance(&mut self, side: Side, by: u32) {
        match side {
            Side::Local => self.next_local = self.next_local.wrapping_add(by),
            Side::Remote => self.next_remote = self.next_remote.wrapping_add(by),
        }
    }

    fn unacked(&self, side: Side) -> u32 {
        match side {
            Side::Local => self.next_local.wrapping_sub(self.acked_local),
            Side::Remote => self.next_remote.wrapping_sub(self.acked_remote),
        }
    }

    /// A frame from `from` with its current sequence number, acknowledging everything the other side sent.
    fn frame(&mut self, from: Side, flags: &Flags, payload: &[u8]) -> Result<Frame, FrameError> {
        let (src, dst, src_mac, dst_mac, seq, ack) = match from {
            Side::Local => (
                self.local,
                self.remote,
                LOCAL_MAC,
                REMOTE_MAC,
                self.next_local,
                self.next_remote,
            ),
            Side::Remote => (
                self.remote,
                self.local,
                REMOTE_MAC,
                LOCAL_MAC,
                self.next_remote,
                self.next_local,
            ),
        };
        if flags.ack {
            match from {
                Side::Local => self.acked_remote = ack,
                Side::Remote => self.acked_local = ack,
            }
        }
        let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => {
                return Err(FrameError::MixedFamilies {
                    local: self.local,
                    remote: self.remote,
                });
            }
        };
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, WINDOW);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.ack {
            tcp = tcp.ack(ack);
        }
        if flags.psh {
            tcp = tcp.psh();
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        let mut bytes = Vec::with_capacity(tcp.size(payload.len()));
        tcp.write(&mut bytes, payload)
            .map_err(|e| FrameError::Build(e.to_string()))?;
        Ok(Frame {
            bytes,
            direction: from.direction(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn tcp_of(f: &Frame) -> (u32, u32, bool, bool, bool, bool, usize, u16, u16) {
        let p = SlicedPacket::from_ethernet(&f.bytes).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("not TCP")
        };
        let payload = t.payload().len();
        (
            t.sequence_number(),
            t.acknowledgment_number(),
            t.syn(),
            t.ack(),
            t.psh(),
            t.fin(),
            payload,
            t.source_port(),
            t.destination_port(),
        )
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn handshake_data_and_close_carry_consistent_numbers() {
        let (mut flow, frames) = TcpFlow::open(
            addr("127.0.0.1:5061"),
            addr("127.0.0.2:40000"),
            Side::Remote,
            1000,
            5000,
        )
        .unwrap();
        let got: Vec<_> = frames.iter().map(tcp_of).collect();
        assert_eq!(
            got,
            vec![
                (5000, 0, true, false, false, false, 0, 40000, 5061),
                (1000, 5001, true, true, false, false, 0, 5061, 40000),
                (5001, 1001, false, true, false, false, 0, 40000, 5061),
            ]
        );
        assert_eq!(
            frames.iter().map(|f| f.direction).collect::<Vec<_>>(),
            [Direction::In, Direction::Out, Direction::In]
        );
        let f = flow.data(Direction::In, b"INVITE").unwrap();
        assert_eq!(
            tcp_of(&f[0]),
            (5001, 1001, false, true, true, false, 6, 40000, 5061)
        );
        let f = flow.data(Direction::Out, b"SIP/2.0 180").unwrap();
        assert_eq!(
            tcp_of(&f[0]),
            (1001, 5007, false, true, true, false, 11, 5061, 40000)
        );
        let f = flow.close(Side::Local).unwrap();
        let got: Vec<_> = f.iter().map(tcp_of).collect();
        assert_eq!(
            got,
            vec![
                (1012, 5007, false, true, false, true, 0, 5061, 40000),
                (5007, 1013, false, true, false, true, 0, 40000, 5061),
                (1013, 5008, false, true, false, false, 0, 5061, 40000),
            ]
        );
    }

    #[test]
    fn a_big_message_is_segmented_and_acknowledged_before_the_window_fills() {
        let (mut flow, _) = TcpFlow::open(
            addr("[::1]:5061"),
            addr("[::1]:40000"),
            Side::Remote,
            u32::MAX - 10,
            7,
        )
        .unwrap();
        let body = vec![b'x'; 3 * MAX_SEGMENT + 100];
        let frames = flow.data(Direction::Out, &body).unwrap();
        let got: Vec<_> = frames.iter().map(tcp_of).collect();
        let s0 = (u32::MAX - 10).wrapping_add(1);
        let seg = MAX_SEGMENT as u32;
        assert_eq!(
            got.iter().map(|t| (t.0, t.6)).collect::<Vec<_>>(),
            vec![
                (s0, MAX_SEGMENT),
                (s0.wrapping_add(seg), MAX_SEGMENT),
                // 32 KiB unacknowledged: the peer acknowledges (sequence wraps around 2^32 here).
                (8, 0),
                (s0.wrapping_add(2 * seg), MAX_SEGMENT),
                (s0.wrapping_add(3 * seg), 100),
            ]
        );
        assert_eq!(got[2].1, s0.wrapping_add(2 * seg));
        assert_eq!(frames[2].direction, Direction::In);
        let p = SlicedPacket::from_ethernet(&frames[0].bytes).unwrap();
        assert!(matches!(p.net, Some(NetSlice::Ipv6(_))));
    }

    #[test]
    fn ipv4_mapped_addresses_are_written_as_ipv4_and_mixed_families_refused() {
        let (flow, frames) = TcpFlow::open(
            addr("[::ffff:127.0.0.1]:5061"),
            addr("127.0.0.2:4000"),
            Side::Remote,
            1,
            2,
        )
        .unwrap();
        assert_eq!(flow.addresses().0, addr("127.0.0.1:5061"));
        let p = SlicedPacket::from_ethernet(&frames[0].bytes).unwrap();
        assert!(matches!(p.net, Some(NetSlice::Ipv4(_))));
        let e = TcpFlow::open(
            addr("[::1]:5061"),
            addr("127.0.0.2:4000"),
            Side::Remote,
            1,
            2,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "local [::1]:5061 and remote 127.0.0.2:4000 are not of one IP family"
        );
    }
}
