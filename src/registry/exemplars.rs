//! Exemplars: for each series of a counter or histogram, the trace of a recent measurement,
//! so that a spike on a dashboard leads to the trace that made it (and from there to its logs).
//!
//! The SDK keeps none (opentelemetry_sdk 0.33 leaves its data points' exemplars empty and has
//! no public way to fill them), so the crate keeps its own, beside each instrument: a
//! measurement made inside a sampled span offers its value, time and the span's ids, and the
//! latest offer per series (and, for a histogram, per bucket) is kept. Outside a sampled span
//! nothing is kept, and the offer costs one read of the current context.
//!
//! Series are found by their attribute set through [`key`], which does not depend on the order
//! of the attributes (the SDK sorts them; callers pass them in any order). At most
//! [`MAX_SERIES`] series per instrument keep exemplars; later ones are left without.

use crate::sync::lock;
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue, Value};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::SystemTime;

/// The most series of one instrument that keep exemplars (the SDK's default cardinality limit).
pub(crate) const MAX_SERIES: usize = 2000;

/// One kept measurement and the span it was made in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    /// The measured value.
    pub(crate) value: f64,
    /// When it was measured.
    pub(crate) time: SystemTime,
    /// The trace of the span it was measured in.
    pub(crate) trace_id: TraceId,
    /// That span.
    pub(crate) span_id: SpanId,
}

/// The exemplars of one instrument, by series.
#[derive(Debug, Default)]
pub(crate) struct Exemplars {
    /// The latest exemplars of each series, by [`key`]: one per bucket for a histogram (a few
    /// per series, the most recent first), one for a counter.
    series: Mutex<HashMap<u64, Series>>,
}

/// The latest exemplars of one series, most recent first; a new one replaces those it makes
/// redundant (see [`Exemplars::offer`]).
type Series = Vec<Exemplar>;

/// At most this many exemplars per series (a histogram's buckets beyond that share them).
const PER_SERIES: usize = 16;

impl Exemplars {
    /// Offers a measurement of `value` on the series `key` (computed only when kept): kept
    /// when the current span is sampled. For a histogram with `bounds`, it replaces the
    /// exemplar of the same bucket; for a counter (`bounds` empty), the series' one.
    #[inline]
    pub(crate) fn offer(&self, value: f64, bounds: &[f64], key: impl FnOnce() -> u64) {
        let Some((trace_id, span_id)) = sampled_span() else {
            return;
        };
        self.keep(
            Exemplar {
                value,
                time: SystemTime::now(),
                trace_id,
                span_id,
            },
            bounds,
            key(),
        );
    }

    #[cold]
    #[inline(never)]
    fn keep(&self, exemplar: Exemplar, bounds: &[f64], key: u64) {
        let mut series = lock(&self.series);
        let len = series.len();
        let kept = match series.get_mut(&key) {
            Some(kept) => kept,
            None if len >= MAX_SERIES => return,
            None => series.entry(key).or_default(),
        };
        let at = bucket(bounds, exemplar.value);
        kept.retain(|e| bucket(bounds, e.value) != at);
        if kept.len() >= PER_SERIES {
            kept.pop();
        }
        kept.insert(0, exemplar);
    }

    /// The exemplars of the series with `attributes`, one per bucket of `bounds` (the data
    /// point's own boundaries; `len() + 1` buckets, the last `+Inf`), or a single one for a
    /// counter (`bounds` empty): the latest measurement that falls in each.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn of<'a>(
        &self,
        attributes: impl Iterator<Item = &'a KeyValue>,
        bounds: &[f64],
    ) -> Vec<Option<Exemplar>> {
        let mut buckets = vec![None; bounds.len() + 1];
        let series = lock(&self.series);
        if let Some(kept) = series.get(&key(attributes)) {
            // Most recent first: the first one seen in a bucket is its latest.
            for e in kept {
                let slot = &mut buckets[bucket(bounds, e.value)];
                if slot.is_none() {
                    *slot = Some(*e);
                }
            }
        }
        buckets
    }

    /// The latest exemplar of each series of `keys` (see [`key`]; a counter's: [`of`](Self::of)
    /// with no bounds). Looked up in batches, so that the lookups' cache misses overlap; the
    /// lock is taken once per batch, never long.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn latest_each(&self, keys: &[u64]) -> Vec<Option<Exemplar>> {
        let mut latest = Vec::with_capacity(keys.len());
        for batch in keys.chunks(64) {
            let series = lock(&self.series);
            latest.extend(
                batch
                    .iter()
                    .map(|key| series.get(key).and_then(|kept| kept.first().copied())),
            );
        }
        latest
    }

    /// Whether any series keeps an exemplar (else the encoder need not look up each one).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.series).is_empty()
    }
}

/// The bucket of `value` among upper bounds `bounds` (a value equal to a bound is in that
/// bucket, as the SDK counts it); `bounds.len()` is `+Inf`.
fn bucket(bounds: &[f64], value: f64) -> usize {
    bounds.partition_point(|b| *b < value)
}

/// The trace and span ids of the current span when it is sampled.
#[inline]
fn sampled_span() -> Option<(TraceId, SpanId)> {
    Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_sampled().then(|| (sc.trace_id(), sc.span_id()))
    })
}

/// The key of an attribute set, whatever the order of its attributes.
pub(crate) fn key<'a>(attributes: impl IntoIterator<Item = &'a KeyValue>) -> u64 {
    attributes
        .into_iter()
        .map(|kv| {
            let mut h = std::hash::DefaultHasher::new();
            kv.key.as_str().hash(&mut h);
            hash_value(&kv.value, &mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add)
}

fn hash_value(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Bool(b) => (0u8, b).hash(h),
        Value::I64(i) => (1u8, i).hash(h),
        Value::F64(f) => (2u8, f.to_bits()).hash(h),
        Value::String(s) => (3u8, s.as_str()).hash(h),
        other => (4u8, other.to_string()).hash(h),
    }
}

/// Scope name → instrument name → exemplars.
type Index = RwLock<HashMap<Box<str>, HashMap<Box<str>, &'static Exemplars>>>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(Default::default)
}

/// Makes `exemplars` the ones of instrument `name` of scope `scope` for [`find`].
pub(crate) fn register(scope: &str, name: &str, exemplars: &'static Exemplars) {
    let mut index = index().write().unwrap_or_else(|e| e.into_inner());
    index
        .entry(scope.into())
        .or_default()
        .insert(name.into(), exemplars);
}

/// The exemplars of instrument `name` of scope `scope`, if the crate keeps any for it.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
pub(crate) fn find(scope: &str, name: &str) -> Option<&'static Exemplars> {
    let index = index().read().unwrap_or_else(|e| e.into_inner());
    index.get(scope)?.get(name).copied()
}
