//! Metric instruments: cheap handles over the registry's instrument cells, that start
//! recording as soon as telemetry is configured, even when they were made before.

use crate::attributes::Attributes;
use crate::diagnostics::{drop_once, DropReason, Output, Signal};
use crate::registry::exemplars;
use crate::registry::{check_name, Component, InstrumentCell, InstrumentOptions, Observable};
use crate::state;
use opentelemetry::metrics::{self as otel, AsyncInstrument};
use opentelemetry::Context;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// The builders of SDK instruments that take a unit and a description.
trait Describe: Sized {
    fn with_unit(self, unit: Cow<'static, str>) -> Self;
    fn with_description(self, description: Cow<'static, str>) -> Self;

    /// The builder with `options`' unit and description, where set.
    fn described(mut self, options: &InstrumentOptions) -> Self {
        if let Some(unit) = &options.unit {
            self = self.with_unit(unit.clone());
        }
        if let Some(description) = &options.description {
            self = self.with_description(description.clone());
        }
        self
    }
}

macro_rules! describe {
    ($($builder:ty),*) => {$(
        impl Describe for $builder {
            fn with_unit(self, unit: Cow<'static, str>) -> Self {
                <$builder>::with_unit(self, unit)
            }
            fn with_description(self, description: Cow<'static, str>) -> Self {
                <$builder>::with_description(self, description)
            }
        }
    )*};
}

describe!(
    otel::InstrumentBuilder<'_, otel::Counter<u64>>,
    otel::InstrumentBuilder<'_, otel::UpDownCounter<i64>>,
    otel::InstrumentBuilder<'_, otel::Gauge<f64>>,
    otel::HistogramBuilder<'_, otel::Histogram<f64>>,
    otel::AsyncInstrumentBuilder<'_, otel::ObservableGauge<f64>, f64>
);

#[cold]
fn invalid_value(name: &str, value: f64, what: &str) {
    drop_once(
        Output::Pipeline,
        Signal::Metrics,
        DropReason::InvalidInput,
        1,
        &format!("value:{name}:{what}"),
        &|| {
            format!("instrument {name:?}: dropped {what} value {value}; further ones are counted in unitel::dropped(Metrics, InvalidInput)")
        },
    );
}

/// Checks a floating-point measurement; NaN and infinities (and negatives where
/// `allow_negative` is false) are dropped and counted.
#[inline]
fn valid(name: &str, value: f64, allow_negative: bool) -> bool {
    if value.is_finite() && (allow_negative || value >= 0.0) {
        return true;
    }
    let what = if value.is_nan() {
        "NaN"
    } else if value.is_infinite() {
        "infinite"
    } else {
        "negative"
    };
    invalid_value(name, value, what);
    false
}

/// A monotonic `u64` counter (Prometheus: `<name>_total`).
///
/// Made by [`UnifiedTelemetry::counter`](crate::UnifiedTelemetry::counter) (example there).
/// It is `Copy`, so keep it in a field; on a hot path where the attributes never change,
/// [`bind`](Self::bind) them once:
///
/// ```
/// # let capture = unitel::testing::capture();
/// struct Mailer {
///     sent: unitel::BoundCounter,
///     failed: unitel::Counter,
/// }
///
/// let telemetry = unitel::get_telemetry("mailer");
/// let emails = telemetry.counter("emails_sent");
/// let mailer = Mailer {
///     sent: emails.bind(&[("template", "welcome")]),
///     failed: telemetry.counter("emails_failed"),
/// };
/// for _ in 0..3 {
///     mailer.sent.add(1); // no attribute lookup
/// }
/// mailer.failed.add(1, &[("reason", "bounced")]);
/// # assert_eq!(capture.counter("mailer", "emails_sent", &[("template", "welcome")]), Some(3));
/// # assert_eq!(capture.counter("mailer", "emails_failed", &[("reason", "bounced")]), Some(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Counter(pub(crate) &'static InstrumentCell<otel::Counter<u64>>);

impl Counter {
    /// Adds `value`.
    #[inline]
    pub fn add(&self, value: u64, attrs: impl Attributes) {
        if let Some(c) = self.sdk() {
            attrs.with_slice(|kvs| {
                c.add(value, kvs);
                self.0
                    .exemplars
                    .offer(None, value as f64, &[], || exemplars::key(kvs.iter()));
            });
        }
    }

    /// A handle bound to one attribute set: its `add` skips the attribute lookup.
    pub fn bind(&self, attrs: impl Attributes) -> BoundCounter {
        let mut kvs = Vec::new();
        attrs.with_slice(|given| kvs.extend_from_slice(given));
        BoundCounter {
            counter: *self,
            key: exemplars::key(&kvs),
            attrs: kvs,
            bound: Arc::new(OnceLock::new()),
        }
    }

    #[inline]
    fn sdk(&self) -> Option<&'static otel::Counter<u64>> {
        self.0.sdk(|m, cell| {
            m.u64_counter(cell.name.clone())
                .described(&cell.options)
                .build()
        })
    }
}

/// A [`Counter`] bound to a fixed attribute set ([`Counter::bind`]): the cheapest way to count
/// on a hot path. Cheap to clone; works once telemetry is configured, like every handle.
/// Example: [`Counter`].
#[derive(Debug, Clone)]
pub struct BoundCounter {
    counter: Counter,
    /// The exemplar key of `attrs`.
    key: u64,
    attrs: Vec<opentelemetry::KeyValue>,
    bound: Arc<OnceLock<otel::BoundCounter<u64>>>,
}

impl BoundCounter {
    /// Adds `value`.
    #[inline]
    pub fn add(&self, value: u64) {
        if state::active().is_none() {
            return;
        }
        if let Some(bound) = self.bound.get() {
            bound.add(value);
        } else if let Some(c) = self.counter.sdk() {
            self.bound.get_or_init(|| c.bind(&self.attrs)).add(value);
        } else {
            return;
        }
        self.counter
            .0
            .exemplars
            .offer(None, value as f64, &[], || self.key);
    }
}

/// An `i64` counter that goes up and down (items in a queue, open connections).
///
/// Made by [`UnifiedTelemetry::up_down_counter`](crate::UnifiedTelemetry::up_down_counter)
/// (example there).
#[derive(Debug, Clone, Copy)]
pub struct UpDownCounter(pub(crate) &'static InstrumentCell<otel::UpDownCounter<i64>>);

impl UpDownCounter {
    /// Adds `value`, which may be negative.
    #[inline]
    pub fn add(&self, value: i64, attrs: impl Attributes) {
        if let Some(c) = self.0.sdk(|m, cell| {
            m.i64_up_down_counter(cell.name.clone())
                .described(&cell.options)
                .build()
        }) {
            attrs.with_slice(|kvs| c.add(value, kvs));
        }
    }
}

/// A distribution of `f64` values (Prometheus: `<name>_bucket`, `_sum`, `_count`).
///
/// Made by [`UnifiedTelemetry::histogram`](crate::UnifiedTelemetry::histogram) (example
/// there); a unit and bucket boundaries are set with
/// [`InstrumentOptions`](crate::InstrumentOptions) (example there).
#[derive(Debug, Clone, Copy)]
pub struct Histogram(pub(crate) &'static InstrumentCell<otel::Histogram<f64>>);

impl Histogram {
    /// Records `value`. NaN, infinities and negative values are dropped and counted.
    #[inline]
    pub fn record(&self, value: f64, attrs: impl Attributes) {
        self.record_in(None, value, attrs);
    }

    /// [`record`](Self::record) for a measurement made in the span of `cx` (instrumentation
    /// that records after its span ended; the exemplar names that span), or in the current
    /// span when `None`.
    #[inline]
    pub(crate) fn record_in(&self, cx: Option<&Context>, value: f64, attrs: impl Attributes) {
        let Some(h) = self.sdk() else {
            return;
        };
        if valid(&self.0.name, value, false) {
            attrs.with_slice(|kvs| {
                h.record(value, kvs);
                self.offer_in(cx, value, || exemplars::key(kvs.iter()));
            });
        }
    }

    /// Offers a measurement just recorded (through [`sdk`](Self::sdk), by instrumentation that
    /// binds attribute sets itself) on the series `key` as an exemplar of the span of `cx`, or
    /// of the current span.
    #[inline]
    pub(crate) fn offer_in(&self, cx: Option<&Context>, value: f64, key: impl FnOnce() -> u64) {
        self.0.exemplars.offer(cx, value, self.0.bounds(), key);
    }

    /// The SDK histogram, made on first use (name, unit, description, boundaries); `None`
    /// while telemetry is not running. For instrumentation that binds attribute sets itself.
    #[inline]
    pub(crate) fn sdk(&self) -> Option<&'static otel::Histogram<f64>> {
        self.0.sdk(|m, cell| {
            let mut b = m.f64_histogram(cell.name.clone()).described(&cell.options);
            if let Some(bounds) = &cell.options.boundaries {
                b = b.with_boundaries(bounds.clone());
            }
            b.build()
        })
    }
}

/// A synchronous gauge: the last value set wins.
///
/// Made by [`UnifiedTelemetry::gauge`](crate::UnifiedTelemetry::gauge) (example there).
#[derive(Debug, Clone, Copy)]
pub struct Gauge(pub(crate) &'static InstrumentCell<otel::Gauge<f64>>);

impl Gauge {
    /// Sets the current value. NaN and infinities are dropped and counted.
    #[inline]
    pub fn set(&self, value: f64, attrs: impl Attributes) {
        let Some(g) = self.0.sdk(|m, cell| {
            m.f64_gauge(cell.name.clone())
                .described(&cell.options)
                .build()
        }) else {
            return;
        };
        if valid(&self.0.name, value, true) {
            attrs.with_slice(|kvs| g.record(value, kvs));
        }
    }
}

/// The callback of an observable gauge, called at each collection.
pub(crate) type GaugeCallback = Arc<dyn Fn(&GaugeObserver<'_>) + Send + Sync>;

/// Passed to an observable gauge's callback; [`observe`](Self::observe) reports values, one
/// per attribute set. Example:
/// [`UnifiedTelemetry::observable_gauge`](crate::UnifiedTelemetry::observable_gauge).
pub struct GaugeObserver<'a> {
    name: &'a str,
    inner: &'a dyn AsyncInstrument<f64>,
}

impl std::fmt::Debug for GaugeObserver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeObserver")
            .field("name", &self.name)
            .finish()
    }
}

impl GaugeObserver<'_> {
    /// Reports the current value for one attribute set. NaN and infinities are dropped and
    /// counted.
    pub fn observe(&self, value: f64, attrs: impl Attributes) {
        if valid(self.name, value, true) {
            attrs.with_slice(|kvs| self.inner.observe(value, kvs));
        }
    }
}

