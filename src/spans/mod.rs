//! Spans: the facade's [`Span`] guard, its builder, and [`TraceContext`] for handing a trace to
//! another thread, task or process.
//!
//! The facade's spans go straight to the OpenTelemetry SDK (no `tracing` span in between) and
//! become current by attaching their OpenTelemetry [`Context`]. tracing-opentelemetry 0.34 does
//! the same for entered `tracing` spans, so that context is the one stack both kinds share: a
//! `tracing` span opened inside a facade span is its child, and the other way round.

mod attach;
mod context;

pub(crate) use self::context::{current_ids, Ids};
pub use self::context::{current_span_id, current_trace_id, TraceContext, TraceContextGuard};

use crate::attributes::{self, Attributes, IntoKey, IntoValue};
use crate::registry::Component;
use crate::state;
use opentelemetry::baggage::{BaggageExt as _, KeyValueMetadata};
use opentelemetry::trace::{FutureExt as _, Link, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::borrow::Cow;
use std::future::Future;

/// The instrumentation scope of spans that come from `tracing` (the tracing-opentelemetry
/// layer's tracer); their component is their `target` attribute.
pub(crate) const TRACING_SCOPE: &str = "tracing";

/// A started span that is the current span until it is dropped.
///
/// Made by [`UnifiedTelemetry::trace`](crate::UnifiedTelemetry::trace). Dropping it ends the span.
/// Every recording method of [`SpanRef`] works on it (it dereferences to one).
///
/// A `Span` is `Send`, so an `async fn` that keeps one in a local stays `Send` (an axum handler
/// compiles). It is current on the thread that started it; to follow a future across `.await`
/// points and threads, hand the future to [`Span::instrument`], and reach the span from inside
/// with [`current_span`]. A span kept across an `.await` instead ends correctly, but stays
/// current on the old thread meanwhile; that is described once on standard error.
///
/// When telemetry is not configured, disabled or shut down, a `Span` is an inert value and every
/// method is a no-op.
///
/// ```
/// # let capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("billing");
///
/// let span = telemetry.trace("generate_invoice").attr("customer.id", "c-17");
/// let trace_id = span.trace_id(); // Some(32 hex digits): quote it in a response or a ticket
/// span.add_event("pdf_rendered", &[("pages", 3)]);
/// if let Err(err) = "12,50".parse::<f64>() {
///     span.record_error(&err); // status Error, and an `exception` event
/// }
/// drop(span); // ends it
///
/// // A closure in a span of its own, ended when the closure returns:
/// let total = telemetry.trace("sum_lines").in_scope(|| 1250 + 3990);
/// # assert_eq!(total, 5240);
/// # let invoice = capture.span("generate_invoice").unwrap();
/// # assert_eq!(Some(invoice.trace_id.clone()), trace_id);
/// # assert!(matches!(invoice.status, unitel::Status::Error { .. }));
/// # assert_eq!(invoice.events.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["pdf_rendered", "exception"]);
/// # assert!(capture.span("sum_lines").unwrap().parent_span_id.is_none());
/// ```
#[must_use = "a span ends when it is dropped; bind it with `let _span = ...`"]
pub struct Span {
    span: SpanRef,
    attached: Option<attach::Attachment>,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.span
            .fmt_ids(f.debug_struct("Span"))
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Span {
    type Target = SpanRef;

    fn deref(&self) -> &SpanRef {
        &self.span
    }
}

/// A `Send` handle to a live span: the current one ([`current_span`]) or a started [`Span`]
/// (which dereferences to one).
///
/// It records on the span (attributes, events, status, errors) but does not end it; the span
/// ends when its [`Span`] or instrumented future does. Outside any span, or while telemetry is
/// off, every method is a no-op.
///
/// ```
/// async fn handler(telemetry: unitel::UnifiedTelemetry) {
///     telemetry.trace("checkout").instrument(async {
///         tokio::task::yield_now().await;
///         unitel::current_span().set_attribute("cart.items", 3);
///     }).await;
/// }
/// ```
#[derive(Clone, Default)]
pub struct SpanRef {
    cx: Context,
}

impl std::fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.fmt_ids(f.debug_struct("SpanRef")).finish()
    }
}

/// The span that is current here: inside a [`Span`], an instrumented future, an entered
/// `tracing` span, or an attached [`TraceContext`]. Outside any span the handle is a no-op.
/// Examples: [`SpanRef`], [`Span::instrument`].
pub fn current_span() -> SpanRef {
    SpanRef {
        cx: Context::current(),
    }
}

