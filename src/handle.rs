//! [`UnifiedTelemetry`]: the per-component handle, the facade over spans, metrics and logs.
//!
//! Naming: a `_with` method takes attributes (`trace_with`, `log_info_with` — log fields are
//! attributes too); a `_with_options` method takes [`InstrumentOptions`].

use crate::attributes::Attributes;
use crate::logs;
use crate::metrics::{Counter, Gauge, GaugeObserver, Histogram, ObservableGauge, UpDownCounter};
use crate::registry::{instrument, Component, InstrumentOptions};
use crate::spans::{Span, SpanBuilder};
use std::borrow::Cow;
use std::sync::Arc;
use tracing::Level;

/// Telemetry for one component: spans, metrics and logs under its name.
///
/// Get it with [`get_telemetry`]. It is a cheap `Clone` (one `Arc`), and every handle for the
/// same component name shares the same instruments. A handle taken before
/// [`configure_telemetry`](crate::configure_telemetry) — in a `static`, a constructor — starts
/// recording once it has run; until then, and after shutdown, calls are no-ops.
///
/// The component is the OpenTelemetry instrumentation scope of its spans and metrics, the
/// `component` of its log lines, and the target its logs are filtered by (`RUST_LOG=orders=debug`).
///
/// One handle does all three, and what it records inside a span carries that span's trace id:
///
/// ```
/// async fn place_order(telemetry: &unitel::UnifiedTelemetry, order_id: u64, total_eur: f64) {
///     let span = telemetry.trace("place_order").attr("order.id", order_id);
///     span.instrument(async {
///         // ... charge the card, reserve the stock ...
///         telemetry.counter("orders_placed").add(1, &[("payment", "card")]);
///         telemetry.histogram("order_total_eur").record(total_eur, ());
///         telemetry.log_info("order placed"); // [trace:<place_order's trace>] [span:...]
///     })
///     .await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("checkout"); // keep it in the service's state
/// place_order(&telemetry, 42, 99.5).await;
/// # let span = capture.span("place_order").unwrap();
/// # assert_eq!(capture.log("order placed").unwrap().trace_id, Some(span.trace_id));
/// # assert_eq!(capture.counter("checkout", "orders_placed", &[("payment", "card")]), Some(1));
/// # }
/// ```
///
/// | what | methods |
/// |---|---|
/// | spans | [`trace`](Self::trace), [`trace_with`](Self::trace_with), [`span`](Self::span) (a [`SpanBuilder`]), [`current_trace_id`](Self::current_trace_id) |
/// | metrics | [`counter`](Self::counter), [`up_down_counter`](Self::up_down_counter), [`histogram`](Self::histogram), [`gauge`](Self::gauge), [`observable_gauge`](Self::observable_gauge), each with a `_with_options` form ([`InstrumentOptions`]) |
/// | logs | [`log_info`](Self::log_info) and the other levels, each with a `_with` form for fields; [`log_error_with_cause`](Self::log_error_with_cause) |
#[derive(Debug, Clone)]
pub struct UnifiedTelemetry {
    component: Arc<Component>,
}

/// Returns the handle for `component`, creating it on first use.
///
/// Every call with the same name gives a handle on the same instruments, so take one per
/// component wherever it is handy: in a struct, or in a `static` made before
/// [`configure_telemetry`](crate::configure_telemetry) runs (it starts recording once it has).
///
/// ```
/// use std::sync::LazyLock;
///
/// static TELEMETRY: LazyLock<unitel::UnifiedTelemetry> =
///     LazyLock::new(|| unitel::get_telemetry("api_gateway"));
///
/// fn handle_request(method: &str) {
///     TELEMETRY.counter("requests_total").add(1, &[("method", method)]);
/// }
/// # let capture = unitel::testing::capture();
/// handle_request("POST");
/// # assert_eq!(capture.counter("api_gateway", "requests_total", &[("method", "POST")]), Some(1));
/// ```
pub fn get_telemetry(component: impl AsRef<str>) -> UnifiedTelemetry {
    UnifiedTelemetry {
        component: crate::registry::component(component.as_ref()),
    }
}

impl UnifiedTelemetry {
    /// The component name.
    pub fn component(&self) -> &str {
        self.component.name()
    }

    // ----- spans -----

