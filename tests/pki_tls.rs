//! Real mutual TLS over loopback with the Edge's rustls configs and lab certificates made at run time.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use edgesim::lab::peer::strict::strict_server_config;
use edgesim::pki::{
    ChainProblem, ChainStatus, ClientAuthMode, KeyType, LabCa, LeafSpec, TlsIdentity, TrustAnchors,
    Usage, client_config, peer_chain, server_config, verify_chain,
};
use edgesim::rules::{NameMatch, names_match};
use rustls_pki_types::{ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

struct Lab {
    anchors: Arc<TrustAnchors>,
    edge: TlsIdentity,
    peer: TlsIdentity,
    stranger: TlsIdentity,
    /// From another CA named like the lab's ("edgesim test CA").
    twin: TlsIdentity,
    /// A chain one intermediate CA longer than the verifier follows.
    too_deep: TlsIdentity,
}

fn lab() -> Lab {
    let ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
    let anchors =
        Arc::new(TrustAnchors::from_certs(std::slice::from_ref(ca.cert_der()), "ca").unwrap());
    let edge = ca.issue(&LeafSpec::new("sip.skype.lab")).unwrap();
    let peer = ca
        .issue(&LeafSpec::new("vcse.steven.lab").san(&["vcse.steven.lab", "vcse.acano.steven.lab"]))
        .unwrap();
    let other = LabCa::generate("some other CA", KeyType::EcdsaP256).unwrap();
    let stranger = other.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    let twin_ca = LabCa::generate("edgesim test CA", KeyType::EcdsaP256).unwrap();
    let twin = twin_ca.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    let mut sub = ca.intermediate("sub CA 1", KeyType::EcdsaP256).unwrap();
    for i in 2..=edgesim::pki::MAX_INTERMEDIATES + 1 {
        sub = sub
            .intermediate(&format!("sub CA {i}"), KeyType::EcdsaP256)
            .unwrap();
    }
    let too_deep = sub.issue(&LeafSpec::new("vcse.steven.lab")).unwrap();
    Lab {
        anchors,
        edge: TlsIdentity::from(&edge),
        peer: TlsIdentity::from(&peer),
        stranger: TlsIdentity::from(&stranger),
        twin: TlsIdentity::from(&twin),
        too_deep: TlsIdentity::from(&too_deep),
    }
}

#[tokio::test]
async fn mutual_tls_judge_afterwards() {
    let lab = lab();
    let server = server_config(&lab.edge, ClientAuthMode::Required, lab.anchors.hints()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let anchors = lab.anchors.clone();

    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server).accept(tcp).await.unwrap();
        let chain = peer_chain(tls.get_ref().1);
        let status = verify_chain(&chain, &anchors, Usage::ClientAuth, UnixTime::now());
        let mut buf = [0u8; 7];
        tls.read_exact(&mut buf).await.unwrap();
        tls.write_all(b"200 OK\n").await.unwrap();
        tls.shutdown().await.unwrap();
        (chain, status, buf)
    });

    let client = client_config(Some(&lab.peer)).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("sip.skype.lab").unwrap();
    let mut tls = TlsConnector::from(client).connect(name, tcp).await.unwrap();
    let server_chain = peer_chain(tls.get_ref().1);
    tls.write_all(b"INVITE\n").await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"200 OK\n");

    // The caller judges the Edge's server certificate afterwards.
    assert_eq!(server_chain, lab.edge.chain);
    assert_eq!(
        verify_chain(
            &server_chain,
            &lab.anchors,
            Usage::ServerAuth,
            UnixTime::now()
        ),
        ChainStatus::Trusted
    );

    // The server saw the whole client chain, and the name rule reads it.
    let (chain, status, buf) = server_task.await.unwrap();
    assert_eq!(&buf, b"INVITE\n");
    assert_eq!(chain, lab.peer.chain);
    assert_eq!(status, ChainStatus::Trusted);
    let facts = edgesim::pki::CertFacts::from_der(&chain[0]).unwrap();
    assert_eq!(
        names_match(&facts, "vcse.acano.steven.lab", false),
        NameMatch::San
    );
    assert_eq!(
        names_match(&facts, "vcse.cms.steven.lab", false),
        NameMatch::Absent
    );
}

