//! Spans the sampler drops (`always_off`): the facade against the bare stack with the same
//! sampler.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn unsampled(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOff)
            .with_span_processor(common::discarding_processor()),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("span_not_sampled");
    g.bench_function("facade/root/0 attrs", |b| {
        b.iter(|| {
            let guard = telemetry.trace("op");
            black_box(&guard);
        })
    });
    g.bench_function("facade/root/3 attrs", |b| {
        b.iter(|| {
            let guard = telemetry.trace_with("op", &[("a", 1), ("b", 2), ("c", 3)]);
            black_box(&guard);
        })
    });
    let (bare, _provider) = common::bare_stack(opentelemetry_sdk::trace::Sampler::AlwaysOff);
    tracing::subscriber::with_default(bare, || {
        g.bench_function("bare/root/0 attrs", |b| {
            b.iter(|| {
                let guard = tracing::info_span!("op").entered();
                black_box(&guard);
            })
        });
        g.bench_function("bare/root/3 attrs", |b| {
            b.iter(|| {
                let guard = tracing::info_span!("op", a = 1, b = 2, c = 3).entered();
                black_box(&guard);
            })
        });
    });
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = unsampled }
criterion_main!(benches);
