//! Propagation through the public API: carriers (HTTP headers, string maps, message headers),
//! W3C trace context and baggage in and out of spans, malformed input, `OTEL_PROPAGATORS`,
//! job envelopes, and spans in async code.

#[path = "../support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use unitel::testing::capture;
use unitel::{
    extract_trace_context, get_telemetry, inject_trace_context, DropReason, JobEnvelope, JobTrace,
    Signal, SpanKind, TraceContext,
};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn traceparent(flags: &str) -> String {
    format!("00-{TRACE}-{PARENT}-{flags}")
}

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

// ----- W3C trace context through spans -----

#[test]
fn an_extracted_context_parents_spans_and_is_forwarded_with_its_tracestate_and_flags() {
    let capture = capture();
    let telemetry = get_telemetry("api");
    let incoming = headers(&[
        ("traceparent", &traceparent("03")),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("TraceState", "rojo=00f067aa0ba902b7"),
    ]);
    let cx = extract_trace_context(&incoming);
    assert_eq!(cx.trace_id().as_deref(), Some(TRACE));

    let mut outgoing = http::HeaderMap::new();
    {
        let _server = telemetry
            .span("GET /orders")
            .kind(SpanKind::Server)
            .parent(&cx)
            .start();
        inject_trace_context(&mut outgoing);
    }
    let server = support::span_named(&capture.spans(), "GET /orders");
    assert_eq!(server.trace_id, TRACE);
    assert_eq!(server.parent_span_id.as_deref(), Some(PARENT));
    // Two tracestate fields are one list, in order; the random flag (0x02) is kept.
    assert_eq!(
        server.trace_state,
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    assert_eq!(server.flags, 0x03);

    let sent = outgoing["traceparent"].to_str().unwrap();
    assert_eq!(sent, format!("00-{TRACE}-{}-03", server.span_id));
    assert_eq!(
        outgoing["tracestate"].to_str().unwrap(),
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
}

#[test]
fn malformed_traceparents_start_new_traces_and_are_counted() {
    let capture = capture();
    let telemetry = get_telemetry("api");
    let valid = traceparent("01");
    let cases: Vec<(String, &str)> = vec![
        (valid.to_uppercase(), "uppercase hex"),
        (format!("ff-{TRACE}-{PARENT}-01"), "version ff"),
        (
            format!("00-{}-{PARENT}-01", "0".repeat(32)),
            "zero trace id",
        ),
        (
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            "zero parent id",
        ),
        (format!("{valid}-extra"), "version 00 with an extra field"),
        (format!("+{valid}"), "leading +"),
        (format!("{valid}\u{a0}"), "trailing non-ASCII whitespace"),
        (format!("00-{TRACE}-{PARENT}-1"), "short flags"),
        ("".to_owned(), "empty"),
    ];
    for (value, why) in &cases {
        let before = unitel::dropped(Signal::Spans, DropReason::InvalidInput);
        let mut carrier = HashMap::new();
        carrier.insert("traceparent".to_owned(), value.clone());
        carrier.insert("tracestate".to_owned(), "congo=t61rcWkgMzE".to_owned());
        let cx = extract_trace_context(&carrier);
        assert_eq!(cx.trace_id(), None, "{why}: {value:?} was accepted");
        assert_eq!(
            unitel::dropped(Signal::Spans, DropReason::InvalidInput),
            before + 1,
            "{why}: not counted"
        );
        let _span = telemetry.span("fresh").parent(&cx).start();
    }
    let fresh: Vec<_> = capture
        .spans()
        .into_iter()
        .filter(|s| s.name == "fresh")
        .collect();
    assert_eq!(fresh.len(), cases.len());
    for span in fresh {
        assert_ne!(span.trace_id, TRACE);
        assert_eq!(span.parent_span_id, None);
        // The tracestate of an invalid traceparent is ignored.
        assert_eq!(span.trace_state, "");
    }
}

#[test]
fn two_traceparent_fields_are_invalid() {
    let _capture = capture();
    let incoming = headers(&[
        ("traceparent", &traceparent("01")),
        ("traceparent", &traceparent("01")),
    ]);
    assert_eq!(extract_trace_context(&incoming).trace_id(), None);
}

#[test]
fn a_higher_version_is_read_as_far_as_version_00_defines() {
    let _capture = capture();
    let cx =
        TraceContext::from_traceparent(&format!("cc-{TRACE}-{PARENT}-01-what-the-future-holds"));
    assert_eq!(cx.and_then(|cx| cx.trace_id()).as_deref(), Some(TRACE));
    let cx = TraceContext::from_traceparent(&format!("cc-{TRACE}-{PARENT}-01x"));
    assert!(
        cx.is_none(),
        "a higher version still needs a - after the flags"
    );
}

#[test]
fn an_invalid_tracestate_is_dropped_and_the_trace_continues() {
    let capture = capture();
    let telemetry = get_telemetry("api");
    let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    for tracestate in [
        "UPPER=1".to_owned(),
        "a=1,a=2".to_owned(),
        "a=b=c".to_owned(),
        too_many.join(","),
    ] {
        let incoming = headers(&[
            ("traceparent", &traceparent("01")),
            ("tracestate", &tracestate),
        ]);
        let cx = extract_trace_context(&incoming);
        assert_eq!(cx.trace_id().as_deref(), Some(TRACE), "{tracestate}");
        let _span = telemetry.span("continued").parent(&cx).start();
        drop(_span);
        let span = capture.span("continued").unwrap();
        assert_eq!(span.trace_id, TRACE);
        assert_eq!(span.trace_state, "", "{tracestate} was kept");
    }
    // 32 members are fine.
    let thirty_two = too_many[..32].join(",");
    let incoming = headers(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", &thirty_two),
    ]);
    let _span = telemetry
        .span("thirty-two")
        .parent(&extract_trace_context(&incoming))
        .start();
    drop(_span);
    assert_eq!(capture.span("thirty-two").unwrap().trace_state, thirty_two);
}

#[test]
fn carriers_are_case_insensitive_and_replace_old_values() {
    let _capture = capture();
    let cx = TraceContext::from_traceparent(&traceparent("01")).unwrap();

    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("Traceparent".to_owned(), "stale".to_owned());
    cx.inject(&mut map);
    assert_eq!(map.len(), 1, "{map:?}");
    assert_eq!(map["traceparent"], traceparent("01"));

    let mut upper = HashMap::new();
    upper.insert("TRACEPARENT".to_owned(), traceparent("01"));
    assert_eq!(
        TraceContext::extract(&upper).trace_id().as_deref(),
        Some(TRACE)
    );

    let mut message: Vec<(String, String)> = vec![("x-other".into(), "1".into())];
    cx.inject(&mut message);
    assert_eq!(
        message,
        vec![
            ("x-other".to_owned(), "1".to_owned()),
            ("traceparent".to_owned(), traceparent("01"))
        ]
    );
    assert_eq!(
        TraceContext::extract(&message).span_id().as_deref(),
        Some(PARENT)
    );
}

#[test]
fn header_values_that_are_not_text_are_rejected() {
    let _capture = capture();
    let mut map = http::HeaderMap::new();
    let mut bytes = traceparent("01").into_bytes();
    bytes.push(0xff);
    map.insert(
        "traceparent",
        http::HeaderValue::from_bytes(&bytes).unwrap(),
    );
    assert_eq!(extract_trace_context(&map).trace_id(), None);
}

#[test]
fn trace_context_converts_to_and_from_opentelemetry_context() {
    use opentelemetry::trace::TraceContextExt as _;
    let _capture = capture();
    let cx = TraceContext::from_traceparent(&traceparent("01")).unwrap();
    let otel: opentelemetry::Context = cx.clone().into();
    assert_eq!(otel.span().span_context().trace_id().to_string(), TRACE);
    let back = TraceContext::from(otel);
    assert_eq!(back.trace_id().as_deref(), Some(TRACE));
}

// ----- baggage -----

#[test]
fn baggage_is_read_set_and_forwarded() {
    let _capture = capture();
    let incoming = headers(&[
        ("traceparent", &traceparent("01")),
        ("baggage", "user.id=42, tenant=acme%20corp;prop=1"),
        ("baggage", "bad key=1,region=eu"),
    ]);
    let cx = extract_trace_context(&incoming);
    assert_eq!(cx.baggage("user.id").as_deref(), Some("42"));
    assert_eq!(cx.baggage("tenant").as_deref(), Some("acme corp"));
    assert_eq!(cx.baggage("region").as_deref(), Some("eu"));
    assert_eq!(cx.baggage("bad key"), None);

    let _attached = cx.attach();
    assert_eq!(unitel::baggage("user.id").as_deref(), Some("42"));
    let _more = unitel::set_baggage("request.kind", "a,b;c=d %");
    assert_eq!(
        unitel::baggage("request.kind").as_deref(),
        Some("a,b;c=d %")
    );

    let mut out = HashMap::new();
    inject_trace_context(&mut out);
    let back = extract_trace_context(&out);
    assert_eq!(back.baggage("request.kind").as_deref(), Some("a,b;c=d %"));
    assert_eq!(back.baggage("tenant").as_deref(), Some("acme corp"));
    assert_eq!(back.trace_id().as_deref(), Some(TRACE));
}

#[test]
fn baggage_with_an_invalid_key_is_left_out() {
    let _capture = capture();
    let before = unitel::dropped(Signal::Spans, DropReason::InvalidInput);
    let cx = TraceContext::default().with_baggage("no spaces", "x");
    assert!(cx.baggage_entries().is_empty());
    assert_eq!(
        unitel::dropped(Signal::Spans, DropReason::InvalidInput),
        before + 1
    );
}

// ----- OTEL_PROPAGATORS -----

#[test]
fn otel_propagators_selects_what_is_injected() {
    if support::in_parent(
        "otel_propagators_selects_what_is_injected",
        &[("OTEL_PROPAGATORS", "baggage")],
    ) {
        return;
    }
    let _guard =
        unitel::configure_telemetry(unitel::TelemetryConfig::from_env().with_console(false))
            .unwrap();
    let telemetry = get_telemetry("api");
    let _span = telemetry.trace("work");
    let _b = unitel::set_baggage("k", "v");
    let mut out = BTreeMap::new();
    inject_trace_context(&mut out);
    assert_eq!(out.keys().collect::<Vec<_>>(), ["baggage"], "{out:?}");
    let mut incoming = BTreeMap::new();
    incoming.insert("traceparent".to_owned(), traceparent("01"));
    assert_eq!(extract_trace_context(&incoming).trace_id(), None);
}

#[test]
fn otel_propagators_none_propagates_nothing() {
    if support::in_parent(
        "otel_propagators_none_propagates_nothing",
        &[("OTEL_PROPAGATORS", "none")],
    ) {
        return;
    }
    let _guard =
        unitel::configure_telemetry(unitel::TelemetryConfig::from_env().with_console(false))
            .unwrap();
    let _span = get_telemetry("api").trace("work");
    let mut out = BTreeMap::new();
    inject_trace_context(&mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn an_unknown_propagator_is_a_startup_error() {
    if support::in_parent("an_unknown_propagator_is_a_startup_error", &[]) {
        return;
    }
    for value in ["b3", "tracecontext,xray", "none,baggage"] {
        let err = unitel::configure_telemetry(unitel::TelemetryConfig::from_vars([(
            "OTEL_PROPAGATORS",
            value,
        )]))
        .expect_err(value)
        .to_string();
        assert!(err.contains("OTEL_PROPAGATORS"), "{err}");
        assert!(err.contains("tracecontext, baggage"), "{err}");
    }
}

// ----- job envelopes -----

#[test]
fn a_worker_continues_the_producers_trace() {
    let capture = capture();
    let telemetry = get_telemetry("fastworker");
    let job = {
        let _request = telemetry.trace("POST /jobs");
        let (producer, job) = telemetry
            .span("client.submit_task")
            .attr("task.name", "send_email")
            .produce("payload");
        drop(producer);
        job
    };
    assert!(job.headers().contains_key("traceparent"), "{job:?}");
    // On the worker's side, after a trip through a queue.
    let received = JobEnvelope::from_parts(job.payload, job.headers.clone());
    {
        let _worker = telemetry
            .span("worker.execute_task")
            .consume(&received, JobTrace::Continue)
            .start();
    }
    let spans = capture.spans();
    let request = support::span_named(&spans, "POST /jobs");
    let producer = support::span_named(&spans, "client.submit_task");
    let worker = support::span_named(&spans, "worker.execute_task");
    assert_eq!(producer.kind, SpanKind::Producer);
    assert_eq!(worker.kind, SpanKind::Consumer);
    assert_eq!(
        producer.parent_span_id.as_deref(),
        Some(request.span_id.as_str())
    );
    assert_eq!(worker.trace_id, request.trace_id);
    assert_eq!(
        worker.parent_span_id.as_deref(),
        Some(producer.span_id.as_str())
    );
}

#[test]
fn a_worker_can_start_its_own_trace_linked_to_the_producer() {
    let capture = capture();
    let telemetry = get_telemetry("fastworker");
    let (producer, job) = {
        let _baggage = unitel::set_baggage("tenant", "acme");
        telemetry.span("client.submit_task").produce(7u32)
    };
    drop(producer);
    // The job's baggage reaches the worker whichever way its span relates to the producer's.
    let seen_baggage = {
        let _current = telemetry.trace("unrelated");
        let _worker = telemetry
            .span("worker.execute_task")
            .consume(&job, JobTrace::Link)
            .start();
        unitel::baggage("tenant")
    };
    assert_eq!(seen_baggage.as_deref(), Some("acme"));
    let spans = capture.spans();
    let producer = support::span_named(&spans, "client.submit_task");
    let worker = support::span_named(&spans, "worker.execute_task");
    assert_ne!(worker.trace_id, producer.trace_id);
    assert_eq!(
        worker.parent_span_id, None,
        "a linked worker span is a root"
    );
    assert_eq!(
        worker.links,
        vec![(producer.trace_id.clone(), producer.span_id.clone())]
    );
}

#[test]
fn a_job_without_context_starts_a_trace() {
    let capture = capture();
    let telemetry = get_telemetry("fastworker");
    let job = JobEnvelope::from_parts("x", [("TraceParent".to_owned(), "garbage".to_owned())]);
    assert_eq!(job.context().trace_id(), None);
    drop(
        telemetry
            .span("worker.execute_task")
            .consume(&job, JobTrace::Continue)
            .start(),
    );
    let worker = capture.span("worker.execute_task").unwrap();
    assert_eq!(worker.parent_span_id, None);
    assert_eq!(worker.trace_id.len(), 32);
}

#[cfg(feature = "serde")]
#[test]
fn a_job_envelope_round_trips_through_json() {
    let _capture = capture();
    let _span = get_telemetry("fastworker").trace("submit");
    let job = JobEnvelope::new(vec![1, 2, 3]);
    let json = serde_json::to_string(&job).unwrap();
    let back: JobEnvelope<Vec<i32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, job);
    assert_eq!(back.context().trace_id(), _span.trace_id());
}

// ----- spans in async code -----

fn assert_send<T: Send>(t: T) -> T {
    t
}

/// An axum-style handler: a span kept in a local, used, then moved into `instrument`.
async fn handler() -> Option<String> {
    let telemetry = get_telemetry("api");
    let span = telemetry.trace("handler");
    span.set_attribute("stage", "before");
    span.instrument(async {
        tokio::task::yield_now().await;
        let current = unitel::current_span();
        current.set_attribute("after.await", true);
        let user: String = "user-7".into();
        current.set_attribute("user.id", user.as_str());
        current.add_event("loaded", &[("rows", 3)]);
        current.record_error(&std::io::Error::other("cache miss"));
        current.trace_id()
    })
    .await
}

#[test]
fn span_ref_records_on_the_current_span_after_await_on_any_thread() {
    let capture = capture();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The handler's future is Send: it can be spawned.
    let trace_id = rt
        .block_on(async { tokio::spawn(assert_send(handler())).await })
        .unwrap();
    let span = capture.span("handler").unwrap();
    assert_eq!(trace_id.as_deref(), Some(span.trace_id.as_str()));
    assert_eq!(span.attr("stage"), Some(&"before".into()));
    assert_eq!(span.attr("after.await"), Some(&true.into()));
    assert_eq!(span.attr("user.id"), Some(&"user-7".into()));
    assert!(span.events.iter().any(|(name, _)| name == "loaded"));
    assert!(span.events.iter().any(|(name, _)| name == "exception"));
    assert!(matches!(span.status, unitel::Status::Error { .. }));
}

#[test]
fn span_builder_instrument_never_leaves_the_span_current_outside_the_future() {
    let capture = capture();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let telemetry = get_telemetry("api");
    rt.block_on(async {
        let fut = telemetry
            .span("job")
            .kind(SpanKind::Consumer)
            .parent(None)
            .instrument(async {
                tokio::task::yield_now().await;
                unitel::current_span().set_attribute("inside", 1);
            });
        assert_eq!(unitel::current_trace_id(), None);
        fut.await;
        assert_eq!(unitel::current_trace_id(), None);
    });
    let job = capture.span("job").unwrap();
    assert_eq!(job.kind, SpanKind::Consumer);
    assert_eq!(job.attr("inside"), Some(&1i64.into()));
}

#[test]
fn a_span_ended_on_another_thread_stops_being_current_on_its_first() {
    let capture = capture();
    let telemetry = get_telemetry("api");
    let span = telemetry.trace("moved");
    let moved_id = span.span_id();
    std::thread::spawn(move || drop(span)).join().unwrap();
    // The next span on this thread is not a child of the moved one.
    drop(telemetry.trace("after"));
    let after = capture.span("after").unwrap();
    assert_eq!(after.parent_span_id, None, "still under {moved_id:?}");
    assert!(capture.span("moved").is_some(), "the moved span ended");
    assert_eq!(unitel::current_trace_id(), None);
}

#[test]
fn span_ref_outside_any_span_is_a_no_op() {
    let capture = capture();
    let current = unitel::current_span();
    current.set_attribute("x", 1);
    current.record_error(&std::io::Error::other("nothing"));
    assert!(!current.is_recording());
    assert_eq!(current.trace_id(), None);
    assert!(capture.spans().is_empty());
}

// ----- environment variables as the carrier (a process started by a traced process) -----

/// A process started with `TRACEPARENT`, `TRACESTATE` and `BAGGAGE` in its environment
/// continues that trace with `TraceContext::from_env()`, and hands its own context on to the
/// next process with `to_env()`.
#[test]
fn a_trace_continues_through_environment_variables() {
    const NAME: &str = "a_trace_continues_through_environment_variables";
    let parent = traceparent("01");
    if support::run_child(
        NAME,
        &[
            ("TRACEPARENT", &parent),
            ("TRACESTATE", "congo=t61rcWkgMzE"),
            ("BAGGAGE", "tenant=acme"),
        ],
    )
    .is_some()
    {
        return;
    }
    let capture = capture();
    let cx = TraceContext::from_env();
    assert_eq!(cx.trace_id().as_deref(), Some(TRACE));
    assert_eq!(cx.baggage("tenant").as_deref(), Some("acme"));
    let span = get_telemetry("script").span("step").parent(&cx).start();
    let env = span.context().to_env();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["TRACEPARENT", "TRACESTATE", "BAGGAGE"], "{env:?}");
    let own = format!("00-{TRACE}-{}-01", span.span_id().unwrap());
    assert_eq!(env[0].1, own);
    assert_eq!(env[1].1, "congo=t61rcWkgMzE");
    assert_eq!(env[2].1, "tenant=acme");
    drop(span);
    let step = capture.span("step").expect("step span");
    assert_eq!(step.trace_id, TRACE);
    assert_eq!(step.parent_span_id.as_deref(), Some(PARENT));
}

/// Without the variables the context has no span (a span under it is a new root); a malformed
/// `TRACEPARENT` is the same, counted as invalid input.
#[test]
fn no_or_malformed_traceparent_in_the_environment_starts_a_new_trace() {
    const NAME: &str = "no_or_malformed_traceparent_in_the_environment_starts_a_new_trace";
    // In the parent: the body below runs once without the variable, once with a bad one.
    if std::env::var("UNITEL_CHILD").as_deref() != Ok(NAME) {
        support::run_child(NAME, &[]);
        support::run_child(NAME, &[("TRACEPARENT", "00-not-a-traceparent-01")]);
        return;
    }
    let _capture = capture();
    let malformed = std::env::var_os("TRACEPARENT").is_some();
    let before = unitel::dropped(Signal::Spans, DropReason::InvalidInput);
    let cx = TraceContext::from_env();
    assert_eq!(cx.trace_id(), None);
    assert!(cx.to_env().is_empty());
    let span = get_telemetry("script").span("root").parent(&cx).start();
    assert!(span.trace_id().is_some_and(|id| id != TRACE));
    let counted = unitel::dropped(Signal::Spans, DropReason::InvalidInput) - before;
    assert_eq!(counted, u64::from(malformed));
}
