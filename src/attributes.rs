//! Attributes as `&[(key, value)]`: the conversions behind every `attrs`/`fields` argument.

use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Attribute lists short enough to live on the stack.
type AttrVec = SmallVec<[KeyValue; 4]>;

/// A type usable as an attribute key: `&'static str` (no allocation), `String`, `Cow`, [`Key`].
/// Example: [`Attributes`].
pub trait IntoKey {
    /// The key.
    fn to_key(&self) -> Key;
}

impl IntoKey for &'static str {
    #[inline]
    fn to_key(&self) -> Key {
        Key::from_static_str(self)
    }
}
impl IntoKey for String {
    fn to_key(&self) -> Key {
        Key::new(self.clone())
    }
}
impl IntoKey for Cow<'static, str> {
    fn to_key(&self) -> Key {
        Key::new(self.clone())
    }
}
impl IntoKey for Key {
    fn to_key(&self) -> Key {
        self.clone()
    }
}

/// A type usable as an attribute value: strings, integers, floats, booleans and arrays of them.
///
/// Integers wider than `i64` saturate. A `&str` of any lifetime is accepted; one that is used
/// again and again (a literal, a route) is copied once and then shared, so a literal costs no
/// allocation after its first uses. Example: [`Attributes`].
pub trait IntoValue {
    /// The value.
    fn to_value(&self) -> Value;
}

