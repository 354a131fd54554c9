//! [`TestPeer`]: the far side of federation in one call per request — the lab's emulated Expressway-E
//! ([`PeerClient`], [`ExpresswayRequest`]) with the addressing filled in.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use super::TestkitError;
use crate::lab::peer::client::{ExpresswayRequest, PeerClient};
use crate::pki::TlsIdentity;
use crate::sip::Message;

/// How long one request waits for its final answer unless [`TestPeer::timeout`] changes it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A mutual-TLS SIP connection to an Edge, sending as `from`; each method sends one request and returns the
/// parsed final response (provisional ones skipped). Made by [`super::TestEdge::peer`], or
/// [`TestPeer::connect`] for any Edge.
#[derive(Debug)]
pub struct TestPeer {
    client: PeerClient,
    from: String,
    edge_domain: String,
    timeout: Duration,
}

/// `2000@acano.steven.lab` or `sip:2000@…` → `sip:2000@acano.steven.lab`; a bare user is at `domain`.
fn sip_uri(who: &str, domain: &str) -> String {
    let who = who.trim();
    if who.starts_with("sip:") || who.starts_with("sips:") {
        who.to_owned()
    } else if who.contains('@') {
        format!("sip:{who}")
    } else {
        format!("sip:{who}@{domain}")
    }
}

impl TestPeer {
    /// Connects to the Edge at `addr` (TLS server name `edge_fqdn`, SIP domain `edge_domain`), presenting
    /// `identity` as client certificate (none: no certificate), to send as `from` (`user@domain` or a URI).
    pub async fn connect(
        addr: SocketAddr,
        edge_fqdn: &str,
        edge_domain: &str,
        from: &str,
        identity: Option<&TlsIdentity>,
    ) -> Result<TestPeer, TestkitError> {
        let client = PeerClient::connect(addr, edge_fqdn, identity, DEFAULT_TIMEOUT).await?;
        Ok(TestPeer {
            client,
            from: sip_uri(from, "invalid"),
            edge_domain: edge_domain.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Waits at most `timeout` for each final answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The From URI this peer sends with.
    pub fn from_uri(&self) -> &str {
        &self.from
    }

    /// A request of `method` to `to` (a user of the Edge's domain, `user@domain` or a URI), Expressway style,
    /// to change before [`TestPeer::send`].
    pub fn request(&self, method: &str, to: &str) -> ExpresswayRequest {
        ExpresswayRequest::new(method, &self.from, &sip_uri(to, &self.edge_domain))
    }

    /// Sends `request` and returns its final response; a final answer to an INVITE is acknowledged (ACK), as
    /// a caller must.
    pub async fn send(&mut self, request: &ExpresswayRequest) -> Result<Message, TestkitError> {
        let answer = self.client.request(&request.build(), self.timeout).await?;
        if request.method == "INVITE" {
            let to_tag = answer
                .to()
                .ok()
                .and_then(|t| t.tag().map(|t| t.to_string()));
            let is_2xx = answer
                .status_code()
                .is_some_and(|s| (200..300).contains(&s));
            // ACK of a 2xx names the dialog (To tag, new branch); ACK of a refusal repeats the INVITE's branch.
            let mut ack = request.follow_up("ACK", to_tag.as_deref().filter(|_| is_2xx));
            ack.to_tag = to_tag;
            self.client.send(&ack.build()).await?;
        }
        Ok(answer)
    }

    /// An INVITE (with the Expressway's SDP offer) to `to`.
    pub async fn invite(&mut self, to: &str) -> Result<Message, TestkitError> {
        let r = self.request("INVITE", to);
        self.send(&r).await
    }

    /// An OPTIONS to `to`.
    pub async fn options(&mut self, to: &str) -> Result<Message, TestkitError> {
        let r = self.request("OPTIONS", to);
        self.send(&r).await
    }

    /// A presence SUBSCRIBE (`Event: presence`, PIDF accepted, one hour) to `to`.
    pub async fn subscribe(&mut self, to: &str) -> Result<Message, TestkitError> {
        let mut r = self.request("SUBSCRIBE", to);
        r.extra_headers = vec![
            ("Event".into(), "presence".into()),
            ("Accept".into(), "application/pidf+xml".into()),
            ("Expires".into(), "3600".into()),
        ];
        self.send(&r).await
    }

    /// A page-mode instant message (`text/plain`) to `to`.
    pub async fn message(&mut self, to: &str, text: &str) -> Result<Message, TestkitError> {
        let mut r = self.request("MESSAGE", to);
        r.body = Some(Bytes::copy_from_slice(text.as_bytes()));
        r.content_type = Some("text/plain; charset=UTF-8".into());
        self.send(&r).await
    }

    /// The connection itself, for exchanges the one-call methods do not cover (CANCEL, BYE, raw bytes).
    pub fn client(&mut self) -> &mut PeerClient {
        &mut self.client
    }

    /// Closes the TLS session.
    pub async fn close(self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::sip_uri;

    #[test]
    fn addresses_are_completed_with_the_right_domain() {
        assert_eq!(sip_uri("stejanss", "skype.lab"), "sip:stejanss@skype.lab");
        assert_eq!(
            sip_uri(" 2000@acano.steven.lab", "skype.lab"),
            "sip:2000@acano.steven.lab"
        );
        assert_eq!(sip_uri("sip:a@b.lab", "skype.lab"), "sip:a@b.lab");
        assert_eq!(sip_uri("sips:a@b.lab", "skype.lab"), "sips:a@b.lab");
    }
}
