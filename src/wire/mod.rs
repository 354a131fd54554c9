//! Seeing the wire: what edgesim says on its TLS connections, in the formats lab tools read.
//!
//! - [`keylog`]: the NSS key log (`SSLKEYLOGFILE`) that Wireshark and tshark decrypt TLS 1.2 and 1.3 with.
//! - [`pcap`]: decrypted SIP as pcapng with synthetic TCP segments between the real addresses, so Wireshark,
//!   tshark and sngrep show the ladder without keys.
//! - [`hep`]: every SIP message as HEP3 (Homer, sngrep) over UDP or TCP.
//! - [`metrics`]: Prometheus text exposition (`edgesim_<group>_<stat>`), one registry per Edge.
//! - [`taps`]: the one object the Edge and the outbound side call to feed all of these (and the web view).
//!
//! The sinks that write files or talk to collectors ([`pcap::PcapWriter`], [`hep::HepSender`]) own a
//! background worker fed by a bounded channel: a connection task never waits on a disk or a socket, only on
//! the channel (pcap: backpressure; HEP: a full queue drops and counts, because a collector can be away).

pub mod hep;
pub mod keylog;
pub mod metrics;
pub mod pcap;
pub mod segments;
pub mod taps;

pub use taps::{TapSinks, Taps};

use std::path::PathBuf;

/// Why a wire sink could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A file could not be created or written.
    #[error("{what} {}: {cause}; check that its directory exists and is writable", path.display())]
    File {
        /// What the file is for (`key log`, `pcap`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error (not a `source`: the message includes it).
        cause: std::io::Error,
    },
    /// The key log path is a symbolic link: secrets are not written through one.
    #[error(
        "key log {}: is a symbolic link; name the file itself (secrets are not written through a link)",
        .0.display()
    )]
    KeyLogSymlink(PathBuf),
    /// A `udp:HOST:PORT` / `tcp:HOST:PORT` collector address did not parse.
    #[error(
        "HEP collector {given:?}: {problem}; write udp:HOST:PORT or tcp:HOST:PORT (e.g. udp:127.0.0.1:9060)"
    )]
    HepAddress {
        /// What the user wrote.
        given: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A pcapng block could not be encoded.
    #[error("pcap {}: {cause}", path.display())]
    Pcap {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        cause: String,
    },
    /// The sink's worker has stopped (after an earlier error or a shutdown).
    #[error("the {0} writer has stopped")]
    Stopped(&'static str),
    /// A socket error (the metrics listener, the HEP collector).
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        cause: std::io::Error,
    },
}
