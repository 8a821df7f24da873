//! Carriers: where a context travels — HTTP headers, string maps, message headers.

use std::collections::{BTreeMap, HashMap};

/// Something a trace context can be written into and read back from: HTTP headers, a
/// `HashMap<String, String>` in a job, the headers of a queue message.
///
/// Field names are compared ASCII case-insensitively, as in HTTP. Implemented for
/// `http::HeaderMap` (feature `http`), `HashMap<String, String>`, `BTreeMap<String, String>`
/// and `Vec<(String, String)>` (message headers, where a name can repeat); implement it for a
/// header type of your own with two methods:
///
/// ```
/// use unitel::Carrier;
/// # let _capture = unitel::testing::capture();
///
/// /// A queue message's headers, as the queue's client library gives them.
/// #[derive(Default)]
/// struct MessageHeaders(Vec<(String, Vec<u8>)>);
///
/// impl Carrier for MessageHeaders {
///     fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str)) {
///         for (key, value) in self.0.iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)) {
///             f(std::str::from_utf8(value).unwrap_or("\u{FFFD}"));
///         }
///     }
///     fn set(&mut self, name: &'static str, value: String) {
///         self.0.retain(|(key, _)| !key.eq_ignore_ascii_case(name));
///         self.0.push((name.to_owned(), value.into_bytes()));
///     }
/// }
///
/// let _span = unitel::get_telemetry("orders").trace("publish order_created");
/// let mut headers = MessageHeaders::default();
/// unitel::inject_trace_context(&mut headers);
/// let received = unitel::extract_trace_context(&headers);
/// assert_eq!(received.trace_id(), unitel::current_trace_id());
/// ```
pub trait Carrier {
    /// Calls `f` with every value of the field `name`, in order. A value that is not text
    /// should be passed as `"\u{FFFD}"` so that it is rejected rather than skipped.
    fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str));

    /// Sets the field `name` (lowercase) to `value`, replacing every earlier value.
    fn set(&mut self, name: &'static str, value: String);
}

impl<S: std::hash::BuildHasher> Carrier for HashMap<String, String, S> {
    fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str)) {
        match self.get(name) {
            Some(v) => f(v),
            None => self
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .for_each(|(_, v)| f(v)),
        }
    }

    fn set(&mut self, name: &'static str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for BTreeMap<String, String> {
    fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str)) {
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .for_each(|(_, v)| f(v));
    }

    fn set(&mut self, name: &'static str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.insert(name.to_owned(), value);
    }
}

impl Carrier for Vec<(String, String)> {
    fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str)) {
        self.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .for_each(|(_, v)| f(v));
    }

    fn set(&mut self, name: &'static str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_owned(), value));
    }
}

#[cfg(feature = "http")]
impl Carrier for http::HeaderMap {
    fn get_all<'a>(&'a self, name: &str, f: &mut dyn FnMut(&'a str)) {
        for value in http::HeaderMap::get_all(self, name) {
            f(std::str::from_utf8(value.as_bytes()).unwrap_or("\u{FFFD}"));
        }
    }

    fn set(&mut self, name: &'static str, value: String) {
        // Formatted values are visible ASCII; one that is not is left out rather than sent.
        if let Ok(value) = http::HeaderValue::try_from(value) {
            self.insert(http::HeaderName::from_static(name), value);
        }
    }
}
