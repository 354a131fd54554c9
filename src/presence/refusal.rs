//! Why the Edge refuses a SUBSCRIBE, and what it answers: a value, not an error (the rustls alert idea), that
//! knows its status, reason phrase, extra headers, `Warning` text and ms-diagnostics.

use crate::diagnostics::MsDiagnostic;

/// ms-diagnostics of a 488 for a SUBSCRIBE whose Accept names no format the Edge serves. The code is the one
/// MS-PRES §4.14.3.1 shows; the reason wording is synthetic (the real text was not found).
pub const DIAG_NOT_ACCEPTABLE: u32 = 2165;
/// Synthetic reason of [`DIAG_NOT_ACCEPTABLE`].
pub const REASON_NOT_ACCEPTABLE: &str =
    "None of the presence document formats in the Accept header is supported";
/// ms-diagnostics of a 503 when one connection holds the most subscriptions allowed. Synthetic code and
/// reason (edgesim's limit; no Microsoft source documents one).
pub const DIAG_CONNECTION_FULL: u32 = 2170;
/// Synthetic reason of [`DIAG_CONNECTION_FULL`].
pub const REASON_CONNECTION_FULL: &str = "Too many presence subscriptions on this connection";
/// ms-diagnostics of a 503 when a user has the most watchers allowed. Synthetic code and reason.
pub const DIAG_USER_FULL: u32 = 2171;
/// Synthetic reason of [`DIAG_USER_FULL`].
pub const REASON_USER_FULL: &str = "Too many presence subscriptions to this user";
/// `Retry-After` of a 503 for a subscription cap: subscriptions end slowly (expiry, unsubscribe).
pub const CAP_RETRY_AFTER: u32 = 60;

/// A refused SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: a header the Edge must read is missing or malformed.
    BadRequest {
        /// The header (`Expires`, `Event`, ...).
        header: &'static str,
        /// What is wrong, quoting the value.
        problem: String,
    },
    /// 489: a well-formed Event that is not `presence`.
    BadEvent {
        /// The package asked for.
        package: String,
    },
    /// 488: Accept names none of the three formats.
    NotAcceptable {
        /// The Accept header as received (empty when it was empty).
        accept: String,
    },
    /// 481: an in-dialog SUBSCRIBE for a subscription the Edge does not hold.
    NoSubscription,
    /// 503: the connection holds `max` subscriptions.
    ConnectionFull {
        /// `presence.max_subscriptions_per_connection`.
        max: usize,
    },
    /// 503: `user` has `max` subscriptions.
    UserFull {
        /// The presentity (`user@domain`).
        user: String,
        /// `presence.max_subscriptions_per_user`.
        max: usize,
    },
}

/// `399 agent "text"` (RFC 3261 §20.43), with `"` and `\` escaped and control characters dropped, since
/// `text` quotes what the peer sent.
pub fn warning_value(agent: &str, text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                safe.push('\\');
                safe.push(c);
            }
            c if c.is_control() => {}
            c => safe.push(c),
        }
    }
    format!("399 {agent} \"{safe}\"")
}

