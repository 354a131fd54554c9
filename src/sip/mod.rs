//! SIP messages: tolerant parser, serializer, stream framing with limits, response builder.
//!
//! A [`Message`] keeps the bytes it was parsed from and only spans into them, so serializing is
//! a slice ([`Message::as_bytes`]) and typed views ([`Via`], [`NameAddr`], [`CSeq`], [`Uri`]) are
//! computed on demand. Extension methods (SERVICE, BENOTIFY, NEGOTIATE), compact and folded
//! headers, tel: and IPv6 URIs are all accepted.

mod builder;
mod error;
mod framer;
mod headers;
mod message;
mod text;
pub mod ua;
mod uri;
mod validate;

pub use builder::{RequestBuilder, ResponseBuilder, response_from_raw};
pub use error::SipError;
pub use framer::{Frame, Framer};
pub use headers::{CSeq, Contact, NameAddr, Via};
pub use message::{Header, HeaderKind, Limits, Message, long_name};
pub use text::Param;
pub use uri::{Uri, unescape};

/// Best-effort 400 (or the error's status) for a message whose head failed to parse, with a
/// `Warning` header naming the error; `None` if no Via line could be found.
pub fn bad_request_from_raw(raw: &[u8], error: &SipError, agent: &str) -> Option<bytes::Bytes> {
    let (code, reason) = error.status();
    let warning = error.warning(agent);
    response_from_raw(raw, code, reason, &[("Warning", &warning)])
}
