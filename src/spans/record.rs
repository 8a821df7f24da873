//! One JSON record per closed span, so a trace can be rebuilt from the log file alone.
//!
//! This is a span processor in the SDK's pipeline, so it sees the facade's own spans and the
//! spans tracing-opentelemetry builds from `tracing` spans alike.

use crate::format::{self, json, time};
use crate::logs::file::FileSink;
use crate::testing::CaptureSinks;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

/// Writes span records as JSON lines.
#[derive(Debug)]
pub(crate) struct SpanRecordProcessor {
    pub(crate) file: Option<Arc<FileSink>>,
    pub(crate) capture: Option<CaptureSinks>,
    /// `OTEL_TRACES_EXPORTER=console`: the records go to standard output too.
    pub(crate) stdout: bool,
}

impl SpanRecordProcessor {
    /// The `console` trace exporter: span records on standard output.
    pub(crate) fn stdout() -> Self {
        SpanRecordProcessor {
            file: None,
            capture: None,
            stdout: true,
        }
    }
}

impl SpanProcessor for SpanRecordProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        thread_local! {
            static BUF: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let write = |out: &mut String| {
            out.clear();
            format_span(&span, out);
            if let Some(file) = &self.file {
                file.write_line(out.as_bytes());
            }
            if let Some(capture) = &self.capture {
                capture.push_line(out);
            }
            if self.stdout {
                use std::io::Write as _;
                let _ = std::io::stdout().lock().write_all(out.as_bytes());
            }
        };
        let _ = BUF.try_with(|buf| match buf.try_borrow_mut() {
            Ok(mut out) => write(&mut out),
            Err(_) => write(&mut String::new()),
        });
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn kind_str(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

/// The component of a span: the facade's component (its instrumentation scope), or for a
/// `tracing` span its target.
fn component(span: &SpanData) -> &str {
    if span.instrumentation_scope.name() == crate::pipeline::TRACING_SCOPE {
        for kv in &span.attributes {
            if kv.key.as_str() == "target" {
                if let opentelemetry::Value::String(s) = &kv.value {
                    return s.as_str();
                }
            }
        }
    }
    span.instrumentation_scope.name()
}

/// Formats one span record, with its newline. Schema: `docs/log-format.md`.
pub(crate) fn format_span(span: &SpanData, out: &mut String) {
    let sc = &span.span_context;
    out.push_str("{\"timestamp\":\"");
    time::write_rfc3339(out, span.end_time);
    out.push_str("\",\"type\":\"span\",\"name\":");
    json::write_str(out, &span.name);
    out.push_str(",\"component\":");
    json::write_str(out, component(span));
    out.push_str(",\"trace_id\":\"");
    format::write_hex(out, &sc.trace_id().to_bytes());
    out.push_str("\",\"span_id\":\"");
    format::write_hex(out, &sc.span_id().to_bytes());
    out.push_str("\",\"parent_span_id\":");
    if span.parent_span_id == SpanId::INVALID {
        out.push_str("null");
    } else {
        out.push('"');
        format::write_hex(out, &span.parent_span_id.to_bytes());
        out.push('"');
    }
    out.push_str(",\"kind\":\"");
    out.push_str(kind_str(&span.span_kind));
    out.push_str("\",\"start_time\":\"");
    time::write_rfc3339(out, span.start_time);
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    out.push_str("\",\"duration_ns\":");
    format::write_u64(out, u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    match &span.status {
        Status::Unset => out.push_str(",\"status\":\"unset\""),
        Status::Ok => out.push_str(",\"status\":\"ok\""),
        Status::Error { description } => {
            out.push_str(",\"status\":\"error\",\"status_message\":");
            json::write_str(out, description);
        }
    }
    out.push_str(",\"attributes\":");
    write_attributes(out, &span.attributes);
    out.push_str(",\"events\":[");
    for (i, event) in span.events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json::write_str(out, &event.name);
        out.push_str(",\"timestamp\":\"");
        time::write_rfc3339(out, event.timestamp);
        out.push_str("\",\"attributes\":");
        write_attributes(out, &event.attributes);
        out.push('}');
    }
    out.push_str("]}\n");
}

fn write_attributes(out: &mut String, attrs: &[opentelemetry::KeyValue]) {
    out.push('{');
    for (i, kv) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str(out, kv.key.as_str());
        out.push(':');
        json::write_value(out, &kv.value);
    }
    out.push('}');
}
