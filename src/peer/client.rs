//! Emulated Expressway-E as TLS SIP client: not written yet.
