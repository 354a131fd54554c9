//! Presence of the users behind the Edge (SUBSCRIBE/NOTIFY/BENOTIFY, `Event: presence`), as a socket-free
//! core: the Edge (inbound), `call --subscribe` and the emulated Expressway (outbound) wire it to messages.
//!
//! - [`state`]: availability numbers and classes (Lync's ranges), activity, note, display name.
//! - [`document`] / [`read`]: the three documents (enhanced-presence categories, msrtc.pidf, PIDF with RPID
//!   and CIPID), generated with every text escaped, and read back with a real XML parser.
//! - [`negotiate`]: Event, Accept (format in the Edge's order), Expires (default 28800, raised to 1200, lowered
//!   to 43200), BENOTIFY and piggy-backed first state, `Subscription-State`.
//! - [`table`]: the subscriptions as data with time passed in ([`Subscriptions`]): SUBSCRIBE, NOTIFY responses,
//!   timeouts, presence changes, closed connections → [`Action`]s ([`action`]).
//! - [`schedule`]: a user's presence over time from the configuration.
//! - [`client`]: the subscriber's side (the SUBSCRIBE headers, reading a NOTIFY).
//!
//! The wire facts and their sources are in `shared/notes/presence-im.md`; each module says which it follows
//! and marks its own choices.

pub mod action;
pub mod client;
pub mod document;
pub mod negotiate;
pub mod profile;
pub mod read;
pub mod refusal;
pub mod request;
pub mod schedule;
pub mod settings;
pub mod state;
pub mod table;

pub use action::{
    Action, Body, ConnId, EndCause, Limits, NOTIFY_TIMEOUT, Notify, NotifyMethod, Response,
    SubscriptionId,
};
pub use document::{DocumentFormat, escape, render};
pub use negotiate::{
    EndReason, EventHeader, Expiry, ExpiryBounds, SubscriberFeatures, SubscriptionState,
};
pub use read::DocumentError;
pub use refusal::{Refusal, warning_value};
pub use request::SubscribeRequest;
pub use schedule::{Schedule, Step};
pub use state::{Availability, PresenceState};
pub use table::{Subscription, Subscriptions};
