//! The span context: which trace and span the current work belongs to, and [`TraceContext`]
//! to hand it to another thread, task or process.

use opentelemetry::trace::{FutureExt as _, SpanId, TraceContextExt, TraceFlags, TraceId};
use opentelemetry::{Context, ContextGuard};
use std::future::Future;

/// The current trace id (32 lowercase hex digits) of the active span — the facade's or a
/// `tracing` span — or `None` outside any span: to quote in an error response or a support
/// ticket (example: [`UnifiedTelemetry::trace`](crate::UnifiedTelemetry::trace)).
pub fn current_trace_id() -> Option<String> {
    current_ids().map(|ids| ids.trace_id.to_string())
}

/// The current span id (16 lowercase hex digits), or `None` outside any span (example of the
/// trace id: [`UnifiedTelemetry::trace`](crate::UnifiedTelemetry::trace)).
pub fn current_span_id() -> Option<String> {
    current_ids().map(|ids| ids.span_id.to_string())
}

/// The ids of the span that is current on this thread, whether it was started by the facade
/// or by `tracing` (tracing-opentelemetry makes an entered span's context current).
#[inline]
pub(crate) fn current_ids() -> Option<Ids> {
    Context::map_current(|cx| Ids::of(cx.span().span_context()))
}

/// The trace and span a record belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ids {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) flags: TraceFlags,
}

impl Ids {
    /// The ids of a valid span context.
    pub(crate) fn of(sc: &opentelemetry::trace::SpanContext) -> Option<Ids> {
        sc.is_valid().then(|| Ids {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            flags: sc.trace_flags(),
        })
    }
}

/// A trace context: which trace and span the work belongs to. Cheap to clone, `Send`.
///
/// Take it with [`TraceContext::current`] where work is handed off, send it with the work
/// (over a channel, in a job envelope as [`to_traceparent`](Self::to_traceparent)), and
/// [`attach`](Self::attach) it where the work is picked up: spans started there join the trace.
///
/// ```
/// use unitel::TraceContext;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("orders");
///
/// let span = telemetry.trace("place_order");
/// let cx = TraceContext::current(); // or span.context()
/// drop(span);
///
/// // Another task: the context is current whenever the future is polled.
/// let audit = tokio::spawn(cx.instrument(async {
///     unitel::get_telemetry("audit").log_info("order audited"); // in place_order's trace
/// }));
/// audit.await.unwrap();
///
/// // Another process: as a W3C `traceparent` string in the job or message.
/// let traceparent = cx.to_traceparent().unwrap(); // "00-<trace id>-<span id>-01"
/// let received = TraceContext::from_traceparent(&traceparent).unwrap();
/// let _span = telemetry.span("ship_order").parent(&received).start(); // a child of place_order
/// # let order = capture.span("place_order").unwrap();
/// # assert_eq!(capture.log("order audited").unwrap().trace_id, Some(order.trace_id.clone()));
/// # assert_eq!(received.span_id(), Some(order.span_id));
/// # assert_eq!(_span.trace_id(), Some(order.trace_id));
/// # }
/// ```
///
/// On a plain thread, [`attach`](Self::attach) it (example: [`attach_trace_context`](crate::attach_trace_context));
/// across HTTP or message headers, [`inject`](Self::inject) and [`extract`](Self::extract)
/// it (example: [`extract_trace_context`](crate::extract_trace_context)).
#[derive(Clone, Default)]
pub struct TraceContext {
    pub(crate) cx: Context,
}

impl std::fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("TraceContext");
        if let Some(ids) = Ids::of(self.cx.span().span_context()) {
            d.field("trace_id", &ids.trace_id)
                .field("span_id", &ids.span_id)
                .field("sampled", &ids.flags.is_sampled());
        }
        d.finish()
    }
}

/// Keeps a [`TraceContext`] current until dropped: returned by [`TraceContext::attach`],
/// [`attach_trace_context`](crate::attach_trace_context) (example there) and
/// [`set_baggage`](crate::set_baggage).
#[must_use = "the context is current only while this guard lives"]
pub struct TraceContextGuard {
    _guard: ContextGuard,
}

impl std::fmt::Debug for TraceContextGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceContextGuard").finish_non_exhaustive()
    }
}

impl TraceContext {
    /// The context of the current span (facade or `tracing`), empty outside any span.
    pub fn current() -> Self {
        TraceContext {
            cx: Context::current(),
        }
    }

    /// Makes this context current on this thread until the guard is dropped (example:
    /// [`attach_trace_context`](crate::attach_trace_context)). In async code, use
    /// [`instrument`](Self::instrument) instead: a guard kept across an `.await` stays on the
    /// thread.
    pub fn attach(&self) -> TraceContextGuard {
        TraceContextGuard {
            _guard: self.cx.clone().attach(),
        }
    }

    /// Makes this context current whenever `fut` is polled (for `tokio::spawn` and friends;
    /// example: [`TraceContext`]).
    pub fn instrument<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        fut.with_context(self.cx.clone())
    }

    /// The trace id as 32 lowercase hex digits; `None` when the context has no span.
    pub fn trace_id(&self) -> Option<String> {
        Ids::of(self.cx.span().span_context()).map(|ids| ids.trace_id.to_string())
    }

    /// The span id as 16 lowercase hex digits; `None` when the context has no span.
    pub fn span_id(&self) -> Option<String> {
        Ids::of(self.cx.span().span_context()).map(|ids| ids.span_id.to_string())
    }
}

impl From<Context> for TraceContext {
    /// Wraps an OpenTelemetry context (for code that mixes unitel with the OpenTelemetry API).
    fn from(cx: Context) -> Self {
        TraceContext { cx }
    }
}

impl From<TraceContext> for Context {
    fn from(cx: TraceContext) -> Self {
        cx.cx
    }
}

impl AsRef<Context> for TraceContext {
    fn as_ref(&self) -> &Context {
        &self.cx
    }
}
