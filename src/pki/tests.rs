//! Facts, chain status and issuance against real certificates from the lab issuer.

use rustls_pki_types::UnixTime;

use super::*;
use crate::policy::{NameMatch, names_match};

fn ca() -> LabCa {
    LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap()
}

fn facts_of(issued: &IssuedCert) -> CertFacts {
    CertFacts::from_der(&issued.cert_der).unwrap()
}

#[test]
fn facts_with_san_and_cn() {
    let ca = ca();
    let c = ca
        .issue(&LeafSpec::new("vcse.steven.lab").san(&["vcse.steven.lab", "vcse.acano.steven.lab"]))
        .unwrap();
    let f = facts_of(&c);
    assert_eq!(f.common_names, vec!["vcse.steven.lab".to_string()]);
    assert_eq!(
        f.san_dns,
        Some(vec![
            "vcse.steven.lab".to_string(),
            "vcse.acano.steven.lab".to_string()
        ])
    );
    assert_eq!(f.subject, "CN=vcse.steven.lab");
    assert_eq!(f.issuer, "CN=edgesim test CA");
    assert!(!f.is_ca);
    assert!(!f.has_wildcard());
    assert_eq!(f.display_name(), "vcse.steven.lab");
    assert_eq!(
        names_match(&f, "vcse.acano.steven.lab", false),
        NameMatch::San
    );
    assert!(!f.serial.is_empty());
}

#[test]
fn facts_without_san_extension() {
    let c = ca()
        .issue(&LeafSpec::new("sip.skype.lab").san::<&str>(&[]))
        .unwrap();
    let f = facts_of(&c);
    assert_eq!(f.san_dns, None);
    assert_eq!(f.common_names, vec!["sip.skype.lab".to_string()]);
    assert_eq!(
        names_match(&f, "sip.skype.lab", false),
        NameMatch::CommonName
    );
}

#[test]
fn facts_without_cn() {
    let c = ca()
        .issue(&LeafSpec::new("sip.skype.lab").common_name(None))
        .unwrap();
    let f = facts_of(&c);
    assert!(f.common_names.is_empty());
    assert_eq!(f.subject, "");
    assert_eq!(f.display_name(), "sip.skype.lab");
}

#[test]
fn facts_eku_combinations() {
    let ca = ca();
    let eku = |choice| facts_of(&ca.issue(&LeafSpec::new("a.lab").eku(choice)).unwrap());
    let both = eku(EkuChoice::Both);
    assert_eq!(
        both.eku,
        Some(Eku {
            server_auth: true,
            client_auth: true,
            any: false
        })
    );
    assert!(both.allows_server_auth() && both.allows_client_auth());
    let server = eku(EkuChoice::ServerAuth);
    assert_eq!(
        server.eku,
        Some(Eku {
            server_auth: true,
            client_auth: false,
            any: false
        })
    );
    assert!(server.lacks_client_auth_only());
    let client = eku(EkuChoice::ClientAuth);
    assert!(!client.allows_server_auth() && client.allows_client_auth());
    let none = eku(EkuChoice::None);
    assert_eq!(none.eku, None);
    assert!(none.allows_server_auth() && none.allows_client_auth());
    assert!(!none.lacks_client_auth_only());
}

#[test]
fn facts_wildcard() {
    let c = ca().issue(&LeafSpec::new("*.steven.lab")).unwrap();
    let f = facts_of(&c);
    assert!(f.has_wildcard());
    assert!(is_wildcard_name("*.steven.lab"));
    assert!(!is_wildcard_name("vcse.steven.lab"));
    assert_eq!(
        names_match(&f, "vcse.steven.lab", false),
        NameMatch::WildcardRefused("*.steven.lab".to_string())
    );
}

