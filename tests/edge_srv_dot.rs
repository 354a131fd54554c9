//! Issue 11 item 24, inbound: a sender domain whose federation SRV target is `.` (RFC 2782: "service
//! decidedly not available") gets 504 with 1008 and the no-SRV record, not a Rule 1 failure; and the
//! explanation names the DNS server the Edge asked.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use edge_lab::*;
use edgesim::dns::RecordSpec;
use edgesim::lab::peer::client::ExpresswayRequest;

fn dot(domain: &str) -> RecordSpec {
    RecordSpec::Srv {
        name: format!("_sipfederationtls._tcp.{domain}"),
        priority: 0,
        weight: 0,
        port: 1,
        target: ".".into(),
        ttl: 60,
    }
}

#[tokio::test]
async fn srv_target_dot_is_no_usable_srv_inbound() {
    let lab = lab(vec![dot("dot.lab")], |_| {}).await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.dot.lab"]).await;
    let req = ExpresswayRequest::new("INVITE", "sip:2000@dot.lab", "sip:stejanss@skype.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    assert_eq!(
        header(&r, "ms-diagnostics").as_deref(),
        Some(
            r#"1008;reason="Unable to resolve DNS SRV record";domain="dot.lab";source="sip.skype.lab""#
        )
    );
    let records = lab.edge.log_records();
    assert_eq!(records.len(), 1);
    assert!(
        records[0].contains("SIPPROXY_E_EPROUTING_MSG_DOMAIN_NO_SRV"),
        "{}",
        records[0]
    );
    assert!(
        records[0].contains(r#"domain="dot.lab";reason="DECIDEDLY_NOT_AVAILABLE""#),
        "{}",
        records[0]
    );
    assert!(!records[0].contains("fqdn1"), "{}", records[0]);

    let ev = Lab::event(&mut events).await;
    assert_eq!(ev.ms_diagnostics_code, Some(1008));
    let explanation = ev.explanation.unwrap();
    assert_eq!(
        explanation,
        format!(
            "_sipfederationtls._tcp.dot.lab has no usable SRV record: its target is \".\", which RFC 2782 defines as \"service decidedly not available\" at dot.lab (answered by {}). dot.lab says it does not federate. Fix: if it should, replace that record with _sipfederationtls._tcp.dot.lab → <edge host>.dot.lab:5061, with an A record for that host in dot.lab.",
            lab.dns().local_addr()
        )
    );
    lab.stop().await;
}

/// Every DNS failure the Edge meets inbound names the server it asked: here the embedded server serves
/// steven.lab (NXDOMAIN for the name) but not acano.lab (REFUSED).
#[tokio::test]
async fn inbound_no_srv_names_the_dns_server() {
    let lab = lab(
        vec![srv(
            "_sipfederationtls._tcp.other.steven.lab",
            "vcse.other.steven.lab",
        )],
        |_| {},
    )
    .await;
    let mut events = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let r = peer.request(&invite().build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let explanation = Lab::event(&mut events).await.explanation.unwrap();
    assert!(
        explanation.starts_with(&format!(
            "_sipfederationtls._tcp.acano.steven.lab has no SRV record (the name does not exist (NXDOMAIN from {})).",
            lab.dns().local_addr()
        )),
        "{explanation}"
    );
    let req = ExpresswayRequest::new("INVITE", "sip:2000@acano.lab", "sip:stejanss@skype.lab");
    let r = peer.request(&req.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let explanation = Lab::event(&mut events).await.explanation.unwrap();
    assert_eq!(
        explanation,
        format!(
            "The SRV lookup of _sipfederationtls._tcp.acano.lab failed: the DNS server {0} refused the query. Fix: check that {0} runs and answers DNS (UDP and TCP) and serves the zone of acano.lab, or point the Edge at a DNS server that does.",
            lab.dns().local_addr()
        )
    );
    lab.stop().await;
}
