//! The Edge side of presence: the users' subscription table ([`crate::presence::Subscriptions`]) shared by
//! every connection of an Edge (the per-user cap counts across connections), and the one outbox of the
//! requests the Edge originates in those dialogs (NOTIFY, BENOTIFY, the users' MESSAGE replies and BYEs), per
//! connection that holds the dialog. That connection takes them ([`Hub::poll_originated`]) and hands each to
//! [`super::peer_conn::send_to_peer`], which sends it over the Edge's own connection to the peer (or back on
//! the inbound connection with `[edge] reuse_inbound_connection`). Answers to the NOTIFYs come back on
//! whichever connection carried them, and both kinds of connection hand them to [`Hub::handle_response`].
//!
//! Plain data in the dialogs' shape: the connection hands a SUBSCRIBE in with the time
//! ([`Hub::subscribe`]), asks when the table's next timer is due ([`Hub::poll_timeout`]), calls
//! [`Hub::handle_timeout`] then, and takes its connection's messages with [`Hub::poll_originated`]. A
//! connection that another one queued something for is woken through its [`tokio::sync::Notify`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::peer_conn::Originated;
use super::respond::{Responder, text};
use crate::config::UserConfig;
use crate::presence::{
    Action, ConnId, EndCause, Notify, NotifyMethod, PresenceState, Response, SubscribeRequest,
    SubscriptionId, Subscriptions, warning_value,
};
use crate::sip::{self, Message, ua};

/// What one SUBSCRIBE got, for its decision event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answered {
    /// The status sent.
    pub(super) status: u16,
    /// Why, for a refusal; what was granted, for an acceptance.
    pub(super) explanation: String,
}

/// Most requests the outbox holds for one connection: past it the oldest is dropped and logged (a connection
/// that does not take its queue is stuck; its subscriptions time out).
const MAX_QUEUED: usize = 4096;

/// The requests the Edge originates, per connection that holds their dialog, and the wakers of the
/// connections.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    queues: HashMap<ConnId, VecDeque<Originated>>,
    wakers: HashMap<ConnId, Arc<tokio::sync::Notify>>,
}

impl Outbox {
    fn queue(&mut self, conn: ConnId, request: Originated) {
        // A connection that is gone has no queue: what it would have carried has nowhere to go.
        if let Some(q) = self.queues.get_mut(&conn) {
            if q.len() >= MAX_QUEUED
                && let Some(lost) = q.pop_front()
            {
                tracing::warn!(method = %lost.method, "the connection's outbox is full: its oldest request is dropped");
            }
            q.push_back(request);
            if let Some(w) = self.wakers.get(&conn) {
                w.notify_one();
            }
        }
    }
}

/// Queues a request the Edge originates in a dialog held by `conn` (NOTIFY, BENOTIFY, the users' MESSAGE
/// replies and BYEs) and wakes that connection, which hands it to the one switch point,
/// [`super::peer_conn::send_to_peer`].
pub(super) fn originate(outbox: &mut Outbox, conn: ConnId, request: Originated) {
    outbox.queue(conn, request);
}

