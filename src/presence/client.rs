//! The subscriber's side, for `edgesim call --subscribe` and the emulated Expressway: the headers of a
//! presence SUBSCRIBE, and what a NOTIFY (or a piggy-backed 200) says.

use super::document::DocumentFormat;
use super::negotiate::SubscriptionState;
use super::read::{DocumentError, read};
use super::state::PresenceState;

/// How to subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The formats offered in Accept, in this order; empty: no Accept header (PIDF by RFC 3856 §6.7).
    pub formats: Vec<DocumentFormat>,
    /// Advertise `ms-benotify` in Supported.
    pub benotify: bool,
    /// Also put `ms-benotify` in Proxy-Require, as a Lync client does (MS-PRES §4.11); a proxy that does not
    /// know it answers 420.
    pub proxy_require_benotify: bool,
    /// Advertise `ms-piggyback-first-notify`.
    pub piggyback: bool,
    /// The Expires asked for; none: no header (the notifier's default).
    pub expires: Option<u32>,
}

impl Default for SubscribeOptions {
    /// What a Lync client sends to a federated contact (MS-PRES §4.11), minus the Proxy-Require.
    fn default() -> Self {
        SubscribeOptions {
            formats: DocumentFormat::PREFERENCE.to_vec(),
            benotify: true,
            proxy_require_benotify: false,
            piggyback: true,
            expires: None,
        }
    }
}

impl SubscribeOptions {
    /// The SUBSCRIBE's presence headers, in order (Event, Accept, Supported, Proxy-Require, Expires).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("Event", "presence".to_owned())];
        if !self.formats.is_empty() {
            let list: Vec<&str> = self.formats.iter().map(|f| f.content_type()).collect();
            h.push(("Accept", list.join(", ")));
        }
        if self.benotify {
            h.push(("Supported", "ms-benotify".into()));
        }
        if self.proxy_require_benotify {
            h.push(("Proxy-Require", "ms-benotify".into()));
        }
        if self.piggyback {
            h.push(("Supported", "ms-piggyback-first-notify".into()));
        }
        if let Some(e) = self.expires {
            h.push(("Expires", e.to_string()));
        }
        h
    }
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// No or an unreadable `Subscription-State`.
    #[error("no readable Subscription-State (got {0:?})")]
    BadState(Option<String>),
    /// A body without Content-Type.
    #[error("a {0}-byte body without Content-Type")]
    UntypedBody(usize),
    /// The document does not read.
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// What one NOTIFY, BENOTIFY or piggy-backed 200 told the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The subscription's state.
    pub subscription: SubscriptionState,
    /// The presence it carries (none without a body).
    pub presence: Option<PresenceState>,
}

impl Notification {
    /// Reads a notification from its `Subscription-State`, `Content-Type` and body.
    pub fn read(
        subscription_state: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Self, NotificationError> {
        let subscription = subscription_state
            .and_then(SubscriptionState::parse)
            .ok_or_else(|| NotificationError::BadState(subscription_state.map(str::to_owned)))?;
        let presence = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            let ct = content_type.ok_or(NotificationError::UntypedBody(body.len()))?;
            Some(read(ct, body)?)
        };
        Ok(Notification {
            subscription,
            presence,
        })
    }

    /// One line as a Skype client would show it: `active (expires in 3600 s): Busy (In a meeting)`.
    pub fn describe(&self) -> String {
        let sub = match &self.subscription {
            SubscriptionState::Active { expires } => format!("active (expires in {expires} s)"),
            SubscriptionState::Pending { expires } => format!("pending (expires in {expires} s)"),
            SubscriptionState::Terminated { reason: Some(r) } => format!("terminated ({r})"),
            SubscriptionState::Terminated { reason: None } => "terminated".into(),
        };
        match &self.presence {
            Some(p) => format!("{sub}: {}", p.describe()),
            None => sub,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::{Availability, render};

    #[test]
    fn a_lync_style_subscribe() {
        let h = SubscribeOptions::default().headers();
        assert_eq!(
            h,
            vec![
                ("Event", "presence".to_owned()),
                (
                    "Accept",
                    "application/msrtc-event-categories+xml, text/xml+msrtc.pidf, application/pidf+xml"
                        .to_owned()
                ),
                ("Supported", "ms-benotify".to_owned()),
                ("Supported", "ms-piggyback-first-notify".to_owned()),
            ]
        );
        let cisco = SubscribeOptions {
            formats: vec![DocumentFormat::Pidf],
            benotify: false,
            proxy_require_benotify: false,
            piggyback: false,
            expires: Some(3600),
        };
        assert_eq!(
            cisco.headers(),
            vec![
                ("Event", "presence".to_owned()),
                ("Accept", "application/pidf+xml".to_owned()),
                ("Expires", "3600".to_owned()),
            ]
        );
        let strict = SubscribeOptions {
            formats: Vec::new(),
            proxy_require_benotify: true,
            ..SubscribeOptions::default()
        };
        assert!(
            strict
                .headers()
                .contains(&("Proxy-Require", "ms-benotify".to_owned()))
        );
        assert!(!strict.headers().iter().any(|(n, _)| *n == "Accept"));
    }

    #[test]
    fn a_notification_reads_state_and_document() {
        let mut s = PresenceState::of(Availability::Busy);
        s.activity = Some("in-a-meeting".into());
        let body = render(DocumentFormat::Categories, "bob@skype.lab", &s);
        let n = Notification::read(
            Some("active;expires=3599"),
            Some("application/msrtc-event-categories+xml"),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(n.presence.as_ref(), Some(&s));
        assert_eq!(
            n.describe(),
            "active (expires in 3599 s): Busy (In a meeting)"
        );
        let end = Notification::read(Some("terminated;reason=timeout"), None, b"").unwrap();
        assert_eq!(end.describe(), "terminated (timeout)");
        assert_eq!(end.presence, None);
    }

    #[test]
    fn an_unreadable_notification_says_why() {
        assert_eq!(
            Notification::read(None, None, b""),
            Err(NotificationError::BadState(None))
        );
        assert_eq!(
            Notification::read(Some("active"), None, b"<x/>"),
            Err(NotificationError::UntypedBody(4))
        );
        assert!(matches!(
            Notification::read(Some("active"), Some("application/pidf+xml"), b"<x"),
            Err(NotificationError::Document(DocumentError::Xml(_)))
        ));
    }
}
