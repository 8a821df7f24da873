//! `http.client.request.duration`: its attributes, and a per-thread cache of the SDK's bound
//! histograms by attribute set, so that a request whose attributes were seen before costs a few
//! comparisons instead of sorting and hashing seven attributes in the SDK.
//!
//! Binds through `Histogram::sdk` (the SDK instrument `Histogram::record` uses), as the
//! database adapters do with `DbInstruments::bind`; what differs is only what the bindings are
//! kept by: here the thread, since one client sees a few attribute sets again and again.

use crate::{Attributes, Histogram};
use opentelemetry::metrics::{BoundHistogram, Histogram as SdkHistogram};
use opentelemetry::Context;
use opentelemetry::{KeyValue, StringValue, Value};
use smallvec::SmallVec;
use std::cell::RefCell;

use super::{
    ERROR_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE, NETWORK_PROTOCOL_VERSION,
    SERVER_ADDRESS, SERVER_PORT, URL_SCHEME,
};

/// Attribute sets each thread keeps bound; beyond, the oldest is replaced.
const CACHED_SETS: usize = 32;

/// One measurement's attributes, borrowed from the request.
pub(super) struct Measurement<'a> {
    pub(super) method: &'static str,
    pub(super) scheme: &'a Value,
    pub(super) address: Option<&'a StringValue>,
    pub(super) port: Option<u16>,
    pub(super) status: Option<u16>,
    pub(super) version: Option<&'static str>,
    pub(super) error: Option<&'static str>,
}

impl Attributes for Measurement<'_> {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        out.extend([
            KeyValue::new(HTTP_REQUEST_METHOD, self.method),
            KeyValue::new(URL_SCHEME, self.scheme.clone()),
        ]);
        if let Some(address) = self.address {
            out.extend([KeyValue::new(
                SERVER_ADDRESS,
                Value::String(address.clone()),
            )]);
        }
        if let Some(port) = self.port {
            out.extend([KeyValue::new(SERVER_PORT, i64::from(port))]);
        }
        if let Some(status) = self.status {
            out.extend([KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status))]);
        }
        if let Some(version) = self.version {
            out.extend([KeyValue::new(NETWORK_PROTOCOL_VERSION, version)]);
        }
        if let Some(error) = self.error {
            out.extend([KeyValue::new(ERROR_TYPE, error)]);
        }
    }

    fn len_hint(&self) -> usize {
        2 + usize::from(self.address.is_some())
            + usize::from(self.port.is_some())
            + usize::from(self.status.is_some())
            + usize::from(self.version.is_some())
            + usize::from(self.error.is_some())
    }

    fn with_slice<R>(&self, f: impl FnOnce(&mut [KeyValue]) -> R) -> R {
        let mut kvs: SmallVec<[KeyValue; 7]> = SmallVec::new();
        self.extend_into(&mut kvs);
        f(&mut kvs)
    }
}

/// Records `seconds` in `histogram` with `m`'s attributes, measured in the span of `cx`.
pub(super) fn record(
    histogram: Histogram,
    cx: Option<&Context>,
    seconds: f64,
    m: &Measurement<'_>,
) {
    let Some(sdk) = sdk_histogram(histogram) else {
        return;
    };
    histogram.offer_in(cx, seconds, || {
        m.with_slice(|kvs| crate::registry::exemplars::key(kvs.iter()))
    });
    let instrument = std::ptr::from_ref(histogram.0).addr();
    let cached = BOUND
        .try_with(|cache| match cache.try_borrow_mut() {
            Ok(mut cache) => {
                cache.record(instrument, sdk, seconds, m);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !cached {
        m.with_slice(|kvs| sdk.record(seconds, kvs));
    }
}

/// The SDK instrument of `histogram`, the one `Histogram::record` uses; `None` while
/// telemetry is not running.
fn sdk_histogram(histogram: Histogram) -> Option<&'static SdkHistogram<f64>> {
    histogram.sdk()
}

thread_local! {
    static BOUND: RefCell<BoundCache> = const {
        RefCell::new(BoundCache {
            entries: Vec::new(),
            next: 0,
        })
    };
}

/// The bound histograms of one thread, by instrument and attribute set.
struct BoundCache {
    entries: Vec<(Key, BoundHistogram<f64>)>,
    /// The entry replaced next once the cache is full.
    next: usize,
}

impl BoundCache {
    fn record(
        &mut self,
        instrument: usize,
        sdk: &SdkHistogram<f64>,
        seconds: f64,
        m: &Measurement<'_>,
    ) {
        if let Some((_, bound)) = self.entries.iter().find(|(k, _)| k.matches(instrument, m)) {
            bound.record(seconds);
            return;
        }
        let bound = m.with_slice(|kvs| sdk.bind(kvs));
        bound.record(seconds);
        let entry = (Key::of(instrument, m), bound);
        if self.entries.len() < CACHED_SETS {
            self.entries.push(entry);
        } else if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = entry;
            self.next = (self.next + 1) % CACHED_SETS;
        }
    }
}

/// What a bound histogram is bound to.
struct Key {
    /// The address of the histogram's registry cell.
    instrument: usize,
    method: &'static str,
    scheme: Value,
    address: Option<StringValue>,
    port: Option<u16>,
    status: Option<u16>,
    version: Option<&'static str>,
    error: Option<&'static str>,
}

impl Key {
    fn of(instrument: usize, m: &Measurement<'_>) -> Self {
        Key {
            instrument,
            method: m.method,
            scheme: m.scheme.clone(),
            address: m.address.cloned(),
            port: m.port,
            status: m.status,
            version: m.version,
            error: m.error,
        }
    }

    fn matches(&self, instrument: usize, m: &Measurement<'_>) -> bool {
        self.instrument == instrument
            && self.status == m.status
            && self.port == m.port
            && self.method == m.method
            && self.error == m.error
            && self.version == m.version
            && self.address.as_ref() == m.address
            && self.scheme == *m.scheme
    }
}
