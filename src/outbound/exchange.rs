//! The SIP exchange of a call, after TLS: the request, its responses, ACK / hold / BYE, and the finding the
//! peer's final answer is.

use std::time::Duration;

use bytes::BytesMut;

use super::msg::{self, EDGE_SERVER};
use super::{CallMethod, CallOutcome, CallRequest, Run, conn};
use crate::sip::{Framer, Message};

/// After TLS: the request, its responses, ACK / hold / BYE.
pub(super) async fn sip_exchange(
    mut run: Run<'_>,
    connected: conn::Connected,
    req: &CallRequest,
    target: &str,
) -> CallOutcome {
    let mut stream = connected.stream;
    let tap = run.ctx.taps.outbound(&stream).await;
    let local = stream
        .get_ref()
        .0
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "127.0.0.1:5061".to_string());
    let method = req.method.as_str();
    let request = run.dialog.initial_request(&local);
    tap.sent(&request).await;
    if let Err(e) = msg::send(&mut stream, &request).await {
        run.step("sip", false, format!("sending {method}: {e}"));
        let v = run
            .ctx
            .policy
            .outbound_connect_failure(target, conn::tls_failure(&e));
        return run.refuse(v);
    }
    run.sent.push(method.to_string());
    run.step("sip", true, format!("sent {method} {}", req.target));

    let mut framer = Framer::default();
    let mut buf = BytesMut::with_capacity(8192);
    let final_resp = loop {
        let got = msg::read_response(
            &mut stream,
            &mut framer,
            &mut buf,
            method,
            run.ctx.timeouts.response,
        )
        .await;
        match got {
            Ok(Some(m)) => {
                tap.received(&m).await;
                let code = m.status_code().unwrap_or(0);
                let reason = String::from_utf8_lossy(m.reason().unwrap_or_default()).into_owned();
                run.step("sip", true, format!("received {code} {reason}"));
                if code >= 200 {
                    break m;
                }
            }
            Ok(None) => {
                run.step(
                    "sip",
                    false,
                    format!(
                        "no final response within {} ms",
                        run.ctx.timeouts.response.as_millis()
                    ),
                );
                let v = run.ctx.policy.peer_timeout(target, method);
                return run.refuse(v);
            }
            Err(e) => {
                // With TLS 1.3 a peer that refuses our client certificate shows it here, on the first read.
                run.step(
                    "sip",
                    false,
                    format!("connection failed before a final response: {e}"),
                );
                let v = run
                    .ctx
                    .policy
                    .outbound_connect_failure(target, conn::tls_failure(&e));
                return run.refuse(v);
            }
        }
    };

    let code = final_resp.status_code().unwrap_or(0);
    let reason = String::from_utf8_lossy(final_resp.reason().unwrap_or_default()).into_owned();
    let to_tag = final_resp
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_string));
    let server = msg::header_text(&final_resp, "Server").unwrap_or_default();
    let peer_diag = msg::header_text(&final_resp, "ms-diagnostics");

    if (200..300).contains(&code) {
        let (resp, tag) = (&final_resp, to_tag.as_deref());
        match req.method {
            CallMethod::Invite => {
                finish_dialog(&mut run, &tap, &mut stream, resp, tag, &local, req).await
            }
            CallMethod::Subscribe => {
                let s = &mut stream;
                super::presence::after_subscribe(
                    &mut run,
                    s,
                    &mut framer,
                    &mut buf,
                    resp,
                    tag,
                    &local,
                    req,
                )
                .await;
            }
            CallMethod::Im => {
                let s = &mut stream;
                super::presence::after_im(
                    &mut run,
                    s,
                    &mut framer,
                    &mut buf,
                    resp,
                    tag,
                    &local,
                    req,
                )
                .await;
            }
            CallMethod::Options => {}
        }
    } else if method == "INVITE" {
        let ack = run
            .dialog
            .in_dialog("ACK", 1, to_tag.as_deref(), &local, true, None);
        tap.sent(&ack).await;
        if msg::send(&mut stream, &ack).await.is_ok() {
            run.sent.push("ACK".into());
        }
    }
    tap.closed().await;
    let answer = run.ctx.policy.peer_answer(
        target,
        method,
        code,
        &reason,
        peer_diag,
        &run.domain,
        &req.target,
    );
    let server = if server.is_empty() {
        EDGE_SERVER.to_string()
    } else {
        server
    };
    run.finish(&answer, to_tag.as_deref(), &server)
}
/// 2xx to INVITE: ACK, hold, BYE and its response.
async fn finish_dialog<S>(
    run: &mut Run<'_>,
    tap: &crate::wire::taps::OutTap,
    stream: &mut S,
    ok: &Message,
    to_tag: Option<&str>,
    local: &str,
    req: &CallRequest,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let contact = ok.contacts().ok().and_then(|c| {
        c.into_iter().find_map(|c| match c {
            crate::sip::Contact::Addr(na) => Some(na.uri.as_str().to_string()),
            _ => None,
        })
    });
    let ack = run
        .dialog
        .in_dialog("ACK", 1, to_tag, local, false, contact.as_deref());
    tap.sent(&ack).await;
    if msg::send(stream, &ack).await.is_err() {
        run.step("sip", false, "sending ACK failed");
        return;
    }
    run.sent.push("ACK".into());
    run.step("sip", true, "sent ACK");
    if req.hold_ms > 0 {
        run.step("sip", true, format!("holding the call {} ms", req.hold_ms));
        tokio::time::sleep(Duration::from_millis(req.hold_ms)).await;
    }
    let bye = run
        .dialog
        .in_dialog("BYE", 2, to_tag, local, false, contact.as_deref());
    tap.sent(&bye).await;
    if msg::send(stream, &bye).await.is_err() {
        run.step("sip", false, "sending BYE failed");
        return;
    }
    run.sent.push("BYE".into());
    let mut framer = Framer::default();
    let mut buf = BytesMut::new();
    match msg::read_response(
        stream,
        &mut framer,
        &mut buf,
        "BYE",
        run.ctx.timeouts.response,
    )
    .await
    {
        Ok(Some(m)) => {
            tap.received(&m).await;
            let code = m.status_code().unwrap_or(0);
            run.step("sip", code < 300, format!("BYE answered {code}"));
        }
        _ => run.step("sip", false, "no answer to BYE"),
    }
}
