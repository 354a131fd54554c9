//! The Edge on the wire as a real Skype for Business Edge (issue 14), over real TLS on loopback: the seed's 504
//! header by header, the diagnostic headers the peer gets, the version profiles' `Server`, keep-alive (the
//! CRLF pong and the `ms-keep-alive` answer), and the body limit named after `MaxServerMessageBodySizeKb`.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use edge_lab::*;
use edgesim::config::{DiagnosticHeaders, EdgeVersion};
use edgesim::lab::peer::client::ExpresswayRequest;
use edgesim::sip::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The seed's 504 (the Expressway-E's log of what the Edge sent), its folded lines joined as the document's
/// line wrapping broke them (`egress-` + `proxy-call-id`, `ms-received-` + `port`).
const SEED_504: &str = "SIP/2.0 504 Server time-out\r\n\
Via: SIP/2.0/TLS 10.48.36.47:5061; egress-proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7; rport; received=10.48.36.47; ms-received-port=25002;ms-received-cid=100\r\n\
Via: SIP/2.0/TLS 10.48.36.46:5061; egress-zone=TraversalZoneClient1; branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486; proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119;ingress-zone=TraversalZoneServer1\r\n\
Via: SIP/2.0/TLS 10.48.54.160:52768; branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3; received=10.48.54.160; ingress-zone=NeighborZoneAcano1SIP\r\n\
Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n\
CSeq: 2066245576 INVITE\r\n\
From: \"DX70 Steven\" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n\
To: <sip:stejanss@skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882\r\n\
Server: RTC/6.0\r\n\
Content-Length: 0\r\n\r\n";

/// The INVITE the seed's 504 answers, as the Expressway-E sent it: the same Vias before the Edge's marks, the
/// same Call-ID, CSeq, From and To. The seed's top Via lost its branch in the document; one is added here (and
/// in the seed's copy the comparison makes).
fn seed_invite() -> String {
    "INVITE sip:stejanss@skype.lab SIP/2.0\r\n\
Via: SIP/2.0/TLS 10.48.36.47:5061; egress-proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7; branch=z9hG4bKseed504; rport\r\n\
Via: SIP/2.0/TLS 10.48.36.46:5061; egress-zone=TraversalZoneClient1; branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486; proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119;ingress-zone=TraversalZoneServer1\r\n\
Via: SIP/2.0/TLS 10.48.54.160:52768; branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3; received=10.48.54.160; ingress-zone=NeighborZoneAcano1SIP\r\n\
Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n\
CSeq: 2066245576 INVITE\r\n\
From: \"DX70 Steven\" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n\
To: <sip:stejanss@skype.lab>\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:2000@10.48.36.47:5061;transport=tls>\r\n\
Content-Length: 0\r\n\r\n"
        .to_owned()
}

/// A message's header lines in order, as (name, value).
fn lines(raw: &str) -> Vec<(String, String)> {
    raw.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_owned(), v.trim_start().to_owned())
        })
        .collect()
}

fn is_upper_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

#[tokio::test]
async fn the_bare_504_matches_the_seeds_header_by_header() {
    // The seed's lab: acano.steven.lab's SRV points at vcse.steven.lab (Rule 1 fails); a real Edge's default
    // sends the peer no diagnostic header.
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |c| {
        c.faithful = true
    })
    .await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let r = peer.request(seed_invite().as_bytes(), T).await.unwrap();
    let ours = text(r.as_bytes());
    assert!(
        ours.starts_with("SIP/2.0 504 Server time-out\r\n"),
        "{ours}"
    );
    let ours = lines(&ours);
    let seed = lines(SEED_504);
    let names = |l: &[(String, String)]| l.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&ours),
        names(&seed),
        "the same headers in the same order"
    );
    for ((name, got), (_, want)) in ours.iter().zip(&seed) {
        if name == "To" {
            let (base, tag) = got.split_once(";tag=").unwrap();
            let (seed_base, seed_tag) = want.split_once(";tag=").unwrap();
            assert_eq!(base, seed_base);
            assert!(is_upper_hex(tag, 32), "the Edge's To tag: {tag}");
            assert!(is_upper_hex(seed_tag, 32));
        }
    }
    // The top Via: the sender's, then exactly the seed's marks with this connection's values; rport untouched.
    let cid = ours[0].1.rsplit_once(";ms-received-cid=").unwrap().1;
    assert!(
        !cid.is_empty()
            && cid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()),
        "{cid}"
    );
    let seed_top = seed[0]
        .1
        .replace("; rport;", "; branch=z9hG4bKseed504; rport;")
        .replace("received=10.48.36.47", "received=127.0.0.1")
        .replace(
            "ms-received-port=25002",
            &format!("ms-received-port={port}"),
        )
        .replace("ms-received-cid=100", &format!("ms-received-cid={cid}"));
    assert_eq!(ours[0].1, seed_top);
    assert!(
        ours[0]
            .1
            .contains("; rport; received=127.0.0.1; ms-received-port=")
    );
    // Every other header as the seed has it, byte for byte (the request carried the seed's values).
    for i in 1..ours.len() {
        if ours[i].0 != "To" {
            assert_eq!(ours[i], seed[i]);
        }
    }
    // The record is the seed's too.
    let records = lab.edge.log_records();
    assert!(
        records.iter().any(|r| r.contains(
            "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
        )),
        "{records:?}"
    );
    lab.stop().await;
}

