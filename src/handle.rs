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
#[derive(Debug, Clone)]
pub struct UnifiedTelemetry {
    component: Arc<Component>,
}

/// Returns the handle for `component`, creating it on first use.
///
/// ```
/// let telemetry = unitel::get_telemetry("api_gateway");
/// telemetry.counter("requests_total").add(1, &[("method", "POST")]);
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
    /// ```
    /// # let telemetry = unitel::get_telemetry("orders");
    /// let _span = telemetry.trace("process_order").attr("order.id", 42);
    /// ```
    #[inline]
    pub fn trace(&self, name: impl Into<Cow<'static, str>>) -> Span {
        Span::start(&self.component, name.into(), &())
    }

    /// Like [`trace`](Self::trace), with attributes set at start (the sampler sees them):
    /// seed 003's `telemetry.trace("database_query", {"table": "users"})`.
    #[inline]
    pub fn trace_with(&self, name: impl Into<Cow<'static, str>>, attrs: impl Attributes) -> Span {
        Span::start(&self.component, name.into(), &attrs)
    }

    /// A span builder, for a kind, an explicit parent, or attributes before start.
    pub fn span(&self, name: impl Into<Cow<'static, str>>) -> SpanBuilder {
        SpanBuilder::new(&self.component, name.into())
    }

    /// The current trace id (32 lowercase hex digits), `None` outside a span.
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

    /// The monotonic counter `name` of this component.
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

    /// The up-down counter `name` of this component.
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

    /// The histogram `name` of this component.
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

    /// The synchronous gauge `name` of this component.
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

    /// A gauge whose value `callback` reports at each collection:
    ///
    /// ```
    /// # let telemetry = unitel::get_telemetry("fastworker");
    /// telemetry.observable_gauge("fastworker.queue.size", |gauge| {
    ///     gauge.observe(12.0, &[("priority", "high")]);
    /// });
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

    /// Logs at DEBUG, stamped with the current trace and span ids.
    pub fn log_debug(&self, message: &str) {
        logs::log(&self.component, Level::DEBUG, message, &(), None)
    }

    /// Logs at DEBUG with extra fields.
    pub fn log_debug_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::DEBUG, message, &fields, None)
    }

    /// Logs at INFO, stamped with the current trace and span ids.
    pub fn log_info(&self, message: &str) {
        logs::log(&self.component, Level::INFO, message, &(), None)
    }

    /// Logs at INFO with extra fields: `log_info_with("Request received", &[("user_id", "123")])`.
    pub fn log_info_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::INFO, message, &fields, None)
    }

    /// Logs at WARN, stamped with the current trace and span ids.
    pub fn log_warning(&self, message: &str) {
        logs::log(&self.component, Level::WARN, message, &(), None)
    }

    /// Logs at WARN with extra fields.
    pub fn log_warning_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::WARN, message, &fields, None)
    }

    /// Logs at ERROR, stamped with the current trace and span ids.
    pub fn log_error(&self, message: &str) {
        logs::log(&self.component, Level::ERROR, message, &(), None)
    }

    /// Logs at ERROR with extra fields.
    pub fn log_error_with(&self, message: &str, fields: impl Attributes) {
        logs::log(&self.component, Level::ERROR, message, &fields, None)
    }

    /// Logs at ERROR with `err` and its `source()` chain (the seed's `exc_info=True`).
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