/// Options for a span before it starts: kind, parent, links, attributes the sampler sees.
///
/// Made by [`UnifiedTelemetry::span`](crate::UnifiedTelemetry::span);
/// [`start`](SpanBuilder::start) makes the [`Span`], [`instrument`](SpanBuilder::instrument)
/// runs a future in it.
///
/// ```
/// use std::collections::HashMap;
/// use unitel::{SpanKind, TraceContext, UnifiedTelemetry};
/// # let _capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("orders");
///
/// // A message from a queue: a CONSUMER span, a child of the producer's span.
/// let message_headers = HashMap::from([(
///     "traceparent".to_owned(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
/// )]);
/// let producer = unitel::extract_trace_context(&message_headers);
/// let span = telemetry
///     .span("process order_created")
///     .kind(SpanKind::Consumer)
///     .parent(&producer)
///     .attr("messaging.system", "rabbitmq")
///     .attrs(&[("messaging.destination.name", "orders"), ("messaging.operation.type", "process")])
///     .start();
/// assert_eq!(span.trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// # drop(span);
///
/// // A nightly job started from a request: a trace of its own, linked to the request's.
/// async fn nightly_report(telemetry: &UnifiedTelemetry, request: &TraceContext) {
///     let build = async { /* ... query, render, upload ... */ };
///     telemetry.span("build_report").root().link(request).instrument(build).await
/// }
/// ```
#[must_use = "a SpanBuilder does nothing until `.start()` or `.instrument(..)`"]
#[derive(Debug)]
pub struct SpanBuilder {
    component: std::sync::Arc<Component>,
    name: Cow<'static, str>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    /// The context the span starts under; the current one when `None`.
    parent: Option<Context>,
    /// Start a new trace: the parent context's span is left out, its baggage kept.
    root: bool,
    links: Vec<Link>,
}

impl SpanBuilder {
    pub(crate) fn new(component: &std::sync::Arc<Component>, name: Cow<'static, str>) -> Self {
        SpanBuilder {
            component: component.clone(),
            name,
            kind: SpanKind::Internal,
            attributes: Vec::new(),
            parent: None,
            root: false,
            links: Vec::new(),
        }
    }

    /// Adds an attribute, visible to the sampler.
    pub fn attr(mut self, key: impl IntoKey, value: impl IntoValue) -> Self {
        self.attributes
            .push(KeyValue::new(key.to_key(), value.to_value()));
        self
    }

    /// Adds several attributes, visible to the sampler.
    pub fn attrs(mut self, attrs: impl Attributes) -> Self {
        self.attributes.extend(attributes::collect(&attrs));
        self
    }

    /// Adds attributes already built, without copying them (for instrumentation).
    #[cfg(any(
        feature = "tower",
        feature = "reqwest",
        feature = "sqlx",
        feature = "redis"
    ))]
    pub(crate) fn attributes_owned(mut self, attrs: Vec<KeyValue>) -> Self {
        if self.attributes.is_empty() {
            self.attributes = attrs;
        } else {
            self.attributes.extend(attrs);
        }
        self
    }

    /// The span's kind (default [`SpanKind::Internal`]).
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Makes the span a child of `parent` instead of the current span: a context received
    /// from another thread or process. `None` (a job or request that carried no context)
    /// keeps the default, the current span.
    ///
    /// A context with no valid span (an absent or malformed `traceparent`) starts a new trace,
    /// and keeps that context's baggage.
    pub fn parent<'a>(mut self, parent: impl Into<Option<&'a TraceContext>>) -> Self {
        if let Some(parent) = parent.into() {
            self.parent = Some(parent.cx.clone());
        }
        self
    }

    /// Starts a new trace, whatever span is current or given to [`parent`](Self::parent); the
    /// baggage of that context stays.
    pub fn root(mut self) -> Self {
        self.root = true;
        self
    }

    /// Links the span to `other` (a producer's span when a worker starts its own trace); a
    /// context without a valid span adds nothing.
    pub fn link(mut self, other: &TraceContext) -> Self {
        let sc = other.cx.span().span_context().clone();
        if sc.is_valid() {
            self.links.push(Link::with_context(sc));
        }
        self
    }

    /// Starts the span and makes it current.
    pub fn start(self) -> Span {
        match self.start_context() {
            Some(cx) => Span::attached(cx),
            None => Span::noop(),
        }
    }

    /// Runs `fut` inside the span: it is current whenever `fut` is polled, on whatever thread,
    /// and ends when `fut` completes or is dropped. The span is never current on this thread
    /// outside the future.
    pub fn instrument<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        instrumented(self.start_context(), fut)
    }

    /// Starts the span and returns its context, not attached (for instrumentation that polls
    /// futures itself); `None` while telemetry is not running and no parent was given.
    pub(crate) fn start_context(mut self) -> Option<Context> {
        let tracer = match (state::active(), self.component.tracer()) {
            (Some(_), Some(tracer)) => tracer,
            // Not recording: a received context still passes through, so calls made inside
            // forward the caller's trace (what OpenTelemetry's no-op tracer does).
            _ => {
                return match self.parent {
                    Some(cx) if !self.root && cx.span().span_context().is_valid() => Some(cx),
                    _ => None,
                }
            }
        };
        // A key given twice (`attr`, then `attrs`) keeps its last value.
        let kept = attributes::dedup_keys(&mut self.attributes);
        self.attributes.truncate(kept);
        let mut builder = opentelemetry::trace::SpanBuilder::from_name(self.name)
            .with_kind(self.kind)
            .with_attributes(self.attributes);
        if !self.links.is_empty() {
            builder = builder.with_links(self.links);
        }
        attach::settle();
        let parent = self.parent.unwrap_or_else(Context::current);
        let parent = match self.root {
            // The baggage stays; only the span goes. Not an invalid span in its place: a
            // parent-based sampler reads that as an unsampled parent and drops the new trace.
            true => Context::new().with_baggage(
                parent
                    .baggage()
                    .iter()
                    .map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone()))
                    .collect::<Vec<_>>(),
            ),
            false => parent,
        };
        let span = tracer.build_with_context(builder, &parent);
        Some(parent.with_span(span))
    }
}

