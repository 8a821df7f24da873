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

use super::exemplars::{self, Exemplars};
use super::Component;
use crate::diagnostics::{drop_counted, drop_once, DropReason, Output, Signal};
use crate::state;
use opentelemetry::metrics::{self as otel, Meter};
use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// Unit, description and (for histograms) bucket boundaries of an instrument, for the
/// `_with_options` methods of [`UnifiedTelemetry`](crate::UnifiedTelemetry).
///
/// Options take effect when an instrument of that name is first made in a component; later
/// calls with the same name return the cached instrument.
///
/// ```
/// use unitel::InstrumentOptions;
/// # let capture = unitel::testing::capture();
///
/// let telemetry = unitel::get_telemetry("api_gateway");
/// let duration = telemetry.histogram_with_options(
///     "http.server.duration", // Prometheus: http_server_duration_seconds_bucket, ...
///     InstrumentOptions::new()
///         .with_unit("s")
///         .with_description("Time to answer a request")
///         .with_boundaries([0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
/// );
/// duration.record(0.042, &[("http.route", "/orders/{id}")]);
/// # use unitel::testing::PointValue;
/// # let point = capture.point("api_gateway", "http.server.duration", &[("http.route", "/orders/{id}")]);
/// # let Some(PointValue::Histogram { bounds, bucket_counts, .. }) = point else { panic!("{point:?}") };
/// # assert_eq!((bounds.len(), bucket_counts[1]), (6, 1));
/// ```
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

/// The SDK's histogram boundaries when none are given (opentelemetry_sdk's
/// `DEFAULT_BOUNDARIES`, private there; the spec's default).
const DEFAULT_BOUNDARIES: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// One instrument of a component: its name, options, and SDK instrument once made.
pub(crate) struct InstrumentCell<I> {
    component: Arc<Component>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) options: InstrumentOptions,
    sdk: OnceLock<I>,
    /// Why this instrument drops every measurement instead of recording it, if it does.
    rejected: Option<Rejected>,
    /// Whether the first dropped measurement has been described.
    reported: AtomicBool,
    /// The latest traced measurements of each series (counters and histograms offer them).
    pub(crate) exemplars: Exemplars,
}

/// Why an instrument records nothing.
#[derive(Debug)]
enum Rejected {
    /// The SDK would refuse its name, unit or bucket boundaries (and hand out a no-op).
    Invalid(String),
    /// Its name is held by an instrument of another kind in the same component.
    Conflict {
        kind: &'static str,
        holder: &'static str,
    },
}

impl<I> std::fmt::Debug for InstrumentCell<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrument")
            .field("component", &self.component.name())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<I: SdkInstrument> InstrumentCell<I> {
    /// A cell for the rest of the process. One the SDK would refuse records nothing: each of
    /// its measurements is counted as dropped, and the first described.
    fn new(
        component: Arc<Component>,
        name: Cow<'static, str>,
        options: InstrumentOptions,
    ) -> &'static Self {
        let rejected = invalid(&name, &options, I::BUCKETED).map(Rejected::Invalid);
        Self::leak(component, name, options, rejected)
    }

    fn leak(
        component: Arc<Component>,
        name: Cow<'static, str>,
        options: InstrumentOptions,
        rejected: Option<Rejected>,
    ) -> &'static Self {
        let cell: &'static Self = Box::leak(Box::new(InstrumentCell {
            component,
            name,
            options,
            sdk: OnceLock::new(),
            rejected,
            reported: AtomicBool::new(false),
            exemplars: Exemplars::default(),
        }));
        if cell.rejected.is_none() {
            exemplars::register(cell.component.name(), &cell.name, &cell.exemplars);
        }
        cell
    }
}

impl<I> InstrumentCell<I> {
    /// A histogram's bucket boundaries, as the SDK counts them: the given ones, else the
    /// SDK's defaults.
    pub(crate) fn bounds(&self) -> &[f64] {
        self.options
            .boundaries
            .as_deref()
            .unwrap_or(DEFAULT_BOUNDARIES)
    }
}