impl IntoValue for &str {
    #[inline]
    fn to_value(&self) -> Value {
        Value::String(borrowed::string_value(self))
    }
}
impl IntoValue for String {
    fn to_value(&self) -> Value {
        Value::String(StringValue::from(self.clone()))
    }
}
impl IntoValue for Cow<'static, str> {
    fn to_value(&self) -> Value {
        Value::String(StringValue::from(self.clone()))
    }
}
impl IntoValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}
impl IntoValue for f64 {
    fn to_value(&self) -> Value {
        Value::F64(*self)
    }
}
impl IntoValue for f32 {
    fn to_value(&self) -> Value {
        Value::F64(f64::from(*self))
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            #[inline]
            fn to_value(&self) -> Value {
                Value::I64(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_value!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl IntoValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl IntoValue for Vec<&'static str> {
    fn to_value(&self) -> Value {
        Value::Array(Array::String(
            self.iter().map(|s| StringValue::from(*s)).collect(),
        ))
    }
}
impl IntoValue for Vec<String> {
    fn to_value(&self) -> Value {
        Value::Array(Array::String(
            self.iter().map(|s| StringValue::from(s.clone())).collect(),
        ))
    }
}
impl IntoValue for Vec<i64> {
    fn to_value(&self) -> Value {
        Value::Array(Array::I64(self.clone()))
    }
}
impl IntoValue for Vec<f64> {
    fn to_value(&self) -> Value {
        Value::Array(Array::F64(self.clone()))
    }
}
impl IntoValue for Vec<bool> {
    fn to_value(&self) -> Value {
        Value::Array(Array::Bool(self.clone()))
    }
}
impl IntoValue for &String {
    fn to_value(&self) -> Value {
        Value::String(StringValue::from((*self).clone()))
    }
}

/// A list of attributes, always borrowed: `&[("method", "POST"), ("status", "200")]`, `&vec`,
/// `&[KeyValue]`, or `()` for none.
///
/// All values in one slice share a type; mix types with [`Value`]:
/// `&[("method", Value::from("POST")), ("status", Value::from(200))]`.
///
/// To pass attributes of a type of your own, implement [`extend_into`](Self::extend_into) and
/// [`len_hint`](Self::len_hint).
///
/// ```
/// use unitel::{KeyValue, Value};
/// # let capture = unitel::testing::capture();
/// let orders = unitel::get_telemetry("orders").counter("orders_placed");
///
/// orders.add(1, ()); // none
/// orders.add(1, &[("payment", "card"), ("region", "eu-west")]);
/// let region = String::from("eu-west"); // borrowed values are fine too
/// orders.add(1, &[("payment", "card"), ("region", region.as_str())]);
/// orders.add(1, &vec![("payment", "invoice".to_owned())]); // built at run time
/// orders.add(1, &[("payment", Value::from("card")), ("items", Value::from(3))]); // mixed types
/// orders.add(1, &[KeyValue::new("payment", "card")]); // OpenTelemetry's own
///
/// // A type of your own:
/// struct Checkout<'a> {
///     payment: &'a str,
///     region: &'a str,
/// }
/// impl unitel::Attributes for Checkout<'_> {
///     fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
///         out.extend([
///             KeyValue::new("payment", self.payment.to_owned()),
///             KeyValue::new("region", self.region.to_owned()),
///         ]);
///     }
///     fn len_hint(&self) -> usize {
///         2
///     }
/// }
/// orders.add(1, Checkout { payment: "card", region: "eu-west" });
/// # assert_eq!(capture.counter("orders", "orders_placed", &[("payment", "card"), ("region", "eu-west")]), Some(3));
/// ```
pub trait Attributes {
    /// Appends the attributes to `out`.
    fn extend_into(&self, out: &mut impl Extend<KeyValue>);
    /// The number of attributes, for sizing.
    fn len_hint(&self) -> usize;
    /// Runs `f` with the attributes as one slice, built in place (on the stack for up to four).
    #[inline]
    fn with_slice<R>(&self, f: impl FnOnce(&mut [KeyValue]) -> R) -> R
    where
        Self: Sized,
    {
        if self.len_hint() == 0 {
            return f(&mut []);
        }
        let mut out = AttrVec::new();
        self.extend_into(&mut out);
        f(&mut out)
    }
}

impl Attributes for () {
    #[inline]
    fn extend_into(&self, _: &mut impl Extend<KeyValue>) {}
    #[inline]
    fn len_hint(&self) -> usize {
        0
    }
}

impl<K: IntoKey, V: IntoValue> Attributes for &[(K, V)] {
    #[inline]
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend(
            self.iter()
                .map(|(k, v)| KeyValue::new(k.to_key(), v.to_value())),
        );
    }
    #[inline]
    fn len_hint(&self) -> usize {
        self.len()
    }
}

impl<K: IntoKey, V: IntoValue, const N: usize> Attributes for &[(K, V); N] {
    #[inline]
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        self.as_slice().extend_into(out)
    }
    #[inline]
    fn len_hint(&self) -> usize {
        N
    }
    /// A fixed-size list becomes a `[KeyValue; N]` directly, as a hand-written SDK call would.
    #[inline]
    fn with_slice<R>(&self, f: impl FnOnce(&mut [KeyValue]) -> R) -> R {
        let mut kvs: [KeyValue; N] =
            std::array::from_fn(|i| KeyValue::new(self[i].0.to_key(), self[i].1.to_value()));
        f(&mut kvs)
    }
}

impl<K: IntoKey, V: IntoValue> Attributes for &Vec<(K, V)> {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        self.as_slice().extend_into(out)
    }
    fn len_hint(&self) -> usize {
        self.len()
    }
}

impl Attributes for &[KeyValue] {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend(self.iter().cloned());
    }
    fn len_hint(&self) -> usize {
        self.len()
    }
}

impl<const N: usize> Attributes for &[KeyValue; N] {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend(self.iter().cloned());
    }
    fn len_hint(&self) -> usize {
        N
    }
}

impl Attributes for &Vec<KeyValue> {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend(self.iter().cloned());
    }
    fn len_hint(&self) -> usize {
        self.len()
    }
}

/// Collects attributes into a vector (on the stack for up to four), each key once: a key
/// given twice keeps its first place and its last value ([`dedup_keys`]).
#[inline]
pub(crate) fn collect(attrs: &(impl Attributes + ?Sized)) -> SmallVec<[KeyValue; 4]> {
    let mut out = AttrVec::new();
    attrs.extend_into(&mut out);
    let kept = dedup_keys(&mut out);
    out.truncate(kept);
    out
}