impl Span {
    /// A span that records nothing.
    pub fn noop() -> Span {
        Span {
            span: SpanRef::default(),
            attached: None,
        }
    }

    fn attached(cx: Context) -> Span {
        Span {
            attached: Some(attach::attach(cx.clone())),
            span: SpanRef { cx },
        }
    }

    /// Starts a span of `component` with `attrs` and makes it current.
    #[inline]
    pub(crate) fn start(
        component: &Component,
        name: Cow<'static, str>,
        attrs: &(impl Attributes + ?Sized),
    ) -> Span {
        if state::active().is_none() {
            return Span::noop();
        }
        let Some(tracer) = component.tracer() else {
            return Span::noop();
        };
        let mut builder = opentelemetry::trace::SpanBuilder::from_name(name);
        if attrs.len_hint() > 0 {
            builder = builder.with_attributes(attributes::collect(attrs));
        }
        attach::settle();
        let parent = Context::current();
        let span = tracer.build_with_context(builder, &parent);
        Span::attached(parent.with_span(span))
    }

    /// Sets an attribute and returns the span, for chaining after `trace(..)`.
    pub fn attr(self, key: impl IntoKey, value: impl IntoValue) -> Self {
        self.span.set_attribute(key, value);
        self
    }

    /// Runs `f` inside the span, then ends it (example: [`Span`]).
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let r = f();
        drop(self);
        r
    }

    /// Makes the span current whenever `fut` is polled, on whatever thread polls it, and ends
    /// the span when `fut` completes (or is dropped).
    ///
    /// This is how a span covers async work: spans, metrics and logs made inside `fut`, across
    /// every `.await` and on whatever worker thread, belong to it, and a span started inside it
    /// (even to hand to `tokio::spawn`) is its child.
    ///
    /// ```
    /// use unitel::UnifiedTelemetry;
    ///
    /// async fn send_welcome_email(telemetry: UnifiedTelemetry, user_id: u64) {
    ///     tokio::task::yield_now().await; // ... talk to the mail server ...
    ///     telemetry.log_info_with("welcome email sent", &[("user.id", user_id)]);
    /// }
    ///
    /// async fn sign_up(telemetry: &UnifiedTelemetry, user_id: u64) -> tokio::task::JoinHandle<()> {
    ///     let span = telemetry.trace("sign_up").attr("user.id", user_id);
    ///     span.instrument(async {
    ///         tokio::task::yield_now().await; // ... save the user ...
    ///         // A child of `sign_up`, running on in a task of its own:
    ///         let email = telemetry.trace("send_welcome_email");
    ///         tokio::spawn(email.instrument(send_welcome_email(telemetry.clone(), user_id)))
    ///     })
    ///     .await
    /// }
    /// # #[tokio::main]
    /// # async fn main() {
    /// # let capture = unitel::testing::capture();
    /// let telemetry = unitel::get_telemetry("accounts");
    /// let email_task = sign_up(&telemetry, 7).await;
    /// email_task.await.unwrap();
    /// # let (sign_up, email) = (capture.span("sign_up").unwrap(), capture.span("send_welcome_email").unwrap());
    /// # assert_eq!(email.parent_span_id.as_deref(), Some(sign_up.span_id.as_str()));
    /// # assert_eq!(capture.log("welcome email sent").unwrap().span_id, Some(email.span_id));
    /// # }
    /// ```
    pub fn instrument<F: Future>(mut self, fut: F) -> impl Future<Output = F::Output> {
        // Leave the current context of this thread as it was before the span started.
        drop(self.attached.take());
        let cx = self.live_context();
        // The span is ended by the future now, not by this guard.
        self.span.cx = Context::new();
        instrumented(cx, fut)
    }

    fn live_context(&self) -> Option<Context> {
        self.span.cx.has_active_span().then(|| self.span.cx.clone())
    }
}

