//! An in-memory capture for tests: assert on the spans, metric values and log lines your code
//! produces, through the same pipeline production uses.
//!
//! ```
//! let capture = unitel::testing::capture();
//! let telemetry = unitel::get_telemetry("orders");
//! {
//!     let _span = telemetry.trace("place_order");
//!     telemetry.counter("orders_total").add(1, &[("status", "ok")]);
//!     telemetry.log_info("order placed");
//! }
//! let span = capture.span("place_order").expect("span recorded");
//! let log = capture.log("order placed").expect("log recorded");
//! assert_eq!(log.trace_id.as_deref(), Some(span.trace_id.as_str()));
//! assert_eq!(capture.counter("orders", "orders_total", &[("status", "ok")]), Some(1));
//! ```
//!
//! [`capture`] installs the pipeline on first use in a test binary (console off, log filter
//! `trace`, every trace sampled) and then serialises the tests that hold a [`Capture`], clearing
//! it for each. Do not also call `configure_telemetry` in the same test binary.

//!
//! The capture is built on the crate's public extension points only — a span processor
//! ([`TelemetryConfig::with_span_processor`]), a metric reader
//! ([`TelemetryConfig::with_metric_reader`]) and a JSON-line sink
//! ([`TelemetryConfig::with_json_sink`]) — and reads its lines with [`crate::logfile`]'s
//! reader, so you can build a capture of your own the same way.

use crate::logfile::{parse_line, Record};
use crate::sync::lock;
use crate::{configure_telemetry, Sampler, TelemetryConfig, TelemetryGuard};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::ManualReader;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// What the capture has received so far.
#[derive(Debug, Default)]
struct Store {
    lines: Mutex<Vec<String>>,
    spans: Mutex<Vec<SpanData>>,
    reader: Arc<ManualReader>,
}

impl Store {
    fn clear(&self) {
        lock(&self.lines).clear();
        lock(&self.spans).clear();
    }
}

/// Keeps every finished span.
#[derive(Debug)]
struct CaptureProcessor(Arc<Store>);

impl SpanProcessor for CaptureProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: SpanData) {
        lock(&self.0.spans).push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Exclusive access to the in-memory capture for one test; cleared when made by [`capture`]
/// (example there).
#[derive(Debug)]
pub struct Capture {
    store: Arc<Store>,
    _serial: MutexGuard<'static, ()>,
}

/// Installs the capture pipeline (first call in the process) and returns the capture,
/// cleared, holding a lock that serialises the tests using it.
///
/// A test of async code; the same works in a `#[tokio::test]` or a plain `#[test]`:
///
/// ```
/// use unitel::testing::PointValue;
/// use unitel::{Status, UnifiedTelemetry, Value};
///
/// // The code under test.
/// async fn charge(telemetry: &UnifiedTelemetry, order_id: u64, eur: f64) -> Result<(), String> {
///     let span = telemetry.trace("charge").attr("order.id", order_id);
///     span.instrument(async {
///         telemetry.histogram("charge_amount_eur").record(eur, ());
///         let declined = "card declined"; // the payment provider's answer
///         telemetry.log_warning("charge declined");
///         unitel::current_span().set_status(Status::error(declined));
///         Err(declined.to_owned())
///     })
///     .await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let capture = unitel::testing::capture();
/// charge(&unitel::get_telemetry("payments"), 42, 99.5).await.unwrap_err();
///
/// let span = capture.span("charge").expect("span recorded");
/// assert_eq!(span.attr("order.id"), Some(&Value::I64(42)));
/// assert!(matches!(span.status, Status::Error { .. }));
/// let log = capture.log("charge declined").expect("log recorded");
/// assert_eq!(log.span_id.as_deref(), Some(span.span_id.as_str()));
/// let amounts = capture.point("payments", "charge_amount_eur", &[]);
/// assert!(matches!(amounts, Some(PointValue::Histogram { count: 1, .. })));
/// # }
/// ```
///
/// # Panics
/// If `configure_telemetry` was already called in this process without the capture: tests
/// that use the capture must not configure telemetry themselves.
pub fn capture() -> Capture {
    static SERIAL: Mutex<()> = Mutex::new(());
    static INSTALLED: OnceLock<(Arc<Store>, TelemetryGuard)> = OnceLock::new();
    let serial = lock(&SERIAL);
    let (store, _) = INSTALLED.get_or_init(|| {
        let store = Arc::new(Store::default());
        let lines = store.clone();
        let config = TelemetryConfig::new()
            .with_console(false)
            .with_log_filter("trace")
            .with_sampler(Sampler::AlwaysOn)
            .with_service_name("unitel-test")
            .with_span_processor(CaptureProcessor(store.clone()))
            .with_metric_reader(store.reader.clone())
            .with_json_sink(move |line| lock(&lines.lines).push(line.trim_end().to_owned()));
        match configure_telemetry(config) {
            Ok(guard) => (store, guard),
            Err(e) => panic!("unitel::testing::capture() could not install its pipeline: {e}"),
        }
    });
    store.clear();
    Capture {
        store: store.clone(),
        _serial: serial,
    }
}

/// A log line as written to the JSON log file, parsed: [`Capture::log`] and
/// [`Capture::logs`] (example: [`capture`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CapturedLog {
    /// `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: String,
    /// The `tracing` target (the component for the facade's logs).
    pub target: String,
    /// The component.
    pub component: String,
    /// The message.
    pub message: String,
    /// The trace id in force, as 32 hex digits.
    pub trace_id: Option<String>,
    /// The span id in force, as 16 hex digits.
    pub span_id: Option<String>,
    /// The extra fields.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// The error's message followed by its causes, for `log_error_with_cause`.
    pub error_chain: Vec<String>,
    /// The whole JSON line.
    pub json: serde_json::Value,
}

