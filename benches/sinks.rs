//! What one Edge decision costs its sinks (issue 13): the log record rendered in the SfB trace layout (once,
//! into a reused buffer, as the Edge does; and the allocating `render` for comparison) and the decision event
//! serialised as its JSON line (into the writer's reused batch buffer, and `to_json_line` for comparison).
//!
//! `SINKS_BENCH_ITERS=N cargo bench --bench sinks` skips criterion and runs record + event N times in a plain
//! loop, for `valgrind --tool=callgrind` instruction counts (noise-free on a shared machine): instructions per
//! decision = (Ir(N) - Ir(0)) / N.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group};
use edgesim::diagnostics::{
    DecisionEvent, EVENT_SCHEMA, LogContext, LogRecord, ResultCode, VerdictKind,
};
use std::hint::black_box;

/// The seed's 1009 record: an INVITE from a domain whose SRV target is outside it.
fn record() -> LogRecord {
    LogRecord::new(
        ResultCode::NO_SRV_MATCH,
        "INVITE sip:stejanss@skype.lab SIP/2.0",
        "f1b3ad5d-183b-4632-b210-c2f9bec71960",
        "2066245576 INVITE",
        "vcse.steven.lab:25002",
        vec![
            ("domain".into(), "acano.steven.lab".into()),
            ("fqdn1".into(), "vcse.steven.lab:5061".into()),
        ],
    )
}

fn ctx() -> LogContext {
    LogContext {
        edge_host: "sfvedge".into(),
        pid: 0x0584,
        tid: 0x0A44,
        timestamp: time::macros::datetime!(2017-03-02 07:10:46.230 UTC),
        seq: 0x773E,
        record_id: 156659184,
    }
}

/// Its event, as the Edge publishes it.
fn event(r: &LogRecord) -> DecisionEvent {
    DecisionEvent {
        schema: EVENT_SCHEMA,
        time: time::macros::datetime!(2017-03-02 07:10:46.230 UTC),
        remote: "10.48.36.47:25002".into(),
        peer_cert: Some("vcse.steven.lab".into()),
        method: Some("INVITE".into()),
        call_id: Some(r.call_id.clone()),
        domain: Some("acano.steven.lab".into()),
        verdict: VerdictKind::Reject,
        status: Some(504),
        ms_diagnostics_code: Some(1009),
        ms_diagnostics: Some("1009;reason=\"The domain of the message resolved by DNS SRV but none of the FQDNs is in the same domain\";domain=\"acano.steven.lab\";fqdn1=\"vcse.steven.lab:5061\";source=\"sip.skype.lab\"".into()),
        result_code: Some(r.result_code.render()),
        log_data: r.data.clone(),
        explanation: Some("acano.steven.lab publishes _sipfederationtls._tcp.acano.steven.lab → vcse.steven.lab:5061, which is not in acano.steven.lab; publish a target in the domain".into()),
        message_trust: None,
        partner_type: None,
        event: "decision",
    }
}

/// One decision's sink work as the Edge does it: the record into a reused string, the event into a reused
/// byte buffer.
fn both(
    r: &LogRecord,
    c: &LogContext,
    e: &DecisionEvent,
    text: &mut String,
    json: &mut Vec<u8>,
) -> usize {
    text.clear();
    r.render_into(c, text);
    json.clear();
    serde_json::to_writer(&mut *json, e).unwrap();
    json.push(b'\n');
    text.len() + json.len()
}

fn bench(c: &mut Criterion) {
    let (r, cx) = (record(), ctx());
    let e = event(&r);
    let mut g = c.benchmark_group("sinks");
    g.throughput(Throughput::Elements(1));
    let mut text = String::with_capacity(1024);
    let mut json = Vec::with_capacity(2048);
    g.bench_function("record_render_into_reused", |b| {
        b.iter(|| {
            text.clear();
            black_box(&r).render_into(&cx, &mut text);
            text.len()
        })
    });
    g.bench_function("record_render", |b| b.iter(|| black_box(&r).render(&cx)));
    g.bench_function("event_json_into_reused", |b| {
        b.iter(|| {
            json.clear();
            serde_json::to_writer(&mut json, black_box(&e)).unwrap();
            json.len()
        })
    });
    g.bench_function("event_to_json_line", |b| {
        b.iter(|| black_box(&e).to_json_line().unwrap())
    });
    g.bench_function("record_and_event", |b| {
        b.iter(|| both(black_box(&r), &cx, black_box(&e), &mut text, &mut json))
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(n) = std::env::var("SINKS_BENCH_ITERS") {
        let (r, cx) = (record(), ctx());
        let e = event(&r);
        let (mut text, mut json) = (String::with_capacity(1024), Vec::with_capacity(2048));
        let mut total = 0usize;
        for _ in 0..n.parse::<usize>().unwrap() {
            total += both(black_box(&r), &cx, black_box(&e), &mut text, &mut json);
        }
        println!("{total}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
