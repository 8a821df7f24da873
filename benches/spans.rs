//! Spans exported through a batch processor with a discarding exporter: the facade's `trace()`
//! and a `#[tracing::instrument]` span through unitel's subscriber, against the same spans
//! through the bare tracing-opentelemetry stack, with its default extras (`bare`) and without
//! them (`bare lean`). No JSON file here; see `spans_file` for the span record's cost.

#![allow(missing_docs)]

mod common;

use common::{Bare, Position};
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
    // `#[tracing::instrument]` spans through unitel's own (global) subscriber.
    common::instrumented_spans(&mut g, "unitel tracing", Position::Root);
    common::instrumented_spans(&mut g, "unitel tracing", Position::Child);
    let sampler = || opentelemetry_sdk::trace::Sampler::AlwaysOn;
    let both = [Position::Root, Position::Child];
    for bare in [Bare::Default, Bare::Lean] {
        common::bare_spans_as(&mut g, sampler(), bare, bare.label(), &both);
        common::with_bare(sampler(), bare, || {
            for position in both {
                common::instrumented_spans(&mut g, bare.label(), position);
            }
        });
    }
    // The floor: a registry with the least an OpenTelemetry layer must do (common::floor),
    // and a registry with no layer at all.
    let (floor, _floor_provider) = common::floor::stack(sampler());
    tracing::subscriber::with_default(floor, || {
        for position in both {
            common::instrumented_spans(&mut g, "floor layer", position);
        }
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        for position in both {
            common::instrumented_spans(&mut g, "registry only", position);
        }
    });
    // The SDK alone, no `tracing`: start a span under the current context, attach it, end
    // it; the work the facade's span cannot avoid.
    let sdk = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(sampler())
        .with_span_processor(common::discarding_processor())
        .build();
    common::sdk_spans(&mut g, &sdk, "sdk only", &both);
    g.finish();
}

criterion_group! { name = benches; config = common::criterion(); targets = spans }
criterion_main!(benches);