/// A finished span: [`Capture::span`] and [`Capture::spans`] (example: [`capture`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CapturedSpan {
    /// The span name.
    pub name: String,
    /// The component (instrumentation scope) that made it; `tracing` for `tracing` spans.
    pub component: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// The parent's span id, `None` for a root span.
    pub parent_span_id: Option<String>,
    /// Its kind.
    pub kind: SpanKind,
    /// Its status.
    pub status: Status,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// Its events: name and attributes.
    pub events: Vec<(String, Vec<KeyValue>)>,
    /// Its links: trace id and span id of each linked span.
    pub links: Vec<(String, String)>,
    /// Its W3C trace flags (`0x01` sampled, `0x02` random).
    pub flags: u8,
    /// Its `tracestate`, as the header value (empty when none).
    pub trace_state: String,
}

impl CapturedSpan {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }
}

/// One metric data point: [`Capture::metrics`]; [`Capture::point`] gives the value of one
/// (example: [`capture`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CapturedPoint {
    /// The component (instrumentation scope).
    pub component: String,
    /// The instrument name.
    pub name: String,
    /// The unit given, empty if none.
    pub unit: String,
    /// The attributes, sorted by key.
    pub attributes: Vec<(String, String)>,
    /// The kind of instrument that made it.
    pub kind: InstrumentKind,
    /// The value.
    pub value: PointValue,
}

/// The kind of instrument a [`CapturedPoint`] came from, as the SDK's collected data tells
/// it: a counter's sum is monotonic, an up-down counter's is not. The data does not say
/// whether the instrument was synchronous or observable (an `observable_gauge` is a
/// [`Gauge`](Self::Gauge), an SDK observable counter a [`Counter`](Self::Counter)).
/// Example of the captured points: [`capture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstrumentKind {
    /// A counter or observable counter: a sum that only goes up.
    Counter,
    /// An up-down counter or observable up-down counter: a sum that may go down.
    UpDownCounter,
    /// A histogram.
    Histogram,
    /// A gauge or observable gauge: the last value.
    Gauge,
}

/// The value of a [`CapturedPoint`] (example: [`capture`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PointValue {
    /// A counter's or up-down counter's cumulative sum.
    Sum(f64),
    /// A gauge's last value.
    Gauge(f64),
    /// A histogram.
    Histogram {
        /// How many values were recorded.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Bucket upper bounds.
        bounds: Vec<f64>,
        /// Counts per bucket (one more than `bounds`).
        bucket_counts: Vec<u64>,
    },
}

