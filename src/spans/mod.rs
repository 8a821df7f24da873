//! Spans: the facade's [`Span`] guard, its builder, and [`TraceContext`] for handing a trace to
//! another thread, task or process.
//!
//! The facade's spans go straight to the OpenTelemetry SDK (no `tracing` span in between) and
//! become current by attaching their OpenTelemetry [`Context`]. tracing-opentelemetry 0.34 does
//! the same for entered `tracing` spans, so that context is the one stack both kinds share: a
//! `tracing` span opened inside a facade span is its child, and the other way round.

mod context;

pub(crate) use self::context::{current_ids, Ids};
pub use self::context::{current_span_id, current_trace_id, TraceContext, TraceContextGuard};

use crate::attributes::{self, Attributes, IntoKey, IntoValue};
use crate::registry::Component;
use crate::state;
use opentelemetry::trace::{FutureExt as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, ContextGuard, KeyValue};
use std::borrow::Cow;
use std::future::Future;

/// The instrumentation scope of spans that come from `tracing` (the tracing-opentelemetry
/// layer's tracer); their component is their `target` attribute.
pub(crate) const TRACING_SCOPE: &str = "tracing";

/// A started span that is the current span until it is dropped.
///
/// Made by [`UnifiedTelemetry::trace`](crate::UnifiedTelemetry::trace). Dropping it ends the span.
/// It is not `Send`: like an entered `tracing` span it belongs to the thread that made it. To
/// follow a future across `.await` points and threads, use [`Span::instrument`].
///
/// When telemetry is not configured, disabled or shut down, a `Span` is an inert value and every
/// method is a no-op.
#[must_use = "a span ends when it is dropped; bind it with `let _span = ...`"]
pub struct Span {
    inner: Option<Live>,
}

struct Live {
    cx: Context,
    _attached: ContextGuard,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Span");
        if let Some(live) = &self.inner {
            let sc = live.cx.span().span_context().clone();
            d.field("trace_id", &sc.trace_id())
                .field("span_id", &sc.span_id())
                .field("sampled", &sc.is_sampled());
        }
        d.finish_non_exhaustive()
    }
}

/// Options for a span before it starts: kind, parent, attributes the sampler sees.
///
/// Made by [`UnifiedTelemetry::span`](crate::UnifiedTelemetry::span);
/// [`start`](SpanBuilder::start) makes the [`Span`].
#[must_use = "a SpanBuilder does nothing until `.start()`"]
#[derive(Debug)]
pub struct SpanBuilder {
    component: std::sync::Arc<Component>,
    name: Cow<'static, str>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
    parent: Option<Context>,
}

impl SpanBuilder {
    pub(crate) fn new(component: &std::sync::Arc<Component>, name: Cow<'static, str>) -> Self {
        SpanBuilder {
            component: component.clone(),
            name,
            kind: SpanKind::Internal,
            attributes: Vec::new(),
            parent: None,
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

    /// The span's kind (default [`SpanKind::Internal`]).
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Makes the span a child of `parent` instead of the current span (a job's context
    /// received from another thread or process).
    pub fn parent(mut self, parent: &TraceContext) -> Self {
        self.parent = Some(parent.cx.clone());
        self
    }

    /// Starts the span and makes it current.
    pub fn start(self) -> Span {
        let builder = opentelemetry::trace::SpanBuilder::from_name(self.name)
            .with_kind(self.kind)
            .with_attributes(self.attributes);
        Span::build(&self.component, builder, self.parent)
    }
}

impl Span {
    /// A span that records nothing.
    pub fn noop() -> Span {
        Span { inner: None }
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
        let mut builder = opentelemetry::trace::SpanBuilder::from_name(name);
        if attrs.len_hint() > 0 {
            builder = builder.with_attributes(attributes::collect(attrs));
        }
        Span::build(component, builder, None)
    }

    /// Starts the span described by `builder` under `parent` (the current context when `None`)
    /// and attaches it; a no-op span while telemetry is not running.
    fn build(
        component: &Component,
        builder: opentelemetry::trace::SpanBuilder,
        parent: Option<Context>,
    ) -> Span {
        let tracer = match (state::active(), component.tracer()) {
            (Some(_), Some(tracer)) => tracer,
            _ => return Span::noop(),
        };
        let parent = parent.unwrap_or_else(Context::current);
        let span = tracer.build_with_context(builder, &parent);
        let cx = parent.with_span(span);
        Span {
            inner: Some(Live {
                _attached: cx.clone().attach(),
                cx,
            }),
        }
    }

    /// Whether this span records anything (telemetry is on and the trace is sampled).
    pub fn is_recording(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|l| l.cx.span().is_recording())
    }

    /// Sets an attribute and returns the span, for chaining after `trace(..)`.
    pub fn attr(self, key: impl IntoKey, value: impl IntoValue) -> Self {
        self.set_attribute(key, value);
        self
    }

    /// Sets an attribute on the live span.
    pub fn set_attribute(&self, key: impl IntoKey, value: impl IntoValue) {
        if let Some(live) = &self.inner {
            live.cx
                .span()
                .set_attribute(KeyValue::new(key.to_key(), value.to_value()));
        }
    }

    /// Adds a timestamped event with attributes.
    pub fn add_event(&self, name: impl Into<Cow<'static, str>>, attrs: impl Attributes) {
        if let Some(live) = &self.inner {
            live.cx
                .span()
                .add_event(name, attributes::collect(&attrs).into_vec());
        }
    }

    /// Marks the span as failed with `err`'s message and adds an `exception` event carrying
    /// `exception.message` and the `source()` chain in `exception.causes`.
    pub fn record_error(&self, err: &(dyn std::error::Error + 'static)) {
        if let Some(live) = &self.inner {
            record_error_on(&live.cx, err);
        }
    }

    /// Sets the status (`Status::Ok`, `Status::error("..")`, `Status::Unset`).
    pub fn set_status(&self, status: Status) {
        if let Some(live) = &self.inner {
            live.cx.span().set_status(status);
        }
    }

    /// This span's trace id as 32 lowercase hex digits.
    pub fn trace_id(&self) -> Option<String> {
        self.inner
            .as_ref()
            .map(|l| l.cx.span().span_context().trace_id().to_string())
    }

    /// This span's id as 16 lowercase hex digits.
    pub fn span_id(&self) -> Option<String> {
        self.inner
            .as_ref()
            .map(|l| l.cx.span().span_context().span_id().to_string())
    }

    /// The trace context of this span, to hand to another thread, task or process.
    pub fn context(&self) -> TraceContext {
        TraceContext {
            cx: self
                .inner
                .as_ref()
                .map(|l| l.cx.clone())
                .unwrap_or_default(),
        }
    }

    /// Runs `f` inside the span, then ends it.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let r = f();
        drop(self);
        r
    }

    /// Makes the span current whenever `fut` is polled, on whatever thread polls it, and ends
    /// the span when `fut` completes (or is dropped).
    pub fn instrument<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        // Leave the current context of this thread as it was before the span started.
        let cx = self.take_context();
        async move {
            match cx {
                Some(cx) => {
                    let out = fut.with_context(cx.clone()).await;
                    cx.span().end();
                    out
                }
                None => fut.await,
            }
        }
    }
}

impl Span {
    /// Detaches the span from this thread without ending it.
    fn take_context(mut self) -> Option<Context> {
        self.inner.take().map(|live| live.cx)
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(live) = &self.inner {
            live.cx.span().end();
        }
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