/// A value from the network shortened for a message: at most 60 characters, controls dropped.
pub(crate) fn quote(value: &str) -> String {
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    match clean.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

impl Refusal {
    /// The status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest { .. } => 400,
            Refusal::BadEvent { .. } => 489,
            Refusal::NotAcceptable { .. } => 488,
            Refusal::NoSubscription => 481,
            Refusal::ConnectionFull { .. } | Refusal::UserFull { .. } => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadRequest { .. } => "Bad Request",
            Refusal::BadEvent { .. } => "Bad Event",
            Refusal::NotAcceptable { .. } => "Not Acceptable Here",
            Refusal::NoSubscription => "Call/Transaction Does Not Exist",
            Refusal::ConnectionFull { .. } | Refusal::UserFull { .. } => "Service Unavailable",
        }
    }

    /// The text of the `Warning` header (a 400 explains itself there); render with [`warning_value`].
    pub fn warning(&self) -> Option<String> {
        match self {
            Refusal::BadRequest { header, problem } => {
                Some(format!("malformed {header}: {problem}"))
            }
            _ => None,
        }
    }

    /// Headers the response carries besides the copied ones: `Allow-Events` (489), `Retry-After` (503).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Refusal::BadEvent { .. } => vec![("Allow-Events", "presence".into())],
            Refusal::ConnectionFull { .. } | Refusal::UserFull { .. } => {
                vec![("Retry-After", CAP_RETRY_AFTER.to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// The ms-diagnostics the Edge adds (none toward the federation in faithful mode: the caller decides).
    pub fn diagnostic(&self) -> Option<MsDiagnostic> {
        let (code, reason) = match self {
            Refusal::NotAcceptable { .. } => (DIAG_NOT_ACCEPTABLE, REASON_NOT_ACCEPTABLE),
            Refusal::ConnectionFull { .. } => (DIAG_CONNECTION_FULL, REASON_CONNECTION_FULL),
            Refusal::UserFull { .. } => (DIAG_USER_FULL, REASON_USER_FULL),
            _ => return None,
        };
        Some(MsDiagnostic::new(code, &[("reason", reason)]))
    }

    /// One line for the events and the log: what happened, what the Edge answered, the fix.
    pub fn explanation(&self) -> String {
        let answered = format!("the Edge answered {} {}", self.status(), self.reason());
        match self {
            Refusal::BadRequest { header, problem } => format!(
                "The SUBSCRIBE's {header} is unusable ({problem}): {answered} with a Warning. Fix: send a valid {header} header."
            ),
            Refusal::BadEvent { package } => format!(
                "The SUBSCRIBE asks for the `{package}` event package, but the Edge's users serve only presence: {answered} with Allow-Events: presence. Fix: subscribe with Event: presence."
            ),
            Refusal::NotAcceptable { accept } => format!(
                "The SUBSCRIBE accepts only `{accept}`, none of application/msrtc-event-categories+xml, text/xml+msrtc.pidf, application/pidf+xml: {answered} with ms-diagnostics {DIAG_NOT_ACCEPTABLE}. Fix: add application/pidf+xml to Accept (or leave Accept out)."
            ),
            Refusal::NoSubscription => format!(
                "The in-dialog SUBSCRIBE refreshes a subscription the Edge does not hold (it expired, was ended, or its connection closed): {answered}. Fix: send a new SUBSCRIBE without a To tag."
            ),
            Refusal::ConnectionFull { max } => format!(
                "This connection already holds {max} presence subscriptions, presence.max_subscriptions_per_connection: {answered} with Retry-After: {CAP_RETRY_AFTER} and ms-diagnostics {DIAG_CONNECTION_FULL}. Fix: end subscriptions (Expires: 0), spread them over more connections, or raise the limit."
            ),
            Refusal::UserFull { user, max } => format!(
                "{user} already has {max} presence subscriptions, presence.max_subscriptions_per_user: {answered} with Retry-After: {CAP_RETRY_AFTER} and ms-diagnostics {DIAG_USER_FULL}. Fix: end subscriptions to that user, or raise the limit."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_knows_its_answer() {
        let bad = Refusal::BadRequest {
            header: "Expires",
            problem: "`soon` is not a number of seconds".into(),
        };
        assert_eq!((bad.status(), bad.reason()), (400, "Bad Request"));
        assert_eq!(
            bad.warning().as_deref(),
            Some("malformed Expires: `soon` is not a number of seconds")
        );
        assert_eq!(bad.diagnostic(), None);
        let ev = Refusal::BadEvent {
            package: "dialog".into(),
        };
        assert_eq!((ev.status(), ev.reason()), (489, "Bad Event"));
        assert_eq!(ev.headers(), vec![("Allow-Events", "presence".to_owned())]);
        let na = Refusal::NotAcceptable {
            accept: "application/xpidf+xml".into(),
        };
        assert_eq!((na.status(), na.reason()), (488, "Not Acceptable Here"));
        assert_eq!(
            na.diagnostic().map(|d| d.render()).as_deref(),
            Some(
                "2165;reason=\"None of the presence document formats in the Accept header is supported\""
            )
        );
        let full = Refusal::UserFull {
            user: "bob@skype.lab".into(),
            max: 2,
        };
        assert_eq!((full.status(), full.reason()), (503, "Service Unavailable"));
        assert_eq!(full.headers(), vec![("Retry-After", "60".to_owned())]);
        assert_eq!(
            full.diagnostic().map(|d| d.render()).as_deref(),
            Some("2171;reason=\"Too many presence subscriptions to this user\"")
        );
        assert_eq!(
            Refusal::ConnectionFull { max: 1 }
                .diagnostic()
                .map(|d| d.code),
            Some(2170)
        );
        assert_eq!(Refusal::NoSubscription.status(), 481);
        assert!(full.explanation().starts_with(
            "bob@skype.lab already has 2 presence subscriptions, presence.max_subscriptions_per_user: \
             the Edge answered 503 Service Unavailable"
        ));
    }

    #[test]
    fn a_warning_quotes_the_peer_safely() {
        assert_eq!(
            warning_value("sip.skype.lab", "bad `a\"b\\c\r\nX: y`"),
            "399 sip.skype.lab \"bad `a\\\"b\\\\cX: y`\""
        );
        assert_eq!(quote(&"x".repeat(70)), format!("{}…", "x".repeat(60)));
    }
}
