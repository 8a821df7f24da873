//! A correlated JSON log line inside a span, into the JSON log file (tracing-appender's
//! non-blocking writer), against `tracing::info!` through tracing-subscriber's JSON formatter
//! into the same kind of writer, without ids.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tracing_subscriber::layer::SubscriberExt;

fn logs(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.path().join("facade.log")),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("json_log_line");
    {
        let _span = telemetry.trace("request");
        g.bench_function("facade log_info_with in span (correlated)", |b| {
            b.iter(|| telemetry.log_info_with(black_box("request handled"), &[("status", 200)]))
        });
        g.bench_function("facade tracing::info! in span (correlated)", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
    }
    let file = std::fs::File::create(dir.path().join("bare.log")).expect("file");
    let (writer, _writer_guard) = tracing_appender::non_blocking(file);
    let bare = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    tracing::subscriber::with_default(bare, || {
        let _span = tracing::info_span!("request").entered();
        g.bench_function("tracing-subscriber JSON line in span (no ids)", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
    });
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = logs }
criterion_main!(benches);
