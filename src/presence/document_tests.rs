//! The documents, exactly, and as a real XML parser (roxmltree) reads them: namespaces, values, escaping,
//! and the round trip state → document → read → state.

use proptest::prelude::*;
use roxmltree::{Document, Node};

use super::*;
use crate::presence::read::{DocumentError, read, read_as};
use crate::presence::state::ALL;

const AOR: &str = "bob@skype.lab";

fn busy_meeting() -> PresenceState {
    PresenceState {
        availability: 6500,
        activity: Some("in-a-meeting".into()),
        note: Some("Back at 3 <&\"'>".into()),
        display_name: Some("Bob Builder".into()),
    }
}

/// The element children of `n` named `name` in `ns` (panics when missing: the test fails).
fn el<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Node<'a, 'i> {
    n.children()
        .find(|c| c.is_element() && c.has_tag_name((ns, name)))
        .unwrap_or_else(|| panic!("no {{{ns}}}{name} under {:?}", n.tag_name()))
}

#[test]
fn categories_document_exactly() {
    assert_eq!(
        render(DocumentFormat::Categories, AOR, &busy_meeting()),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" uri=\"sip:bob@skype.lab\">\
         <category name=\"state\" instance=\"0\"><state xmlns=\"http://schemas.microsoft.com/2006/09/sip/state\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"aggregateState\">\
         <availability>6500</availability><activity token=\"in-a-meeting\"/></state></category>\
         <category name=\"note\" instance=\"0\"><note xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\">\
         <body type=\"personal\" uri=\"\">Back at 3 &lt;&amp;&quot;&apos;&gt;</body></note></category>\
         <category name=\"contactCard\" instance=\"0\"><contactCard \
         xmlns=\"http://schemas.microsoft.com/2006/09/sip/contactcard\"><identity><name>\
         <displayName>Bob Builder</displayName></name></identity></contactCard></category></categories>"
    );
}

#[test]
fn categories_document_as_a_parser_reads_it() {
    let x = render(DocumentFormat::Categories, AOR, &busy_meeting());
    let doc = Document::parse(&x).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name((NS_CATEGORIES, "categories")));
    assert_eq!(root.attribute("uri"), Some("sip:bob@skype.lab"));
    let cats: Vec<Node> = root.children().filter(|c| c.is_element()).collect();
    let names: Vec<&str> = cats.iter().filter_map(|c| c.attribute("name")).collect();
    assert_eq!(names, ["state", "note", "contactCard"]);
    assert!(
        cats.iter()
            .all(|c| c.has_tag_name((NS_CATEGORIES, "category")))
    );
    let state = el(cats[0], NS_STATE, "state");
    assert_eq!(state.attribute((NS_XSI, "type")), Some("aggregateState"));
    assert_eq!(el(state, NS_STATE, "availability").text(), Some("6500"));
    assert_eq!(
        el(state, NS_STATE, "activity").attribute("token"),
        Some("in-a-meeting")
    );
    let body = el(el(cats[1], NS_NOTE, "note"), NS_NOTE, "body");
    assert_eq!(body.attribute("type"), Some("personal"));
    assert_eq!(body.text(), Some("Back at 3 <&\"'>"));
    let card = el(cats[2], NS_CONTACT_CARD, "contactCard");
    let name = el(
        el(
            el(card, NS_CONTACT_CARD, "identity"),
            NS_CONTACT_CARD,
            "name",
        ),
        NS_CONTACT_CARD,
        "displayName",
    );
    assert_eq!(name.text(), Some("Bob Builder"));
}

#[test]
fn an_empty_note_category_clears_the_note_and_no_card_without_a_name() {
    let x = render(
        DocumentFormat::Categories,
        AOR,
        &PresenceState::of(Availability::Away),
    );
    assert!(
        x.contains(
            "<category name=\"note\" instance=\"0\"><note xmlns=\"http://schemas.microsoft.com/2006/09/sip/note\"></note></category>"
        ),
        "{x}"
    );
    assert!(!x.contains("contactCard"), "{x}");
    assert!(!x.contains("<activity"), "{x}");
    Document::parse(&x).unwrap();
}

