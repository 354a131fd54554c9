//! What the subscription table tells the Edge to do, as data: answer the SUBSCRIBE, send a NOTIFY or
//! BENOTIFY, note that a subscription ended. Headers, bodies and CSeq, never bytes on a socket.

use std::time::Duration;

use super::negotiate::ExpiryBounds;
use super::refusal::Refusal;
use super::state::PresenceState;
use crate::diagnostics::MsDiagnostic;

/// How long a NOTIFY may stay unanswered before the subscription is dropped: SIP Timer F (64 × T1).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(32);

/// A connection, numbered by the Edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A subscription: its dialog (Call-ID, the subscriber's tag, the Edge's tag) and the Event `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId {
    /// Call-ID.
    pub call_id: String,
    /// The subscriber's (From) tag.
    pub remote_tag: String,
    /// The Edge's (To) tag.
    pub local_tag: String,
    /// The Event header's `id` parameter.
    pub event_id: Option<String>,
}

/// The table's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Subscriptions one connection may hold.
    pub max_per_connection: usize,
    /// Subscriptions one user may have.
    pub max_per_user: usize,
    /// Expiry bounds.
    pub expiry: ExpiryBounds,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_per_connection: 1000,
            max_per_user: 500,
            expiry: ExpiryBounds::default(),
        }
    }
}

/// A body with its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The document.
    pub text: String,
}

/// The answer to the SUBSCRIBE being handled. The Edge copies Via/From/To/Call-ID/CSeq, adds `to_tag`,
/// Contact (a 2xx creates or keeps a dialog), Server, Content-Type (from `body`) and Content-Length; renders
/// `warning` with [`super::warning_value`]; adds `diagnostic` unless it is faithful toward the federation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// The Edge's tag for the To header (the dialog's, or none on a refusal before one exists).
    pub to_tag: Option<String>,
    /// Further headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The piggy-backed document, if any.
    pub body: Option<Body>,
    /// The `Warning` text of a 400.
    pub warning: Option<String>,
    /// The ms-diagnostics of a refusal.
    pub diagnostic: Option<MsDiagnostic>,
    /// For the events and the log, on a refusal.
    pub explanation: Option<String>,
}

impl Response {
    /// The answer to a refused SUBSCRIBE: what [`super::Subscriptions::handle_subscribe`] returns for one, and
    /// what the Edge sends for a [`super::SubscribeRequest::from_message`] refusal.
    pub fn refusal(r: &Refusal, to_tag: Option<String>) -> Self {
        Response {
            status: r.status(),
            reason: r.reason(),
            to_tag,
            headers: r.headers(),
            body: None,
            warning: r.warning(),
            diagnostic: r.diagnostic(),
            explanation: Some(r.explanation()),
        }
    }
}

/// NOTIFY or BENOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyMethod {
    /// Answered by the subscriber.
    Notify,
    /// Best-effort, never answered (MS-SIP §4.4).
    Benotify,
}

impl NotifyMethod {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyMethod::Notify => "NOTIFY",
            NotifyMethod::Benotify => "BENOTIFY",
        }
    }
}

/// A NOTIFY or BENOTIFY to send in a subscription's dialog. The Edge adds Via, Max-Forwards, Contact and
/// Content-Length, and sends it on `conn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The connection the subscription came on.
    pub conn: ConnId,
    /// The subscription.
    pub id: SubscriptionId,
    /// The method.
    pub method: NotifyMethod,
    /// The Request-URI: the subscriber's Contact.
    pub request_uri: String,
    /// The From value (the SUBSCRIBE's To with the Edge's tag).
    pub from: String,
    /// The To value (the SUBSCRIBE's From).
    pub to: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number (the method is [`Notify::method`]).
    pub cseq: u32,
    /// Route headers, in order (the SUBSCRIBE's Record-Route).
    pub route: Vec<String>,
    /// `Event` and `subscription-state`, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The document, if any.
    pub body: Option<Body>,
    /// The state the body carries (for the events and the log).
    pub state: Option<PresenceState>,
}

/// Why a subscription is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// `Expires: 0`.
    Unsubscribed,
    /// Not refreshed in time.
    Expired,
    /// A NOTIFY got this error status.
    NotifyRejected(u16),
    /// A NOTIFY got no answer within [`NOTIFY_TIMEOUT`].
    NotifyTimedOut,
    /// Its connection closed.
    ConnectionLost,
    /// The user was removed (`terminated;reason=noresource`).
    UserRemoved,
    /// The Edge ended it (`terminated;reason=deactivated`).
    Deactivated,
}

/// What the Edge does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the SUBSCRIBE being handled.
    Respond(Response),
    /// Send a NOTIFY or BENOTIFY.
    Notify(Notify),
    /// A subscription ended (for the events and the log; any final NOTIFY is a separate action).
    Ended {
        /// The subscription.
        id: SubscriptionId,
        /// Its connection.
        conn: ConnId,
        /// Its presentity.
        user: String,
        /// Why.
        cause: EndCause,
    },
}
