//! The IM decoders: exact values, every refusal, and arbitrary bytes never panicking them.

use proptest::prelude::*;

use super::*;

#[test]
fn the_embedded_first_message_as_sfb_and_sipe_send_it() {
    // "Hello, Bob" in UTF-8, base64; SIPE's form has no space before ms-body and an msgr parameter.
    for v in [
        "text/plain; charset=UTF-8; ms-body=SGVsbG8sIEJvYg==",
        "text/plain; charset=UTF-8;msgr=WAAtAE0AUwA;ms-body=SGVsbG8sIEJvYg==",
        "TEXT/PLAIN;charset=utf-8;ms-body=SGVsbG8sIEJvYg",
    ] {
        assert_eq!(
            embedded_first_message(v, 1024),
            Ok(Some(ImMessage::plain("Hello, Bob"))),
            "{v}"
        );
    }
    assert_eq!(
        embedded_first_message(&ms_text_format("Grüß dich ☃"), 1024)
            .unwrap()
            .unwrap()
            .text
            .as_deref(),
        Some("Grüß dich ☃")
    );
    assert_eq!(
        ms_text_format("Hi"),
        "text/plain; charset=UTF-8; ms-body=SGk="
    );
}

#[test]
fn other_embedded_types_are_recorded_not_decoded() {
    let m = embedded_first_message(
        "text/x-msmsgsinvite; charset=UTF-8; ms-body=SW52aXRhdGlvbg==",
        1024,
    )
    .unwrap()
    .unwrap();
    assert_eq!(m.content_type, "text/x-msmsgsinvite");
    assert_eq!(m.text, None);
    assert_eq!(m.len, 10);
    assert_eq!(m.plain_text(), None);
    let rtf = embedded_first_message("text/rtf; charset=UTF-8; ms-body=e1xydGYxfQ==", 1024)
        .unwrap()
        .unwrap();
    assert_eq!(rtf.text.as_deref(), Some("{\\rtf1}"));
    assert_eq!(rtf.plain_text(), None);
    assert_eq!(
        embedded_first_message("text/plain; charset=UTF-8", 1024),
        Ok(None)
    );
}

#[test]
fn bad_embedded_messages_are_400s() {
    assert_eq!(
        embedded_first_message("text/plain; ms-body=***", 1024),
        Err(ImError::BadBase64)
    );
    assert_eq!(
        embedded_first_message("text/plain; charset=ISO-8859-1; ms-body=SGk=", 1024),
        Err(ImError::UnsupportedCharset("ISO-8859-1".into()))
    );
    assert_eq!(
        embedded_first_message("text/plain; charset=UTF-8; ms-body=/w==", 1024),
        Err(ImError::NotUtf8)
    );
    let big = ms_text_format(&"x".repeat(2000));
    assert_eq!(
        embedded_first_message(&big, 1000),
        Err(ImError::TooLarge {
            len: 2001,
            limit: 1000
        }),
        "refused from the encoded length, before decoding"
    );
    assert_eq!(
        embedded_first_message(&ms_text_format(&"x".repeat(1001)), 1000),
        Err(ImError::TooLarge {
            len: 1001,
            limit: 1000
        })
    );
    assert_eq!(
        embedded_first_message(&ms_text_format(&"x".repeat(1000)), 1000)
            .unwrap()
            .unwrap()
            .len,
        1000
    );
    let e = ImError::BadBase64;
    assert_eq!(e.status(), (400, "Bad Request"));
    assert_eq!(e.to_string(), "ms-body of ms-text-format is not base64");
}

