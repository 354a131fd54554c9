//! Counting (per worker, merged at the end) and the run's summary, as text or the lines of `load --json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::LoadSpec;
use crate::report::{Line, Status};

/// Histogram range: 1 µs to 120 s, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("constant bounds hdrhistogram accepts")
}

/// What one worker counted.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub sent: u64,
    /// Requests due but never written (connection refused, failed or lost first).
    pub not_sent: u64,
    pub answered: u64,
    pub provisional: u64,
    pub responses: BTreeMap<String, u64>,
    pub diagnostics: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// 503 answers by their Retry-After (`none` without one).
    pub retry_after: BTreeMap<String, u64>,
    pub handshakes: u64,
    pub latency_us: Histogram<u64>,
    pub handshake_us: Histogram<u64>,
    /// Every latency recorded in `latency_us`, when asked for ([`super::LoadSpec::keep_samples`]).
    pub samples: Option<Vec<u64>>,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            sent: 0,
            not_sent: 0,
            answered: 0,
            provisional: 0,
            responses: BTreeMap::new(),
            diagnostics: BTreeMap::new(),
            errors: BTreeMap::new(),
            retry_after: BTreeMap::new(),
            handshakes: 0,
            latency_us: histogram(),
            handshake_us: histogram(),
            samples: None,
        }
    }

    /// Counts that also keep every latency sample when `samples` is set.
    pub fn keeping_samples(samples: bool) -> Self {
        Stats {
            samples: samples.then(Vec::new),
            ..Stats::new()
        }
    }

    pub fn error(&mut self, kind: &str) {
        self.errors_n(kind, 1);
    }

    pub fn errors_n(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(kind.to_owned()).or_default() += n;
        }
    }

    /// A final answer: `status` is the code (or `echo`), `diag` the ms-diagnostics code if any.
    pub fn answer(&mut self, status: &str, diag: Option<&str>, latency: Duration) {
        self.answered += 1;
        *self.responses.entry(status.to_owned()).or_default() += 1;
        if let Some(d) = diag {
            *self.diagnostics.entry(format!("{status} {d}")).or_default() += 1;
        }
        let us = record(&mut self.latency_us, latency);
        if let Some(samples) = &mut self.samples {
            samples.push(us);
        }
    }

    /// A 503's Retry-After value.
    pub fn retry_after(&mut self, value: Option<&str>) {
        *self
            .retry_after
            .entry(value.unwrap_or("none").to_owned())
            .or_default() += 1;
    }

    pub fn handshake(&mut self, took: Duration) {
        self.handshakes += 1;
        record(&mut self.handshake_us, took);
    }

    pub fn merge(&mut self, other: Stats) {
        self.sent += other.sent;
        self.not_sent += other.not_sent;
        self.answered += other.answered;
        self.provisional += other.provisional;
        self.handshakes += other.handshakes;
        for (k, v) in other.responses {
            *self.responses.entry(k).or_default() += v;
        }
        for (k, v) in other.diagnostics {
            *self.diagnostics.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.retry_after {
            *self.retry_after.entry(k).or_default() += v;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        let _ = self.handshake_us.add(&other.handshake_us);
        match (&mut self.samples, other.samples) {
            (Some(mine), Some(theirs)) => mine.extend(theirs),
            (mine @ None, Some(theirs)) => *mine = Some(theirs),
            (_, None) => {}
        }
    }
}

/// Records `d` in µs; returns the value recorded (capped at the histogram's highest value, as recorded).
fn record(h: &mut Histogram<u64>, d: Duration) -> u64 {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(us);
    us.min(h.high())
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Server address.
    pub target: String,
    /// Request method.
    pub method: String,
    /// Connections (workers).
    pub connections: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// `persistent` or `connection-per-request`.
    pub mode: String,
    /// Target rate, requests/s; `None`: as fast as possible.
    pub target_rate: Option<f64>,
    /// Wall time of the run, seconds.
    pub elapsed_secs: f64,
    /// Whether the TLS client presented a certificate.
    pub client_certificate: bool,
    /// Requests due, sent or not: every attempt, including those whose connection was refused.
    pub attempted: u64,
    /// Requests written.
    pub sent: u64,
    /// Final responses received.
    pub answered: u64,
    /// Provisional (1xx) responses received.
    pub provisional: u64,
    /// Final responses per second.
    pub rate: f64,
    /// Final responses by status code (`echo` for a request echoed back).
    pub responses: BTreeMap<String, u64>,
    /// Final responses by `status ms-diagnostics-code`.
    pub diagnostics: BTreeMap<String, u64>,
    /// 503 responses by their `Retry-After` seconds (`none` without the header).
    pub retry_after: BTreeMap<String, u64>,
    /// Request→final-response latency.
    pub latency_ms: Percentiles,
    /// TLS handshakes completed.
    pub handshakes: u64,
    /// Handshakes per second.
    pub handshake_rate: f64,
    /// TCP connect + TLS handshake time.
    pub handshake_ms: Percentiles,
    /// Errors by kind (a request lost with its connection counts once).
    pub errors: BTreeMap<String, u64>,
}

impl LoadReport {
    pub(crate) fn from_stats(spec: &LoadSpec, s: Stats, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        LoadReport {
            target: spec.target.to_string(),
            method: spec.request.method.clone(),
            connections: spec.connections.max(1),
            window: if spec.new_connection_per_request {
                1
            } else {
                spec.window.max(1)
            },
            mode: if spec.new_connection_per_request {
                "connection-per-request".into()
            } else {
                "persistent".into()
            },
            target_rate: spec.rate,
            elapsed_secs: secs,
            client_certificate: spec.tls.client_auth_cert_resolver.has_certs(),
            attempted: s.sent + s.not_sent,
            sent: s.sent,
            answered: s.answered,
            provisional: s.provisional,
            rate: s.answered as f64 / secs,
            responses: s.responses,
            diagnostics: s.diagnostics,
            retry_after: s.retry_after,
            latency_ms: Percentiles::of(&s.latency_us),
            handshakes: s.handshakes,
            handshake_rate: s.handshakes as f64 / secs,
            handshake_ms: Percentiles::of(&s.handshake_us),
            errors: s.errors,
        }
    }

    /// Total errors of all kinds.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// How the run ended: every request answered, some, or none.
    pub fn outcome(&self) -> Outcome {
        if self.attempted > 0 && self.answered == 0 {
            Outcome::NothingAnswered
        } else if self.error_count() == 0 && self.answered == self.attempted {
            Outcome::Complete
        } else {
            Outcome::Partial
        }
    }

    /// What the summary explains beyond the counts (the 503s of a rate limit, refused connections, a missing
    /// client certificate), as printed after `note`.
    pub fn notes(&self) -> Vec<String> {
        self.explained().into_iter().map(|(_, text)| text).collect()
    }

    /// The lines of `load --json` ([`crate::report`]): `requests` (PASS when every request was answered and
    /// nothing failed, FAIL otherwise), then one line per note: `rate-limit` (WARN), `connect` (FAIL),
    /// `client-cert` (WARN).
    pub fn lines(&self) -> Vec<Line> {
        let unanswered = self.attempted.saturating_sub(self.answered);
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        let counts = format!(
            "attempted {}, answered {}, unanswered {unanswered}, errors: {}",
            self.attempted,
            self.answered,
            or_none(&errors)
        );
        let requests = match self.outcome() {
            Outcome::Complete => Line::pass("requests", counts),
            Outcome::Partial => Line::new(
                Status::Fail,
                "requests",
                counts,
                Some(
                    "the errors say what failed; for a slow server raise --timeout-ms or lower --rate and --window"
                        .to_owned(),
                ),
            ),
            Outcome::NothingAnswered => Line::new(
                Status::Fail,
                "requests",
                counts,
                Some(format!(
                    "check that a SIP-over-TLS server listens on {} and accepts the client certificate (its log says why it refused)",
                    self.target
                )),
            ),
        };
        std::iter::once(requests)
            .chain(self.explained().into_iter().map(|(line, _)| line))
            .collect()
    }

    /// The 503s, told apart by what they carry: `Retry-After: 1` without ms-diagnostics is an edgesim Edge's rate
    /// limit, per connection (`limits.max_requests_per_sec`) or per discovered partner
    /// (DiscoveredPartnerStandardRate), whose answers are the same; `Retry-After: 5`, the calls one connection
    /// holds; ms-diagnostics 1090, a pool member out of service; anything else is not an edgesim limit.
    fn unavailable_notes(&self) -> Vec<(Line, String)> {
        let mut notes = Vec::new();
        let unavailable = self.count("503");
        if unavailable == 0 {
            return notes;
        }
        let out_of_service = self.diagnostics.get("503 1090").copied().unwrap_or(0);
        let retry = |secs: &str| self.retry_after.get(secs).copied().unwrap_or(0);
        // A pool member's 503 carries Retry-After: 30 with its 1090.
        let rate = retry("1");
        let calls = retry("5");
        let other = unavailable.saturating_sub(rate + calls + out_of_service);
        let mut note = |rule: &str, detail: String, fix: &str| {
            let text = format!("{detail}; {fix}.");
            notes.push((
                Line::new(Status::Warn, rule, detail, Some(fix.to_owned())),
                text,
            ));
        };
        if rate > 0 {
            note(
                "rate-limit",
                format!(
                    "503 ×{rate} with Retry-After: 1 and no ms-diagnostics: an edgesim Edge answers so past either \
                     of two rates, and its answers do not say which: limits.max_requests_per_sec, per connection \
                     (20 by default), or DiscoveredPartnerStandardRate, per discovered partner over all its \
                     connections (20 by default); the Edge's events and log say which (the partner's is \
                     0xc3e93e07 SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED)"
                ),
                "lower --rate; more --connections help only against limits.max_requests_per_sec, which the \
                 Edge's configuration can raise; against the partner's rate list the domain in \
                 [[allowed_domains]] or raise access_edge.discovered_partner_standard_rate",
            );
        }
        if calls > 0 {
            note(
                "call-limit",
                format!(
                    "503 ×{calls} with Retry-After: 5: an edgesim Edge answers so when one connection already holds \
                     1024 calls"
                ),
                "end the calls (ACK every final response, BYE answered calls), or spread them over more \
                 --connections",
            );
        }
        if out_of_service > 0 {
            note(
                "pool",
                format!(
                    "503 ×{out_of_service} with ms-diagnostics 1090: the Edge pool member is switched out of \
                     service (fault mode 503)"
                ),
                "point --target at another member, or switch this one back to accept",
            );
        }
        if other > 0 {
            let after: Vec<String> = self
                .retry_after
                .iter()
                // The limits' own Retry-After values are counted above (a pool member's 30 with its 1090).
                .filter(|(secs, _)| match secs.as_str() {
                    "1" | "5" => false,
                    "30" => out_of_service == 0,
                    _ => true,
                })
                .map(|(secs, n)| match secs.as_str() {
                    "none" => format!("no Retry-After ×{n}"),
                    s => format!("Retry-After: {s} ×{n}"),
                })
                .collect();
            note(
                "unavailable",
                format!(
                    "503 ×{other} ({}): not one of an edgesim Edge's limits (they carry Retry-After: 1 or 5, or \
                     ms-diagnostics 1090)",
                    after.join(", ")
                ),
                "see the server's own log for why it was unavailable",
            );
        }
        notes
    }

    /// Each note as a line and as the text printed for people (the same words).
    fn explained(&self) -> Vec<(Line, String)> {
        let mut notes = Vec::new();
        notes.extend(self.unavailable_notes());
        if let Some(n) = self.errors.get("connect: connection refused") {
            let detail = format!(
                "{n} connection(s) refused: nothing listens on {}",
                self.target
            );
            let text =
                format!("{detail} (is `edgesim serve` running, with this --listen address?).");
            let fix = format!(
                "start `edgesim serve` with --listen {}, or give --target the address it listens on",
                self.target
            );
            notes.push((Line::new(Status::Fail, "connect", detail, Some(fix)), text));
        }
        if !self.client_certificate && self.error_count() > 0 {
            let detail = "no client certificate was presented; an Edge with tls.client_cert = \"required\" (the \
                          default) refuses such a handshake";
            let fix = "pass --lab-cert-cn NAME (issued from the lab CA in --ca-dir) or --cert FILE --key FILE";
            notes.push((
                Line::new(Status::Warn, "client-cert", detail, Some(fix.to_owned())),
                format!("{detail}: {fix}."),
            ));
        }
        notes
    }

    /// Final responses with this status (or `echo`).
    pub fn count(&self, status: &str) -> u64 {
        self.responses.get(status).copied().unwrap_or(0)
    }

    /// The human summary.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let rate = self
            .target_rate
            .map_or("as fast as possible".to_owned(), |r| format!("{r:.0}/s"));
        let _ = writeln!(
            o,
            "edgesim load → {} ({}, {} connection(s), window {}, {}, {})",
            self.target, self.method, self.connections, self.window, self.mode, rate
        );
        let _ = writeln!(
            o,
            "  requests    attempted {}, sent {}, answered {}, provisional {}, unanswered {}",
            self.attempted,
            self.sent,
            self.answered,
            self.provisional,
            self.attempted.saturating_sub(self.answered)
        );
        let _ = writeln!(
            o,
            "  duration    {:.2} s, {:.0} answers/s",
            self.elapsed_secs, self.rate
        );
        let responses: Vec<String> = self
            .responses
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        let _ = writeln!(o, "  responses   {}", or_none(&responses));
        let diags: Vec<String> = self
            .diagnostics
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        let _ = writeln!(o, "  ms-diag     {}", or_none(&diags));
        let l = self.latency_ms;
        let _ = writeln!(
            o,
            "  latency     p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.p50, l.p90, l.p99, l.max
        );
        let h = self.handshake_ms;
        let _ = writeln!(
            o,
            "  handshakes  {} ({:.0}/s), p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.handshakes, self.handshake_rate, h.p50, h.p99, h.max
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect();
        let _ = writeln!(o, "  errors      {}", or_none(&errors));
        for note in self.notes() {
            o.push_str(&wrap(&note, "  note        ", "              ", 100));
        }
        o
    }
}

/// How a run ended (the exit status of `edgesim load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every request was answered (whatever the status) and nothing failed.
    Complete,
    /// Some requests were answered, others failed or went unanswered.
    Partial,
    /// Requests were attempted and none was answered (nothing listening, every handshake refused …).
    NothingAnswered,
}

