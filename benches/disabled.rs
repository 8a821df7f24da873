//! Every recording call with telemetry disabled (`OTEL_SDK_DISABLED=true`): target ≤ 5 ns.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn disabled(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(unitel::TelemetryConfig::new().with_disabled(true))
        .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let counter = telemetry.counter("requests_total");
    let bound = counter.bind(&[("method", "POST")]);
    let histogram = telemetry.histogram("request_duration_ms");
    let mut g = c.benchmark_group("disabled");
    g.bench_function("trace()", |b| {
        b.iter(|| {
            let guard = telemetry.trace("op");
            black_box(&guard);
        })
    });
    g.bench_function("trace_with(3 attrs)", |b| {
        b.iter(|| {
            let guard = telemetry.trace_with("op", &[("a", 1), ("b", 2), ("c", 3)]);
            black_box(&guard);
        })
    });
    g.bench_function("counter(name).add, 3 attrs", |b| {
        b.iter(|| {
            telemetry.counter("requests_total").add(
                1,
                &[("method", "POST"), ("status", "200"), ("route", "/api")],
            )
        })
    });
    g.bench_function("held counter add", |b| {
        b.iter(|| counter.add(black_box(1), &[("method", "POST")]))
    });
    g.bench_function("bound counter add", |b| b.iter(|| bound.add(black_box(1))));
    g.bench_function("histogram record", |b| {
        b.iter(|| histogram.record(black_box(1.5), ()))
    });
    g.bench_function("log_info", |b| {
        b.iter(|| telemetry.log_info(black_box("request handled")))
    });
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = disabled }
criterion_main!(benches);
