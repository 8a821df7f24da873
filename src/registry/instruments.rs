//! Instrument cells and the instrument cache.
//!
//! An instrument lives for the rest of the process in an [`InstrumentCell`], like the component
//! that owns it: handles are plain `&'static` references, cheap to copy and free of reference
//! counting. The SDK instrument inside is made on first use after `configure_telemetry`, so a
//! handle taken earlier starts recording once telemetry runs.
//!
//! Finding an instrument by name goes first through a per-thread, direct-mapped cache keyed by
//! the component and the address of a `&'static str` name: no lock, no hash of the name, no
//! reference count. Misses (and names built at run time) go to the component's map.

use super::Component;
use crate::diagnostics::{drop_once, DropReason, Output, Signal};
use crate::state;
use opentelemetry::metrics::{self as otel, Meter};
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

/// One instrument of a component: its name, options, and SDK instrument once made.
pub(crate) struct InstrumentCell<I> {
    component: Arc<Component>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) options: InstrumentOptions,
    sdk: OnceLock<I>,
}

impl<I> std::fmt::Debug for InstrumentCell<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrument")
            .field("component", &self.component.name())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<I: Send + Sync> InstrumentCell<I> {
    /// A cell for the rest of the process. An invalid name is reported once; the SDK will
    /// hand out an instrument that records nothing.
    fn new(
        component: Arc<Component>,
        name: Cow<'static, str>,
        options: InstrumentOptions,
    ) -> &'static Self {
        check_name(&component, &name);
        Box::leak(Box::new(InstrumentCell {
            component,
            name,
            options,
            sdk: OnceLock::new(),
        }))
    }

    /// The SDK instrument, made by `build` on first use; `None` while telemetry is not running.
    #[inline]
    pub(crate) fn sdk(&'static self, build: impl FnOnce(&Meter, &Self) -> I) -> Option<&'static I> {
        state::active()?;
        if let Some(i) = self.sdk.get() {
            return Some(i);
        }
        let meter = self.component.meter()?;
        Some(self.sdk.get_or_init(|| build(meter, self)))
    }
}

/// Checks the name against the OpenTelemetry instrument-name rules (the SDK would otherwise
/// silently hand out a no-op instrument).
pub(crate) fn check_name(component: &Component, name: &str) {
    let mut chars = name.chars();
    let valid = name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !valid {
        drop_once(
            Output::Pipeline,
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

/// A cached instrument of any kind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Instrument {
    Counter(&'static InstrumentCell<otel::Counter<u64>>),
    UpDownCounter(&'static InstrumentCell<otel::UpDownCounter<i64>>),
    Histogram(&'static InstrumentCell<otel::Histogram<f64>>),
    Gauge(&'static InstrumentCell<otel::Gauge<f64>>),
}

/// An SDK instrument kind the cache holds.
pub(crate) trait SdkInstrument: Sized + Send + Sync + 'static {
    fn wrap(cell: &'static InstrumentCell<Self>) -> Instrument;
    fn unwrap(instrument: Instrument) -> Option<&'static InstrumentCell<Self>>;
    /// The one instrument handed out, without lookup, while telemetry is disabled for good.
    fn noop() -> &'static OnceLock<&'static InstrumentCell<Self>>;
}

macro_rules! sdk_instrument {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl SdkInstrument for $ty {
            #[inline]
            fn wrap(cell: &'static InstrumentCell<Self>) -> Instrument {
                Instrument::$variant(cell)
            }
            #[inline]
            fn unwrap(instrument: Instrument) -> Option<&'static InstrumentCell<Self>> {
                match instrument {
                    Instrument::$variant(cell) => Some(cell),
                    _ => None,
                }
            }
            #[inline]
            fn noop() -> &'static OnceLock<&'static InstrumentCell<Self>> {
                static NOOP: OnceLock<&'static InstrumentCell<$ty>> = OnceLock::new();
                &NOOP
            }
        }
    )*};
}

sdk_instrument! {
    otel::Counter<u64> => Counter,
    otel::UpDownCounter<i64> => UpDownCounter,
    otel::Histogram<f64> => Histogram,
    otel::Gauge<f64> => Gauge,
}

/// `component`'s instrument `name` of kind `I`, made with `options` if it does not exist yet.
///
/// A name already taken by another kind gets an instrument of its own that is not cached (the
/// SDK reports the conflict); the first one stays cached.
#[inline]
pub(crate) fn instrument<I: SdkInstrument>(
    component: &Arc<Component>,
    name: Cow<'static, str>,
    options: InstrumentOptions,
) -> &'static InstrumentCell<I> {
    if state::is_disabled() {
        // Disabled for good: one shared instrument that never records, no lookup.
        return I::noop()
            .get_or_init(|| InstrumentCell::new(component.clone(), "noop".into(), options));
    }
    let id = component.id;
    let static_name = match name {
        Cow::Borrowed(static_name) => Some(static_name),
        Cow::Owned(_) => None,
    };
    if let Some(cell) = static_name
        .and_then(|static_name| fast::get(id, static_name))
        .and_then(I::unwrap)
    {
        return cell;
    }
    let cell = match cached_or_new(component, name, options) {
        Ok(cell) => cell,
        Err((name, options)) => return InstrumentCell::new(component.clone(), name, options),
    };
    if let Some(static_name) = static_name {
        fast::put(id, static_name, I::wrap(cell));
    }
    cell
}

/// The component's cached instrument, made and cached if missing; the name and options back
/// when the name is cached with another kind.
fn cached_or_new<I: SdkInstrument>(
    component: &Arc<Component>,
    name: Cow<'static, str>,
    options: InstrumentOptions,
) -> Result<&'static InstrumentCell<I>, (Cow<'static, str>, InstrumentOptions)> {
    let cached = crate::sync::read(&component.instruments)
        .get(&name)
        .copied();
    let cached = match cached {
        Some(cached) => cached,
        None => {
            let mut map = crate::sync::write(&component.instruments);
            match map.get(&name) {
                Some(cached) => *cached,
                None => {
                    let cell = InstrumentCell::new(component.clone(), name.clone(), options);
                    map.insert(name, I::wrap(cell));
                    return Ok(cell);
                }
            }
        }
    };
    I::unwrap(cached).ok_or((name, options))
}

/// The per-thread cache of instruments named by `&'static str`.
mod fast {
    use super::Instrument;
    use std::cell::Cell;

    const BITS: u32 = 6;
    const SLOTS: usize = 1 << BITS;
    type Slot = Option<(usize, usize, usize, Instrument)>;

    thread_local! {
        static CACHE: [Cell<Slot>; SLOTS] = const { [const { Cell::new(None) }; SLOTS] };
    }

    fn slot(component: usize, name: &'static str) -> usize {
        crate::sync::address_slot(name.as_ptr() as usize, component, BITS)
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
