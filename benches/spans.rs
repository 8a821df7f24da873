//! Spans exported through a batch processor with a discarding exporter: the facade's `trace()`
//! against the same span through the bare tracing-opentelemetry stack. No JSON file here; see
//! `spans_file` for the span record's cost.

#![allow(missing_docs)]

mod common;

use common::Position;
use criterion::{criterion_group, criterion_main, Criterion};

fn spans(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_span_processor(common::discarding_processor()),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("span");
    common::facade_spans(&mut g, &telemetry, "facade", Position::Root);
    common::facade_spans(&mut g, &telemetry, "facade", Position::Child);
    let sampler = opentelemetry_sdk::trace::Sampler::AlwaysOn;
    common::bare_spans(&mut g, sampler, "bare", &[Position::Root, Position::Child]);
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = spans }
criterion_main!(benches);
