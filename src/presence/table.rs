//! The presence subscriptions the Edge holds, as plain data with time passed in (the quinn-proto shape): the
//! Edge feeds it SUBSCRIBEs, NOTIFY responses, timer expiries, presence changes and closed connections, and
//! turns the [`Action`]s it returns into messages. No socket, no clock.
//!
//! Rules (RFC 6665 unless said):
//! - A SUBSCRIBE without To tag creates a subscription (after Event, Accept, Expires and Contact are judged,
//!   and the per-connection and per-user caps); with a To tag it refreshes or ends the one it names (481 if
//!   there is none). The format chosen at creation stays for the subscription's life.
//! - Every accepted SUBSCRIBE triggers a NOTIFY of the current state (§4.2.1.2); when the subscriber supports
//!   `ms-piggyback-first-notify` that document rides in the 200 instead, with `ms-piggyback-cseq` naming the
//!   CSeq the NOTIFY would have had (MS-SIP §3.4.5.1, MS-PRES §4.11). A SUBSCRIBE-triggered notification is
//!   always a NOTIFY; state changes go as BENOTIFY to a subscriber that advertised `ms-benotify` (MS-SIP §4.4:
//!   never answered), else as NOTIFY.
//! - One NOTIFY at a time per subscription: a change while one is unanswered is sent when it is answered (the
//!   state then current). A NOTIFY answered with an error (≥ 300), or unanswered after [`NOTIFY_TIMEOUT`],
//!   removes the subscription (RFC 3265 §3.2.2) without a further NOTIFY.
//! - `Expires: 0` ends the subscription: 200 with `Expires: 0`, then a final NOTIFY `terminated;reason=timeout`
//!   with the current state (on a new dialog this is a fetch). A subscription not refreshed in time gets the
//!   same final NOTIFY, without a body, and is removed.
//! - A user's state comes from its [`Schedule`] (elapsed time counted from the table's epoch) until the library
//!   sets one ([`Subscriptions::presence_changed`]); each change is notified to every live subscription to it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::action::{
    Action, Body, ConnId, EndCause, Limits, NOTIFY_TIMEOUT, Notify, NotifyMethod, Response,
    SubscriptionId,
};
use super::document::{DocumentFormat, render};
use super::negotiate::{
    EndReason, EventHeader, Expiry, SubscriberFeatures, SubscriptionState, grant_expiry, negotiate,
    presence_event,
};
use super::refusal::Refusal;
use super::request::SubscribeRequest;
use super::schedule::Schedule;
use super::state::PresenceState;

/// An unanswered NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    cseq: u32,
    deadline: Instant,
}

/// One live subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its connection.
    pub conn: ConnId,
    /// The presentity (`user@domain`).
    pub user: String,
    /// The document format.
    pub format: DocumentFormat,
    /// What the subscriber supports.
    pub features: SubscriberFeatures,
    /// The Event header.
    pub event: EventHeader,
    /// When it ends unless refreshed.
    pub expires_at: Instant,
    remote_target: String,
    route: Vec<String>,
    local: String,
    remote: String,
    next_cseq: u32,
    pending: Option<Pending>,
    /// A SUBSCRIBE-triggered NOTIFY is owed (it came while one was unanswered).
    dirty: bool,
    /// The state last sent (200 or NOTIFY), and the schedule time it was taken at.
    told: Option<PresenceState>,
    told_at: Duration,
}

/// A user's presence source.
#[derive(Debug, Clone)]
struct UserEntry {
    schedule: Schedule,
    set: Option<PresenceState>,
}

/// The table.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    limits: Limits,
    epoch: Instant,
    users: HashMap<String, UserEntry>,
    subs: HashMap<SubscriptionId, Subscription>,
}

/// The key of a user (`user@domain`, case-insensitive).
fn key(user: &str) -> String {
    user.to_ascii_lowercase()
}

