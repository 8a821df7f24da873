//! Metric instruments: cheap handles, cached per (component, name), that start recording as
//! soon as telemetry is configured, even when they were made before.

use crate::attributes::Attributes;
use crate::diagnostics::{drop_once, DropReason, Signal};
use crate::handle::Component;
use crate::pipeline;
use opentelemetry::metrics::{self as otel, AsyncInstrument};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// Unit, description and (for histograms) bucket boundaries of an instrument.
///
/// Options take effect when an instrument of that name is first made in a component; later
/// calls with the same name return the cached instrument.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstrumentOptions {
    pub(crate) unit: Option<Cow<'static, str>>,
    pub(crate) description: Option<Cow<'static, str>>,
    pub(crate) boundaries: Option<Vec<f64>>,
}

impl InstrumentOptions {
    /// No unit, no description, default boundaries.
    pub fn new() -> Self {
        Self::default()
    }

    /// The unit, in UCUM (`ms`, `s`, `By`, `{request}`). Prometheus adds it to the name.
    pub fn with_unit(mut self, unit: impl Into<Cow<'static, str>>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// A description, exported as help text.
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Explicit histogram bucket boundaries, increasing (the SDK's defaults otherwise).
    pub fn with_boundaries(mut self, boundaries: impl Into<Vec<f64>>) -> Self {
        self.boundaries = Some(boundaries.into());
        self
    }
}

/// The shared part of an instrument handle: where it belongs and its SDK instrument, made on
/// first use after `configure_telemetry`.
#[derive(Debug)]
pub(crate) struct Cell<I> {
    component: Arc<Component>,
    name: Cow<'static, str>,
    options: InstrumentOptions,
    sdk: OnceLock<I>,
}

impl<I> Cell<I> {
    /// Instruments live for the rest of the process, like the component registry that caches
    /// them: handles are plain references, cheap to copy and free of reference counting.
    pub(crate) fn new(
        component: Arc<Component>,
        name: Cow<'static, str>,
        options: InstrumentOptions,
    ) -> &'static Self {
        check_name(&component, &name);
        Box::leak(Box::new(Cell {
            component,
            name,
            options,
            sdk: OnceLock::new(),
        }))
    }

    /// The SDK instrument, or `None` while telemetry is not running.
    #[inline]
    fn sdk(&'static self, build: impl FnOnce(&otel::Meter, &Self) -> I) -> Option<&'static I> {
        pipeline::active()?;
        if let Some(i) = self.sdk.get() {
            return Some(i);
        }
        let meter = self.component.meter()?;
        Some(self.sdk.get_or_init(|| build(meter, self)))
    }
}

macro_rules! apply_options {
    ($builder:expr, $cell:expr) => {{
        let mut b = $builder;
        if let Some(unit) = &$cell.options.unit {
            b = b.with_unit(unit.clone());
        }
        if let Some(description) = &$cell.options.description {
            b = b.with_description(description.clone());
        }
        b
    }};
}

/// Checks the name against the OpenTelemetry instrument-name rules (the SDK would otherwise
/// silently hand out a no-op instrument).
fn check_name(component: &Component, name: &str) {
    let mut chars = name.chars();
    let valid = name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !valid {
        drop_once(
            Signal::Metrics,
            DropReason::InvalidInput,
            &format!("name:{name}"),
            &|| {
                format!(
                    "component {:?}: instrument name {name:?} is invalid (a letter, then up to 254 letters, digits, '_', '.', '-', '/'); its measurements are dropped",
                    component.name()
                )
            },
        );
    }
}

#[cold]
fn invalid_value(name: &str, value: f64, what: &str) {
    drop_once(
        Signal::Metrics,
        DropReason::InvalidInput,
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
#[derive(Debug, Clone, Copy)]
pub struct Counter(pub(crate) &'static Cell<otel::Counter<u64>>);

impl Counter {
    /// Adds `value`.
    #[inline]
    pub fn add(&self, value: u64, attrs: impl Attributes) {
        if let Some(c) = self.sdk() {
            attrs.with_slice(|kvs| c.add(value, kvs));
        }
    }

    /// A handle bound to one attribute set: its `add` skips the attribute lookup.
    pub fn bind(&self, attrs: impl Attributes) -> BoundCounter {
        BoundCounter {
            counter: *self,
            attrs: {
                let mut v = Vec::new();
                attrs.with_slice(|kvs| v.extend_from_slice(kvs));
                v
            },
            bound: Arc::new(OnceLock::new()),
        }
    }

    #[inline]
    fn sdk(&self) -> Option<&'static otel::Counter<u64>> {
        self.0
            .sdk(|m, cell| apply_options!(m.u64_counter(cell.name.clone()), cell).build())
    }
}

/// A [`Counter`] bound to a fixed attribute set ([`Counter::bind`]): the cheapest way to count
/// on a hot path. Cheap to clone; works once telemetry is configured, like every handle.
#[derive(Debug, Clone)]
pub struct BoundCounter {
    counter: Counter,
    attrs: Vec<opentelemetry::KeyValue>,
    bound: Arc<OnceLock<otel::BoundCounter<u64>>>,
}

impl BoundCounter {
    /// Adds `value`.
    #[inline]
    pub fn add(&self, value: u64) {
        if pipeline::active().is_none() {
            return;
        }
        if let Some(bound) = self.bound.get() {
            return bound.add(value);
        }
        if let Some(c) = self.counter.sdk() {
            self.bound.get_or_init(|| c.bind(&self.attrs)).add(value);
        }
    }
}

/// An `i64` counter that goes up and down (items in a queue, open connections).
#[derive(Debug, Clone, Copy)]
pub struct UpDownCounter(pub(crate) &'static Cell<otel::UpDownCounter<i64>>);

impl UpDownCounter {
    /// Adds `value`, which may be negative.
    #[inline]
    pub fn add(&self, value: i64, attrs: impl Attributes) {
        if let Some(c) = self
            .0
            .sdk(|m, cell| apply_options!(m.i64_up_down_counter(cell.name.clone()), cell).build())
        {
            attrs.with_slice(|kvs| c.add(value, kvs));
        }
    }
}

/// A distribution of `f64` values (Prometheus: `<name>_bucket`, `_sum`, `_count`).
#[derive(Debug, Clone, Copy)]
pub struct Histogram(pub(crate) &'static Cell<otel::Histogram<f64>>);

impl Histogram {
    /// Records `value`. NaN, infinities and negative values are dropped and counted.
    #[inline]
    pub fn record(&self, value: f64, attrs: impl Attributes) {
        let Some(h) = self.0.sdk(|m, cell| {
            let mut b = apply_options!(m.f64_histogram(cell.name.clone()), cell);
            if let Some(bounds) = &cell.options.boundaries {
                b = b.with_boundaries(bounds.clone());
            }
            b.build()
        }) else {
            return;
        };
        if valid(&self.0.name, value, false) {
            attrs.with_slice(|kvs| h.record(value, kvs));
        }
    }
}

/// A synchronous gauge: the last value set wins.
#[derive(Debug, Clone, Copy)]
pub struct Gauge(pub(crate) &'static Cell<otel::Gauge<f64>>);

impl Gauge {
    /// Sets the current value. NaN and infinities are dropped and counted.
    #[inline]
    pub fn set(&self, value: f64, attrs: impl Attributes) {
        let Some(g) = self
            .0
            .sdk(|m, cell| apply_options!(m.f64_gauge(cell.name.clone()), cell).build())
        else {
            return;
        };
        if valid(&self.0.name, value, true) {
            attrs.with_slice(|kvs| g.record(value, kvs));
        }
    }
}

/// The callback of an observable gauge, called at each collection.
pub(crate) type GaugeCallback = Arc<dyn Fn(&GaugeObserver<'_>) + Send + Sync>;

/// Passed to an observable gauge's callback; [`observe`](Self::observe) reports values.
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
///
/// It stays registered for the life of the process; keeping the handle is not required.
#[derive(Debug, Clone)]
pub struct ObservableGauge(pub(crate) Arc<ObservableCell>);

impl ObservableGauge {
    /// The instrument name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

#[derive(Debug)]
pub(crate) struct ObservableCell {
    pub(crate) name: Cow<'static, str>,
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

impl ObservableCell {
    pub(crate) fn new(
        component: &Component,
        name: Cow<'static, str>,
        options: InstrumentOptions,
        callback: GaugeCallback,
    ) -> Arc<Self> {
        check_name(component, &name);
        Arc::new(ObservableCell {
            name,
            options,
            callback: CallbackDebug(callback),
            sdk: OnceLock::new(),
        })
    }

    /// Registers the callback with the SDK, once, when a meter exists.
    pub(crate) fn register(&self, meter: &otel::Meter) {
        self.sdk.get_or_init(|| {
            let callback = self.callback.0.clone();
            let name = self.name.clone();
            apply_options!(meter.f64_observable_gauge(self.name.clone()), self)
                // No "is telemetry running" check here: the final collection at shutdown runs
                // after recording has stopped, and must still see the gauge.
                .with_callback(move |inner| callback(&GaugeObserver { name: &name, inner }))
                .build()
        });
    }
}
