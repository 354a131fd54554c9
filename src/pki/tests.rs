//! Facts, chain status and issuance against real certificates from the lab issuer.

use rustls_pki_types::UnixTime;

use super::*;
use crate::rules::{NameMatch, Role, chain_phrase, chain_words, eku_allows, names_match};

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
    assert!(eku_allows(&both, Role::Server) && eku_allows(&both, Role::Client));
    let server = eku(EkuChoice::ServerAuth);
    assert_eq!(
        server.eku,
        Some(Eku {
            server_auth: true,
            client_auth: false,
            any: false
        })
    );
    assert!(eku_allows(&server, Role::Server) && !eku_allows(&server, Role::Client));
    let client = eku(EkuChoice::ClientAuth);
    assert!(!eku_allows(&client, Role::Server) && eku_allows(&client, Role::Client));
    let none = eku(EkuChoice::None);
    assert_eq!(none.eku, None);
    assert!(eku_allows(&none, Role::Server) && eku_allows(&none, Role::Client));
    // Not the 2026–2027 public-CA case (serverAuth without clientAuth).
    assert!(eku_allows(&none, Role::Client));
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

/// The rulebook's validity rule: neither expired nor not yet valid.
fn is_valid_at(c: &CertFacts, now: i64) -> bool {
    matches!(
        crate::rules::cert::validity(c, now, None),
        crate::rules::Finding::Validity {
            state: crate::rules::ValidityState::Valid | crate::rules::ValidityState::Expiring,
            ..
        }
    )
}

#[test]
fn facts_validity_and_days_left() {
    let ca = ca();
    let ok = facts_of(&ca.issue(&LeafSpec::new("a.lab").valid_days(10)).unwrap());
    let expired = facts_of(&ca.issue(&LeafSpec::new("a.lab").expired()).unwrap());
    // Taken after issuing, as a later `check` or `inspect` does: a 10-day certificate still reads 10.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(is_valid_at(&ok, now));
    assert_eq!(ok.days_left(now), 10);
    assert!(!is_valid_at(&expired, now));
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
    // A started day counts (issue 11 item 20: this was 9, so a fresh certificate read one day short).
    assert_eq!(f.days_left(1), 10);
    assert_eq!(f.days_left(86_400), 9);
    assert_eq!(f.days_left(10 * 86_400 - 1), 1);
    assert_eq!(f.days_left(10 * 86_400), 0);
    assert_eq!(f.days_left(10 * 86_400 + 1), -1);
    assert_eq!(f.days_left(11 * 86_400), -1);
    assert_eq!(f.days_left(11 * 86_400 + 1), -2);
    // Certificate times from the network are bounded, but the arithmetic must not overflow anyway.
    let far = CertFacts {
        not_after: i64::MAX,
        ..CertFacts::default()
    };
    assert!(far.days_left(i64::MIN) > 0);
    assert!(CertFacts::default().days_left(i64::MAX) < 0);
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
    let id = TlsIdentity::from(&c);
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
    let id = TlsIdentity::from_pem_files(&chain_pem, &key).unwrap();
    assert_eq!(id.chain, chain);
}

// ---- issue 11: chain problems worded for people, unique lab CA names, checked names ----

/// A leaf under `depth` stacked intermediates below `root`; the chain sent is leaf, intermediates, root.
fn deep_chain(root: &LabCa, depth: usize) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let mut ca = root
        .intermediate("edgesim sub CA 1", KeyType::EcdsaP256)
        .unwrap();
    for i in 2..=depth {
        ca = ca
            .intermediate(&format!("edgesim sub CA {i}"), KeyType::EcdsaP256)
            .unwrap();
    }
    ca.issue(&LeafSpec::new("vcse.acano.steven.lab"))
        .unwrap()
        .chain
}

