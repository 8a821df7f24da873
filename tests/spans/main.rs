//! Spans: nesting (facade and `tracing`, both directions), attributes, events, errors, async.

#[path = "../support/mod.rs"]
mod support;

use opentelemetry::Value;
use unitel::testing::{capture, CapturedSpan};
use unitel::{get_telemetry, Status, TraceContext};

fn assert_child(child: &CapturedSpan, parent: &CapturedSpan) {
    assert_eq!(
        child.trace_id, parent.trace_id,
        "{} not in {}'s trace",
        child.name, parent.name
    );
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{}'s parent is not {}",
        child.name,
        parent.name
    );
}

#[test]
fn facade_spans_nest_and_take_dynamic_names() {
    let capture = capture();
    let telemetry = get_telemetry("orders");
    let order = 42;
    {
        let _outer = telemetry.trace("outer");
        let _inner = telemetry.trace(format!("load_order_{order}"));
    }
    let spans = capture.spans();
    let outer = support::span_named(&spans, "outer");
    let inner = support::span_named(&spans, "load_order_42");
    assert_eq!(outer.parent_span_id, None);
    assert_child(&inner, &outer);
    assert_eq!(outer.component, "orders");
    assert_eq!(outer.trace_id.len(), 32);
    assert_eq!(outer.span_id.len(), 16);
}