async fn refusal_with(mode: Option<DiagnosticHeaders>, faithful: bool) -> Message {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |c| {
        c.faithful = faithful;
        c.edge.diagnostic_headers = mode;
    })
    .await;
    let mut peer = lab.peer(&["vcse.steven.lab"]).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    lab.stop().await;
    r
}

const DIAG_1009: &str = "1009;reason=\"No match for domain in DNS SRV results\";domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\"";

#[tokio::test]
async fn diagnostic_headers_internal_public_and_none() {
    let r = refusal_with(None, false).await;
    assert_eq!(
        header(&r, "ms-diagnostics").unwrap(),
        format!("{DIAG_1009};source=\"sip.skype.lab\"")
    );
    assert_eq!(header(&r, "ms-diagnostics-public").unwrap(), DIAG_1009);
    let r = refusal_with(Some(DiagnosticHeaders::Public), false).await;
    assert_eq!(header(&r, "ms-diagnostics"), None);
    assert_eq!(header(&r, "ms-diagnostics-public").unwrap(), DIAG_1009);
    assert_eq!(
        r.headers()
            .filter(|h| h.name.eq_ignore_ascii_case(b"ms-diagnostics-public"))
            .count(),
        1,
        "at most one ms-diagnostics-public"
    );
    // --faithful without a setting: a real Edge's default, nothing.
    for (mode, faithful) in [(None, true), (Some(DiagnosticHeaders::None), false)] {
        let r = refusal_with(mode, faithful).await;
        assert_eq!(header(&r, "ms-diagnostics"), None);
        assert_eq!(header(&r, "ms-diagnostics-public"), None);
        assert_eq!(r.status_code(), Some(504));
    }
    // The setting wins over faithful.
    let r = refusal_with(Some(DiagnosticHeaders::Internal), true).await;
    assert!(header(&r, "ms-diagnostics").is_some());
}

#[tokio::test]
async fn each_version_profile_sets_the_server_header() {
    for (version, server) in [
        (EdgeVersion::Lync2013, "RTC/5.0"),
        (EdgeVersion::Sfb2015, "RTC/6.0"),
        (EdgeVersion::Sfb2019, "RTC/7.0"),
        (EdgeVersion::Sfbse, "RTC/7.0"),
    ] {
        let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
            c.edge.version = version;
        })
        .await;
        let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
        let opt = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
        let r = peer.request(&opt.build(), T).await.unwrap();
        assert_eq!(r.status_code(), Some(200));
        assert_eq!(header(&r, "Server").as_deref(), Some(server), "{version:?}");
        lab.stop().await;
    }
    // An explicit server_header still wins.
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.edge.version = EdgeVersion::Lync2013;
        c.edge.server_header = Some("RTC/6.0.9319.0".into());
    })
    .await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let opt = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    let r = peer.request(&opt.build(), T).await.unwrap();
    assert_eq!(header(&r, "Server").as_deref(), Some("RTC/6.0.9319.0"));
    lab.stop().await;
}

