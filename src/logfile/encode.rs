//! Writing records as JSON lines, the one place the log-file format is written: a log record
//! per log event and a span record per closed span. Schema: `docs/log-format.md`.
//!
//! Every string goes through [`json::write_str`], so no message or field can end a record
//! early or forge another one.

use crate::attributes;
use crate::event::{level_str, FieldValue, LogEvent, Scratch};
use crate::format::{self, json, time};
use crate::spans::TRACING_SCOPE;
use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;

/// The value of the `service` key as every record writes it (`"orders"`: quoted and
/// escaped), encoded once when the pipeline starts rather than on every record.
pub(crate) fn encode_service(service: &str) -> Box<str> {
    let mut out = String::with_capacity(service.len() + 2);
    json::write_str(&mut out, service);
    out.into()
}

/// Formats the JSON line (with its newline) into `s.out`. Schema: `docs/log-format.md`.
/// `service` is [`encode_service`]'s output.
pub(crate) fn write_log(record: &LogEvent<'_>, service: &str, s: &mut Scratch) {
    let Scratch {
        message,
        text,
        fields,
        error_chain,
        out,
        ..
    } = s;
    out.push_str("{\"timestamp\":\"");
    time::write_rfc3339(out, record.time);
    out.push_str("\",\"type\":\"log\",\"service\":");
    out.push_str(service);
    out.push_str(",\"level\":\"");
    out.push_str(level_str(record.level));
    out.push_str("\",\"target\":");
    json::write_str(out, record.target);
    out.push_str(",\"component\":");
    json::write_str(out, record.component);
    out.push_str(",\"message\":");
    json::write_str(out, message);
    match record.ids {
        Some(ids) => {
            out.push_str(",\"trace_id\":\"");
            format::write_hex(out, &ids.trace_id.to_bytes());
            out.push_str("\",\"span_id\":\"");
            format::write_hex(out, &ids.span_id.to_bytes());
            out.push('"');
        }
        None => out.push_str(",\"trace_id\":null,\"span_id\":null"),
    }
    out.push_str(",\"fields\":{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str(out, &text[key.clone()]);
        out.push(':');
        match value {
            FieldValue::Str(r) => json::write_str(out, &text[r.clone()]),
            FieldValue::I64(v) => format::write_i64(out, *v),
            FieldValue::U64(v) => format::write_u64(out, *v),
            FieldValue::F64(v) => json::write_f64(out, *v),
            FieldValue::Bool(v) => out.push_str(if *v { "true" } else { "false" }),
        }
    }
    out.push('}');
    if let Some((first, causes)) = error_chain.split_first() {
        out.push_str(",\"error\":{\"message\":");
        json::write_str(out, &text[first.clone()]);
        out.push_str(",\"causes\":[");
        for (i, cause) in causes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str(out, &text[cause.clone()]);
        }
        out.push_str("]}");
    }
    out.push_str("}\n");
}

pub(super) fn kind_str(kind: &SpanKind) -> &'static str {
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
    if span.instrumentation_scope.name() == TRACING_SCOPE {
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
/// `service` is [`encode_service`]'s output.
pub(crate) fn write_span(span: &SpanData, service: &str, out: &mut String) {
    let sc = &span.span_context;
    out.push_str("{\"timestamp\":\"");
    time::write_rfc3339(out, span.end_time);
    out.push_str("\",\"type\":\"span\",\"service\":");
    out.push_str(service);
    out.push_str(",\"name\":");
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

/// Writes a span's or event's attributes as one JSON object, each key once: the SDK keeps
/// every `set_attribute` call, so a key set twice keeps its first place and its last value
/// (the last one wins, as OpenTelemetry says of attributes).
fn write_attributes(out: &mut String, attrs: &[opentelemetry::KeyValue]) {
    let repeats = attributes::may_repeat_keys(attrs);
    out.push('{');
    let mut first = true;
    for (i, kv) in attrs.iter().enumerate() {
        let value = match repeats {
            false => &kv.value,
            true => match attributes::last_value(attrs, i) {
                Some(value) => value,
                None => continue,
            },
        };
        if !first {
            out.push(',');
        }
        first = false;
        json::write_str(out, kv.key.as_str());
        out.push(':');
        json::write_value(out, value);
    }
    out.push('}');
}
