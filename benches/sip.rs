//! Parse + build-504 + serialize of a typical Expressway INVITE (the Edge's hot path when a
//! federated call cannot be routed: every request is parsed and answered with a 504).
//!
//! `SIP_BENCH_ITERS=N cargo bench --bench sip` skips criterion and runs the full workload N
//! times in a plain loop, for `valgrind --tool=callgrind` instruction counts (noise-free on a
//! shared machine): instructions per iteration = (Ir(N) - Ir(0)) / N.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use edgesim::sip::{Message, ResponseBuilder};
use std::hint::black_box;

const FIXTURE: &str = "tests/fixtures/sip/expressway-invite.sip";
/// What the Edge puts in a 504 for a peer domain without federation SRV record.
const DIAG: &str = "1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\";source=\"sip.skype.lab\"";

/// The 504 exactly as the Edge builds it: received / ms-received-port / ms-received-cid on the
/// top Via, rport filled, To tag, ms-diagnostics and Server, Content-Length last.
fn edge_504<'a>(m: &'a Message) -> ResponseBuilder<'a> {
    ResponseBuilder::from_request(m, 504, "Server time-out")
        .fill_rport(25002)
        .top_via_param("received", "10.48.36.47")
        .top_via_param("ms-received-port", "25002")
        .top_via_param("ms-received-cid", "6DA00")
        .to_tag("C65A7B0A8766A5F1D386474833D07882")
        .header("ms-diagnostics", DIAG)
        .header("Server", "RTC/6.0")
}

/// The measured unit: parse the request, build the 504, serialize it into wire bytes.
fn parse_build504_serialize(raw: &Bytes) -> Bytes {
    let m = Message::parse(raw.clone()).unwrap();
    edge_504(&m).build()
}

fn bench(c: &mut Criterion) {
    let raw = Bytes::from(std::fs::read(FIXTURE).unwrap());
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_build504_serialize", |b| {
        b.iter(|| parse_build504_serialize(black_box(&raw)))
    });
    g.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(raw.clone())).unwrap())
    });
    let m = Message::parse(raw.clone()).unwrap();
    g.bench_function("build504", |b| b.iter(|| edge_504(black_box(&m)).build()));
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("parse_build504_into_reused_buffer", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(raw.clone())).unwrap();
            buf.clear();
            edge_504(&m).build_into(&mut buf);
            buf.len()
        })
    });
    g.bench_function("parse_validate", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(raw.clone())).unwrap();
            m.validate().unwrap();
            m
        })
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(n) = std::env::var("SIP_BENCH_ITERS") {
        let raw = Bytes::from(std::fs::read(FIXTURE).unwrap());
        // SIP_BENCH_VALIDATE=1 adds validate() (what the Edge runs before answering).
        let validate = std::env::var_os("SIP_BENCH_VALIDATE").is_some();
        let mut total = 0usize;
        for _ in 0..n.parse::<usize>().unwrap() {
            // One parse per iteration either way, so validate() = (with - without) / N.
            let out = if validate {
                let m = Message::parse(black_box(raw.clone())).unwrap();
                m.validate().unwrap();
                edge_504(&m).build()
            } else {
                parse_build504_serialize(black_box(&raw))
            };
            total += black_box(out).len();
        }
        println!("{total}");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
