//! [`UnifiedTelemetry`]: the per-component handle, and the registry of components.

use crate::attributes::Attributes;
use crate::logs::{with_scratch, Record};
use crate::metrics::{
    Cell, Counter, Gauge, GaugeObserver, Histogram, InstrumentOptions, ObservableCell,
    ObservableGauge, UpDownCounter,
};
use crate::pipeline;
use crate::spans::{Span, SpanBuilder};
use opentelemetry::metrics::Meter;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::SdkTracer;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
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
    let name = component.as_ref();
    let mut registry = crate::sync::lock(registry());
    let component = registry
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Component::new(name)))
        .clone();
    UnifiedTelemetry { component }
}

type Registry = Mutex<HashMap<String, Arc<Component>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Registers the observable gauges of components made before `configure_telemetry`.
pub(crate) fn register_pending_observables() {
    let components: Vec<_> = crate::sync::lock(registry()).values().cloned().collect();
    for component in components {
        if let Some(meter) = component.meter() {
            for cell in crate::sync::lock(&component.observables).iter() {
                cell.register(meter);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Instrument {
    Counter(Counter),
    UpDownCounter(UpDownCounter),
    Histogram(Histogram),
    Gauge(Gauge),
}

/// Level not yet computed.
const LEVEL_UNKNOWN: u8 = u8::MAX;

/// One component's shared state.
#[derive(Debug)]
pub(crate) struct Component {
    /// Unique per component, for the per-thread instrument cache.
    id: usize,
    name: Box<str>,
    tracer: OnceLock<SdkTracer>,
    meter: OnceLock<Meter>,
    instruments: RwLock<HashMap<Cow<'static, str>, Instrument>>,
    observables: Mutex<Vec<Arc<ObservableCell>>>,
    /// The most verbose level its logs pass the filter at (0 = none, 1 = ERROR .. 5 = TRACE).
    log_level: AtomicU8,
}

impl Component {
    fn new(name: &str) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        Component {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            tracer: OnceLock::new(),
            meter: OnceLock::new(),
            instruments: RwLock::default(),
            observables: Mutex::default(),
            log_level: AtomicU8::new(LEVEL_UNKNOWN),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn scope(&self) -> InstrumentationScope {
        InstrumentationScope::builder(self.name.to_string()).build()
    }

    /// The SDK tracer for this component, once telemetry runs.
    #[inline]
    pub(crate) fn tracer(&self) -> Option<&SdkTracer> {
        if let Some(t) = self.tracer.get() {
            return Some(t);
        }
        let provider = pipeline::active()?.tracer_provider.as_ref()?;
        Some(self.tracer.get_or_init(|| {
            use opentelemetry::trace::TracerProvider as _;
            provider.tracer_with_scope(self.scope())
        }))
    }

    /// The SDK meter for this component, once telemetry runs.
    pub(crate) fn meter(&self) -> Option<&Meter> {
        if let Some(m) = self.meter.get() {
            return Some(m);
        }
        let provider = pipeline::active()?.meter_provider.as_ref()?;
        Some(self.meter.get_or_init(|| {
            use opentelemetry::metrics::MeterProvider as _;
            provider.meter_with_scope(self.scope())
        }))
    }

    /// Whether a log at `level` from this component passes the filter.
    #[inline]
    fn log_enabled(&self, level: Level) -> bool {
        let rank = level_rank(level);
        let cached = self.log_level.load(Ordering::Relaxed);
        if cached != LEVEL_UNKNOWN {
            return rank <= cached;
        }
        let Some(max) = pipeline::max_log_level(&self.name) else {
            return false;
        };
        self.log_level.store(max, Ordering::Relaxed);
        rank <= max
    }
}

pub(crate) fn level_rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// A per-thread, direct-mapped cache of instruments named by `&'static str`, keyed by the
/// component and the name's address: a by-name lookup on the hot path costs no lock, no hash
/// of the name and no reference count. Misses (and names built at run time) go to the
/// component's map.
mod fast {
    use super::Instrument;
    use std::cell::Cell;

    const SLOTS: usize = 64;
    type Slot = Option<(usize, usize, usize, Instrument)>;

    thread_local! {
        static CACHE: [Cell<Slot>; SLOTS] = const { [const { Cell::new(None) }; SLOTS] };
    }

    fn slot(component: usize, name: &'static str) -> usize {
        ((name.as_ptr() as usize >> 3) ^ component.wrapping_mul(0x9e37_79b9)) % SLOTS
    }

    #[inline]
    pub(super) fn get(component: usize, name: &'static str) -> Option<Instrument> {
        CACHE
            .try_with(|c| match c[slot(component, name)].get() {
                Some((comp, ptr, len, i))
                    if comp == component && ptr == name.as_ptr() as usize && len == name.len() =>
                {
                    Some(i)
                }
                _ => None,
            })
            .ok()
            .flatten()
    }

    pub(super) fn put(component: usize, name: &'static str, instrument: Instrument) {
        let _ = CACHE.try_with(|c| {
            c[slot(component, name)].set(Some((
                component,
                name.as_ptr() as usize,
                name.len(),
                instrument,
            )))
        });
    }
}

macro_rules! cached_instrument {
    ($self:ident, $name:ident, $options:expr, $variant:ident, $ty:ident) => {{
        if pipeline::is_disabled() {
            // Disabled for good: one shared instrument that never records, no lookup.
            static NOOP: OnceLock<$ty> = OnceLock::new();
            return *NOOP.get_or_init(|| {
                $ty(Cell::new(
                    $self.component.clone(),
                    "noop".into(),
                    Default::default(),
                ))
            });
        }
        let name: Cow<'static, str> = $name.into();
        let id = $self.component.id;
        if let Cow::Borrowed(static_name) = name {
            if let Some(Instrument::$variant(i)) = fast::get(id, static_name) {
                return i;
            }
        }
        let cached = crate::sync::read(&$self.component.instruments)
            .get(&name)
            .copied();
        let instrument = match cached {
            Some(Instrument::$variant(i)) => i,
            Some(_) => {
                // Same name, other kind: the SDK reports the conflict; keep the first cached.
                return $ty(Cell::new($self.component.clone(), name, $options));
            }
            None => {
                let mut map = crate::sync::write(&$self.component.instruments);
                match map.get(&name) {
                    Some(Instrument::$variant(i)) => *i,
                    Some(_) => return $ty(Cell::new($self.component.clone(), name, $options)),
                    None => {
                        let i = $ty(Cell::new($self.component.clone(), name.clone(), $options));
                        map.insert(name.clone(), Instrument::$variant(i));
                        i
                    }
                }
            }
        };
        if let Cow::Borrowed(static_name) = name {
            fast::put(id, static_name, Instrument::$variant(instrument));
        }
        instrument
    }};
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
        crate::current_trace_id()
    }

    /// The current span id (16 lowercase hex digits), `None` outside a span.
    #[doc(alias = "get_current_span_id")]
    pub fn current_span_id(&self) -> Option<String> {
        crate::current_span_id()
    }

    // ----- metrics -----

    /// The monotonic counter `name` of this component.
    pub fn counter(&self, name: impl Into<Cow<'static, str>>) -> Counter {
        self.counter_with(name, InstrumentOptions::default())
    }

    /// The counter `name`, made with `options` if it does not exist yet.
    pub fn counter_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Counter {
        cached_instrument!(self, name, options, Counter, Counter)
    }

    /// The up-down counter `name` of this component.
    pub fn up_down_counter(&self, name: impl Into<Cow<'static, str>>) -> UpDownCounter {
        self.up_down_counter_with(name, InstrumentOptions::default())
    }

    /// The up-down counter `name`, made with `options` if it does not exist yet.
    pub fn up_down_counter_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> UpDownCounter {
        cached_instrument!(self, name, options, UpDownCounter, UpDownCounter)
    }

    /// The histogram `name` of this component.
    pub fn histogram(&self, name: impl Into<Cow<'static, str>>) -> Histogram {
        self.histogram_with(name, InstrumentOptions::default())
    }

    /// The histogram `name`, made with `options` (unit, description, bucket boundaries) if it
    /// does not exist yet.
    pub fn histogram_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Histogram {
        cached_instrument!(self, name, options, Histogram, Histogram)
    }

    /// The synchronous gauge `name` of this component.
    pub fn gauge(&self, name: impl Into<Cow<'static, str>>) -> Gauge {
        self.gauge_with(name, InstrumentOptions::default())
    }

    /// The gauge `name`, made with `options` if it does not exist yet.
    pub fn gauge_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
    ) -> Gauge {
        cached_instrument!(self, name, options, Gauge, Gauge)
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
        self.observable_gauge_with(name, InstrumentOptions::default(), callback)
    }

    /// [`observable_gauge`](Self::observable_gauge) with unit and description.
    pub fn observable_gauge_with(
        &self,
        name: impl Into<Cow<'static, str>>,
        options: InstrumentOptions,
        callback: impl Fn(&GaugeObserver<'_>) + Send + Sync + 'static,
    ) -> ObservableGauge {
        let cell = ObservableCell::new(&self.component, name.into(), options, Arc::new(callback));
        crate::sync::lock(&self.component.observables).push(cell.clone());
        if let Some(meter) = self.component.meter() {
            cell.register(meter);
        }
        ObservableGauge(cell)
    }

    // ----- logs -----

    #[inline]
    fn log(
        &self,
        level: Level,
        message: &str,
        fields: &impl Attributes,
        error: Option<&(dyn std::error::Error + 'static)>,
    ) {
        let Some(outputs) = pipeline::active_logs() else {
            return;
        };
        if !self.component.log_enabled(level) {
            return;
        }
        let record = Record {
            time: std::time::SystemTime::now(),
            level,
            target: &self.component.name,
            component: &self.component.name,
            ids: crate::logs::layer::current_ids(),
        };
        with_scratch(|scratch| {
            scratch.message.push_str(message);
            fields.with_slice(|kvs| {
                for kv in kvs.iter() {
                    scratch.field_value(kv.key.as_str(), &kv.value);
                }
            });
            if let Some(err) = error {
                scratch.error(err);
            }
            outputs.emit(&record, scratch);
        });
    }

    /// Logs at DEBUG, stamped with the current trace and span ids.
    pub fn log_debug(&self, message: &str) {
        self.log(Level::DEBUG, message, &(), None)
    }

    /// Logs at DEBUG with extra fields.
    pub fn log_debug_with(&self, message: &str, fields: impl Attributes) {
        self.log(Level::DEBUG, message, &fields, None)
    }

    /// Logs at INFO, stamped with the current trace and span ids.
    pub fn log_info(&self, message: &str) {
        self.log(Level::INFO, message, &(), None)
    }

    /// Logs at INFO with extra fields: `log_info_with("Request received", &[("user_id", "123")])`.
    pub fn log_info_with(&self, message: &str, fields: impl Attributes) {
        self.log(Level::INFO, message, &fields, None)
    }

    /// Logs at WARN, stamped with the current trace and span ids.
    pub fn log_warning(&self, message: &str) {
        self.log(Level::WARN, message, &(), None)
    }

    /// Logs at WARN with extra fields.
    pub fn log_warning_with(&self, message: &str, fields: impl Attributes) {
        self.log(Level::WARN, message, &fields, None)
    }

    /// Logs at ERROR, stamped with the current trace and span ids.
    pub fn log_error(&self, message: &str) {
        self.log(Level::ERROR, message, &(), None)
    }

    /// Logs at ERROR with extra fields.
    pub fn log_error_with(&self, message: &str, fields: impl Attributes) {
        self.log(Level::ERROR, message, &fields, None)
    }

    /// Logs at ERROR with `err` and its `source()` chain (the seed's `exc_info=True`).
    pub fn log_error_with_cause(
        &self,
        message: &str,
        err: &(dyn std::error::Error + 'static),
        fields: impl Attributes,
    ) {
        self.log(Level::ERROR, message, &fields, Some(err))
    }
}
