//! Reading the three presence documents back into a [`PresenceState`], as a subscriber does: `edgesim call
//! --subscribe` and the emulated Expressway read the Edge's NOTIFYs with it, and the tests check every
//! generated document with it (a real XML parser, namespaces checked).
//!
//! Input is hostile: at most [`MAX_DOCUMENT_BYTES`], UTF-8, no DTD, at most [`MAX_NODES`] nodes. The
//! categories document carries the exact availability number and activity token, and so does an msrtc.pidf
//! document with `userInfo/states/state avail=`; without it, and in PIDF, only a class is carried, read back
//! as the class's canonical number (the inverse of [`super::document::msrtc_aggregates`] and
//! [`super::document::pidf_rpid`]).

use roxmltree::{Document, Node, ParsingOptions};

use super::document::{
    DocumentFormat, NS_CATEGORIES, NS_CIPID, NS_CONTACT_CARD, NS_MSRTC, NS_NOTE, NS_PIDF, NS_RPID,
    NS_STATE, RPID_OTHER_BRB, RPID_OTHER_DND,
};
use super::state::{Availability, PresenceState, is_activity_token};

/// The largest document read, bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most XML nodes read.
pub const MAX_NODES: u32 = 10_000;

/// Why a presence document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The body exceeds [`MAX_DOCUMENT_BYTES`].
    #[error("presence document of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not UTF-8.
    #[error("presence document is not UTF-8")]
    NotUtf8,
    /// The XML does not parse (or has a DTD, or too many nodes).
    #[error("presence document is not well-formed XML: {0}")]
    Xml(String),
    /// The Content-Type is none of the three formats.
    #[error("`{0}` is not a presence document type")]
    UnknownType(String),
    /// The root element is not the format's.
    #[error("root element is {found}, expected {expected}")]
    WrongRoot {
        /// `{namespace}name` expected.
        expected: String,
        /// `{namespace}name` found.
        found: String,
    },
    /// A required part is missing.
    #[error("presence document has no {0}")]
    Missing(&'static str),
    /// A number does not parse.
    #[error("{what} `{value}` is not a number")]
    BadNumber {
        /// Which number.
        what: &'static str,
        /// As written.
        value: String,
    },
}

/// Reads a document of the format its Content-Type names.
pub fn read(content_type: &str, body: &[u8]) -> Result<PresenceState, DocumentError> {
    let format = DocumentFormat::from_content_type(content_type)
        .ok_or_else(|| DocumentError::UnknownType(content_type.trim().to_owned()))?;
    read_as(format, body)
}

/// Reads a document of `format`.
pub fn read_as(format: DocumentFormat, body: &[u8]) -> Result<PresenceState, DocumentError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            len: body.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| DocumentError::NotUtf8)?;
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let doc =
        Document::parse_with_options(text, opts).map_err(|e| DocumentError::Xml(e.to_string()))?;
    let root = doc.root_element();
    match format {
        DocumentFormat::Categories => categories(root),
        DocumentFormat::MsrtcPidf => msrtc(root),
        DocumentFormat::Pidf => pidf(root),
    }
}

fn expect_root(root: Node, ns: &str, name: &str) -> Result<(), DocumentError> {
    let tag = root.tag_name();
    if tag.name() == name && tag.namespace() == Some(ns) {
        return Ok(());
    }
    Err(DocumentError::WrongRoot {
        expected: format!("{{{ns}}}{name}"),
        found: format!("{{{}}}{}", tag.namespace().unwrap_or(""), tag.name()),
    })
}

/// The element children of `n` named `name` in `ns`.
fn children<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(ns)
    })
}

fn child<'a, 'i>(n: Node<'a, 'i>, ns: &'a str, name: &'a str) -> Option<Node<'a, 'i>> {
    children(n, ns, name).next()
}

/// The first descendant of `n` named `name` in `ns`.
fn descendant<'a, 'i>(n: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    n.descendants().find(|c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(ns)
    })
}

/// The text of an element, `None` when empty.
fn text(n: Option<Node>) -> Option<String> {
    n.and_then(|n| n.text())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn number(what: &'static str, value: &str) -> Result<u32, DocumentError> {
    value.trim().parse().map_err(|_| DocumentError::BadNumber {
        what,
        value: value.to_owned(),
    })
}

fn categories(root: Node) -> Result<PresenceState, DocumentError> {
    expect_root(root, NS_CATEGORIES, "categories")?;
    let mut state: Option<PresenceState> = None;
    let mut note = None;
    let mut display_name = None;
    for cat in children(root, NS_CATEGORIES, "category") {
        match cat.attribute("name") {
            Some("state") if state.is_none() => {
                let Some(st) = child(cat, NS_STATE, "state") else {
                    continue;
                };
                let Some(av) = child(st, NS_STATE, "availability") else {
                    continue;
                };
                let availability = number("availability", av.text().unwrap_or_default())?;
                let activity = child(st, NS_STATE, "activity")
                    .and_then(|a| a.attribute("token"))
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned);
                state = Some(PresenceState {
                    availability,
                    activity,
                    note: None,
                    display_name: None,
                });
            }
            Some("note") => {
                note = text(child(cat, NS_NOTE, "note").and_then(|n| child(n, NS_NOTE, "body")));
            }
            Some("contactCard") => {
                display_name = text(
                    child(cat, NS_CONTACT_CARD, "contactCard")
                        .and_then(|c| child(c, NS_CONTACT_CARD, "identity"))
                        .and_then(|i| child(i, NS_CONTACT_CARD, "name"))
                        .and_then(|n| child(n, NS_CONTACT_CARD, "displayName")),
                );
            }
            _ => {}
        }
    }
    let mut state = state.ok_or(DocumentError::Missing(
        "state category with an availability",
    ))?;
    state.note = note;
    state.display_name = display_name;
    Ok(state)
}

