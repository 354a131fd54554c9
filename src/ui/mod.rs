//! The live web view of `serve --ui ADDR`: a page that shows the Edge's connections (peer address, SNI, TLS
//! version and suite, the client certificate's subject, SAN, issuer, EKUs, expiry and chain verdict), the
//! DNS questions asked and answered, each decision rule by rule ending in the response with its
//! ms-diagnostics, Edge record and fix, and a ladder per Call-ID with exports (pcapng, text and Mermaid
//! ladder, JSON). Everything the page needs is in the binary (no CDN: it works with no internet).
//!
//! The data's path: producers build [`UiEvent`]s ([`model`]) and [`UiHub::publish`] them; the hub ([`hub`])
//! keeps a bounded history and a bounded live channel; [`http::serve`] sends them to each page as
//! server-sent events (`GET /events`, SSE `id:` = sequence number, so a reconnecting page resumes) and
//! draws the exports from the history ([`ladder`], [`export`]).
//!
//! # Producers
//! `serve --ui` hands the hub to the Edge's [`crate::wire::Taps`], which publish from one-line hooks in the
//! Edge: [`UiEvent::Connection`] after the client certificate chain is checked (accepted or refused, with
//! [`ConnectionView::from_tls`]), [`UiEvent::Message`] for each framed message read and each one written,
//! [`UiEvent::ConnectionClosed`] with who closed it, and [`UiEvent::Decision`] rule by rule ([`steps`]: one
//! [`model::Step`] per inbound rule, from the finding the decision produced) with its Edge record. The
//! Edge's resolver is wrapped in [`bridge::ObservedLookup`], so every SRV and address question and its answer
//! becomes a [`UiEvent::Dns`]; then [`WebView::serve_page`] serves the page.
//!
//! Without taps (an Edge built in code), [`WebView::start`] runs [`bridge::bridge_decisions`]: the Edge's
//! decision events ([`crate::edge::Edge::subscribe`]) become decisions with one summary step, the record
//! found among `Edge::log_records`, and a ladder drawn from the decisions.

pub mod bridge;
pub mod export;
pub mod http;
pub mod hub;
pub mod ladder;
pub mod model;
pub mod steps;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use hub::{Stamped, UiHub, UiLimits};
pub use model::{
    CertView, ChainVerdict, Closer, ConnectionClosed, ConnectionView, DecisionView, DnsQuery,
    MessageDirection, Outcome, ResponseView, SipMessage, Step, UiEvent, Verdict,
};

use crate::dns::Lookup;
use crate::edge::Edge;

/// Why the web view could not start or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The listening socket could not be bound.
    #[error("cannot serve the web view on {addr}: {cause} — pick another --ui")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error (not a `source`: the message includes it).
        cause: std::io::Error,
    },
    /// An export could not be written.
    #[error("web view export: {0}")]
    Export(String),
}

/// The web view of one Edge, bound and not yet serving: [`WebView::bind`], then wrap the Edge's resolver
/// with [`WebView::observe`], build the Edge, and [`WebView::start`].
#[derive(Debug)]
pub struct WebView {
    listener: TcpListener,
    hub: UiHub,
}

impl WebView {
    /// Binds `addr` for the web view of the Edge named `title`, with the default limits.
    pub async fn bind(addr: SocketAddr, title: &str) -> Result<WebView, UiError> {
        let listener = TcpListener::bind(addr).await.map_err(|cause| {
            let cause = if cause.kind() == std::io::ErrorKind::AddrInUse {
                std::io::Error::new(cause.kind(), "the address is already in use")
            } else {
                cause
            };
            UiError::Bind { addr, cause }
        })?;
        Ok(WebView {
            listener,
            hub: UiHub::new(title, UiLimits::default()),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, UiError> {
        self.listener.local_addr().map_err(|cause| UiError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            cause,
        })
    }

    /// The hub the page reads (publish to it).
    pub fn hub(&self) -> &UiHub {
        &self.hub
    }

    /// `lookup`, with every question and answer shown on the page.
    pub fn observe(&self, lookup: Arc<dyn Lookup>) -> Arc<dyn Lookup> {
        Arc::new(bridge::ObservedLookup::new(lookup, self.hub.clone()))
    }

    /// Serves the page until `shutdown`, for an Edge whose taps publish to [`WebView::hub`] themselves
    /// (connections, messages, and decisions rule by rule: [`crate::wire::Taps`]).
    pub fn serve_page(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(e) = http::serve(self.listener, self.hub, shutdown).await {
                tracing::error!(error = %e, "web view stopped");
            }
        })
    }

    /// Serves the page and feeds it `edge`'s decisions until `shutdown`; the task ends after both stopped.
    pub fn start(
        self,
        edge: &Arc<Edge>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let rx = edge.subscribe();
        let records = {
            let edge = edge.clone();
            move || edge.log_records()
        };
        let bridge = tokio::spawn(bridge::bridge_decisions(
            rx,
            records,
            self.hub.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(async move {
            if let Err(e) = http::serve(self.listener, self.hub, shutdown).await {
                tracing::error!(error = %e, "web view stopped");
            }
            let _ = bridge.await;
        })
    }
}
