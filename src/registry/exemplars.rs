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
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::SystemTime;

/// Whether measurements offer exemplars ([`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns exemplars on or off for the whole process (`TelemetryConfig::with_exemplars`).
pub(crate) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

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
    /// Each series' slots, by [`key`]: one per bucket of the instrument's bounds for a
    /// histogram (the last `+Inf`), one for a counter.
    series: Mutex<SeriesMap>,
}

/// Each series' slots by key, hashed by the key itself.
type SeriesMap = HashMap<u64, Box<[Option<Exemplar>]>, BuildHasherDefault<KeyHasher>>;

impl Exemplars {
    /// Offers a measurement of `value` on the series `key` (computed only when kept), made in
    /// the span of `cx`, or in the current span when `None` (instrumentation that records once
    /// its span has ended passes it). Kept when that span is sampled, in place of the one
    /// before it in the same bucket of `bounds` (a histogram's; empty for a counter, which
    /// keeps one per series).
    #[inline]
    pub(crate) fn offer(
        &self,
        cx: Option<&Context>,
        value: f64,
        bounds: &[f64],
        key: impl FnOnce() -> u64,
    ) {
        if !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let ids = match cx {
            Some(cx) => sampled(cx),
            None => Context::map_current(sampled),
        };
        if let Some(ids) = ids {
            self.keep(ids, value, bounds, key());
        }
    }

    fn keep(&self, (trace_id, span_id): (TraceId, SpanId), value: f64, bounds: &[f64], key: u64) {
        let exemplar = Exemplar {
            value,
            time: SystemTime::now(),
            trace_id,
            span_id,
        };
        let at = bucket(bounds, value);
        let mut series = lock(&self.series);
        if let Some(slots) = series.get_mut(&key) {
            if let Some(slot) = slots.get_mut(at) {
                *slot = Some(exemplar);
            }
        } else if series.len() < MAX_SERIES {
            let mut slots = vec![None; bounds.len() + 1].into_boxed_slice();
            slots[at] = Some(exemplar);
            series.insert(key, slots);
        }
    }

    /// The exemplars of the series with `attributes`, one per bucket of `bounds` (the data
    /// point's own boundaries; `len() + 1` buckets, the last `+Inf`), or a single one for a
    /// counter (`bounds` empty): the latest kept measurement that falls in each.
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub(crate) fn of<'a>(
        &self,
        attributes: impl IntoIterator<Item = &'a KeyValue>,
        bounds: &[f64],
    ) -> Vec<Option<Exemplar>> {
        let mut buckets: Vec<Option<Exemplar>> = vec![None; bounds.len() + 1];
        let series = lock(&self.series);
        let Some(slots) = series.get(&key(attributes)) else {
            return buckets;
        };
        // The same bounds as at record time (the usual case): slot for bucket. Otherwise (a
        // view changed them) each kept one goes to the bucket its value falls in now.
        for e in slots.iter().flatten() {
            let slot = &mut buckets[bucket(bounds, e.value)];
            if slot.is_none_or(|old| old.time <= e.time) {
                *slot = Some(*e);
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
            latest.extend(batch.iter().map(|key| {
                let slots = series.get(key)?;
                slots.iter().flatten().max_by_key(|e| e.time).copied()
            }));
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

/// The key of an attribute set, whatever the order of its attributes: the wrapping sum of
/// each attribute's hash.
pub(crate) fn key<'a>(attributes: impl IntoIterator<Item = &'a KeyValue>) -> u64 {
    attributes
        .into_iter()
        .map(|kv| {
            let mut h = FxHasher::default();
            h.write(kv.key.as_str().as_bytes());
            h.write_u8(0xff);
            hash_value(&kv.value, &mut h);
            h.finish()
        })
        .fold(0u64, u64::wrapping_add)
}

fn hash_value(value: &Value, h: &mut FxHasher) {
    match value {
        Value::Bool(b) => h.write_u64(u64::from(*b) | 1 << 8),
        Value::I64(i) => {
            h.write_u8(1);
            h.write_u64(*i as u64);
        }
        Value::F64(f) => {
            h.write_u8(2);
            h.write_u64(f.to_bits());
        }
        Value::String(s) => {
            h.write_u8(3);
            h.write(s.as_str().as_bytes());
        }
        other => {
            h.write_u8(4);
            h.write(other.to_string().as_bytes());
        }
    }
}

/// The rustc hasher: a multiply and a rotate per word. Attribute sets are the application's
/// own, not an attacker's, and the key only finds an exemplar (a collision costs one).
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ (rest.len() as u64) << 56);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        // A last mix, so that the sum of several attributes' hashes stays spread.
        let h = self.hash;
        (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (h >> 32)
    }
}

