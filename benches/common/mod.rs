//! What every bench shares: the hand-wired bare stack, an exporter that discards, and the
//! criterion settings.
//!
//! The bare stack is tracing + tracing-subscriber + tracing-opentelemetry + opentelemetry_sdk,
//! set up as the tracing-opentelemetry docs show, with the same batch span processor and the
//! same discarding exporter as the facade, so export cost is in and the network is out.

#![allow(dead_code, missing_docs, unreachable_pub)]

use criterion::Criterion;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

/// Receives batches and drops them.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}

/// The batch processor both stacks export through.
pub fn discarding_processor() -> BatchSpanProcessor {
    BatchSpanProcessor::builder(Discard).build()
}

/// The bare stack: a tracing subscriber with tracing-opentelemetry over an SDK provider.
pub fn bare_stack(sampler: Sampler) -> (impl tracing::Subscriber + Send + Sync, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(discarding_processor())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bare")));
    (subscriber, provider)
}

pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}
