//! The Edge's own outbound connection (issue 14): the BYE a user sends after `hangup_after_ms` goes over the
//! Edge's mutual-TLS connection to the peer's federation SRV target (the emulated Expressway-E), reused for the
//! partner; when that connection cannot be made or trusted, the failure carries `call`'s findings and says this
//! is the "works one way only" failure. Real TLS, real DNS on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use edgesim::config::{EdgeConfig, UserAction, UserConfig};
use edgesim::dns::{RecordSpec, ResolverSettings};
use edgesim::edge::{EdgeParts, ONE_WAY, OutboundFailure};
use edgesim::lab::builder::{self, LabCerts, LabDns, RunningEdge};
use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::lab::peer::server::{PeerBehaviour, PeerServer, PeerServerSpec};
use edgesim::pki::{CertFacts, LabCa, LeafSpec, TlsIdentity, TrustAnchors};

const T: Duration = Duration::from_secs(5);
const PEER: &str = "vcse.acano.steven.lab";
const DOMAIN: &str = "acano.steven.lab";

struct Lab {
    certs: LabCerts,
    edge: RunningEdge,
    dns: LabDns,
}

impl Lab {
    /// An Edge whose user answers and hangs up after 50 ms, resolving `records`.
    async fn start(
        certs: LabCerts,
        records: Vec<RecordSpec>,
        tweak: impl FnOnce(&mut EdgeConfig),
    ) -> Lab {
        let dns = LabDns::with_records(&records).await.unwrap();
        let lookup = builder::resolver(
            dns.addr(),
            300,
            ResolverSettings::default().cache_max_entries,
        )
        .unwrap();
        let mut config = EdgeConfig {
            users: vec![UserConfig {
                user: "stejanss".into(),
                action: UserAction::Answer,
                ring_ms: 10,
                hangup_after_ms: Some(50),
                presence: Default::default(),
                im: Default::default(),
                contacts: Vec::new(),
            }],
            ..EdgeConfig::default()
        };
        tweak(&mut config);
        let edge = RunningEdge::start(EdgeParts {
            config,
            identity: TlsIdentity::from(&certs.edge),
            anchors: certs.anchors.clone(),
            lookup: Arc::new(lookup),
        })
        .await
        .unwrap();
        Lab { certs, edge, dns }
    }

    /// The Expressway-E's inbound connection to the Edge, with a certificate naming `PEER`.
    async fn inbound(&self) -> PeerClient {
        let id = TlsIdentity::from(&self.certs.issue(&LeafSpec::new(PEER).san(&[PEER])).unwrap());
        PeerClient::connect(self.edge.addr, "sip.skype.lab", Some(&id), T)
            .await
            .unwrap()
    }

    /// One call from the peer, answered; the ACK sent.
    async fn call(&self, peer: &mut PeerClient) {
        let inv = ExpresswayRequest::new(
            "INVITE",
            "sip:2000@acano.steven.lab",
            "sip:stejanss@skype.lab",
        );
        let ok = peer.request(&inv.build(), T).await.unwrap();
        assert_eq!(ok.status_code(), Some(200));
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        peer.send(&inv.follow_up("ACK", Some(&tag)).build())
            .await
            .unwrap();
    }

