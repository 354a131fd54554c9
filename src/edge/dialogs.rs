//! What the emulated users do with a request the federation rules let through: calls (INVITE, CANCEL, ACK,
//! BYE, ringing and hang-up timers) and the other methods (`uas`). Each request returns the [`Answer`] sent,
//! for its decision event.

use std::time::Duration;

use bytes::Bytes;

use super::transport::{Conn, text};
use super::uas::{self, MethodClass};
use crate::config::UserAction;
use crate::diagnostics::VerdictKind;
use crate::sip::ua::{EDGE_ALLOW, EDGE_SUPPORTED};
use crate::sip::{self, Message, ua};

/// Timers the connection sets for itself (ringing, hang-up).
#[derive(Debug)]
pub(super) enum Timer {
    /// Ringing is over: the user acts (answer, decline...).
    RingDone(String),
    /// The Edge side ends the call with BYE.
    Hangup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Ringing,
    Answered,
    Confirmed,
    /// A final non-2xx was sent; waiting for the ACK.
    Terminated,
}

#[derive(Debug)]
pub(super) struct Dialog {
    invite: Message,
    tag: String,
    pub(super) state: State,
    action: UserAction,
    hangup_after_ms: Option<u64>,
}

/// What the users' side answered to an accepted request, for its event.
pub(super) struct Answer {
    /// The status sent, if any.
    pub(super) status: Option<u16>,
    /// `Accept`, or `Limit` for the 503 of a connection with too many calls.
    pub(super) verdict: VerdictKind,
    /// Why, when the answer needs one (404, 420, 503).
    pub(super) explanation: Option<String>,
}

impl Answer {
    pub(super) fn sent(status: u16) -> Self {
        Answer {
            status: Some(status),
            verdict: VerdictKind::Accept,
            explanation: None,
        }
    }

    pub(super) fn none() -> Self {
        Answer {
            status: None,
            verdict: VerdictKind::Accept,
            explanation: None,
        }
    }

    pub(super) fn explained(status: u16, verdict: VerdictKind, why: String) -> Self {
        Answer {
            status: Some(status),
            verdict,
            explanation: Some(why),
        }
    }
}

/// Most calls (dialogs) one connection may hold at once.
pub(super) const MAX_DIALOGS: usize = 1024;

impl Conn {
    /// A request the federation rules let through reaches the emulated users.
    pub(super) fn accepted(&mut self, m: Message, method: &str, call_id: String) -> Answer {
        let class = uas::classify(method);
        if class != MethodClass::Absorb
            && let Some(f) = uas::extension_refusal(&m, method)
        {
            return self.refuse(&m, &f);
        }
        let (r, code) = match class {
            MethodClass::Invite => return self.invite(m, call_id),
            MethodClass::Ack => {
                self.ack(&call_id);
                return Answer::none();
            }
            MethodClass::Absorb => return Answer::none(),
            MethodClass::Bye => {
                let known = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if known {
                    self.dialogs.remove(&call_id);
                    (self.respond(&m, 200, "OK", None, &[], b""), 200)
                } else {
                    (self.no_such_call(&m), 481)
                }
            }
            MethodClass::Cancel => return self.cancel(&m, &call_id),
            MethodClass::Options => (
                self.respond(
                    &m,
                    200,
                    "OK",
                    Some(&ua::edge_tag()),
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
                    return self.not_found(&m);
                }
                (
                    self.respond(&m, 200, "OK", Some(&ua::edge_tag()), &[], b""),
                    200,
                )
            }
            MethodClass::NotAllowed => (
                self.respond(
                    &m,
                    405,
                    "Method Not Allowed",
                    Some(&ua::edge_tag()),
                    &[("Allow", EDGE_ALLOW)],
                    b"",
                ),
                405,
            ),
            MethodClass::NotImplemented => (
                self.respond(
                    &m,
                    501,
                    "Not Implemented",
                    Some(&ua::edge_tag()),
                    &[("Allow", EDGE_ALLOW)],
                    b"",
                ),
                501,
            ),
        };
        self.out.push(r);
        Answer::sent(code)
    }

    fn user(&self, m: &Message) -> Option<crate::config::UserConfig> {
        let uri = m.request_uri().ok()?;
        uas::find_user(
            &self.edge.config.users,
            &uri,
            &self.edge.policy,
            Some(self.local.ip()),
        )
    }

    fn no_such_call(&mut self, m: &Message) -> Bytes {
        self.respond(
            m,
            481,
            "Call Leg/Transaction Does Not Exist",
            Some(&ua::edge_tag()),
            &[],
            b"",
        )
    }

    /// 404 with 4005 for a user the Edge does not have.
    fn not_found(&mut self, m: &Message) -> Answer {
        let uri = text(m.request_uri_raw().unwrap_or_default());
        let f = uas::unknown_user(&uri, &self.edge.config.users);
        self.refuse(m, &f)
    }

