//! outbound: not written yet.
