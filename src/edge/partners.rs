//! What the Edge counts per discovered partner, shared by all connections: the messages of the current
//! one-second window (DiscoveredPartnerStandardRate), the distinct users of the current report period
//! (MaxContactsPerDiscoveredPartner, DiscoveredPartnerReportPeriodMinutes), and the watch-list totals. The rule
//! itself is the rulebook's ([`rules::partners::discovered_partner_limit`]); this module only counts, with the
//! time it is given, so its unit tests drive the clock.
//!
//! Bounded, because a peer can invent domains (each needs an SRV record and a certificate that pass the rules,
//! but a lab DNS makes that cheap): at most [`MAX_PARTNERS`] partners, the one seen longest ago dropped to make
//! room (the watch list counts the drops); per partner at most MaxContactsPerDiscoveredPartner users (the most
//! the rule needs), or [`USERS_WITHOUT_LIMIT`] when the limit is off (then `users_capped` says the count is a
//! lower bound).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::time::{Duration, Instant};

use super::Edge;
use crate::config::federation::DiscoveredPartnerLimits;
use crate::diagnostics::{WatchEntry, WatchEvent, WatchReason};
use crate::rules::{DomainName, Finding, PartnerCounts};

/// The most discovered partners the Edge keeps.
pub const MAX_PARTNERS: usize = 1024;
/// The most distinct users kept per partner when EnableDiscoveredPartnerContactsLimit is False.
pub const USERS_WITHOUT_LIMIT: usize = 1000;

/// One discovered partner's counts.
#[derive(Debug)]
struct Partner {
    window_start: Instant,
    in_window: u32,
    throttle_reported: bool,
    period_start: Instant,
    users: HashSet<String>,
    users_capped: bool,
    limit_reported: bool,
    messages: u64,
    messages_in_period: u64,
    throttled: u64,
    contacts_refused: u64,
    last_seen: Instant,
}

