//! After a 2xx to `call --subscribe` or `call --im`: what the internal Skype client sees of the
//! subscription (the piggy-backed first state, each NOTIFY/BENOTIFY, read with the presence core's reader and
//! shown as a Skype client shows it) or of the conversation (each reply), and the end (`Expires: 0`, BYE).
//!
//! Every read is bounded by the framer's limits and by time (the watch time, then the response timeout).
//! NOTIFYs are answered 200; BENOTIFYs never (MS-SIP §4.4); an in-dialog MESSAGE or INFO from the peer 200.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::msg::{self, USER_AGENT};
use super::{CallRequest, Run};
use crate::presence::client::Notification;
use crate::sip::{Contact, Framer, Message, RequestBuilder, ResponseBuilder, ua};

fn ok_to(m: &Message) -> Bytes {
    ResponseBuilder::from_request(m, 200, "OK")
        .header("User-Agent", USER_AGENT)
        .build()
}

fn method_of(m: &Message) -> String {
    String::from_utf8_lossy(m.method().unwrap_or_default()).into_owned()
}

/// The remote target of a 2xx (its Contact), else the request's target.
fn remote_target(ok: &Message, fallback: &str) -> String {
    ok.contacts()
        .ok()
        .and_then(|c| {
            c.into_iter().find_map(|c| match c {
                Contact::Addr(na) => Some(na.uri.as_str().to_string()),
                Contact::Star => None,
            })
        })
        .unwrap_or_else(|| fallback.to_string())
}

/// What a NOTIFY, BENOTIFY or 200 says, one line; `terminated` tells whether the subscription ended.
fn describe(label: &str, m: &Message) -> (String, bool) {
    let state = msg::header_text(m, "subscription-state");
    let ct = msg::header_text(m, "Content-Type");
    match Notification::read(state.as_deref(), ct.as_deref(), m.body()) {
        Ok(n) => {
            let ended = matches!(
                n.subscription,
                crate::presence::SubscriptionState::Terminated { .. }
            );
            (format!("{label}: {}", n.describe()), ended)
        }
        Err(e) => (format!("{label}: unreadable ({e})"), false),
    }
}

/// Answers and records one request from the peer in the dialog; true when it ends the dialog.
async fn take_request<S: AsyncWrite + Unpin>(
    run: &mut Run<'_>,
    stream: &mut S,
    m: &Message,
) -> bool {
    let method = method_of(m);
    let mut ended = false;
    match method.as_str() {
        "NOTIFY" | "BENOTIFY" => {
            let (line, done) = describe(&method, m);
            run.step("presence", true, line.clone());
            run.seen.push(line);
            ended = done;
        }
        "MESSAGE" => {
            let ct = msg::header_text(m, "Content-Type");
            let line = match crate::im::message::message(
                ct.as_deref(),
                m.body(),
                crate::im::message::DEFAULT_MAX_TEXT_BYTES,
            ) {
                Ok(im) => format!(
                    "IM reply: {}",
                    im.text
                        .unwrap_or_else(|| format!("({}, {} bytes)", im.content_type, im.len))
                ),
                Err(e) => format!("IM reply: unreadable ({e})"),
            };
            run.step("im", true, line.clone());
            run.seen.push(line);
        }
        "BYE" => {
            run.step("im", true, "the peer ended the conversation (BYE)");
            ended = true;
        }
        _ => run.step("sip", true, format!("received {method}")),
    }
    if method != "BENOTIFY" && method != "ACK" && msg::send(stream, &ok_to(m)).await.is_err() {
        run.step("sip", false, format!("answering {method} failed"));
    }
    ended
}

/// Reads the peer's requests until `deadline` (or the dialog ends); true when the peer ended it.
async fn watch<S>(
    run: &mut Run<'_>,
    stream: &mut S,
    framer: &mut Framer,
    buf: &mut BytesMut,
    deadline: Instant,
    until_response: Option<&str>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut answered = until_response.is_none();
    loop {
        match msg::read_message(stream, framer, buf, deadline).await {
            Ok(Some(m)) if m.is_request() => {
                if take_request(run, stream, &m).await {
                    return true;
                }
            }
            Ok(Some(m)) => {
                let method = m.cseq().map(|c| c.method).unwrap_or_default();
                if until_response.is_some_and(|w| w.eq_ignore_ascii_case(&method))
                    && m.status_code().unwrap_or(0) >= 200
                {
                    let code = m.status_code().unwrap_or(0);
                    run.step("sip", code < 300, format!("{method} answered {code}"));
                    answered = true;
                    // A BYE's answer ends the dialog; an unsubscribe's 200 is followed by its final NOTIFY.
                    if method == "BYE" || code >= 300 {
                        return false;
                    }
                }
            }
            Ok(None) => {
                if !answered {
                    run.step("sip", false, "no answer in time");
                }
                return false;
            }
            Err(e) => {
                run.step("sip", false, format!("connection ended: {e}"));
                return true;
            }
        }
    }
}

