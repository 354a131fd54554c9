//! The header decisions of a SUBSCRIBE, each a pure function of header values: the Event package, the
//! document format from Accept, the granted expiry, NOTIFY vs BENOTIFY and the piggy-backed first state; and
//! the `Subscription-State` value of every NOTIFY.
//!
//! Choices where the sources are silent:
//! - Event packages compare case-insensitively (`Presence` is presence); parameters are kept, `id` is echoed
//!   in every NOTIFY (RFC 6665 §8.2.1).
//! - Accept: the Edge's order decides, not `q` (MS-PRES §1.3.3: "searches the Accept header for these presence
//!   document formats in this order"); `q=0` excludes a type. `*/*` and `application/*` match only
//!   `application/pidf+xml`, the standard format: the Microsoft formats are served only when named. No Accept
//!   header means `application/pidf+xml` (RFC 3856 §6.7); an empty one accepts nothing (488).
//! - Expires: digits only (anything else is 400); a value beyond `u32` saturates before the bounds apply;
//!   several Expires headers must agree.
//! - `Expires: 0` ends the subscription with `terminated;reason=timeout` (its granted time is zero).

use super::document::DocumentFormat;
use super::refusal::{Refusal, quote};

/// The Edge's expiry bounds, seconds (Set-CsUserServicesConfiguration: default 28800, minimum 1200 — a
/// shorter request is raised to it, never refused with 423 —, maximum 43200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryBounds {
    /// Granted when the SUBSCRIBE has no Expires.
    pub default_s: u32,
    /// A shorter non-zero request is raised to this.
    pub min_s: u32,
    /// A longer request is lowered to this.
    pub max_s: u32,
}

impl Default for ExpiryBounds {
    fn default() -> Self {
        ExpiryBounds {
            default_s: 28800,
            min_s: 1200,
            max_s: 43200,
        }
    }
}

/// What a SUBSCRIBE's Expires asks for, after the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `Expires: 0`: end the subscription (a fetch when it is new).
    Unsubscribe,
    /// The seconds granted.
    Granted(u32),
}

/// The expiry granted for the Expires values of a SUBSCRIBE (every Expires header, in order).
pub fn grant_expiry(values: &[String], bounds: &ExpiryBounds) -> Result<Expiry, Refusal> {
    let mut asked: Option<u64> = None;
    for v in values {
        let t = v.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::BadRequest {
                header: "Expires",
                problem: format!("`{}` is not a number of seconds", quote(t)),
            });
        }
        let n = t.bytes().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        if asked.is_some_and(|a| a != n) {
            return Err(Refusal::BadRequest {
                header: "Expires",
                problem: "several Expires headers with different values".into(),
            });
        }
        asked = Some(n);
    }
    Ok(match asked {
        None => Expiry::Granted(bounds.default_s),
        Some(0) => Expiry::Unsubscribe,
        Some(n) => {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            Expiry::Granted(n.clamp(bounds.min_s, bounds.max_s))
        }
    })
}

/// A parsed Event header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    /// The package, as written.
    pub package: String,
    /// The `id` parameter (RFC 6665), if any.
    pub id: Option<String>,
}

