//! The words of the chain problems, moved from `pki` to the rulebook: each reads as a sentence and has a tag.

use crate::pki::{ChainProblem, ChainStatus};
use crate::rules::chain_phrase;

#[test]
fn chain_problems_have_a_short_tag_for_records() {
    use crate::rules::handshake_rejection;
    let tags = [
        (ChainProblem::TooComplex, "chain too complex"),
        (ChainProblem::Malformed, "malformed"),
        (ChainProblem::CaAsLeaf, "CA certificate as leaf"),
        (ChainProblem::NameConstraints, "name constraints"),
        (ChainProblem::Other, "invalid"),
    ];
    for (p, tag) in tags {
        let r = handshake_rejection(&ChainStatus::Invalid(p), None, "p").unwrap();
        assert_eq!(r.log().unwrap().data_value("reason"), Some(tag));
        assert!(
            r.explanation()
                .unwrap()
                .contains(&chain_phrase(&ChainStatus::Invalid(p)).replace(" — ", ". Fix: ")),
            "{:?}",
            r.explanation()
        );
    }
}
