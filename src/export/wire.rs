//! OTLP's protobuf encoding of span and log batches, written straight from the SDK's records.
//!
//! opentelemetry-otlp first converts a batch into opentelemetry-proto's structs (an owned
//! `String` for every attribute key and value, a `Vec` for every id, and for logs a scope rebuilt
//! and hashed per record), then encodes those and frees them. At 200,000 items a second that was
//! most of the export's CPU (docs/performance.md, "Where the CPU goes"). This writes the same
//! messages field by field from the borrowed records into one buffer, with nothing allocated
//! per item.
//!
//! The field numbers are those of `opentelemetry/proto/{common,resource,trace,logs}/v1` and
//! `collector/{trace,logs}/v1`. The tests decode the output with opentelemetry-proto's own types
//! and compare it with opentelemetry-proto's own conversion of the same batch.

use opentelemetry::logs::AnyValue as LogValue;
use opentelemetry::trace::{SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use std::time::{SystemTime, UNIX_EPOCH};

// Wire types.
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// `Span.flags`: the parent's `is_remote` is known (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`), and
/// whether it is remote (`SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

/// A length-delimited field, written even when empty (a `oneof` member).
fn len_always(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `bytes` or `string` field: proto3 leaves an empty one out.
fn bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    if !bytes.is_empty() {
        len_always(out, field, bytes);
    }
}

fn uint(out: &mut Vec<u8>, field: u64, v: u64) {
    if v != 0 {
        tag(out, field, VARINT);
        varint(out, v);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    if v != 0 {
        tag(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, field: u64, v: u32) {
    if v != 0 {
        tag(out, field, FIXED32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// A nested message, written by `body` in place. Its length is known only afterwards:
/// `guess` bytes are kept for it, and the body moves when the length needs another count.
fn message(out: &mut Vec<u8>, field: u64, guess: usize, body: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.resize(at + guess, 0);
    body(out);
    let len = out.len() - at - guess;
    let need = varint_len(len as u64);
    if need > guess {
        out.resize(out.len() + need - guess, 0);
        out.copy_within(at + guess..at + guess + len, at + need);
    } else if need < guess {
        out.copy_within(at + guess..at + guess + len, at + need);
        out.truncate(at + need + len);
    }
    let mut v = len as u64;
    for byte in &mut out[at..at + need] {
        *byte = v as u8 & 0x7f | if v >= 0x80 { 0x80 } else { 0 };
        v >>= 7;
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `AnyValue`'s members; a `oneof` member is written even when it holds its default.
fn any_string(out: &mut Vec<u8>, s: &str) {
    len_always(out, 1, s.as_bytes());
}

fn any_bool(out: &mut Vec<u8>, b: bool) {
    tag(out, 2, VARINT);
    varint(out, u64::from(b));
}

fn any_int(out: &mut Vec<u8>, i: i64) {
    tag(out, 3, VARINT);
    varint(out, i as u64);
}

fn any_double(out: &mut Vec<u8>, f: f64) {
    tag(out, 4, FIXED64);
    out.extend_from_slice(&f.to_bits().to_le_bytes());
}

/// An attribute value as `AnyValue`'s body. A kind of value this version does not know (the
/// enums are non-exhaustive) is sent as an empty `AnyValue`.
fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => any_bool(out, *b),
        Value::I64(i) => any_int(out, *i),
        Value::F64(f) => any_double(out, *f),
        Value::String(s) => any_string(out, s.as_str()),
        Value::Array(array) => message(out, 5, 2, |out| {
            // ArrayValue.values
            match array {
                Array::Bool(vs) => vs
                    .iter()
                    .for_each(|b| message(out, 1, 1, |out| any_bool(out, *b))),
                Array::I64(vs) => vs
                    .iter()
                    .for_each(|i| message(out, 1, 1, |out| any_int(out, *i))),
                Array::F64(vs) => vs
                    .iter()
                    .for_each(|f| message(out, 1, 1, |out| any_double(out, *f))),
                Array::String(vs) => vs
                    .iter()
                    .for_each(|s| message(out, 1, 1, |out| any_string(out, s.as_str()))),
                _ => {}
            }
        }),
        _ => {}
    }
}

/// A log record's body or attribute value as `AnyValue`'s body.
fn log_value(out: &mut Vec<u8>, v: &LogValue) {
    match v {
        LogValue::Int(i) => any_int(out, *i),
        LogValue::Double(f) => any_double(out, *f),
        LogValue::String(s) => any_string(out, s.as_str()),
        LogValue::Boolean(b) => any_bool(out, *b),
        LogValue::Bytes(b) => len_always(out, 7, b),
        LogValue::ListAny(list) => message(out, 5, 2, |out| {
            for v in list.iter() {
                message(out, 1, 1, |out| log_value(out, v));
            }
        }),
        LogValue::Map(map) => message(out, 6, 2, |out| {
            for (k, v) in map.iter() {
                key_value(out, 1, k.as_str(), |out| log_value(out, v));
            }
        }),
        _ => {}
    }
}

/// A `KeyValue` message as field `field`.
fn key_value(out: &mut Vec<u8>, field: u64, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
    message(out, field, 1, |out| {
        bytes(out, 1, key.as_bytes());
        message(out, 2, 1, value);
    });
}

fn attributes<'a>(out: &mut Vec<u8>, field: u64, kvs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in kvs {
        key_value(out, field, kv.key.as_str(), |out| value(out, &kv.value));
    }
}

/// An `InstrumentationScope` message (field 1 of `ScopeSpans` and `ScopeLogs`), named `name`.
fn scope(out: &mut Vec<u8>, scope: &InstrumentationScope, name: &str) {
    message(out, 1, 1, |out| {
        bytes(out, 1, name.as_bytes());
        bytes(out, 2, scope.version().unwrap_or_default().as_bytes());
        attributes(out, 3, scope.attributes());
    });
}

fn trace_state(out: &mut Vec<u8>, field: u64, state: &TraceState) {
    if *state != TraceState::NONE {
        bytes(out, field, state.header().as_bytes());
    }
}

/// The resource, encoded once: a `ResourceSpans`/`ResourceLogs` message's `resource` (field 1)
/// and `schema_url` (field 3), which are the same in every batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedResource {
    resource: Vec<u8>,
    schema_url: Vec<u8>,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> EncodedResource {
        let mut encoded = Vec::new();
        message(&mut encoded, 1, 2, |out| {
            for (k, v) in resource.iter() {
                key_value(out, 1, k.as_str(), |out| value(out, v));
            }
        });
        let mut schema_url = Vec::new();
        bytes(
            &mut schema_url,
            3,
            resource.schema_url().unwrap_or_default().as_bytes(),
        );
        EncodedResource {
            resource: encoded,
            schema_url,
        }
    }
}

/// The records of one scope, in the order they came: `(first, rest)` indexes into the batch.
struct Group {
    first: usize,
    rest: Vec<u32>,
}

/// Groups `n` items by scope, keeping first-seen order; `same(a, b)`: whether items `a` and `b`
/// belong to the same scope. Consecutive items usually share one, so the last group is tried
/// first.
fn groups(n: usize, same: impl Fn(usize, usize) -> bool) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut last = 0;
    for i in 0..n {
        if let Some(g) = groups.get_mut(last).filter(|g| same(g.first, i)) {
            g.rest.push(i as u32);
        } else if let Some(at) = groups.iter().position(|g| same(g.first, i)) {
            groups[at].rest.push(i as u32);
            last = at;
        } else {
            last = groups.len();
            groups.push(Group {
                first: i,
                rest: Vec::new(),
            });
        }
    }
    groups
}

fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    std::ptr::eq(a, b)
        || (a.version() == b.version()
            && a.schema_url() == b.schema_url()
            && a.attributes().eq(b.attributes()))
}

/// Appends an `ExportTraceServiceRequest` for `spans` to `out`.
pub(crate) fn spans(out: &mut Vec<u8>, spans: &[SpanData], resource: &EncodedResource) {
    let by_scope = groups(spans.len(), |a, b| {
        let (a, b) = (
            &spans[a].instrumentation_scope,
            &spans[b].instrumentation_scope,
        );
        a.name() == b.name() && same_scope(a, b)
    });
    // ExportTraceServiceRequest.resource_spans
    message(out, 1, 3, |out| {
        out.extend_from_slice(&resource.resource);
        for group in &by_scope {
            let first = &spans[group.first].instrumentation_scope;
            // ResourceSpans.scope_spans
            message(out, 2, 3, |out| {
                scope(out, first, first.name());
                span(out, &spans[group.first]);
                for &i in &group.rest {
                    span(out, &spans[i as usize]);
                }
                bytes(out, 3, first.schema_url().unwrap_or_default().as_bytes());
            });
        }
        out.extend_from_slice(&resource.schema_url);
    });
}

/// `ScopeSpans.spans`: one `Span`.
fn span(out: &mut Vec<u8>, s: &SpanData) {
    message(out, 2, 2, |out| {
        let cx = &s.span_context;
        bytes(out, 1, &cx.trace_id().to_bytes());
        bytes(out, 2, &cx.span_id().to_bytes());
        trace_state(out, 3, cx.trace_state());
        if s.parent_span_id != opentelemetry::trace::SpanId::INVALID {
            bytes(out, 4, &s.parent_span_id.to_bytes());
        }
        bytes(out, 5, s.name.as_bytes());
        uint(out, 6, kind(&s.span_kind));
        fixed64(out, 7, nanos(s.start_time));
        fixed64(out, 8, nanos(s.end_time));
        attributes(out, 9, &s.attributes);
        uint(out, 10, u64::from(s.dropped_attributes_count));
        for e in s.events.iter() {
            message(out, 11, 1, |out| {
                fixed64(out, 1, nanos(e.timestamp));
                bytes(out, 2, e.name.as_bytes());
                attributes(out, 3, &e.attributes);
                uint(out, 4, u64::from(e.dropped_attributes_count));
            });
        }
        uint(out, 12, u64::from(s.events.dropped_count));
        for l in s.links.iter() {
            message(out, 13, 1, |out| {
                let cx = &l.span_context;
                bytes(out, 1, &cx.trace_id().to_bytes());
                bytes(out, 2, &cx.span_id().to_bytes());
                trace_state(out, 3, cx.trace_state());
                attributes(out, 4, &l.attributes);
                uint(out, 5, u64::from(l.dropped_attributes_count));
                fixed32(out, 6, flags(cx.trace_flags().to_u8(), cx.is_remote()));
            });
        }
        uint(out, 14, u64::from(s.links.dropped_count));
        // Span.status, always present.
        message(out, 15, 1, |out| {
            let code = match &s.status {
                Status::Unset => 0,
                Status::Ok => 1,
                Status::Error { description } => {
                    bytes(out, 2, description.as_bytes());
                    2
                }
            };
            uint(out, 3, code);
        });
        fixed32(
            out,
            16,
            flags(cx.trace_flags().to_u8(), s.parent_span_is_remote),
        );
    });
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

/// Appends an `ExportLogsServiceRequest` for `batch` to `out`.
pub(crate) fn logs(out: &mut Vec<u8>, batch: &LogBatch<'_>, resource: &EncodedResource) {
    let records: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch.iter().collect();
    // A record's target, when it has one, names its scope.
    let name = |i: usize| {
        let (record, scope) = records[i];
        record.target().map_or(scope.name(), |t| t.as_ref())
    };
    let by_scope = groups(records.len(), |a, b| {
        name(a) == name(b) && same_scope(records[a].1, records[b].1)
    });
    // ExportLogsServiceRequest.resource_logs
    message(out, 1, 3, |out| {
        out.extend_from_slice(&resource.resource);
        for group in &by_scope {
            let first = records[group.first].1;
            // ResourceLogs.scope_logs
            message(out, 2, 3, |out| {
                scope(out, first, name(group.first));
                log_record(out, records[group.first].0);
                for &i in &group.rest {
                    log_record(out, records[i as usize].0);
                }
                bytes(out, 3, first.schema_url().unwrap_or_default().as_bytes());
            });
        }
        out.extend_from_slice(&resource.schema_url);
    });
}

/// `ScopeLogs.log_records`: one `LogRecord`.
fn log_record(out: &mut Vec<u8>, r: &SdkLogRecord) {
    message(out, 2, 2, |out| {
        fixed64(out, 1, r.timestamp().map_or(0, nanos));
        // Severity's discriminants are OTLP's SeverityNumber.
        uint(out, 2, r.severity_number().map_or(0, |s| s as u64));
        bytes(out, 3, r.severity_text().unwrap_or_default().as_bytes());
        if let Some(body) = r.body() {
            message(out, 5, 1, |out| log_value(out, body));
        }
        for (k, v) in r.attributes_iter() {
            key_value(out, 6, k.as_str(), |out| log_value(out, v));
        }
        if let Some(cx) = r.trace_context() {
            fixed32(out, 8, cx.trace_flags.map_or(0, |f| u32::from(f.to_u8())));
            bytes(out, 9, &cx.trace_id.to_bytes());
            bytes(out, 10, &cx.span_id.to_bytes());
        }
        fixed64(out, 11, r.observed_timestamp().map_or(0, nanos));
        bytes(out, 12, r.event_name().unwrap_or_default().as_bytes());
    });
}

/// Reading a collector's answer: the fields of `msg`, as `(number, value)`, where the value is
/// a varint's or a fixed field's number, or a length-delimited field's bytes. Stops at the first
/// malformed byte.
fn fields(mut msg: &[u8]) -> impl Iterator<Item = (u64, Result<u64, &[u8]>)> {
    fn read_varint(msg: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = msg.split_first()?;
            *msg = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn take<'a>(msg: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if msg.len() < n {
            return None;
        }
        let (taken, rest) = msg.split_at(n);
        *msg = rest;
        Some(taken)
    }
    std::iter::from_fn(move || {
        let tag = read_varint(&mut msg)?;
        let value = match tag & 7 {
            VARINT => Ok(read_varint(&mut msg)?),
            FIXED64 => Ok(u64::from_le_bytes(take(&mut msg, 8)?.try_into().ok()?)),
            LEN => {
                let n = usize::try_from(read_varint(&mut msg)?).ok()?;
                Err(take(&mut msg, n)?)
            }
            FIXED32 => Ok(u64::from(u32::from_le_bytes(
                take(&mut msg, 4)?.try_into().ok()?,
            ))),
            _ => return None,
        };
        Some((tag >> 3, value))
    })
}

/// The first length-delimited field `number` of `msg`.
pub(crate) fn field(msg: &[u8], number: u64) -> Option<&[u8]> {
    fields(msg).find_map(|(n, v)| v.err().filter(|_| n == number))
}

/// The first varint field `number` of `msg`.
pub(crate) fn field_varint(msg: &[u8], number: u64) -> Option<u64> {
    fields(msg).find_map(|(n, v)| v.ok().filter(|_| n == number))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::Key;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::logs::{LogProcessor, SdkLoggerProvider};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;
    use std::borrow::Cow;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Strings around the lengths where a length prefix needs another byte.
    fn text(len: usize) -> String {
        "é-x".chars().cycle().take(len).collect()
    }

    fn every_value() -> Vec<KeyValue> {
        vec![
            KeyValue::new("bool", false),
            KeyValue::new("int", -7_i64),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("double", 1.5),
            KeyValue::new("empty", ""),
            KeyValue::new("long", text(130)),
            KeyValue::new("longer", text(17_000)),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, i64::MAX]))),
            KeyValue::new("doubles", Value::Array(Array::F64(vec![0.0, -3.25]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec!["a".into(), text(200).into()])),
            ),
            KeyValue::new("", "empty key"),
        ]
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "wire-test"),
                KeyValue::new("service.instance.id", text(300)),
            ])
            .with_schema_url([], "https://opentelemetry.io/schemas/1.30.0")
            .build()
    }

    fn scope(name: &'static str, version: Option<&'static str>) -> InstrumentationScope {
        let mut b = InstrumentationScope::builder(name)
            .with_schema_url("https://example.com/schema")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)]);
        if let Some(v) = version {
            b = b.with_version(v);
        }
        b.build()
    }

    fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + i);
        let cx = SpanContext::new(
            TraceId::from(0x1234 + u128::from(i)),
            SpanId::from(i + 1),
            TraceFlags::new((i % 2) as u8),
            i.is_multiple_of(3),
            if i.is_multiple_of(2) {
                TraceState::NONE
            } else {
                TraceState::from_key_value([("vendor", "v1"), ("other", "x")]).expect("state")
            },
        );
        SpanData {
            span_context: cx.clone(),
            parent_span_id: if i.is_multiple_of(4) {
                SpanId::INVALID
            } else {
                SpanId::from(99)
            },
            parent_span_is_remote: i.is_multiple_of(5),
            span_kind: [
                SpanKind::Internal,
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Producer,
                SpanKind::Consumer,
            ][(i % 5) as usize]
                .clone(),
            name: Cow::Owned(format!("span {i} {}", text(i as usize * 40))),
            start_time: t,
            end_time: t + Duration::from_micros(i * 17),
            attributes: if i == 0 { vec![] } else { every_value() },
            dropped_attributes_count: i as u32,
            events: {
                let mut events = SpanEvents::default();
                events.events = (0..i % 3)
                    .map(|e| {
                        Event::new(
                            format!("event {e}"),
                            t,
                            vec![KeyValue::new("exception.message", text(150))],
                            e as u32,
                        )
                    })
                    .collect();
                events.dropped_count = (i % 2) as u32;
                events
            },
            links: {
                let mut links = SpanLinks::default();
                links.links = (0..i % 2)
                    .map(|_| Link::new(cx.clone(), vec![KeyValue::new("l", true)], 3))
                    .collect();
                links
            },
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(format!("failed {}", text(i as usize))),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    /// The same batch, through opentelemetry-otlp's path (opentelemetry-proto's structs) and
    /// through ours, decoded: equal, field for field.
    #[test]
    fn spans_decode_to_what_opentelemetry_proto_makes_of_them() {
        let resource = resource();
        let a = scope("app", Some("1.2.3"));
        let b = scope("lib", None);
        // Interleaved scopes, one of them equal to the first but another instance.
        let a_again = scope("app", Some("1.2.3"));
        let scopes = [&a, &b, &a_again, &a];
        for n in [0, 1, 7, 40] {
            let batch: Vec<SpanData> = (0..n).map(|i| span(i, scopes[i as usize % 4])).collect();
            let mut ours = Vec::new();
            spans(&mut ours, &batch, &EncodedResource::new(&resource));
            let decoded = ExportTraceServiceRequest::decode(&ours[..]).expect("decodes");
            let theirs = ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(
                    batch.clone(),
                    &ResourceAttributesWithSchema::from(&resource),
                ),
            };
            if n == 0 {
                // opentelemetry-otlp sends a resource with no scope; so do we.
                assert_eq!(decoded.resource_spans[0].scope_spans.len(), 0);
            }
            assert_eq!(decoded, theirs, "{n} spans");
            assert_eq!(theirs.encode_to_vec().len(), ours.len(), "{n} spans: size");
        }
    }

    #[derive(Debug, Default, Clone)]
    struct Kept(Arc<Mutex<Vec<(opentelemetry_sdk::logs::SdkLogRecord, InstrumentationScope)>>>);

    impl LogProcessor for Kept {
        fn emit(
            &self,
            record: &mut opentelemetry_sdk::logs::SdkLogRecord,
            scope: &InstrumentationScope,
        ) {
            self.0.lock().unwrap().push((record.clone(), scope.clone()));
        }
        fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
            Ok(())
        }
    }

    #[test]
    fn logs_decode_to_what_opentelemetry_proto_makes_of_them() {
        let resource = resource();
        let kept = Kept::default();
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource.clone())
            .with_log_processor(kept.clone())
            .build();
        let app = provider.logger_with_scope(scope("app", Some("1.0")));
        let lib = provider.logger_with_scope(scope("lib", None));
        for i in 0..12_u64 {
            let logger = if i.is_multiple_of(3) { &lib } else { &app };
            let mut r = logger.create_log_record();
            match i % 4 {
                0 => r.set_body(LogValue::from(text(i as usize * 20))),
                1 => r.set_body(LogValue::Map(Box::new(HashMap::from([(
                    Key::from("nested"),
                    LogValue::ListAny(Box::new(vec![
                        LogValue::Int(-1),
                        LogValue::Double(2.5),
                        LogValue::Boolean(false),
                        LogValue::Bytes(Box::new(vec![0, 1, 255])),
                        LogValue::String("".into()),
                    ])),
                )])))),
                2 => r.set_body(LogValue::Int(0)),
                _ => {}
            }
            if i.is_multiple_of(2) {
                r.set_severity_number(Severity::Warn);
                r.set_severity_text("WARN");
                r.set_timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i));
            }
            if i % 5 == 1 {
                // A target names the scope it is exported under.
                r.set_target("my_app::handlers");
            }
            if i % 3 == 1 {
                r.set_event_name("user.login");
            }
            if i % 2 == 1 {
                r.set_trace_context(
                    TraceId::from(77 + u128::from(i)),
                    SpanId::from(5 + i),
                    Some(TraceFlags::SAMPLED),
                );
            }
            r.add_attribute("n", i as i64);
            r.add_attribute("long", text(140));
            logger.emit(r);
        }
        let records = kept.0.lock().unwrap().clone();
        let refs: Vec<_> = records.iter().map(|(r, s)| (r, s)).collect();
        let batch = LogBatch::new(&refs);
        let mut ours = Vec::new();
        logs(&mut ours, &batch, &EncodedResource::new(&resource));
        let mut decoded = ExportLogsServiceRequest::decode(&ours[..]).expect("decodes");
        let mut theirs = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(
                &batch,
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        // opentelemetry-proto orders the scopes as a HashMap does; we keep first-seen order.
        for request in [&mut decoded, &mut theirs] {
            request.resource_logs[0].scope_logs.sort_by_key(|s| {
                let scope = s.scope.clone().unwrap_or_default();
                (scope.name, scope.version)
            });
        }
        // app, lib, and the target under each of their versions.
        assert_eq!(decoded.resource_logs[0].scope_logs.len(), 4);
        assert_eq!(decoded, theirs);
    }

    #[test]
    fn a_nested_length_is_moved_to_fit_any_size() {
        for len in (0..300).chain([16_383, 16_384, 2_097_152]) {
            for guess in 1..=3 {
                let mut out = vec![7];
                message(&mut out, 2, guess, |out| out.resize(out.len() + len, 0xab));
                let mut expected = vec![7, 2 << 3 | 2];
                varint(&mut expected, len as u64);
                expected.resize(expected.len() + len, 0xab);
                assert!(out == expected, "length {len}, guess {guess}");
            }
        }
    }

    #[test]
    fn a_partial_success_is_read_from_a_collector_answer() {
        let mut answer = Vec::new();
        message(&mut answer, 1, 1, |out| {
            uint(out, 1, 42);
            bytes(out, 2, b"too old");
        });
        let partial = field(&answer, 1).expect("partial_success");
        assert_eq!(field_varint(partial, 1), Some(42));
        assert_eq!(field(partial, 2), Some(&b"too old"[..]));
        assert_eq!(field(&[], 1), None);
        // Truncated: nothing read, nothing panics.
        assert_eq!(field(&answer[..answer.len() - 2], 1), None);
        assert_eq!(field_varint(&[0x08, 0xff], 1), None);
    }
}
