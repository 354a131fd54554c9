//! The decrypted-SIP pcapng against tshark: a call's messages over two connections (IPv4 and IPv6) come out
//! in order with their addresses, ports, methods, statuses and Call-ID; the TCP is clean (no analysis flags,
//! good checksums); the peer's certificate name from the name resolution block is shown; a big message is
//! reassembled; the size cap rotates (or stops) as documented; sngrep reads the file as one dialog.
#![allow(clippy::unwrap_used)]

#[path = "common/wire_tools.rs"]
mod wire_tools;

use std::net::SocketAddr;
use std::path::Path;

use edgesim::lab::peer::client::ExpresswayRequest;
use edgesim::wire::pcap::{Direction, PcapLimits, PcapWriter, Side};
use wire_tools::tshark;

const CALL_ID: &str = "f1b3ad5d-183b-4632-b210-c2f9bec71960";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn request(method: &str, cseq: u32, body: &str) -> Vec<u8> {
    let mut r = ExpresswayRequest::new(
        method,
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    r.call_id = CALL_ID.into();
    r.cseq = cseq;
    if method != "INVITE" {
        r.body = Some(bytes::Bytes::copy_from_slice(body.as_bytes()));
        if !body.is_empty() {
            r.content_type = Some("text/plain".into());
        }
    }
    r.build().to_vec()
}

fn response(status: &str, cseq: u32, method: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 {status}\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bK1\r\n\
         From: <sip:2000@acano.steven.lab>;tag=a1\r\nTo: <sip:stejanss@skype.lab>;tag=b2\r\n\
         Call-ID: {CALL_ID}\r\nCSeq: {cseq} {method}\r\nServer: RTC/6.0\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn fields(file: &Path, extra: &[&str], filter: &str, fields: &[&str]) -> Vec<String> {
    let mut args = vec!["-r", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-Y", filter, "-T", "fields"]);
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    tshark(&args).lines().map(str::to_owned).collect()
}

/// A call: INVITE, 180, 200, ACK on an IPv4 connection from vcse.steven.lab; BYE and its 200 on a second
/// connection over IPv6 from acano.steven.lab.
async fn write_call(writer: &PcapWriter) {
    let edge4 = addr("127.0.0.1:5061");
    let peer4 = addr("127.0.0.2:40001");
    let edge6 = addr("[::1]:5061");
    let peer6 = addr("[::1]:40002");
    writer
        .conn_opened(1, Side::Remote, edge4, peer4, Some("vcse.steven.lab"))
        .await;
    writer
        .message(1, Direction::In, &request("INVITE", 1, ""))
        .await;
    writer
        .message(1, Direction::Out, &response("180 Ringing", 1, "INVITE"))
        .await;
    writer
        .message(1, Direction::Out, &response("200 OK", 1, "INVITE"))
        .await;
    writer
        .message(1, Direction::In, &request("ACK", 1, ""))
        .await;
    writer
        .conn_opened(2, Side::Remote, edge6, peer6, Some("acano.steven.lab"))
        .await;
    writer
        .message(2, Direction::In, &request("BYE", 2, ""))
        .await;
    writer
        .message(2, Direction::Out, &response("200 OK", 2, "BYE"))
        .await;
    writer.conn_closed(2, Side::Remote).await;
    writer.conn_closed(1, Side::Local).await;
}

#[tokio::test]
async fn tshark_lists_every_message_in_order_with_clean_tcp_and_the_peer_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.pcapng");
    let writer = PcapWriter::open(&file, PcapLimits::default()).unwrap();
    write_call(&writer).await;
    let stats = writer.shutdown().await.unwrap();
    assert_eq!(stats.messages, 6);
    // 2 handshakes and 2 closes of 3 frames, and 6 messages of one segment.
    assert_eq!(stats.frames, 18);

    let got = fields(
        &file,
        &[],
        "sip",
        &[
            "frame.number",
            "ip.src",
            "ipv6.src",
            "tcp.srcport",
            "ip.dst",
            "ipv6.dst",
            "tcp.dstport",
            "sip.Method",
            "sip.Status-Code",
            "sip.Call-ID",
        ],
    );
    let c = CALL_ID;
    assert_eq!(
        got,
        [
            format!("4\t127.0.0.2\t\t40001\t127.0.0.1\t\t5061\tINVITE\t\t{c}"),
            format!("5\t127.0.0.1\t\t5061\t127.0.0.2\t\t40001\t\t180\t{c}"),
            format!("6\t127.0.0.1\t\t5061\t127.0.0.2\t\t40001\t\t200\t{c}"),
            format!("7\t127.0.0.2\t\t40001\t127.0.0.1\t\t5061\tACK\t\t{c}"),
            format!("11\t\t::1\t40002\t\t::1\t5061\tBYE\t\t{c}"),
            format!("12\t\t::1\t5061\t\t::1\t40002\t\t200\t{c}"),
        ]
    );

    // Wireshark's TCP analysis finds nothing to flag (handshakes, sequence and acknowledgement numbers).
    assert_eq!(
        fields(&file, &[], "tcp.analysis.flags", &["frame.number"]),
        Vec::<String>::new()
    );
    // Every frame's IPv4 and TCP checksums verify.
    let checks = [
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
    ];
    let tcp_status = fields(&file, &checks, "tcp", &["tcp.checksum.status"]);
    assert_eq!(tcp_status, vec!["1".to_string(); 18], "1 = Good");
    let ip_status = fields(&file, &checks, "ip", &["ip.checksum.status"]);
    assert_eq!(ip_status, vec!["1".to_string(); 10], "1 = Good");
    // Directions travel in the pcapng flags: inbound 1, outbound 2.
    const IN: &str = "0x00000001";
    const OUT: &str = "0x00000002";
    assert_eq!(
        fields(&file, &[], "sip", &["frame.packet_flags_direction"]),
        [IN, OUT, OUT, IN, IN, OUT]
    );
    // The name resolution block names each peer's address after its certificate.
    let named = fields(
        &file,
        &["-N", "n"],
        "sip.Method",
        &["ip.src_host", "ipv6.src_host"],
    );
    assert_eq!(
        named,
        [
            "vcse.steven.lab\t",
            "vcse.steven.lab\t",
            "\tacano.steven.lab"
        ]
    );
}

#[tokio::test]
async fn a_big_message_is_segmented_and_reassembled_without_analysis_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.pcapng");
    let writer = PcapWriter::open(&file, PcapLimits::default()).unwrap();
    writer
        .conn_opened(
            7,
            Side::Local,
            addr("127.0.0.1:41000"),
            addr("127.0.0.3:5061"),
            None,
        )
        .await;
    let body = "x".repeat(60_000);
    writer
        .message(7, Direction::Out, &request("MESSAGE", 1, &body))
        .await;
    writer
        .message(7, Direction::In, &response("200 OK", 1, "MESSAGE"))
        .await;
    writer.conn_closed(7, Side::Local).await;
    writer.shutdown().await.unwrap();

    let got = fields(
        &file,
        &[],
        "sip",
        &["sip.Method", "sip.Status-Code", "sip.Content-Length"],
    );
    assert_eq!(got, ["MESSAGE\t\t60000", "\t200\t0"]);
    assert_eq!(
        fields(&file, &[], "tcp.analysis.flags", &["frame.number"]),
        Vec::<String>::new()
    );
    // The message went out in several segments.
    let segments = fields(
        &file,
        &[],
        "tcp.len > 0 && ip.src == 127.0.0.1",
        &["tcp.len"],
    );
    assert!(segments.len() >= 4, "{segments:?}");
}

fn sip_count(file: &Path) -> usize {
    fields(file, &[], "sip", &["sip.Call-ID"]).len()
}

#[tokio::test]
async fn the_cap_rotates_keeping_n_files_each_readable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rot.pcapng");
    let limits = PcapLimits {
        max_bytes: 4000,
        keep: 2,
        queue: 4,
    };
    let writer = PcapWriter::open(&file, limits).unwrap();
    writer
        .conn_opened(
            1,
            Side::Remote,
            addr("127.0.0.1:5061"),
            addr("127.0.0.2:40001"),
            Some("vcse.steven.lab"),
        )
        .await;
    let options = request("OPTIONS", 1, "");
    for _ in 0..30 {
        writer.message(1, Direction::In, &options).await;
    }
    let stats = writer.shutdown().await.unwrap();
    assert_eq!(stats.messages, 30);
    assert!(stats.rotations >= 3, "{stats:?}");

    let rotated = |n: usize| dir.path().join(format!("rot.pcapng.{n}"));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists(), "only keep = 2 rotated files stay");
    let one_message = options.len() as u64 + 200;
    for f in [file.clone(), rotated(1), rotated(2)] {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(len <= limits.max_bytes + one_message, "{f:?}: {len}");
        // Each file is a pcapng of its own, with SIP in it and the peer's name from its own NRB.
        let named = fields(&f, &["-N", "n"], "sip", &["ip.src_host"]);
        assert!(!named.is_empty(), "{f:?}");
        assert!(named.iter().all(|n| n == "vcse.steven.lab"), "{named:?}");
    }
}

