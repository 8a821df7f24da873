//! Propagation: carrying a trace across a process boundary. Today the W3C `traceparent` value
//! of a [`TraceContext`]; the room for `tracestate`, baggage, header carriers and job
//! envelopes (docs/architecture.md).

mod traceparent;

use crate::diagnostics::{drop_once, DropReason, Signal};
use crate::spans::TraceContext;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;

impl TraceContext {
    /// The W3C `traceparent` value (`00-<trace id>-<span id>-<flags>`), for job envelopes and
    /// headers; `None` when the context has no span.
    pub fn to_traceparent(&self) -> Option<String> {
        let span = self.cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| traceparent::format(sc))
    }

    /// Parses a W3C `traceparent` value. A malformed value gives `None`, is counted as an
    /// invalid span input and described once on standard error.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        match traceparent::parse(value) {
            Some(sc) => Some(TraceContext {
                cx: Context::new().with_remote_span_context(sc),
            }),
            None => {
                drop_once(
                    Signal::Spans,
                    DropReason::InvalidInput,
                    "traceparent",
                    &|| {
                        format!("ignored a malformed traceparent {value:?}: expected 00-<32 hex>-<16 hex>-<2 hex>")
                    },
                );
                None
            }
        }
    }
}
