//! What an emulated user does with the messages it gets (`im = "echo" | "silent" | { reply = "…" }` in the
//! configuration), as a pure function from a received message to the replies it sends in the conversation.
//!
//! Choices: only `text/plain` is echoed (echoing HTML or RTF as text would show markup; other types are
//! receipts and notices, not messages); a fixed reply answers every text message (`text/plain`, `text/html`,
//! `text/rtf`); typing notices get no reply.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::message::{ImMessage, TEXT_PLAIN_UTF8};

/// A user's IM behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Reply with the text received.
    #[default]
    Echo,
    /// Never reply.
    Silent,
    /// Reply with this text.
    Reply(String),
}

/// One message a user sends back, in the conversation's dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its Content-Type.
    pub content_type: &'static str,
    /// Its text.
    pub text: String,
}

impl Behaviour {
    /// The replies to `received`.
    pub fn replies(&self, received: &ImMessage) -> Vec<Reply> {
        let text = match self {
            Behaviour::Silent => None,
            Behaviour::Echo => received.plain_text().map(str::to_owned),
            Behaviour::Reply(t) => received.text.as_ref().map(|_| t.clone()),
        };
        text.map(|text| Reply {
            content_type: TEXT_PLAIN_UTF8,
            text,
        })
        .into_iter()
        .collect()
    }
}

impl Serialize for Behaviour {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Behaviour::Echo => s.serialize_str("echo"),
            Behaviour::Silent => s.serialize_str("silent"),
            Behaviour::Reply(t) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("reply", t)?;
                m.end()
            }
        }
    }
}

/// `{ reply = "…" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyTable {
    reply: String,
}

struct BehaviourVisitor;

impl<'de> Visitor<'de> for BehaviourVisitor {
    type Value = Behaviour;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"echo\", \"silent\" or { reply = \"text\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Behaviour, E> {
        match v {
            "echo" => Ok(Behaviour::Echo),
            "silent" => Ok(Behaviour::Silent),
            other => Err(E::unknown_variant(other, &["echo", "silent"])),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Behaviour, A::Error> {
        let t = ReplyTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Behaviour::Reply(t.reply))
    }
}

impl<'de> Deserialize<'de> for Behaviour {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BehaviourVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct U {
        im: Behaviour,
    }

    #[test]
    fn echo_repeats_plain_text_only() {
        let r = Behaviour::Echo.replies(&ImMessage::plain("hello <b>"));
        assert_eq!(
            r,
            vec![Reply {
                content_type: "text/plain; charset=UTF-8",
                text: "hello <b>".into()
            }]
        );
        let html = ImMessage {
            content_type: "text/html".into(),
            text: Some("<b>hi</b>".into()),
            len: 9,
        };
        assert!(Behaviour::Echo.replies(&html).is_empty());
        assert_eq!(
            Behaviour::Reply("busy now".into()).replies(&html)[0].text,
            "busy now"
        );
    }

    #[test]
    fn silent_and_receipts_get_nothing() {
        assert!(Behaviour::Silent.replies(&ImMessage::plain("x")).is_empty());
        let receipt = ImMessage {
            content_type: "application/ms-imdn+xml".into(),
            text: None,
            len: 120,
        };
        assert!(Behaviour::Reply("r".into()).replies(&receipt).is_empty());
        assert!(Behaviour::Echo.replies(&receipt).is_empty());
    }

    #[test]
    fn the_three_spellings_round_trip_through_toml() {
        for (text, b) in [
            ("im = \"echo\"\n", Behaviour::Echo),
            ("im = \"silent\"\n", Behaviour::Silent),
            (
                "im = { reply = \"Out of office\" }\n",
                Behaviour::Reply("Out of office".into()),
            ),
        ] {
            let u: U = toml::from_str(text).unwrap();
            assert_eq!(u.im, b);
            assert_eq!(
                toml::from_str::<U>(&toml::to_string(&u).unwrap()).unwrap(),
                u
            );
        }
    }

    #[test]
    fn a_wrong_spelling_lists_the_choices() {
        let e = toml::from_str::<U>("im = \"ecco\"\n").unwrap_err();
        assert!(
            e.message()
                .contains("unknown variant `ecco`, expected `echo` or `silent`"),
            "{e}"
        );
        let e = toml::from_str::<U>("im = { replies = \"x\" }\n").unwrap_err();
        assert!(e.message().contains("unknown field `replies`"), "{e}");
        let e = toml::from_str::<U>("im = 3\n").unwrap_err();
        assert!(
            e.message()
                .contains("expected \"echo\", \"silent\" or { reply = \"text\" }"),
            "{e}"
        );
    }
}
