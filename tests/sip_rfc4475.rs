//! RFC 4475 torture messages, Expressway/Microsoft field messages, framing and the 504 builder.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use edgesim::sip::{
    Contact, Frame, Framer, HeaderKind, Limits, Message, ResponseBuilder, SipError,
    bad_request_from_raw,
};
use proptest::prelude::*;

fn rfc(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("tests/fixtures/rfc4475/{name}.dat")).unwrap())
}

fn field(name: &str) -> Bytes {
    Bytes::from(std::fs::read(format!("tests/fixtures/sip/{name}.sip")).unwrap())
}

fn valid(name: &str) -> Message {
    let m = Message::parse(rfc(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    m
}

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

const VALID: &[&str] = &[
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
];

#[test]
fn valid_messages_round_trip_byte_exact() {
    for name in VALID {
        let raw = rfc(name);
        let m = valid(name);
        if *name == "dblreq" {
            // RFC 4475 §3.1.1.8: the trailing INVITE is not part of the message.
            assert_eq!(m.as_bytes(), &raw[..m.as_bytes().len()]);
            assert!(m.as_bytes().len() < raw.len());
        } else {
            assert_eq!(m.as_bytes(), &raw[..], "{name}");
        }
    }
}

#[test]
fn wsinv() {
    let m = valid("wsinv");
    assert_eq!(m.method(), Some(&b"INVITE"[..]));
    assert_eq!(m.request_uri().unwrap().param("unknownparam"), Some(None));
    let to = m.to().unwrap();
    assert_eq!(to.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some(r#"J Rosenberg \\\""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(&m.call_id().unwrap()[..], b"wsinv.ndaksdj@192.0.2.1");
    assert_eq!(m.content_length().unwrap(), Some(150));
    assert_eq!(m.body().len(), 150);
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (9, "INVITE"));
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport.as_str(), vias[0].host().as_str()),
        ("UDP", "192.0.2.2")
    );
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(
        (vias[1].transport.as_str(), vias[1].host().as_str()),
        ("TCP", "spindle.example.com")
    );
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[2].host(), "192.168.255.111");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    let nf = m.header_named("newfangledheader").unwrap();
    assert_eq!(
        &nf.value()[..],
        b"newfangled value continued newfangled value"
    );
    assert_eq!(
        &m.header_named("UnknownHeaderWithUnusualValue")
            .unwrap()
            .value()[..],
        b";;,,;;,;"
    );
    let Contact::Addr(c) = &m.contacts().unwrap()[0] else {
        panic!()
    };
    assert_eq!(c.display_name.as_deref(), Some(r#"Quoted string \"\""#));
    assert_eq!(c.param("newparam"), Some(Some("newvalue")));
    assert_eq!(c.param("q"), Some(Some("0.33")));
    let names: Vec<_> = m.headers().map(|h| s(h.name).to_string()).collect();
    assert_eq!(names[0], "TO");
    assert_eq!(names[1], "from");
    assert_eq!(names.len(), 14);
}

#[test]
fn intmeth() {
    let m = valid("intmeth");
    assert_eq!(
        m.method(),
        Some(&b"!interesting-Method0123456789_*+`.%indeed'~"[..])
    );
    let uri = m.request_uri().unwrap();
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(uri.host(), "example.com");
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(m.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.from().unwrap().display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(
        &m.call_id().unwrap()[..],
        &b"intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"[..]
    );
    assert_eq!(m.max_forwards().unwrap(), Some(255));
    let ext = m.header_named("extensionHeader-!.%*+_`'~").unwrap();
    assert_eq!(ext.value().as_ref(), "\u{feff}大停電".as_bytes());
}

#[test]
fn escapes() {
    let m = valid("esc01");
    let uri = m.request_uri().unwrap();
    assert_eq!(uri.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        edgesim::sip::unescape(uri.user.as_deref().unwrap()),
        b"sips:user@example.com"
    );
    assert_eq!(uri.host(), "example.net");
    assert_eq!(m.to().unwrap().uri.user.as_deref(), Some("%75se%72"));
    assert_eq!(
        m.from().unwrap().uri.user.as_deref(),
        Some("I%20have%20spaces")
    );
    let Contact::Addr(c) = &m.contacts().unwrap()[0] else {
        panic!()
    };
    assert_eq!(c.uri.param("n%61me"), Some(Some("v%61lue%25%34%31")));
    assert_eq!(
        m.header(HeaderKind::ContentType)
            .map(|h| h.value().to_vec()),
        Some(b"application/sdp".to_vec())
    );

    let m = valid("escnull");
    assert_eq!(m.to().unwrap().uri.user.as_deref(), Some("null-%00-null"));
    assert_eq!(m.contacts().unwrap().len(), 2);
    assert_eq!(m.content_length().unwrap(), Some(0));

    let m = valid("esc02");
    assert_eq!(m.method(), Some(&b"RE%47IST%45R"[..]));
    assert_eq!(m.to().unwrap().display_name.as_deref(), Some("%Z%45"));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    assert_eq!(m.contacts().unwrap().len(), 2); // C%6Fntact is another header
    assert!(m.header_named("C%6Fntact").is_some());
}

#[test]
fn lwsdisp_longreq_dblreq_semiuri() {
    let m = valid("lwsdisp");
    assert_eq!(m.from().unwrap().display_name.as_deref(), Some("caller"));
    assert_eq!(m.from().unwrap().tag(), Some("323"));

    let m = valid("longreq");
    assert_eq!(m.vias().unwrap().len(), 34);
    assert_eq!(m.to().unwrap().uri.port, Some(6000));
    assert!(m.from().unwrap().tag().unwrap().starts_with("129829829829"));
    assert_eq!(m.body().len(), m.content_length().unwrap().unwrap());

    let m = valid("dblreq");
    assert_eq!(m.method(), Some(&b"REGISTER"[..]));
    assert_eq!(m.body(), b"");
    assert_eq!(
        &m.call_id().unwrap()[..],
        b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    );

    let m = valid("semiuri");
    let uri = m.request_uri().unwrap();
    assert_eq!(uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert_eq!(uri.host(), "example.com");
    let accept: Vec<String> = m
        .values(HeaderKind::Other)
        .iter()
        .map(|v| s(v).to_string())
        .collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

#[test]
fn transports_mpart_responses() {
    let m = valid("transports");
    let t: Vec<_> = m.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    let m = valid("mpart01");
    assert_eq!(m.body().len(), 553);
    assert_eq!(m.top_via().unwrap().rport(), Some(None));
    assert_eq!(m.top_via().unwrap().port, Some(5070));

    let m = valid("unreason");
    assert_eq!(m.status_code(), Some(200));
    assert!(s(m.reason().unwrap()).starts_with("= 2**3 * 5**2 но сто"));
    assert_eq!(m.body().len(), 154);

    let m = valid("noreason");
    assert_eq!(m.status_code(), Some(100));
    assert_eq!(m.reason(), Some(&b""[..]));
    assert_eq!(m.to().unwrap().tag(), Some("902jndnke3"));
}

/// RFC 4475 §3.1.2: each invalid message and the status a server answers.
#[test]
fn invalid_messages_and_their_status() {
    let cases: &[(&str, SipError, u16)] = &[
        ("badinv01", SipError::BadHeader("Via"), 400),
        ("clerr", SipError::TruncatedBody, 400),
        ("ncl", SipError::NegativeContentLength, 400),
        ("scalar02", SipError::BadHeader("CSeq"), 400),
        ("scalarlg", SipError::BadHeader("CSeq"), 400),
        ("quotbal", SipError::BadHeader("To"), 400),
        ("ltgtruri", SipError::BadStartLine, 400),
        ("lwsruri", SipError::BadStartLine, 400),
        ("lwsstart", SipError::BadStartLine, 400),
        ("trws", SipError::BadStartLine, 400),
        ("escruri", SipError::BadRequestUri, 400),
        ("baddate", SipError::BadHeader("Date"), 400),
        ("regbadct", SipError::BadHeader("Contact"), 400),
        ("badaspec", SipError::BadHeader("To"), 400),
        ("baddn", SipError::BadHeader("From"), 400),
        ("badvers", SipError::UnsupportedVersion, 505),
        ("mismatch01", SipError::CSeqMismatch, 400),
        ("mismatch02", SipError::CSeqMismatch, 400),
        ("bigcode", SipError::BadStartLine, 400),
    ];
    for (name, want, code) in cases {
        let got = Message::parse(rfc(name))
            .and_then(|m| m.validate())
            .unwrap_err();
        assert_eq!(&got, want, "{name}");
        assert_eq!(got.status().0, *code, "{name}");
    }
    assert_eq!(
        SipError::UnsupportedVersion.status(),
        (505, "Version Not Supported")
    );
}

#[test]
fn unknown_scheme_is_416() {
    let raw = Bytes::from_static(b"OPTIONS http://example.com SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: u\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
    let e = Message::parse(raw).unwrap().validate().unwrap_err();
    assert_eq!(e.status(), (416, "Unsupported URI Scheme"));
}

const FIELD: &[&str] = &[
    "expressway-invite",
    "expressway-504",
    "ms-service",
    "ms-benotify",
    "ms-negotiate",
    "pai-tel",
    "options-keepalive",
    "compact",
    "folded",
];

#[test]
fn field_messages_parse_validate_and_round_trip() {
    for name in FIELD {
        let raw = field(name);
        let m = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.to_bytes(), raw, "{name}");
    }
}

#[test]
fn expressway_invite_values() {
    let m = Message::parse(field("expressway-invite")).unwrap();
    assert_eq!(m.request_uri().unwrap().host(), "skype.lab");
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        vias[0].param("egress-zone"),
        Some(Some("SkypeFederationDNS"))
    );
    assert_eq!(
        vias[0].param("proxy-call-id"),
        Some(Some("6b2a018a-2da5-4013-a7e5-4e1455feadf7"))
    );
    assert_eq!(vias[0].rport(), Some(None));
    assert_eq!(vias[1].rport(), Some(Some(28119)));
    assert_eq!(vias[1].received(), Some("10.48.36.46"));
    assert_eq!(vias[2].port, Some(52768));
    assert_eq!(
        vias[2].param("ingress-zone"),
        Some(Some("NeighborZoneAcano1SIP"))
    );
    let rr = m.record_routes().unwrap();
    assert_eq!(rr.len(), 2);
    assert_eq!(
        rr[0].uri.user.as_deref(),
        Some("proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7")
    );
    assert_eq!(rr[0].uri.param("lr"), Some(None));
    let pai = m.p_asserted_identities().unwrap();
    assert_eq!(pai[0].uri.host(), "acano.steven.lab");
    assert_eq!(
        m.from().unwrap().display_name.as_deref(),
        Some("DX70 Steven")
    );
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.cseq().unwrap().seq, 2066245576);
    assert!(m.body().starts_with(b"v=0\r\n"));
    let Contact::Addr(c) = &m.contacts().unwrap()[0] else {
        panic!()
    };
    assert_eq!(
        c.uri.param("gr"),
        Some(Some("urn:uuid:5b7e0b3c-8d2c-4f8a-9b1e-2c3d4e5f6a7b"))
    );
}

#[test]
fn microsoft_and_compact_values() {
    let m = Message::parse(field("expressway-504")).unwrap();
    assert_eq!(
        (m.status_code(), m.reason()),
        (Some(504), Some(&b"Server time-out"[..]))
    );
    assert_eq!(
        m.top_via().unwrap().param("ms-received-cid"),
        Some(Some("100"))
    );
    assert!(
        m.header_named("MS-Diagnostics")
            .unwrap()
            .value()
            .starts_with(b"1010;reason=")
    );

    for (name, method) in [
        ("ms-service", "SERVICE"),
        ("ms-benotify", "BENOTIFY"),
        ("ms-negotiate", "NEGOTIATE"),
    ] {
        let m = Message::parse(field(name)).unwrap();
        assert_eq!(m.method(), Some(method.as_bytes()));
        assert_eq!(m.cseq().unwrap().method, method);
    }
    let m = Message::parse(field("ms-negotiate")).unwrap();
    assert_eq!(m.from().unwrap().uri.user, None);
    assert_eq!(m.from().unwrap().uri.port, Some(5061));

    let m = Message::parse(field("pai-tel")).unwrap();
    let pai = m.p_asserted_identities().unwrap();
    let uris: Vec<_> = pai.iter().map(|p| p.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "sip:bob@cms.steven.lab",
            "tel:+15551234",
            "tel:+15559876;phone-context=cms.steven.lab"
        ]
    );
    assert_eq!(pai[1].uri.scheme, "tel");
    assert_eq!(pai[1].uri.user.as_deref(), Some("+15551234"));
    assert_eq!(pai[2].display_name.as_deref(), Some("Bob Mobile"));

    let m = Message::parse(field("options-keepalive")).unwrap();
    let from = m.from().unwrap();
    assert_eq!(
        (
            from.uri.user.as_deref(),
            from.uri.host().as_str(),
            from.uri.port
        ),
        (None, "203.0.113.10", Some(5061))
    );
    assert_eq!(m.max_forwards().unwrap(), Some(0));

    let m = Message::parse(field("compact")).unwrap();
    assert_eq!(m.request_uri().unwrap().host(), "2001:db8::10");
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(
        (vias[0].host_raw.as_str(), vias[0].port),
        ("[2001:db8::1]", Some(5061))
    );
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(m.from().unwrap().tag(), Some("cc11"));
    assert_eq!(&m.call_id().unwrap()[..], b"compact-0001@2001:db8::1");
    assert_eq!(
        m.header_named("Subject").unwrap().value().as_ref(),
        b"Lunch"
    );
    assert_eq!(
        m.header_named("supported").unwrap().value().as_ref(),
        b"timer"
    );

    let m = Message::parse(field("folded")).unwrap();
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKfold1"));
    assert_eq!(
        m.from().unwrap().display_name.as_deref(),
        Some("Folded Name")
    );
    assert_eq!(m.from().unwrap().tag(), Some("ff00"));
    assert_eq!(m.cseq().unwrap().method, "MESSAGE");
    assert_eq!(m.to().unwrap().uri.as_str(), "sip:alice@skype.lab");
    assert_eq!(m.body(), b"hello");
}

#[test]
fn build_504_from_expressway_invite_exact_bytes() {
    let m = Message::parse(field("expressway-invite")).unwrap();
    let out = ResponseBuilder::from_request(&m, 504, "Server time-out")
        .top_via_param("received", "10.48.36.47")
        .top_via_param("ms-received-port", "25002")
        .top_via_param("ms-received-cid", "100")
        .to_tag("C65A7B0A8766A5F1D386474833D07882")
        .header("Server", "RTC/6.0")
        .build();
    let want = "SIP/2.0 504 Server time-out\r\n\
Via: SIP/2.0/TLS 10.48.36.47:5061;egress-zone=SkypeFederationDNS;branch=z9hG4bK7a3c0e6d1b2f4a5968c7d0e1f2a3b4c5;proxy-call-id=6b2a018a-2da5-4013-a7e5-4e1455feadf7;rport;received=10.48.36.47;ms-received-port=25002;ms-received-cid=100\r\n\
Via: SIP/2.0/TLS 10.48.36.46:5061;egress-zone=TraversalZoneClient1;branch=z9hG4bK1f8bbe5926dc6abd06ea964d8fde1450156486;proxy-call-id=e7e33845-c384-4c28-a42d-016863640fbb;received=10.48.36.46;rport=28119;ingress-zone=TraversalZoneServer1\r\n\
Via: SIP/2.0/TLS 10.48.54.160:52768;branch=z9hG4bK6594a02846406f4a5459d5f58a8d26b3;received=10.48.54.160;ingress-zone=NeighborZoneAcano1SIP\r\n\
Call-ID: f1b3ad5d-183b-4632-b210-c2f9bec71960\r\n\
CSeq: 2066245576 INVITE\r\n\
From: \"DX70 Steven\" <sip:2000@acano.steven.lab>;tag=9fea3e7d70afd884\r\n\
To: <sip:stejanss@skype.lab>;tag=C65A7B0A8766A5F1D386474833D07882\r\n\
Server: RTC/6.0\r\n\
Content-Length: 0\r\n\r\n";
    assert_eq!(s(&out), want);
    // It parses back, and rport fill / param replacement work in place.
    let r = Message::parse(out).unwrap();
    r.validate().unwrap();
    let out2 = ResponseBuilder::from_request(&m, 200, "OK")
        .fill_rport(25002)
        .top_via_param("branch", "x")
        .build();
    let r2 = Message::parse(out2).unwrap();
    let top = r2.top_via().unwrap();
    assert_eq!((top.rport(), top.branch()), (Some(Some(25002)), Some("x")));
    assert_eq!(r2.to().unwrap().tag(), None);
}

#[test]
fn to_tag_is_not_duplicated_and_body_sets_length() {
    let m = valid("wsinv");
    let out = ResponseBuilder::from_request(&m, 486, "Busy Here")
        .to_tag("new")
        .body(b"abc")
        .build();
    let r = Message::parse(out).unwrap();
    assert_eq!(r.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(r.vias().unwrap().len(), 3);
    assert_eq!(r.body(), b"abc");
    assert_eq!(
        r.headers().last().map(|h| h.name.to_vec()),
        Some(b"Content-Length".to_vec())
    );
}

#[test]
fn request_builder() {
    let out = edgesim::sip::RequestBuilder::new("INVITE", "sip:bob@vcse.steven.lab")
        .header("Via", "SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKx")
        .header("Content-Type", "application/sdp")
        .body(b"v=0\r\n")
        .build();
    assert_eq!(
        s(&out),
        "INVITE sip:bob@vcse.steven.lab SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKx\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
    );
}

#[test]
fn best_effort_400_from_raw_lines() {
    let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1\r\n ;branch=z9hG4bK9\r\nBroken line\r\nf: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let e = Message::parse(Bytes::from_static(raw)).unwrap_err();
    assert_eq!(e, SipError::BadHeaderLine { line: 4 });
    let out = bad_request_from_raw(raw, &e, "sip.skype.lab").unwrap();
    assert_eq!(
        s(&out),
        "SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/TLS 10.0.0.1 ;branch=z9hG4bK9\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: abc\r\nCSeq: 1 INVITE\r\nWarning: 399 sip.skype.lab \"malformed header line 4\"\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(bad_request_from_raw(b"garbage\r\n\r\n", &e, "x").is_none());
}

// ---- framer ----

fn stream() -> (Vec<u8>, usize) {
    let mut v = Vec::new();
    let mut n = 0;
    for name in [
        "options-keepalive",
        "ms-service",
        "expressway-invite",
        "compact",
        "expressway-504",
    ] {
        v.extend_from_slice(&field(name));
        n += 1;
    }
    v.extend_from_slice(b"\r\n\r\n");
    v.extend_from_slice(&rfc("wsinv"));
    (v, n + 1)
}

fn frames(f: &mut Framer, buf: &mut BytesMut) -> Result<Vec<Frame>, SipError> {
    let mut out = Vec::new();
    while let Some(fr) = f.decode(buf)? {
        out.push(fr);
    }
    Ok(out)
}

#[test]
fn pipelined_messages_whole() {
    let (data, n) = stream();
    let mut f = Framer::default();
    let mut buf = BytesMut::from(&data[..]);
    let out = frames(&mut f, &mut buf).unwrap();
    assert_eq!(out.len(), n + 1);
    assert!(matches!(out[5], Frame::Ping));
    let Frame::Message(m) = &out[1] else { panic!() };
    assert_eq!(m.method(), Some(&b"SERVICE"[..]));
    assert_eq!(m.to_bytes(), field("ms-service"));
    let Frame::Message(m) = &out[6] else { panic!() };
    assert_eq!(m.body().len(), 150);
    assert!(buf.is_empty());
}

#[test]
fn split_at_every_byte_boundary() {
    let (data, _) = stream();
    let mut whole = BytesMut::from(&data[..]);
    let want = frames(&mut Framer::default(), &mut whole).unwrap();
    for cut in 0..=data.len() {
        let mut f = Framer::default();
        let mut buf = BytesMut::from(&data[..cut]);
        let mut got = frames(&mut f, &mut buf).unwrap();
        buf.extend_from_slice(&data[cut..]);
        got.extend(frames(&mut f, &mut buf).unwrap());
        assert_eq!(got, want, "cut at {cut}");
    }
    // One byte at a time.
    let mut f = Framer::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in &data {
        buf.extend_from_slice(&[*b]);
        got.extend(frames(&mut f, &mut buf).unwrap());
    }
    assert_eq!(got, want);
}

#[test]
fn content_length_lies() {
    // Too long: the framer waits for bytes that belong to the next message.
    let mut f = Framer::default();
    let mut buf = BytesMut::from(&rfc("clerr")[..]);
    assert_eq!(f.decode(&mut buf), Ok(None));

    // Too short: the extra body bytes become a (bad) next message, then the stream resyncs.
    let invite = field("expressway-invite");
    let text = s(&invite).replace("Content-Length: 250", "Content-Length: 247");
    assert_ne!(text, s(&invite));
    let mut buf = BytesMut::from(text.as_bytes());
    buf.extend_from_slice(b"\r\n\r\n");
    buf.extend_from_slice(&field("options-keepalive"));
    let out = frames(&mut Framer::default(), &mut buf).unwrap();
    assert!(matches!(&out[0], Frame::Message(m) if m.body().len() == 247));
    assert!(matches!(
        &out[1],
        Frame::Invalid {
            error: SipError::BadStartLine,
            ..
        }
    ));
    assert!(matches!(out.last(), Some(Frame::Message(m)) if m.method() == Some(&b"OPTIONS"[..])));

    let fatal = |raw: &[u8]| {
        Framer::default()
            .decode(&mut BytesMut::from(raw))
            .unwrap_err()
    };
    let e = fatal(&rfc("ncl"));
    assert_eq!(
        (e.clone(), e.status().0, e.closes_connection()),
        (SipError::NegativeContentLength, 400, true)
    );
    let e = fatal(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab");
    assert_eq!(
        (e.clone(), e.closes_connection()),
        (SipError::ConflictingContentLength, true)
    );
    let e = fatal(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x1\r\n\r\n");
    assert_eq!(e, SipError::BadContentLength);
    // Same value twice is fine.
    let mut buf =
        BytesMut::from(&b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 2\r\nl: 2\r\n\r\nab"[..]);
    assert!(
        matches!(Framer::default().decode(&mut buf), Ok(Some(Frame::Message(m))) if m.body() == b"ab")
    );
    assert!(buf.is_empty());
}

#[test]
fn oversized_body_is_fatal_413() {
    let limits = Limits {
        max_body: 100,
        ..Limits::default()
    };
    let e = Framer::new(limits)
        .decode(&mut BytesMut::from(&field("expressway-invite")[..]))
        .unwrap_err();
    assert_eq!(
        e,
        SipError::BodyTooLarge {
            len: 250,
            limit: 100
        }
    );
    assert_eq!(
        (e.status(), e.closes_connection()),
        ((413, "Request Entity Too Large"), true)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn parser_and_framer_never_panic(data in prop::collection::vec(any::<u8>(), 0..600), seed in 0usize..9) {
        let _ = Message::parse(Bytes::from(data.clone())).map(|m| {
            let _ = m.validate();
            let _ = (m.vias(), m.contacts(), m.p_asserted_identities(), m.record_routes(), m.request_uri());
            let _ = ResponseBuilder::from_request(&m, 400, "Bad").to_tag("t").fill_rport(1).top_via_param("received", "x").build();
        });
        let _ = bad_request_from_raw(&data, &SipError::BadStartLine, "x");
        let mut buf = BytesMut::from(&data[..]);
        let mut f = Framer::default();
        while let Ok(Some(_)) = f.decode(&mut buf) {}
        // Mutations of a real message exercise deeper paths than random bytes.
        let mut msg = field(FIELD[seed]).to_vec();
        for (i, b) in data.iter().enumerate().take(8) {
            let at = (usize::from(*b) * 7 + i * 131) % msg.len();
            msg[at] = data[(i + 1) % data.len()];
        }
        if let Ok(m) = Message::parse(Bytes::from(msg)) {
            let _ = m.validate();
            let _ = ResponseBuilder::from_request(&m, 504, "Server time-out").to_tag("t").build();
        }
    }
}
