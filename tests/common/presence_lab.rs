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
