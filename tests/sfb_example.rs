//! edge.example.toml's `[access_edge]` says what it claims (issue 15): Microsoft's defaults apart from the two
//! switches it turns on, and its SfB domain tables reach the policy in force.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use edgesim::config::{AccessEdgeConfig, EdgeConfig, VerificationLevel};

#[test]
fn the_example_access_edge_is_microsofts_defaults_with_federation_and_discovery_on() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge.example.toml");
    let c = EdgeConfig::load(&path).unwrap();
    assert_eq!(
        c.federation.access_edge,
        AccessEdgeConfig {
            allow_federated_users: true,
            enable_partner_discovery: true,
            ..AccessEdgeConfig::default()
        }
    );
    // ... which is what an Edge without [access_edge] runs: edgesim's lab defaults.
    assert_eq!(
        c.federation.access_edge,
        EdgeConfig::default().federation.access_edge
    );
    let fed = &c.federation;
    assert_eq!(fed.allowed.len(), 1);
    assert_eq!(fed.allowed[0].domain, "partner.lab");
    assert_eq!(
        fed.allowed[0].proxy_fqdn.as_deref(),
        Some("edge.partner.lab")
    );
    assert_eq!(
        fed.allowed[0].verification_level,
        VerificationLevel::UseSourceVerification
    );
    assert_eq!(fed.blocked[0].domain, "spam.lab");
    assert!(c.policy.partner_discovery);
}