impl EventHeader {
    /// The value of a NOTIFY's Event header: `presence`, with `;id=` when the SUBSCRIBE had one.
    pub fn notify_value(&self) -> String {
        match &self.id {
            Some(id) => format!("presence;id={id}"),
            None => "presence".into(),
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// The Event header of a presence SUBSCRIBE: missing or malformed is 400, another package 489.
pub fn presence_event(value: Option<&str>) -> Result<EventHeader, Refusal> {
    let bad = |problem: String| Refusal::BadRequest {
        header: "Event",
        problem,
    };
    let value = value.ok_or_else(|| bad("the header is missing".into()))?;
    let mut parts = value.split(';');
    let package = parts.next().unwrap_or_default().trim();
    if !is_token(package) {
        return Err(bad(format!("`{}` is not an event package", quote(value))));
    }
    let mut id = None;
    for p in parts {
        let (name, val) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !is_token(name) || val.is_some_and(|v| !is_token(v)) {
            return Err(bad(format!("`{}` has a malformed parameter", quote(value))));
        }
        if name.eq_ignore_ascii_case("id") {
            id = val.map(str::to_owned);
        }
    }
    if !package.eq_ignore_ascii_case("presence") {
        return Err(Refusal::BadEvent {
            package: package.to_owned(),
        });
    }
    Ok(EventHeader {
        package: package.to_owned(),
        id,
    })
}

/// Whether a media-range of Accept (`type/subtype;params`) admits `format`, and is not excluded by `q=0`.
fn admits(range: &str, format: DocumentFormat) -> bool {
    let mut parts = range.split(';');
    let media = parts.next().unwrap_or_default().trim();
    let excluded = parts.any(|p| {
        p.split_once('=').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        })
    });
    if excluded {
        return false;
    }
    if media.eq_ignore_ascii_case(format.content_type()) {
        return true;
    }
    format == DocumentFormat::Pidf
        && (media == "*/*" || media.eq_ignore_ascii_case("application/*"))
}

/// The document format for a SUBSCRIBE's Accept (every Accept header joined with `,`; `None`: no header).
pub fn negotiate(accept: Option<&str>) -> Result<DocumentFormat, Refusal> {
    let Some(accept) = accept else {
        return Ok(DocumentFormat::Pidf);
    };
    let ranges: Vec<&str> = accept.split(',').map(str::trim).collect();
    DocumentFormat::PREFERENCE
        .into_iter()
        .find(|f| ranges.iter().any(|r| admits(r, *f)))
        .ok_or_else(|| Refusal::NotAcceptable {
            accept: quote(accept.trim()),
        })
}

/// What the subscriber's Supported and Proxy-Require say it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriberFeatures {
    /// `ms-benotify` in Supported or Proxy-Require (MS-SIP §4.4): state changes go as BENOTIFY.
    pub benotify: bool,
    /// `ms-piggyback-first-notify` in Supported (MS-SIP §3.4.5.1): the first state rides in the 200.
    pub piggyback: bool,
}

impl SubscriberFeatures {
    /// The features of a SUBSCRIBE from its option tags.
    pub fn of(supported: &[String], proxy_require: &[String]) -> Self {
        let has = |list: &[String], tag: &str| list.iter().any(|t| t.eq_ignore_ascii_case(tag));
        SubscriberFeatures {
            benotify: has(supported, "ms-benotify") || has(proxy_require, "ms-benotify"),
            piggyback: has(supported, "ms-piggyback-first-notify"),
        }
    }
}

/// Why a subscription ended (RFC 6665 §4.1.3 reasons the Edge uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Not refreshed in time, or `Expires: 0`.
    Timeout,
    /// The user no longer exists.
    Noresource,
    /// The Edge ended it (shutdown, or the library asked).
    Deactivated,
}

impl EndReason {
    /// The `reason=` token.
    pub fn token(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Noresource => "noresource",
            EndReason::Deactivated => "deactivated",
        }
    }
}

/// A `Subscription-State` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionState {
    /// `active;expires=N`.
    Active {
        /// Seconds left.
        expires: u32,
    },
    /// `pending;expires=N` (never sent by the Edge; read from other notifiers).
    Pending {
        /// Seconds left.
        expires: u32,
    },
    /// `terminated;reason=…` (reason as written, when any).
    Terminated {
        /// The reason token.
        reason: Option<String>,
    },
}

impl SubscriptionState {
    /// `terminated;reason=<reason>`.
    pub fn ended(reason: EndReason) -> Self {
        SubscriptionState::Terminated {
            reason: Some(reason.token().to_owned()),
        }
    }

    /// The header value.
    pub fn render(&self) -> String {
        match self {
            SubscriptionState::Active { expires } => format!("active;expires={expires}"),
            SubscriptionState::Pending { expires } => format!("pending;expires={expires}"),
            SubscriptionState::Terminated { reason: Some(r) } => format!("terminated;reason={r}"),
            SubscriptionState::Terminated { reason: None } => "terminated".into(),
        }
    }

    /// Reads a header value (a subscriber's view); `None` when the state is not one of the three.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split(';');
        let state = parts.next()?.trim().to_ascii_lowercase();
        let mut expires = None;
        let mut reason = None;
        for p in parts {
            if let Some((n, v)) = p.split_once('=') {
                match n.trim().to_ascii_lowercase().as_str() {
                    "expires" => expires = v.trim().parse::<u32>().ok(),
                    "reason" => reason = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        match state.as_str() {
            "active" => Some(SubscriptionState::Active {
                expires: expires.unwrap_or(0),
            }),
            "pending" => Some(SubscriptionState::Pending {
                expires: expires.unwrap_or(0),
            }),
            "terminated" => Some(SubscriptionState::Terminated { reason }),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
