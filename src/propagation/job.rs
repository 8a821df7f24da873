//! Job envelopes: a payload handed to a queue or a worker with the trace context of the span
//! that produced it (seed 000's `client.submit_task` → `worker.execute_task`).

use crate::spans::{Span, SpanBuilder, TraceContext};
use opentelemetry::trace::SpanKind;
use std::collections::BTreeMap;

/// A job and the trace context it was produced in: `traceparent`, `tracestate` and `baggage`
/// as plain string headers, so the envelope serializes with the job (feature `serde`, or by
/// hand from [`headers`](Self::headers)).
///
/// ```
/// use unitel::{JobEnvelope, JobTrace};
/// let telemetry = unitel::get_telemetry("worker");
///
/// // producer: a PRODUCER span, and its context in the envelope
/// let (span, job) = telemetry.span("client.submit_task").produce("send_email");
/// drop(span);
///
/// // worker: a CONSUMER span in the producer's trace (or JobTrace::Link: a new trace, linked)
/// let _span = telemetry.span("worker.execute_task").consume(&job, JobTrace::Continue).start();
/// ```
///
/// On the wire, send [`payload`](Self::payload) and [`headers`](Self::headers()) (string
/// pairs, for a message's headers or a JSON object) and rebuild the envelope with
/// [`from_parts`](Self::from_parts); with the `serde` feature, the envelope serializes as it
/// is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JobEnvelope<T> {
    /// The job itself.
    pub payload: T,
    /// The trace context fields, by lowercase name.
    #[cfg_attr(feature = "serde", serde(default))]
    pub headers: BTreeMap<String, String>,
}

/// How a worker's span relates to the producer's, for [`SpanBuilder::consume`].
///
/// ```
/// use unitel::JobTrace;
/// # let capture = unitel::testing::capture();
/// let telemetry = unitel::get_telemetry("reports");
///
/// let (span, job) = telemetry.span("schedule_report").produce("monthly_sales");
/// drop(span);
///
/// // Hours later, in the worker: a trace of its own, linked to the request that asked for it.
/// let span = telemetry.span("build_report").consume(&job, JobTrace::Link).start();
/// assert_ne!(span.trace_id(), job.context().trace_id());
/// # drop(span);
/// # let (scheduled, built) = (capture.span("schedule_report").unwrap(), capture.span("build_report").unwrap());
/// # assert_eq!(built.links, [(scheduled.trace_id, scheduled.span_id)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JobTrace {
    /// The worker's span is a child of the producer's: one trace from request to job.
    #[default]
    Continue,
    /// The worker starts a trace of its own, linked to the producer's span (for batch jobs and
    /// long queues, where one trace per request would stay open for hours).
    Link,
}

impl<T> JobEnvelope<T> {
    /// Wraps `payload` with the current trace context.
    pub fn new(payload: T) -> Self {
        Self::with_context(payload, &TraceContext::current())
    }

    /// Wraps `payload` with `cx`.
    pub fn with_context(payload: T, cx: &TraceContext) -> Self {
        let mut headers = BTreeMap::new();
        cx.inject(&mut headers);
        JobEnvelope { payload, headers }
    }

    /// The trace context the job was produced in; without a span when it carried none or a
    /// malformed one.
    pub fn context(&self) -> TraceContext {
        TraceContext::extract(&self.headers)
    }

    /// The trace context headers.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// Rebuilds an envelope received as a payload and headers (a queue message's headers).
    pub fn from_parts(payload: T, headers: impl IntoIterator<Item = (String, String)>) -> Self {
        // Lowercase names, so headers compare the same whoever wrote them.
        let headers = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        JobEnvelope { payload, headers }
    }
}

impl SpanBuilder {
    /// Starts this span as the PRODUCER of a job and wraps `payload` with its context. The
    /// span is current until dropped; drop it once the job is handed over.
    pub fn produce<T>(self, payload: T) -> (Span, JobEnvelope<T>) {
        let span = self.kind(SpanKind::Producer).start();
        let job = JobEnvelope::with_context(payload, &span.context());
        (span, job)
    }

    /// Makes this span the CONSUMER of `job`: a child of the producer's span
    /// ([`JobTrace::Continue`]), or the root of a new trace linked to it ([`JobTrace::Link`]).
    /// The job's baggage is kept either way.
    pub fn consume<T>(self, job: &JobEnvelope<T>, trace: JobTrace) -> Self {
        let cx = job.context();
        let builder = self.kind(SpanKind::Consumer);
        match trace {
            JobTrace::Continue => builder.parent(&cx),
            JobTrace::Link => builder.parent(&cx).root().link(&cx),
        }
    }
}
