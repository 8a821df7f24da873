//! Propagation: carrying a trace across a process boundary. W3C Trace Context (`traceparent`,
//! `tracestate`) and W3C Baggage, each with one strict parser and one formatter; the
//! [`Carrier`]s they travel in; and job envelopes for work handed to a queue.
//!
//! What is propagated follows `OTEL_PROPAGATORS` (default: both). A malformed incoming value
//! is never an error to the caller: an invalid `traceparent` starts a new trace (and its
//! `tracestate` is ignored), an invalid `tracestate` is dropped while the trace continues,
//! invalid baggage members are dropped one by one. Each is counted as invalid span input
//! ([`dropped`](crate::dropped)) and described once on standard error.

mod baggage;
mod carrier;
mod job;
mod traceparent;
mod tracestate;

pub use self::carrier::Carrier;
pub use self::job::{JobEnvelope, JobTrace};

use crate::diagnostics::{drop_once, DropReason, Output, Signal};
use crate::spans::{TraceContext, TraceContextGuard};
use crate::state;
use opentelemetry::baggage::{Baggage, BaggageExt as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry::Context;
use smallvec::SmallVec;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";
/// The carrier fields and the environment variables that carry them between processes.
const ENV_FIELDS: [(&str, &str); 3] = [
    (TRACEPARENT, "TRACEPARENT"),
    (TRACESTATE, "TRACESTATE"),
    (BAGGAGE, "BAGGAGE"),
];

/// Writes the current trace context into `carrier` (seed 003's `inject_trace_context`): the
/// `traceparent` and `tracestate` of the current span and the current baggage.
///
/// ```
/// use std::collections::HashMap;
/// # let _capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("checkout");
///
/// let _span = telemetry.trace("publish order_created");
/// let mut headers = HashMap::new();
/// unitel::inject_trace_context(&mut headers);
/// // queue.publish("orders", payload, headers)
/// assert!(headers["traceparent"].starts_with("00-")); // 00-<trace id>-<span id>-01
/// ```
///
/// The receiving side: [`extract_trace_context`]. The HTTP client adapter
/// ([`instrument_reqwest`](crate::instrument_reqwest)) injects by itself. Outside any span,
/// only baggage is written.
pub fn inject_trace_context(carrier: &mut impl Carrier) {
    TraceContext::current().inject(carrier);
}

/// Reads the trace context a request or message carries (seed 003's `extract_trace_context`).
/// An absent or malformed `traceparent` gives a context without a span: spans started under it
/// begin a new trace.
///
/// ```
/// use unitel::SpanKind;
/// # let _capture = unitel::testing::capture();
///
/// // The client puts its context in the request's headers ...
/// let mut headers = http::HeaderMap::new();
/// let client_span = unitel::get_telemetry("storefront").trace("reserve_items");
/// let _tenant = unitel::set_baggage("tenant.id", "acme"); // baggage travels with the trace
/// unitel::inject_trace_context(&mut headers);
/// # drop(_tenant);
/// # drop(client_span);
///
/// // ... and the server, in another process, continues that trace.
/// let caller = unitel::extract_trace_context(&headers);
/// let span = unitel::get_telemetry("inventory")
///     .span("POST /reservations")
///     .kind(SpanKind::Server)
///     .parent(&caller)
///     .start();
/// assert_eq!(span.trace_id(), caller.trace_id());
/// assert_eq!(unitel::baggage("tenant.id").as_deref(), Some("acme"));
/// ```
///
/// The server layer ([`HttpServerLayer`](crate::HttpServerLayer)) extracts by itself; this is
/// for other transports (a queue's message headers, a gRPC framework of your own).
pub fn extract_trace_context(carrier: &impl Carrier) -> TraceContext {
    TraceContext::extract(carrier)
}

/// Makes `cx` current until the guard is dropped (seed 003's `attach_trace_context`; the
/// guard detaches, where Python needed `detach(token)`).
///
/// For work handed to another thread; a future takes [`TraceContext::instrument`] instead.
///
/// ```
/// use std::sync::mpsc;
/// use unitel::TraceContext;
/// # let capture = unitel::testing::capture();
///
/// let (jobs, queue) = mpsc::channel::<(TraceContext, u64)>();
/// let worker = std::thread::spawn(move || {
///     let telemetry = unitel::get_telemetry("shipping");
///     for (cx, order_id) in queue {
///         let _guard = unitel::attach_trace_context(&cx);
///         let _span = telemetry.trace("ship_order").attr("order.id", order_id); // in checkout's trace
///     }
/// });
///
/// let _span = unitel::get_telemetry("checkout").trace("checkout");
/// jobs.send((TraceContext::current(), 42)).unwrap();
/// # drop(_span);
/// drop(jobs);
/// worker.join().unwrap();
/// # let (checkout, ship) = (capture.span("checkout").unwrap(), capture.span("ship_order").unwrap());
/// # assert_eq!(ship.parent_span_id, Some(checkout.span_id));
/// ```
pub fn attach_trace_context(cx: &TraceContext) -> TraceContextGuard {
    cx.attach()
}

/// The value of the baggage entry `key` in the current context (example:
/// [`extract_trace_context`]).
pub fn baggage(key: &str) -> Option<String> {
    TraceContext::current().baggage(key)
}

/// Makes the current context, plus the baggage entry `key=value`, current until the guard is
/// dropped. See [`TraceContext::with_baggage`] for what is accepted, and
/// [`extract_trace_context`] for an example.
pub fn set_baggage(key: &str, value: &str) -> TraceContextGuard {
    TraceContext::current().with_baggage(key, value).attach()
}

impl TraceContext {
    /// Writes this context into `carrier`: `traceparent` and `tracestate` when it has a span,
    /// `baggage` when it has entries (each as `OTEL_PROPAGATORS` allows).
    pub fn inject(&self, carrier: &mut impl Carrier) {
        let propagators = state::propagators();
        if propagators.trace_context {
            let span = self.cx.span();
            let sc = span.span_context();
            if sc.is_valid() {
                carrier.set(TRACEPARENT, traceparent::format(sc));
                if let Some(ts) = tracestate::format(sc.trace_state()) {
                    carrier.set(TRACESTATE, ts);
                }
            }
        }
        if propagators.baggage {
            if let Some(b) = baggage::format(self.cx.baggage()) {
                carrier.set(BAGGAGE, b);
            }
        }
    }

    /// Reads the context `carrier` holds. See [`extract_trace_context`].
    pub fn extract(carrier: &impl Carrier) -> TraceContext {
        let propagators = state::propagators();
        let mut cx = Context::new();
        if propagators.trace_context {
            if let Some(sc) = extract_span_context(carrier) {
                cx = cx.with_remote_span_context(sc);
            }
        }
        if propagators.baggage {
            let mut values = SmallVec::<[&str; 2]>::new();
            carrier.get_all(BAGGAGE, &mut |v| values.push(v));
            if !values.is_empty() {
                let (baggage, dropped) = baggage::parse(values.iter().copied());
                if dropped > 0 {
                    invalid(BAGGAGE, &|| {
                        format!("dropped {dropped} invalid or over-limit baggage member(s)")
                    });
                }
                if !baggage.is_empty() {
                    cx = cx.with_baggage(baggage);
                }
            }
        }
        TraceContext { cx }
    }

    /// The context a parent process handed down in its environment: `TRACEPARENT`,
    /// `TRACESTATE` and `BAGGAGE`, the names OpenTelemetry gives these fields when environment
    /// variables are the carrier (a script started by a traced script, a job started by a
    /// scheduler). Read as [`extract`](Self::extract) reads any carrier: without the variables,
    /// or with a malformed `TRACEPARENT` (counted and said once), a context with no span, and a
    /// span started under it is a new root.
    ///
    /// ```
    /// # let _capture = unitel::testing::capture();
    /// let telemetry = unitel::get_telemetry("nightly_export");
    /// let parent = unitel::TraceContext::from_env();
    /// let _run = telemetry.span("nightly_export.run").parent(&parent).start();
    /// // A child process continues this trace:
    /// let child = std::process::Command::new("next-step")
    ///     .envs(unitel::TraceContext::current().to_env())
    ///     .spawn();
    /// # let _ = child;
    /// ```
    pub fn from_env() -> TraceContext {
        let mut carrier: Vec<(String, String)> = Vec::new();
        for (field, variable) in ENV_FIELDS {
            match std::env::var(variable) {
                Ok(value) => carrier.push((field.to_owned(), value)),
                // Not text: rejected like any malformed value, not silently skipped.
                Err(std::env::VarError::NotUnicode(_)) => {
                    carrier.push((field.to_owned(), "\u{FFFD}".to_owned()))
                }
                Err(std::env::VarError::NotPresent) => {}
            }
        }
        TraceContext::extract(&carrier)
    }

    /// This context as environment variables for a child process (`TRACEPARENT`, `TRACESTATE`,
    /// `BAGGAGE`, as [`inject`](Self::inject) writes them), for
    /// [`Command::envs`](std::process::Command::envs). The child reads them back with
    /// [`from_env`](Self::from_env).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut carrier: Vec<(String, String)> = Vec::new();
        self.inject(&mut carrier);
        carrier
            .into_iter()
            .map(|(field, value)| (field.to_ascii_uppercase(), value))
            .collect()
    }

    /// The W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`); `None` when the context
    /// has no span.
    pub fn to_traceparent(&self) -> Option<String> {
        let span = self.cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| traceparent::format(sc))
    }

    /// Parses a W3C `traceparent` value with the same strict parser as [`extract`](Self::extract).
    /// A malformed value gives `None`, is counted as invalid span input and described once.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        parse_traceparent(value).map(|sc| TraceContext {
            cx: Context::new().with_remote_span_context(sc),
        })
    }

    /// The value of the baggage entry `key`.
    pub fn baggage(&self, key: &str) -> Option<String> {
        self.cx.baggage().get(key).map(|v| v.as_str().to_owned())
    }

    /// Every baggage entry, in no particular order.
    pub fn baggage_entries(&self) -> Vec<(String, String)> {
        self.cx
            .baggage()
            .iter()
            .map(|(k, (v, _))| (k.as_str().to_owned(), v.as_str().to_owned()))
            .collect()
    }

    /// This context with the baggage entry `key=value` added (or replaced). The key must be
    /// an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``); any value is accepted and
    /// percent-encoded on the wire. An entry beyond the W3C limits (64 entries, 8192 bytes) or
    /// with an invalid key is left out, counted and described once.
    pub fn with_baggage(&self, key: &str, value: &str) -> TraceContext {
        let mut entries = Baggage::new();
        for (k, (v, metadata)) in self.cx.baggage().iter() {
            entries.insert_with_metadata(k.clone(), v.clone(), metadata.clone());
        }
        entries.insert(key.to_owned(), value.to_owned());
        if entries.get(key).map(|v| v.as_str()) != Some(value) {
            invalid(BAGGAGE, &|| {
                format!(
                    "left out the baggage entry {key:?}: the key is not an HTTP token, or the \
                     baggage is at its limit of 64 entries / 8192 bytes"
                )
            });
            return self.clone();
        }
        TraceContext {
            cx: self.cx.with_baggage(entries),
        }
    }
}

