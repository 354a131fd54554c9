//! What arrives in an IM conversation, decoded: the first message embedded in the INVITE (`ms-text-format:
//! text/plain; charset=UTF-8; ms-body=<base64>`, SIPE `sipmsg.c`), an in-dialog or page-mode MESSAGE, and an
//! INFO typing notice (`<KeyboardActivity><status status="type"/></KeyboardActivity>`, SIPE `sipe-user.c`).
//!
//! Every parser is bounded (a text over the limit is an error before it is decoded), never panics, and
//! returns an [`ImError`] the Edge answers with 400 and a Warning. Text types (`text/plain`, `text/html`,
//! `text/rtf`) must be UTF-8 (`charset` absent, `utf-8` or `us-ascii`); any other type is recorded (type and
//! size) without its content.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The default bound on one message's decoded text, bytes (`im.max_text_bytes`).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 64 * 1024;
/// The Content-Type of the users' replies.
pub const TEXT_PLAIN_UTF8: &str = "text/plain; charset=UTF-8";
/// The Content-Type of an INFO typing notice.
pub const TYPING_CONTENT_TYPE: &str = "application/xml";

/// Why IM input is refused (400 with a Warning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImError {
    /// `ms-body` is not base64.
    #[error("ms-body of ms-text-format is not base64")]
    BadBase64,
    /// A charset other than UTF-8 or US-ASCII.
    #[error("charset `{0}` is not supported (only UTF-8)")]
    UnsupportedCharset(String),
    /// The text is not valid UTF-8.
    #[error("the message text is not valid UTF-8")]
    NotUtf8,
    /// The text exceeds the limit.
    #[error("message of {len} bytes exceeds the limit of {limit} (im.max_text_bytes)")]
    TooLarge {
        /// Its size (decoded, or as announced by the encoding).
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A body without Content-Type.
    #[error("a {0}-byte body without Content-Type")]
    NoContentType(usize),
    /// An XML body that does not parse.
    #[error("the XML body is not well-formed: {0}")]
    BadXml(String),
}

impl ImError {
    /// The status and reason phrase the Edge answers with.
    pub fn status(&self) -> (u16, &'static str) {
        (400, "Bad Request")
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImMessage {
    /// The media type, lower-cased, without parameters (`text/plain`).
    pub content_type: String,
    /// The text, for text types.
    pub text: Option<String>,
    /// The size of the content, bytes.
    pub len: usize,
}

impl ImMessage {
    /// A plain-text message.
    pub fn plain(text: &str) -> Self {
        ImMessage {
            content_type: "text/plain".into(),
            text: Some(text.to_owned()),
            len: text.len(),
        }
    }

    /// The text of a `text/plain` message.
    pub fn plain_text(&self) -> Option<&str> {
        (self.content_type == "text/plain")
            .then_some(self.text.as_deref())
            .flatten()
    }
}

/// The media type and the parameters of a Content-Type-like value.
fn split_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(n, v)| {
            (
                n.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    (media, params)
}

fn is_text_type(media: &str) -> bool {
    matches!(media, "text/plain" | "text/html" | "text/rtf")
}

/// The content of `media` as a message: text types checked and decoded, others recorded.
fn decode(
    media: String,
    charset: Option<&str>,
    bytes: &[u8],
    limit: usize,
) -> Result<ImMessage, ImError> {
    if bytes.len() > limit {
        return Err(ImError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let text = if is_text_type(&media) {
        if let Some(c) = charset
            .filter(|c| !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("us-ascii"))
        {
            return Err(ImError::UnsupportedCharset(c.chars().take(40).collect()));
        }
        Some(
            std::str::from_utf8(bytes)
                .map_err(|_| ImError::NotUtf8)?
                .to_owned(),
        )
    } else {
        None
    };
    Ok(ImMessage {
        content_type: media,
        text,
        len: bytes.len(),
    })
}

/// The first message of an INVITE's `ms-text-format` value (`ms-im-format` is a formatted copy of the
/// same message, recorded by the caller as a header and not decoded). No `ms-body`: `Ok(None)`.
pub fn embedded_first_message(value: &str, limit: usize) -> Result<Option<ImMessage>, ImError> {
    let (media, params) = split_type(value);
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(b64) = param("ms-body") else {
        return Ok(None);
    };
    // Four base64 characters carry three bytes: refuse an oversized body before decoding it.
    let announced = b64.len() / 4 * 3;
    if announced > limit.saturating_add(3) {
        return Err(ImError::TooLarge {
            len: announced,
            limit,
        });
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(b64).map_err(|_| ImError::BadBase64)?;
    decode(media, param("charset"), &bytes, limit).map(Some)
}

/// An `ms-text-format` value carrying `text` (what `call --im` puts in its INVITE).
pub fn ms_text_format(text: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("{TEXT_PLAIN_UTF8}; ms-body={b64}")
}

/// A MESSAGE body with its Content-Type (in a dialog or page-mode). An empty body without type is an empty
/// message of no type.
pub fn message(
    content_type: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<ImMessage, ImError> {
    let Some(ct) = content_type else {
        if body.is_empty() {
            return Ok(ImMessage {
                content_type: String::new(),
                text: None,
                len: 0,
            });
        }
        return Err(ImError::NoContentType(body.len()));
    };
    let (media, params) = split_type(ct);
    let charset = params
        .iter()
        .find(|(n, _)| n == "charset")
        .map(|(_, v)| v.as_str());
    decode(media, charset, body, limit)
}

/// What a typing notice says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typing {
    /// `status="type"`.
    Typing,
    /// `status="idle"`.
    Idle,
    /// Another status, as written.
    Other(String),
}

/// What an in-dialog INFO carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info {
    /// A KeyboardActivity notice.
    Typing(Typing),
    /// Anything else: its media type (and root element for XML).
    Other(String),
}

/// The largest INFO body read as XML, bytes.
pub const MAX_INFO_BYTES: usize = 8 * 1024;

/// An INFO body. XML (`application/xml`, `text/xml`) must be well-formed; a `KeyboardActivity` root is a
/// typing notice; anything else is recorded.
pub fn info(content_type: Option<&str>, body: &[u8]) -> Result<Info, ImError> {
    let (media, _) = split_type(content_type.unwrap_or_default());
    if media != "application/xml" && media != "text/xml" {
        if media.is_empty() && !body.is_empty() {
            return Err(ImError::NoContentType(body.len()));
        }
        return Ok(Info::Other(media));
    }
    if body.len() > MAX_INFO_BYTES {
        return Err(ImError::TooLarge {
            len: body.len(),
            limit: MAX_INFO_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| ImError::NotUtf8)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1000,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| ImError::BadXml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "KeyboardActivity" {
        return Ok(Info::Other(format!("{media} <{}>", root.tag_name().name())));
    }
    let status = root
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "status")
        .and_then(|s| s.attribute("status"))
        .unwrap_or_default();
    Ok(Info::Typing(match status {
        "type" => Typing::Typing,
        "idle" => Typing::Idle,
        s => Typing::Other(s.chars().take(40).collect()),
    }))
}

/// A typing notice body, as SIPE sends it.
pub fn typing_body(typing: bool) -> String {
    format!(
        "<?xml version=\"1.0\"?><KeyboardActivity> <status status=\"{}\" /></KeyboardActivity>",
        if typing { "type" } else { "idle" }
    )
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
