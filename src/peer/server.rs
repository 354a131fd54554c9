//! Emulated Expressway-E as TLS SIP server: not written yet.
