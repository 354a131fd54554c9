//! The Edge's signed Record-Route (MS-PRES §4.11: `<sip:<edge fqdn>:5061;transport=tls;lr;ms-key-info=…;
//! ms-route-sig=…>`), and the check of the Route an in-dialog request brings back.
//!
//! The signature is an HMAC-SHA256 with a key of the Edge's (random, made when the Edge starts, never leaving
//! it) over the Edge's FQDN, the peer the dialog was made with (its certificate name, else its IP address) and
//! the Call-ID, so that a route is good only for that dialog from that peer. `ms-key-info` names the key (the
//! first bytes of an HMAC of a fixed label), so a route signed by an earlier run is told apart from a forged one.
//! The exact algorithm of a real Edge is not documented; only the parameter names are (MS-PRES sample).
//!
//! Pure: no socket, no clock.

use std::fmt::Write as _;

use aws_lc_rs::hmac;

use crate::sip::{HeaderKind, Message, NameAddr};

/// Hex digits of the signature written (128 bits of the HMAC).
const SIG_HEX: usize = 32;

/// The Edge's route-signing key.
pub(super) struct RouteKey {
    key: hmac::Key,
    id: String,
}

impl std::fmt::Debug for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("RouteKey").field("id", &self.id).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

impl RouteKey {
    /// A key from 32 bytes.
    pub(super) fn from_bytes(bytes: &[u8; 32]) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let id = hex(&hmac::sign(&key, b"edgesim ms-key-info").as_ref()[..4]);
        RouteKey { key, id }
    }

    /// A fresh random key (one per Edge run).
    pub(super) fn random() -> Self {
        Self::from_bytes(&rand::random::<[u8; 32]>())
    }

    fn message(fqdn: &str, peer: &str, call_id: &str) -> String {
        format!(
            "{}\n{}\n{call_id}",
            fqdn.to_ascii_lowercase(),
            peer.to_ascii_lowercase()
        )
    }

    /// The signature of a route for the dialog `call_id` with `peer`.
    fn sign(&self, fqdn: &str, peer: &str, call_id: &str) -> String {
        let tag = hmac::sign(&self.key, Self::message(fqdn, peer, call_id).as_bytes());
        hex(&tag.as_ref()[..SIG_HEX / 2])
    }

    /// The Edge's Record-Route value for the dialog `call_id` made with `peer`.
    pub(super) fn record_route(&self, fqdn: &str, peer: &str, call_id: &str) -> String {
        format!(
            "<sip:{fqdn}:5061;transport=tls;lr;ms-key-info={};ms-route-sig={}>",
            self.id,
            self.sign(fqdn, peer, call_id)
        )
    }

    /// Checks the first Route of a request from `peer`: `Ok` when the request has none, or when its first
    /// Route is the Edge's own for this dialog with a good signature.
    pub(super) fn check(&self, m: &Message, fqdn: &str, peer: &str) -> Result<(), RouteProblem> {
        let Some(first) = m.values(HeaderKind::Route).into_iter().next() else {
            return Ok(());
        };
        let first = String::from_utf8_lossy(&first).into_owned();
        // The first entry of the first Route line.
        let entry = match first.find('>') {
            Some(i) => &first[..=i],
            None => first.split(',').next().unwrap_or_default(),
        };
        let Some(addr) = NameAddr::parse(entry.trim().as_bytes()) else {
            return Err(RouteProblem::NotTheEdge {
                route: entry.trim().to_owned(),
            });
        };
        let route = addr.uri.as_str().to_owned();
        if !addr.uri.host().eq_ignore_ascii_case(fqdn) {
            return Err(RouteProblem::NotTheEdge { route });
        }
        let in_dialog = m.to().ok().is_some_and(|t| t.tag().is_some());
        let sig = addr.uri.param("ms-route-sig").flatten();
        let key_id = addr.uri.param("ms-key-info").flatten();
        match sig {
            // A route set preloaded toward the Edge outside a dialog carries no signature: nothing to check.
            None if !in_dialog => Ok(()),
            None => Err(RouteProblem::Unsigned { route }),
            Some(sig) => {
                let call_id = m
                    .call_id()
                    .map(|c| String::from_utf8_lossy(&c).into_owned())
                    .unwrap_or_default();
                let want = self.sign(fqdn, peer, &call_id);
                // Constant time: the signature is a secret-dependent value.
                let good = key_id == Some(self.id.as_str())
                    && aws_lc_rs::constant_time::verify_slices_are_equal(
                        sig.to_ascii_uppercase().as_bytes(),
                        want.as_bytes(),
                    )
                    .is_ok();
                if good {
                    Ok(())
                } else {
                    Err(RouteProblem::BadSignature { route })
                }
            }
        }
    }
}

