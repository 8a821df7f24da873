//! Spans the sampler drops (`always_off`): the facade against the bare stack with the same
//! sampler.

#![allow(missing_docs)]

mod common;

use common::Position;
use criterion::{criterion_group, criterion_main, Criterion};

fn spans_unsampled(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOff)
            .with_span_processor(common::discarding_processor()),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("span_not_sampled");
    common::facade_spans(&mut g, &telemetry, "facade", Position::Root);
    let sampler = opentelemetry_sdk::trace::Sampler::AlwaysOff;
    common::bare_spans(&mut g, sampler, "bare", &[Position::Root]);
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = spans_unsampled }
criterion_main!(benches);
