//! What the emulated users do with the requests the federation rules let through: calls (INVITE, CANCEL, ACK,
//! BYE, with ringing and hang-up timers) and the other methods (`uas`).
//!
//! Plain data in quinn-proto's shape: no socket and no clock of its own. The connection hands each request in
//! with the time ([`Dialogs::handle_request`]), asks when the next timer is due ([`Dialogs::poll_timeout`]),
//! calls [`Dialogs::handle_timeout`] then, and takes what to send with [`Dialogs::poll_transmit`]. Every request
//! returns the [`Answer`] sent, for its decision event.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::peer_conn::Originated;
use super::respond::{Responder, branch, text};
use super::uas::{self, MethodClass};
use crate::config::{UserAction, UserConfig};
use crate::diagnostics::VerdictKind;
use crate::rules::{self, Finding, Policy};
use crate::sip::ua::{self, EDGE_ALLOW, EDGE_SUPPORTED};
use crate::sip::{self, Message};

/// Most calls (dialogs) one connection may hold at once.
pub(super) const MAX_DIALOGS: usize = 1024;

/// Most answers to its own BYEs the Edge waits for on one connection.
const MAX_PENDING_BYES: usize = 64;

/// Who the emulated users are and how they answer: shared by every connection of an Edge.
#[derive(Debug, Clone)]
pub(super) struct Users {
    /// `[[users]]`; empty: every user part answers.
    pub(super) users: Vec<UserConfig>,
    /// Which hosts the Edge answers for.
    pub(super) policy: Policy,
    /// The Edge's FQDN (its Contact).
    pub(super) fqdn: String,
    /// The `User-Agent` of the BYEs the users send.
    pub(super) agent: String,
}

/// A timer the dialogs set for themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Timer {
    /// Ringing is over: the user acts (answer, decline...).
    RingDone(String),
    /// The Edge side ends the call with BYE.
    Hangup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    Answered,
    Confirmed,
    /// A final non-2xx was sent; waiting for the ACK.
    Terminated,
}

#[derive(Debug)]
struct Call {
    invite: Message,
    tag: String,
    state: State,
    action: UserAction,
    hangup_after_ms: Option<u64>,
}

/// What the users' side answered to an accepted request, for its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    /// The status sent, if any.
    pub(super) status: Option<u16>,
    /// `Accept`, or `Limit` for the 503 of a connection with too many calls.
    pub(super) verdict: VerdictKind,
    /// Why, when the answer needs one (404, 420, 503).
    pub(super) explanation: Option<String>,
}

impl Answer {
    fn sent(status: u16) -> Self {
        Answer {
            status: Some(status),
            verdict: VerdictKind::Accept,
            explanation: None,
        }
    }

    fn none() -> Self {
        Answer {
            status: None,
            verdict: VerdictKind::Accept,
            explanation: None,
        }
    }

    /// The answer of a finding.
    pub(super) fn of(f: &Finding) -> Self {
        Answer {
            status: f.sip().map(|(s, _)| s),
            verdict: f.verdict_kind(),
            explanation: Some(f.explain().to_string()),
        }
    }
}

/// The emulated users' calls on one connection.
#[derive(Debug)]
pub(super) struct Dialogs {
    users: Arc<Users>,
    /// The Edge's address on this connection (Contact, SDP, the Via of its BYEs).
    local: SocketAddr,
    calls: HashMap<String, Call>,
    timers: Vec<(Instant, Timer)>,
    /// Top Via branches of the BYEs the Edge sent, until their final answer.
    byes: Vec<String>,
    transmits: VecDeque<Bytes>,
    /// Requests the Edge originates toward the peer, for [`super::peer_conn::send_to_peer`].
    originated: VecDeque<Originated>,
}

impl Dialogs {
    /// No call yet, on a connection whose local address is `local`.
    pub(super) fn new(users: Arc<Users>, local: SocketAddr) -> Self {
        Dialogs {
            users,
            local,
            calls: HashMap::new(),
            timers: Vec::new(),
            byes: Vec::new(),
            transmits: VecDeque::new(),
            originated: VecDeque::new(),
        }
    }

    /// Whether `call_id` is a call this connection holds.
    pub(super) fn holds(&self, call_id: &str) -> bool {
        self.calls.contains_key(call_id)
    }

