//! The README's example configuration loads, and its values are the ones it documents.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use edgesim::config::{ClientCertMode, EdgeConfig, TlsVersion, UserAction};

#[test]
fn edge_example_toml_loads_with_its_documented_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge.example.toml");
    let c = EdgeConfig::load(&path).unwrap();
    let defaults = EdgeConfig::default();
    // The example spells out the defaults, apart from its lab-specific lists.
    assert_eq!(c.edge, defaults.edge);
    assert_eq!(c.limits, defaults.limits);
    assert_eq!(c.faithful, defaults.faithful);
    assert_eq!(
        c.policy.partner_discovery,
        defaults.policy.partner_discovery
    );
    assert_eq!(
        c.policy.accept_apex_target,
        defaults.policy.accept_apex_target
    );
    assert_eq!(c.policy.allow_wildcard, defaults.policy.allow_wildcard);
    assert_eq!(
        c.policy.require_client_auth_eku,
        defaults.policy.require_client_auth_eku
    );
    assert_eq!(c.tls.use_system_roots, defaults.tls.use_system_roots);
    assert_eq!(c.tls.client_cert, ClientCertMode::Required);
    // No `versions` key: the profile's (sfb2015: TLS 1.2, all rustls has of a real SfB 2015 Edge's 1.2/1.1/1.0).
    assert_eq!(c.tls.versions, None);
    assert_eq!(c.tls_versions(), [TlsVersion::Tls12]);
    assert_eq!(c.policy.blocked_domains, vec!["spam.lab".to_string()]);
    assert_eq!(
        c.policy.allowed_domains[0].proxy_fqdn.as_deref(),
        Some("edge.partner.lab")
    );
    assert_eq!(c.users.len(), 2);
    assert_eq!(c.users[1].action, UserAction::Busy);
    assert_eq!(c.dns.records.len(), 2);
    // The CA it names is the checked-in lab CA.
    assert!(path.parent().unwrap().join(&c.tls.ca[0]).exists());
}