/// The SIP domain of a From/To value (`"Name" <sip:user@host:port;…>;tag=…`): the partner whose federation
/// route carries a request to it. Empty when the value holds no URI.
pub(super) fn domain_of(name_addr: &str) -> String {
    sip::NameAddr::parse(name_addr.as_bytes())
        .map(|n| n.uri.host().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The Edge's presence: the table, the connections' addresses, the NOTIFYs awaiting an answer.
#[derive(Debug)]
pub(super) struct Hub {
    table: Subscriptions,
    /// The Edge's SIP domain (a user without `@domain` is in it).
    domain: String,
    fqdn: String,
    agent: String,
    faithful: bool,
    locals: HashMap<ConnId, SocketAddr>,
    /// `(Call-ID, CSeq)` of each unanswered NOTIFY → its subscription.
    pending: HashMap<(String, u32), SubscriptionId>,
    /// The requests the Edge originates.
    pub(super) outbox: Outbox,
}

/// A user's address of record (`user@domain`) from its `[[users]]` entry.
pub(super) fn aor(user: &UserConfig, domain: &str) -> String {
    match super::uas::user_entry(&user.user) {
        (u, Some(d)) => format!("{u}@{d}").to_ascii_lowercase(),
        (u, None) => format!("{u}@{domain}").to_ascii_lowercase(),
    }
}

impl Hub {
    /// The table for `config`'s users (their schedules count from `epoch`, when the Edge started).
    pub(super) fn new(config: &crate::config::EdgeConfig, faithful: bool, epoch: Instant) -> Self {
        let mut table = Subscriptions::new((&config.presence).into(), epoch);
        for u in &config.users {
            // The configuration's check refused a bad schedule already; an Edge built from code falls back
            // to Available rather than failing to start.
            let schedule = crate::presence::profile::schedule(&u.presence).unwrap_or_default();
            table.set_user(&aor(u, &config.edge.domain), schedule);
        }
        Hub {
            table,
            domain: config.edge.domain.clone(),
            fqdn: config.edge.fqdn.clone(),
            agent: config.edge.server().to_owned(),
            faithful,
            locals: HashMap::new(),
            pending: HashMap::new(),
            outbox: Outbox::default(),
        }
    }

    /// A connection opens: its address on the Edge (Via, Contact) and its waker.
    pub(super) fn register(
        &mut self,
        conn: ConnId,
        local: SocketAddr,
        waker: Arc<tokio::sync::Notify>,
    ) {
        self.locals.insert(conn, local);
        self.outbox.queues.insert(conn, VecDeque::new());
        self.outbox.wakers.insert(conn, waker);
    }

    /// A connection closed: its subscriptions end without NOTIFY (nowhere to send it).
    pub(super) fn connection_lost(&mut self, conn: ConnId) {
        let actions = self.table.connection_lost(conn);
        self.apply(actions);
        self.locals.remove(&conn);
        self.outbox.queues.remove(&conn);
        self.outbox.wakers.remove(&conn);
    }

    /// The Edge is stopping: the subscriptions that came on `conn` end with a final NOTIFY,
    /// `Subscription-State: terminated;reason=deactivated`, queued for `conn` to send before it closes.
    pub(super) fn deactivate(&mut self, conn: ConnId, now: Instant) {
        let actions = self.table.shutdown_connection(conn, now);
        self.apply(actions);
    }

    /// The next request the Edge originates in a dialog `conn` holds.
    pub(super) fn poll_originated(&mut self, conn: ConnId) -> Option<Originated> {
        self.outbox.queues.get_mut(&conn)?.pop_front()
    }

    /// When [`Hub::handle_timeout`] is due next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.table.poll_timeout()
    }

    /// Expiries, unanswered NOTIFYs and schedule changes due at `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let actions = self.table.handle_timeout(now);
        self.apply(actions);
    }

    /// The library sets `user`'s presence: a NOTIFY to every live subscription to it.
    pub(super) fn set_presence(&mut self, user: &str, state: PresenceState, now: Instant) {
        let user = if user.contains('@') {
            user.to_ascii_lowercase()
        } else {
            format!("{user}@{}", self.domain).to_ascii_lowercase()
        };
        let actions = self.table.presence_changed(&user, state, now);
        self.apply(actions);
    }

    /// A response on `conn`: true when it answers one of the Edge's NOTIFYs (taken), false otherwise.
    pub(super) fn handle_response(&mut self, now: Instant, m: &Message) -> bool {
        let Ok(cseq) = m.cseq() else { return false };
        if cseq.method != "NOTIFY" {
            return false;
        }
        let call_id = m.call_id().map(|c| text(&c)).unwrap_or_default();
        let key = (call_id, cseq.seq);
        let status = m.status_code().unwrap_or_default();
        let Some(id) = self.pending.get(&key).cloned() else {
            return false;
        };
        if status >= 200 {
            self.pending.remove(&key);
        }
        let actions = self
            .table
            .handle_notify_response(now, &id, cseq.seq, status);
        self.apply(actions);
        true
    }

    /// A SUBSCRIBE the federation rules let through to `user` on `conn`: the presence core decides, the
    /// answer goes out through `out`, the NOTIFYs through the outbox.
    pub(super) fn subscribe(
        &mut self,
        now: Instant,
        conn: ConnId,
        m: &Message,
        user: &UserConfig,
        out: &mut Responder,
    ) -> (Bytes, Answered) {
        let aor = aor(user, &self.domain);
        let actions = match SubscribeRequest::from_message(m) {
            Ok(req) => self
                .table
                .handle_subscribe(now, conn, &aor, &req, &ua::edge_tag()),
            Err(r) => vec![Action::Respond(Response::refusal(&r, Some(ua::edge_tag())))],
        };
        let mut response = None;
        for a in &actions {
            if let Action::Respond(r) = a {
                response = Some(self.render_response(now, m, r, &aor, conn, out));
            }
        }
        self.apply(actions);
        response.unwrap_or_else(|| {
            // The core answers every SUBSCRIBE; should it not, the peer still gets an answer.
            let b = out.respond(
                tokio::time::Instant::now(),
                m,
                500,
                "Server Internal Error",
                Some(&ua::edge_tag()),
                &[],
                b"",
            );
            (
                b,
                Answered {
                    status: 500,
                    explanation: "the presence core gave no answer".into(),
                },
            )
        })
    }

    fn contact(&self, aor: &str, conn: ConnId) -> String {
        let user = aor.split('@').next().unwrap_or("user");
        let port = self.locals.get(&conn).map_or(5061, SocketAddr::port);
        format!("<sip:{user}@{}:{port};transport=tls>", self.fqdn)
    }

    fn render_response(
        &self,
        now: Instant,
        m: &Message,
        r: &Response,
        aor: &str,
        conn: ConnId,
        out: &mut Responder,
    ) -> (Bytes, Answered) {
        let mut headers: Vec<(&str, String)> =
            r.headers.iter().map(|(n, v)| (*n, v.clone())).collect();
        if (200..300).contains(&r.status) {
            headers.push(("Contact", self.contact(aor, conn)));
        }
        if let Some(w) = &r.warning {
            headers.push(("Warning", warning_value(&self.fqdn, w)));
        }
        if let Some(d) = &r.diagnostic
            && !self.faithful
        {
            headers.push(("ms-diagnostics", d.render()));
        }
        if let Some(b) = &r.body {
            headers.push(("Content-Type", b.content_type.to_owned()));
        }
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = r.body.as_ref().map_or(&b""[..], |b| b.text.as_bytes());
        let bytes = out.respond(
            tokio::time::Instant::from_std(now),
            m,
            r.status,
            r.reason,
            r.to_tag.as_deref(),
            &refs,
            body,
        );
        let explanation = match &r.explanation {
            Some(x) => x.clone(),
            None => {
                let expires = r
                    .headers
                    .iter()
                    .find(|(n, _)| *n == "Expires")
                    .map_or("?", |(_, v)| v.as_str());
                let first = match &r.body {
                    Some(b) => format!("first state in the 200 ({})", b.content_type),
                    None => "first state in a NOTIFY".into(),
                };
                format!("presence subscription to {aor}: 200 OK, Expires: {expires}, {first}")
            }
        };
        (
            bytes,
            Answered {
                status: r.status,
                explanation,
            },
        )
    }

    /// Carries out the table's actions other than the answer (rendered by the caller).
    fn apply(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Respond(_) => {}
                Action::Notify(n) => {
                    if n.method == NotifyMethod::Notify {
                        self.pending
                            .insert((n.call_id.clone(), n.cseq), n.id.clone());
                    }
                    let state = n
                        .state
                        .as_ref()
                        .map_or_else(|| "no body".to_owned(), PresenceState::describe);
                    tracing::info!(
                        method = n.method.as_str(),
                        call_id = %n.call_id,
                        "presence {}: {state}",
                        n.headers
                            .iter()
                            .find(|(h, _)| *h == "subscription-state")
                            .map_or("", |(_, v)| v.as_str())
                    );
                    let conn = n.conn;
                    if let Some(bytes) = self.render_notify(&n) {
                        let request = Originated {
                            domain: domain_of(&n.to),
                            method: n.method.as_str().to_owned(),
                            bytes,
                        };
                        originate(&mut self.outbox, conn, request);
                    }
                }
                Action::Ended {
                    id, user, cause, ..
                } => {
                    self.pending.retain(|_, v| *v != id);
                    let why = match cause {
                        EndCause::Unsubscribed => "unsubscribed (Expires: 0)".to_owned(),
                        EndCause::Expired => "not refreshed in time".to_owned(),
                        EndCause::NotifyRejected(s) => format!("a NOTIFY was answered {s}"),
                        EndCause::NotifyTimedOut => "a NOTIFY got no answer".to_owned(),
                        EndCause::ConnectionLost => "its connection closed".to_owned(),
                        EndCause::UserRemoved => "the user was removed".to_owned(),
                        EndCause::Deactivated => "the Edge ended it".to_owned(),
                    };
                    tracing::info!(call_id = %id.call_id, "presence subscription to {user} ended: {why}");
                }
            }
        }
    }

    /// The bytes of a NOTIFY/BENOTIFY in its subscription's dialog.
    fn render_notify(&self, n: &Notify) -> Option<Bytes> {
        let local = self.locals.get(&n.conn)?;
        let via = format!(
            "SIP/2.0/TLS {}:{};branch={}",
            local.ip(),
            local.port(),
            ua::branch()
        );
        let cseq = format!("{} {}", n.cseq, n.method.as_str());
        let aor = n
            .from
            .split_once("sip:")
            .map(|(_, r)| r.split(['>', ';']).next().unwrap_or(r).to_owned())
            .unwrap_or_default();
        let contact = self.contact(&aor, n.conn);
        let mut b = sip::RequestBuilder::new(n.method.as_str(), &n.request_uri)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", &n.from)
            .header("To", &n.to)
            .header("Call-ID", &n.call_id)
            .header("CSeq", &cseq);
        for r in &n.route {
            b = b.header("Route", r);
        }
        b = b.header("Contact", &contact);
        for (h, v) in &n.headers {
            b = b.header(h, v);
        }
        b = b.header("User-Agent", &self.agent);
        match &n.body {
            Some(body) => Some(
                b.header("Content-Type", body.content_type)
                    .body(body.text.as_bytes())
                    .build(),
            ),
            None => Some(b.build()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EdgeConfig, UserAction};
    use std::time::Duration;

    fn hub() -> (Hub, ConnId, Arc<tokio::sync::Notify>) {
        let config = EdgeConfig {
            users: vec![h_user()],
            ..EdgeConfig::default()
        };
        let mut h = Hub::new(&config, false, Instant::now());
        let waker = Arc::new(tokio::sync::Notify::new());
        let conn = ConnId(7);
        h.register(conn, "127.0.0.1:5061".parse().unwrap(), waker.clone());
        (h, conn, waker)
    }

    fn subscribe(extra: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "SUBSCRIBE sip:bob@skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1\r\n\
             From: <sip:a@acano.steven.lab>;tag=a1\r\nTo: <sip:bob@skype.lab>\r\nCall-ID: s1\r\n\
             CSeq: 1 SUBSCRIBE\r\nContact: <sip:a@10.0.0.1:5061;transport=tls>\r\n\
             Record-Route: <sip:vcse.acano.steven.lab;lr>\r\nEvent: presence\r\n{extra}Content-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    fn responder() -> Responder {
        Responder::new(
            "10.0.0.1:40000".parse().unwrap(),
            0x100,
            "RTC/6.0",
            "sip.skype.lab",
            crate::config::DiagnosticHeaders::Internal,
            1200,
        )
    }

    #[test]
    fn a_subscribe_is_answered_and_its_notify_queued_on_its_connection_then_answered() {
        let (mut h, conn, _waker) = hub();
        let user = h_user();
        let now = Instant::now();
        let (ok, answered) = h.subscribe(
            now,
            conn,
            &subscribe("Accept: application/pidf+xml\r\n"),
            &user,
            &mut responder(),
        );
        let ok = Message::parse(ok).unwrap();
        assert_eq!((ok.status_code(), answered.status), (Some(200), 200));
        assert_eq!(
            ok.header_named("Contact").map(|h| text(&h.value())),
            Some("<sip:bob@sip.skype.lab:5061;transport=tls>".to_owned())
        );
        let n = h.poll_originated(conn).unwrap();
        assert_eq!(
            (n.domain.as_str(), n.method.as_str()),
            ("acano.steven.lab", "NOTIFY")
        );
        let n = Message::parse(n.bytes).unwrap();
        assert_eq!(n.method(), Some(&b"NOTIFY"[..]));
        assert_eq!(
            n.header_named("Route").map(|h| text(&h.value())),
            Some("<sip:vcse.acano.steven.lab;lr>".to_owned())
        );
        assert_eq!(
            n.request_uri().unwrap().as_str(),
            "sip:a@10.0.0.1:5061;transport=tls"
        );
        assert!(h.poll_originated(conn).is_none());
        let answer = crate::sip::ResponseBuilder::from_request(&n, 200, "OK").build();
        assert!(h.handle_response(now, &Message::parse(answer.clone()).unwrap()));
        // Answered once: a second copy matches nothing.
        assert!(!h.handle_response(now, &Message::parse(answer).unwrap()));
    }

    fn h_user() -> UserConfig {
        UserConfig {
            user: "bob".into(),
            action: UserAction::Answer,
            ring_ms: 0,
            hangup_after_ms: None,
            presence: Default::default(),
            im: Default::default(),
            contacts: Vec::new(),
        }
    }

    #[test]
    fn a_library_change_wakes_the_connection_and_a_lost_connection_takes_its_subscriptions() {
        let (mut h, conn, waker) = hub();
        let now = Instant::now();
        let m = subscribe("Supported: ms-benotify, ms-piggyback-first-notify\r\n");
        h.subscribe(now, conn, &m, &h_user(), &mut responder());
        assert!(
            h.poll_originated(conn).is_none(),
            "the first state rode in the 200"
        );
        h.set_presence(
            "bob",
            PresenceState::of(crate::presence::Availability::Away),
            now,
        );
        let b = Message::parse(h.poll_originated(conn).unwrap().bytes).unwrap();
        assert_eq!(b.method(), Some(&b"BENOTIFY"[..]));
        // The connection was told (a stored permit: the next wait returns at once).
        let woken = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_millis(50), waker.notified())
                    .await
                    .is_ok()
            });
        assert!(woken);
        h.connection_lost(conn);
        assert_eq!(h.poll_timeout(), None, "no subscription is left to time");
        // Nothing is queued for a connection that is gone.
        let x = Originated {
            domain: "acano.steven.lab".into(),
            method: "NOTIFY".into(),
            bytes: Bytes::from_static(b"x"),
        };
        originate(&mut h.outbox, conn, x);
        assert!(h.poll_originated(conn).is_none());
    }

    #[test]
    fn a_refusal_carries_its_warning_or_diagnostic() {
        let (mut h, conn, _) = hub();
        let now = Instant::now();
        let (r, a) = h.subscribe(
            now,
            conn,
            &subscribe("Expires: soon\r\n"),
            &h_user(),
            &mut responder(),
        );
        let r = Message::parse(r).unwrap();
        assert_eq!(a.status, 400);
        assert!(
            text(&r.header_named("Warning").unwrap().value())
                .starts_with("399 sip.skype.lab \"malformed Expires")
        );
        let (r, _) = h.subscribe(
            now,
            conn,
            &subscribe("Accept: application/xpidf+xml\r\n"),
            &h_user(),
            &mut responder(),
        );
        let r = Message::parse(r).unwrap();
        assert_eq!(r.status_code(), Some(488));
        assert!(text(&r.header_named("ms-diagnostics").unwrap().value()).starts_with("2165;"));
    }
}
