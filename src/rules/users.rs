//! What the Edge checks before and after the federation rules, as the proxy in front of the emulated users: hop
//! count (RFC 3261 §16.3), required extensions (§8.2.2.3), unknown users, and the per-connection limits.
//!
//! What counts toward the request rate (edgesim's choice; Microsoft documents only "20 messages per second" for
//! discovered partners, not how they are counted):
//! - ACK never counts: it gets no response (RFC 3261 §17), so a limit could not even be signalled;
//! - BYE and CANCEL of a call this connection holds do not count: refusing them would leave a call the peer
//!   cannot end, and each call ends once;
//! - every other request counts, in a dialog or not (a re-INVITE, an in-dialog INFO, a BYE for an unknown call).

use super::Finding;
use crate::sip::ua::EDGE_SUPPORTED;

/// Whether a request counts toward the rate (see the module documentation). `ends_held_call`: a BYE or CANCEL
/// whose Call-ID is a call this connection holds.
pub fn counts_toward_rate(method: &str, ends_held_call: bool) -> bool {
    match method {
        "ACK" => false,
        "BYE" | "CANCEL" => !ends_held_call,
        _ => true,
    }
}

/// A request over `limits.max_requests_per_sec` (`max`) on one connection: 503 with Retry-After.
pub fn rate_limited(max: u32) -> Finding {
    Finding::RateLimited { max }
}

/// A connection that already holds the most calls the Edge keeps (`max`): 503 with Retry-After.
pub fn too_many_calls(max: usize) -> Finding {
    Finding::TooManyCalls { max }
}

/// A request that reached an Edge pool member in fault mode `503` (`member` is its `ip:port`): 503 with
/// Retry-After and ms-diagnostics 1090, whatever the request (the member is out of service, not judging).
pub fn member_out_of_service(member: &str) -> Finding {
    Finding::MemberOutOfService {
        member: member.to_owned(),
    }
}

/// RFC 3261 §16.3 step 3: `Max-Forwards: 0` on a request the Edge would forward to a user's pool (its
/// Request-URI names a user) is `483 Too Many Hops`. OPTIONS (which §16.3 lets the proxy answer itself), ACK and
/// requests for the Edge itself (no user part) are answered as the final recipient.
pub fn too_many_hops(
    method: &str,
    max_forwards: Option<u32>,
    request_uri: &str,
    names_a_user: bool,
) -> Option<Finding> {
    let forwarded = method != "OPTIONS" && method != "ACK" && names_a_user;
    (forwarded && max_forwards == Some(0)).then(|| Finding::TooManyHops {
        uri: request_uri.to_owned(),
    })
}

/// RFC 3261 §8.2.2.3: the option tags of `Require` (as written, in order) that the Edge does not support, as
/// a 420; ignored in ACK and CANCEL (as §8.2.2.3 says) and in BENOTIFY (never answered).
pub fn unsupported_extensions<'a>(
    method: &str,
    required: impl IntoIterator<Item = &'a str>,
) -> Option<Finding> {
    if matches!(method, "ACK" | "CANCEL" | "BENOTIFY") {
        return None;
    }
    let supported: Vec<&str> = EDGE_SUPPORTED.split(',').map(str::trim).collect();
    let tags: Vec<String> = required
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
        .map(str::to_owned)
        .collect();
    (!tags.is_empty()).then_some(Finding::BadExtension { tags })
}

/// A Request-URI that reaches none of the Edge's users (`users`: their user parts; empty when every user
/// answers, so the URI named no user): 404 with 4005.
pub fn unknown_user(request_uri: &str, users: Vec<String>) -> Finding {
    Finding::UnknownUser {
        uri: request_uri.to_owned(),
        users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_counts() {
        assert!(!counts_toward_rate("ACK", false));
        assert!(!counts_toward_rate("BYE", true));
        assert!(!counts_toward_rate("CANCEL", true));
        assert!(counts_toward_rate("BYE", false));
        assert!(counts_toward_rate("INVITE", true));
        assert!(counts_toward_rate("OPTIONS", false));
    }

    #[test]
    fn explanations_name_the_setting_and_retry_after() {
        assert_eq!(
            rate_limited(20).explain().to_string(),
            "The peer sent more than 20 requests within one second on this connection, over limits.max_requests_per_sec = 20: the Edge answered 503 Service Unavailable with Retry-After: 1. Fix: slow the peer down, or raise limits.max_requests_per_sec in the Edge configuration (ACK, and BYE/CANCEL of calls the connection holds, do not count)."
        );
        assert_eq!(
            too_many_calls(1024).explain().to_string(),
            "This connection already holds 1024 calls, the most the Edge keeps per connection: the Edge answered 503 Service Unavailable with Retry-After: 5. Fix: end calls (ACK every final response, BYE answered calls), or spread them over more connections."
        );
        assert_eq!(
            rate_limited(20).response_headers(),
            vec![("Retry-After", "1".to_owned())]
        );
        assert_eq!(
            rate_limited(20).verdict_kind(),
            crate::diagnostics::VerdictKind::Limit
        );
    }

    #[test]
    fn a_member_out_of_service_answers_503_with_retry_after_and_1090() {
        let f = member_out_of_service("127.0.0.2:5061");
        assert_eq!(f.sip(), Some((503, "Service Unavailable")));
        assert_eq!(f.response_headers(), vec![("Retry-After", "30".to_owned())]);
        assert_eq!(
            f.ms_diagnostics_value("sip.skype.lab").as_deref(),
            Some(
                "1090;reason=\"Edge pool member is out of service\";member=\"127.0.0.2:5061\";source=\"sip.skype.lab\""
            )
        );
        assert_eq!(f.verdict_kind(), crate::diagnostics::VerdictKind::Limit);
        assert_eq!(
            f.explain().to_string(),
            "The Edge pool member 127.0.0.2:5061 is switched out of service (fault mode 503): the Edge answered 503 Service Unavailable with ms-diagnostics 1090 with Retry-After: 30. Fix: a peer should try the next SRV target or address of the pool; to put the member back, switch its fault mode to accept (Pool::set_fault, or the faults file and SIGUSR1)."
        );
    }

    #[test]
    fn required_extensions_and_hops() {
        let f = unsupported_extensions("INVITE", ["timer", " 100rel", "Foo"]).unwrap();
        assert_eq!(
            f.response_headers(),
            vec![("Unsupported", "100rel, Foo".to_owned())]
        );
        assert_eq!(f.sip(), Some((420, "Bad Extension")));
        assert!(unsupported_extensions("CANCEL", ["100rel"]).is_none());
        assert!(unsupported_extensions("INVITE", ["ms-sender"]).is_none());
        assert!(too_many_hops("INVITE", Some(0), "sip:a@b", true).is_some());
        assert!(too_many_hops("OPTIONS", Some(0), "sip:a@b", true).is_none());
        assert!(too_many_hops("MESSAGE", Some(0), "sip:b", false).is_none());
        assert!(too_many_hops("INVITE", Some(1), "sip:a@b", true).is_none());
    }
}
