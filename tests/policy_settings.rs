//! Issue 15, one test per federation setting over real mutual TLS and real DNS on loopback: AllowFederatedUsers
//! False (its own finding), a blocked domain, a domain not allowed with EnablePartnerDiscovery False, an
//! allowed domain with a ProxyFqdn (no SRV; the certificate must name the ProxyFqdn), and the verification
//! levels (AlwaysUnverifiable: delivered only to users who list the sender as a contact).
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/policy_lab.rs"]
mod policy_lab;

use edgesim::diagnostics::VerdictKind;
use policy_lab::*;

const USERS: &str = r#"
[[users]]
user = "stejanss"
im = "silent"
contacts = ["sip:2000@acano.steven.lab", "alice@fabrikam.lab"]

[[users]]
user = "other"
im = "silent"
"#;

/// One MESSAGE from `from` to `to` over a new connection with a certificate naming `cert`: its status and the
/// decision event.
async fn one(
    lab: &edge_lab::Lab,
    cert: &str,
    from: &str,
    to: &str,
) -> (u16, edgesim::diagnostics::DecisionEvent) {
    let mut rx = lab.edge.subscribe();
    let mut peer = lab.peer(&[cert]).await;
    let r = peer
        .request(&message(from, to).build(), edge_lab::T)
        .await
        .unwrap();
    peer.close().await;
    (
        r.status_code().unwrap(),
        edge_lab::Lab::event(&mut rx).await,
    )
}

#[tokio::test]
async fn federation_off_refuses_every_domain_with_its_own_finding() {
    // [access_edge] present, AllowFederatedUsers left out: Microsoft's default, False.
    let lab = lab(&format!(
        "[access_edge]\nEnablePartnerDiscovery = true\n\n[[allowed_domains]]\nIdentity = \"fabrikam.lab\"\nProxyFqdn = \"sip.fabrikam.lab\"\n{USERS}"
    ))
    .await;
    for (cert, from) in [
        ("vcse.acano.steven.lab", "sip:2000@acano.steven.lab"),
        ("sip.fabrikam.lab", "sip:alice@fabrikam.lab"),
    ] {
        let (status, e) = one(&lab, cert, from, "sip:stejanss@skype.lab").await;
        assert_eq!(status, 403);
        assert_eq!(e.ms_diagnostics_code, Some(1002));
        assert_eq!(
            e.result_code.as_deref(),
            Some("0xc3e93e06 SIPPROXY_E_EPROUTING_MSG_FEDERATION_DISABLED")
        );
        assert_eq!(data(&e, "AllowFederatedUsers"), Some("False"));
        assert!(
            e.explanation
                .as_deref()
                .unwrap()
                .starts_with("Federation is off on this Edge: AllowFederatedUsers is False"),
            "{e:?}"
        );
        assert_eq!(e.message_trust, None, "nothing goes inward");
    }
    lab.stop().await;
}