#[tokio::test]
async fn a_crlfcrlf_ping_gets_a_crlf_pong_and_ms_keep_alive_gets_the_uas_answer() {
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    // A raw TLS client, to see the pong's bytes (the lab's peer client skips keep-alives).
    let id = lab.cert(edgesim::pki::LeafSpec::new("vcse.acano.steven.lab"));
    let config = edgesim::pki::client_config(Some(&id)).unwrap();
    let tcp = tokio::net::TcpStream::connect(lab.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("sip.skype.lab").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"\r\n\r\n").await.unwrap();
    tls.flush().await.unwrap();
    let mut pong = [0u8; 16];
    let n = tokio::time::timeout(T, tls.read(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong[..n], b"\r\n", "RFC 5626 §4.4.1: one CRLF");
    // The same connection still serves requests; ms-keep-alive: UAC gets the Edge's UAS parameters, with the
    // idle timeout (2 s in this lab) as the interval to ping within.
    let mut opt = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    opt.extra_headers
        .push(("ms-keep-alive".into(), "UAC;hop-hop=yes".into()));
    tls.write_all(&opt.build()).await.unwrap();
    let mut buf = Vec::new();
    let head = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(T, tls.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = text(&buf).find("\r\n\r\n") {
            break text(&buf[..end]);
        }
    };
    assert!(head.starts_with("SIP/2.0 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nms-keep-alive: UAS; tcp=no; hop-hop=yes; end-end=no; timeout=2\r\n"),
        "{head}"
    );
    // Without the request header, no answer header.
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let opt = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    let r = peer.request(&opt.build(), T).await.unwrap();
    assert_eq!(header(&r, "ms-keep-alive"), None);
    lab.stop().await;
}

#[tokio::test]
async fn bodies_are_bounded_by_max_server_message_body_size_kb() {
    // The users' own page-mode text limit ([im] max_text_bytes) is raised out of the way: this is the transport's.
    let lab = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        c.im.max_text_bytes = 200 * 1024;
    })
    .await;
    assert_eq!(
        lab.edge.config().limits.max_server_message_body_size_kb,
        5000
    );
    // 100 KB: over the old 64 KiB bound, well within the Edge's 5000 KB.
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let mut m = ExpresswayRequest::new(
        "MESSAGE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    m.body = Some(bytes::Bytes::from(vec![b'a'; 100 * 1024]));
    m.content_type = Some("text/plain".into());
    let r = peer.request(&m.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    // One byte over 5000 KB: 413, then the Edge closes (the body is refused from its Content-Length).
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let big = format!(
        "MESSAGE sip:stejanss@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKbig\r\nFrom: <sip:a@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>\r\nCall-ID: big\r\nCSeq: 1 MESSAGE\r\nContent-Length: {}\r\n\r\n",
        5000 * 1024 + 1
    );
    peer.send(big.as_bytes()).await.unwrap();
    let r = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(r.status_code(), Some(413));
    assert!(peer.recv(T).await.unwrap().is_none(), "closed after 413");
    lab.stop().await;
}

#[tokio::test]
async fn protocol_records_interleave_with_the_diagnostic_records_in_order() {
    let l = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |c| {
        c.log.protocol = true;
    })
    .await;
    let mut peer = l.peer(&["vcse.steven.lab"]).await;
    let port = peer.local_addr().port();
    let r = peer.request(seed_invite().as_bytes(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    l.edge.flush();
    let log = std::fs::read_to_string(l.dir.path().join("edge.log")).unwrap();
    let kinds: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.starts_with("TL_INFO(TF_PROTOCOL)") {
                Some("protocol")
            } else if l.starts_with("TL WARN(TF_DIAG)") || l.starts_with("TL ERROR(TF_DIAG)") {
                Some("diag")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(kinds, vec!["protocol", "diag", "protocol"], "{log}");
    let peer_line = format!("Peer: vcse.steven.lab:{port}\n");
    let incoming = format!(
        "Direction: incoming;source=\"external edge\";destination=\"internal edge\"\n{peer_line}Message-Type: request\nStart-Line: INVITE sip:stejanss@skype.lab SIP/2.0\nVia: SIP/2.0/TLS 10.48.36.47:5061; egress-proxy-call-id="
    );
    assert!(log.contains(&incoming), "{log}");
    let outgoing = format!(
        "Direction: outgoing;source=\"internal edge\";destination=\"external edge\"\n{peer_line}Message-Type: response\nStart-Line: SIP/2.0 504 Server time-out\n"
    );
    assert!(log.contains(&outgoing), "{log}");
    assert_eq!(log.matches("$$end_record").count(), 3);
    l.stop().await;

    // Off by default: only the diagnostic record.
    let l = lab(vec![srv(SRV_ACANO, "vcse.steven.lab")], |_| {}).await;
    let mut peer = l.peer(&["vcse.steven.lab"]).await;
    peer.request(&invite().build(), T).await.unwrap();
    l.edge.flush();
    let log = std::fs::read_to_string(l.dir.path().join("edge.log")).unwrap();
    assert!(!log.contains("TF_PROTOCOL"), "{log}");
    assert!(log.contains("(TF_DIAG)"), "{log}");
    l.stop().await;
}

#[tokio::test]
async fn the_signed_record_route_admits_its_dialog_and_refuses_a_forged_or_foreign_route() {
    let l = lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |_| {}).await;
    let mut peer = l.peer(&["vcse.acano.steven.lab"]).await;
    let mut inv = invite();
    inv.extra_headers.push((
        "Record-Route".into(),
        "<sip:vcse.acano.steven.lab;lr>".into(),
    ));
    let ringing = peer.request(&inv.build(), T).await;
    // request() returns the final answer; the 180 before it is skipped.
    let ok = ringing.unwrap();
    assert_eq!(ok.status_code(), Some(200));
    let rrs: Vec<String> = ok
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(b"Record-Route"))
        .map(|h| text(&h.value()))
        .collect();
    assert_eq!(rrs.len(), 2, "{rrs:?}");
    assert_eq!(rrs[1], "<sip:vcse.acano.steven.lab;lr>");
    let edge_rr = &rrs[0];
    assert!(
        edge_rr.starts_with("<sip:sip.skype.lab:5061;transport=tls;lr;ms-key-info="),
        "{edge_rr}"
    );
    let sig = edge_rr
        .split_once(";ms-route-sig=")
        .unwrap()
        .1
        .trim_end_matches('>');
    assert!(is_upper_hex(sig, 32), "{sig}");
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    peer.send(&inv.follow_up("ACK", Some(&tag)).build())
        .await
        .unwrap();

    // A forged signature: 403 and the Edge's routing record.
    let mut events = l.edge.subscribe();
    let mut forged = inv.follow_up("BYE", Some(&tag));
    let bad = edge_rr.replace(sig, &"0".repeat(32));
    forged.extra_headers.push(("Route".into(), bad));
    let r = peer.request(&forged.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(403));
    let ev = Lab::event(&mut events).await;
    assert_eq!(ev.status, Some(403));
    let records = l.edge.log_records();
    let rec = records.last().unwrap();
    assert!(
        rec.contains("Text: Cannot process Route headers from a non-trusted source, or with first Route field in the set not matching the connection on which the request arrived Result-Code: 0xc3e93c5e SIPPROXY_E_ROUTING SIP-Start-Line: BYE "),
        "{rec}"
    );
    assert!(
        rec.contains("reason=\"ms-route-sig does not verify\""),
        "{rec}"
    );

    // The same route from another peer (another certificate): refused too.
    let mut other = l.peer(&["vcse.steven.lab"]).await;
    let mut stolen = inv.follow_up("BYE", Some(&tag));
    stolen.extra_headers.push(("Route".into(), edge_rr.clone()));
    let r = other.request(&stolen.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(403));

    // A first Route that is not the Edge: refused.
    let mut elsewhere = inv.follow_up("BYE", Some(&tag));
    elsewhere
        .extra_headers
        .push(("Route".into(), "<sip:vcse.acano.steven.lab;lr>".into()));
    let r = peer.request(&elsewhere.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(403));

    // The route the Edge gave, from the same peer, on a new connection: the call ends normally.
    let mut again = l.peer(&["vcse.acano.steven.lab"]).await;
    let mut bye = inv.follow_up("BYE", Some(&tag));
    bye.extra_headers.push(("Route".into(), edge_rr.clone()));
    let r = again.request(&bye.build(), T).await.unwrap();
    // The call lives on the first connection (dialogs are per connection): 481 here proves the route passed
    // the check (a refused one is 403); on the first connection it ends the call.
    assert_eq!(r.status_code(), Some(481));
    let r = peer.request(&bye.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));
    l.stop().await;
}