    /// Starts a span named `name` as a child of the current span (facade or `tracing`) and
    /// makes it current until the returned guard is dropped.
    ///
    /// Spans, metrics and logs recorded meanwhile on this thread belong to it:
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// fn process_order(telemetry: &unitel::UnifiedTelemetry, order_id: u64) {
    ///     let _span = telemetry.trace("process_order").attr("order.id", order_id);
    ///     let _validate = telemetry.trace("validate_order"); // a child of process_order
    ///     telemetry.log_info("order is valid"); // [trace:...] [span:<validate_order's id>]
    ///     let trace_id = unitel::current_trace_id(); // Some("4bf9..."): quote it in an error
    ///     # assert_eq!(trace_id, _span.trace_id());
    /// } // both spans end here, the child first
    ///
    /// process_order(&unitel::get_telemetry("orders"), 42);
    /// # let (parent, child) = (capture.span("process_order").unwrap(), capture.span("validate_order").unwrap());
    /// # assert_eq!(child.parent_span_id.as_deref(), Some(parent.span_id.as_str()));
    /// # assert_eq!(capture.log("order is valid").unwrap().span_id, Some(child.span_id));
    /// ```
    ///
    /// In async code, bind the span to the future with [`Span::instrument`] instead of keeping
    /// it across an `.await`.
    #[inline]
    pub fn trace(&self, name: impl Into<Cow<'static, str>>) -> Span {
        Span::start(&self.component, name.into(), &())
    }

    /// Like [`trace`](Self::trace), with attributes set at start (the sampler sees them):
    /// seed 003's `telemetry.trace("database_query", {"table": "users"})`.
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// use unitel::Value;
    /// # let telemetry = unitel::get_telemetry("users");
    ///
    /// let _span = telemetry.trace_with("database_query", &[("table", "users")]);
    /// # drop(_span);
    /// // Values of different types in one list: make each a `Value`.
    /// let _span = telemetry.trace_with(
    ///     "load_page",
    ///     &[("table", Value::from("users")), ("page.size", Value::from(50))],
    /// );
    /// # drop(_span);
    /// # assert_eq!(capture.span("database_query").unwrap().attr("table"), Some(&Value::from("users")));
    /// # assert_eq!(capture.span("load_page").unwrap().attr("page.size"), Some(&Value::I64(50)));
    /// ```
    #[inline]
    pub fn trace_with(&self, name: impl Into<Cow<'static, str>>, attrs: impl Attributes) -> Span {
        Span::start(&self.component, name.into(), &attrs)
    }

    /// A span builder, for a kind, an explicit parent (a context received from another
    /// process), links, or attributes before start. Example: [`SpanBuilder`].
    pub fn span(&self, name: impl Into<Cow<'static, str>>) -> SpanBuilder {
        SpanBuilder::new(&self.component, name.into())
    }

    /// The current trace id (32 lowercase hex digits), `None` outside a span: to quote in an
    /// error response or a message to another system. Same as [`current_trace_id`](crate::current_trace_id).
    #[doc(alias = "get_current_trace_id")]
    pub fn current_trace_id(&self) -> Option<String> {
        crate::spans::current_trace_id()
    }

    /// The current span id (16 lowercase hex digits), `None` outside a span.
    #[doc(alias = "get_current_span_id")]
    pub fn current_span_id(&self) -> Option<String> {
        crate::spans::current_span_id()
    }

    // ----- metrics -----

    /// The monotonic counter `name` of this component. The handle is cached and `Copy`: calling
    /// this again is cheap, or keep it in a field.
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// let telemetry = unitel::get_telemetry("api_gateway");
    /// let requests = telemetry.counter("requests_total");
    /// requests.add(1, &[("method", "POST"), ("status", "201")]);
    /// requests.add(1, &[("method", "GET"), ("status", "200")]);
    /// # assert_eq!(capture.counter("api_gateway", "requests_total", &[("method", "POST"), ("status", "201")]), Some(1));
    /// ```
    ///
    /// Attribute values must have few distinct values (a method, a status, a route template);
    /// put ids and free text on spans and logs instead. For a hot path, see [`Counter::bind`].
    pub fn counter(&self, name: impl Into<Cow<'static, str>>) -> Counter {
        self.counter_with_options(name, InstrumentOptions::default())
    }