/// The remote span context of a carrier's `traceparent` and `tracestate`, if valid.
fn extract_span_context(carrier: &impl Carrier) -> Option<SpanContext> {
    let mut parents = SmallVec::<[&str; 1]>::new();
    carrier.get_all(TRACEPARENT, &mut |v| parents.push(v));
    let parent = match parents.as_slice() {
        [] => return None,
        [one] => *one,
        _ => {
            invalid(TRACEPARENT, &|| {
                "ignored a request with more than one traceparent field: starting a new trace"
                    .to_owned()
            });
            return None;
        }
    };
    let sc = parse_traceparent(parent)?;
    let mut states = SmallVec::<[&str; 2]>::new();
    carrier.get_all(TRACESTATE, &mut |v| states.push(v));
    if states.is_empty() {
        return Some(sc);
    }
    match tracestate::parse(states.iter().copied()) {
        Ok(ts) => Some(SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags(),
            true,
            ts,
        )),
        Err(reason) => {
            invalid(TRACESTATE, &|| {
                format!("ignored an invalid tracestate ({reason}); the trace continues without it")
            });
            Some(sc)
        }
    }
}

fn parse_traceparent(value: &str) -> Option<SpanContext> {
    traceparent::parse(value)
        .map_err(|reason| {
            invalid(TRACEPARENT, &|| {
                format!(
                    "ignored a malformed traceparent {:?} ({reason}): starting a new trace; \
                     expected 00-<32 hex>-<16 hex>-<2 hex>, lowercase",
                    value.chars().take(80).collect::<String>()
                )
            })
        })
        .ok()
}

/// Counts a malformed incoming value as invalid span input and describes it once per field.
#[cold]
fn invalid(field: &'static str, message: &dyn Fn() -> String) {
    drop_once(
        Output::Pipeline,
        Signal::Spans,
        DropReason::InvalidInput,
        1,
        field,
        message,
    );
}