#[test]
fn facts_validity_and_days_left() {
    let ca = ca();
    // Taken before issuing, so each not_after is at or just after now ± whole days.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ok = facts_of(&ca.issue(&LeafSpec::new("a.lab").valid_days(10)).unwrap());
    assert!(ok.is_valid_at(now));
    assert_eq!(ok.days_left(now), 10);
    let expired = facts_of(&ca.issue(&LeafSpec::new("a.lab").expired()).unwrap());
    assert!(!expired.is_valid_at(now));
    assert_eq!(expired.days_left(now), -1);
    let ca_facts = CertFacts::from_der(ca.cert_der()).unwrap();
    assert!(ca_facts.is_ca);
}

#[test]
fn days_left_exact() {
    let f = CertFacts {
        not_after: 10 * 86_400,
        ..CertFacts::default()
    };
    assert_eq!(f.days_left(0), 10);
    assert_eq!(f.days_left(1), 9);
    assert_eq!(f.days_left(10 * 86_400 + 1), -1);
}

#[test]
fn parse_pem_and_der_auto_detect() {
    let c = ca().issue(&LeafSpec::new("a.lab")).unwrap();
    let pem = parse_certs(c.chain_pem.as_bytes(), "chain.pem").unwrap();
    assert_eq!(pem, c.chain);
    let der = parse_certs(&c.cert_der, "leaf.der").unwrap();
    assert_eq!(der, vec![c.cert_der.clone()]);
    let key_pem = parse_key(c.key_pem.as_bytes(), "k.pem").unwrap();
    assert_eq!(key_pem.secret_der(), c.key_der.secret_der());
    let key_der = parse_key(c.key_der.secret_der(), "k.der").unwrap();
    assert_eq!(key_der.secret_der(), c.key_der.secret_der());
}

#[test]
fn parse_errors_name_the_file_and_fix() {
    let e = parse_certs(b"hello", "peer.crt").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("peer.crt: not a valid X.509 certificate ("),
        "{e}"
    );
    assert!(
        e.to_string().ends_with(") — give a PEM or DER certificate"),
        "{e}"
    );
    let e = parse_certs(
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "x.pem",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.pem: no certificate found — give a PEM file with a BEGIN CERTIFICATE block, or a DER certificate"
    );
    let e = load_pem_chain(std::path::Path::new("/nonexistent/edge.pem")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read certificate file /nonexistent/edge.pem: No such file or directory (os error 2) — check the path and the file's permissions"
    );
}

fn status(
    chain: &[rustls_pki_types::CertificateDer<'_>],
    anchors: &TrustAnchors,
    usage: Usage,
) -> ChainStatus {
    verify_chain(chain, anchors, usage, UnixTime::now())
}

#[test]
fn chain_status_matrix() {
    let ca = ca();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "ca").unwrap();
    let good = ca.issue(&LeafSpec::new("a.lab")).unwrap();
    assert_eq!(
        status(&good.chain, &anchors, Usage::ServerAuth),
        ChainStatus::Trusted
    );
    assert_eq!(
        status(&good.chain, &anchors, Usage::ClientAuth),
        ChainStatus::Trusted
    );
    // The leaf alone is enough when the root is the issuer.
    assert_eq!(
        status(&good.chain[..1], &anchors, Usage::Any),
        ChainStatus::Trusted
    );

    let other = LabCa::generate("other CA", KeyType::EcdsaP256).unwrap();
    let stranger = other.issue(&LeafSpec::new("a.lab")).unwrap();
    assert_eq!(
        status(&stranger.chain, &anchors, Usage::Any),
        ChainStatus::UntrustedRoot
    );

    let expired = ca.issue(&LeafSpec::new("a.lab").expired()).unwrap();
    assert_eq!(
        status(&expired.chain, &anchors, Usage::Any),
        ChainStatus::Expired
    );
    let early = ca.issue(&LeafSpec::new("a.lab").not_yet_valid()).unwrap();
    assert_eq!(
        status(&early.chain, &anchors, Usage::Any),
        ChainStatus::NotYetValid
    );

    let server_only = ca
        .issue(&LeafSpec::new("a.lab").eku(EkuChoice::ServerAuth))
        .unwrap();
    assert_eq!(
        status(&server_only.chain, &anchors, Usage::ServerAuth),
        ChainStatus::Trusted
    );
    assert_eq!(
        status(&server_only.chain, &anchors, Usage::ClientAuth),
        ChainStatus::WrongUsage
    );
    assert_eq!(
        status(&server_only.chain, &anchors, Usage::Any),
        ChainStatus::Trusted
    );
    let client_only = ca
        .issue(&LeafSpec::new("a.lab").eku(EkuChoice::ClientAuth))
        .unwrap();
    assert_eq!(
        status(&client_only.chain, &anchors, Usage::ServerAuth),
        ChainStatus::WrongUsage
    );
    let no_eku = ca
        .issue(&LeafSpec::new("a.lab").eku(EkuChoice::None))
        .unwrap();
    assert_eq!(
        status(&no_eku.chain, &anchors, Usage::ClientAuth),
        ChainStatus::Trusted
    );

    assert_eq!(status(&[], &anchors, Usage::Any), ChainStatus::Missing);
    let garbage = [rustls_pki_types::CertificateDer::from(vec![1u8, 2, 3])];
    assert!(matches!(
        status(&garbage, &anchors, Usage::Any),
        ChainStatus::Invalid(_)
    ));
}