    fn invite(&mut self, m: Message, call_id: String) -> Answer {
        let in_dialog = m.to().ok().is_some_and(|t| t.tag().is_some());
        if in_dialog {
            // A re-INVITE (session refresh, hold): answer it within the dialog if we know it.
            let tag = self.dialogs.get(&call_id).map(|d| d.tag.clone());
            let (r, code) = match tag {
                Some(tag) => (self.ok_with_sdp(&m, &tag), 200),
                None => (self.no_such_call(&m), 481),
            };
            self.out.push(r);
            return Answer::sent(code);
        }
        let Some(user) = self.user(&m) else {
            tracing::info!("unknown user: 404 / 4005");
            return self.not_found(&m);
        };
        if self.dialogs.len() >= MAX_DIALOGS {
            // A peer that never ACKs its failed calls must not grow the table without bound.
            self.dialogs.retain(|_, d| d.state != State::Terminated);
        }
        if self.dialogs.len() >= MAX_DIALOGS {
            let f = crate::rules::users::too_many_calls(MAX_DIALOGS);
            let answer = self.refuse(&m, &f);
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
            let r = self.respond(&m, code, reason, Some(&tag), &[], b"");
            self.out.push(r);
            self.dialogs.insert(
                call_id,
                Dialog {
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
        let r = self.respond(
            &m,
            180,
            "Ringing",
            Some(&tag),
            &[("Contact", &contact)],
            b"",
        );
        self.out.push(r);
        if user.action != UserAction::RingForever {
            let tx = self.timers.clone();
            let id = call_id.clone();
            let ring = Duration::from_millis(user.ring_ms);
            tokio::spawn(async move {
                tokio::time::sleep(ring).await;
                let _ = tx.send(Timer::RingDone(id));
            });
        }
        self.dialogs.insert(
            call_id,
            Dialog {
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
            self.edge.config.edge.fqdn,
            self.local.port()
        )
    }

    fn ok_with_sdp(&mut self, m: &Message, tag: &str) -> Bytes {
        let ip = self.local.ip().to_string();
        let sdp = ua::user_sdp_answer(m.body(), &ip);
        let user = m
            .request_uri()
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "user".into());
        let contact = self.contact(&user);
        self.respond(
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

    pub(super) fn ack(&mut self, call_id: &str) {
        match self.dialogs.get_mut(call_id).map(|d| d.state) {
            Some(State::Answered) => {
                if let Some(d) = self.dialogs.get_mut(call_id) {
                    d.state = State::Confirmed;
                }
            }
            Some(State::Terminated) => {
                self.dialogs.remove(call_id);
            }
            _ => {}
        }
    }

    fn cancel(&mut self, m: &Message, call_id: &str) -> Answer {
        let ringing = self
            .dialogs
            .get(call_id)
            .filter(|d| d.state == State::Ringing)
            .map(|d| (d.invite.clone(), d.tag.clone()));
        match ringing {
            Some((invite, tag)) => {
                let ok = self.respond(m, 200, "OK", Some(&tag), &[], b"");
                let terminated =
                    self.respond(&invite, 487, "Request Terminated", Some(&tag), &[], b"");
                self.out.push(ok);
                self.out.push(terminated);
                if let Some(d) = self.dialogs.get_mut(call_id) {
                    d.state = State::Terminated;
                }
                Answer::sent(200)
            }
            None => {
                let r = self.no_such_call(m);
                self.out.push(r);
                Answer::sent(481)
            }
        }
    }

    pub(super) fn timer(&mut self, t: Timer) {
        match t {
            Timer::RingDone(call_id) => {
                let Some(d) = self.dialogs.get(&call_id) else {
                    return;
                };
                if d.state != State::Ringing {
                    return;
                }
                let (invite, tag, action, hangup) =
                    (d.invite.clone(), d.tag.clone(), d.action, d.hangup_after_ms);
                let (r, state) = match action {
                    UserAction::Decline => (
                        self.respond(&invite, 603, "Decline", Some(&tag), &[], b""),
                        State::Terminated,
                    ),
                    _ => (self.ok_with_sdp(&invite, &tag), State::Answered),
                };
                self.out.push(r);
                if let Some(d) = self.dialogs.get_mut(&call_id) {
                    d.state = state;
                }
                if state == State::Answered
                    && let Some(ms) = hangup
                {
                    let tx = self.timers.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        let _ = tx.send(Timer::Hangup(call_id));
                    });
                }
            }
            Timer::Hangup(call_id) => {
                let up = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| matches!(d.state, State::Answered | State::Confirmed));
                if !up {
                    return;
                }
                if let Some(d) = self.dialogs.remove(&call_id) {
                    tracing::info!("hang-up timer: the Edge side ends the call with BYE");
                    if let Some((bye, branch)) = self.bye(&d) {
                        self.bye_sent(branch);
                        self.out.push(bye);
                    }
                }
            }
        }
    }

    /// A BYE from the emulated user within the dialog of `d` (UAS side: From/To swapped, route =
    /// Record-Route), with its top Via branch.
    fn bye(&self, d: &Dialog) -> Option<(Bytes, String)> {
        let inv = &d.invite;
        let target = inv
            .contacts()
            .ok()
            .and_then(|c| {
                c.into_iter().find_map(|c| match c {
                    sip::Contact::Addr(n) => Some(n.uri.as_str().to_string()),
                    sip::Contact::Star => None,
                })
            })
            .or_else(|| inv.from().ok().map(|f| f.uri.as_str().to_string()))?;
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
        Some((
            b.header("User-Agent", &self.edge.config.edge.server_header)
                .build(),
            branch,
        ))
    }
}