    /// Waits until the Edge has recorded a failure of its own connection.
    async fn failure(&self) -> OutboundFailure {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            if let Some(f) = self.edge.edge.outbound_failures().into_iter().next() {
                return f;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no outbound failure recorded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.edge.stop(T).await.unwrap();
        self.dns.stop().await;
    }
}

fn certs() -> LabCerts {
    LabCerts::new("edgesim outbound-conn CA", "sip.skype.lab").unwrap()
}

/// An Expressway-E server with a certificate naming `PEER`, requiring a client certificate from `trusted`.
async fn expressway(certs: &LabCerts, trusted: TrustAnchors) -> PeerServer {
    let cert = certs.issue(&LeafSpec::new(PEER).san(&[PEER])).unwrap();
    let spec = PeerServerSpec::new((&cert).into(), PeerBehaviour::Answer(200, "OK".into()))
        .trust_clients(trusted);
    builder::peer_server(spec).await.unwrap()
}

fn route(port: u16) -> Vec<RecordSpec> {
    vec![builder::srv(DOMAIN, PEER, port), builder::a(PEER)]
}

#[tokio::test]
async fn the_users_bye_goes_over_the_edges_own_connection_and_the_connection_is_reused() {
    let certs = certs();
    let server = expressway(&certs, certs.anchors.clone()).await;
    let lab = Lab::start(certs, route(server.local_addr().port()), |_| {}).await;
    let mut peer = lab.inbound().await;
    lab.call(&mut peer).await;
    assert!(
        server.wait_for("BYE", T).await,
        "the BYE reached the Expressway-E's server port"
    );
    // The Edge connected as a client: SNI the SRV target, the Edge certificate as client certificate.
    let conns = server.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].sni.as_deref(), Some(PEER));
    let client = CertFacts::from_der(&conns[0].client_chain[0]).unwrap();
    assert_eq!(client.display_name(), "sip.skype.lab");
    let bye = &server.received()[0];
    assert_eq!(bye.method(), Some(&b"BYE"[..]));
    // A second call's BYE reuses the connection (up to outgoing_tls_count_for_federated_partners).
    lab.call(&mut peer).await;
    let deadline = tokio::time::Instant::now() + T;
    while server
        .received_methods()
        .iter()
        .filter(|m| *m == "BYE")
        .count()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "second BYE");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.connections().len(), 1, "one connection, reused");
    assert_eq!(lab.edge.edge.outbound_connections(DOMAIN).await, 1);
    assert!(lab.edge.edge.outbound_failures().is_empty());
    // Nothing of it came back on the inbound connection: its next message is the answer to this OPTIONS.
    let opt = ExpresswayRequest::new("OPTIONS", "sip:2000@acano.steven.lab", "sip:skype.lab");
    peer.send(&opt.build()).await.unwrap();
    let next = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(next.status_code(), Some(200));
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn reuse_inbound_connection_sends_the_bye_back_on_the_inbound_connection() {
    let certs = certs();
    let server = expressway(&certs, certs.anchors.clone()).await;
    let lab = Lab::start(certs, route(server.local_addr().port()), |c| {
        c.edge.reuse_inbound_connection = true;
    })
    .await;
    let mut peer = lab.inbound().await;
    lab.call(&mut peer).await;
    let bye = peer.recv(T).await.unwrap().unwrap();
    assert_eq!(bye.method(), Some(&b"BYE"[..]));
    assert!(
        server.connections().is_empty(),
        "no connection of the Edge's own"
    );
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn an_expressway_that_refuses_the_edge_certificate_is_the_one_way_failure() {
    let certs = certs();
    // The Expressway-E trusts another CA only: it refuses the Edge's client certificate in the handshake.
    let other = LabCa::generate("another CA", edgesim::pki::KeyType::EcdsaP256).unwrap();
    let other =
        TrustAnchors::from_certs(std::slice::from_ref(other.cert_der()), "another CA").unwrap();
    let server = expressway(&certs, other).await;
    let lab = Lab::start(certs, route(server.local_addr().port()), |_| {}).await;
    let mut peer = lab.inbound().await;
    // The call from the peer works...
    lab.call(&mut peer).await;
    // ...the Edge's own BYE does not.
    let f = lab.failure().await;
    assert_eq!(f.domain, DOMAIN);
    assert_eq!(f.method, "BYE");
    let diag = f.ms_diagnostics.unwrap();
    assert!(
        diag.starts_with(
            "1047;reason=\"Failed to complete TLS negotiation with a federated peer server\""
        ),
        "{diag}"
    );
    assert!(f.explanation.ends_with(ONE_WAY), "{}", f.explanation);
    assert!(server.received().is_empty());
    server.shutdown().await;
    lab.stop().await;
}

#[tokio::test]
async fn a_closed_server_port_is_1046_and_one_way() {
    let certs = certs();
    let port = builder::closed_port().await.unwrap();
    let lab = Lab::start(certs, route(port), |_| {}).await;
    let mut peer = lab.inbound().await;
    lab.call(&mut peer).await;
    let f = lab.failure().await;
    let diag = f.ms_diagnostics.unwrap();
    assert!(diag.starts_with("1046;"), "{diag}");
    assert!(
        f.explanation.contains("works one way only"),
        "{}",
        f.explanation
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_server_certificate_without_the_srv_target_is_1010_and_one_way() {
    let certs = certs();
    // The Expressway-E's server certificate names its old FQDN only (Rule 2 fails toward it); its client
    // certificate toward the Edge (the inbound connection) names the target, so calls from it pass.
    let cert = certs
        .issue(&LeafSpec::new("vcse.steven.lab").san(&["vcse.steven.lab"]))
        .unwrap();
    let spec = PeerServerSpec::new((&cert).into(), PeerBehaviour::Answer(200, "OK".into()))
        .trust_clients(certs.anchors.clone());
    let server = builder::peer_server(spec).await.unwrap();
    let lab = Lab::start(certs, route(server.local_addr().port()), |_| {}).await;
    let mut peer = lab.inbound().await;
    lab.call(&mut peer).await;
    let f = lab.failure().await;
    assert_eq!(
        f.ms_diagnostics.as_deref(),
        Some(
            "1010;reason=\"Certificate trust with another server could not be established\";ErrorType=\"The peer certificate does not contain a matching FQDN\";tls-target=\"vcse.acano.steven.lab\";PeerServer=\"vcse.steven.lab\";HRESULT=\"0x80090322 (SEC_E_WRONG_PRINCIPAL)\";source=\"sip.skype.lab\""
        )
    );
    assert!(f.explanation.ends_with(ONE_WAY));
    assert!(
        server.received().is_empty(),
        "nothing sent to an untrusted peer"
    );
    server.shutdown().await;
    lab.stop().await;
}
