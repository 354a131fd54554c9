//! Shared by the presence and IM tests (`presence_edge`, `im_edge`, `presence_sipp`): an inbound lab whose
//! `acano.steven.lab` federates correctly (SRV → `vcse.acano.steven.lab`, a certificate naming it), users
//! with presence and IM behaviours, and readers for what a subscriber gets.
#![allow(dead_code, clippy::unwrap_used)]

use edgesim::config::{EdgeConfig, UserAction, UserConfig, UserPresenceConfig};
use edgesim::im::Behaviour;
use edgesim::presence::client::{Notification, SubscribeOptions};
use edgesim::sip::Message;

use super::edge_lab::*;

/// The subscriber (the Expressway's user) and the presentity.
pub const FROM: &str = "sip:2000@acano.steven.lab";
pub const BOB: &str = "sip:stejanss@skype.lab";

/// A user with a presence and an IM behaviour.
pub fn user_with(name: &str, presence: UserPresenceConfig, im: Behaviour) -> UserConfig {
    UserConfig {
        presence,
        im,
        ..user(name, UserAction::Answer)
    }
}

/// `stejanss` (Busy, in a meeting, "Lab day", "Steven Janssens", echo), `fixed` (a fixed reply), `quiet`
/// (silent), `busy` (busy for calls and IM).
pub fn presence_users(c: &mut EdgeConfig) {
    let steven = UserPresenceConfig {
        availability: Some(6500),
        activity: Some("in-a-meeting".into()),
        note: Some("Lab day <&>".into()),
        display_name: Some("Steven Janssens".into()),
        schedule: Vec::new(),
    };
    c.users = vec![
        user_with("stejanss", steven, Behaviour::Echo),
        user_with(
            "fixed",
            UserPresenceConfig::default(),
            Behaviour::Reply("Out of office".into()),
        ),
        user_with("quiet", UserPresenceConfig::default(), Behaviour::Silent),
        user("busy", UserAction::Busy),
    ];
}

/// A lab where `acano.steven.lab` federates, with [`presence_users`] and `tweak` applied.
pub async fn presence_lab(tweak: impl FnOnce(&mut EdgeConfig)) -> Lab {
    lab(vec![srv(SRV_ACANO, "vcse.acano.steven.lab")], |c| {
        presence_users(c);
        // These tests read what a subscriber and an IM peer get on the one connection they hold, as a client
        // without a server port does: the Edge's own connection to the partner is `presence_own_conn`'s.
        c.edge.reuse_inbound_connection = true;
        tweak(c);
    })
    .await
}

/// What a Lync client asks for (all three formats, ms-benotify, piggy-backed first state).
pub fn lync() -> SubscribeOptions {
    SubscribeOptions::default()
}

/// What a Cisco IM and Presence server asks for: PIDF only, no Microsoft extensions.
pub fn cisco(expires: Option<u32>) -> SubscribeOptions {
    SubscribeOptions {
        formats: vec![edgesim::presence::DocumentFormat::Pidf],
        benotify: false,
        proxy_require_benotify: false,
        piggyback: false,
        expires,
    }
}

/// What a NOTIFY, BENOTIFY or piggy-backed 200 says (its document read by the presence reader).
pub fn notification(m: &Message) -> Notification {
    Notification::read(
        header(m, "subscription-state").as_deref(),
        header(m, "Content-Type").as_deref(),
        m.body(),
    )
    .unwrap()
}

/// Parses a document with roxmltree (no DTD) and returns `(root namespace, root name)`: the XML is well
/// formed and its namespaces resolve.
pub fn xml_root(body: &[u8]) -> (String, String) {
    let text = std::str::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    let root = doc.root_element();
    (
        root.tag_name().namespace().unwrap_or_default().to_owned(),
        root.tag_name().name().to_owned(),
    )
}

/// The Expressway-E stand-in for an independent SIP stack that speaks no TLS (Debian's SIPp is built without
/// it): it takes plain TCP on 127.0.0.1:0, as the Expressway-E takes its traversal zone, and carries each
/// connection's bytes to the Edge over mutual TLS with the Expressway's certificate, and the Edge's bytes
/// back. The SIP is the independent stack's, untouched; the TLS and the certificate are the Expressway's.
pub struct TlsStandIn {
    /// Where the SIP stack connects.
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsStandIn {
    /// Starts the stand-in for `lab`'s Edge, presenting a certificate naming `names`.
    pub async fn start(lab: &Lab, names: &[&str]) -> TlsStandIn {
        use edgesim::pki::LeafSpec;
        let id = lab.cert(LeafSpec::new(names[0]).san(names));
        let config = edgesim::pki::client_config(Some(&id)).unwrap();
        let edge = lab.addr;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    let Ok(up) = tokio::net::TcpStream::connect(edge).await else {
                        return;
                    };
                    let name = rustls_pki_types::ServerName::try_from("sip.skype.lab").unwrap();
                    let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
                        .connect(name, up)
                        .await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut tls).await;
                });
            }
        });
        TlsStandIn { addr, task }
    }
}

impl Drop for TlsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}