impl<I: Send + Sync> InstrumentCell<I> {
    /// The SDK instrument, made by `build` on first use; `None` while telemetry is not running,
    /// and for an instrument that records nothing (the measurement is then counted).
    #[inline]
    pub(crate) fn sdk(&'static self, build: impl FnOnce(&Meter, &Self) -> I) -> Option<&'static I> {
        state::active()?;
        if let Some(i) = self.sdk.get() {
            return Some(i);
        }
        if let Some(rejected) = &self.rejected {
            self.dropped(rejected);
            return None;
        }
        let meter = self.component.meter()?;
        Some(self.sdk.get_or_init(|| build(meter, self)))
    }

    #[cold]
    fn dropped(&self, rejected: &Rejected) {
        let (reason, why) = match rejected {
            Rejected::Invalid(why) => (DropReason::InvalidInput, why.clone()),
            Rejected::Conflict { kind, holder } => (
                DropReason::NameConflict,
                format!("a {holder} of that name already exists, so this {kind} records nothing"),
            ),
        };
        drop_counted(
            Output::Pipeline,
            Signal::Metrics,
            reason,
            1,
            &self.reported,
            &|| {
                format!(
                    "component {:?}, instrument {:?}: {why}; each measurement is dropped and counted (unitel::dropped(Metrics, {reason:?}))",
                    self.component.name(),
                    self.name
                )
            },
        );
    }
}

/// Why the SDK would refuse an instrument (it would hand out one that silently records
/// nothing): the OpenTelemetry rules for names and units, and increasing, finite histogram
/// boundaries.
fn invalid(name: &str, options: &InstrumentOptions, histogram: bool) -> Option<String> {
    let mut chars = name.chars();
    let name_ok = name.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if !name_ok {
        return Some(
            "the name is invalid (a letter, then up to 254 letters, digits, '_', '.', '-', '/')"
                .to_owned(),
        );
    }
    if let Some(unit) = &options.unit {
        if unit.len() > 63 || !unit.is_ascii() {
            return Some(format!(
                "unit {unit:?} is invalid (at most 63 ASCII characters, e.g. \"ms\", \"By\", \"{{request}}\")"
            ));
        }
    }
    if let Some(bounds) = options.boundaries.as_deref().filter(|_| histogram) {
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Some(format!(
                "bucket boundaries {bounds:?} are invalid (finite and strictly increasing)"
            ));
        }
    }
    None
}

/// Checks the name of an observable instrument (the SDK would otherwise silently never call
/// its callback): said once and counted once.
pub(crate) fn check_name(component: &Component, name: &str, options: &InstrumentOptions) {
    if let Some(why) = invalid(name, options, false) {
        drop_once(
            Output::Pipeline,
            Signal::Metrics,
            DropReason::InvalidInput,
            1,
            &format!("name:{}:{name}", component.name()),
            &|| {
                format!(
                    "component {:?}, instrument {name:?}: {why}; it records nothing",
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
    /// The kind, as messages name it: `counter`, `up-down counter`, `histogram`, `gauge`.
    const KIND: &'static str;
    /// Whether the instrument uses bucket boundaries (a histogram), so they must be valid.
    const BUCKETED: bool;
    fn wrap(cell: &'static InstrumentCell<Self>) -> Instrument;
    fn unwrap(instrument: Instrument) -> Option<&'static InstrumentCell<Self>>;
    /// The one instrument handed out, without lookup, while telemetry is disabled for good.
    fn noop() -> &'static OnceLock<&'static InstrumentCell<Self>>;
}

macro_rules! sdk_instrument {
    ($($ty:ty => $variant:ident, $kind:literal, $bucketed:literal),* $(,)?) => {
    $(
        impl SdkInstrument for $ty {
            const KIND: &'static str = $kind;
            const BUCKETED: bool = $bucketed;
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
    )*
        impl Instrument {
            /// The kind of the cached instrument, as messages name it.
            fn kind(self) -> &'static str {
                match self {
                    $(Instrument::$variant(_) => <$ty as SdkInstrument>::KIND,)*
                }
            }
        }
    };
}

sdk_instrument! {
    otel::Counter<u64> => Counter, "counter", false,
    otel::UpDownCounter<i64> => UpDownCounter, "up-down counter", false,
    otel::Histogram<f64> => Histogram, "histogram", true,
    otel::Gauge<f64> => Gauge, "gauge", false,
}

/// `component`'s instrument `name` of kind `I`, made with `options` if it does not exist yet.
///
/// A name already taken by another kind gets an instrument of its own that records nothing and
/// counts what it drops (`NameConflict`), made once per name and kind; the first one keeps
/// the name.
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
        Err((name, options, holder)) => return conflicting(component, name, options, holder),
    };
    if let Some(static_name) = static_name {
        fast::put(id, static_name, I::wrap(cell));
    }
    cell
}

/// The instrument of kind `I` asked for under `name`, which an instrument of kind `holder`
/// holds: one that records nothing, the same for every call.
#[cold]
fn conflicting<I: SdkInstrument>(
    component: &Arc<Component>,
    name: Cow<'static, str>,
    options: InstrumentOptions,
    holder: &'static str,
) -> &'static InstrumentCell<I> {
    let mut conflicts = crate::sync::lock(&component.conflicts);
    if let Some(cell) = conflicts
        .iter()
        .filter_map(|i| I::unwrap(*i))
        .find(|cell| cell.name == name)
    {
        return cell;
    }
    let rejected = Rejected::Conflict {
        kind: I::KIND,
        holder,
    };
    let cell = InstrumentCell::leak(component.clone(), name, options, Some(rejected));
    conflicts.push(I::wrap(cell));
    cell
}

/// The component's cached instrument, made and cached if missing; the name and options back,
/// with the holder's kind, when the name is cached with another kind.
#[allow(clippy::type_complexity)]
fn cached_or_new<I: SdkInstrument>(
    component: &Arc<Component>,
    name: Cow<'static, str>,
    options: InstrumentOptions,
) -> Result<&'static InstrumentCell<I>, (Cow<'static, str>, InstrumentOptions, &'static str)> {
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
    I::unwrap(cached).ok_or_else(|| (name, options, cached.kind()))
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
