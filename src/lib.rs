//! One telemetry facade for Rust services and background workers: spans, metrics and logs that
//! carry the same trace id, exported to Prometheus (pull) and to any OpenTelemetry collector (OTLP
//! push), with adapters for axum, reqwest, sqlx and redis, and a command that shows everything that
//! happened in one trace.
//!
//! ```sh
//! cargo run --example quickstart   # a simulated service on embedded defaults: no servers needed
//! scripts/test.sh                  # installs and starts what the tests need, runs every check
//! ```
//!
//! This page is a tour, in the order you will meet things: [configure](#1-configure), take
//! [handles](#2-handles), make [spans](#3-spans) (sync and async), record [metrics](#4-metrics),
//! write [logs](#5-logs), carry a trace [across processes](#6-across-processes), turn on the
//! [adapters](#7-adapters), choose where it [goes](#8-export), read it back with
//! [the CLI](#9-the-cli), and [test](#10-testing) it. The [guides] go deeper; coming from
//! Python, start with [`guides::migrating_from_python`].
//!
//! # 1. Configure
//!
//! Once, at the start of `main`. [`TelemetryConfig::from_env`] reads the standard `OTEL_*`
//! variables by the spec's rules, and the `with_*` calls override them. [`configure_telemetry`]
//! installs the pipeline for the whole process and returns a [`TelemetryGuard`]: keep it until the
//! end, because dropping it flushes what is still buffered (within a bounded time).
//!
//! ```no_run
//! # async fn serve() {}
//! #[tokio::main]
//! async fn main() -> Result<(), unitel::Error> {
//!     let guard = unitel::configure_telemetry(
//!         unitel::TelemetryConfig::from_env() // OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, ...
//!             .with_service_name("checkout")
//!             .with_service_version(env!("CARGO_PKG_VERSION"))
//!             .with_log_file("logs/checkout.log"),
//!     )?;
//!     tokio::select! {
//!         _ = serve() => {}
//!         // Ctrl-C, or SIGTERM from `docker stop`/Kubernetes: without this, the process dies
//!         // at once and the last spans are lost.
//!         _ = unitel::shutdown_signal() => {}
//!     }
//!     guard.shutdown_async().await // flush; also done (blocking) when the guard drops
//! }
//! ```
//!
//! A bad setting is a start-up error that names the setting and what it accepts; after that,
//! nothing unitel does returns an error or panics in your code (see [Never in the
//! way](#never-in-the-way)). Every variable and option: [`guides::configuration`].
//!
//! # 2. Handles
//!
//! [`get_telemetry`] gives a cheap, cloneable [`UnifiedTelemetry`] for one component (the
//! `component` on every log line and the instrumentation scope of its spans and metrics). Take it
//! wherever it is convenient, even in a `static` or before [`configure_telemetry`] runs: it starts
//! working once the pipeline is installed.
//!
//! ```
//! let telemetry = unitel::get_telemetry("payments");
//! assert_eq!(telemetry.component(), "payments");
//! ```
//!
//! # 3. Spans
//!
//! [`UnifiedTelemetry::trace`] starts a [`Span`] that is the current span until it is dropped.
//! Anything recorded meanwhile — child spans, log lines, `tracing` events, exemplars — belongs to
//! it.
//!
//! ```
//! # let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("orders");
//! {
//!     let span = telemetry.trace_with("place_order", &[("order.id", 1042)]);
//!     span.set_attribute("order.items", 3);
//!     let _child = telemetry.trace("reserve_stock"); // a child of place_order
//!     telemetry.log_info("stock reserved");           // carries both ids
//! } // both spans end here, in reverse order
//! # let parent = capture.span("place_order").unwrap();
//! # let child = capture.span("reserve_stock").unwrap();
//! # assert_eq!(child.parent_span_id.as_deref(), Some(parent.span_id.as_str()));
//! ```
//!
//! In **async** code a guard must not be held across `.await` (the task may move threads, and
//! another task would run inside your span). Hand the future to the span instead, with
//! [`Span::instrument`]; a task you spawn takes the current context along with
//! [`TraceContext::current`]:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("orders");
//! telemetry
//!     .trace("place_order")
//!     .instrument(async {
//!         tokio::task::yield_now().await; // still inside place_order after the await
//!         let cx = unitel::TraceContext::current();
//!         tokio::spawn(cx.instrument(async {
//!             unitel::get_telemetry("mailer").trace("send_receipt"); // same trace
//!         }))
//!         .await
//!         .unwrap();
//!     })
//!     .await;
//! # let (parent, child) = (capture.span("place_order").unwrap(), capture.span("send_receipt").unwrap());
//! # assert_eq!(child.trace_id, parent.trace_id);
//! # }
//! ```
//!
//! [`UnifiedTelemetry::span`] returns a [`SpanBuilder`] for everything else: the kind
//! (`SERVER`, `CLIENT`, `PRODUCER`, `CONSUMER`), an explicit parent, a new root, links. A span
//! records errors with [`SpanRef::record_error`] and [`SpanRef::set_status`] (a [`Span`]
//! derefs to its [`SpanRef`]).
//!
//! Spans nest with `tracing`'s in both directions, so `#[tracing::instrument]` functions inside a
//! unitel span are its children, and the other way round. The macro needs `tracing` as a direct
//! dependency of your crate (`unitel::tracing` is the same crate, but the macro expands to paths
//! starting with `tracing::`):
//!
//! ```toml
//! [dependencies]
//! unitel = "0.1"
//! tracing = "0.1"
//! ```
//!
//! # 4. Metrics
//!
//! Counters, up-down counters, histograms, gauges and observable gauges, by name from a handle.
//! Instruments are cached per component and name, so asking for one on every call is fine; holding
//! one (or a [`BoundCounter`] for a fixed attribute set) is cheaper still.
//!
//! ```
//! # let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("checkout");
//! telemetry.counter("orders_total").add(1, &[("status", "paid")]);
//! telemetry
//!     .histogram_with_options(
//!         "checkout.duration",
//!         unitel::InstrumentOptions::new().with_unit("s").with_boundaries([0.05, 0.1, 0.5, 1.0]),
//!     )
//!     .record(0.072, &[("payment.method", "card")]);
//! telemetry.gauge("cart.items").set(4.0, ());
//! let _queue = telemetry.observable_gauge("queue.depth", |g| g.observe(17.0, ()));
//! # assert_eq!(capture.counter("checkout", "orders_total", &[("status", "paid")]), Some(1));
//! ```
//!
//! With Prometheus on, `orders_total` is scraped as `orders_total`, `checkout.duration` as
//! `checkout_duration_seconds_bucket` and so on, so existing dashboards keep their names. A bad
//! value (NaN, an infinity, a negative histogram value) is dropped, counted in [`dropped`] and said
//! once on standard error; the call itself never fails.
//!
//! # 5. Logs
//!
//! `log_debug`, `log_info`, `log_warning` and `log_error` (and their `_with` forms taking
//! attributes) write a log line that carries the current trace and span ids. So does every
//! `tracing` event, from your code and from your libraries, and every `log` record.
//!
//! ```
//! # let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("billing");
//! let span = telemetry.trace("charge");
//! telemetry.log_info_with("charging card", &[("amount_cents", 1299)]);
//! let err = std::io::Error::new(std::io::ErrorKind::TimedOut, "card network timed out");
//! telemetry.log_error_with_cause("charge failed", &err, &[("retry", true)]);
//! # drop(span);
//! # let log = capture.log("charge failed").unwrap();
//! # assert_eq!(log.trace_id, capture.span("charge").map(|s| s.trace_id));
//! ```
//!
//! On the console:
//!
//! ```text
//! 2026-11-21T21:28:56.562179Z ERROR billing: charge failed retry=true error="card network timed out" [trace:c9e8b3cb8c0fac1c86c3c0c33741ecef] [span:e74b349392424972]
//! ```
//!
//! In the JSON log file ([`TelemetryConfig::with_log_file`]) each line is one record with
//! `trace_id` and `span_id`, next to one record per closed span, so a trace can be rebuilt from
//! the file alone. The schema: [`guides::log_format`]; reading it back: [`logfile`].
//!
//! # 6. Across processes
//!
//! W3C `traceparent`/`tracestate` and baggage, into and out of any [`Carrier`]: a
//! `HashMap<String, String>`, a `BTreeMap`, a `Vec` of pairs, or an `http::HeaderMap`. The
//! server layer and the reqwest adapter do this for HTTP; for queues, a [`JobEnvelope`] carries the
//! payload with its context, and the worker's span continues (or links to) the producer's trace.
//!
//! ```
//! # let capture = unitel::testing::capture();
//! use std::collections::HashMap;
//! let telemetry = unitel::get_telemetry("api");
//!
//! // Producer: a PRODUCER span, and the job with its context.
//! let (span, job) = telemetry.span("orders publish").produce(("order", 1042));
//! drop(span);
//!
//! // Consumer, in another process after a round trip through the queue:
//! telemetry
//!     .span("orders process")
//!     .consume(&job, unitel::JobTrace::Continue)
//!     .start()
//!     .in_scope(|| { /* the job runs here, in the producer's trace */ });
//!
//! // By hand, with any carrier:
//! let mut headers = HashMap::new();
//! let _request = telemetry.trace("call_inventory");
//! unitel::inject_trace_context(&mut headers);
//! let cx = unitel::extract_trace_context(&headers);
//! assert_eq!(cx.trace_id(), unitel::current_trace_id());
//! # let (p, c) = (capture.span("orders publish").unwrap(), capture.span("orders process").unwrap());
//! # assert_eq!(p.trace_id, c.trace_id);
//! ```
//!
//! With the `serde` feature a [`JobEnvelope`] serializes as it is, to JSON or anything else.
//!
//! # 7. Adapters
//!
//! One line each, on the client or router you already have; each records a span and the semantic
//! conventions' duration histogram, and never records secrets (credentials, SQL literals, redis
//! values, presigned URL signatures).
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::routing::get;
//!
//! // axum (or any tower service with `HttpServerLayer`): a SERVER span per request, named
//! // `GET /users/{id}`, continuing the caller's trace; `http.server.request.duration`.
//! let router: axum::Router = axum::Router::new().route("/users/{id}", get(|| async { "ok" }));
//! let app = unitel::instrument_axum(router);
//!
//! // reqwest: a CLIENT span per request, `traceparent` injected.
//! let http = unitel::instrument_reqwest(reqwest::Client::new());
//! http.get("http://inventory:8080/stock/42").send().await?;
//!
//! // sqlx: a span per query, literals replaced by `?`; the pool is used as before.
//! let db = unitel::instrument_sqlx(sqlx::PgPool::connect("postgres://app@db/orders").await?);
//! sqlx::query("SELECT id FROM orders WHERE customer = $1").bind(7).fetch_all(&db).await?;
//!
//! // redis: a span per command, pipeline and transaction.
//! let client = redis::Client::open("redis://cache:6379/")?;
//! let mut cache = unitel::instrument_redis(client.get_multiplexed_async_connection().await?, &client);
//! let _: Option<String> = redis::cmd("GET").arg("stock:42").query_async(&mut cache).await?;
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! Each adapter is a cargo feature (`axum`, `tower`, `reqwest`, `sqlx`, `redis`), off by default;
//! [`TaskMetrics`] gives a worker the task counters, duration histogram and queue gauges of seed
//! 000's dashboards. What each records: [`guides::instrumentation`].
//!
//! # 8. Export
//!
//! - **Console**, on by default: the correlated lines above, on standard output.
//! - **JSON log file**: [`TelemetryConfig::with_log_file`], rotated and pruned as configured.
//! - **OTLP push** of traces, metrics and logs to any collector (feature `otlp`, on):
//!   `OTEL_EXPORTER_OTLP_ENDPOINT`, or [`TelemetryConfig::with_otlp_endpoint`];
//!   http/protobuf (default, port 4318), http/json or grpc (4317), gzip, TLS and mutual TLS.
//!   Exports run on unitel's own thread, never on your runtime; what a slow or absent collector
//!   costs you is a bounded queue and a drop count, never a blocked request.
//! - **Prometheus pull** (feature `prometheus`, on): [`TelemetryConfig::with_prometheus`] serves
//!   `/metrics` (with exemplars linking a bucket to a trace, for scrapers that ask for
//!   OpenMetrics). [`prometheus_text`] renders the same text for your own router, and needs
//!   Prometheus enabled the same way: give port 0 if you only want the text and no listener of
//!   unitel's.
//!
//! ```no_run
//! # async fn doc() -> Result<(), unitel::Error> {
//! let _guard = unitel::configure_telemetry(
//!     unitel::TelemetryConfig::from_env()
//!         .with_otlp_endpoint("http://otel-collector:4318")
//!         .with_prometheus(([127, 0, 0, 1], 0)), // port 0: no listener, prometheus_text() only
//! )?;
//! let text = unitel::prometheus_text().await.unwrap_or_default();
//! # let _ = text;
//! # Ok(())
//! # }
//! ```
//!
//! Console exporters for spans, metrics and logs (`OTEL_*_EXPORTER=console`), per-signal
//! endpoints, headers, batching, the cardinality limit and the drop counters
//! (`unitel_dropped_total`): [`guides::configuration`]. What it costs: [`guides::performance`].
//!
//! # 9. The CLI
//!
//! The `unitel` command (feature `cli`: `cargo install unitel --features cli`) reads the JSON log
//! files back — rotated and gzip-compressed files, several services' directories, or standard
//! input — and shows one trace as a tree, its log lines under the spans they were written in,
//! without Jaeger or Tempo:
//!
//! ```sh
//! unitel traces logs/ --errors --since 1h      # the traces that failed in the last hour
//! unitel logs logs/ --trace c9e8b3cb           # one trace as a tree, with its log lines
//! unitel logs logs/ --trace c9e8b3cb --follow  # and what it still writes
//! ```
//!
//! A log line you are looking at ends in `[trace:…]`: give those hex digits to `--trace`. More:
//! [`guides::cli`].
//!
//! # 10. Testing
//!
//! [`testing::capture`] installs the same pipeline in memory for a test binary: assert on the
//! spans, metric values and log lines your code produced.
//!
//! ```
//! let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("orders");
//! telemetry.trace("place_order").in_scope(|| {
//!     telemetry.counter("orders_total").add(1, &[("status", "ok")]);
//!     telemetry.log_info("order placed");
//! });
//! let span = capture.span("place_order").unwrap();
//! assert_eq!(capture.log("order placed").unwrap().trace_id, Some(span.trace_id));
//! assert_eq!(capture.counter("orders", "orders_total", &[("status", "ok")]), Some(1));
//! ```
//!
//! # Guides
//!
//! - [`guides::cookbook`]: recipes for an axum service, a worker with a job queue, a CLI tool or
//!   script, graceful shutdown, `#[tracing::instrument]`, tests, and finding a trace from a log line.
//! - [`guides::migrating_from_python`]: every call of the Python module and every variable of the
//!   systems our users come from, next to unitel's.
//! - [`guides::configuration`]: every environment variable and builder option.
//! - [`guides::instrumentation`]: the server layer and the reqwest, sqlx and redis adapters.
//! - [`guides::log_format`]: the JSON log file.
//! - [`guides::cli`]: the `unitel` command.
//! - [`guides::security`]: what is redacted and where.
//! - [`guides::performance`]: what each part costs, against the bare stacks.
//! - [`guides::architecture`]: the modules and their layers.
//!
//! # Examples
//!
//! One runnable example per system our users come from, each checked by the test suite against
//! real components:
//!
//! | system | example | command |
//! |---|---|---|
//! | a service with the Python module (seed 003) | `examples/quickstart.rs` | `cargo run --example quickstart` |
//! | FastWorker task queue (seed 000) | `examples/fastworker.rs` | `cargo run --example fastworker` |
//! | TempoNest: axum, PostgreSQL, Redis, a second service (seed 001) | `examples/temponest.rs` | `cargo run --example temponest` |
//! | a Celery worker (seed 002) | `examples/celery_worker.rs` | `cargo run --example celery_worker` |
//! | a script configured by `OTEL_*` (seed 004) | `examples/script_runner.rs` | `cargo run --example script_runner` |
//!
//! # Never in the way
//!
//! Recording calls never return errors, never panic and never block on the network. When
//! telemetry is disabled (`OTEL_SDK_DISABLED=true`), not yet configured or shut down, they cost an
//! atomic load and a branch (under 5 ns). Bad input is dropped, counted ([`dropped`],
//! `unitel_dropped_total`) and described once on standard error.
//!
//! # Features
//!
//! | feature | what it adds | default | what it costs |
//! |---|---|---|---|
//! | *(core)* | spans, metrics, correlated console and JSON-file logs, the log-file reader, [`testing`] | always | a span 0.4 µs (0.3× hand-wired tracing-opentelemetry), a correlated JSON log line 0.37 µs (0.16× tracing-subscriber's JSON), a counter add 17–120 ns |
//! | `otlp` | OTLP push: http/protobuf, http/json, grpc; gzip; TLS | on | 0.7 µs of export CPU per span or log record over http/protobuf, on unitel's thread |
//! | `prometheus` | `/metrics` and [`prometheus_text`] | on | 1 ms per 1,000 series per scrape, off your threads |
//! | `http` | [`Carrier`] for `http::HeaderMap` | on | none at run time |
//! | `signal` | [`shutdown_signal`], [`shutdown_requested`] | on | one thread, once started |
//! | `tower` | [`HttpServerLayer`] for any tower service | off | 4–5 µs per request (0.27× tower-http + tracing-opentelemetry) |
//! | `axum` | `tower`, plus axum's matched route; [`instrument_axum`] | off | as `tower` |
//! | `reqwest` | [`instrument_reqwest`], [`HttpClientMiddleware`] | off | 2.7–3.5 µs per request |
//! | `sqlx` | [`instrument_sqlx`], [`InstrumentedPool`] (sqlx 0.9 needs Rust 1.94) | off | 1.3–1.6 µs per query |
//! | `redis` | [`instrument_redis`], [`InstrumentedRedis`] | off | 1.4–1.7 µs per command |
//! | `serde` | `Serialize`/`Deserialize` for [`JobEnvelope`] | off | none at run time |
//! | `cli` | the `unitel` binary | off | not linked into your service |
//!
//! The figures are from [`guides::performance`], measured with `cargo bench` against the bare
//! stacks in the same runs.
//!
//! # Versions
//!
//! The crates unitel is built on are re-exported, so your code can use exactly the same versions
//! without naming them in `Cargo.toml`:
//! [`opentelemetry`](https://docs.rs/opentelemetry/0.33) 0.33,
//! [`opentelemetry_sdk`](https://docs.rs/opentelemetry_sdk/0.33) 0.33,
//! [`tracing`](https://docs.rs/tracing/0.1) 0.1 and
//! [`tracing_opentelemetry`](https://docs.rs/tracing-opentelemetry/0.34) 0.34.
//! (The `#[tracing::instrument]` macro is the exception: see [Spans](#3-spans).)
//! The minimum Rust version is 1.88 (1.94 with the `sqlx` feature).
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

