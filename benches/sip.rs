//! Parse + build-504 + serialize of a typical Expressway INVITE.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgesim::sip::{Message, ResponseBuilder};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let raw = Bytes::from(std::fs::read("tests/fixtures/sip/expressway-invite.sip").unwrap());
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(raw.clone())).unwrap())
    });
    g.bench_function("parse_build504_serialize", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(raw.clone())).unwrap();
            let resp = ResponseBuilder::from_request(&m, 504, "Server time-out")
                .top_via_param("received", "10.48.36.47")
                .top_via_param("ms-received-port", "25002")
                .top_via_param("ms-received-cid", "6DA00")
                .to_tag("C65A7B0A8766A5F1D386474833D07882")
                .header("Server", "RTC/6.0")
                .build();
            (m.to_bytes(), resp)
        })
    });
    let m = Message::parse(raw.clone()).unwrap();
    g.bench_function("build504", |b| {
        b.iter(|| {
            ResponseBuilder::from_request(black_box(&m), 504, "Server time-out")
                .top_via_param("received", "10.48.36.47")
                .to_tag("C65A7B0A8766A5F1D386474833D07882")
                .header("Server", "RTC/6.0")
                .build()
        })
    });
    let mut buf = Vec::with_capacity(4096);
    g.bench_function("parse_build504_into_reused_buffer", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(raw.clone())).unwrap();
            buf.clear();
            ResponseBuilder::from_request(&m, 504, "Server time-out")
                .top_via_param("received", "10.48.36.47")
                .top_via_param("ms-received-port", "25002")
                .top_via_param("ms-received-cid", "6DA00")
                .to_tag("C65A7B0A8766A5F1D386474833D07882")
                .header("Server", "RTC/6.0")
                .build_into(&mut buf);
            black_box(m.to_bytes());
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
criterion_main!(benches);