/// A gauge read by a callback at each collection (seed 000's `workers.active`, `queue.size`).
/// Made by [`UnifiedTelemetry::observable_gauge`](crate::UnifiedTelemetry::observable_gauge)
/// (example there).
///
/// It stays registered for the life of the process; keeping the handle is not required.
/// The callback runs at every collection (each scrape, each periodic export): keep it fast.
/// A panic in it is caught, counted as `(Signal::Metrics, DropReason::CallbackPanicked)` and
/// described once; that collection lacks this gauge, and every other metric is still exported.
#[derive(Debug, Clone)]
pub struct ObservableGauge(Arc<ObservableCell>);

impl ObservableGauge {
    /// The instrument name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

#[derive(Debug)]
struct ObservableCell {
    name: Cow<'static, str>,
    options: InstrumentOptions,
    callback: CallbackDebug,
    sdk: OnceLock<otel::ObservableGauge<f64>>,
}

struct CallbackDebug(GaugeCallback);

impl std::fmt::Debug for CallbackDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fn(&GaugeObserver)")
    }
}

impl ObservableGauge {
    /// Makes `component`'s observable gauge and registers it (now, or when telemetry starts).
    pub(crate) fn new(
        component: &Component,
        name: Cow<'static, str>,
        options: InstrumentOptions,
        callback: GaugeCallback,
    ) -> ObservableGauge {
        check_name(component, &name, &options);
        let cell = Arc::new(ObservableCell {
            name,
            options,
            callback: CallbackDebug(callback),
            sdk: OnceLock::new(),
        });
        component.add_observable(cell.clone());
        ObservableGauge(cell)
    }
}

