//! edge: not written yet.