    /// The counter `name`, made with `options` if it does not exist yet.
    pub fn counter_with_options(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Counter {
        Counter(instrument(&self.component, name.into(), options))
    }

    /// The up-down counter `name` of this component: a count that goes down too, such as jobs
    /// in progress or open connections.
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// # let telemetry = unitel::get_telemetry("worker");
    /// let in_progress = telemetry.up_down_counter("jobs.in_progress");
    /// in_progress.add(1, &[("queue", "emails")]); // a job starts
    /// // ... send_email ...
    /// in_progress.add(-1, &[("queue", "emails")]); // and ends
    /// # use unitel::testing::PointValue;
    /// # assert_eq!(capture.point("worker", "jobs.in_progress", &[("queue", "emails")]), Some(PointValue::Sum(0.0)));
    /// ```
    pub fn up_down_counter(&self, name: impl Into<Cow<'static, str>>) -> UpDownCounter {
        self.up_down_counter_with_options(name, InstrumentOptions::default())
    }

    /// The up-down counter `name`, made with `options` if it does not exist yet.
    pub fn up_down_counter_with_options(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> UpDownCounter {
        UpDownCounter(instrument(&self.component, name.into(), options))
    }

    /// The histogram `name` of this component: a distribution of values such as durations
    /// or sizes. Set a unit and bucket boundaries with
    /// [`histogram_with_options`](Self::histogram_with_options) (example: [`InstrumentOptions`]).
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// # let telemetry = unitel::get_telemetry("api_gateway");
    /// let started = std::time::Instant::now();
    /// // ... handle the request ...
    /// let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    /// telemetry.histogram("request_duration_ms").record(elapsed_ms, &[("endpoint", "/api/orders")]);
    /// # use unitel::testing::PointValue;
    /// # let point = capture.point("api_gateway", "request_duration_ms", &[("endpoint", "/api/orders")]);
    /// # assert!(matches!(point, Some(PointValue::Histogram { count: 1, .. })), "{point:?}");
    /// ```
    pub fn histogram(&self, name: impl Into<Cow<'static, str>>) -> Histogram {
        self.histogram_with_options(name, InstrumentOptions::default())
    }

    /// The histogram `name`, made with `options` (unit, description, bucket boundaries) if it
    /// does not exist yet.
    pub fn histogram_with_options(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Histogram {
        Histogram(instrument(&self.component, name.into(), options))
    }

    /// The synchronous gauge `name` of this component: set it where the value changes; the
    /// last value set is exported. For a value read when metrics are collected (a queue's
    /// length), use [`observable_gauge`](Self::observable_gauge).
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// # let telemetry = unitel::get_telemetry("storefront");
    /// let hit_ratio = telemetry.gauge("cache.hit_ratio");
    /// hit_ratio.set(0.93, &[("cache", "products")]);
    /// # use unitel::testing::PointValue;
    /// # assert_eq!(capture.point("storefront", "cache.hit_ratio", &[("cache", "products")]), Some(PointValue::Gauge(0.93)));
    /// ```
    pub fn gauge(&self, name: impl Into<Cow<'static, str>>) -> Gauge {
        self.gauge_with_options(name, InstrumentOptions::default())
    }

    /// The gauge `name`, made with `options` if it does not exist yet.
    pub fn gauge_with_options(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Gauge {
        Gauge(instrument(&self.component, name.into(), options))
    }

    /// A gauge whose value `callback` reports at each collection (each Prometheus scrape,
    /// each OTLP export): for a value that is cheaper to read than to track, such as a queue's
    /// length. It stays registered for the life of the process ([`ObservableGauge`]).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// # let capture = unitel::testing::capture();
    ///
    /// let queue = Arc::new(AtomicUsize::new(0)); // stands for the worker's queue
    /// let telemetry = unitel::get_telemetry("fastworker");
    /// let seen = queue.clone();
    /// telemetry.observable_gauge("fastworker.queue.size", move |gauge| {
    ///     gauge.observe(seen.load(Ordering::Relaxed) as f64, &[("priority", "high")]);
    /// });
    ///
    /// queue.store(12, Ordering::Relaxed); // read at the next collection
    /// # use unitel::testing::PointValue;
    /// # assert_eq!(capture.point("fastworker", "fastworker.queue.size", &[("priority", "high")]), Some(PointValue::Gauge(12.0)));
    /// ```
    pub fn observable_gauge(
        &self,
        name: impl Into<Cow<'static, str>>,
        callback: impl Fn(&GaugeObserver<'_>) + Send + Sync + 'static,
    ) -> ObservableGauge {
        self.observable_gauge_with_options(name, InstrumentOptions::default(), callback)
    }

    /// [`observable_gauge`](Self::observable_gauge) with unit and description.
    pub fn observable_gauge_with_options(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
        callback: impl Fn(&GaugeObserver<'_>) + Send + Sync + 'static,
    ) -> ObservableGauge {
        ObservableGauge::new(&self.component, name.into(), options, Arc::new(callback))
    }

    // ----- logs -----

    /// Logs at DEBUG, stamped with the current trace and span ids (example:
    /// [`log_info`](Self::log_info)).
    pub fn log_debug(&self, message: &str) {
        logs::log(&self.component, Level::DEBUG, message, &(), None)
    }

    /// Logs at DEBUG with extra fields.
    pub fn log_debug_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::DEBUG, message, &fields, None)
    }

    /// Logs at INFO, stamped with the current trace and span ids.
    ///
    /// Each level has a `_with` form that adds fields. The line goes to the console and the
    /// JSON log file (and OTLP, when configured); which levels are kept is the log filter's
    /// choice (`RUST_LOG=info,checkout=debug`, [`TelemetryConfig::with_log_filter`](crate::TelemetryConfig::with_log_filter)).
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// let telemetry = unitel::get_telemetry("checkout");
    /// let _span = telemetry.trace("handle_request");
    ///
    /// telemetry.log_info("Request received");
    /// telemetry.log_info_with("Cart loaded", &[("user_id", "123"), ("items", "3")]);
    /// telemetry.log_warning_with("Slow upstream", &[("upstream", "inventory")]);
    /// telemetry.log_debug("Price cache miss");
    /// // 2026-11-21T05:10:04.123456Z  INFO checkout: Cart loaded user_id=123 items=3 [trace:4bf9...] [span:00f0...]
    /// # let log = capture.log("Cart loaded").unwrap();
    /// # assert_eq!((log.level.as_str(), log.fields["user_id"].as_str()), ("INFO", Some("123")));
    /// # assert_eq!(log.trace_id, _span.trace_id());
    /// ```
    pub fn log_info(&self, message: &str) {
        logs::log(&self.component, Level::INFO, message, &(), None)
    }

    /// Logs at INFO with extra fields: `log_info_with("Request received", &[("user_id", "123")])`.
    pub fn log_info_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::INFO, message, &fields, None)
    }

    /// Logs at WARN, stamped with the current trace and span ids (example:
    /// [`log_info`](Self::log_info)).
    pub fn log_warning(&self, message: &str) {
        logs::log(&self.component, Level::WARN, message, &(), None)
    }

    /// Logs at WARN with extra fields.
    pub fn log_warning_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::WARN, message, &fields, None)
    }

