//! Attributes as `&[(key, value)]`: the conversions behind every `attrs`/`fields` argument.

use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Attribute lists short enough to live on the stack.
type AttrVec = SmallVec<[KeyValue; 4]>;

/// A type usable as an attribute key: `&'static str` (no allocation), `String`, `Cow`, [`Key`].
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
/// Integers wider than `i64` saturate. A `&str` of any lifetime is copied; a `&'static str`
/// wrapped as `Cow::Borrowed` or [`Value::from`] is stored without copying.
pub trait IntoValue {
    /// The value.
    fn to_value(&self) -> Value;
}

impl IntoValue for &str {
    #[inline]
    fn to_value(&self) -> Value {
        Value::String(StringValue::from(self.to_string()))
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

/// Collects attributes into a vector (on the stack for up to four).
#[inline]
pub(crate) fn collect(attrs: &(impl Attributes + ?Sized)) -> SmallVec<[KeyValue; 4]> {
    let mut out = AttrVec::new();
    attrs.extend_into(&mut out);
    out
}
