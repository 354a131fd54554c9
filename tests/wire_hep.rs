//! HEP3 against an independent decoder: sngrep's HEP listener receives what [`HepSender`] sends (UDP
//! directly; TCP through a loopback collector that splits the stream by the HEP3 length and hands each packet
//! to sngrep), and tshark reads the pcap sngrep writes: every SIP message with its addresses, ports, time and
//! Call-ID. The auth key is checked by sngrep (a wrong one is refused).
#![allow(clippy::unwrap_used)]

#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use edgesim::wire::hep::{Direction, HepConfig, HepSender, HepStats, HepTarget};
use tokio::io::AsyncReadExt;
use wire_tools::{Sngrep, tshark};

const EDGE: &str = "127.0.0.1:5061";
const PEER: &str = "127.0.0.2:40001";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn sip(start: &str, call_id: &str, cseq: &str) -> Vec<u8> {
    format!(
        "{start}\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK77\r\n\
         From: <sip:2000@acano.steven.lab>;tag=a1\r\nTo: <sip:stejanss@skype.lab>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A short call: INVITE in, 180 and 200 out, ACK and BYE in, 200 out.
fn call(call_id: &str) -> Vec<(Direction, Vec<u8>)> {
    let invite = "INVITE sip:stejanss@skype.lab SIP/2.0";
    vec![
        (Direction::In, sip(invite, call_id, "1 INVITE")),
        (
            Direction::Out,
            sip("SIP/2.0 180 Ringing", call_id, "1 INVITE"),
        ),
        (Direction::Out, sip("SIP/2.0 200 OK", call_id, "1 INVITE")),
        (
            Direction::In,
            sip("ACK sip:stejanss@skype.lab SIP/2.0", call_id, "1 ACK"),
        ),
        (
            Direction::In,
            sip("BYE sip:stejanss@skype.lab SIP/2.0", call_id, "2 BYE"),
        ),
        (Direction::Out, sip("SIP/2.0 200 OK", call_id, "2 BYE")),
    ]
}

fn send_call(sender: &HepSender, call_id: &str) {
    for (d, m) in call(call_id) {
        sender.message(addr(EDGE), addr(PEER), d, &m, Some(call_id));
    }
}

const MARKER: &str = "end-marker";

/// Sends one more dialog (an OPTIONS with Call-ID [`MARKER`]) after everything else: loopback datagrams
/// reach sngrep's socket in the order sent, so once sngrep counts it, it has read all before it.
fn send_marker(port: u16, auth_key: Option<&str>) {
    let options = sip(
        "OPTIONS sip:stejanss@skype.lab SIP/2.0",
        MARKER,
        "1 OPTIONS",
    );
    let packet = edgesim::wire::hep::encode(
        &edgesim::wire::hep::HepPacket {
            src: addr(PEER),
            dst: addr(EDGE),
            time: SystemTime::now(),
            payload: &options,
            correlation_id: Some(MARKER),
        },
        1,
        auth_key,
    )
    .unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(&packet, ("127.0.0.1", port)).unwrap();
}

/// What tshark reads in sngrep's pcap: `src:port > dst:port method status call-id` per message.
fn decoded(pcap: &Path) -> Vec<String> {
    tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        &format!("sip && sip.Call-ID != \"{MARKER}\""),
        "-T",
        "fields",
        "-E",
        "separator=,",
        "-e",
        "ip.src",
        "-e",
        "udp.srcport",
        "-e",
        "ip.dst",
        "-e",
        "udp.dstport",
        "-e",
        "sip.Method",
        "-e",
        "sip.Status-Code",
        "-e",
        "sip.Call-ID",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

fn expected(call_id: &str) -> Vec<String> {
    let (inb, out) = (
        "127.0.0.2,40001,127.0.0.1,5061",
        "127.0.0.1,5061,127.0.0.2,40001",
    );
    vec![
        format!("{inb},INVITE,,{call_id}"),
        format!("{out},,180,{call_id}"),
        format!("{out},,200,{call_id}"),
        format!("{inb},ACK,,{call_id}"),
        format!("{inb},BYE,,{call_id}"),
        format!("{out},,200,{call_id}"),
    ]
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn sngrep_decodes_every_message_sent_over_udp_with_time_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let sngrep = Sngrep::start(dir.path(), None);
    let target: HepTarget = format!("udp:127.0.0.1:{}", sngrep.port).parse().unwrap();
    let sender = HepSender::start(&target, HepConfig::default())
        .await
        .unwrap();
    let before = SystemTime::now();
    send_call(&sender, "hep-udp-call-1");
    let stats = sender.shutdown().await;
    let after = SystemTime::now();
    assert_eq!(
        stats,
        HepStats {
            sent: 6,
            ..HepStats::default()
        }
    );
    send_marker(sngrep.port, None);
    let pcap = sngrep.finish(2);
    assert_eq!(decoded(&pcap), expected("hep-udp-call-1"));
    // The HEP time chunks became the frame times, to the microsecond.
    let times: Vec<f64> = tshark(&[
        "-r",
        pcap.to_str().unwrap(),
        "-Y",
        &format!("sip.Call-ID != \"{MARKER}\""),
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
    ])
    .lines()
    .map(|l| l.parse().unwrap())
    .collect();
    assert_eq!(times.len(), 6);
    for t in &times {
        assert!(
            *t >= epoch_secs(before) - 1e-6 && *t <= epoch_secs(after) + 1e-6,
            "{t} not within the sending"
        );
    }
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn sngrep_checks_the_auth_key() {
    let dir = tempfile::tempdir().unwrap();
    let sngrep = Sngrep::start(dir.path(), Some("s3cret"));
    let target: HepTarget = format!("udp:127.0.0.1:{}", sngrep.port).parse().unwrap();
    let wrong = HepSender::start(
        &target,
        HepConfig {
            auth_key: Some("guess".into()),
            ..HepConfig::default()
        },
    )
    .await
    .unwrap();
    send_call(&wrong, "hep-wrong-key");
    assert_eq!(wrong.shutdown().await.sent, 6);
    let right = HepSender::start(
        &target,
        HepConfig {
            auth_key: Some("s3cret".into()),
            ..HepConfig::default()
        },
    )
    .await
    .unwrap();
    send_call(&right, "hep-right-key");
    assert_eq!(right.shutdown().await.sent, 6);
    send_marker(sngrep.port, Some("s3cret"));
    let pcap = sngrep.finish(2);
    assert_eq!(decoded(&pcap), expected("hep-right-key"));
}

#[tokio::test]
async fn over_tcp_the_stream_carries_whole_packets_that_sngrep_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let sngrep = Sngrep::start(dir.path(), None);
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target: HepTarget = format!("tcp:{}", collector.local_addr().unwrap())
        .parse()
        .unwrap();
    let sender = HepSender::start(&target, HepConfig::default())
        .await
        .unwrap();
    send_call(&sender, "hep-tcp-call-1");
    let stats = sender.shutdown().await;
    assert_eq!(stats.sent, 6, "{stats:?}");

    // The collector: read the stream to its end, split it at each HEP3 length, relay to sngrep.
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), collector.accept())
        .await
        .unwrap()
        .unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .unwrap()
        .unwrap();
    let relay = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rest = &bytes[..];
    let mut packets = 0;
    while !rest.is_empty() {
        assert_eq!(
            &rest[..4],
            b"HEP3",
            "packet {packets} does not start with HEP3"
        );
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        assert!(len <= rest.len(), "packet {packets} is cut short");
        relay
            .send_to(&rest[..len], ("127.0.0.1", sngrep.port))
            .unwrap();
        rest = &rest[len..];
        packets += 1;
    }
    assert_eq!(packets, 6);
    send_marker(sngrep.port, None);
    let pcap = sngrep.finish(2);
    assert_eq!(decoded(&pcap), expected("hep-tcp-call-1"));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    // A TCP collector that is down (a closed port), and a queue of 2: message() never waits, the queue
    // fills before the task runs, and the rest is counted as dropped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target: HepTarget = format!("tcp:{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let sender = HepSender::start(
        &target,
        HepConfig {
            queue: 2,
            ..HepConfig::default()
        },
    )
    .await
    .unwrap();
    for i in 0..50 {
        sender.message(
            addr(EDGE),
            addr(PEER),
            Direction::In,
            &sip("OPTIONS sip:a SIP/2.0", &format!("q-{i}"), "1 OPTIONS"),
            None,
        );
    }
    let stats = sender.shutdown().await;
    assert_eq!(stats.sent, 0, "{stats:?}");
    assert!(stats.dropped_full > 0, "{stats:?}");
    // Every message is accounted for: refused by the closed port, or dropped at the full queue.
    assert_eq!(stats.send_errors + stats.dropped_full, 50, "{stats:?}");
}
