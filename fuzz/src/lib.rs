//! The SIP layer compiled on its own for fuzzing: `src/sip` needs only `bytes`, `memchr` and
//! `thiserror`, so the instrumented build skips tokio, rustls, aws-lc-sys, hickory… and takes
//! seconds instead of minutes. The module is the very same source file as in `edgesim`.
#![forbid(unsafe_code)]
// Helpers used only by the server side of edgesim look dead from here.
#![allow(dead_code)]

#[path = "../../src/sip/mod.rs"]
pub mod sip;
