//! edgesim: a Microsoft Lync / Skype for Business Edge server in federation, for labs.
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