    /// Logs at ERROR, stamped with the current trace and span ids. With an error value, use
    /// [`log_error_with_cause`](Self::log_error_with_cause).
    pub fn log_error(&self, message: &str) {
        logs::log(&self.component, Level::ERROR, message, &(), None)
    }

    /// Logs at ERROR with extra fields.
    pub fn log_error_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::ERROR, message, &fields, None)
    }

    /// Logs at ERROR with `err` and its `source()` chain (the seed's `exc_info=True`).
    ///
    /// The console line ends in `error="<message>: <cause>: ..."`; the JSON record has an
    /// `error` object with the message and the causes. To also mark the current span as failed,
    /// call [`SpanRef::record_error`](crate::SpanRef::record_error).
    ///
    /// ```
    /// # let capture = unitel::testing::capture();
    /// # let telemetry = unitel::get_telemetry("payments");
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("cannot charge order {order_id}")]
    /// struct ChargeError {
    ///     order_id: u64,
    ///     source: std::io::Error,
    /// }
    ///
    /// let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "payment gateway timed out");
    /// let err = ChargeError { order_id: 42, source: timeout };
    /// telemetry.log_error_with_cause("Payment failed", &err, &[("order.id", "42")]);
    /// // ... ERROR payments: Payment failed order.id=42 error="cannot charge order 42: payment gateway timed out"
    /// # let log = capture.log("Payment failed").unwrap();
    /// # assert_eq!(log.error_chain, ["cannot charge order 42", "payment gateway timed out"]);
    /// ```
    pub fn log_error_with_cause(
        &self,
        message: &str,
        err: &(dyn std::error::Error + 'static),
        fields: impl Attributes,
    ) {
        logs::log(&self.component, Level::ERROR, message, &fields, Some(err))
    }
}

/// The names these methods had before `_with` came to mean "with attributes" everywhere.
impl UnifiedTelemetry {
    /// Renamed [`counter_with_options`](Self::counter_with_options).
    #[deprecated(since = "0.1.0", note = "renamed `counter_with_options`")]
    pub fn counter_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Counter {
        self.counter_with_options(name, options)
    }

    /// Renamed [`up_down_counter_with_options`](Self::up_down_counter_with_options).
    #[deprecated(since = "0.1.0", note = "renamed `up_down_counter_with_options`")]
    pub fn up_down_counter_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> UpDownCounter {
        self.up_down_counter_with_options(name, options)
    }

    /// Renamed [`histogram_with_options`](Self::histogram_with_options).
    #[deprecated(since = "0.1.0", note = "renamed `histogram_with_options`")]
    pub fn histogram_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Histogram {
        self.histogram_with_options(name, options)
    }

    /// Renamed [`gauge_with_options`](Self::gauge_with_options).
    #[deprecated(since = "0.1.0", note = "renamed `gauge_with_options`")]
    pub fn gauge_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Gauge {
        self.gauge_with_options(name, options)
    }

    /// Renamed [`observable_gauge_with_options`](Self::observable_gauge_with_options).
    #[deprecated(since = "0.1.0", note = "renamed `observable_gauge_with_options`")]
    pub fn observable_gauge_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
        callback: impl Fn(&GaugeObserver<'_>) + Send + Sync + 'static,
    ) -> ObservableGauge {
        self.observable_gauge_with_options(name, options, callback)
    }
}