/// The map of series takes [`key`]'s value as its hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The trace and span ids of the span of `cx` when it is sampled.
#[inline]
fn sampled(cx: &Context) -> Option<(TraceId, SpanId)> {
    let span = cx.span();
    let sc = span.span_context();
    sc.is_sampled().then(|| (sc.trace_id(), sc.span_id()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    const BOUNDS: &[f64] = &[0.1, 0.5, 1.0];

    fn in_span<R>(sampled: bool, f: impl FnOnce() -> R) -> (R, TraceId, SpanId) {
        let sampler = if sampled {
            Sampler::AlwaysOn
        } else {
            Sampler::AlwaysOff
        };
        let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
        let tracer = provider.tracer("test");
        let cx = Context::current_with_span(tracer.start("op"));
        let sc = cx.span().span_context().clone();
        let _attached = cx.attach();
        (f(), sc.trace_id(), sc.span_id())
    }

    fn kvs(route: &str) -> Vec<KeyValue> {
        vec![
            KeyValue::new("http.route", route.to_owned()),
            KeyValue::new("status", 200),
        ]
    }

    #[test]
    fn a_key_ignores_order_and_tells_values_apart() {
        let a = kvs("/a");
        let reversed: Vec<KeyValue> = a.iter().rev().cloned().collect();
        assert_eq!(key(&a), key(&reversed));
        assert_ne!(key(&a), key(&kvs("/b")));
        assert_ne!(
            key(&[KeyValue::new("n", 1)]),
            key(&[KeyValue::new("n", "1")])
        );
        assert_ne!(
            key(&[KeyValue::new("n", 1.0)]),
            key(&[KeyValue::new("n", 2.0)])
        );
    }

    #[test]
    fn nothing_is_kept_outside_a_sampled_span() {
        let e = Exemplars::default();
        e.offer(None, 0.3, BOUNDS, || key(&kvs("/a")));
        in_span(false, || e.offer(None, 0.3, BOUNDS, || key(&kvs("/a"))));
        assert_eq!(e.of(kvs("/a").iter(), BOUNDS), vec![None; 4]);
    }

    #[test]
    fn a_histogram_keeps_the_latest_per_bucket_with_its_span() {
        let e = Exemplars::default();
        let (_, t1, s1) = in_span(true, || e.offer(None, 0.3, BOUNDS, || key(&kvs("/a"))));
        let (_, t2, s2) = in_span(true, || e.offer(None, 0.4, BOUNDS, || key(&kvs("/a"))));
        let (_, t3, _) = in_span(true, || e.offer(None, 7.0, BOUNDS, || key(&kvs("/a"))));
        in_span(true, || e.offer(None, 0.05, BOUNDS, || key(&kvs("/other"))));
        let got = e.of(kvs("/a").iter().rev(), BOUNDS);
        assert_eq!(got[0], None, "nothing measured at or below 0.1 on /a");
        let second = got[1].expect("0.4 is in (0.1, 0.5]");
        assert_eq!(
            (second.value, second.trace_id, second.span_id),
            (0.4, t2, s2)
        );
        assert_ne!((t1, s1), (t2, s2));
        assert_eq!(got[2], None);
        let inf = got[3].expect("7 is in +Inf");
        assert_eq!((inf.value, inf.trace_id), (7.0, t3));
        // A value equal to a bound is in that bound's bucket, as the SDK counts it.
        in_span(true, || e.offer(None, 1.0, BOUNDS, || key(&kvs("/a"))));
        assert_eq!(
            e.of(kvs("/a").iter(), BOUNDS)[2].map(|x| x.value),
            Some(1.0)
        );
        // Rendered with other bounds (a view), each bucket still gets its latest.
        let coarse = e.of(kvs("/a").iter(), &[2.0]);
        assert_eq!(coarse[0].map(|x| x.value), Some(1.0));
        assert_eq!(coarse[1].map(|x| x.value), Some(7.0));
    }

    #[test]
    fn a_counter_keeps_one_per_series() {
        let e = Exemplars::default();
        in_span(true, || e.offer(None, 1.0, &[], || key(&kvs("/a"))));
        let (_, t, s) = in_span(true, || e.offer(None, 3.0, &[], || key(&kvs("/a"))));
        let got = e.of(kvs("/a").iter(), &[]);
        assert_eq!(got.len(), 1);
        let only = got[0].expect("kept");
        assert_eq!((only.value, only.trace_id, only.span_id), (3.0, t, s));
    }

    #[test]
    fn series_past_the_limit_keep_none() {
        let e = Exemplars::default();
        in_span(true, || {
            for i in 0..=MAX_SERIES {
                e.offer(None, 1.0, &[], || key(&[KeyValue::new("i", i as i64)]));
            }
        });
        let first = e.of([KeyValue::new("i", 0)].iter(), &[]);
        assert!(first[0].is_some());
        let over = e.of([KeyValue::new("i", MAX_SERIES as i64)].iter(), &[]);
        assert_eq!(over[0], None);
    }

    #[test]
    fn the_index_finds_an_instrument_by_scope_and_name() {
        static E: OnceLock<Exemplars> = OnceLock::new();
        let e = E.get_or_init(Exemplars::default);
        register("exemplar-test-scope", "latency", e);
        assert!(find("exemplar-test-scope", "latency").is_some_and(|f| std::ptr::eq(f, e)));
        assert!(find("exemplar-test-scope", "other").is_none());
        assert!(find("other-scope", "latency").is_none());
    }
}
