//! One telemetry facade for Rust services and background workers: spans, metrics and logs that
//! carry the same trace id.
//!
//! # Quick start
//!
//! ```no_run
//! fn main() -> Result<(), unitel::Error> {
//!     // Once, at start-up. Keep the guard: dropping it flushes everything.
//!     let _guard = unitel::configure_telemetry(
//!         unitel::TelemetryConfig::from_env()
//!             .with_service_name("orchestrator")
//!             .with_service_version("1.0.0")
//!             .with_environment("production")
//!             .with_log_file("logs/orchestrator.log"),
//!     )?;
//!
//!     // Per component: a cheap handle.
//!     let telemetry = unitel::get_telemetry("my_service");
//!     let _span = telemetry.trace("process_request");
//!     telemetry.log_info("Processing started"); // ... [trace:5f8a3b2c...] [span:abcd...]
//!     telemetry.counter("requests_total").add(1, &[("method", "POST")]);
//!     telemetry.histogram("request_duration_ms").record(150.0, &[("endpoint", "/api")]);
//!     Ok(())
//! }
//! ```
//!
//! # Concepts
//!
//! - **Configuration** — [`configure_telemetry`] takes a [`TelemetryConfig`] (the `OTEL_*`
//!   environment variables by the spec's rules, overridden by `with_*` calls) and returns a
//!   [`TelemetryGuard`] that flushes on drop within a bounded time.
//! - **Handles** — [`get_telemetry`] gives a [`UnifiedTelemetry`] for a component. Handles and
//!   instruments made before configuration start working once it runs.
//! - **Spans** — [`UnifiedTelemetry::trace`] starts a [`Span`] that is current until dropped;
//!   [`Span::instrument`] follows a future. They nest with `tracing` spans in both directions:
//!   `#[tracing::instrument]` inside a facade span is its child, and the other way round.
//!   [`TraceContext`] carries a trace to another thread, task or process.
//! - **Metrics** — [`Counter`], [`UpDownCounter`], [`Histogram`], [`Gauge`] and
//!   [`ObservableGauge`], cached per component and name. Bad values (NaN, infinities, negative
//!   histogram values) are dropped and counted in [`dropped`].
//! - **Correlated logs** — `log_info` and friends, and every `tracing` event (from your code
//!   and from libraries, `log` records included), carry the current trace and span ids: on
//!   the console as `[trace:<32 hex>] [span:<16 hex>]`, in the JSON log file as `trace_id` and
//!   `span_id`, next to one record per closed span (schema: `docs/log-format.md`).
//! - **Export** — OTLP push of traces, metrics and logs (http/protobuf, http/json, grpc) to any
//!   collector, on unitel's own runtime; Prometheus pull on `/metrics` or through
//!   [`prometheus_text`]. Every setting: `docs/configuration.md`.
//! - **The log file** — [`logfile`] reads the JSON log files back as typed records
//!   ([`logfile::read_records`]), rotated files included.
//! - **Extension points** — [`TelemetryConfig::with_span_processor`],
//!   [`TelemetryConfig::with_metric_reader`] and [`TelemetryConfig::with_json_sink`] add your own
//!   span processor, metric reader or JSON-line sink next to the configured exporters.
//! - **Testing** — [`testing::capture`] records everything in memory for assertions (built on
//!   those extension points).
//!
//! A `_with` method takes attributes ([`UnifiedTelemetry::trace_with`],
//! [`UnifiedTelemetry::log_info_with`]); instrument options go through `_with_options`
//! ([`UnifiedTelemetry::histogram_with_options`]).
//!
//! # Never in the way
//!
//! Recording calls never return errors, never panic and never block on the network. When
//! telemetry is disabled (`OTEL_SDK_DISABLED=true`), not yet configured or shut down, they
//! cost an atomic load and a branch.
//!
//! # Versions
//!
//! The crates unitel is built on are re-exported — [`opentelemetry`], [`opentelemetry_sdk`],
//! [`tracing`], [`tracing_opentelemetry`] — so your code can use exactly the same versions.
//!
//! # Features
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | *(core)* | spans, metrics, correlated console and JSON-file logs, the log-file reader, testing capture | always |
//! | `otlp` | OTLP push over http/protobuf, http/json and grpc, gzip | on |
//! | `prometheus` | the `/metrics` endpoint and [`prometheus_text`] | on |
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, bottom up (docs/architecture.md; tests/layering keeps imports pointing down).
mod attributes;
mod config;
mod diagnostics;
mod error;
mod event;
mod export;
mod format;
mod handle;
mod instrumentation;
pub mod logfile;
mod logs;
mod metrics;
mod pipeline;
mod propagation;
mod registry;
mod spans;
mod state;
mod sync;
pub mod testing;

/// Guides, rendered from `docs/*.md`; their examples are compiled and run as doctests.
#[cfg(all(
    feature = "axum",
    feature = "reqwest",
    feature = "sqlx",
    feature = "redis"
))]
pub mod guides {
    #[doc = include_str!("../docs/migrating-from-python.md")]
    pub mod migrating_from_python {}
}

pub use crate::attributes::{Attributes, IntoKey, IntoValue};
pub use crate::config::{
    BatchSettings, Exporter, LogRotation, OtlpCompression, OtlpProtocol, OtlpSettings, Propagator,
    Sampler, TelemetryConfig,
};
pub use crate::diagnostics::{dropped, dropped_at, DropReason, Output, Signal};
pub use crate::error::{Error, Lost, ShutdownFailure};
#[cfg(feature = "prometheus")]
pub use crate::export::{prometheus_text, PrometheusText};
pub use crate::handle::{get_telemetry, UnifiedTelemetry};
pub use crate::instrumentation::*;
pub use crate::metrics::{
    BoundCounter, Counter, Gauge, GaugeObserver, Histogram, ObservableGauge, UpDownCounter,
};
pub use crate::pipeline::{configure_telemetry, TelemetryGuard};
#[cfg(feature = "signal")]
pub use crate::pipeline::{shutdown_requested, shutdown_signal};
pub use crate::propagation::{
    attach_trace_context, baggage, extract_trace_context, inject_trace_context, set_baggage,
    Carrier, JobEnvelope, JobTrace,
};
pub use crate::registry::InstrumentOptions;
pub use crate::spans::{
    current_span, current_span_id, current_trace_id, Span, SpanBuilder, SpanRef, TraceContext,
    TraceContextGuard,
};

pub use opentelemetry::trace::{SpanKind, Status};
pub use opentelemetry::{KeyValue, Value};

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing;
pub use tracing_opentelemetry;

/// The README's code blocks, compiled as doctests (they use the server layer and the adapters).
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "reqwest",
    feature = "sqlx",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The instrumentation guide's code blocks, compiled as doctests.
#[cfg(all(doctest, feature = "reqwest", feature = "sqlx", feature = "redis"))]
#[doc = include_str!("../docs/instrumentation.md")]
pub struct InstrumentationDoctests;

/// The configuration guide's code blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/configuration.md")]
pub struct ConfigurationDoctests;
