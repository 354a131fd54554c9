//! The discovered-partner watch list: what the Edge keeps per discovered partner (messages, distinct users,
//! throttling) and the `watch-list` event it writes to the events file when a partner's state changes.
//!
//! # The `watch-list` event (events file, schema 1)
//!
//! `{"schema":1,"event":"watch-list","time":…,"reason":…,"partners":[…]}`: `reason` is `new-partner` (a
//! discovered partner passed the federation rules for the first time, or again after it was dropped from a
//! full list), `throttled` (its first message over DiscoveredPartnerStandardRate in a one-second window),
//! `contacts-limit` (its first new user refused in a report period) or `shutdown` (the whole list, once, when
//! `serve` stops); `partners` holds the partner concerned (all of them at shutdown), each a [`WatchEntry`].
//! Decision lines carry `"event":"decision"`, so a reader tells the two apart by that key.

use serde::Serialize;
use time::OffsetDateTime;

use super::EVENT_SCHEMA;

/// One discovered partner on the watch list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchEntry {
    /// The partner's SIP domain.
    pub domain: String,
    /// Messages counted toward the rate since the Edge started (ACK, BYE and CANCEL do not count).
    pub messages: u64,
    /// Of those, in the current report period.
    pub messages_in_period: u64,
    /// Distinct users (Request-URI user parts) reached in the current report period.
    pub distinct_users: u64,
    /// True when more distinct users were seen than the Edge keeps (`distinct_users` is then a lower bound).
    pub users_capped: bool,
    /// Messages refused over DiscoveredPartnerStandardRate (503), since the Edge started.
    pub throttled: u64,
    /// Requests for new users refused over MaxContactsPerDiscoveredPartner (403), since the Edge started.
    pub contacts_refused: u64,
    /// DiscoveredPartnerStandardRate in force.
    pub rate_limit: u32,
    /// MaxContactsPerDiscoveredPartner in force; `null` when EnableDiscoveredPartnerContactsLimit is False.
    pub max_contacts: Option<u32>,
    /// DiscoveredPartnerReportPeriodMinutes in force.
    pub report_period_minutes: u32,
}

impl WatchEntry {
    /// One line for people (`serve`'s shutdown report).
    pub fn line(&self) -> String {
        let users = if self.users_capped {
            format!("{}+", self.distinct_users)
        } else {
            self.distinct_users.to_string()
        };
        let max = self
            .max_contacts
            .map_or_else(|| "no limit".to_owned(), |m| format!("limit {m}"));
        format!(
            "{}: {} messages ({} in this {}-minute period), {} distinct users ({max}), {} throttled over {}/s, {} new users refused",
            self.domain,
            self.messages,
            self.messages_in_period,
            self.report_period_minutes,
            users,
            self.throttled,
            self.rate_limit,
            self.contacts_refused
        )
    }
}

/// Why a `watch-list` event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchReason {
    /// A discovered partner entered the list.
    NewPartner,
    /// Its first throttled message in a one-second window.
    Throttled,
    /// Its first new user refused in a report period.
    ContactsLimit,
    /// The Edge stopped: the whole list.
    Shutdown,
}

/// A `watch-list` line of the events file (module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchEvent {
    /// Always [`EVENT_SCHEMA`].
    pub schema: u32,
    /// Always `watch-list`.
    pub event: &'static str,
    /// When (RFC 3339).
    #[serde(serialize_with = "super::event::rfc3339")]
    pub time: OffsetDateTime,
    /// Why it was written.
    pub reason: WatchReason,
    /// The partner concerned, or every partner at shutdown.
    pub partners: Vec<WatchEntry>,
}

impl WatchEvent {
    /// An event of `reason` about `partners`, now.
    pub fn new(reason: WatchReason, partners: Vec<WatchEntry>) -> Self {
        WatchEvent {
            schema: EVENT_SCHEMA,
            event: "watch-list",
            time: OffsetDateTime::now_utc(),
            reason,
            partners,
        }
    }

    /// The event as one JSON line.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_watch_list_line() {
        let entry = WatchEntry {
            domain: "acano.steven.lab".into(),
            messages: 25,
            messages_in_period: 25,
            distinct_users: 1,
            users_capped: false,
            throttled: 5,
            contacts_refused: 0,
            rate_limit: 20,
            max_contacts: Some(1000),
            report_period_minutes: 60,
        };
        assert_eq!(
            entry.line(),
            "acano.steven.lab: 25 messages (25 in this 60-minute period), 1 distinct users (limit 1000), 5 throttled over 20/s, 0 new users refused"
        );
        let ev = WatchEvent {
            time: datetime!(2026-12-02 13:00:00 UTC),
            ..WatchEvent::new(WatchReason::Throttled, vec![entry])
        };
        assert_eq!(
            ev.to_json_line().unwrap(),
            r#"{"schema":1,"event":"watch-list","time":"2026-12-02T13:00:00Z","reason":"throttled","partners":[{"domain":"acano.steven.lab","messages":25,"messages_in_period":25,"distinct_users":1,"users_capped":false,"throttled":5,"contacts_refused":0,"rate_limit":20,"max_contacts":1000,"report_period_minutes":60}]}"#
        );
    }
}