#[test]
fn attributes_of_every_type_reach_the_span() {
    let capture = capture();
    let telemetry = get_telemetry("attrs");
    {
        let span = telemetry
            .trace_with("typed", &[("from.start", "yes")])
            .attr("s", "text")
            .attr("owned", String::from("owned text"))
            .attr("i", 42)
            .attr("f", 1.5)
            .attr("b", true)
            .attr("strings", vec!["a", "b"])
            .attr("ints", vec![1i64, 2, 3])
            .attr("floats", vec![0.5, 1.5])
            .attr("bools", vec![true, false]);
        span.set_attribute("late", -7i64);
    }
    let span = capture.span("typed").expect("span");
    assert_eq!(span.attr("from.start"), Some(&Value::from("yes")));
    assert_eq!(span.attr("s"), Some(&Value::from("text")));
    assert_eq!(span.attr("owned"), Some(&Value::from("owned text")));
    assert_eq!(span.attr("i"), Some(&Value::I64(42)));
    assert_eq!(span.attr("f"), Some(&Value::F64(1.5)));
    assert_eq!(span.attr("b"), Some(&Value::Bool(true)));
    assert_eq!(span.attr("late"), Some(&Value::I64(-7)));
    assert!(
        matches!(span.attr("strings"), Some(Value::Array(opentelemetry::Array::String(v))) if v.iter().map(|s| s.as_str()).eq(["a", "b"]))
    );
    assert!(
        matches!(span.attr("ints"), Some(Value::Array(opentelemetry::Array::I64(v))) if v == &[1, 2, 3])
    );
    assert!(
        matches!(span.attr("floats"), Some(Value::Array(opentelemetry::Array::F64(v))) if v == &[0.5, 1.5])
    );
    assert!(
        matches!(span.attr("bools"), Some(Value::Array(opentelemetry::Array::Bool(v))) if v == &[true, false])
    );

    // The JSON span record carries the same attributes with their JSON types.
    let record = capture
        .span_records()
        .into_iter()
        .find(|r| r["name"] == "typed")
        .expect("span record");
    assert_eq!(record["attributes"]["i"], 42);
    assert_eq!(record["attributes"]["f"], 1.5);
    assert_eq!(record["attributes"]["b"], true);
    assert_eq!(
        record["attributes"]["strings"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(record["attributes"]["ints"], serde_json::json!([1, 2, 3]));
}

#[derive(Debug)]
struct Outer(std::io::Error);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not charge card")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn events_errors_and_status() {
    let capture = capture();
    let telemetry = get_telemetry("payments");
    {
        let span = telemetry.trace("charge");
        span.add_event("checkpoint", &[("progress_percent", 50)]);
        let err = Outer(std::io::Error::other("connection reset"));
        span.record_error(&err);
    }
    {
        let span = telemetry.trace("fine");
        span.set_status(Status::Ok);
    }
    let charge = capture.span("charge").expect("charge");
    assert_eq!(charge.status, Status::error("could not charge card"));
    let (name, attrs) = &charge.events[0];
    assert_eq!(name, "checkpoint");
    assert_eq!(attrs[0].value, Value::I64(50));
    let (name, attrs) = &charge.events[1];
    assert_eq!(name, "exception");
    let get = |k: &str| {
        attrs
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        get("exception.message").as_deref(),
        Some("could not charge card")
    );
    assert!(get("exception.causes")
        .unwrap_or_default()
        .contains("connection reset"));
    assert_eq!(capture.span("fine").expect("fine").status, Status::Ok);

    let record = capture
        .span_records()
        .into_iter()
        .find(|r| r["name"] == "charge")
        .expect("record");
    assert_eq!(record["status"], "error");
    assert_eq!(record["status_message"], "could not charge card");
    assert_eq!(record["events"][1]["name"], "exception");
    assert_eq!(
        record["events"][1]["attributes"]["exception.causes"][0],
        "connection reset"
    );
}

#[tracing::instrument]
fn tracing_child(n: u32) -> Option<String> {
    tracing::info!(n, "inside tracing child");
    let t = get_telemetry("mixed");
    let _grandchild = t.trace("facade_grandchild");
    unitel::current_span_id()
}

#[test]
fn tracing_spans_nest_inside_facade_spans_and_back() {
    let capture = capture();
    let telemetry = get_telemetry("mixed");
    {
        let _root = telemetry.trace("facade_root");
        tracing_child(1);
        let span = tracing::info_span!("tracing_sibling");
        span.in_scope(|| {
            let _s = telemetry.trace("facade_in_tracing");
        });
    }
    let spans = capture.spans();
    let root = support::span_named(&spans, "facade_root");
    let child = support::span_named(&spans, "tracing_child");
    let grandchild = support::span_named(&spans, "facade_grandchild");
    let sibling = support::span_named(&spans, "tracing_sibling");
    let inner = support::span_named(&spans, "facade_in_tracing");
    assert_child(&child, &root);
    assert_child(&grandchild, &child);
    assert_child(&sibling, &root);
    assert_child(&inner, &sibling);

    // The JSON span records form the same tree, with the tracing span's target as component.
    let records = capture.span_records();
    let rec = |name: &str| {
        records
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .expect(name)
    };
    assert_eq!(
        rec("tracing_child")["parent_span_id"],
        rec("facade_root")["span_id"]
    );
    assert_eq!(
        rec("facade_grandchild")["parent_span_id"],
        rec("tracing_child")["span_id"]
    );
    assert_eq!(rec("tracing_child")["component"], "spans");
    assert_eq!(rec("facade_grandchild")["component"], "mixed");
}

#[test]
fn current_ids_follow_the_active_span() {
    let _capture = capture();
    let telemetry = get_telemetry("ids");
    assert_eq!(unitel::current_trace_id(), None);
    assert_eq!(telemetry.current_span_id(), None);
    let span = telemetry.trace("with_ids");
    let trace_id = telemetry.current_trace_id().expect("trace id inside span");
    let span_id = telemetry.current_span_id().expect("span id inside span");
    assert_eq!(Some(trace_id.clone()), span.trace_id());
    assert_eq!(Some(span_id.clone()), span.span_id());
    assert!(
        trace_id.len() == 32
            && trace_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(
        span_id.len() == 16
            && span_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    {
        let _child = telemetry.trace("child");
        assert_eq!(unitel::current_trace_id(), Some(trace_id.clone()));
        assert_ne!(unitel::current_span_id(), Some(span_id.clone()));
    }
    assert_eq!(unitel::current_span_id(), Some(span_id));
    drop(span);
    assert_eq!(unitel::current_trace_id(), None);
}

#[test]
fn in_scope_runs_the_closure_inside_the_span() {
    let capture = capture();
    let telemetry = get_telemetry("scoped");
    let seen = telemetry.trace("scope").in_scope(|| {
        let _inner = telemetry.trace("inside");
        unitel::current_trace_id()
    });
    assert_eq!(
        unitel::current_trace_id(),
        None,
        "the span ended with the closure"
    );
    let spans = capture.spans();
    let scope = support::span_named(&spans, "scope");
    assert_child(&support::span_named(&spans, "inside"), &scope);
    assert_eq!(seen, Some(scope.trace_id));
}

#[test]
fn instrument_follows_a_future_across_awaits_threads_and_tasks() {
    let capture = capture();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let telemetry = get_telemetry("async");
    let t = telemetry.clone();
    runtime.block_on(async move {
        t.trace("request")
            .instrument(async {
                for i in 0..3 {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    let _step = t.trace(format!("step_{i}"));
                }
                // A spawned task joins the trace when handed the context.
                let cx = TraceContext::current();
                let t2 = t.clone();
                tokio::spawn(cx.instrument(async move {
                    tokio::task::yield_now().await;
                    t2.trace("spawned")
                        .instrument(async {
                            tokio::task::yield_now().await;
                        })
                        .await;
                }))
                .await
                .expect("task");
            })
            .await;
        // After the instrumented future, nothing is current on this task.
        assert_eq!(unitel::current_trace_id(), None);
    });
    let spans = capture.spans();
    let request = support::span_named(&spans, "request");
    for i in 0..3 {
        assert_child(&support::span_named(&spans, &format!("step_{i}")), &request);
    }
    assert_child(&support::span_named(&spans, "spawned"), &request);
}

#[test]
fn trace_context_joins_work_on_another_thread() {
    let capture = capture();
    let telemetry = get_telemetry("handoff");
    let (tx, rx) = std::sync::mpsc::channel::<(TraceContext, String)>();
    let worker = std::thread::spawn(move || {
        let worker = get_telemetry("worker");
        for (cx, traceparent) in rx {
            {
                let _attached = cx.attach();
                let _job = worker.trace("job_from_channel");
            }
            let parsed = TraceContext::from_traceparent(&traceparent).expect("valid traceparent");
            let _job = worker.span("job_from_envelope").parent(&parsed).start();
        }
    });
    {
        let _request = telemetry.trace("request");
        let cx = TraceContext::current();
        let traceparent = cx.to_traceparent().expect("traceparent");
        assert!(
            traceparent.starts_with("00-") && traceparent.ends_with("-01"),
            "{traceparent}"
        );
        tx.send((cx, traceparent)).expect("send");
    }
    drop(tx);
    worker.join().expect("worker");
    let spans = capture.spans();
    let request = support::span_named(&spans, "request");
    assert_child(&support::span_named(&spans, "job_from_channel"), &request);
    assert_child(&support::span_named(&spans, "job_from_envelope"), &request);
}

#[test]
fn malformed_traceparent_is_rejected_and_counted() {
    let _capture = capture();
    let before = unitel::dropped(unitel::Signal::Spans, unitel::DropReason::InvalidInput);
    for bad in [
        "",
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nx: y",
    ] {
        assert!(
            TraceContext::from_traceparent(bad).is_none(),
            "{bad:?} accepted"
        );
    }
    let after = unitel::dropped(unitel::Signal::Spans, unitel::DropReason::InvalidInput);
    assert_eq!(after - before, 7);
    let good =
        TraceContext::from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .expect("valid");
    assert_eq!(
        good.trace_id().as_deref(),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
}

#[test]
fn an_attribute_given_twice_keeps_its_last_value() {
    let capture = capture();
    let telemetry = get_telemetry("twice");
    drop(telemetry.trace_with("at start", &[("a", 1), ("b", 2), ("a", 3)]));
    drop(
        telemetry
            .span("in the builder")
            .attr("a", 1)
            .attrs(&[("b", 2), ("a", 3)])
            .start(),
    );
    support::set_attributes_twice_on_live_spans(&telemetry);

    // The span records in the JSON log file: one `a`, its last value, in its first place.
    for line in capture.raw_lines() {
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        let name = record["name"].as_str().unwrap_or_default();
        if !["at start", "in the builder", "set live", "tracing twice"].contains(&name) {
            continue;
        }
        let attributes = line.split("\"attributes\":{").nth(1).expect("attributes");
        let attributes = attributes.split('}').next().unwrap();
        assert_eq!(attributes.matches("\"a\":").count(), 1, "{line}");
        assert_eq!(record["attributes"]["a"], 3, "{line}");
        assert_eq!(record["attributes"]["b"], 2, "{line}");
        if name == "set live" {
            let event = &record["events"][0];
            assert_eq!(
                event["attributes"],
                serde_json::json!({"a": 3, "b": 2}),
                "{line}"
            );
            let event_attributes = line.rsplit("\"attributes\":{").next().unwrap();
            assert_eq!(event_attributes.matches("\"a\":").count(), 1, "{line}");
        }
    }
    assert_eq!(capture.span_records().len(), 4);

    // What the exporters get, where unitel builds the attributes (the start, the builder, one
    // `set_attributes` or `add_event` call): each key once, with its last value.
    for name in ["at start", "in the builder"] {
        let span = support::span_named(&capture.spans(), name);
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys.iter().filter(|k| **k == "a").count(),
            1,
            "{name}: {keys:?}"
        );
        assert_eq!(span.attr("a"), Some(&Value::I64(3)), "{name}");
    }
    let live = support::span_named(&capture.spans(), "set live");
    let (_, event) = &live.events[0];
    assert_eq!(event.len(), 2, "{event:?}");
    assert_eq!(
        event
            .iter()
            .find(|kv| kv.key.as_str() == "a")
            .map(|kv| &kv.value),
        Some(&Value::I64(3))
    );
}

#[test]
fn span_records_carry_the_kind_and_a_duration_matching_start_and_end() {
    use std::time::{Duration, Instant, SystemTime};
    use unitel::logfile::{parse_line, Record, SpanRecord};
    use unitel::SpanKind;

    let capture = capture();
    let telemetry = get_telemetry("kinds");
    let before = SystemTime::now();
    let started = Instant::now();
    {
        let _server = telemetry
            .span("handle request")
            .kind(SpanKind::Server)
            .start();
        std::thread::sleep(Duration::from_millis(30));
        {
            let _client = telemetry
                .span("call backend")
                .kind(SpanKind::Client)
                .start();
            std::thread::sleep(Duration::from_millis(10));
        }
        let _producer = telemetry.span("publish").kind(SpanKind::Producer).start();
        let _consumer = telemetry.span("consume").kind(SpanKind::Consumer).start();
        let _internal = telemetry.trace("compute");
        let _tracing_client = tracing::info_span!("tracing client", otel.kind = "client").entered();
    }
    let elapsed = started.elapsed();
    let after = SystemTime::now();

    let lines = capture.raw_lines();
    let record = |name: &str| -> (serde_json::Value, SpanRecord) {
        let line = lines
            .iter()
            .find(|l| {
                l.contains("\"type\":\"span\"") && l.contains(&format!("\"name\":\"{name}\""))
            })
            .unwrap_or_else(|| panic!("no span record {name:?} in {lines:#?}"));
        let json: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        match parse_line(line) {
            Ok(Record::Span(span)) => (json, span),
            other => panic!("{name}: {other:?} from {line}"),
        }
    };
    for (name, kind) in [
        ("handle request", "server"),
        ("call backend", "client"),
        ("publish", "producer"),
        ("consume", "consumer"),
        ("compute", "internal"),
        ("tracing client", "client"),
    ] {
        let (json, span) = record(name);
        assert_eq!(json["kind"], kind, "{name}: {json}");
        let expected = match kind {
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => SpanKind::Internal,
        };
        assert_eq!(span.kind, expected, "{name}: read back from {json}");
        // duration_ns is end minus start: the record's timestamps (microseconds) agree with it
        // to within their precision, and the span lies within the time the test measured.
        let duration_ns = json["duration_ns"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: duration_ns not an integer: {json}"));
        assert_eq!(span.duration.as_nanos(), u128::from(duration_ns), "{json}");
        let between = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_else(|_| panic!("{name}: ends before it starts: {json}"));
        let difference = between.abs_diff(span.duration);
        assert!(
            difference <= Duration::from_micros(1),
            "{name}: duration_ns {duration_ns} but end - start = {between:?}: {json}"
        );
        assert!(
            span.start_time + Duration::from_micros(1) >= before
                && span.end_time <= after + Duration::from_micros(1),
            "{name}: outside the test's own time: {json}"
        );
        // Span times are wall-clock, `elapsed` monotonic: allow for a slewing clock.
        assert!(
            span.duration <= elapsed + Duration::from_millis(1),
            "{name}: longer than the test ({elapsed:?}): {json}"
        );
    }
    let server = record("handle request").1.duration;
    let client = record("call backend").1.duration;
    // It slept 40 ms (30 + 10) and 10 ms; a millisecond less for the wall clock's slew.
    assert!(
        server >= Duration::from_millis(39),
        "server span {server:?}"
    );
    assert!(client >= Duration::from_millis(9), "client span {client:?}");
    assert!(server > client, "the server span holds the client span");
}

/// tracing-opentelemetry's per-span extras, off unless `with_tracing_span_extras(true)`.
const TRACING_EXTRAS: &[&str] = &[
    "code.file.path",
    "code.module.name",
    "code.line.number",
    "thread.id",
    "thread.name",
    "busy_ns",
    "idle_ns",
];

#[test]
fn tracing_spans_keep_their_fields_and_errors_but_no_extras_by_default() {
    let capture = capture();
    {
        let span = tracing::info_span!("lean handler", user = 7);
        let _entered = span.enter();
        tracing::info!(rows = 3, "lean rows loaded");
        tracing::error!("lean charge failed");
    }
    let span = capture.span("lean handler").expect("span");
    for key in TRACING_EXTRAS {
        assert!(span.attr(key).is_none(), "{key}: {:?}", span.attributes);
    }
    assert_eq!(span.attr("user"), Some(&Value::I64(7)));
    assert!(span.attr("target").is_some(), "{:?}", span.attributes);
    // The ERROR event still fails the span and is on it; the INFO event is a log line only.
    assert!(
        matches!(span.status, Status::Error { .. }),
        "{:?}",
        span.status
    );
    assert_eq!(span.events.len(), 1, "{:?}", span.events);
    // tracing-opentelemetry names a span event after the event's message.
    assert_eq!(span.events[0].0, "lean charge failed", "{:?}", span.events);
    for message in ["lean rows loaded", "lean charge failed"] {
        let log = capture.log(message).expect(message);
        assert_eq!(log.trace_id.as_deref(), Some(span.trace_id.as_str()));
        assert_eq!(log.span_id.as_deref(), Some(span.span_id.as_str()));
    }
}

#[test]
fn tracing_span_extras_come_back_when_asked_for() {
    if support::in_parent("tracing_span_extras_come_back_when_asked_for", &[]) {
        return;
    }
    let ended = support::EndedSpans::default();
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_tracing_span_extras(true)
            .with_span_processor(ended.clone()),
    )
    .expect("configure");
    {
        let span = tracing::info_span!("full handler", user = 7);
        let _entered = span.enter();
        tracing::info!(rows = 3, "rows loaded");
    }
    let spans = ended.0.lock().unwrap();
    let span = spans
        .iter()
        .find(|s| s.name == "full handler")
        .expect("span");
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    for key in TRACING_EXTRAS {
        // The test thread is named, so `thread.name` is there too.
        assert!(keys.contains(key), "{key}: {keys:?}");
    }
    assert!(keys.contains(&"user"), "{keys:?}");
    let events: Vec<_> = span.events.iter().collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name, "rows loaded", "{events:?}");
}

/// With the default sampler (parent-based, always on), a span started as a new root inside a
/// sampled span — `root()`, or a job consumed with `JobTrace::Link` — is a sampled trace of
/// its own, exported like any other, and keeps the baggage. (It used to inherit an invalid,
/// unsampled parent, which the parent-based sampler dropped without a count.)
#[test]
fn new_roots_are_sampled_by_the_default_sampler_and_keep_the_baggage() {
    if support::in_parent(
        "new_roots_are_sampled_by_the_default_sampler_and_keep_the_baggage",
        &[],
    ) {
        return;
    }
    let ended = support::EndedSpans::default();
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_span_processor(ended.clone()),
    )
    .expect("configure");
    let telemetry = get_telemetry("roots");
    let (producer, job) = telemetry.span("publish").produce(7);
    let baggage = unitel::set_baggage("tenant", "acme");
    {
        let _request = telemetry.trace("request");
        let root = telemetry.span("nightly").root().start();
        assert_eq!(unitel::baggage("tenant").as_deref(), Some("acme"));
        root.in_scope(|| {
            assert_eq!(unitel::baggage("tenant").as_deref(), Some("acme"));
        });
        telemetry
            .span("consume")
            .consume(&job, unitel::JobTrace::Link)
            .start()
            .in_scope(|| {});
    }
    drop(baggage);
    drop(producer);
    let spans = ended.0.lock().unwrap();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"))
    };
    let (request, nightly, consume, publish) = (
        find("request"),
        find("nightly"),
        find("consume"),
        find("publish"),
    );
    for span in [nightly, consume] {
        assert!(span.span_context.is_sampled(), "{span:#?}");
        assert_eq!(
            span.parent_span_id,
            unitel::opentelemetry::trace::SpanId::INVALID,
            "{span:#?}"
        );
        assert_ne!(
            span.span_context.trace_id(),
            request.span_context.trace_id()
        );
    }
    assert_eq!(consume.links.len(), 1, "{consume:#?}");
    assert_eq!(
        consume.links[0].span_context.span_id(),
        publish.span_context.span_id()
    );
}