#[test]
fn another_ca_with_the_same_name_is_an_untrusted_issuer() {
    let ca = ca();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "ca").unwrap();
    // The same name and key type: the signature does not verify with the trusted key.
    let twin = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
    let leaf = twin.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    assert_eq!(facts_of(&leaf).issuer, "CN=edgesim test CA");
    let same_name = ChainStatus::Invalid(ChainProblem::OtherCaSameName);
    assert_eq!(status(&leaf.chain, &anchors, Usage::Any), same_name);
    // The leaf alone, without the twin CA certificate in the chain: the same answer.
    assert_eq!(status(&leaf.chain[..1], &anchors, Usage::Any), same_name);
    // Another key type (webpki: "UnsupportedSignatureAlgorithmForPublicKeyContext"): the same answer.
    let rsa_twin = LabCa::generate("edgesim test CA", KeyType::Rsa2048).unwrap();
    let leaf = rsa_twin.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    assert_eq!(status(&leaf.chain, &anchors, Usage::ClientAuth), same_name);
    assert_eq!(
        chain_phrase(&same_name),
        "it was issued by a CA the Edge does not trust: its issuer has the name of a CA the Edge knows, \
         but the signature does not verify with that CA's key, so another CA with the same name (another \
         lab CA?) issued it — add the CA that issued it to tls.ca (or --ca); give each lab CA its own name"
    );
}

#[test]
fn chain_depth_limit_is_named() {
    let root = ca();
    let anchors = TrustAnchors::from_certs(&[root.cert_der().clone()], "root").unwrap();
    let longest = deep_chain(&root, MAX_INTERMEDIATES);
    assert_eq!(longest.len(), MAX_INTERMEDIATES + 2);
    assert_eq!(
        status(&longest, &anchors, Usage::ServerAuth),
        ChainStatus::Trusted
    );
    let too_long = deep_chain(&root, MAX_INTERMEDIATES + 1);
    let s = status(&too_long, &anchors, Usage::ServerAuth);
    assert_eq!(s, ChainStatus::Invalid(ChainProblem::TooLong));
    assert_eq!(
        chain_phrase(&s),
        "its chain is too long: the Edge follows at most 6 intermediate CAs between a certificate and a \
         trusted CA — issue it from a CA at most 6 intermediates below the root, or trust an intermediate \
         CA of the chain directly in tls.ca"
    );
    // Trusting an intermediate directly shortens the path: the fix works.
    let mid = TrustAnchors::from_certs(&[too_long[2].clone()], "sub CA").unwrap();
    assert_eq!(
        status(&too_long, &mid, Usage::ServerAuth),
        ChainStatus::Trusted
    );
}

#[test]
fn other_chain_problems_are_typed() {
    let ca = ca();
    let anchors = TrustAnchors::from_certs(&[ca.cert_der().clone()], "ca").unwrap();
    // The CA certificate presented as the peer's own.
    assert_eq!(
        status(ca.chain(), &anchors, Usage::Any),
        ChainStatus::Invalid(ChainProblem::CaAsLeaf)
    );
    let garbage = [rustls_pki_types::CertificateDer::from(vec![1u8, 2, 3])];
    let s = status(&garbage, &anchors, Usage::Any);
    assert_eq!(s, ChainStatus::Invalid(ChainProblem::Malformed));
    assert_eq!(
        chain_phrase(&s),
        "it, or a CA certificate in its chain, is not a well-formed X.509 certificate — reissue the \
         certificate from a CA the Edge trusts"
    );
}