#[test]
fn chain_with_intermediate() {
    let root = ca();
    let inter = root
        .intermediate("edgesim issuing CA", KeyType::EcdsaP256)
        .unwrap();
    let anchors = TrustAnchors::from_certs(&[root.cert_der().clone()], "root").unwrap();
    let leaf = inter.issue(&LeafSpec::new("a.lab")).unwrap();
    assert_eq!(leaf.chain.len(), 3);
    assert_eq!(
        status(&leaf.chain, &anchors, Usage::ClientAuth),
        ChainStatus::Trusted
    );
    // Intermediate not sent: the leaf's issuer is unknown.
    assert_eq!(
        status(&leaf.chain[..1], &anchors, Usage::ClientAuth),
        ChainStatus::UntrustedRoot
    );
    assert_eq!(anchors.hints().len(), 1);
}

#[test]
fn rsa_2048_issuance() {
    let ca = LabCa::generate("rsa CA", KeyType::Rsa2048).unwrap();
    let c = ca
        .issue(&LeafSpec::new("sip.skype.lab").key(KeyType::Rsa2048))
        .unwrap();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "ca").unwrap();
    assert_eq!(
        status(&c.chain, &anchors, Usage::ServerAuth),
        ChainStatus::Trusted
    );
    assert!(c.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    // The key is accepted by rustls as the identity's key.
    let id = Identity::from(&c);
    server_config(&id, ClientAuthMode::Required, anchors.hints()).unwrap();
}

#[cfg(unix)]
#[test]
fn key_files_are_0600_and_reload() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ca = ca();
    let (ca_pem, ca_key) = ca.save(dir.path()).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ca_key), 0o600);
    // An existing world-readable file is tightened on rewrite.
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    ca.save(dir.path()).unwrap();
    assert_eq!(mode(&ca_key), 0o600);

    let loaded = LabCa::load(&ca_pem, &ca_key).unwrap();
    assert_eq!(loaded.cert_der(), ca.cert_der());
    let leaf = loaded.issue(&LeafSpec::new("a.lab")).unwrap();
    let [leaf_pem, chain_pem, key] = leaf.write(dir.path(), "a").unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(leaf_pem.file_name().unwrap(), "a.pem");
    assert_eq!(chain_pem.file_name().unwrap(), "a.chain.pem");
    let anchors = TrustAnchors::from_files(&[&ca_pem]).unwrap();
    let chain = load_pem_chain(&chain_pem).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(
        status(&chain, &anchors, Usage::ClientAuth),
        ChainStatus::Trusted
    );
    let id = Identity::from_pem_files(&chain_pem, &key).unwrap();
    assert_eq!(id.chain, chain);
}