/// Links between the guides: the files link to each other by path (for reading them on a
/// forge), and these definitions, placed first, win in rustdoc (the first definition of a
/// label is the one Markdown uses).
#[allow(unused_macros)] // the guides are built only with every adapter, or by rustdoc
macro_rules! guide_links {
    () => {
        "[`docs/architecture.md`]: crate::guides::architecture\n\
         [`docs/cli.md`]: crate::guides::cli\n\
         [`docs/configuration.md`]: crate::guides::configuration\n\
         [`docs/cookbook.md`]: crate::guides::cookbook\n\
         [`docs/instrumentation.md`]: crate::guides::instrumentation\n\
         [`docs/log-format.md`]: crate::guides::log_format\n\
         [`docs/migrating-from-python.md`]: crate::guides::migrating_from_python\n\
         [`docs/performance.md`]: crate::guides::performance\n\
         [`docs/security.md`]: crate::guides::security\n\n"
    };
}

/// The guides, rendered from `docs/*.md` in the repository; their Rust examples are compiled
/// and run as doctests. They use every adapter, so they are built with all features (as on
/// docs.rs) and always when documenting.
#[cfg(any(
    all(
        feature = "axum",
        feature = "reqwest",
        feature = "sqlx",
        feature = "redis",
        feature = "signal",
        feature = "prometheus",
        feature = "otlp"
    ),
    all(doc, not(doctest))
))]
pub mod guides {
    #[doc = guide_links!()]
    #[doc = include_str!("../docs/cookbook.md")]
    pub mod cookbook {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/migrating-from-python.md")]
    pub mod migrating_from_python {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/configuration.md")]
    pub mod configuration {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/instrumentation.md")]
    pub mod instrumentation {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/log-format.md")]
    pub mod log_format {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/cli.md")]
    pub mod cli {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/security.md")]
    pub mod security {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/performance.md")]
    pub mod performance {}

    #[doc = guide_links!()]
    #[doc = include_str!("../docs/architecture.md")]
    pub mod architecture {}
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
