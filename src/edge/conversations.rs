//! What the emulated users do with presence and instant messages on one connection: SUBSCRIBE (handed to
//! the Edge's [`super::subscriptions::Hub`]), session-mode IM (an INVITE with `m=message … sip null`, then
//! in-dialog MESSAGE, INFO typing, BYE from either side), page-mode MESSAGE, and the answers to the requests
//! the Edge sends in those dialogs.
//!
//! Plain data in the dialogs' shape: requests go in with the time ([`Conversations::handle_request`]), the
//! connection asks [`Conversations::poll_timeout`], calls [`Conversations::handle_timeout`], and takes its
//! answers with [`Conversations::poll_transmit`] and the requests the Edge originates in its dialogs (NOTIFY,
//! BENOTIFY, the users' MESSAGE replies and BYEs) with [`Conversations::poll_originated`], for
//! [`super::peer_conn::send_to_peer`]. Dropping it tells the hub the connection is gone.
//!
//! Choices: a user whose call action is busy / unavailable / decline refuses an IM session as it refuses a
//! call (486 / 480 / 603); any other answers at once (no ringing: the 200 carries the IM SDP). Replies to
//! the first message (embedded in the INVITE) wait for the ACK, since the dialog is not confirmed before.
//! A user's `hangup_after_ms` ends the conversation from the Edge side with BYE.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::dialogs::{Answer, Users};
use super::peer_conn::Originated;
use super::respond::{Responder, branch, text};
use super::subscriptions::{Hub, aor, originate};
use super::uas;
use crate::config::{ImConfig, UserAction, UserConfig};
use crate::diagnostics::VerdictKind;
use crate::im::{self, ImError, ImInvite, ImMessage, Info, Reply};
use crate::presence::{ConnId, warning_value};
use crate::sip::ua::{self, EDGE_ALLOW};
use crate::sip::{self, HeaderKind, Message};

/// Most IM sessions one connection may hold at once.
const MAX_SESSIONS: usize = 1024;
/// Most answers to its own MESSAGEs and BYEs the Edge waits for on one connection.
const MAX_PENDING: usize = 256;

#[derive(Debug)]
struct Session {
    invite: Message,
    tag: String,
    aor: String,
    user: UserConfig,
    next_cseq: u32,
    /// Replies to the first message, sent at the ACK.
    owed: Vec<Reply>,
}

/// The users' IM sessions on one connection, and its link to the Edge's presence.
#[derive(Debug)]
pub(super) struct Conversations {
    conn: ConnId,
    local: SocketAddr,
    users: Arc<Users>,
    hub: Arc<Mutex<Hub>>,
    /// Woken when another connection (or the library) queued something for this one.
    pub(super) wake: Arc<tokio::sync::Notify>,
    im: ImConfig,
    domain: String,
    sessions: HashMap<String, Session>,
    hangups: Vec<(Instant, String)>,
    /// Top Via branches of the Edge's MESSAGEs and BYEs, until their final answer.
    sent: VecDeque<String>,
    transmits: VecDeque<Bytes>,
}

fn header(m: &Message, name: &str) -> Option<String> {
    m.header_named(name)
        .map(|h| text(&h.value()).trim().to_owned())
}

/// A message's text for the events: quoted, at most 200 characters.
fn shown(msg: &ImMessage) -> String {
    match &msg.text {
        Some(t) => {
            let clean: String = t.chars().filter(|c| !c.is_control()).take(200).collect();
            format!("{} \"{clean}\"", msg.content_type)
        }
        None => format!("{} ({} bytes, not text)", msg.content_type, msg.len),
    }
}

fn replies_text(r: &[Reply]) -> String {
    if r.is_empty() {
        "no reply".into()
    } else {
        let t: Vec<String> = r.iter().map(|r| format!("\"{}\"", r.text)).collect();
        format!("replied {}", t.join(", "))
    }
}