/// An in-dialog request of the internal client with extra headers.
fn request(
    run: &Run<'_>,
    method: &str,
    seq: u32,
    uri: &str,
    to_tag: Option<&str>,
    local: &str,
    headers: &[(&str, &str)],
) -> Bytes {
    let d = &run.dialog;
    let via = format!("SIP/2.0/TLS {local};branch={}", ua::branch());
    let from = format!("<{}>;tag={};epid={}", d.from, d.from_tag, d.epid);
    let to = match to_tag {
        Some(t) => format!("<{}>;tag={t}", d.target),
        None => format!("<{}>", d.target),
    };
    let cseq = format!("{seq} {method}");
    let mut b = RequestBuilder::new(method, uri)
        .header("Via", &via)
        .header("Max-Forwards", "70")
        .header("From", &from)
        .header("To", &to)
        .header("Call-ID", &d.call_id)
        .header("CSeq", &cseq)
        .header("User-Agent", USER_AGENT);
    for (n, v) in headers {
        b = b.header(n, v);
    }
    b.build()
}

/// After the 2xx to SUBSCRIBE: the piggy-backed state, the NOTIFYs for the watch time, then `Expires: 0`
/// and the final NOTIFY.
#[allow(clippy::too_many_arguments)] // the exchange's state, passed on
pub(super) async fn after_subscribe<S>(
    run: &mut Run<'_>,
    stream: &mut S,
    framer: &mut Framer,
    buf: &mut BytesMut,
    ok: &Message,
    to_tag: Option<&str>,
    local: &str,
    req: &CallRequest,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(e) = msg::header_text(ok, "Expires") {
        run.step("presence", true, format!("granted Expires: {}", e.trim()));
    }
    if !ok.body().is_empty() {
        let (line, _) = describe("200 OK (first state)", ok);
        run.step("presence", true, line.clone());
        run.seen.push(line);
    }
    let watch_for = Duration::from_millis(req.hold_ms.max(200));
    if watch(run, stream, framer, buf, Instant::now() + watch_for, None).await {
        return;
    }
    let uri = remote_target(ok, &req.target);
    let unsubscribe = request(
        run,
        "SUBSCRIBE",
        2,
        &uri,
        to_tag,
        local,
        &[("Event", "presence"), ("Expires", "0")],
    );
    if msg::send(stream, &unsubscribe).await.is_err() {
        run.step("sip", false, "sending SUBSCRIBE (Expires: 0) failed");
        return;
    }
    run.sent.push("SUBSCRIBE".into());
    run.step("sip", true, "sent SUBSCRIBE with Expires: 0");
    let deadline = Instant::now() + run.ctx.timeouts.response;
    watch(run, stream, framer, buf, deadline, Some("SUBSCRIBE")).await;
}

/// After the 2xx to an IM INVITE: ACK, the replies for the hold time, then BYE.
#[allow(clippy::too_many_arguments)] // the exchange's state, passed on
pub(super) async fn after_im<S>(
    run: &mut Run<'_>,
    stream: &mut S,
    framer: &mut Framer,
    buf: &mut BytesMut,
    ok: &Message,
    to_tag: Option<&str>,
    local: &str,
    req: &CallRequest,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let took = msg::header_text(ok, "Supported")
        .is_some_and(|s| s.split(',').any(|t| t.trim() == "ms-text-format"));
    run.step(
        "im",
        took,
        if took {
            "the first message was taken (Supported: ms-text-format)"
        } else {
            "the answer does not say the first message was taken (no Supported: ms-text-format)"
        },
    );
    let uri = remote_target(ok, &req.target);
    let ack = request(run, "ACK", 1, &uri, to_tag, local, &[]);
    if msg::send(stream, &ack).await.is_err() {
        run.step("sip", false, "sending ACK failed");
        return;
    }
    run.sent.push("ACK".into());
    let wait = Duration::from_millis(req.hold_ms.max(200));
    if watch(run, stream, framer, buf, Instant::now() + wait, None).await {
        return;
    }
    let bye = request(run, "BYE", 2, &uri, to_tag, local, &[]);
    if msg::send(stream, &bye).await.is_err() {
        run.step("sip", false, "sending BYE failed");
        return;
    }
    run.sent.push("BYE".into());
    let deadline = Instant::now() + run.ctx.timeouts.response;
    watch(run, stream, framer, buf, deadline, Some("BYE")).await;
}
