//! The facade's span with its JSON span record written to the log file (and exported through
//! the discarding batch processor), against the bare stack's span without any record.

#![allow(missing_docs)]

mod common;

use common::Position;
use criterion::{criterion_group, criterion_main, Criterion};

fn spans_file(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_log_file(dir.path().join("bench.log"))
            .with_span_processor(common::discarding_processor()),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("span_with_json_record");
    common::facade_spans(&mut g, &telemetry, "facade", Position::Root);
    let sampler = opentelemetry_sdk::trace::Sampler::AlwaysOn;
    common::bare_spans(&mut g, sampler, "bare (no record)", &[Position::Root]);
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = spans_file }
criterion_main!(benches);