#[tokio::test]
async fn keep_zero_stops_at_the_cap_and_leaves_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cap.pcapng");
    let limits = PcapLimits {
        max_bytes: 4000,
        keep: 0,
        queue: 16,
    };
    let writer = PcapWriter::open(&file, limits).unwrap();
    writer
        .conn_opened(
            1,
            Side::Remote,
            addr("127.0.0.1:5061"),
            addr("127.0.0.2:40001"),
            None,
        )
        .await;
    let options = request("OPTIONS", 1, "");
    for _ in 0..30 {
        writer.message(1, Direction::In, &options).await;
    }
    let stats = writer.shutdown().await.unwrap();
    assert_eq!(stats.rotations, 0);
    assert!(stats.over_cap > 0, "{stats:?}");
    assert_eq!(stats.messages + stats.over_cap, 30);
    assert!(!dir.path().join("cap.pcapng.1").exists());
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(len <= limits.max_bytes, "{len}");
    assert_eq!(sip_count(&file) as u64, stats.messages);
}

#[tokio::test]
async fn an_unwritable_path_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-dir").join("x.pcapng");
    let e = PcapWriter::open(&file, PcapLimits::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("pcap "), "{e}");
    assert!(e.contains("no-such-dir"), "{e}");
    assert!(e.contains("check that its directory exists"), "{e}");
}

