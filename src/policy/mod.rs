//! The federation rules as pure functions: (request facts, SRV answer, certificate facts, policy) → `Verdict`.
//! This is the only place a rule lives.
//!
//! Owned by the policy/diagnostics work.