/// `fut`, with `cx` current while it is polled and its span ended when it completes or is
/// dropped.
fn instrumented<F: Future>(cx: Option<Context>, fut: F) -> impl Future<Output = F::Output> {
    /// Ends the span when the future is done or dropped half-way.
    struct EndOnDrop(Context);
    impl Drop for EndOnDrop {
        fn drop(&mut self) {
            self.0.span().end();
        }
    }
    async move {
        match cx {
            Some(cx) => {
                let _end = EndOnDrop(cx.clone());
                fut.with_context(cx).await
            }
            None => fut.await,
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        // Detach first, so the span's end sees its parent as current.
        drop(self.attached.take());
        if self.span.cx.has_active_span() {
            self.span.cx.span().end();
        }
    }
}

impl SpanRef {
    /// Whether the span records anything (telemetry is on and the trace is sampled).
    pub fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    /// Sets an attribute on the span.
    pub fn set_attribute(&self, key: impl IntoKey, value: impl IntoValue) {
        if self.cx.has_active_span() {
            self.cx
                .span()
                .set_attribute(KeyValue::new(key.to_key(), value.to_value()));
        }
    }

    /// Sets several attributes on the span.
    pub fn set_attributes(&self, attrs: impl Attributes) {
        if self.cx.has_active_span() {
            self.cx
                .span()
                .set_attributes(attributes::collect(&attrs).into_vec());
        }
    }

    /// Adds a timestamped event with attributes.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attrs: impl Attributes) {
        if self.cx.has_active_span() {
            self.cx
                .span()
                .add_event(name, attributes::collect(&attrs).into_vec());
        }
    }

    /// Marks the span as failed with `err`'s message and adds an `exception` event carrying
    /// `exception.message` and the `source()` chain in `exception.causes`.
    pub fn record_error(&self, err: &(dyn std::error::Error + 'static)) {
        if self.cx.has_active_span() {
            record_error_on(&self.cx, err);
        }
    }

    /// Sets the status (`Status::Ok`, `Status::error("..")`, `Status::Unset`).
    pub fn set_status(&self, status: Status) {
        if self.cx.has_active_span() {
            self.cx.span().set_status(status);
        }
    }

    /// Renames the span (an HTTP span once its route is known).
    pub fn update_name(&self, name: impl Into<Cow<'static, str>>) {
        if self.cx.has_active_span() {
            self.cx.span().update_name(name);
        }
    }

    /// The span's trace id as 32 lowercase hex digits; `None` outside any span.
    pub fn trace_id(&self) -> Option<String> {
        Ids::of(self.cx.span().span_context()).map(|ids| ids.trace_id.to_string())
    }

    /// The span's id as 16 lowercase hex digits; `None` outside any span.
    pub fn span_id(&self) -> Option<String> {
        Ids::of(self.cx.span().span_context()).map(|ids| ids.span_id.to_string())
    }

    /// The span's trace context, to hand to another thread, task or process.
    pub fn context(&self) -> TraceContext {
        TraceContext {
            cx: self.cx.clone(),
        }
    }

    fn fmt_ids<'a, 'b>(
        &self,
        mut d: std::fmt::DebugStruct<'a, 'b>,
    ) -> std::fmt::DebugStruct<'a, 'b> {
        if let Some(ids) = Ids::of(self.cx.span().span_context()) {
            d.field("trace_id", &ids.trace_id)
                .field("span_id", &ids.span_id)
                .field("sampled", &ids.flags.is_sampled());
        }
        d
    }
}

pub(crate) fn record_error_on(cx: &Context, err: &(dyn std::error::Error + 'static)) {
    let span = cx.span();
    let message = err.to_string();
    let mut causes = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        if causes.len() == 32 {
            break;
        }
        causes.push(opentelemetry::StringValue::from(e.to_string()));
        next = e.source();
    }
    let mut attrs = vec![KeyValue::new("exception.message", message.clone())];
    if !causes.is_empty() {
        attrs.push(KeyValue::new(
            "exception.causes",
            opentelemetry::Value::Array(opentelemetry::Array::String(causes)),
        ));
    }
    span.add_event("exception", attrs);
    span.set_status(Status::error(message));
}