#[test]
fn msrtc_document_exactly() {
    assert_eq!(
        render(DocumentFormat::MsrtcPidf, AOR, &busy_meeting()),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <presentity uri=\"bob@skype.lab\" xmlns=\"http://schemas.microsoft.com/2002/09/sip/presence\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <availability aggregate=\"300\" description=\"\"/><activity aggregate=\"600\" description=\"\"/>\
         <displayName displayName=\"Bob Builder\"/><userInfo><states>\
         <state avail=\"6500\" set=\"manual\" xsi:type=\"userState\">in-a-meeting</state></states>\
         <note>Back at 3 &lt;&amp;&quot;&apos;&gt;</note></userInfo></presentity>"
    );
}

#[test]
fn msrtc_document_as_a_parser_reads_it() {
    let x = render(DocumentFormat::MsrtcPidf, AOR, &busy_meeting());
    let doc = Document::parse(&x).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name((NS_MSRTC, "presentity")));
    assert_eq!(root.attribute("uri"), Some("bob@skype.lab"));
    assert_eq!(
        el(root, NS_MSRTC, "availability").attribute("aggregate"),
        Some("300")
    );
    assert_eq!(
        el(root, NS_MSRTC, "activity").attribute("aggregate"),
        Some("600")
    );
    assert_eq!(
        el(root, NS_MSRTC, "displayName").attribute("displayName"),
        Some("Bob Builder")
    );
    let info = el(root, NS_MSRTC, "userInfo");
    let state = el(el(info, NS_MSRTC, "states"), NS_MSRTC, "state");
    assert_eq!(state.attribute("avail"), Some("6500"));
    assert_eq!(state.attribute((NS_XSI, "type")), Some("userState"));
    assert_eq!(state.text(), Some("in-a-meeting"));
    assert_eq!(el(info, NS_MSRTC, "note").text(), Some("Back at 3 <&\"'>"));
}

#[test]
fn msrtc_without_user_info_reads_the_aggregates() {
    let doc = |avail: u32, act: u32| {
        format!(
            "<presentity uri=\"bob@skype.lab\" xmlns=\"{NS_MSRTC}\"><availability aggregate=\"{avail}\"/>\
             <activity aggregate=\"{act}\"/></presentity>"
        )
    };
    let class =
        |avail, act| read_as(DocumentFormat::MsrtcPidf, doc(avail, act).as_bytes()).unwrap();
    for (avail, act, c) in [
        (300, 400, Availability::Available),
        (300, 850, Availability::Available),
        (300, 50, Availability::Available),
        (300, 250, Availability::AvailableIdle),
        (300, 650, Availability::Busy),
        (300, 350, Availability::BeRightBack),
        (300, 120, Availability::Away),
        (300, 170, Availability::Away),
        (300, 720, Availability::Away),
        (50, 400, Availability::Offline),
    ] {
        assert_eq!(class(avail, act).class(), c, "{avail}/{act}");
    }
    let phone = class(300, 500);
    assert_eq!(phone.class(), Availability::Busy);
    assert_eq!(phone.activity.as_deref(), Some("on-the-phone"));
}

#[test]
fn msrtc_aggregates_follow_the_ms_sip_classes() {
    let agg = |c: Availability, a: Option<&str>| {
        let mut s = PresenceState::of(c);
        s.activity = a.map(str::to_owned);
        msrtc_aggregates(&s)
    };
    assert_eq!(agg(Availability::Available, None), (300, 400));
    assert_eq!(agg(Availability::AvailableIdle, None), (300, 200));
    assert_eq!(agg(Availability::Busy, None), (300, 600));
    assert_eq!(agg(Availability::Busy, Some("on-the-phone")), (300, 500));
    assert_eq!(agg(Availability::Busy, Some("in-a-conference")), (300, 500));
    assert_eq!(agg(Availability::BusyIdle, None), (300, 600));
    assert_eq!(agg(Availability::DoNotDisturb, None), (300, 600));
    assert_eq!(agg(Availability::BeRightBack, None), (300, 300));
    assert_eq!(agg(Availability::Away, None), (300, 100));
    assert_eq!(agg(Availability::Offline, None), (0, 0));
}

