//! The extension points' trait objects: span processors and metric readers of the
//! application's own, behind a pointer so the configuration can hold any number of them.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, Pipeline, Temporality};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A span processor added with [`TelemetryConfig::with_span_processor`](super::TelemetryConfig::with_span_processor).
pub(crate) struct BoxedSpanProcessor(pub(crate) Box<dyn SpanProcessor>);

impl std::fmt::Debug for BoxedSpanProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl SpanProcessor for BoxedSpanProcessor {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx)
    }
    fn on_end(&self, mut span: SpanData) {
        // The application's processor sees each attribute key once, as the exporters do.
        crate::attributes::dedup_span_keys(&mut span);
        self.0.on_end(span)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.0.set_resource(resource)
    }
}

/// A metric reader added with [`TelemetryConfig::with_metric_reader`](super::TelemetryConfig::with_metric_reader),
/// shared with the application.
#[derive(Debug)]
pub(crate) struct SharedMetricReader(pub(crate) Arc<dyn MetricReader>);

impl MetricReader for SharedMetricReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut opentelemetry_sdk::metrics::data::ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}
