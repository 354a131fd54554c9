//! Issue 15, the discovered-partner limits over real mutual TLS and real DNS on loopback:
//! DiscoveredPartnerStandardRate (a discovered partner sending 25 messages back to back over one connection is
//! throttled past 20; an allowed partner is not), MaxContactsPerDiscoveredPartner in the report period, and the
//! watch list (`Edge::watch_list`, the `watch-list` lines of the events file).
//!
//! Not timed: the 25 requests go in one write, so they reach the Edge within one second on any machine that can
//! run the suite (the Edge's window is one second from the first request); the assertions are on counts.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;
#[path = "common/policy_lab.rs"]
mod policy_lab;

use edgesim::diagnostics::VerdictKind;
use policy_lab::*;

const PARTNERS: &str = r#"
[access_edge]
AllowFederatedUsers = true
EnablePartnerDiscovery = true

[[allowed_domains]]
Identity = "fabrikam.lab"
ProxyFqdn = "sip.fabrikam.lab"

[[users]]
user = "stejanss"
im = "silent"
"#;

#[tokio::test]
async fn a_discovered_partner_is_throttled_past_20_per_second_and_an_allowed_partner_is_not() {
    let lab = lab(PARTNERS).await;
    let mut rx = lab.edge.subscribe();

    // The discovered partner: acano.steven.lab, found by SRV, not on the allowed list.
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let reqs: Vec<_> = (0..25)
        .map(|_| message("sip:2000@acano.steven.lab", "sip:stejanss@skype.lab"))
        .collect();
    let answers = pipelined(&mut peer, &reqs).await;
    let codes = statuses(&answers);
    assert_eq!(codes.iter().filter(|&&c| c == 200).count(), 20, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&c| c == 503).count(), 5, "{codes:?}");
    assert_eq!(&codes[..20], &[200; 20][..], "the first 20 pass: {codes:?}");
    for r in answers.iter().filter(|r| r.status_code() == Some(503)) {
        assert_eq!(edge_lab::header(r, "Retry-After").as_deref(), Some("1"));
    }
    let evs = events(&mut rx, 25).await;
    let limited: Vec<_> = evs
        .iter()
        .filter(|e| e.verdict == VerdictKind::Limit)
        .collect();
    assert_eq!(limited.len(), 5);
    let counted: Vec<&str> = limited
        .iter()
        .map(|e| data(e, "messagesInSecond").unwrap())
        .collect();
    assert_eq!(counted, ["21", "22", "23", "24", "25"]);
    let e = limited[0];
    assert_eq!(e.status, Some(503));
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e07 SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED")
    );
    assert_eq!(data(e, "domain"), Some("acano.steven.lab"));
    assert_eq!(data(e, "DiscoveredPartnerStandardRate"), Some("20"));
    let trust = "ms-source-type=AutoFederation;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=vcse.acano.steven.lab";
    assert_eq!(data(e, "msEdgeProxyMessageTrust"), Some(trust));
    for e in &evs {
        assert_eq!(e.message_trust.as_deref(), Some(trust));
        assert_eq!(e.partner_type, Some("discovered"));
    }
    let records = lab.edge.log_records();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.contains("SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED"))
            .count(),
        5
    );
    peer.close().await;

    // The allowed partner server: fabrikam.lab with its ProxyFqdn, no SRV; 25 back to back all pass.
    let mut peer = lab.peer(&["sip.fabrikam.lab"]).await;
    let reqs: Vec<_> = (0..25)
        .map(|_| message("sip:alice@fabrikam.lab", "sip:stejanss@skype.lab"))
        .collect();
    let codes = statuses(&pipelined(&mut peer, &reqs).await);
    assert_eq!(codes, vec![200; 25]);
    let evs = events(&mut rx, 25).await;
    assert!(evs.iter().all(|e| e.verdict == VerdictKind::Accept));
    assert_eq!(
        evs[0].message_trust.as_deref(),
        Some(
            "ms-source-type=DirectPartner;ms-ep-fqdn=sip.skype.lab;ms-source-verified-user=verified;ms-source-network=federation;ms-remote-fqdn=sip.fabrikam.lab"
        )
    );
    assert_eq!(evs[0].partner_type, Some("allowed-server"));
    peer.close().await;

    // The watch list: the discovered partner only, with its counts.
    let list = lab.edge.watch_list();
    assert_eq!(list.len(), 1, "{list:?}");
    let w = &list[0];
    assert_eq!(w.domain, "acano.steven.lab");
    assert_eq!((w.messages, w.throttled, w.distinct_users), (25, 5, 1));
    assert_eq!((w.rate_limit, w.max_contacts), (20, Some(1000)));

    // The events file: a watch-list line when the partner appeared and when it was first throttled (once the
    // background writer has written what is queued).
    lab.edge.flush();
    let text = std::fs::read_to_string(lab.dir.path().join("events.jsonl")).unwrap();
    lab.stop().await;
    let watch: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "watch-list")
        .collect();
    let reasons: Vec<&str> = watch
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["new-partner", "throttled"]);
    assert_eq!(watch[1]["partners"][0]["domain"], "acano.steven.lab");
    assert_eq!(watch[1]["partners"][0]["throttled"], 1);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(r#""event":"decision""#))
            .count(),
        50
    );
}