/// One bit of 64 for `key`, from its length and last byte. Keys with different bits differ,
/// so a list whose keys all have different bits has no key twice: the common case is told
/// without comparing a single key.
#[inline]
pub(crate) fn key_bit(key: &str) -> u64 {
    let last = key.as_bytes().last().copied().unwrap_or(0);
    1 << ((key.len() + usize::from(last)) & 63)
}

/// Whether a key may be in `attrs` twice (never false when one is; rarely true when none is).
#[inline]
pub(crate) fn may_repeat_keys(attrs: &[KeyValue]) -> bool {
    let mut bits = 0u64;
    for kv in attrs {
        let bit = key_bit(kv.key.as_str());
        if bits & bit != 0 {
            return true;
        }
        bits |= bit;
    }
    false
}

/// Keeps each key of `attrs` once, in its first place, with its last value (the last one
/// wins, as OpenTelemetry says of attributes). The kept attributes are moved to the front;
/// returns how many there are, for the caller to truncate to. No allocation; without a key
/// given twice, one pass over the keys' lengths and last bytes.
pub(crate) fn dedup_keys(attrs: &mut [KeyValue]) -> usize {
    if !may_repeat_keys(attrs) {
        return attrs.len();
    }
    let mut kept = 0;
    for i in 0..attrs.len() {
        let key = attrs[i].key.as_str();
        match attrs[..kept].iter().position(|kv| kv.key.as_str() == key) {
            Some(first) => {
                let value = std::mem::replace(&mut attrs[i].value, Value::Bool(false));
                attrs[first].value = value;
            }
            None => {
                attrs.swap(kept, i);
                kept += 1;
            }
        }
    }
    kept
}

/// A finished span as an exporter or another processor should see it: its attributes and each
/// event's with every key once, the last value winning. The SDK appends every `set_attribute`
/// (a span's `.attr()` after it started, a `tracing` span's `record`) without replacing.
pub(crate) fn dedup_span_keys(span: &mut opentelemetry_sdk::trace::SpanData) {
    let kept = dedup_keys(&mut span.attributes);
    span.attributes.truncate(kept);
    for event in &mut span.events.events {
        let kept = dedup_keys(&mut event.attributes);
        event.attributes.truncate(kept);
    }
}

/// For a list that may hold a key twice ([`may_repeat_keys`]) and is written as it is (a span's
/// attributes in a span record): the value to write at `attrs[i]`, the last one given for its
/// key, or `None` when its key came earlier and was written there.
pub(crate) fn last_value(attrs: &[KeyValue], i: usize) -> Option<&Value> {
    let key = attrs[i].key.as_str();
    if attrs[..i].iter().any(|kv| kv.key.as_str() == key) {
        return None;
    }
    let last = attrs[i + 1..]
        .iter()
        .rev()
        .find(|kv| kv.key.as_str() == key)
        .unwrap_or(&attrs[i]);
    Some(&last.value)
}

/// `&str` attribute values of any lifetime, without an allocation per use for the ones that
/// repeat.
///
/// A `&'static str` cannot be told apart from a borrowed one by its type, so every `&str` is
/// looked up in a small per-thread table by its address and compared by content. The first
/// time a string is seen at an address it is copied; the second time (same address, same
/// content: a literal, or a value that keeps coming back) the copy is leaked and from then on
/// shared as a static string, with no allocation and no reference count. Leaked copies are
/// bounded for the whole process ([`LEAK_BUDGET`] bytes, strings up to [`MAX_SHARED`] bytes);
/// past that, values are copied per use.
mod borrowed {
    use opentelemetry::StringValue;
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Longest string shared; longer ones are copied per use.
    pub(super) const MAX_SHARED: usize = 128;
    /// Bytes the process may leak into shared strings.
    pub(super) const LEAK_BUDGET: usize = 1 << 20;
    /// Slots per thread: `1 << BITS`.
    const BITS: u32 = 8;
    const SLOTS: usize = 1 << BITS;

    static LEAKED: AtomicUsize = AtomicUsize::new(0);