fn secs_left(expires_at: Instant, now: Instant) -> u32 {
    u32::try_from(expires_at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
}

impl Subscriptions {
    /// An empty table; schedules count from `epoch`.
    pub fn new(limits: Limits, epoch: Instant) -> Self {
        Subscriptions {
            limits,
            epoch,
            users: HashMap::new(),
            subs: HashMap::new(),
        }
    }

    /// Sets where `user`'s presence comes from (its configuration).
    pub fn set_user(&mut self, user: &str, schedule: Schedule) {
        self.users.insert(
            key(user),
            UserEntry {
                schedule,
                set: None,
            },
        );
    }

    /// `user`'s state at `now`: the one set by the library, else its schedule's, else Available.
    pub fn state_of(&self, user: &str, now: Instant) -> PresenceState {
        match self.users.get(&key(user)) {
            Some(UserEntry { set: Some(s), .. }) => s.clone(),
            Some(e) => e
                .schedule
                .state_at(now.saturating_duration_since(self.epoch))
                .clone(),
            None => PresenceState::default(),
        }
    }

    /// The live subscription `id`.
    pub fn get(&self, id: &SubscriptionId) -> Option<&Subscription> {
        self.subs.get(id)
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Handles a SUBSCRIBE that the federation rules let through to `user` (`user@domain`, an existing
    /// user) on `conn`; `new_tag` is the Edge's To tag should it create a dialog.
    pub fn handle_subscribe(
        &mut self,
        now: Instant,
        conn: ConnId,
        user: &str,
        req: &SubscribeRequest,
        new_tag: &str,
    ) -> Vec<Action> {
        match self.subscribe(now, conn, user, req, new_tag) {
            Ok(actions) => actions,
            Err(r) => vec![Action::Respond(Response::refusal(
                &r,
                req.to_tag.clone().or_else(|| Some(new_tag.to_owned())),
            ))],
        }
    }

    fn subscribe(
        &mut self,
        now: Instant,
        conn: ConnId,
        user: &str,
        req: &SubscribeRequest,
        new_tag: &str,
    ) -> Result<Vec<Action>, Refusal> {
        let event = presence_event(req.event.as_deref())?;
        if let Some(tag) = &req.to_tag {
            let id = SubscriptionId {
                call_id: req.call_id.clone(),
                remote_tag: req.from_tag.clone(),
                local_tag: tag.clone(),
                event_id: event.id.clone(),
            };
            if !self.subs.contains_key(&id) {
                return Err(Refusal::NoSubscription);
            }
            let expiry = grant_expiry(&req.expires, &self.limits.expiry)?;
            return Ok(self.refresh(now, conn, id, req, expiry));
        }
        let format = negotiate(req.accept.as_deref())?;
        let expiry = grant_expiry(&req.expires, &self.limits.expiry)?;
        let target = req.remote_target()?.to_owned();
        if expiry != Expiry::Unsubscribe {
            let on_conn = self.subs.values().filter(|s| s.conn == conn).count();
            if on_conn >= self.limits.max_per_connection {
                return Err(Refusal::ConnectionFull {
                    max: self.limits.max_per_connection,
                });
            }
            let k = key(user);
            let of_user = self.subs.values().filter(|s| key(&s.user) == k).count();
            if of_user >= self.limits.max_per_user {
                return Err(Refusal::UserFull {
                    user: user.to_owned(),
                    max: self.limits.max_per_user,
                });
            }
        }
        let id = SubscriptionId {
            call_id: req.call_id.clone(),
            remote_tag: req.from_tag.clone(),
            local_tag: new_tag.to_owned(),
            event_id: event.id.clone(),
        };
        let granted = match expiry {
            Expiry::Granted(n) => n,
            Expiry::Unsubscribe => 0,
        };
        let sub = Subscription {
            conn,
            user: user.to_owned(),
            format,
            features: SubscriberFeatures::of(&req.supported, &req.proxy_require),
            event,
            expires_at: now + Duration::from_secs(u64::from(granted)),
            remote_target: target,
            route: req.record_route.clone(),
            local: format!("{};tag={new_tag}", req.to),
            remote: req.from.clone(),
            next_cseq: 1,
            pending: None,
            dirty: false,
            told: None,
            told_at: Duration::ZERO,
        };
        self.subs.insert(id.clone(), sub);
        Ok(self.accepted(now, id, expiry))
    }

    /// A refresh or unsubscribe of the live subscription `id`.
    fn refresh(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: SubscriptionId,
        req: &SubscribeRequest,
        expiry: Expiry,
    ) -> Vec<Action> {
        if let Some(sub) = self.subs.get_mut(&id) {
            sub.conn = conn;
            if let Some(c) = &req.contact {
                sub.remote_target = c.clone();
            }
            sub.features = SubscriberFeatures::of(&req.supported, &req.proxy_require);
            let granted = match expiry {
                Expiry::Granted(n) => n,
                Expiry::Unsubscribe => 0,
            };
            sub.expires_at = now + Duration::from_secs(u64::from(granted));
        }
        self.accepted(now, id, expiry)
    }

    /// The 200 and the state it triggers, for a created or refreshed subscription `id` (removed again when
    /// the SUBSCRIBE ends it).
    fn accepted(&mut self, now: Instant, id: SubscriptionId, expiry: Expiry) -> Vec<Action> {
        let Some(user) = self.subs.get(&id).map(|s| s.user.clone()) else {
            return Vec::new();
        };
        let state = self.state_of(&user, now);
        let elapsed = self.elapsed(now);
        let Some(sub) = self.subs.get_mut(&id) else {
            return Vec::new();
        };
        let (granted, sub_state) = match expiry {
            Expiry::Granted(n) => (n, SubscriptionState::Active { expires: n }),
            Expiry::Unsubscribe => (0, SubscriptionState::ended(EndReason::Timeout)),
        };
        let mut response = Response {
            status: 200,
            reason: "OK",
            to_tag: Some(id.local_tag.clone()),
            headers: vec![("Expires", granted.to_string())],
            body: None,
            warning: None,
            diagnostic: None,
            explanation: None,
        };
        let mut actions = Vec::new();
        if sub.features.piggyback {
            sub.told = Some(state.clone());
            sub.told_at = elapsed;
            let cseq = sub.next_cseq;
            sub.next_cseq += 1;
            response.body = Some(Body {
                content_type: sub.format.content_type(),
                text: render(sub.format, &sub.user, &state),
            });
            response.headers.extend([
                ("Event", sub.event.notify_value()),
                ("subscription-state", sub_state.render()),
                ("ms-piggyback-cseq", cseq.to_string()),
                ("Supported", "ms-piggyback-first-notify".to_owned()),
            ]);
            actions.push(Action::Respond(response));
        } else {
            actions.push(Action::Respond(response));
            if expiry == Expiry::Unsubscribe || sub.pending.is_none() {
                sub.told = Some(state.clone());
                sub.told_at = elapsed;
                let n = notify(sub, &id, NotifyMethod::Notify, sub_state, Some(&state), now);
                actions.push(Action::Notify(n));
            } else {
                sub.dirty = true;
            }
        }
        if expiry == Expiry::Unsubscribe {
            actions.extend(self.remove(&id, EndCause::Unsubscribed));
        }
        actions
    }

    /// Time on the schedules' clock.
    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.epoch)
    }

    /// Whether `user` follows its schedule (the library has not set a state).
    fn scheduled(&self, user: &str) -> Option<&Schedule> {
        self.users
            .get(&key(user))
            .filter(|e| e.set.is_none())
            .map(|e| &e.schedule)
    }

    fn remove(&mut self, id: &SubscriptionId, cause: EndCause) -> Option<Action> {
        self.subs.remove(id).map(|s| Action::Ended {
            id: id.clone(),
            conn: s.conn,
            user: s.user,
            cause,
        })
    }

    /// Handles the final response (`status`) to the NOTIFY `cseq` of `id`; provisional and stale responses
    /// change nothing.
    pub fn handle_notify_response(
        &mut self,
        now: Instant,
        id: &SubscriptionId,
        cseq: u32,
        status: u16,
    ) -> Vec<Action> {
        let Some(sub) = self.subs.get_mut(id) else {
            return Vec::new();
        };
        if status < 200 || sub.pending.is_none_or(|p| p.cseq != cseq) {
            return Vec::new();
        }
        sub.pending = None;
        if status >= 300 {
            return self
                .remove(id, EndCause::NotifyRejected(status))
                .into_iter()
                .collect();
        }
        let owed = std::mem::take(&mut sub.dirty);
        let user = sub.user.clone();
        let state = self.state_of(&user, now);
        let changed = self
            .subs
            .get(id)
            .is_some_and(|s| s.told.as_ref() != Some(&state));
        if !owed && !changed {
            return Vec::new();
        }
        self.send(id, &state, !owed, now).into_iter().collect()
    }

    /// Sends `state` to `id`: as a change (BENOTIFY to a subscriber that takes it) or as a SUBSCRIBE-triggered
    /// NOTIFY; nothing while a NOTIFY is unanswered (its answer sends what is then current).
    fn send(
        &mut self,
        id: &SubscriptionId,
        state: &PresenceState,
        change: bool,
        now: Instant,
    ) -> Option<Action> {
        let elapsed = self.elapsed(now);
        let sub = self.subs.get_mut(id)?;
        if sub.pending.is_some() {
            return None;
        }
        let method = if change && sub.features.benotify {
            NotifyMethod::Benotify
        } else {
            NotifyMethod::Notify
        };
        let sub_state = SubscriptionState::Active {
            expires: secs_left(sub.expires_at, now),
        };
        sub.told = Some(state.clone());
        sub.told_at = elapsed;
        Some(Action::Notify(notify(
            sub,
            id,
            method,
            sub_state,
            Some(state),
            now,
        )))
    }

    /// Sets `user`'s state (the library API) and notifies every live subscription to it.
    pub fn presence_changed(
        &mut self,
        user: &str,
        state: PresenceState,
        now: Instant,
    ) -> Vec<Action> {
        let e = self.users.entry(key(user)).or_insert_with(|| UserEntry {
            schedule: Schedule::default(),
            set: None,
        });
        e.set = Some(state.clone());
        self.ids_of(user)
            .iter()
            .filter_map(|id| self.send(id, &state, true, now))
            .collect()
    }

    fn ids_of(&self, user: &str) -> Vec<SubscriptionId> {
        let k = key(user);
        let mut ids: Vec<SubscriptionId> = self
            .subs
            .iter()
            .filter(|(_, s)| key(&s.user) == k)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The next instant [`Subscriptions::handle_timeout`] has work: an expiry, an unanswered NOTIFY's
    /// deadline, or the next schedule change after the state a subscription was last sent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.subs
            .values()
            .flat_map(|s| {
                let change = match s.pending {
                    Some(_) => None,
                    None => self
                        .scheduled(&s.user)
                        .and_then(|sch| sch.next_change(s.told_at))
                        .map(|d| self.epoch + d),
                };
                [Some(s.expires_at), s.pending.map(|p| p.deadline), change]
            })
            .flatten()
            .min()
    }

    /// Does what is due at `now`: unanswered NOTIFYs past their deadline (removed), expired subscriptions
    /// (final NOTIFY `terminated;reason=timeout`, removed), schedule changes (notified).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let elapsed = self.elapsed(now);
        let mut ids: Vec<SubscriptionId> = self.subs.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let Some(sub) = self.subs.get(&id) else {
                continue;
            };
            if sub.pending.is_some_and(|p| p.deadline <= now) {
                actions.extend(self.remove(&id, EndCause::NotifyTimedOut));
                continue;
            }
            if sub.expires_at <= now {
                if let Some(sub) = self.subs.get_mut(&id) {
                    let state = SubscriptionState::ended(EndReason::Timeout);
                    let n = notify(sub, &id, NotifyMethod::Notify, state, None, now);
                    actions.push(Action::Notify(n));
                }
                actions.extend(self.remove(&id, EndCause::Expired));
                continue;
            }
            if sub.pending.is_some() {
                continue;
            }
            let Some(current) = self
                .scheduled(&sub.user)
                .map(|s| s.state_at(elapsed).clone())
            else {
                continue;
            };
            if sub.told.as_ref() == Some(&current) {
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.told_at = elapsed;
                }
            } else {
                actions.extend(self.send(&id, &current, true, now));
            }
        }
        actions
    }

    /// Forgets every subscription of a closed connection (no NOTIFY: there is nowhere to send it).
    pub fn connection_lost(&mut self, conn: ConnId) -> Vec<Action> {
        let ids = self.ids_on(conn);
        ids.iter()
            .filter_map(|id| self.remove(id, EndCause::ConnectionLost))
            .collect()
    }

    /// Ends every subscription to `user` with `terminated;reason=noresource` and forgets the user.
    pub fn remove_user(&mut self, user: &str, now: Instant) -> Vec<Action> {
        self.users.remove(&key(user));
        self.end(self.ids_of(user), EndReason::Noresource, now)
    }

    /// Ends every subscription with `terminated;reason=deactivated` (the Edge is stopping).
    pub fn shutdown(&mut self, now: Instant) -> Vec<Action> {
        let mut ids: Vec<SubscriptionId> = self.subs.keys().cloned().collect();
        ids.sort();
        self.end(ids, EndReason::Deactivated, now)
    }

    /// Ends the subscriptions that came on `conn` with `terminated;reason=deactivated`: the Edge is stopping
    /// and closes that connection after sending their final NOTIFYs.
    pub fn shutdown_connection(&mut self, conn: ConnId, now: Instant) -> Vec<Action> {
        let ids = self.ids_on(conn);
        self.end(ids, EndReason::Deactivated, now)
    }

    /// The subscriptions that came on `conn`, in id order.
    fn ids_on(&self, conn: ConnId) -> Vec<SubscriptionId> {
        let mut ids: Vec<SubscriptionId> = self
            .subs
            .iter()
            .filter(|(_, s)| s.conn == conn)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    fn end(&mut self, ids: Vec<SubscriptionId>, reason: EndReason, now: Instant) -> Vec<Action> {
        let cause = match reason {
            EndReason::Noresource => EndCause::UserRemoved,
            EndReason::Deactivated => EndCause::Deactivated,
            EndReason::Timeout => EndCause::Expired,
        };
        let mut actions = Vec::new();
        for id in ids {
            if let Some(sub) = self.subs.get_mut(&id) {
                let state = SubscriptionState::ended(reason);
                let n = notify(sub, &id, NotifyMethod::Notify, state, None, now);
                actions.push(Action::Notify(n));
                actions.extend(self.remove(&id, cause));
            }
        }
        actions
    }
}

/// A NOTIFY/BENOTIFY of `sub` (its next CSeq; a NOTIFY becomes the pending one).
fn notify(
    sub: &mut Subscription,
    id: &SubscriptionId,
    method: NotifyMethod,
    sub_state: SubscriptionState,
    state: Option<&PresenceState>,
    now: Instant,
) -> Notify {
    let cseq = sub.next_cseq;
    sub.next_cseq += 1;
    if method == NotifyMethod::Notify {
        sub.pending = Some(Pending {
            cseq,
            deadline: now + NOTIFY_TIMEOUT,
        });
    }
    Notify {
        conn: sub.conn,
        id: id.clone(),
        method,
        request_uri: sub.remote_target.clone(),
        from: sub.local.clone(),
        to: sub.remote.clone(),
        call_id: id.call_id.clone(),
        cseq,
        route: sub.route.clone(),
        headers: vec![
            ("Event", sub.event.notify_value()),
            ("subscription-state", sub_state.render()),
        ],
        body: state.map(|s| Body {
            content_type: sub.format.content_type(),
            text: render(sub.format, &sub.user, s),
        }),
        state: state.cloned(),
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
