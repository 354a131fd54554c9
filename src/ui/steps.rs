//! A request's decision rule by rule, for the page: the inbound rules in the Edge's order (the clientAuth EKU,
//! the sender domain, the partner policy, the SRV lookup, Rule 1, Rule 2, the destination; see
//! [`crate::rules::inbound`]), then the users' answer. The refusing rule is the one whose [`Finding`] the
//! verdict holds; the rules before it held, the ones after it were not reached. The outcome is the rulebook's:
//! this module only places its finding in the order and words the page shows.

use super::model::{Outcome, Step, split_fix};
use crate::diagnostics::DecisionEvent;
use crate::rules::{Decision, Finding, Verdict};

/// The inbound rules, in the order the Edge applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    ClientAuth,
    Sender,
    Policy,
    Srv,
    Rule1,
    Rule2,
    Destination,
    Users,
}

const STAGES: [Stage; 8] = [
    Stage::ClientAuth,
    Stage::Sender,
    Stage::Policy,
    Stage::Srv,
    Stage::Rule1,
    Stage::Rule2,
    Stage::Destination,
    Stage::Users,
];

impl Stage {
    fn title(self) -> &'static str {
        match self {
            Stage::ClientAuth => "client certificate: Client Authentication EKU",
            Stage::Sender => "sender domain",
            Stage::Policy => "federation policy (allowed, blocked, partner discovery)",
            Stage::Srv => "DNS SRV of the sender domain",
            Stage::Rule1 => "Rule 1: SRV target in the sender's domain",
            Stage::Rule2 => "Rule 2: the client certificate names the target",
            Stage::Destination => "destination: the Request-URI is for this Edge",
            Stage::Users => "the Edge's users",
        }
    }
}

/// The rule a refusing finding belongs to; `None` for a refusal before the rules (request rate, hops).
fn stage_of(f: &Finding) -> Option<Stage> {
    Some(match f {
        Finding::ClientAuthEkuMissing { .. } | Finding::Eku { .. } => Stage::ClientAuth,
        Finding::NoSenderDomain => Stage::Sender,
        Finding::DomainBlocked { .. } | Finding::DomainNotAllowed { .. } => Stage::Policy,
        Finding::NoSrv { .. } | Finding::SrvDotRecord { .. } => Stage::Srv,
        Finding::SrvNotInDomain { .. } => Stage::Rule1,
        Finding::NoPeerCertificate { .. }
        | Finding::NameMismatch { .. }
        | Finding::NoSan { .. }
        | Finding::WildcardName { .. } => Stage::Rule2,
        Finding::ForeignRequestUri { .. } => Stage::Destination,
        Finding::UnknownUser { .. }
        | Finding::BadExtension { .. }
        | Finding::TooManyCalls { .. } => Stage::Users,
        _ => return None,
    })
}

/// What happened, without the fix.
fn what(text: Option<&str>) -> String {
    text.and_then(|t| split_fix(t).0).unwrap_or_default()
}

fn step(stage: Stage, outcome: Outcome, detail: String) -> Step {
    Step {
        rule: stage.title().to_owned(),
        outcome,
        detail,
    }
}