    /// A string seen once: the address it was seen at, and the copy made then.
    type SeenOnce = Option<(usize, Box<str>)>;

    thread_local! {
        /// Strings shared from here on, by the address they were seen at.
        static SHARED: [Cell<(usize, &'static str)>; SLOTS] =
            const { [const { Cell::new((0, "")) }; SLOTS] };
        /// Strings seen once, by address: the copy made then.
        static SEEN_ONCE: RefCell<[SeenOnce; SLOTS]> =
            const { RefCell::new([const { None }; SLOTS]) };
    }

    #[inline]
    pub(super) fn string_value(s: &str) -> StringValue {
        let addr = s.as_ptr() as usize;
        let slot = crate::sync::address_slot(addr, s.len(), BITS);
        let shared = SHARED
            .try_with(|t| {
                let (a, shared) = t[slot].get();
                (a == addr && shared == s).then_some(shared)
            })
            .ok()
            .flatten();
        match shared {
            Some(shared) => StringValue::from(shared),
            None => first_uses(s, addr, slot),
        }
    }

    /// A string not shared (yet): copied, and shared if it was seen at this address before.
    #[cold]
    fn first_uses(s: &str, addr: usize, slot: usize) -> StringValue {
        if s.len() > MAX_SHARED {
            return StringValue::from(s.to_owned());
        }
        let again = SEEN_ONCE
            .try_with(|t| {
                let mut t = t.borrow_mut();
                match &t[slot] {
                    Some((a, copy)) if *a == addr && &**copy == s => t[slot].take(),
                    _ => {
                        t[slot] = Some((addr, s.into()));
                        None
                    }
                }
            })
            .ok()
            .flatten();
        if let Some((_, copy)) = again {
            if LEAKED.fetch_add(s.len(), Ordering::Relaxed) + s.len() <= LEAK_BUDGET {
                let shared: &'static str = Box::leak(copy);
                let _ = SHARED.try_with(|t| t[slot].set((addr, shared)));
                return StringValue::from(shared);
            }
        }
        StringValue::from(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_keeps_its_first_place_and_last_value() {
        let kv = |k: &'static str, v: i64| KeyValue::new(k, v);
        let mut attrs = vec![kv("a", 1), kv("b", 2), kv("a", 3), kv("c", 4), kv("b", 5)];
        assert!(may_repeat_keys(&attrs));
        let written: Vec<(usize, &Value)> = (0..attrs.len())
            .filter_map(|i| Some((i, last_value(&attrs, i)?)))
            .collect();
        assert_eq!(
            written,
            [
                (0, &Value::I64(3)),
                (1, &Value::I64(5)),
                (3, &Value::I64(4))
            ]
        );
        let kept = dedup_keys(&mut attrs);
        attrs.truncate(kept);
        assert_eq!(attrs, [kv("a", 3), kv("b", 5), kv("c", 4)]);
        // Different keys, even of one bit, are all kept, in their order.
        let mut distinct = vec![kv("ab", 1), kv("cb", 2), kv("x", 3)];
        assert_eq!(key_bit("ab"), key_bit("cb"));
        assert_eq!(dedup_keys(&mut distinct), 3);
        assert_eq!(distinct, [kv("ab", 1), kv("cb", 2), kv("x", 3)]);
        assert!(!may_repeat_keys(&[kv("status", 1), kv("route", 2)]));
        let collected = collect(&&[("k", 1), ("k", 2)]);
        assert_eq!(collected.as_slice(), [kv("k", 2)]);
    }

    #[test]
    fn repeated_literals_are_shared_after_their_second_use() {
        let ptrs: Vec<*const u8> = (0..4)
            .map(|_| match "POST".to_value() {
                Value::String(s) => s.as_str().as_ptr(),
                _ => std::ptr::null(),
            })
            .collect();
        assert_ne!(ptrs[0], ptrs[1], "the first use is a copy");
        assert_eq!(ptrs[1], ptrs[2]);
        assert_eq!(ptrs[2], ptrs[3]);
    }
}
