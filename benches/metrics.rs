//! Metric recording with a real reader (Prometheus on both sides): the facade's instrument
//! looked up by name on every call against a held SDK instrument, and a pre-bound handle
//! against the SDK's own bound counter.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;

fn metrics(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(
        // `from_env`: `OTEL_METRICS_EXEMPLAR_FILTER=always_off` runs the same cases without
        // exemplars (the "histogram in a span" group says which).
        unitel::TelemetryConfig::from_env()
            .with_console(false)
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");

    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry)
        .build()
        .expect("reader");
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build();
    let meter = provider.meter("bare");
    let held = meter.u64_counter("requests_total").build();
    let held_histogram = meter.f64_histogram("request_duration_ms").build();
    let held_gauge = meter.f64_gauge("temperature").build();

    let mut g = c.benchmark_group("counter");
    g.bench_function("facade counter(name).add/3 attrs", |b| {
        b.iter(|| {
            telemetry.counter("requests_total").add(
                black_box(1),
                &[("method", "POST"), ("status", "200"), ("route", "/api")],
            )
        })
    });
    g.bench_function("held SDK counter add/3 attrs", |b| {
        b.iter(|| {
            held.add(
                black_box(1),
                &[
                    KeyValue::new("method", "POST"),
                    KeyValue::new("status", "200"),
                    KeyValue::new("route", "/api"),
                ],
            )
        })
    });
    g.bench_function("facade counter(name).add/0 attrs", |b| {
        b.iter(|| telemetry.counter("plain_total").add(black_box(1), ()))
    });
    g.bench_function("held SDK counter add/0 attrs", |b| {
        b.iter(|| held.add(black_box(1), &[]))
    });
    let handle = telemetry.counter("handle_total");
    g.bench_function("facade held handle add/0 attrs", |b| {
        b.iter(|| handle.add(black_box(1), ()))
    });
    let bound = telemetry
        .counter("bound_total")
        .bind(&[("method", "POST"), ("status", "200")]);
    g.bench_function("facade bound counter add", |b| {
        b.iter(|| bound.add(black_box(1)))
    });
    // The baseline for the line above: the SDK's own bound counter, same two attributes.
    let sdk_bound = held.bind(&[
        KeyValue::new("method", "POST"),
        KeyValue::new("status", "200"),
    ]);
    g.bench_function("SDK bound counter add", |b| {
        b.iter(|| sdk_bound.add(black_box(1)))
    });
    g.finish();

    let mut g = c.benchmark_group("histogram");
    g.bench_function("facade histogram(name).record/1 attr", |b| {
        b.iter(|| {
            telemetry
                .histogram("request_duration_ms")
                .record(black_box(150.0), &[("endpoint", "/api")])
        })
    });
    g.bench_function("held SDK histogram record/1 attr", |b| {
        b.iter(|| held_histogram.record(black_box(150.0), &[KeyValue::new("endpoint", "/api")]))
    });
    g.finish();

    // Inside a sampled span a facade measurement also keeps an exemplar (the span's ids, the
    // value, the time); the held SDK histogram keeps none. Run once as is and once with
    // OTEL_METRICS_EXEMPLAR_FILTER=always_off: each run's ratio to the SDK is the comparison.
    let exemplars = match std::env::var("OTEL_METRICS_EXEMPLAR_FILTER").as_deref() {
        Ok("always_off") => "exemplars off",
        _ => "exemplars on",
    };
    let mut g = c.benchmark_group("histogram in a span");
    {
        let _span = telemetry.trace("request");
        let histogram = telemetry.histogram("latency_in_span_ms");
        g.bench_function(
            format!("facade held histogram record/1 attr, {exemplars}"),
            |b| b.iter(|| histogram.record(black_box(150.0), &[("endpoint", "/api")])),
        );
        g.bench_function("held SDK histogram record/1 attr", |b| {
            b.iter(|| held_histogram.record(black_box(150.0), &[KeyValue::new("endpoint", "/api")]))
        });
        let counter = telemetry.counter("requests_in_span");
        g.bench_function(
            format!("facade held counter add/1 attr, {exemplars}"),
            |b| b.iter(|| counter.add(black_box(1), &[("endpoint", "/api")])),
        );
        g.bench_function("held SDK counter add/1 attr", |b| {
            b.iter(|| held.add(black_box(1), &[KeyValue::new("endpoint", "/api")]))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("gauge");
    g.bench_function("facade gauge(name).set", |b| {
        b.iter(|| telemetry.gauge("temperature").set(black_box(21.5), ()))
    });
    g.bench_function("held SDK gauge record", |b| {
        b.iter(|| held_gauge.record(black_box(21.5), &[]))
    });
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = metrics }
criterion_main!(benches);