#[test]
fn pidf_document_exactly() {
    assert_eq!(
        render(DocumentFormat::Pidf, AOR, &busy_meeting()),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" \
         xmlns:c=\"urn:ietf:params:xml:ns:pidf:cipid\" entity=\"sip:bob@skype.lab\">\
         <tuple id=\"t1\"><status><basic>open</basic></status>\
         <rpid:activities><rpid:busy/><rpid:meeting/></rpid:activities>\
         <c:display-name>Bob Builder</c:display-name><contact>sip:bob@skype.lab</contact>\
         <note>Back at 3 &lt;&amp;&quot;&apos;&gt;</note></tuple></presence>"
    );
}

#[test]
fn pidf_document_as_a_parser_reads_it() {
    let x = render(DocumentFormat::Pidf, AOR, &busy_meeting());
    let doc = Document::parse(&x).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name((NS_PIDF, "presence")));
    assert_eq!(root.attribute("entity"), Some("sip:bob@skype.lab"));
    let tuples: Vec<Node> = root
        .children()
        .filter(|c| c.has_tag_name((NS_PIDF, "tuple")))
        .collect();
    assert_eq!(tuples.len(), 1, "one tuple (MS-PRES §1.3.3)");
    let t = tuples[0];
    assert_eq!(
        el(el(t, NS_PIDF, "status"), NS_PIDF, "basic").text(),
        Some("open")
    );
    let acts: Vec<&str> = el(t, NS_RPID, "activities")
        .children()
        .filter(|c| c.is_element())
        .map(|c| {
            assert_eq!(c.tag_name().namespace(), Some(NS_RPID));
            c.tag_name().name()
        })
        .collect();
    assert_eq!(acts, ["busy", "meeting"]);
    assert_eq!(el(t, NS_CIPID, "display-name").text(), Some("Bob Builder"));
    assert_eq!(el(t, NS_PIDF, "contact").text(), Some("sip:bob@skype.lab"));
    assert_eq!(el(t, NS_PIDF, "note").text(), Some("Back at 3 <&\"'>"));
}

#[test]
fn pidf_basic_status_and_rpid_per_class() {
    let tuple = |c: Availability| {
        let x = render(DocumentFormat::Pidf, AOR, &PresenceState::of(c));
        Document::parse(&x).unwrap();
        let start = x.find("<tuple").unwrap();
        let end = x.find("<contact>").unwrap();
        x[start..end].to_owned()
    };
    let status = |b: &str| format!("<tuple id=\"t1\"><status><basic>{b}</basic></status>");
    assert_eq!(tuple(Availability::Available), status("open"));
    assert_eq!(
        tuple(Availability::AvailableIdle),
        status("open") + "<rpid:user-input>idle</rpid:user-input>"
    );
    assert_eq!(
        tuple(Availability::BusyIdle),
        status("open")
            + "<rpid:activities><rpid:busy/></rpid:activities><rpid:user-input>idle</rpid:user-input>"
    );
    assert_eq!(
        tuple(Availability::DoNotDisturb),
        status("open")
            + "<rpid:activities><rpid:busy/><rpid:other>Do Not Disturb</rpid:other></rpid:activities>"
    );
    assert_eq!(
        tuple(Availability::BeRightBack),
        status("open")
            + "<rpid:activities><rpid:away/><rpid:other>Be Right Back</rpid:other></rpid:activities>"
    );
    assert_eq!(
        tuple(Availability::Away),
        status("open") + "<rpid:activities><rpid:away/></rpid:activities>"
    );
    assert_eq!(tuple(Availability::Offline), status("closed"));
}

