//! The examples' own tests, run by `cargo test` (and so by CI): each example that is a service tested against
//! edgesim is compiled here as a module, with its `#[cfg(test)]` tests. `cargo test --example NAME` runs the
//! same tests from the example alone.

#[allow(dead_code)]
#[path = "../examples/federation_probe.rs"]
mod federation_probe;