#[tokio::test]
async fn sngrep_reads_the_file_as_one_dialog_of_six_messages() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.pcapng");
    let writer = PcapWriter::open(&file, PcapLimits::default()).unwrap();
    write_call(&writer).await;
    writer.shutdown().await.unwrap();
    // sngrep reads the file, counts the dialogs it finds and writes their SIP packets out again.
    let out = dir.path().join("sngrep.pcap");
    let run = std::process::Command::new(wire_tools::require("sngrep"))
        .args(["-N", "-I"])
        .arg(&file)
        .arg("-O")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&run.stdout).replace('\r', "\n");
    assert!(run.status.success(), "sngrep failed: {said}");
    assert_eq!(
        said.trim_end().lines().last(),
        Some("Dialog count: 1"),
        "{said}"
    );
    assert_eq!(
        fields(
            &out,
            &[],
            "sip",
            &["sip.Method", "sip.Status-Code", "sip.Call-ID"]
        ),
        [
            format!("INVITE\t\t{CALL_ID}"),
            format!("\t180\t{CALL_ID}"),
            format!("\t200\t{CALL_ID}"),
            format!("ACK\t\t{CALL_ID}"),
            format!("BYE\t\t{CALL_ID}"),
            format!("\t200\t{CALL_ID}"),
        ]
    );
}