#[test]
fn every_class_round_trips_through_every_format() {
    for format in DocumentFormat::PREFERENCE {
        for class in ALL {
            let mut s = PresenceState::of(class);
            s.note = Some("n & <m>\r\nline\rtab\t".into());
            s.display_name = Some("Ana \"Q\" O'Neil\r<".into());
            let x = render(format, AOR, &s);
            let back = read(format.content_type(), x.as_bytes()).unwrap();
            assert_eq!(back, s, "{format:?} {class:?}");
        }
    }
}

#[test]
fn categories_keep_the_exact_number_and_any_token() {
    let s = PresenceState {
        availability: 8400,
        activity: Some("urgent-interruptions-only".into()),
        note: None,
        display_name: None,
    };
    let x = render(DocumentFormat::Categories, AOR, &s);
    assert_eq!(
        read_as(DocumentFormat::Categories, x.as_bytes()).unwrap(),
        s
    );
}

#[test]
fn the_activities_each_format_carries() {
    let with = |a: &str| PresenceState {
        activity: Some(a.into()),
        ..PresenceState::of(Availability::Busy)
    };
    let back = |f: DocumentFormat, s: &PresenceState| {
        read_as(f, render(f, AOR, s).as_bytes()).unwrap().activity
    };
    for a in ["on-the-phone", "in-a-meeting", "urgent-interruptions-only"] {
        assert_eq!(
            back(DocumentFormat::MsrtcPidf, &with(a)).as_deref(),
            Some(a),
            "userInfo/states carries the token"
        );
    }
    for a in ["on-the-phone", "in-a-meeting", "in-presentation"] {
        assert_eq!(back(DocumentFormat::Pidf, &with(a)).as_deref(), Some(a));
    }
    assert_eq!(
        back(DocumentFormat::Pidf, &with("in-a-conference")).as_deref(),
        Some("in-a-meeting")
    );
}

#[test]
fn escape_drops_what_xml_cannot_carry() {
    assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    assert_eq!(escape("tab\tnl\ncr\r"), "tab&#9;nl&#10;cr&#13;");
    assert_eq!(escape("nul\u{0}bell\u{7}\u{FFFF}"), "nulbell");
    assert_eq!(escape("é ☃ 😀"), "é ☃ 😀");
}

#[test]
fn content_types_name_the_formats() {
    assert_eq!(
        DocumentFormat::from_content_type("Application/PIDF+XML; charset=utf-8"),
        Some(DocumentFormat::Pidf)
    );
    assert_eq!(
        DocumentFormat::from_content_type("text/xml+msrtc.pidf"),
        Some(DocumentFormat::MsrtcPidf)
    );
    assert_eq!(
        DocumentFormat::from_content_type("application/xpidf+xml"),
        None
    );
    assert_eq!(
        read("application/xpidf+xml", b"<x/>"),
        Err(DocumentError::UnknownType("application/xpidf+xml".into()))
    );
}

#[test]
fn hostile_documents_are_errors() {
    assert_eq!(
        read_as(DocumentFormat::Pidf, &vec![b' '; 64 * 1024 + 1]),
        Err(DocumentError::TooLarge {
            len: 64 * 1024 + 1,
            limit: 64 * 1024
        })
    );
    assert_eq!(
        read_as(DocumentFormat::Pidf, &[0xff, 0xfe]),
        Err(DocumentError::NotUtf8)
    );
    let lol = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\">]><presence xmlns=\"urn:ietf:params:xml:ns:pidf\">&a;</presence>";
    assert!(matches!(
        read_as(DocumentFormat::Pidf, lol.as_bytes()),
        Err(DocumentError::Xml(_))
    ));
    let wrong_ns = "<presence xmlns=\"urn:example\"><tuple/></presence>";
    assert_eq!(
        read_as(DocumentFormat::Pidf, wrong_ns.as_bytes()),
        Err(DocumentError::WrongRoot {
            expected: "{urn:ietf:params:xml:ns:pidf}presence".into(),
            found: "{urn:example}presence".into()
        })
    );
    let no_state = format!("<categories xmlns=\"{NS_CATEGORIES}\"/>");
    assert_eq!(
        read_as(DocumentFormat::Categories, no_state.as_bytes()),
        Err(DocumentError::Missing(
            "state category with an availability"
        ))
    );
    let bad_number = format!(
        "<categories xmlns=\"{NS_CATEGORIES}\"><category name=\"state\"><state xmlns=\"{NS_STATE}\">\
         <availability>lots</availability></state></category></categories>"
    );
    assert_eq!(
        read_as(DocumentFormat::Categories, bad_number.as_bytes()),
        Err(DocumentError::BadNumber {
            what: "availability",
            value: "lots".into()
        })
    );
    let no_tuple = format!("<presence xmlns=\"{NS_PIDF}\"/>");
    assert_eq!(
        read_as(DocumentFormat::Pidf, no_tuple.as_bytes()),
        Err(DocumentError::Missing("tuple"))
    );
    let no_avail = format!("<presentity xmlns=\"{NS_MSRTC}\"/>");
    assert_eq!(
        read_as(DocumentFormat::MsrtcPidf, no_avail.as_bytes()),
        Err(DocumentError::Missing("availability aggregate"))
    );
}