impl Conversations {
    /// No session yet, on the connection `conn` whose local address is `local`; registers it with the hub.
    pub(super) fn new(edge: &super::Edge, conn: u64, local: SocketAddr) -> Self {
        let wake = Arc::new(tokio::sync::Notify::new());
        let conn = ConnId(conn);
        if let Ok(mut hub) = edge.presence.lock() {
            hub.register(conn, local, wake.clone());
        }
        Conversations {
            conn,
            local,
            users: edge.users.clone(),
            hub: edge.presence.clone(),
            wake,
            im: edge.config.im.clone(),
            domain: edge.config.edge.domain.clone(),
            sessions: HashMap::new(),
            hangups: Vec::new(),
            sent: VecDeque::new(),
            transmits: VecDeque::new(),
        }
    }

    /// Whether `m` is this module's: SUBSCRIBE, MESSAGE, an IM INVITE, or a request in an IM session.
    pub(super) fn claims(&self, m: &Message, method: &str, call_id: &str) -> bool {
        match method {
            "SUBSCRIBE" | "MESSAGE" => true,
            "INFO" | "BYE" => self.sessions.contains_key(call_id),
            "INVITE" => {
                self.sessions.contains_key(call_id)
                    || im::sdp::message_media(m.body()).is_some()
                        && m.to().ok().is_none_or(|t| t.tag().is_none())
            }
            _ => false,
        }
    }

    /// The next answer to send on this connection.
    pub(super) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// The next request the Edge originates in a dialog of this connection, for the switch point.
    pub(super) fn poll_originated(&mut self) -> Option<Originated> {
        self.hub.lock().ok()?.poll_originated(self.conn)
    }

