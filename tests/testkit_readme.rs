//! The README's "edgesim in your tests" example, verbatim below the marker line (`tests/readme.rs` checks that
//! the two agree), so the example always compiles and passes.

// README example:
use edgesim::config::UserAction;
use edgesim::testkit::{DecisionMatch, TestEdge};

#[tokio::test]
async fn our_expressway_federates_with_the_edge() {
    let edge = TestEdge::builder()
        .user("stejanss", UserAction::Answer)
        .srv("acano.steven.lab", "vcse.acano.steven.lab")
        .start()
        .await
        .expect("the Edge starts");
    // Checked when `edge` is dropped: a miss fails the test and lists what the Edge did decide.
    let invite = DecisionMatch::method("INVITE").domain("acano.steven.lab");
    edge.expect_decision(invite, 1);

    let mut peer = edge
        .peer("2000@acano.steven.lab", &["vcse.acano.steven.lab"])
        .await
        .expect("mutual TLS with a lab certificate");
    let answer = peer.invite("stejanss").await.expect("an answer");
    assert_eq!(answer.status_code(), Some(200));
} // the Edge stops here, and fails the test if an expectation is unmet