#[test]
fn every_chain_status_reads_as_a_sentence() {
    let problems = [
        ChainProblem::OtherCaSameName,
        ChainProblem::TooLong,
        ChainProblem::TooComplex,
        ChainProblem::Malformed,
        ChainProblem::UnsupportedAlgorithm,
        ChainProblem::UnsupportedCriticalExtension,
        ChainProblem::CaAsLeaf,
        ChainProblem::LeafAsCa,
        ChainProblem::PathLength,
        ChainProblem::NameConstraints,
        ChainProblem::Other,
    ];
    let statuses = [
        ChainStatus::Missing,
        ChainStatus::UntrustedRoot,
        ChainStatus::Expired,
        ChainStatus::NotYetValid,
        ChainStatus::WrongUsage,
    ]
    .into_iter()
    .chain(problems.into_iter().map(ChainStatus::Invalid));
    for s in statuses {
        let text = chain_phrase(&s);
        let (problem, fix) = chain_words(&s);
        assert_eq!(text, format!("{problem} — {fix}"));
        // No Rust identifier (a Debug dump) in what people read: words are lower case or names.
        let debug = format!("{s:?}");
        let ident = debug.trim_start_matches("Invalid(").trim_end_matches(')');
        assert!(!text.contains(ident), "{text} contains {ident}");
        assert!(!text.contains('{') && !text.contains("::"), "{text}");
        assert!(text.starts_with(char::is_lowercase), "{text}");
    }
    assert_eq!(
        chain_phrase(&ChainStatus::UntrustedRoot),
        "it was issued by a CA the Edge does not trust — add that CA to tls.ca (or --ca), and make the \
         peer send its intermediate CA certificates with its own certificate"
    );
    assert_eq!(
        chain_phrase(&ChainStatus::Trusted),
        "it chains to a CA the Edge trusts"
    );
}

#[test]
fn lab_cas_have_unique_recognisable_names() {
    let a = LabCa::generate_lab(KeyType::EcdsaP256).unwrap();
    let b = LabCa::generate_lab(KeyType::EcdsaP256).unwrap();
    let (fa, fb) = (
        CertFacts::from_der(a.cert_der()).unwrap(),
        CertFacts::from_der(b.cert_der()).unwrap(),
    );
    assert_ne!(fa.subject, fb.subject);
    let cn = fa.common_name().unwrap();
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let id = cn
        .strip_prefix(&format!("{LAB_CA_NAME} "))
        .and_then(|rest| rest.split_once(' '))
        .map(|(date, id)| {
            // The day may have turned between the two readings of the clock.
            assert!(date == today || date < today.as_str(), "{cn}");
            id.to_string()
        })
        .unwrap_or_else(|| panic!("{cn}"));
    assert_eq!(id.len(), 6, "{cn}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{cn}");
    // The id is the start of the CA's Subject Key Identifier, which openssl shows.
    let (_, x509) = x509_parser::parse_x509_certificate(a.cert_der()).unwrap();
    let ski = x509
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
        .unwrap();
    let ski_hex: String = ski.iter().take(3).map(|b| format!("{b:02x}")).collect();
    assert_eq!(id, ski_hex);
    // A leaf from one is refused by the other, and says so in words.
    let anchors = TrustAnchors::from_certs(&[a.cert_der().clone()], "a").unwrap();
    let leaf = b.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    assert_eq!(
        status(&leaf.chain, &anchors, Usage::Any),
        ChainStatus::UntrustedRoot
    );
}

#[test]
fn rsa_2048_is_the_one_default_key_type() {
    assert_eq!(KeyType::default(), KeyType::Rsa2048);
    assert_eq!(KeyType::default().describe(), "RSA-2048");
}

#[test]
fn names_are_checked_when_issuing() {
    let ca = ca();
    let e = ca
        .issue(&LeafSpec::new("a.lab").san(&["a.lab", " b.lab"]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "SAN entry \" b.lab\" is not a DNS name: it starts or ends with a space (several names are comma \
         separated: a.lab,b.lab) — give host names such as vcse.steven.lab"
    );
    assert!(matches!(
        e,
        PkiError::BadName {
            reason: NameError::OuterSpace,
            ..
        }
    ));
    let e = ca.issue(&LeafSpec::new("bad name")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "SAN entry \"bad name\" is not a DNS name: it contains a space (several names are comma separated: \
         a.lab,b.lab) — give host names such as vcse.steven.lab"
    );
    // Without a SAN the CN is the name: checked too.
    let e = ca
        .issue(&LeafSpec::new("bad name").san::<&str>(&[]))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("subject CN \"bad name\" is not a DNS name: it contains a space"),
        "{e}"
    );
    // With a SAN the CN is free text; an IP SAN and a wildcard are names a certificate may carry.
    ca.issue(&LeafSpec::new("192.0.2.1").common_name(Some("Lab Expressway")))
        .unwrap();
    ca.issue(&LeafSpec::new("*.steven.lab")).unwrap();
    let e = ca.issue(&LeafSpec::new("tab\there.lab")).unwrap_err();
    assert!(e.to_string().contains("it contains a space"), "{e}");
}