/// `text` wrapped at spaces to `cols`, the first line after `first`, the others after `rest`.
fn wrap(text: &str, first: &str, rest: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > cols {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> LoadReport {
        LoadReport {
            target: "127.0.0.1:5061".into(),
            method: "OPTIONS".into(),
            connections: 1,
            window: 1,
            mode: "persistent".into(),
            target_rate: None,
            elapsed_secs: 1.0,
            client_certificate: true,
            attempted: 4,
            sent: 4,
            answered: 4,
            provisional: 0,
            rate: 4.0,
            responses: BTreeMap::from([("200".into(), 1), ("503".into(), 3)]),
            diagnostics: BTreeMap::new(),
            retry_after: BTreeMap::from([("1".into(), 3)]),
            latency_ms: Percentiles::default(),
            handshakes: 1,
            handshake_rate: 1.0,
            handshake_ms: Percentiles::default(),
            errors: BTreeMap::new(),
        }
    }

    const RATE_DETAIL: &str = "503 ×3 with Retry-After: 1 and no ms-diagnostics: an edgesim Edge answers so past \
        either of two rates, and its answers do not say which: limits.max_requests_per_sec, per connection (20 by \
        default), or DiscoveredPartnerStandardRate, per discovered partner over all its connections (20 by \
        default); the Edge's events and log say which (the partner's is 0xc3e93e07 \
        SIPPROXY_E_EPROUTING_MSG_DISCOVERED_PARTNER_THROTTLED)";
    const RATE_FIX: &str = "lower --rate; more --connections help only against limits.max_requests_per_sec, which \
        the Edge's configuration can raise; against the partner's rate list the domain in [[allowed_domains]] or \
        raise access_edge.discovered_partner_standard_rate";

    #[test]
    fn a_503_with_retry_after_1_names_both_rates_it_may_come_from_in_the_same_words() {
        let r = report();
        let lines = r.lines();
        assert_eq!(
            lines[0],
            Line::pass(
                "requests",
                "attempted 4, answered 4, unanswered 0, errors: none"
            )
        );
        assert_eq!(
            lines[1],
            Line::new(
                Status::Warn,
                "rate-limit",
                RATE_DETAIL,
                Some(RATE_FIX.to_owned())
            )
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(r.notes(), vec![format!("{RATE_DETAIL}; {RATE_FIX}.")]);
    }

    #[test]
    fn other_503s_are_told_apart_by_what_they_carry() {
        let mut r = report();
        r.responses = BTreeMap::from([("503".into(), 10)]);
        // 3 rate limits, 2 at the calls limit, 4 from a pool member out of service (Retry-After 30 with its
        // 1090), 1 bare 503 of some other server.
        r.retry_after = BTreeMap::from([
            ("1".into(), 3),
            ("5".into(), 2),
            ("30".into(), 4),
            ("none".into(), 1),
        ]);
        r.diagnostics = BTreeMap::from([("503 1090".into(), 4)]);
        let notes: Vec<(String, String, Option<String>)> = r.lines()[1..]
            .iter()
            .map(|l| (l.rule.clone(), l.detail.clone(), l.fix.clone()))
            .collect();
        assert_eq!(
            notes,
            vec![
                ("rate-limit".into(), RATE_DETAIL.into(), Some(RATE_FIX.into())),
                (
                    "call-limit".into(),
                    "503 ×2 with Retry-After: 5: an edgesim Edge answers so when one connection already holds 1024 calls".into(),
                    Some("end the calls (ACK every final response, BYE answered calls), or spread them over more --connections".into()),
                ),
                (
                    "pool".into(),
                    "503 ×4 with ms-diagnostics 1090: the Edge pool member is switched out of service (fault mode 503)".into(),
                    Some("point --target at another member, or switch this one back to accept".into()),
                ),
                (
                    "unavailable".into(),
                    "503 ×1 (no Retry-After ×1): not one of an edgesim Edge's limits (they carry Retry-After: 1 or 5, or ms-diagnostics 1090)".into(),
                    Some("see the server's own log for why it was unavailable".into()),
                ),
            ]
        );
    }

    #[test]
    fn refused_connections_fail_the_run_with_the_address_to_fix() {
        let mut r = report();
        r.responses.clear();
        r.retry_after.clear();
        r.answered = 0;
        r.sent = 0;
        r.errors.insert("connect: connection refused".into(), 4);
        let lines = r.lines();
        assert_eq!(r.outcome(), Outcome::NothingAnswered);
        assert_eq!(
            lines[0].detail,
            "attempted 4, answered 0, unanswered 4, errors: connect: connection refused ×4"
        );
        assert_eq!(lines[0].status, Status::Fail);
        assert_eq!(
            lines[1],
            Line::new(
                Status::Fail,
                "connect",
                "4 connection(s) refused: nothing listens on 127.0.0.1:5061",
                Some(
                    "start `edgesim serve` with --listen 127.0.0.1:5061, or give --target the address it listens on"
                        .into()
                ),
            )
        );
        assert_eq!(
            r.notes(),
            vec![
                "4 connection(s) refused: nothing listens on 127.0.0.1:5061 (is `edgesim serve` running, with \
                 this --listen address?)."
                    .to_owned()
            ]
        );
    }
}