/// The steps of the decision `verdict` about the request of `event`; `fixed_fqdn` is the allowed partner's
/// fixed Edge FQDN when the sender domain has one (then there is no SRV lookup nor Rule 1).
pub fn request_steps(
    verdict: &Verdict,
    event: &DecisionEvent,
    fixed_fqdn: Option<&str>,
) -> Vec<Step> {
    let explanation = what(event.explanation.as_deref());
    let domain = event.domain.as_deref().unwrap_or("(none)");
    let cert = event.peer_cert.as_deref();
    let target = match &verdict.decision {
        Decision::Accept { target } => Some(target.to_string()),
        Decision::Refuse(Finding::NameMismatch { target, .. }) => Some(target.to_string()),
        Decision::Refuse(_) => None,
    };
    let (failed, early) = match verdict.finding() {
        Some(f) => match stage_of(f) {
            Some(s) => (Some(s), false),
            None => (None, true),
        },
        None => (None, false),
    };
    let mut steps = Vec::with_capacity(STAGES.len() + 1);
    if early {
        steps.push(Step {
            rule: "Edge limits (before the federation rules)".to_owned(),
            outcome: Outcome::Fail,
            detail: explanation.clone(),
        });
    }
    for stage in STAGES {
        let reached = !early && failed.is_none_or(|f| stage <= f);
        if !reached {
            steps.push(step(stage, Outcome::Skip, "not reached".to_owned()));
            continue;
        }
        if Some(stage) == failed {
            steps.push(step(stage, Outcome::Fail, explanation.clone()));
            continue;
        }
        let (outcome, detail) = match stage {
            Stage::ClientAuth => match cert {
                Some(c) => (
                    Outcome::Pass,
                    format!("{c} may act as a TLS client (Client Authentication EKU or no EKU)"),
                ),
                None => (Outcome::Skip, "no client certificate presented".to_owned()),
            },
            Stage::Sender => (Outcome::Pass, format!("sender domain {domain}")),
            Stage::Policy => (Outcome::Pass, format!("{domain} may federate")),
            Stage::Srv | Stage::Rule1 if fixed_fqdn.is_some() => (
                Outcome::Skip,
                format!(
                    "{domain} is an allowed partner with the fixed Edge {}: no SRV lookup",
                    fixed_fqdn.unwrap_or_default()
                ),
            ),
            Stage::Srv => (
                Outcome::Pass,
                format!("_sipfederationtls._tcp.{domain} has a usable record"),
            ),
            Stage::Rule1 => (
                Outcome::Pass,
                match &target {
                    Some(t) => format!("the SRV target {t} is in {domain}"),
                    None => format!("an SRV target is in {domain}"),
                },
            ),
            Stage::Rule2 => (
                Outcome::Pass,
                format!(
                    "{} names {}",
                    cert.unwrap_or("the client certificate"),
                    target.as_deref().unwrap_or("the target")
                ),
            ),
            Stage::Destination => (Outcome::Pass, "the Request-URI is for this Edge".to_owned()),
            Stage::Users => match event.status {
                Some(s) if s < 300 => (Outcome::Pass, format!("answered {s}")),
                Some(s) if explanation.is_empty() => (Outcome::Fail, format!("answered {s}")),
                Some(s) => (Outcome::Fail, format!("answered {s}: {explanation}")),
                None => (Outcome::Pass, "taken, no answer sent".to_owned()),
            },
        };
        steps.push(step(stage, outcome, detail));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{EventContext, VerdictKind};
    use crate::rules::DomainName;

    fn event(verdict: &Verdict, status: Option<u16>) -> DecisionEvent {
        let mut e = verdict.to_event(EventContext {
            time: time::macros::datetime!(2017-03-02 07:10:46.230 UTC),
            remote: "127.0.0.1:25002".into(),
            peer_cert: Some("vcse.steven.lab".into()),
            method: "INVITE".into(),
            call_id: "c1".into(),
            domain: Some("acano.steven.lab".into()),
        });
        if status.is_some() {
            e.status = status;
        }
        e
    }

    fn outcomes(steps: &[Step]) -> Vec<(&str, Outcome)> {
        steps.iter().map(|s| (s.rule.as_str(), s.outcome)).collect()
    }

    #[test]
    fn a_refusal_passes_the_rules_before_it_and_reaches_none_after() {
        let v = Verdict::refuse(
            Finding::DomainBlocked {
                domain: DomainName::new("acano.steven.lab"),
            },
            "sip.skype.lab",
        );
        let e = event(&v, None);
        assert_eq!(e.verdict, VerdictKind::Reject);
        let steps = request_steps(&v, &e, None);
        assert_eq!(
            outcomes(&steps),
            [
                (
                    "client certificate: Client Authentication EKU",
                    Outcome::Pass
                ),
                ("sender domain", Outcome::Pass),
                (
                    "federation policy (allowed, blocked, partner discovery)",
                    Outcome::Fail
                ),
                ("DNS SRV of the sender domain", Outcome::Skip),
                ("Rule 1: SRV target in the sender's domain", Outcome::Skip),
                (
                    "Rule 2: the client certificate names the target",
                    Outcome::Skip
                ),
                (
                    "destination: the Request-URI is for this Edge",
                    Outcome::Skip
                ),
                ("the Edge's users", Outcome::Skip),
            ]
        );
        assert_eq!(steps[1].detail, "sender domain acano.steven.lab");
        assert_eq!(steps[2].detail, what(v.explanation().as_deref()));
        assert!(!steps[2].detail.contains("Fix:"), "{}", steps[2].detail);
        assert!(!steps[2].detail.is_empty());
    }

    #[test]
    fn an_acceptance_passes_every_rule_and_ends_in_the_users_answer() {
        let v = Verdict::new(
            Decision::Accept {
                target: DomainName::new("vcse.steven.lab"),
            },
            "sip.skype.lab",
            None,
        );
        let steps = request_steps(&v, &event(&v, Some(180)), None);
        assert!(
            steps.iter().all(|s| s.outcome == Outcome::Pass),
            "{steps:?}"
        );
        assert_eq!(
            steps[4].detail,
            "the SRV target vcse.steven.lab is in acano.steven.lab"
        );
        assert_eq!(steps[5].detail, "vcse.steven.lab names vcse.steven.lab");
        assert_eq!(steps[7].detail, "answered 180");
        // A fixed partner FQDN: no SRV lookup, no Rule 1.
        let fixed = request_steps(&v, &event(&v, Some(180)), Some("vcse.steven.lab"));
        assert_eq!(fixed[3].outcome, Outcome::Skip);
        assert_eq!(fixed[4].outcome, Outcome::Skip);
        assert!(
            fixed[3].detail.contains("fixed Edge vcse.steven.lab"),
            "{}",
            fixed[3].detail
        );
    }

    #[test]
    fn a_limit_before_the_rules_reaches_no_rule() {
        let v = Verdict::refuse(Finding::RateLimited { max: 20 }, "sip.skype.lab");
        let steps = request_steps(&v, &event(&v, None), None);
        assert_eq!(steps[0].rule, "Edge limits (before the federation rules)");
        assert_eq!(steps[0].outcome, Outcome::Fail);
        assert!(
            steps[1..].iter().all(|s| s.outcome == Outcome::Skip),
            "{steps:?}"
        );
    }
}
