//! The catalogue of what the Edge says: ms-diagnostics codes with their reasons and parameter layouts, SIPPROXY
//! result codes, HRESULTs, and the rendering of the Edge log record.
//!
//! Owned by the policy/diagnostics work.