#[test]
fn a_lync_server_msrtc_sample_reads_as_available() {
    // MS-SIP §4.4's BENOTIFY body, abridged.
    let x = "<presentity uri=\"user1@server.contoso.com\" xmlns=\"http://schemas.microsoft.com/2002/09/sip/presence\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><availability aggregate=\"300\" description=\"\" \
             epid=\"03640fc59f\" /><activity aggregate=\"400\" description=\"\" epid=\"03640fc59f\" />\
             <displayName displayName=\"User 1\" /></presentity>";
    let s = read("text/xml+msrtc.pidf", x.as_bytes()).unwrap();
    assert_eq!(s.class(), Availability::Available);
    assert_eq!(s.display_name.as_deref(), Some("User 1"));
}

#[test]
fn a_lync_sdk_categories_sample_reads_as_offline() {
    // The Lync Server 2013 SDK's remote state category sample.
    let x = "<categories xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" uri=\"sip:sam@contoso.com\">\
             <category xmlns=\"http://schemas.microsoft.com/2006/09/sip/categories\" name=\"state\" instance=\"0\" \
             publishTime=\"2012-07-12T13:58:54.237\"><state xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
             xmlns=\"http://schemas.microsoft.com/2006/09/sip/state\" xsi:type=\"aggregateState\" \
             lastActive=\"2012-07-12T13:58:54\"><availability>18000</availability></state></category></categories>";
    let s = read("application/msrtc-event-categories+xml", x.as_bytes()).unwrap();
    assert_eq!(s.availability, 18000);
    assert_eq!(s.class(), Availability::Offline);
}

fn text_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..40).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn any_note_and_name_stay_valid_xml_in_every_format(note in text_strategy(), name in text_strategy(), n in any::<u32>()) {
        let s = PresenceState {
            availability: n,
            activity: None,
            note: Some(note.clone()),
            display_name: Some(name.clone()),
        };
        for f in DocumentFormat::PREFERENCE {
            let x = render(f, AOR, &s);
            prop_assert!(Document::parse(&x).is_ok(), "{:?}: {}", f, x);
            let back = read_as(f, x.as_bytes()).unwrap();
            // Exactly what was given, less what XML cannot carry (dropped by escape).
            let expect = |t: &str| {
                let kept: String = t
                    .chars()
                    .filter(|&c| u32::from(c) >= 0x20 || matches!(c, '\t' | '\n' | '\r'))
                    .filter(|&c| c != '\u{FFFE}' && c != '\u{FFFF}')
                    .collect();
                Some(kept).filter(|k| !k.is_empty())
            };
            prop_assert_eq!(back.note, expect(&note), "{:?}", f);
            prop_assert_eq!(back.display_name, expect(&name), "{:?}", f);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_readers(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        for f in DocumentFormat::PREFERENCE {
            let _ = read_as(f, &body);
        }
    }
}