#[tokio::test]
async fn blocked_not_allowed_and_allowed_with_a_proxy_fqdn() {
    let lab = lab(&format!(
        r#"
[access_edge]
AllowFederatedUsers = true
EnablePartnerDiscovery = false

[[allowed_domains]]
Identity = "fabrikam.lab"
ProxyFqdn = "sip.fabrikam.lab"

[[allowed_domains]]
Identity = "contoso.lab"

[[blocked_domains]]
Identity = "cms.steven.lab"
{USERS}"#
    ))
    .await;
    // Blocked.
    let (status, e) = one(
        &lab,
        "vcse.cms.steven.lab",
        "sip:space@cms.steven.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!((status, e.ms_diagnostics_code), (403, Some(1002)));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e02 SIPPROXY_E_EPROUTING_MSG_BLOCKED_DOMAIN")
    );
    // Not allowed, discovery off (acano.steven.lab has a good SRV record, which does not matter).
    let (status, e) = one(
        &lab,
        "vcse.acano.steven.lab",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!((status, e.ms_diagnostics_code), (403, Some(1002)));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e03 SIPPROXY_E_EPROUTING_MSG_DOMAIN_NOT_ALLOWED")
    );
    // Allowed with a ProxyFqdn: fabrikam.lab has no SRV record; a certificate naming the ProxyFqdn passes.
    let (status, e) = one(
        &lab,
        "sip.fabrikam.lab",
        "sip:alice@fabrikam.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(e.verdict, VerdictKind::Accept);
    assert_eq!(e.partner_type, Some("allowed-server"));
    // ... one that names only the domain does not: Rule 2 against the ProxyFqdn.
    let (status, e) = one(
        &lab,
        "fabrikam.lab",
        "sip:alice@fabrikam.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!((status, e.ms_diagnostics_code), (504, Some(1010)));
    assert_eq!(data(&e, "expectedfqdn"), Some("sip.fabrikam.lab"));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93d67 SIPPROXY_E_ROUTING_MSG_CERT_MISMATCH")
    );
    // Allowed without a ProxyFqdn: SRV as usual.
    let (status, e) = one(
        &lab,
        "sip.contoso.lab",
        "sip:bob@contoso.lab",
        "sip:other@skype.lab",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(e.partner_type, Some("allowed-domain"));
    lab.stop().await;
}

#[tokio::test]
async fn always_unverifiable_reaches_only_users_who_list_the_sender() {
    let lab = lab(&format!(
        r#"
[access_edge]
AllowFederatedUsers = true
EnablePartnerDiscovery = true
DiscoveredPartnerVerificationLevel = "AlwaysUnverifiable"

[[allowed_domains]]
Identity = "fabrikam.lab"
ProxyFqdn = "sip.fabrikam.lab"
VerificationLevel = "AlwaysVerifiable"
{USERS}"#
    ))
    .await;
    let unverified = "ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=unverified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab";
    // A contact of stejanss: delivered, stamped unverified.
    let (status, e) = one(
        &lab,
        "vcse.acano.steven.lab",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(e.message_trust.as_deref(), Some(unverified));
    // Not a contact of stejanss.
    let (status, e) = one(
        &lab,
        "vcse.acano.steven.lab",
        "sip:3000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(e.verdict, VerdictKind::Reject);
    assert_eq!(e.ms_diagnostics_code, None);
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e09 SIPPROXY_E_ROUTING_MSG_UNVERIFIED_SENDER")
    );
    assert_eq!(data(&e, "sender"), Some("3000@acano.steven.lab"));
    assert_eq!(data(&e, "msEdgeProxyMessageTrust"), Some(unverified));
    // A user with no contacts gets no unverified message.
    let (status, _) = one(
        &lab,
        "vcse.acano.steven.lab",
        "sip:2000@acano.steven.lab",
        "sip:other@skype.lab",
    )
    .await;
    assert_eq!(status, 403);
    // The allowed partner is AlwaysVerifiable: delivered to everyone, stamped verified.
    let (status, e) = one(
        &lab,
        "sip.fabrikam.lab",
        "sip:carol@fabrikam.lab",
        "sip:other@skype.lab",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        e.message_trust
            .unwrap()
            .contains("ms-source-verified-user=verified")
    );
    lab.stop().await;
}

#[test]
fn a_contact_that_is_not_a_sip_address_names_the_file_field_and_fix() {
    let err = edgesim::config::EdgeConfig::from_toml(
        "[[users]]\nuser = \"stejanss\"\ncontacts = [\"sip:2000@acano.steven.lab\", \"DX70 Steven\"]\n",
        std::path::Path::new("edge.toml"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "edge.toml: `users[0].contacts[1]`: \"DX70 Steven\" is not a SIP address: write the sender as sip:user@domain (e.g. \"sip:2000@acano.steven.lab\"), one address per entry"
    );
}