impl Observable for ObservableCell {
    /// Registers the callback with the SDK, once.
    fn register(&self, meter: &otel::Meter) {
        self.sdk.get_or_init(|| {
            let callback = self.callback.0.clone();
            let name = self.name.clone();
            meter
                .f64_observable_gauge(self.name.clone())
                .described(&self.options)
                // No "is telemetry running" check here: the final collection at shutdown runs
                // after recording has stopped, and must still see the gauge.
                .with_callback(move |inner| {
                    let observer = GaugeObserver { name: &name, inner };
                    call_guarded(&name, || callback(&observer));
                })
                .build()
        });
    }
}

/// Runs an observable instrument's callback (named `name`) so that its panic stays inside it:
/// the panic is counted (`Signal::Metrics`, `DropReason::CallbackPanicked`) and described once
/// per instrument, and the collection goes on with every other instrument. Unwinding into the
/// SDK would poison its collection lock and stop the `/metrics` endpoint and the periodic
/// export for good.
fn call_guarded(name: &str, callback: impl FnOnce()) {
    let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)) else {
        return;
    };
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string payload".to_owned());
    drop_once(
        Output::Pipeline,
        Signal::Metrics,
        DropReason::CallbackPanicked,
        1,
        &format!("callback_panicked:{name}"),
        &|| {
            format!(
                "the callback of observable gauge {name:?} panicked ({why}); its value is \
                 missing from each collection where it panics, every other metric is still \
                 exported (counted as dropped metrics, reason callback_panicked)"
            )
        },
    );
}

