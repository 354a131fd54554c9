//! edgesim: a Microsoft Lync / Skype for Business Edge server in federation, for labs.
//!
//! In your own tests, [`testkit`] serves a real Edge (mutual TLS, the federation rules, emulated users, its
//! own lab CA and DNS) on 127.0.0.1:0, and a [`TestPeer`] calls it as an Expressway-E would:
//!
//! ```
//! use edgesim::config::UserAction;
//! use edgesim::testkit::{DecisionMatch, TestEdge, TestkitError};
//!
//! #[tokio::main(flavor = "current_thread")] // in a test: #[tokio::test]
//! async fn main() -> Result<(), TestkitError> {
//!     let edge = TestEdge::builder()
//!         .user("stejanss", UserAction::Answer)
//!         .srv("acano.steven.lab", "vcse.acano.steven.lab") // served by the embedded DNS server
//!         .start()
//!         .await?;
//!     // Checked when `edge` is stopped or dropped: a miss fails the test with what the Edge did decide.
//!     edge.expect_decision(DecisionMatch::method("INVITE").status(504).diagnostics_code(1010), 1);
//!     edge.expect_record("SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH", 1);
//!
//!     // A peer certificate that names the SRV target: the call goes through.
//!     let mut good = edge.peer("2000@acano.steven.lab", &["vcse.acano.steven.lab"]).await?;
//!     assert_eq!(good.invite("stejanss").await?.status_code(), Some(200));
//!
//!     // One that does not (the seed's Rule 2 failure): 504 with ms-diagnostics 1010.
//!     let mut wrong = edge.peer("2000@acano.steven.lab", &["vcse.steven.lab"]).await?;
//!     assert_eq!(wrong.invite("stejanss").await?.status_code(), Some(504));
//!
//!     let last = edge.decisions().pop().expect("two decisions");
//!     assert_eq!(last.domain.as_deref(), Some("acano.steven.lab"));
//!     edge.stop().await
//! }
//! ```
//!
//! A whole scenario file as one test: [`lab::scenario::run_file`]. The `edgesim` command (`cargo install
//! --path .`) serves, calls, checks and loads from the same parts.
//!
//! The data's path: bytes arrive on a TLS connection (`edge`), are framed and parsed (`sip`), the
//! sender's domain is looked up in DNS (`dns`), the peer certificate is read (`pki`), the federation
//! rules decide (`rules`), and the answer carries the Edge's diagnostics (`diagnostics`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod check;
pub mod config;
pub mod diagnostics;
pub mod dns;
pub mod edge;
pub mod im;
pub mod lab;
pub mod outbound;
pub mod pki;
pub mod presence;
pub mod report;
pub mod rules;
pub mod sip;
pub mod testkit;
pub mod ui;
pub mod wire;

pub use diagnostics::DecisionEvent;
pub use pki::TlsIdentity;
pub use testkit::{TestEdge, TestPeer};
pub use tokio_util::sync::CancellationToken;
/// What [`edge::Edge::subscribe`] and [`TestEdge::subscribe`] return: every decision from then on.
pub type EventReceiver = tokio::sync::broadcast::Receiver<DecisionEvent>;
