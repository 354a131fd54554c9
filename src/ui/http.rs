//! The web view's HTTP side (axum on hyper 1, HTTP/1.1): the page and its assets, the event stream and the
//! exports. Bounded: connections at once, header bytes and time, event streams at once (more get 503), the
//! Call-ID a query may name; only GET is served, so no request body is ever read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::UiError;
use super::export::{dialog_json, dialog_pcapng};
use super::hub::{Stamped, UiHub};
use super::ladder::{Ladder, ladder};

/// Most bytes of a request's head (request line and headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Time a client has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once beyond the event streams (assets, exports); more wait in the backlog.
const EXTRA_CONNECTIONS: usize = 32;
/// The longest Call-ID an export accepts.
const MAX_CALL_ID: usize = 1024;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// What every handler shares.
#[derive(Clone)]
struct App {
    hub: UiHub,
    streams: Arc<Semaphore>,
    shutdown: CancellationToken,
}

/// The page's routes over `hub` (exposed for tests that drive the router without a socket).
fn router(app: App) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/events", get(events))
        .route("/api/info", get(info))
        .route("/api/history", get(history))
        .route("/api/dialog.json", get(export_json))
        .route("/api/dialog.txt", get(export_text))
        .route("/api/dialog.mmd", get(export_mermaid))
        .route("/api/dialog.pcapng", get(export_pcapng))
        .fallback(|| async {
            plain(
                StatusCode::NOT_FOUND,
                "not found: the web view is at /\n".to_owned(),
            )
        })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Headers on every answer: nothing from elsewhere runs in the page, nothing is sniffed or framed.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn json_body(text: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn info(State(app): State<App>) -> Response {
    let l = app.hub.limits();
    json_body(
        serde_json::json!({
            "edge": app.hub.title(),
            "version": env!("CARGO_PKG_VERSION"),
            "history_events": l.history_events,
            "max_streams": l.max_streams,
        })
        .to_string(),
    )
}

async fn history(State(app): State<App>) -> Response {
    let all = app.hub.history();
    let plain_events: Vec<&Stamped> = all.iter().map(|e| &**e).collect();
    match serde_json::to_string(&plain_events) {
        Ok(t) => json_body(t),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The state of one page's event stream.
struct Feed {
    pending: VecDeque<Arc<Stamped>>,
    rx: broadcast::Receiver<Arc<Stamped>>,
    last: u64,
    hub: UiHub,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    /// The next event to send, in order, each once; `None` at shutdown.
    async fn next(&mut self) -> Option<Arc<Stamped>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if e.seq > self.last {
                    self.last = e.seq;
                    return Some(e);
                }
                continue;
            }
            let r = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                r = self.rx.recv() => r,
            };
            match r {
                Ok(e) => self.pending.push_back(e),
                // Fell behind: catch up from the history (what it no longer holds is gone).
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.pending = self.hub.history_after(self.last).into();
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// `GET /events`: the history (after `Last-Event-ID`, when a page reconnects), then every new event.
async fn events(State(app): State<App>, headers: HeaderMap) -> Response {
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many web view pages are open ({} at most): close one\n",
                app.hub.limits().max_streams
            ),
        );
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (rx, past) = app.hub.subscribe();
    let feed = Feed {
        pending: past.into(),
        rx,
        last,
        hub: app.hub.clone(),
        shutdown: app.shutdown.clone(),
        _permit: permit,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let e = feed.next().await?;
        let event = match serde_json::to_string(&*e) {
            Ok(data) => Event::default()
                .id(e.seq.to_string())
                .event("ui")
                .data(data),
            Err(err) => Event::default().event("error").data(err.to_string()),
        };
        Some((Ok::<_, std::convert::Infallible>(event), feed))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(serde::Deserialize)]
struct DialogQuery {
    call_id: String,
}

/// A dialog's events and its ladder.
type Dialog = (Vec<Arc<Stamped>>, Ladder);

/// The dialog's events and ladder, or the status and text that say why there are none.
fn dialog(app: &App, q: &DialogQuery) -> Result<Dialog, (StatusCode, String)> {
    if q.call_id.is_empty() || q.call_id.len() > MAX_CALL_ID {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("call_id must be 1 to {MAX_CALL_ID} bytes\n"),
        ));
    }
    let events = app.hub.dialog(&q.call_id);
    match ladder(&q.call_id, app.hub.title(), &events) {
        Some(l) => Ok((events, l)),
        None => Err((
            StatusCode::NOT_FOUND,
            format!(
                "no event of Call-ID {:?} in the web view's history (it keeps the last {} events)\n",
                q.call_id,
                app.hub.limits().history_events
            ),
        )),
    }
}

/// `attachment; filename="dialog-<safe part of the Call-ID>.<ext>"`.
fn attachment(call_id: &str, ext: &str) -> HeaderValue {
    let safe: String = call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"dialog-{safe}.{ext}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

fn download(
    call_id: &str,
    ext: &str,
    content_type: &'static str,
    body: impl IntoResponse,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, attachment(call_id, ext)),
        ],
        body,
    )
        .into_response()
}

async fn export_json(State(app): State<App>, Query(q): Query<DialogQuery>) -> Response {
    let (events, l) = match dialog(&app, &q) {
        Ok(d) => d,
        Err((status, text)) => return plain(status, text),
    };
    match dialog_json(app.hub.title(), &q.call_id, &l, &events) {
        Ok(t) => download(&q.call_id, "json", "application/json; charset=utf-8", t),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn export_text(State(app): State<App>, Query(q): Query<DialogQuery>) -> Response {
    match dialog(&app, &q) {
        Ok((_, l)) => plain(StatusCode::OK, l.to_text()),
        Err((status, text)) => plain(status, text),
    }
}

async fn export_mermaid(State(app): State<App>, Query(q): Query<DialogQuery>) -> Response {
    match dialog(&app, &q) {
        Ok((_, l)) => download(
            &q.call_id,
            "mmd",
            "text/plain; charset=utf-8",
            l.to_mermaid(),
        ),
        Err((status, text)) => plain(status, text),
    }
}

async fn export_pcapng(State(app): State<App>, Query(q): Query<DialogQuery>) -> Response {
    let (events, _) = match dialog(&app, &q) {
        Ok(d) => d,
        Err((status, text)) => return plain(status, text),
    };
    match dialog_pcapng(&events).await {
        Ok(Some(bytes)) => download(&q.call_id, "pcapng", "application/vnd.tcpdump.pcap", bytes),
        Ok(None) => plain(
            StatusCode::NOT_FOUND,
            format!(
                "no SIP message of Call-ID {:?} in the web view's history: only its decisions (a pcapng needs the messages)\n",
                q.call_id
            ),
        ),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// Serves the web view of `hub` on `listener` until `shutdown` is cancelled; open pages are cut then.
pub async fn serve(
    listener: TcpListener,
    hub: UiHub,
    shutdown: CancellationToken,
) -> Result<(), UiError> {
    let max_streams = hub.limits().max_streams.max(1);
    let app = App {
        hub,
        streams: Arc::new(Semaphore::new(max_streams)),
        shutdown: shutdown.clone(),
    };
    let service = TowerToHyperService::new(router(app));
    let slots = Arc::new(Semaphore::new(max_streams + EXTRA_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "web view: accept failed");
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let service = service.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "web view: connection ended with an error");
                },
            }
        });
    }
    conns.shutdown().await;
    Ok(())
}