/// The attribute the SDK marks its overflow series with.
const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// The cardinality limit in force (the SDK's default until telemetry is configured).
static CARDINALITY_LIMIT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(DEFAULT_CARDINALITY_LIMIT);

/// The SDK's default limit of attribute sets per instrument.
pub(crate) const DEFAULT_CARDINALITY_LIMIT: usize = 2000;

/// Sets the limit the collections are checked against.
pub(crate) fn set_cardinality_limit(limit: usize) {
    CARDINALITY_LIMIT.store(limit, std::sync::atomic::Ordering::Relaxed);
}

/// Notes every instrument of a collection that has reached its cardinality limit: past it,
/// the SDK folds measurements with new attribute sets into one series marked
/// `otel.metric.overflow=true`. Each such instrument is counted once
/// (`Signal::Metrics`, `DropReason::CardinalityLimit`) and described once. Only instruments
/// with more series than the limit are looked at, so a collection without overflow costs a
/// length check per instrument.
pub(crate) fn note_overflow(metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics) {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    fn overflowed<T>(data: &MetricData<T>, limit: usize) -> bool {
        // More series than the limit, one of them the overflow series.
        macro_rules! check {
            ($points:expr) => {
                $points.count() > limit
                    && $points.any(|p| p.attributes().any(|kv| kv.key.as_str() == OVERFLOW_KEY))
            };
        }
        match data {
            MetricData::Gauge(g) => check!(g.data_points()),
            MetricData::Sum(s) => check!(s.data_points()),
            MetricData::Histogram(h) => check!(h.data_points()),
            MetricData::ExponentialHistogram(h) => check!(h.data_points()),
        }
    }
    let limit = CARDINALITY_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    for scope in metrics.scope_metrics() {
        for metric in scope.metrics() {
            let hit = match metric.data() {
                AggregatedMetrics::F64(d) => overflowed(d, limit),
                AggregatedMetrics::U64(d) => overflowed(d, limit),
                AggregatedMetrics::I64(d) => overflowed(d, limit),
            };
            if hit {
                let (component, name) = (scope.scope().name(), metric.name());
                crate::diagnostics::drop_first(
                    Output::Pipeline,
                    Signal::Metrics,
                    DropReason::CardinalityLimit,
                    &format!("cardinality:{component}:{name}"),
                    &|| {
                        format!(
                            "component {component:?}, instrument {name:?}: more than {limit} attribute sets; \
                             measurements with new ones are added to one series marked otel.metric.overflow=true \
                             (their values are kept, their attributes lost). Raise the limit with \
                             TelemetryConfig::with_metric_cardinality_limit, or drop the attribute that \
                             takes too many values"
                        )
                    },
                );
            }
        }
    }
}