/// Why the Edge refuses a request's Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RouteProblem {
    /// The first Route is not the Edge (another host, or not a route at all).
    NotTheEdge {
        /// The first Route.
        route: String,
    },
    /// The Edge's route in a dialog, without its signature.
    Unsigned {
        /// The first Route.
        route: String,
    },
    /// The signature is not the Edge's for this dialog and peer (forged, altered, another dialog or peer, or
    /// signed by an earlier run of the Edge).
    BadSignature {
        /// The first Route.
        route: String,
    },
}

impl RouteProblem {
    /// The route and what is wrong with it, for the record's Data and the explanation.
    pub(super) fn parts(&self) -> (&str, &'static str) {
        match self {
            RouteProblem::NotTheEdge { route } => (route, "first Route is not this Edge"),
            RouteProblem::Unsigned { route } => (route, "no ms-route-sig"),
            RouteProblem::BadSignature { route } => (route, "ms-route-sig does not verify"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> RouteKey {
        RouteKey::from_bytes(&[7u8; 32])
    }

    fn bye(route: Option<&str>, call_id: &str, to_tag: bool) -> Message {
        let route = route.map(|r| format!("Route: {r}\r\n")).unwrap_or_default();
        let tag = if to_tag { ";tag=ABC" } else { "" };
        Message::parse(Bytes::from(format!(
            "BYE sip:stejanss@sip.skype.lab SIP/2.0\r\nVia: SIP/2.0/TLS 10.48.36.47:5061;branch=z9hG4bKb\r\n{route}From: <sip:2000@acano.steven.lab>;tag=1\r\nTo: <sip:stejanss@skype.lab>{tag}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        )))
        .unwrap()
    }

    #[test]
    fn the_record_route_has_the_edges_layout() {
        let rr = key().record_route("sip.skype.lab", "vcse.acano.steven.lab", "c1");
        let sig = key().sign("sip.skype.lab", "vcse.acano.steven.lab", "c1");
        assert_eq!(
            rr,
            format!(
                "<sip:sip.skype.lab:5061;transport=tls;lr;ms-key-info={};ms-route-sig={sig}>",
                key().id
            )
        );
        assert_eq!(sig.len(), 32);
        assert_eq!(key().id.len(), 8);
        assert!(!format!("{:?}", key()).contains("7, 7"));
    }

    #[test]
    fn a_route_is_good_only_for_its_dialog_and_peer() {
        let k = key();
        let rr = k.record_route("sip.skype.lab", "vcse.acano.steven.lab", "c1");
        let fqdn = "sip.skype.lab";
        assert_eq!(
            k.check(&bye(Some(&rr), "c1", true), fqdn, "vcse.acano.steven.lab"),
            Ok(())
        );
        // Another peer, another dialog, another key: the signature fails.
        for (m, peer, k2) in [
            (bye(Some(&rr), "c1", true), "evil.lab", key()),
            (bye(Some(&rr), "c2", true), "vcse.acano.steven.lab", key()),
            (
                bye(Some(&rr), "c1", true),
                "vcse.acano.steven.lab",
                RouteKey::from_bytes(&[8u8; 32]),
            ),
        ] {
            assert!(matches!(
                k2.check(&m, fqdn, peer),
                Err(RouteProblem::BadSignature { .. })
            ));
        }
        // Altered signature.
        let forged = rr.replace("ms-route-sig=", "ms-route-sig=00");
        assert!(matches!(
            k.check(
                &bye(Some(&forged), "c1", true),
                fqdn,
                "vcse.acano.steven.lab"
            ),
            Err(RouteProblem::BadSignature { .. })
        ));
        // Not the Edge.
        assert_eq!(
            k.check(
                &bye(Some("<sip:vcse.steven.lab;lr>"), "c1", true),
                fqdn,
                "x"
            ),
            Err(RouteProblem::NotTheEdge {
                route: "sip:vcse.steven.lab;lr".into()
            })
        );
        // The Edge without a signature: refused in a dialog, accepted as a preloaded route outside one.
        let plain = "<sip:sip.skype.lab:5061;transport=tls;lr>";
        assert!(matches!(
            k.check(&bye(Some(plain), "c1", true), fqdn, "x"),
            Err(RouteProblem::Unsigned { .. })
        ));
        assert_eq!(k.check(&bye(Some(plain), "c1", false), fqdn, "x"), Ok(()));
        // No Route: nothing to check.
        assert_eq!(k.check(&bye(None, "c1", true), fqdn, "x"), Ok(()));
    }
}