    /// When [`Conversations::handle_timeout`] is due next (a hang-up, or the presence table's next timer).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let table = self
            .hub
            .lock()
            .ok()
            .and_then(|h| h.poll_timeout())
            .map(Instant::from_std);
        self.hangups.iter().map(|(at, _)| *at).chain(table).min()
    }

    /// Fires what is due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.handle_timeout(now.into_std());
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.hangups)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.hangups = later;
        for (_, call_id) in due {
            if let Some(s) = self.sessions.remove(&call_id) {
                tracing::info!("hang-up timer: the user ends the IM conversation with BYE");
                let mut s = s;
                let bye = self.in_dialog(&mut s, "BYE", None);
                self.originate(bye);
            }
        }
    }

    /// The Edge is stopping: this connection's subscriptions get their final NOTIFY (`deactivated`).
    pub(super) fn deactivate(&mut self) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.deactivate(self.conn, std::time::Instant::now());
        }
    }

    /// An ACK: confirms an IM session and sends the replies to its first message.
    pub(super) fn handle_ack(&mut self, call_id: &str) {
        let Some(mut s) = self.sessions.remove(call_id) else {
            return;
        };
        let owed = std::mem::take(&mut s.owed);
        for r in owed {
            let m = self.in_dialog(&mut s, "MESSAGE", Some(&r));
            self.originate(m);
        }
        self.sessions.insert(call_id.to_owned(), s);
    }

    /// A response: true when it answers a request of this module (NOTIFY, MESSAGE, BYE), which takes it.
    pub(super) fn handle_response(&mut self, m: &Message) -> bool {
        if let Ok(mut hub) = self.hub.lock()
            && hub.handle_response(std::time::Instant::now(), m)
        {
            return true;
        }
        let b = branch(m);
        match self.sent.iter().position(|x| !b.is_empty() && *x == b) {
            Some(i) => {
                if m.status_code().unwrap_or_default() >= 200 {
                    self.sent.remove(i);
                }
                true
            }
            None => false,
        }
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

    /// A request the federation rules let through (one [`Conversations::claims`]).
    pub(super) fn handle_request(
        &mut self,
        now: Instant,
        m: Message,
        method: &str,
        call_id: String,
        out: &mut Responder,
    ) -> Answer {
        if let Some(f) = uas::extension_refusal(&m, method) {
            self.transmits.push_back(out.refuse(now, &m, &f));
            return Answer::of(&f);
        }
        match method {
            "SUBSCRIBE" => self.subscribe(now, &m, out),
            "INVITE" => self.invite(now, m, call_id, out),
            "MESSAGE" => self.message(now, &m, &call_id, out),
            "INFO" => self.info(now, &m, out),
            _ => {
                // BYE of a held IM session.
                self.sessions.remove(&call_id);
                self.hangups.retain(|(_, c)| *c != call_id);
                self.answer(now, &m, out, 200, "OK", &[], None)
            }
        }
    }

    /// A body-less answer to `m` in its dialog (its To tag, else a fresh one).
    #[allow(clippy::too_many_arguments)] // the parts of one response
    fn answer(
        &mut self,
        now: Instant,
        m: &Message,
        out: &mut Responder,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        explanation: Option<String>,
    ) -> Answer {
        let tag = m
            .to()
            .ok()
            .and_then(|t| t.tag().map(str::to_owned))
            .unwrap_or_else(ua::edge_tag);
        let r = out.respond(now, m, code, reason, Some(&tag), headers, b"");
        self.transmits.push_back(r);
        if let Some(x) = &explanation {
            tracing::info!("{x}");
        }
        Answer {
            status: Some(code),
            verdict: VerdictKind::Accept,
            explanation,
        }
    }

    fn not_found(&mut self, now: Instant, m: &Message, out: &mut Responder) -> Answer {
        let uri = text(m.request_uri_raw().unwrap_or_default());
        let f = uas::unknown_user(&uri, &self.users.users);
        self.transmits.push_back(out.refuse(now, m, &f));
        Answer::of(&f)
    }

    /// 400 with a Warning for IM input the Edge cannot read.
    fn bad(&mut self, now: Instant, m: &Message, e: &ImError, out: &mut Responder) -> Answer {
        let (code, reason) = e.status();
        let warning = warning_value(&self.users.fqdn, &e.to_string());
        let r = out.respond(
            now,
            m,
            code,
            reason,
            Some(&ua::edge_tag()),
            &[("Warning", &warning)],
            b"",
        );
        self.transmits.push_back(r);
        Answer {
            status: Some(code),
            verdict: VerdictKind::Accept,
            explanation: Some(format!(
                "The {} is unreadable ({e}): the Edge answered {code} {reason} with a Warning. Fix: send UTF-8 text within im.max_text_bytes with its Content-Type.",
                text(m.method().unwrap_or_default())
            )),
        }
    }

    fn subscribe(&mut self, now: Instant, m: &Message, out: &mut Responder) -> Answer {
        let Some(user) = self.user(m) else {
            return self.not_found(now, m, out);
        };
        let (bytes, answered) = match self.hub.lock() {
            Ok(mut hub) => hub.subscribe(now.into_std(), self.conn, m, &user, out),
            Err(_) => {
                return Answer {
                    status: None,
                    verdict: VerdictKind::Accept,
                    explanation: Some("the presence table is unusable (a thread panicked)".into()),
                };
            }
        };
        self.transmits.push_back(bytes);
        let verdict = if answered.status == 503 {
            VerdictKind::Limit
        } else {
            VerdictKind::Accept
        };
        Answer {
            status: Some(answered.status),
            verdict,
            explanation: Some(answered.explanation),
        }
    }

    fn contact(&self, aor: &str) -> String {
        let user = aor.split('@').next().unwrap_or("user");
        format!(
            "<sip:{user}@{}:{};transport=tls>",
            self.users.fqdn,
            self.local.port()
        )
    }

    fn invite(&mut self, now: Instant, m: Message, call_id: String, out: &mut Responder) -> Answer {
        if let Some(s) = self.sessions.get(&call_id) {
            // A re-INVITE in the session: the same answer again.
            let (tag, aor) = (s.tag.clone(), s.aor.clone());
            let sdp = im::sdp::answer(&self.local.ip().to_string(), self.local.port(), &aor);
            let contact = self.contact(&aor);
            let r = out.respond(
                now,
                &m,
                200,
                "OK",
                Some(&tag),
                &[("Contact", &contact), ("Content-Type", "application/sdp")],
                sdp.as_bytes(),
            );
            self.transmits.push_back(r);
            return Answer {
                status: Some(200),
                verdict: VerdictKind::Accept,
                explanation: None,
            };
        }
        let Some(user) = self.user(&m) else {
            return self.not_found(now, &m, out);
        };
        let offer = match ImInvite::from_message(&m, self.im.max_text_bytes) {
            Ok(Some(o)) => o,
            Ok(None) => return self.bad(now, &m, &ImError::NoContentType(0), out),
            Err(e) => return self.bad(now, &m, &e, out),
        };
        let aor = aor(&user, &self.domain);
        let from = header(&m, "From").unwrap_or_default();
        let tag = ua::edge_tag();
        let refusal = match user.action {
            UserAction::Busy => Some((486, "Busy Here")),
            UserAction::Unavailable => Some((480, "Temporarily Unavailable")),
            UserAction::Decline => Some((603, "Decline")),
            _ => None,
        };
        if let Some((code, reason)) = refusal {
            let r = out.respond(now, &m, code, reason, Some(&tag), &[], b"");
            self.transmits.push_back(r);
            return Answer {
                status: Some(code),
                verdict: VerdictKind::Accept,
                explanation: Some(format!(
                    "IM session from {from} to {aor}: the user is configured `{:?}`, answered {code} {reason}",
                    user.action
                )),
            };
        }
        if self.sessions.len() >= MAX_SESSIONS {
            let f = crate::rules::users::too_many_calls(MAX_SESSIONS);
            self.transmits.push_back(out.refuse(now, &m, &f));
            return Answer::of(&f);
        }
        let sdp = im::sdp::answer(&self.local.ip().to_string(), self.local.port(), &aor);
        let contact = self.contact(&aor);
        let mut headers: Vec<(&str, String)> =
            vec![("Contact", contact), ("Allow", EDGE_ALLOW.to_owned())];
        headers.extend(offer.answer_headers());
        headers.push(("Content-Type", "application/sdp".to_owned()));
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = out.respond(now, &m, 200, "OK", Some(&tag), &refs, sdp.as_bytes());
        self.transmits.push_back(r);
        let owed = offer
            .first
            .as_ref()
            .map(|f| user.im.replies(f))
            .unwrap_or_default();
        let explanation = match &offer.first {
            Some(first) => format!(
                "IM session from {from} to {aor}: first message {}; {} (after the ACK)",
                shown(first),
                replies_text(&owed)
            ),
            None => format!("IM session from {from} to {aor}: no first message"),
        };
        tracing::info!("{explanation}");
        if let Some(ms) = user.hangup_after_ms {
            self.hangups
                .push((now + Duration::from_millis(ms), call_id.clone()));
        }
        self.sessions.insert(
            call_id,
            Session {
                invite: m,
                tag,
                aor,
                user,
                next_cseq: 1,
                owed,
            },
        );
        Answer {
            status: Some(200),
            verdict: VerdictKind::Accept,
            explanation: Some(explanation),
        }
    }

    fn message(&mut self, now: Instant, m: &Message, call_id: &str, out: &mut Responder) -> Answer {
        let decoded = match im::message::message(
            header(m, "Content-Type").as_deref(),
            m.body(),
            self.im.max_text_bytes,
        ) {
            Ok(d) => d,
            Err(e) => return self.bad(now, m, &e, out),
        };
        let from = header(m, "From").unwrap_or_default();
        if let Some(mut s) = self.sessions.remove(call_id) {
            let replies = s.user.im.replies(&decoded);
            let x = format!(
                "IM from {from} to {} in session: {}; {}",
                s.aor,
                shown(&decoded),
                replies_text(&replies)
            );
            let a = self.answer(now, m, out, 200, "OK", &[], Some(x));
            for r in &replies {
                let req = self.in_dialog(&mut s, "MESSAGE", Some(r));
                self.originate(req);
            }
            self.sessions.insert(call_id.to_owned(), s);
            return a;
        }
        let Some(user) = self.user(m) else {
            return self.not_found(now, m, out);
        };
        let aor = aor(&user, &self.domain);
        let (code, reason, warning) = im::page_mode_answer(self.im.page_mode);
        let x = format!(
            "page-mode IM from {from} to {aor}: {}; answered {code} {reason}",
            shown(&decoded)
        );
        match warning {
            Some(w) => {
                let w = warning_value(&self.users.fqdn, w);
                self.answer(now, m, out, code, reason, &[("Warning", &w)], Some(x))
            }
            None => self.answer(now, m, out, code, reason, &[], Some(x)),
        }
    }

    fn info(&mut self, now: Instant, m: &Message, out: &mut Responder) -> Answer {
        match im::message::info(header(m, "Content-Type").as_deref(), m.body()) {
            Ok(i) => {
                let what = match i {
                    Info::Typing(t) => format!("typing notice: {t:?}"),
                    Info::Other(o) => format!("INFO of {o}"),
                };
                let from = header(m, "From").unwrap_or_default();
                self.answer(
                    now,
                    m,
                    out,
                    200,
                    "OK",
                    &[],
                    Some(format!("IM session INFO from {from}: {what}")),
                )
            }
            Err(e) => self.bad(now, m, &e, out),
        }
    }

    /// Queues a request the Edge originates, remembering its branch for the answer.
    fn originate(&mut self, req: Option<(Originated, String)>) {
        let Some((request, b)) = req else { return };
        if self.sent.len() >= MAX_PENDING {
            self.sent.pop_front();
        }
        self.sent.push_back(b);
        if let Ok(mut hub) = self.hub.lock() {
            originate(&mut hub.outbox, self.conn, request);
        }
    }

    /// A request of the user in the session's dialog (UAS side: From/To swapped, route = Record-Route).
    fn in_dialog(
        &self,
        s: &mut Session,
        method: &str,
        reply: Option<&Reply>,
    ) -> Option<(Originated, String)> {
        let inv = &s.invite;
        let target = super::uas::remote_target(inv)?;
        let from = format!("<{}>;tag={}", inv.to().ok()?.uri.as_str(), s.tag);
        let to = text(inv.header(HeaderKind::From)?.value().as_ref());
        let call_id = text(&inv.call_id().ok()?);
        let b = ua::branch();
        let via = format!(
            "SIP/2.0/TLS {}:{};branch={b}",
            self.local.ip(),
            self.local.port()
        );
        let cseq = format!("{} {method}", s.next_cseq);
        s.next_cseq += 1;
        let routes: Vec<String> = inv
            .values(HeaderKind::RecordRoute)
            .iter()
            .map(|v| text(v))
            .collect();
        let contact = self.contact(&s.aor);
        let mut rb = sip::RequestBuilder::new(method, &target)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", &cseq);
        for r in &routes {
            rb = rb.header("Route", r);
        }
        rb = rb
            .header("Contact", &contact)
            .header("User-Agent", &self.users.agent);
        let bytes = match reply {
            Some(r) => rb
                .header("Content-Type", r.content_type)
                .body(r.text.as_bytes())
                .build(),
            None => rb.build(),
        };
        // The peer's federation route is chosen by its domain: the INVITE's sender domain.
        let domain = super::decide::sender_domain(inv)
            .map(|d| d.to_string())
            .unwrap_or_default();
        let request = Originated {
            domain,
            method: method.to_owned(),
            bytes,
        };
        Some((request, b))
    }
}

impl Drop for Conversations {
    fn drop(&mut self) {
        if let Ok(mut hub) = self.hub.lock() {
            hub.connection_lost(self.conn);
        }
    }
}
