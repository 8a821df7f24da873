//! The facade against the hand-wired bare stack, measured in one run.
//!
//! The bare stack is tracing + tracing-subscriber + tracing-opentelemetry + opentelemetry_sdk as
//! the tracing-opentelemetry docs set it up, installed as the scoped default dispatcher; the
//! facade is installed globally with a JSON log file in a temporary directory. Neither has an
//! exporter, so export cost is out; the facade's span records are written to its file.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use tracing_subscriber::layer::SubscriberExt;

fn bare_subscriber() -> (
    impl tracing::Subscriber + Send + Sync,
    opentelemetry_sdk::trace::SdkTracerProvider,
) {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("bare");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (subscriber, provider)
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.path().join("bench.log")),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");

    let mut g = c.benchmark_group("span");
    g.bench_function("facade trace() + JSON span record", |b| {
        b.iter(|| drop(black_box(telemetry.trace("op"))))
    });
    g.bench_function("facade trace_with 3 attrs + JSON span record", |b| {
        b.iter(|| {
            drop(black_box(
                telemetry.trace_with("op", &[("a", 1), ("b", 2), ("c", 3)]),
            ))
        })
    });
    let (bare, _provider) = bare_subscriber();
    tracing::subscriber::with_default(bare, || {
        g.bench_function("bare tracing-opentelemetry span", |b| {
            b.iter(|| drop(black_box(tracing::info_span!("op").entered())))
        });
    });
    g.finish();

    let mut g = c.benchmark_group("counter");
    let meter_provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
    let held = opentelemetry::metrics::MeterProvider::meter(&meter_provider, "bare")
        .u64_counter("held")
        .build();
    let attrs = [
        KeyValue::new("method", "POST"),
        KeyValue::new("status", "200"),
        KeyValue::new("route", "/api"),
    ];
    g.bench_function("facade counter(name).add, 3 attrs", |b| {
        b.iter(|| {
            telemetry.counter("requests_total").add(
                1,
                &[("method", "POST"), ("status", "200"), ("route", "/api")],
            )
        })
    });
    g.bench_function("held SDK counter add, 3 attrs", |b| {
        b.iter(|| held.add(1, &attrs))
    });
    g.finish();

    let mut g = c.benchmark_group("log");
    let span = telemetry.trace("request");
    g.bench_function("facade log_info in span, JSON file", |b| {
        b.iter(|| telemetry.log_info_with("request handled", &[("status", 200)]))
    });
    drop(span);
    let (writer, _wg) =
        tracing_appender::non_blocking(std::fs::File::create(dir.path().join("bare.log")).unwrap());
    let json = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    tracing::subscriber::with_default(json, || {
        let s = tracing::info_span!("request").entered();
        g.bench_function("tracing-subscriber JSON line, no ids", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
        drop(s);
    });
    g.finish();
}

criterion_group! {
    name = overhead;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(overhead);