/// Connects with `client` to a judge-afterwards server asking in `mode`; the handshake must complete both
/// ways. Returns what the server's `verify_chain` says about the client chain it saw.
async fn judged_client_chain(
    lab: &Lab,
    mode: ClientAuthMode,
    client: Option<&TlsIdentity>,
) -> ChainStatus {
    let server = server_config(&lab.edge, mode, lab.anchors.hints()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let anchors = lab.anchors.clone();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = TlsAcceptor::from(server).accept(tcp).await.unwrap();
        verify_chain(
            &peer_chain(tls.get_ref().1),
            &anchors,
            Usage::ClientAuth,
            UnixTime::now(),
        )
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("sip.skype.lab").unwrap();
    let _tls = TlsConnector::from(client_config(client).unwrap())
        .connect(name, tcp)
        .await
        .unwrap();
    task.await.unwrap()
}

#[tokio::test]
async fn judge_afterwards_sees_untrusted_chain_and_missing_cert() {
    let lab = lab();
    // Untrusted client certificate: the handshake completes, verify_chain says why to reset.
    assert_eq!(
        judged_client_chain(&lab, ClientAuthMode::Required, Some(&lab.stranger)).await,
        ChainStatus::UntrustedRoot
    );

    // Optional mode: no client certificate still connects, and the chain reads as Missing.
    assert_eq!(
        judged_client_chain(&lab, ClientAuthMode::Optional, None).await,
        ChainStatus::Missing
    );
}

/// Connects with `client` to a strict server; returns the server's accept result and the client's outcome.
async fn strict_attempt(
    lab: &Lab,
    client: Option<&TlsIdentity>,
) -> (Result<(), String>, Result<(), String>) {
    let server = strict_server_config(&lab.edge, lab.anchors.clone(), Usage::ClientAuth).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match TlsAcceptor::from(server).accept(tcp).await {
            Ok(mut tls) => {
                tls.write_all(b"hello\n").await.unwrap();
                tls.shutdown().await.unwrap();
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("sip.skype.lab").unwrap();
    // TLS 1.3: connect() succeeds even when the server refuses the client; the alert shows on the first read.
    let client_result = match TlsConnector::from(client_config(client).unwrap())
        .connect(name, tcp)
        .await
    {
        Ok(mut tls) => {
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    (task.await.unwrap(), client_result)
}

#[tokio::test]
async fn strict_verifier_refuses_in_handshake() {
    let lab = lab();
    let (server, client) = strict_attempt(&lab, Some(&lab.peer)).await;
    assert_eq!(server, Ok(()));
    assert_eq!(client, Ok(()));

    let (server, client) = strict_attempt(&lab, Some(&lab.stranger)).await;
    assert_eq!(
        server,
        Err("invalid peer certificate: UnknownIssuer".to_string())
    );
    assert_eq!(client, Err("received fatal alert: UnknownCA".to_string()));

    let (server, client) = strict_attempt(&lab, None).await;
    assert_eq!(server, Err("peer sent no certificates".to_string()));
    assert_eq!(
        client,
        Err("received fatal alert: CertificateRequired".to_string())
    );
}

#[tokio::test]
async fn judge_afterwards_names_a_same_named_ca_and_a_too_long_chain() {
    let lab = lab();
    assert_eq!(
        judged_client_chain(&lab, ClientAuthMode::Required, Some(&lab.twin)).await,
        ChainStatus::Invalid(ChainProblem::OtherCaSameName)
    );
    assert_eq!(
        judged_client_chain(&lab, ClientAuthMode::Required, Some(&lab.too_deep)).await,
        ChainStatus::Invalid(ChainProblem::TooLong)
    );
}

#[tokio::test]
async fn strict_verifier_alerts_for_typed_problems() {
    let lab = lab();
    // Another CA with the lab CA's name: refused as an unknown CA, as a stranger is.
    let (server, client) = strict_attempt(&lab, Some(&lab.twin)).await;
    assert_eq!(
        server,
        Err("invalid peer certificate: UnknownIssuer".to_string())
    );
    assert_eq!(client, Err("received fatal alert: UnknownCA".to_string()));
    // No rustls kind for a too-long chain: certificate_unknown, and the server's error is our sentence.
    let (server, client) = strict_attempt(&lab, Some(&lab.too_deep)).await;
    let server = server.unwrap_err();
    assert!(
        server.contains(
            "its chain is too long: the Edge follows at most 6 intermediate CAs between a certificate and a trusted CA"
        ),
        "{server}"
    );
    assert!(!server.contains("TooLong"), "{server}");
    assert_eq!(
        client,
        Err("received fatal alert: CertificateUnknown".to_string())
    );
}

#[tokio::test]
async fn every_connection_is_a_full_handshake() {
    // Resumed handshakes skip the verifiers; the Edge configs must never resume.
    let lab = lab();
    let server = server_config(&lab.edge, ClientAuthMode::Required, lab.anchors.hints()).unwrap();
    let client = client_config(Some(&lab.peer)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = TlsAcceptor::from(server.clone()).accept(tcp).await.unwrap();
            let conn = tls.get_ref().1;
            seen.push((conn.handshake_kind(), peer_chain(conn).len()));
            tls.write_all(b"bye\n").await.unwrap();
            tls.shutdown().await.unwrap();
        }
        seen
    });
    for _ in 0..3 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("sip.skype.lab").unwrap();
        let mut tls = TlsConnector::from(client.clone())
            .connect(name, tcp)
            .await
            .unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await.unwrap();
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
    }
    let full = Some(rustls::HandshakeKind::Full);
    assert_eq!(task.await.unwrap(), vec![(full, 2), (full, 2), (full, 2)]);
}