#[test]
fn in_dialog_messages() {
    assert_eq!(
        message(Some("text/plain; charset=UTF-8"), b"how are you?", 1024),
        Ok(ImMessage::plain("how are you?"))
    );
    assert_eq!(
        message(Some("text/plain"), "né".as_bytes(), 1024),
        Ok(ImMessage::plain("né"))
    );
    let receipt = message(Some("application/ms-imdn+xml"), b"<imdn/>", 1024).unwrap();
    assert_eq!(
        receipt,
        ImMessage {
            content_type: "application/ms-imdn+xml".into(),
            text: None,
            len: 7
        }
    );
    assert_eq!(
        message(None, b"", 1024),
        Ok(ImMessage {
            content_type: String::new(),
            text: None,
            len: 0
        })
    );
    assert_eq!(message(None, b"hi", 1024), Err(ImError::NoContentType(2)));
    assert_eq!(
        message(Some("text/plain; charset=\"windows-1252\""), b"hi", 1024),
        Err(ImError::UnsupportedCharset("windows-1252".into()))
    );
    assert_eq!(
        message(Some("text/html; charset=UTF-8"), &[0xc3, 0x28], 1024),
        Err(ImError::NotUtf8)
    );
    assert_eq!(
        message(Some("text/plain"), &[b'x'; 11], 10),
        Err(ImError::TooLarge { len: 11, limit: 10 })
    );
}

#[test]
fn typing_notices() {
    assert_eq!(
        info(Some("application/xml"), typing_body(true).as_bytes()),
        Ok(Info::Typing(Typing::Typing))
    );
    assert_eq!(
        info(Some("application/xml"), typing_body(false).as_bytes()),
        Ok(Info::Typing(Typing::Idle))
    );
    assert_eq!(
        info(
            Some("text/xml"),
            b"<KeyboardActivity><status status=\"type\"/></KeyboardActivity>"
        ),
        Ok(Info::Typing(Typing::Typing))
    );
    assert_eq!(
        info(
            Some("application/xml"),
            b"<KeyboardActivity><status status=\"stop\"/></KeyboardActivity>"
        ),
        Ok(Info::Typing(Typing::Other("stop".into())))
    );
    assert_eq!(
        info(Some("application/xml"), b"<other/>"),
        Ok(Info::Other("application/xml <other>".into()))
    );
    assert_eq!(
        info(Some("application/dtmf-relay"), b"Signal=1"),
        Ok(Info::Other("application/dtmf-relay".into()))
    );
    assert_eq!(info(None, b""), Ok(Info::Other(String::new())));
    assert_eq!(
        typing_body(true),
        "<?xml version=\"1.0\"?><KeyboardActivity> <status status=\"type\" /></KeyboardActivity>"
    );
}

#[test]
fn bad_info_bodies_are_400s() {
    assert!(matches!(
        info(Some("application/xml"), b"<KeyboardActivity><status"),
        Err(ImError::BadXml(_))
    ));
    assert!(matches!(
        info(
            Some("application/xml"),
            b"<!DOCTYPE x [<!ENTITY a \"b\">]><KeyboardActivity/>"
        ),
        Err(ImError::BadXml(_))
    ));
    assert_eq!(
        info(Some("application/xml"), &[0xff]),
        Err(ImError::NotUtf8)
    );
    assert_eq!(
        info(Some("application/xml"), &vec![b' '; MAX_INFO_BYTES + 1]),
        Err(ImError::TooLarge {
            len: MAX_INFO_BYTES + 1,
            limit: MAX_INFO_BYTES
        })
    );
    assert_eq!(info(None, b"x"), Err(ImError::NoContentType(1)));
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..300)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        header in text(),
        ct in text(),
    ) {
        let _ = embedded_first_message(&header, 256);
        let _ = message(Some(&ct), &bytes, 256);
        let _ = message(None, &bytes, 256);
        let _ = info(Some("application/xml"), &bytes);
        let _ = info(Some(&ct), &bytes);
        let _ = crate::im::sdp::message_media(&bytes);
        let _ = crate::im::sdp::message_media(header.as_bytes());
    }

    #[test]
    fn any_text_survives_ms_text_format(t in "\\PC{0,200}") {
        let back = embedded_first_message(&ms_text_format(&t), 4096).unwrap().unwrap();
        prop_assert_eq!(back.text, Some(t));
    }
}