impl Partner {
    fn new(now: Instant) -> Self {
        Partner {
            window_start: now,
            in_window: 0,
            throttle_reported: false,
            period_start: now,
            users: HashSet::new(),
            users_capped: false,
            limit_reported: false,
            messages: 0,
            messages_in_period: 0,
            throttled: 0,
            contacts_refused: 0,
            last_seen: now,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<DomainName, Partner>,
    dropped: u64,
}

/// The discovered partners of one Edge.
#[derive(Debug)]
pub(super) struct Partners {
    limits: DiscoveredPartnerLimits,
    inner: Mutex<Inner>,
}

/// What one request did to the watch list: the rule's finding, and the change worth an event.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// The limit's refusal, if any.
    pub(super) finding: Option<Finding>,
    /// Why to write a `watch-list` event, with the partner's entry after this request.
    pub(super) change: Option<(WatchReason, WatchEntry)>,
}

impl Partners {
    /// No partners yet.
    pub(super) fn new(limits: DiscoveredPartnerLimits) -> Self {
        Partners {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn user_cap(&self) -> usize {
        self.limits.max_contacts.map_or(USERS_WITHOUT_LIMIT, |m| {
            usize::try_from(m).unwrap_or(usize::MAX)
        })
    }

    /// Counts one request of `domain` for `user` at `now` (`counted`: it counts toward the rate) and asks
    /// `rule` with the counts; a user the rule lets through is remembered.
    pub(super) fn observe(
        &self,
        domain: &DomainName,
        user: Option<&str>,
        counted: bool,
        now: Instant,
        rule: impl FnOnce(PartnerCounts) -> Option<Finding>,
    ) -> Observed {
        let Ok(mut inner) = self.inner.lock() else {
            // A panic elsewhere poisoned the lock: judge without counting rather than refuse everyone.
            return Observed {
                finding: rule(PartnerCounts::default()),
                change: None,
            };
        };
        let mut change = None;
        if !inner.map.contains_key(domain) {
            if inner.map.len() >= MAX_PARTNERS {
                let oldest = inner
                    .map
                    .iter()
                    .min_by_key(|(_, p)| p.last_seen)
                    .map(|(d, _)| d.clone());
                if let Some(d) = oldest {
                    inner.map.remove(&d);
                    inner.dropped += 1;
                }
            }
            change = Some(WatchReason::NewPartner);
        }
        let period = Duration::from_secs(self.limits.report_period_secs.max(1));
        let cap = self.user_cap();
        let p = inner
            .map
            .entry(domain.clone())
            .or_insert_with(|| Partner::new(now));
        p.last_seen = now;
        if now.duration_since(p.period_start) >= period {
            p.period_start = now;
            p.users.clear();
            p.users_capped = false;
            p.limit_reported = false;
            p.messages_in_period = 0;
        }
        if counted {
            if now.duration_since(p.window_start) >= Duration::from_secs(1) {
                p.window_start = now;
                p.in_window = 0;
                p.throttle_reported = false;
            }
            p.in_window = p.in_window.saturating_add(1);
            p.messages += 1;
            p.messages_in_period += 1;
        }
        let user = user.map(str::to_ascii_lowercase);
        let new_user = user.as_ref().is_some_and(|u| !p.users.contains(u));
        let counts = PartnerCounts {
            in_second: if counted { p.in_window } else { 0 },
            distinct_users: u32::try_from(p.users.len()).unwrap_or(u32::MAX),
            new_user,
        };
        let finding = rule(counts);
        match &finding {
            Some(Finding::PartnerThrottled { .. }) => {
                p.throttled += 1;
                if !p.throttle_reported {
                    p.throttle_reported = true;
                    change = change.or(Some(WatchReason::Throttled));
                }
            }
            Some(Finding::PartnerContactsLimit { .. }) => {
                p.contacts_refused += 1;
                if !p.limit_reported {
                    p.limit_reported = true;
                    change = change.or(Some(WatchReason::ContactsLimit));
                }
            }
            _ => {
                if let Some(u) = user.filter(|_| new_user) {
                    if p.users.len() < cap {
                        p.users.insert(u);
                    } else {
                        p.users_capped = true;
                    }
                }
            }
        }
        let entry = change.map(|r| (r, self.entry(domain, p)));
        Observed {
            finding,
            change: entry,
        }
    }

    fn entry(&self, domain: &DomainName, p: &Partner) -> WatchEntry {
        WatchEntry {
            domain: domain.to_string(),
            messages: p.messages,
            messages_in_period: p.messages_in_period,
            distinct_users: p.users.len() as u64,
            users_capped: p.users_capped,
            throttled: p.throttled,
            contacts_refused: p.contacts_refused,
            rate_limit: self.limits.rate_per_sec,
            max_contacts: self.limits.max_contacts,
            report_period_minutes: u32::try_from(self.limits.report_period_secs / 60)
                .unwrap_or(u32::MAX),
        }
    }

    /// Every partner's entry, by domain; and how many partners were dropped to make room.
    pub(super) fn list(&self) -> (Vec<WatchEntry>, u64) {
        let Ok(inner) = self.inner.lock() else {
            return (Vec::new(), 0);
        };
        let mut list: Vec<WatchEntry> = inner.map.iter().map(|(d, p)| self.entry(d, p)).collect();
        list.sort_by(|a, b| a.domain.cmp(&b.domain));
        (list, inner.dropped)
    }
}

impl Edge {
    /// The discovered-partner watch list: per partner (by domain) its messages, distinct users, throttled
    /// messages and refused new users.
    pub fn watch_list(&self) -> Vec<WatchEntry> {
        self.partners.list().0
    }

    /// Partners dropped from a full watch list (more than 1024 discovered partners).
    pub fn watch_list_dropped(&self) -> u64 {
        self.partners.list().1
    }

    /// At shutdown: writes the whole watch list as a `shutdown` watch-list event (when it is not empty and the
    /// partner limits are in force) and returns it for people, a heading and one line per partner.
    pub fn close_watch_list(&self) -> Vec<String> {
        let (list, dropped) = self.partners.list();
        let mut lines = vec![match list.len() {
            0 => "watch list of discovered partners: none".to_owned(),
            n => format!("watch list of discovered partners: {n}"),
        }];
        lines.extend(list.iter().map(|e| format!("  {}", e.line())));
        if dropped > 0 {
            lines.push(format!(
                "  {dropped} partners seen longest ago were dropped to keep the list at {MAX_PARTNERS}"
            ));
        }
        if !list.is_empty() && self.policy.enforce_partner_limits {
            self.publish_watch(&WatchEvent::new(WatchReason::Shutdown, list));
        }
        lines
    }

    /// Writes a `watch-list` event to the events file and to tracing.
    pub(super) fn publish_watch(&self, event: &WatchEvent) {
        for p in &event.partners {
            tracing::info!(target: "edgesim::edge::watch", reason = ?event.reason, "watch list: {}", p.line());
        }
        match event.to_json_line() {
            Ok(line) => self.sinks.event_line(line),
            Err(e) => tracing::error!(error = %e, "cannot serialise a watch-list event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FederationSettings;
    use crate::rules::partners::discovered_partner_limit;
    use crate::rules::{MessageTrust, PartnerType};

    fn limits(max_contacts: Option<u32>) -> DiscoveredPartnerLimits {
        DiscoveredPartnerLimits {
            max_contacts,
            ..FederationSettings::default().discovered_partner_limits()
        }
    }

    fn trust() -> MessageTrust {
        MessageTrust {
            partner: PartnerType::Discovered,
            edge_fqdn: "sip.skype.lab".into(),
            verified: true,
            remote_fqdn: "vcse.acano.steven.lab".into(),
        }
    }

    /// One request of `domain` for `user` at `t0 + ms`, judged by the real rule.
    fn send(p: &Partners, t0: Instant, ms: u64, domain: &str, user: &str) -> Observed {
        let d = DomainName::new(domain);
        let l = p.limits;
        p.observe(&d, Some(user), true, t0 + Duration::from_millis(ms), |c| {
            discovered_partner_limit(&l, &d, Some(user), c, &trust())
        })
    }

    #[test]
    fn twenty_five_in_one_second_are_throttled_past_twenty_and_the_next_second_is_new() {
        let p = Partners::new(limits(Some(1000)));
        let t0 = Instant::now();
        let outcomes: Vec<Observed> = (0..25)
            .map(|i| send(&p, t0, i * 39, "acano.steven.lab", "stejanss"))
            .collect();
        let throttled: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.finding, Some(Finding::PartnerThrottled { .. })))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(throttled, vec![21, 22, 23, 24, 25]);
        let reasons: Vec<WatchReason> = outcomes
            .iter()
            .filter_map(|o| o.change.as_ref().map(|c| c.0))
            .collect();
        assert_eq!(
            reasons,
            vec![WatchReason::NewPartner, WatchReason::Throttled]
        );
        // 1 s after the window's first request: a new window.
        assert!(
            send(&p, t0, 1000, "acano.steven.lab", "stejanss")
                .finding
                .is_none()
        );
        let list = p.list().0;
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].messages, 26);
        assert_eq!(list[0].throttled, 5);
        assert_eq!(list[0].distinct_users, 1);
        // Another partner has its own window.
        assert!(
            send(&p, t0, 500, "cms.steven.lab", "stejanss")
                .finding
                .is_none()
        );
    }

    #[test]
    fn the_contacts_limit_counts_distinct_users_per_period() {
        let mut l = limits(Some(2));
        l.report_period_secs = 60;
        let p = Partners::new(l);
        let t0 = Instant::now();
        // Seconds apart, so the rate never matters.
        assert!(send(&p, t0, 0, "acano.steven.lab", "a").finding.is_none());
        assert!(
            send(&p, t0, 2000, "acano.steven.lab", "B")
                .finding
                .is_none()
        );
        assert!(
            send(&p, t0, 4000, "acano.steven.lab", "b")
                .finding
                .is_none()
        );
        let third = send(&p, t0, 6000, "acano.steven.lab", "c");
        assert!(matches!(
            third.finding,
            Some(Finding::PartnerContactsLimit { .. })
        ));
        assert_eq!(third.change.unwrap().0, WatchReason::ContactsLimit);
        assert!(
            send(&p, t0, 8000, "acano.steven.lab", "a")
                .finding
                .is_none()
        );
        // The next report period starts empty.
        assert!(
            send(&p, t0, 61_000, "acano.steven.lab", "c")
                .finding
                .is_none()
        );
        let e = &p.list().0[0];
        assert_eq!((e.distinct_users, e.contacts_refused), (1, 1));
        assert_eq!(e.messages_in_period, 1);
    }

    #[test]
    fn the_list_is_bounded_against_invented_domains() {
        let p = Partners::new(limits(None));
        let t0 = Instant::now();
        for i in 0..(MAX_PARTNERS as u64 + 10) {
            send(&p, t0, i * 2000, &format!("d{i}.lab"), "u");
        }
        let (list, dropped) = p.list();
        assert_eq!(list.len(), MAX_PARTNERS);
        assert_eq!(dropped, 10);
        assert!(
            !list.iter().any(|e| e.domain == "d0.lab"),
            "the oldest went"
        );
        // Without a contacts limit the users kept per partner are bounded too.
        for u in 0..(USERS_WITHOUT_LIMIT + 5) {
            send(
                &p,
                t0,
                10_000_000 + u as u64 * 2000,
                "big.lab",
                &format!("u{u}"),
            );
        }
        let big = p
            .list()
            .0
            .into_iter()
            .find(|e| e.domain == "big.lab")
            .unwrap();
        assert_eq!(big.distinct_users, USERS_WITHOUT_LIMIT as u64);
        assert!(big.users_capped);
        assert_eq!(big.contacts_refused, 0);
    }
}