#[tokio::test]
async fn a_discovered_partner_reaches_at_most_max_contacts_distinct_users_per_period() {
    let lab = lab(r#"
[access_edge]
AllowFederatedUsers = true
EnablePartnerDiscovery = true
MaxContactsPerDiscoveredPartner = 2

[[allowed_domains]]
Identity = "contoso.lab"

[[users]]
user = "alice"
im = "silent"
[[users]]
user = "bob"
im = "silent"
[[users]]
user = "carol"
im = "silent"
"#)
    .await;
    let mut rx = lab.edge.subscribe();
    let mut peer = lab.peer(&["vcse.cms.steven.lab"]).await;
    let to = |u: &str| message("sip:space@cms.steven.lab", &format!("sip:{u}@skype.lab"));
    let codes = statuses(
        &pipelined(
            &mut peer,
            &[to("alice"), to("bob"), to("carol"), to("alice")],
        )
        .await,
    );
    assert_eq!(codes, vec![200, 200, 403, 200]);
    let evs = events(&mut rx, 4).await;
    let e = &evs[2];
    assert_eq!(e.verdict, VerdictKind::Limit);
    assert_eq!(
        e.result_code.as_deref(),
        Some("0xc3e93e08 SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_CONTACTS_LIMIT")
    );
    assert_eq!(data(e, "user"), Some("carol"));
    assert_eq!(data(e, "MaxContactsPerDiscoveredPartner"), Some("2"));
    assert!(
        e.explanation
            .as_deref()
            .unwrap()
            .contains("already reached 2 distinct users")
    );
    peer.close().await;

    // An allowed domain (found by SRV too) has no contacts limit.
    let mut peer = lab.peer(&["sip.contoso.lab"]).await;
    let to = |u: &str| message("sip:bob@contoso.lab", &format!("sip:{u}@skype.lab"));
    let codes = statuses(&pipelined(&mut peer, &[to("alice"), to("bob"), to("carol")]).await);
    assert_eq!(codes, vec![200, 200, 200]);
    let evs = events(&mut rx, 3).await;
    assert_eq!(evs[0].partner_type, Some("allowed-domain"));
    let w = lab.edge.watch_list();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].distinct_users, w[0].contacts_refused), (2, 1));
    peer.close().await;
    lab.stop().await;
}

#[tokio::test]
async fn the_lab_defaults_count_discovered_partners_without_throttling_them() {
    // No [access_edge]: edgesim's lab defaults, which federate with anyone at any rate.
    let lab = lab("[[users]]\nuser = \"stejanss\"\nim = \"silent\"\n").await;
    let mut peer = lab.peer(&["vcse.acano.steven.lab"]).await;
    let reqs: Vec<_> = (0..25)
        .map(|_| message("sip:2000@acano.steven.lab", "sip:stejanss@skype.lab"))
        .collect();
    assert_eq!(statuses(&pipelined(&mut peer, &reqs).await), vec![200; 25]);
    peer.close().await;
    let w = lab.edge.watch_list();
    assert_eq!((w.len(), w[0].messages, w[0].throttled), (1, 25, 0));
    // Only decisions in the events file: the watch-list lines come with the customer's settings.
    lab.edge.flush();
    let text = std::fs::read_to_string(lab.dir.path().join("events.jsonl")).unwrap();
    assert!(!text.contains(r#""event":"watch-list""#), "{text}");
    lab.stop().await;
}