/// The class of MS-SIP §2.2.1 aggregates, and `on-the-phone` for activity 500–599.
fn msrtc_class(avail: u32, act: u32) -> (Availability, Option<&'static str>) {
    if avail < 100 {
        return (Availability::Offline, None);
    }
    match act {
        100..=199 | 700..=799 => (Availability::Away, None),
        200..=299 => (Availability::AvailableIdle, None),
        300..=399 => (Availability::BeRightBack, None),
        500..=599 => (Availability::Busy, Some("on-the-phone")),
        600..=699 => (Availability::Busy, None),
        _ => (Availability::Available, None),
    }
}

fn msrtc(root: Node) -> Result<PresenceState, DocumentError> {
    expect_root(root, NS_MSRTC, "presentity")?;
    let aggregate = |name: &'static str| -> Result<Option<u32>, DocumentError> {
        child(root, NS_MSRTC, name)
            .and_then(|n| n.attribute("aggregate"))
            .map(|v| number(name, v))
            .transpose()
    };
    let avail =
        aggregate("availability")?.ok_or(DocumentError::Missing("availability aggregate"))?;
    let act = aggregate("activity")?.unwrap_or(0);
    let user_info = child(root, NS_MSRTC, "userInfo");
    let state = user_info
        .and_then(|u| child(u, NS_MSRTC, "states"))
        .and_then(|s| child(s, NS_MSRTC, "state"));
    let (availability, activity) = match state.and_then(|s| s.attribute("avail")) {
        // The Lync number the user published, with its activity token as the text.
        Some(avail) => (
            number("userInfo state avail", avail)?,
            text(state).filter(|t| is_activity_token(t)),
        ),
        None => {
            let (class, activity) = msrtc_class(avail, act);
            (class.canonical(), activity.map(str::to_owned))
        }
    };
    Ok(PresenceState {
        availability,
        activity,
        note: text(user_info.and_then(|u| child(u, NS_MSRTC, "note"))),
        display_name: child(root, NS_MSRTC, "displayName")
            .and_then(|d| d.attribute("displayName"))
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
    })
}

fn pidf(root: Node) -> Result<PresenceState, DocumentError> {
    expect_root(root, NS_PIDF, "presence")?;
    let tuple = child(root, NS_PIDF, "tuple").ok_or(DocumentError::Missing("tuple"))?;
    let basic = child(tuple, NS_PIDF, "status")
        .and_then(|s| child(s, NS_PIDF, "basic"))
        .and_then(|b| b.text())
        .ok_or(DocumentError::Missing("tuple/status/basic"))?;
    let open = basic.trim().eq_ignore_ascii_case("open");
    let (mut acts, mut other) = (Vec::new(), None);
    if let Some(a) = descendant(root, NS_RPID, "activities") {
        for c in a.children().filter(|c| c.is_element()) {
            if c.tag_name().name() == "other" {
                other = c.text().map(|t| t.trim().to_owned());
            } else {
                acts.push(c.tag_name().name());
            }
        }
    }
    let idle = descendant(root, NS_RPID, "user-input")
        .and_then(|u| u.text())
        .is_some_and(|t| t.trim() == "idle");
    let has = |name: &str| acts.contains(&name);
    let activity = if has("on-the-phone") {
        Some("on-the-phone")
    } else if has("meeting") {
        Some("in-a-meeting")
    } else if has("presentation") {
        Some("in-presentation")
    } else {
        None
    };
    let class = if !open {
        Availability::Offline
    } else if other.as_deref() == Some(RPID_OTHER_DND) {
        Availability::DoNotDisturb
    } else if other.as_deref() == Some(RPID_OTHER_BRB) {
        Availability::BeRightBack
    } else if activity.is_some() || has("busy") {
        if idle {
            Availability::BusyIdle
        } else {
            Availability::Busy
        }
    } else if [
        "away",
        "vacation",
        "holiday",
        "permanent-absence",
        "sleeping",
    ]
    .iter()
    .any(|a| has(a))
    {
        Availability::Away
    } else if idle {
        Availability::AvailableIdle
    } else {
        Availability::Available
    };
    let busy_class = matches!(class, Availability::Busy | Availability::BusyIdle);
    Ok(PresenceState {
        availability: class.canonical(),
        activity: activity.filter(|_| busy_class).map(str::to_owned),
        note: text(child(tuple, NS_PIDF, "note")).or_else(|| text(child(root, NS_PIDF, "note"))),
        display_name: text(descendant(root, NS_CIPID, "display-name")),
    })
}