    /// The next message to send, in order.
    pub(super) fn poll_transmit(&mut self) -> Option<Bytes> {
        let next = self.transmits.pop_front();
        if self.transmits.is_empty() && self.transmits.capacity() > 0 {
            // An idle connection keeps no queue allocation.
            self.transmits = VecDeque::new();
        }
        next
    }

    /// The next request the Edge originates toward the peer (a user's BYE), in order: it goes through
    /// [`super::peer_conn::send_to_peer`], never straight onto the connection.
    pub(super) fn poll_originated(&mut self) -> Option<Originated> {
        let next = self.originated.pop_front();
        if self.originated.is_empty() && self.originated.capacity() > 0 {
            self.originated = VecDeque::new();
        }
        next
    }

    /// When [`Dialogs::handle_timeout`] is due next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// Fires every timer due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant, out: &mut Responder) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.timers = later;
        for (_, t) in due {
            self.timer(now, t, out);
        }
    }

    /// A response from the peer: the answer to one of the Edge's BYEs, or dropped (RFC 3261 §18.1.2).
    pub(super) fn handle_response(&mut self, m: &Message) {
        let code = m.status_code().unwrap_or_default();
        let b = branch(m);
        match self.byes.iter().position(|x| !b.is_empty() && *x == b) {
            Some(i) => {
                if code >= 200 {
                    self.byes.swap_remove(i);
                }
                tracing::debug!(code, "answer to the Edge's BYE");
            }
            None => tracing::info!(
                code,
                "a response that matches no transaction of the Edge: dropped (RFC 3261 §18.1.2)"
            ),
        }
    }

    /// An ACK for `call_id`: confirms an answered call, ends a refused one.
    pub(super) fn handle_ack(&mut self, call_id: &str) {
        match self.calls.get(call_id).map(|d| d.state) {
            Some(State::Answered) => {
                if let Some(d) = self.calls.get_mut(call_id) {
                    d.state = State::Confirmed;
                }
            }
            Some(State::Terminated) => {
                self.calls.remove(call_id);
            }
            _ => {}
        }
    }

    /// A request the federation rules let through reaches the emulated users at `now`.
    pub(super) fn handle_request(
        &mut self,
        now: Instant,
        m: Message,
        method: &str,
        call_id: String,
        out: &mut Responder,
    ) -> Answer {
        let class = uas::classify(method);
        if class != MethodClass::Absorb
            && let Some(f) = uas::extension_refusal(&m, method)
        {
            return self.refuse(now, &m, &f, out);
        }
        let tag = ua::edge_tag();
        let (r, code) = match class {
            MethodClass::Invite => return self.invite(now, m, call_id, out),
            MethodClass::Ack => {
                self.handle_ack(&call_id);
                return Answer::none();
            }
            MethodClass::Absorb => return Answer::none(),
            MethodClass::Bye => {
                let known = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if known {
                    self.calls.remove(&call_id);
                    (out.respond(now, &m, 200, "OK", None, &[], b""), 200)
                } else {
                    (no_such_call(now, &m, out), 481)
                }
            }
            MethodClass::Cancel => return self.cancel(now, &m, &call_id, out),
            MethodClass::Options => (
                out.respond(
                    now,
                    &m,
                    200,
                    "OK",
                    Some(&tag),
                    &[
                        ("Allow", EDGE_ALLOW),
                        ("Supported", EDGE_SUPPORTED),
                        ("Accept", "application/sdp"),
                    ],
                    b"",
                ),
                200,
            ),
            MethodClass::Ok200 => {
                if method == "MESSAGE" && self.user(&m).is_none() {
                    return self.not_found(now, &m, out);
                }
                (out.respond(now, &m, 200, "OK", Some(&tag), &[], b""), 200)
            }
            MethodClass::NotAllowed => (
                out.respond(
                    now,
                    &m,
                    405,
                    "Method Not Allowed",
                    Some(&tag),
                    &[("Allow", EDGE_ALLOW)],
                    b"",
                ),
                405,
            ),
            MethodClass::NotImplemented => (
                out.respond(
                    now,
                    &m,
                    501,
                    "Not Implemented",
                    Some(&tag),
                    &[("Allow", EDGE_ALLOW)],
                    b"",
                ),
                501,
            ),
        };
        self.transmits.push_back(r);
        Answer::sent(code)
    }

    /// Answers with a finding (404 / 4005, 420, 503): its response, and its answer for the event.
    fn refuse(&mut self, now: Instant, m: &Message, f: &Finding, out: &mut Responder) -> Answer {
        self.transmits.push_back(out.refuse(now, m, f));
        Answer::of(f)
    }

    fn user(&self, m: &Message) -> Option<UserConfig> {
        let uri = m.request_uri().ok()?;
        uas::find_user(
            &self.users.users,
            &uri,
            &self.users.policy,
            Some(self.local.ip()),
        )
    }

    /// 404 with 4005 for a user the Edge does not have.
    fn not_found(&mut self, now: Instant, m: &Message, out: &mut Responder) -> Answer {
        let uri = text(m.request_uri_raw().unwrap_or_default());
        let f = uas::unknown_user(&uri, &self.users.users);
        self.refuse(now, m, &f, out)
    }

    fn invite(&mut self, now: Instant, m: Message, call_id: String, out: &mut Responder) -> Answer {
        let in_dialog = m.to().ok().is_some_and(|t| t.tag().is_some());
        if in_dialog {
            // A re-INVITE (session refresh, hold): answer it within the dialog if we know it.
            let tag = self.calls.get(&call_id).map(|d| d.tag.clone());
            let (r, code) = match tag {
                Some(tag) => (self.ok_with_sdp(now, &m, &tag, out), 200),
                None => (no_such_call(now, &m, out), 481),
            };
            self.transmits.push_back(r);
            return Answer::sent(code);
        }
        let Some(user) = self.user(&m) else {
            tracing::info!("unknown user: 404 / 4005");
            return self.not_found(now, &m, out);
        };
        if self.calls.len() >= MAX_DIALOGS {
            // A peer that never ACKs its failed calls must not grow the table without bound.
            self.calls.retain(|_, d| d.state != State::Terminated);
        }
        if self.calls.len() >= MAX_DIALOGS {
            let f = rules::users::too_many_calls(MAX_DIALOGS);
            let answer = self.refuse(now, &m, &f, out);
            if let Some(why) = &answer.explanation {
                tracing::warn!("{why}");
            }
            return answer;
        }
        let tag = ua::edge_tag();
        let immediate = match user.action {
            UserAction::Busy => Some((486, "Busy Here")),
            UserAction::Unavailable => Some((480, "Temporarily Unavailable")),
            _ => None,
        };
        if let Some((code, reason)) = immediate {
            let r = out.respond(now, &m, code, reason, Some(&tag), &[], b"");
            self.transmits.push_back(r);
            self.calls.insert(
                call_id,
                Call {
                    invite: m,
                    tag,
                    state: State::Terminated,
                    action: user.action,
                    hangup_after_ms: None,
                },
            );
            return Answer::sent(code);
        }
        let contact = self.contact(&user.user);
        let r = out.respond(
            now,
            &m,
            180,
            "Ringing",
            Some(&tag),
            &[("Contact", &contact)],
            b"",
        );
        self.transmits.push_back(r);
        if user.action != UserAction::RingForever {
            let at = now + Duration::from_millis(user.ring_ms);
            self.timers.push((at, Timer::RingDone(call_id.clone())));
        }
        self.calls.insert(
            call_id,
            Call {
                invite: m,
                tag,
                state: State::Ringing,
                action: user.action,
                hangup_after_ms: user.hangup_after_ms,
            },
        );
        Answer::sent(180)
    }

    fn contact(&self, user: &str) -> String {
        let user = uas::user_entry(user).0;
        let user = if user.is_empty() { "user" } else { user };
        format!(
            "<sip:{user}@{}:{};transport=tls>",
            self.users.fqdn,
            self.local.port()
        )
    }

    fn ok_with_sdp(&self, now: Instant, m: &Message, tag: &str, out: &mut Responder) -> Bytes {
        let ip = self.local.ip().to_string();
        let sdp = ua::user_sdp_answer(m.body(), &ip);
        let user = m
            .request_uri()
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "user".into());
        let contact = self.contact(&user);
        out.respond(
            now,
            m,
            200,
            "OK",
            Some(tag),
            &[
                ("Contact", &contact),
                ("Allow", EDGE_ALLOW),
                ("Content-Type", "application/sdp"),
            ],
            sdp.as_bytes(),
        )
    }

    fn cancel(&mut self, now: Instant, m: &Message, call_id: &str, out: &mut Responder) -> Answer {
        let ringing = self
            .calls
            .get(call_id)
            .filter(|d| d.state == State::Ringing)
            .map(|d| (d.invite.clone(), d.tag.clone()));
        match ringing {
            Some((invite, tag)) => {
                let ok = out.respond(now, m, 200, "OK", Some(&tag), &[], b"");
                let terminated = out.respond(
                    now,
                    &invite,
                    487,
                    "Request Terminated",
                    Some(&tag),
                    &[],
                    b"",
                );
                self.transmits.push_back(ok);
                self.transmits.push_back(terminated);
                if let Some(d) = self.calls.get_mut(call_id) {
                    d.state = State::Terminated;
                }
                Answer::sent(200)
            }
            None => {
                let r = no_such_call(now, m, out);
                self.transmits.push_back(r);
                Answer::sent(481)
            }
        }
    }

    fn timer(&mut self, now: Instant, t: Timer, out: &mut Responder) {
        match t {
            Timer::RingDone(call_id) => {
                let Some(d) = self.calls.get(&call_id) else {
                    return;
                };
                if d.state != State::Ringing {
                    return;
                }
                let (invite, tag, action, hangup) =
                    (d.invite.clone(), d.tag.clone(), d.action, d.hangup_after_ms);
                let (r, state) = match action {
                    UserAction::Decline => (
                        out.respond(now, &invite, 603, "Decline", Some(&tag), &[], b""),
                        State::Terminated,
                    ),
                    _ => (self.ok_with_sdp(now, &invite, &tag, out), State::Answered),
                };
                self.transmits.push_back(r);
                if let Some(d) = self.calls.get_mut(&call_id) {
                    d.state = state;
                }
                if state == State::Answered
                    && let Some(ms) = hangup
                {
                    let at = now + Duration::from_millis(ms);
                    self.timers.push((at, Timer::Hangup(call_id)));
                }
            }
            Timer::Hangup(call_id) => {
                let up = self
                    .calls
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if !up {
                    return;
                }
                if let Some(d) = self.calls.remove(&call_id) {
                    tracing::info!("hang-up timer: the Edge side ends the call with BYE");
                    if let Some((bye, branch)) = self.bye(&d) {
                        if self.byes.len() >= MAX_PENDING_BYES {
                            self.byes.remove(0);
                        }
                        self.byes.push(branch);
                        // The peer's federation route is chosen by its domain: the INVITE's sender domain.
                        let domain = super::decide::sender_domain(&d.invite)
                            .map(|d| d.to_string())
                            .unwrap_or_default();
                        self.originated.push_back(Originated {
                            domain,
                            method: "BYE".into(),
                            bytes: bye,
                        });
                    }
                }
            }
        }
    }

    /// A BYE from the emulated user within the dialog of `d` (UAS side: From/To swapped, route =
    /// Record-Route), with its top Via branch.
    fn bye(&self, d: &Call) -> Option<(Bytes, String)> {
        let inv = &d.invite;
        let target = uas::remote_target(inv)?;
        let from = format!("<{}>;tag={}", inv.to().ok()?.uri.as_str(), d.tag);
        let to = text(inv.header(sip::HeaderKind::From)?.value().as_ref());
        let call_id = text(&inv.call_id().ok()?);
        let branch = ua::branch();
        let via = format!(
            "SIP/2.0/TLS {}:{};branch={branch}",
            self.local.ip(),
            self.local.port(),
        );
        let routes: Vec<String> = inv
            .values(sip::HeaderKind::RecordRoute)
            .iter()
            .map(|v| text(v))
            .collect();
        let mut b = sip::RequestBuilder::new("BYE", &target)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 BYE");
        for r in &routes {
            b = b.header("Route", r);
        }
        Some((b.header("User-Agent", &self.users.agent).build(), branch))
    }
}

fn no_such_call(now: Instant, m: &Message, out: &mut Responder) -> Bytes {
    out.respond(
        now,
        m,
        481,
        "Call Leg/Transaction Does Not Exist",
        Some(&ua::edge_tag()),
        &[],
        b"",
    )
}

#[cfg(test)]
mod tests;