impl Capture {
    /// Every JSON line written so far (log records and span records), in order.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        lock(&self.store.lines)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or(serde_json::Value::Null))
            .collect()
    }

    /// The raw JSON lines written so far.
    pub fn raw_lines(&self) -> Vec<String> {
        lock(&self.store.lines).clone()
    }

    /// The log records written so far.
    pub fn logs(&self) -> Vec<CapturedLog> {
        lock(&self.store.lines)
            .iter()
            .filter_map(|line| match parse_line(line) {
                Ok(Record::Log(log)) => Some(CapturedLog {
                    level: log.level.to_string(),
                    target: log.target,
                    component: log.component,
                    message: log.message,
                    trace_id: log.trace_id.map(|id| id.to_string()),
                    span_id: log.span_id.map(|id| id.to_string()),
                    fields: log.fields,
                    error_chain: log
                        .error
                        .map(|e| std::iter::once(e.message).chain(e.causes).collect())
                        .unwrap_or_default(),
                    json: serde_json::from_str(line).unwrap_or_default(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The first log record whose message is `message`.
    pub fn log(&self, message: &str) -> Option<CapturedLog> {
        self.logs().into_iter().find(|l| l.message == message)
    }

    /// The span records (`"type":"span"` lines) written so far.
    pub fn span_records(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|j| j["type"] == "span")
            .collect()
    }

    /// The spans finished so far, in the order they ended.
    pub fn spans(&self) -> Vec<CapturedSpan> {
        lock(&self.store.spans)
            .iter()
            .map(|s| CapturedSpan {
                name: s.name.to_string(),
                component: s.instrumentation_scope.name().to_owned(),
                trace_id: s.span_context.trace_id().to_string(),
                span_id: s.span_context.span_id().to_string(),
                parent_span_id: (s.parent_span_id != opentelemetry::trace::SpanId::INVALID)
                    .then(|| s.parent_span_id.to_string()),
                kind: s.span_kind.clone(),
                status: s.status.clone(),
                attributes: s.attributes.clone(),
                events: s
                    .events
                    .iter()
                    .map(|e| (e.name.to_string(), e.attributes.clone()))
                    .collect(),
                links: s
                    .links
                    .iter()
                    .map(|l| {
                        (
                            l.span_context.trace_id().to_string(),
                            l.span_context.span_id().to_string(),
                        )
                    })
                    .collect(),
                flags: s.span_context.trace_flags().to_u8(),
                trace_state: s.span_context.trace_state().header(),
            })
            .collect()
    }

    /// The last finished span named `name`.
    pub fn span(&self, name: &str) -> Option<CapturedSpan> {
        self.spans().into_iter().rev().find(|s| s.name == name)
    }

    /// Collects and returns every metric data point (cumulative since the process started).
    pub fn metrics(&self) -> Vec<CapturedPoint> {
        let mut rm = ResourceMetrics::default();
        if self.store.reader.collect(&mut rm).is_err() {
            return Vec::new();
        }
        crate::metrics::note_overflow(&rm);
        let mut out = Vec::new();
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                let mut push = |attrs: &mut dyn Iterator<Item = &KeyValue>,
                                kind: InstrumentKind,
                                value: PointValue| {
                    let mut attributes: Vec<(String, String)> = attrs
                        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                        .collect();
                    attributes.sort();
                    out.push(CapturedPoint {
                        component: scope.scope().name().to_owned(),
                        name: metric.name().to_owned(),
                        unit: metric.unit().to_owned(),
                        attributes,
                        kind,
                        value,
                    });
                };
                match metric.data() {
                    AggregatedMetrics::F64(data) => points(data, |v| v, &mut push),
                    AggregatedMetrics::U64(data) => points(data, |v| v as f64, &mut push),
                    AggregatedMetrics::I64(data) => points(data, |v| v as f64, &mut push),
                }
            }
        }
        out
    }

    /// The point of `component`'s instrument `name` with exactly these attributes.
    pub fn point(&self, component: &str, name: &str, attrs: &[(&str, &str)]) -> Option<PointValue> {
        let mut want: Vec<(String, String)> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        self.metrics()
            .into_iter()
            .find(|p| p.component == component && p.name == name && p.attributes == want)
            .map(|p| p.value)
    }

    /// The cumulative value of a counter with exactly these attributes.
    pub fn counter(&self, component: &str, name: &str, attrs: &[(&str, &str)]) -> Option<u64> {
        match self.point(component, name, attrs)? {
            PointValue::Sum(v) => Some(v as u64),
            _ => None,
        }
    }
}

/// Hands each point of `data` to `push` with its kind and value (`to_f64` converts the value).
fn points<T: Copy>(
    data: &MetricData<T>,
    to_f64: impl Fn(T) -> f64,
    push: &mut dyn FnMut(&mut dyn Iterator<Item = &KeyValue>, InstrumentKind, PointValue),
) {
    match data {
        MetricData::Sum(sum) => {
            let kind = if sum.is_monotonic() {
                InstrumentKind::Counter
            } else {
                InstrumentKind::UpDownCounter
            };
            sum.data_points().for_each(|p| {
                push(
                    &mut p.attributes(),
                    kind,
                    PointValue::Sum(to_f64(p.value())),
                )
            })
        }
        MetricData::Gauge(gauge) => gauge.data_points().for_each(|p| {
            push(
                &mut p.attributes(),
                InstrumentKind::Gauge,
                PointValue::Gauge(to_f64(p.value())),
            )
        }),
        MetricData::Histogram(histogram) => histogram.data_points().for_each(|p| {
            push(
                &mut p.attributes(),
                InstrumentKind::Histogram,
                PointValue::Histogram {
                    count: p.count(),
                    sum: to_f64(p.sum()),
                    bounds: p.bounds().collect(),
                    bucket_counts: p.bucket_counts().collect(),
                },
            )
        }),
        // unitel makes no exponential histograms; a view of the application's could.
        MetricData::ExponentialHistogram(_) => {}
    }
}
