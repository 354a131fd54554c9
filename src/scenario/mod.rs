//! scenario: not written yet.
