//! The component registry: one shared [`Component`] per name, holding what its spans, metrics
//! and logs need (its tracer and meter, made once telemetry runs; its instruments; its log
//! level), and the instrument cache ([`instruments`]).

pub(crate) mod exemplars;
mod instruments;

pub use self::instruments::InstrumentOptions;
pub(crate) use self::instruments::{check_name, instrument, InstrumentCell};

use crate::state;
use opentelemetry::metrics::Meter;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::trace::SdkTracer;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

type Registry = Mutex<HashMap<String, Arc<Component>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The shared component `name`, created on first use.
pub(crate) fn component(name: &str) -> Arc<Component> {
    crate::sync::lock(registry())
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Component::new(name)))
        .clone()
}

/// Registers the observable instruments of components made before `configure_telemetry`.
pub(crate) fn register_pending_observables() {
    let components: Vec<_> = crate::sync::lock(registry()).values().cloned().collect();
    for component in components {
        if let Some(meter) = component.meter() {
            for observable in crate::sync::lock(&component.observables).iter() {
                observable.register(meter);
            }
        }
    }
}

/// An instrument whose values a callback reports at collection: it is registered with the
/// component's meter once one exists.
pub(crate) trait Observable: Send + Sync {
    /// Registers the callback with `meter`, once.
    fn register(&self, meter: &Meter);
}

/// Level not yet computed.
const LEVEL_UNKNOWN: u8 = u8::MAX;

/// One component's shared state.
pub(crate) struct Component {
    /// Unique per component, for the per-thread instrument cache.
    id: usize,
    name: Box<str>,
    tracer: OnceLock<SdkTracer>,
    meter: OnceLock<Meter>,
    instruments: RwLock<HashMap<Cow<'static, str>, instruments::Instrument>>,
    /// Instruments asked for under a name another kind holds: one per name and kind, each
    /// dropping (and counting) what it is given.
    conflicts: Mutex<Vec<instruments::Instrument>>,
    observables: Mutex<Vec<Arc<dyn Observable>>>,
    /// The most verbose level its logs pass the filter at, as the logs module ranks levels.
    log_level: AtomicU8,
}

impl std::fmt::Debug for Component {
    // The name is enough: instruments point back at their component.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Component {
    fn new(name: &str) -> Self {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
        Component {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            tracer: OnceLock::new(),
            meter: OnceLock::new(),
            instruments: RwLock::default(),
            conflicts: Mutex::default(),
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
        let provider = state::active()?.tracer_provider.as_ref()?;
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
        let provider = state::active()?.meter_provider.as_ref()?;
        Some(self.meter.get_or_init(|| {
            use opentelemetry::metrics::MeterProvider as _;
            provider.meter_with_scope(self.scope())
        }))
    }

    /// Keeps `observable` for the life of the process and registers it now if telemetry runs
    /// (else when it starts).
    pub(crate) fn add_observable(&self, observable: Arc<dyn Observable>) {
        crate::sync::lock(&self.observables).push(observable.clone());
        if let Some(meter) = self.meter() {
            observable.register(meter);
        }
    }

    /// The most verbose log level of this component that passes the filter, computed once by
    /// `compute` (`None`: telemetry is not running yet, ask again later).
    #[inline]
    pub(crate) fn max_log_level(&self, compute: impl FnOnce(&str) -> Option<u8>) -> Option<u8> {
        let cached = self.log_level.load(Ordering::Relaxed);
        if cached != LEVEL_UNKNOWN {
            return Some(cached);
        }
        let max = compute(&self.name)?;
        self.log_level.store(max, Ordering::Relaxed);
        Some(max)
    }
}