#[test]
fn display_name_is_a_name_the_edge_reads() {
    let ca = ca();
    // The only SAN is an IP address; the CN is the very FQDN the Edge expects but ignores.
    let ip_only = facts_of(
        &ca.issue(&LeafSpec::new("192.0.2.1").common_name(Some("vcse.acano.steven.lab")))
            .unwrap(),
    );
    assert_eq!(ip_only.san_dns, Some(vec![]));
    assert_eq!(ip_only.san_ip, vec!["192.0.2.1".to_string()]);
    assert_eq!(ip_only.display_name(), "192.0.2.1");
    assert_eq!(
        names_match(&ip_only, "vcse.acano.steven.lab", false),
        NameMatch::CommonNameIgnored
    );
    // SAN first: a CN that differs from the SAN is not what the Edge reads.
    let f = facts_of(
        &ca.issue(&LeafSpec::new("other.steven.lab").common_name(Some("vcse.steven.lab")))
            .unwrap(),
    );
    assert_eq!(f.display_name(), "other.steven.lab");
    // Nothing at all.
    let none = CertFacts {
        san_dns: Some(vec![]),
        common_names: vec!["x.lab".into()],
        ..CertFacts::default()
    };
    assert_eq!(none.display_name(), NO_NAME);
    assert_eq!(CertFacts::default().display_name(), "(no name)");
}

#[test]
fn several_cns_without_san_the_last_counts() {
    let mut f = CertFacts {
        common_names: vec!["steven.lab".into(), "vcse.steven.lab".into()],
        san_dns: None,
        ..CertFacts::default()
    };
    assert_eq!(f.common_name(), Some("vcse.steven.lab"));
    assert_eq!(f.display_name(), "vcse.steven.lab");
    assert_eq!(
        names_match(&f, "vcse.steven.lab", false),
        NameMatch::CommonName
    );
    assert_eq!(names_match(&f, "steven.lab", false), NameMatch::Absent);
    f.common_names.reverse();
    assert_eq!(f.display_name(), "steven.lab");
    assert_eq!(names_match(&f, "vcse.steven.lab", false), NameMatch::Absent);
}

#[test]
fn library_errors_reach_people_in_words() {
    let e = parse_certs(b"hello", "peer.crt").unwrap_err();
    assert_eq!(
        e.to_string(),
        "peer.crt: not a valid X.509 certificate (the data ends before a whole certificate: a truncated \
         file, or not a certificate at all) — give a PEM or DER certificate"
    );
    let e = parse_certs(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "b.pem",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "b.pem: not a valid X.509 certificate (the bytes are not the DER encoding of an X.509 certificate) \
         — give a PEM or DER certificate"
    );
    let e = parse_certs(b"-----BEGIN CERTIFICATE-----\nAAAA\n", "cut.pem").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cut.pem: not a valid X.509 certificate (PEM: a BEGIN line has no matching END line: a truncated \
         file?) — give a PEM or DER certificate"
    );
    let e = TrustAnchors::from_certs(
        &[rustls_pki_types::CertificateDer::from(vec![0x30, 0])],
        "ca.pem",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ca.pem: cannot be used as a trust anchor (not a well-formed X.509 certificate) — give the CA \
         certificate (PEM or DER)"
    );
    // A key that is not the certificate's.
    let ca = ca();
    let (a, b) = (
        ca.issue(&LeafSpec::new("a.lab")).unwrap(),
        ca.issue(&LeafSpec::new("b.lab")).unwrap(),
    );
    let mismatched = TlsIdentity {
        chain: a.chain.clone(),
        key: b.key_der.clone_key(),
    };
    let e = server_config(&mismatched, ClientAuthMode::Required, vec![]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TLS configuration refused the certificate or key: the private key does not belong to the \
         certificate — check that the key matches the certificate"
    );
}
