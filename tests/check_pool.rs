//! `edgesim check` on an Edge pool behind DNS load balancing (one name, an A record per member) whose first
//! member refuses TLS: `check` probes TLS on the next address as `call` does (`conn::connect_any`), reports
//! each address's TLS lines named by its address, and counts the first member's refusal as a WARN because the
//! Edge connects through the second. With both members refusing, both stay FAIL. The pool set-up is
//! `tests/common/pool_lab.rs` (shared with `pool_faults`), over real TCP and TLS on 127.0.0.2 and 127.0.0.3 and the embedded DNS.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use edgesim::check::{Status, check};
use edgesim::edge::pool::FaultMode;

#[path = "common/pool_lab.rs"]
mod pool_lab;
use pool_lab::*;

/// The `tls` lines of a report: (status, detail).
fn tls_lines(r: &edgesim::check::Report) -> Vec<(Status, String)> {
    r.area("tls")
        .iter()
        .map(|l| (l.status, l.detail.clone()))
        .collect()
}

#[tokio::test]
async fn check_probes_tls_on_the_next_address_when_the_first_member_refuses_it() {
    let lab = PoolLab::start(Layout::DnsLoadBalancing, 2).await;
    let ctx = caller(&lab);
    let (first, second) = (lab.members[0], lab.members[1]);

    // Both members up: one address probed, the lines as for a single Edge.
    let r = check(&ctx, "skype.lab").await;
    let tls = tls_lines(&r);
    assert_eq!(tls.len(), 2, "{}", r.render());
    assert_eq!(
        tls[0],
        (Status::Pass, "TLS 1.2 offered by sip.skype.lab".to_string())
    );
    assert!(!r.has_fail(), "{}", r.render());

    lab.set(0, FaultMode::RefuseTls);
    let r = check(&ctx, "skype.lab").await;
    assert!(
        !r.has_fail(),
        "the Edge gets through the second member: {}",
        r.render()
    );
    let tls = tls_lines(&r);
    let of = |addr: SocketAddr| -> Vec<&(Status, String)> {
        tls.iter()
            .filter(|(_, d)| d.starts_with(&format!("{addr}: ")))
            .collect()
    };
    assert_eq!(
        of(first).len() + of(second).len(),
        tls.len(),
        "{}",
        r.render()
    );
    // The first member: its refusal is a WARN that names where the Edge connects instead.
    assert!(!of(first).is_empty(), "{}", r.render());
    for (status, detail) in of(first) {
        assert_ne!(*status, Status::Fail, "{detail}");
    }
    let moved = format!("; the Edge moves on to the next address and connects through {second}");
    assert!(
        of(first)
            .iter()
            .any(|(s, d)| *s == Status::Warn && d.ends_with(&moved)),
        "{}",
        r.render()
    );
    // The second member: probed, and it offers TLS 1.2.
    assert_eq!(
        of(second)[0],
        &(
            Status::Pass,
            format!("{second}: TLS 1.2 offered by sip.skype.lab")
        )
    );
    // The OPTIONS ping went through too, as `call` would.
    assert!(
        r.area("sip").iter().all(|l| l.status == Status::Pass),
        "{}",
        r.render()
    );

    // Both members refuse TLS: every address is probed, and the refusals stay FAILs.
    lab.set(1, FaultMode::RefuseTls);
    let r = check(&ctx, "skype.lab").await;
    assert!(r.has_fail(), "{}", r.render());
    let tls = tls_lines(&r);
    assert!(
        tls.iter()
            .any(|(s, d)| *s == Status::Fail && d.starts_with(&format!("{first}: "))),
        "{}",
        r.render()
    );
    assert!(
        tls.iter()
            .any(|(s, d)| *s == Status::Fail && d.starts_with(&format!("{second}: "))),
        "{}",
        r.render()
    );
    assert!(
        tls.iter().all(|(_, d)| !d.contains("moves on")),
        "{}",
        r.render()
    );
    lab.stop().await;
}
