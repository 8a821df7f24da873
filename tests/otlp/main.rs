//! OTLP push to a real collector (rotel), over http/protobuf and grpc: spans, metrics and logs
//! arrive exactly as emitted, on any runtime or none, nothing is lost on a graceful shutdown,
//! and failures are counted without blocking the application.

mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Rotel};
use std::sync::Mutex;
use std::time::Duration;
use unitel::{configure_telemetry, get_telemetry, SpanKind, TelemetryConfig};

/// The children share one collector; they run one at a time so their output never mixes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(20);

/// Runs test `name` in a child with the OTLP variables for `protocol` pointing at rotel.
/// Returns the service name the child used, or `None` in the child.
fn run(name: &str, protocol: &str, extra: &[(&str, &str)]) -> Option<(String, String)> {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(name) {
        return None;
    }
    let rotel = Rotel::get();
    let endpoint = match protocol {
        "grpc" => format!("http://{}", rotel.grpc),
        _ => format!("http://{}", rotel.http),
    };
    let service = support::unique(name);
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_SERVICE_NAME", service.as_str()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.version=2.0.1,deployment.environment.name=ci",
        ),
    ];
    env.extend_from_slice(extra);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = support::child(name, &env).expect("parent");
    let stdout = support::assert_ok(&out);
    Some((service, stdout))
}

fn configure() -> unitel::TelemetryGuard {
    configure_telemetry(TelemetryConfig::from_env().with_console(false)).expect("configure")
}

// ----- spans -----

fn emit_spans() {
    let guard = configure();
    let telemetry = get_telemetry("checkout");
    {
        let root = telemetry
            .span("POST /orders")
            .kind(SpanKind::Server)
            .attr("http.request.method", "POST")
            .attr("retries", 3)
            .attr("ratio", 0.25)
            .attr("cached", true)
            .attr("tags", vec!["a", "b"])
            .start();
        root.add_event("validated", &[("items", 2)]);
        {
            let child = telemetry.trace("charge_card");
            child.record_error(&std::io::Error::other("card declined"));
        }
        tracing::info_span!("tracing_child").in_scope(|| {});
        println!(
            "\nROOT {} {}",
            root.trace_id().unwrap(),
            root.span_id().unwrap()
        );
    }
    guard.shutdown().expect("shutdown");
}

fn check_spans(service: &str, stdout: &str) {
    let ids = support::marked(stdout, "ROOT").expect("root ids");
    let (trace_id, root_id) = ids.split_once(' ').expect("two ids");
    let spans = Rotel::get().wait_for(WAIT, |r| {
        let spans: Vec<_> = r.spans_of(service).into_iter().cloned().collect();
        (spans.len() >= 3).then_some(spans)
    });
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let by = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}"))
    };
    let root = by("POST /orders");
    assert_eq!(root.trace_id, trace_id);
    assert_eq!(root.span_id, root_id);
    assert_eq!(root.parent_id, "");
    assert_eq!(root.kind, "SPAN_KIND_SERVER");
    assert_eq!(root.scope, "checkout");
    assert_eq!(attr(&root.attrs, "http.request.method"), Some("Str(POST)"));
    assert_eq!(attr(&root.attrs, "retries"), Some("Int(3)"));
    assert_eq!(attr(&root.attrs, "ratio"), Some("Double(0.25)"));
    assert_eq!(attr(&root.attrs, "cached"), Some("Bool(true)"));
    assert!(
        attr(&root.attrs, "tags").is_some_and(|v| v.contains('a') && v.contains('b')),
        "{:?}",
        root.attrs
    );
    assert_eq!(root.events.len(), 1);
    assert_eq!(root.events[0].0, "validated");
    assert_eq!(attr(&root.events[0].1, "items"), Some("Int(2)"));

    let charge = by("charge_card");
    assert_eq!(charge.trace_id, trace_id);
    assert_eq!(charge.parent_id, root_id);
    assert_eq!(charge.kind, "SPAN_KIND_INTERNAL");
    assert_eq!(charge.status_code, "STATUS_CODE_ERROR");
    assert_eq!(charge.status_message, "card declined");
    assert_eq!(charge.events[0].0, "exception");
    assert_eq!(
        attr(&charge.events[0].1, "exception.message"),
        Some("Str(card declined)")
    );

    let tracing_child = by("tracing_child");
    assert_eq!(tracing_child.parent_id, root_id);

    for (key, value) in [
        ("service.version", "Str(2.0.1)"),
        ("deployment.environment.name", "Str(ci)"),
    ] {
        assert_eq!(attr(&root.resource, key), Some(value), "resource {key}");
    }
}

#[test]
fn spans_arrive_exactly_as_emitted_over_http() {
    match run(
        "spans_arrive_exactly_as_emitted_over_http",
        "http/protobuf",
        &[],
    ) {
        Some((service, stdout)) => check_spans(&service, &stdout),
        None => emit_spans(),
    }
}

#[test]
fn spans_arrive_exactly_as_emitted_over_grpc() {
    match run("spans_arrive_exactly_as_emitted_over_grpc", "grpc", &[]) {
        Some((service, stdout)) => check_spans(&service, &stdout),
        None => emit_spans(),
    }
}

#[test]
fn spans_arrive_gzip_compressed_over_grpc() {
    let gzip = [("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")];
    match run("spans_arrive_gzip_compressed_over_grpc", "grpc", &gzip) {
        Some((service, stdout)) => check_spans(&service, &stdout),
        None => emit_spans(),
    }
}

#[test]
fn spans_arrive_gzip_compressed_over_http() {
    let gzip = [("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")];
    match run(
        "spans_arrive_gzip_compressed_over_http",
        "http/protobuf",
        &gzip,
    ) {
        Some((service, stdout)) => check_spans(&service, &stdout),
        None => emit_spans(),
    }
}

// ----- a key set twice -----

/// Attributes set twice on a live span (`set_attribute`, a `tracing` span's `record`) and in
/// an event: the SDK appends each; the collector and the application's own processors must see
/// each key once, with its last value.
fn emit_twice() {
    let ended = support::EndedSpans::default();
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_console(false)
            .with_span_processor(ended.clone()),
    )
    .expect("configure");
    let telemetry = get_telemetry("twice");
    support::set_attributes_twice_on_live_spans(&telemetry);
    guard.shutdown().expect("shutdown");
    for span in ended.0.lock().unwrap().iter() {
        let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
        println!("\nPROCESSOR {} {}", span.name, keys.join(","));
    }
}

fn check_twice(service: &str, stdout: &str) {
    let spans = Rotel::get().wait_for(WAIT, |r| {
        let spans: Vec<_> = r.spans_of(service).into_iter().cloned().collect();
        (spans.len() >= 2).then_some(spans)
    });
    for span in &spans {
        let a: Vec<_> = span.attrs.iter().filter(|(k, _)| k == "a").collect();
        assert_eq!(a.len(), 1, "{}: {:?}", span.name, span.attrs);
        assert_eq!(a[0].1, "Int(3)", "{}", span.name);
        for (event, attrs) in &span.events {
            let a: Vec<_> = attrs.iter().filter(|(k, _)| k == "a").collect();
            assert_eq!(a.len(), 1, "{event}: {attrs:?}");
            assert_eq!(a[0].1, "Int(3)");
        }
    }
    for name in ["set live", "tracing twice"] {
        let keys = support::marked(stdout, &format!("PROCESSOR {name}")).expect(name);
        assert_eq!(
            keys.split(',').filter(|k| *k == "a").count(),
            1,
            "{name}: {keys}"
        );
    }
}

#[test]
fn an_attribute_set_twice_reaches_the_collector_once() {
    match run(
        "an_attribute_set_twice_reaches_the_collector_once",
        "http/protobuf",
        &[],
    ) {
        Some((service, stdout)) => check_twice(&service, &stdout),
        None => emit_twice(),
    }
}

// ----- metrics -----

fn emit_metrics() {
    let guard = configure();
    let telemetry = get_telemetry("fastworker");
    let submitted = telemetry.counter("fastworker.tasks.submitted");
    submitted.add(3, &[("priority", "high")]);
    submitted.add(4, &[("priority", "high")]);
    let duration = telemetry.histogram_with_options(
        "fastworker.tasks.duration",
        unitel::InstrumentOptions::new().with_boundaries(vec![10.0, 100.0]),
    );
    for v in [5.0, 50.0, 500.0, 60.0] {
        duration.record(v, ());
    }
    telemetry.gauge("fastworker.cpu").set(0.75, ());
    telemetry.up_down_counter("fastworker.inflight").add(-2, ());
    telemetry.observable_gauge("fastworker.queue.size", |g| {
        g.observe(12.0, &[("priority", "low")])
    });
    guard.shutdown().expect("shutdown");
}

fn check_metrics(service: &str) {
    let rotel = Rotel::get();
    let (sum, hist) = rotel.wait_for(WAIT, |r| {
        let sum = r
            .points_of(service, "fastworker.tasks.submitted")
            .first()
            .map(|p| (*p).clone())?;
        let hist = r
            .points_of(service, "fastworker.tasks.duration")
            .first()
            .map(|p| (*p).clone())?;
        Some((sum, hist))
    });
    assert_eq!(sum.data_type, "Sum");
    assert_eq!(sum.value, Some(7.0));
    assert_eq!(attr(&sum.attrs, "priority"), Some("Str(high)"));
    assert_eq!(sum.scope, "fastworker");
    assert_eq!(hist.data_type, "Histogram");
    assert_eq!(hist.count, Some(4));
    assert_eq!(hist.sum, Some(615.0));
    assert_eq!(hist.bounds, vec![10.0, 100.0]);
    assert_eq!(hist.buckets, vec![1, 2, 1]);
    let r = rotel::parse(&rotel.output());
    let value = |name: &str| r.points_of(service, name).first().and_then(|p| p.value);
    assert_eq!(value("fastworker.cpu"), Some(0.75));
    assert_eq!(value("fastworker.inflight"), Some(-2.0));
    assert_eq!(value("fastworker.queue.size"), Some(12.0));
    // The crate's own counter travels too.
    assert!(!r.points_of(service, "unitel.dropped").is_empty());
}

#[test]
fn metrics_arrive_exactly_as_emitted_over_http() {
    match run(
        "metrics_arrive_exactly_as_emitted_over_http",
        "http/protobuf",
        &[],
    ) {
        Some((service, _)) => check_metrics(&service),
        None => emit_metrics(),
    }
}

#[test]
fn metrics_arrive_exactly_as_emitted_over_grpc() {
    match run("metrics_arrive_exactly_as_emitted_over_grpc", "grpc", &[]) {
        Some((service, _)) => check_metrics(&service),
        None => emit_metrics(),
    }
}

// ----- logs -----

fn emit_logs() {
    let guard = configure();
    let telemetry = get_telemetry("billing");
    {
        let span = telemetry.trace("invoice");
        telemetry.log_warning_with("payment slow", &[("duration_ms", 5000), ("user_id", 7)]);
        tracing::error!(code = "E42", "from tracing");
        let err = std::io::Error::other("disk full");
        telemetry.log_error_with_cause("cannot save invoice", &err, ());
        println!(
            "\nSPAN {} {}",
            span.trace_id().unwrap(),
            span.span_id().unwrap()
        );
    }
    telemetry.log_info("outside");
    guard.shutdown().expect("shutdown");
}

fn check_logs(service: &str, stdout: &str) {
    let ids = support::marked(stdout, "SPAN").expect("ids");
    let (trace_id, span_id) = ids.split_once(' ').expect("two ids");
    let logs = Rotel::get().wait_for(WAIT, |r| {
        let logs: Vec<_> = r.logs_of(service).into_iter().cloned().collect();
        (logs.len() >= 4).then_some(logs)
    });
    assert_eq!(logs.len(), 4, "{logs:#?}");
    let by = |body: &str| {
        logs.iter()
            .find(|l| l.body == format!("Str({body})"))
            .unwrap_or_else(|| panic!("no log {body}: {logs:#?}"))
    };
    let slow = by("payment slow");
    assert_eq!(slow.severity_text, "WARN");
    assert!(slow.severity_number.contains("WARN"));
    assert_eq!(slow.scope, "billing");
    assert_eq!(attr(&slow.attrs, "duration_ms"), Some("Int(5000)"));
    assert_eq!(slow.trace_id, trace_id);
    assert_eq!(slow.span_id, span_id);
    let traced = by("from tracing");
    assert_eq!(traced.severity_text, "ERROR");
    assert_eq!(attr(&traced.attrs, "code"), Some("Str(E42)"));
    assert_eq!(traced.trace_id, trace_id);
    assert_eq!(traced.span_id, span_id);
    let failed = by("cannot save invoice");
    assert_eq!(
        attr(&failed.attrs, "exception.message"),
        Some("Str(disk full)")
    );
    let outside = by("outside");
    assert_eq!(outside.trace_id, "");
}

#[test]
fn logs_arrive_with_trace_ids_over_http() {
    match run("logs_arrive_with_trace_ids_over_http", "http/protobuf", &[]) {
        Some((service, stdout)) => check_logs(&service, &stdout),
        None => emit_logs(),
    }
}

#[test]
fn logs_arrive_with_trace_ids_over_grpc() {
    match run("logs_arrive_with_trace_ids_over_grpc", "grpc", &[]) {
        Some((service, stdout)) => check_logs(&service, &stdout),
        None => emit_logs(),
    }
}

// ----- nothing lost -----

const N: usize = 1000;

/// N spans with a log line each and counter increments summing to N, from 4 threads, then an
/// immediate shutdown.
fn emit_n() {
    let guard = configure();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let telemetry = get_telemetry("bulk");
                for i in (t..N).step_by(4) {
                    let _span = telemetry.trace(format!("bulk-{i}"));
                    telemetry.log_info(&format!("line-{i}"));
                    telemetry.counter("bulk_total").add(1, ());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    guard.shutdown().expect("shutdown");
}

fn check_n(service: &str) {
    let rotel = Rotel::get();
    let (spans, logs, total) = rotel.wait_for(WAIT, |r| {
        let spans = r.spans_of(service).len();
        let logs = r.logs_of(service).len();
        let total = r
            .points_of(service, "bulk_total")
            .iter()
            .filter_map(|p| p.value)
            .fold(0.0, f64::max);
        (spans >= N && logs >= N && total >= N as f64).then_some((spans, logs, total))
    });
    assert_eq!(spans, N, "spans received");
    assert_eq!(logs, N, "logs received");
    assert_eq!(total, N as f64, "counter total");
    let r = rotel::parse(&rotel.output());
    let mut names: Vec<_> = r.spans_of(service).iter().map(|s| s.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N, "every span exactly once");
}

#[test]
fn nothing_is_lost_on_graceful_shutdown_over_http() {
    match run(
        "nothing_is_lost_on_graceful_shutdown_over_http",
        "http/protobuf",
        &[],
    ) {
        Some((service, _)) => check_n(&service),
        None => emit_n(),
    }
}

#[test]
fn nothing_is_lost_on_graceful_shutdown_over_grpc() {
    match run(
        "nothing_is_lost_on_graceful_shutdown_over_grpc",
        "grpc",
        &[],
    ) {
        Some((service, _)) => check_n(&service),
        None => emit_n(),
    }
}

// ----- runtimes -----

/// Configures, records and shuts down inside `flavor`'s runtime.
fn on_runtime(flavor: &str) {
    let body = || async {
        let guard = configure();
        let telemetry = get_telemetry("rt");
        let t = telemetry.clone();
        tokio::spawn(async move {
            t.trace("in_task")
                .instrument(async {
                    tokio::task::yield_now().await;
                    get_telemetry("rt").log_info("in task");
                })
                .await
        })
        .await
        .expect("task");
        telemetry.counter("rt_total").add(1, ());
        guard.shutdown().expect("shutdown");
    };
    match flavor {
        "none" => {
            let guard = configure();
            let telemetry = get_telemetry("rt");
            {
                let _s = telemetry.trace("in_task");
                telemetry.log_info("in task");
            }
            telemetry.counter("rt_total").add(1, ());
            guard.shutdown().expect("shutdown");
        }
        "current_thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt")
            .block_on(body()),
        "multi_thread" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("rt")
            .block_on(body()),
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt")
            .block_on(body()),
    }
}

fn check_runtime(service: &str) {
    Rotel::get().wait_for(WAIT, |r| {
        let span = r.spans_of(service).iter().any(|s| s.name == "in_task");
        let log = r.logs_of(service).iter().any(|l| l.body == "Str(in task)");
        let metric = r
            .points_of(service, "rt_total")
            .iter()
            .any(|p| p.value == Some(1.0));
        (span && log && metric).then_some(())
    });
}

macro_rules! runtime_tests {
    ($($name:ident: $flavor:literal, $protocol:literal;)*) => {$(
        #[test]
        fn $name() {
            match run(stringify!($name), $protocol, &[]) {
                Some((service, _)) => check_runtime(&service),
                None => on_runtime($flavor),
            }
        }
    )*};
}

runtime_tests! {
    exports_without_a_runtime_over_grpc: "none", "grpc";
    exports_from_current_thread_runtime_over_grpc: "current_thread", "grpc";
    exports_from_current_thread_runtime_over_http: "current_thread", "http/protobuf";
    exports_from_multi_thread_runtime_over_grpc: "multi_thread", "grpc";
    exports_from_one_worker_runtime_over_http: "one_worker", "http/protobuf";
}

// ----- selection and overrides -----

#[test]
fn per_signal_endpoint_and_exporter_selection_are_honoured() {
    let name = "per_signal_endpoint_and_exporter_selection_are_honoured";
    // Only the parent asks for rotel: a child that did would start one of its own.
    if std::env::var("UNITEL_CHILD").as_deref() != Ok(name) {
        let rotel = Rotel::get();
        let traces = format!("http://{}/v1/traces", rotel.http);
        let extra = [
            // The generic endpoint is dead; traces have their own; logs and metrics are off.
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
            ("OTEL_LOGS_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ];
        let service = support::unique(name);
        let env: Vec<(&str, &str)> = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_SERVICE_NAME", service.as_str()),
        ]
        .into_iter()
        .chain(extra)
        .collect();
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        support::assert_ok(&support::child(name, &env).expect("parent"));
        let span = rotel.wait_for(WAIT, |r| r.spans_of(&service).first().map(|s| (*s).clone()));
        assert_eq!(span.name, "routed");
        std::thread::sleep(Duration::from_millis(500));
        let r = rotel::parse(&rotel.output());
        assert!(r.logs_of(&service).is_empty(), "logs were switched off");
        assert!(
            r.metrics.iter().all(|p| p.service != service),
            "metrics were switched off"
        );
        return;
    }
    let guard = configure();
    let t = get_telemetry("routing");
    {
        let _s = t.trace("routed");
        t.log_info("not exported");
        t.counter("not_exported").add(1, ());
    }
    guard.shutdown().expect("shutdown");
}

#[test]
fn no_endpoint_starts_no_exporter() {
    if let Some(out) = support::child("no_endpoint_starts_no_exporter", &[]) {
        let stdout = support::assert_ok(&out);
        let threads = support::marked(&stdout, "THREADS").unwrap_or_default();
        assert!(!threads.contains("unitel-export"), "{threads}");
        assert!(!threads.contains("OpenTelemetry"), "{threads}");
        return;
    }
    let guard = configure();
    let t = get_telemetry("quiet");
    {
        let _s = t.trace("span");
        t.log_info("line");
        t.counter("c").add(1, ());
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("proc") {
        let comm = task.expect("task").path().join("comm");
        names.push(
            std::fs::read_to_string(comm)
                .unwrap_or_default()
                .trim()
                .to_owned(),
        );
    }
    println!("\nTHREADS {}", names.join(","));
    guard.shutdown().expect("shutdown");
}

// ----- faults: a collector that answers 503, or never answers -----

#[test]
fn a_failing_collector_costs_nothing_but_counted_drops() {
    if let Some(out) = support::child("a_failing_collector_costs_nothing_but_counted_drops", &[]) {
        let stdout = support::assert_ok(&out);
        let failed: u64 = support::marked(&stdout, "FAILED")
            .expect("count")
            .parse()
            .expect("number");
        assert!(failed >= 10, "failed exports counted: {failed}");
        return;
    }
    let addr = support::fault_collector(503);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_batch_span_processor(
                unitel::BatchSettings::new().with_schedule_delay(Duration::from_millis(50)),
            ),
    )
    .expect("configure");
    let t = get_telemetry("faulty");
    let started = std::time::Instant::now();
    for i in 0..10 {
        let _s = t.trace(format!("s{i}"));
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "recording never waits for the collector"
    );
    let _ = guard.shutdown();
    println!(
        "\nFAILED {}",
        unitel::dropped(unitel::Signal::Spans, unitel::DropReason::ExportFailed)
    );
}

/// A collector that takes a request but rejects part of it (OTLP's partial success): what it
/// rejected is counted as failed, and its reason said once per signal.
#[test]
fn what_a_collector_rejects_in_a_partial_success_is_counted() {
    let name = "what_a_collector_rejects_in_a_partial_success_is_counted";
    if let Some((stdout, stderr)) = support::run_child_saying(name, &[]) {
        let [spans, logs] = support::marked_counts::<2>(&stdout, "REJECTED");
        // One batch each (everything is sent at shutdown), 3 rejected of each.
        assert_eq!((spans, logs), (3, 3), "{stderr}");
        support::assert_said_once(
            &stderr,
            "the collector rejected 3 spans of a batch: \"too old\"",
        );
        support::assert_said_once(
            &stderr,
            "the collector rejected 3 logs of a batch: \"too old\"",
        );
        // The shutdown error names what was lost, with the collector's reason as its cause.
        let shutdown = support::marked(&stdout, "SHUTDOWN").expect("shutdown line");
        assert!(
            shutdown.contains("spans") && shutdown.contains("too old"),
            "{shutdown}"
        );
        return;
    }
    // ExportTraceServiceResponse / ExportLogsServiceResponse { partial_success: { rejected: 3,
    // error_message: "too old" } }
    const ANSWER: &[u8] = &[
        0x0a, 0x0b, 0x08, 0x03, 0x12, 0x07, b't', b'o', b'o', b' ', b'o', b'l', b'd',
    ];
    let addr = support::collector_answering(200, ANSWER);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}")),
    )
    .expect("configure");
    let t = get_telemetry("partial");
    for i in 0..10 {
        let _s = t.trace(format!("s{i}"));
        t.log_info("line");
    }
    let shutdown = guard.shutdown().expect_err("items were lost");
    println!("\nSHUTDOWN {}", shutdown.to_string().replace('\n', " "));
    use unitel::{dropped_at, DropReason, Output, Signal};
    println!(
        "\nREJECTED {} {}",
        dropped_at(Output::Otlp, Signal::Spans, DropReason::ExportFailed),
        dropped_at(Output::Otlp, Signal::Logs, DropReason::ExportFailed)
    );
}

#[test]
fn a_silent_collector_cannot_hold_shutdown_past_its_timeout() {
    if let Some(out) = support::child(
        "a_silent_collector_cannot_hold_shutdown_past_its_timeout",
        &[],
    ) {
        support::assert_ok(&out);
        return;
    }
    let addr = support::fault_collector(0);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp(
                unitel::OtlpSettings::new()
                    .with_endpoint(format!("http://{addr}"))
                    .with_protocol(unitel::OtlpProtocol::Grpc),
            )
            .with_shutdown_timeout(Duration::from_millis(500)),
    )
    .expect("configure");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let t = get_telemetry("silent");
        for i in 0..10 {
            let _s = t.trace(format!("s{i}"));
            t.log_info("line");
        }
        let started = std::time::Instant::now();
        let result = guard.shutdown();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
        assert!(
            result.is_err(),
            "a collector that never answers makes shutdown report a timeout or failure"
        );
    });
}

#[test]
fn the_exporters_own_diagnostics_are_not_exported() {
    // With every target at TRACE, hyper, h2, tonic and the SDK talk a lot while exporting;
    // none of it may come back to the collector as logs or spans.
    let extra = [("RUST_LOG", "trace")];
    match run(
        "the_exporters_own_diagnostics_are_not_exported",
        "grpc",
        &extra,
    ) {
        Some((service, _)) => {
            let rotel = Rotel::get();
            rotel.wait_for(WAIT, |r| {
                r.logs_of(&service)
                    .iter()
                    .any(|l| l.body == "Str(mine)")
                    .then_some(())
            });
            std::thread::sleep(Duration::from_millis(500));
            let r = rotel::parse(&rotel.output());
            let foreign: Vec<_> = r
                .logs_of(&service)
                .into_iter()
                .filter(|l| l.body != "Str(mine)")
                .collect();
            assert!(
                foreign.is_empty(),
                "exporter diagnostics were exported: {:#?}",
                &foreign[..foreign.len().min(5)]
            );
            let spans: Vec<_> = r
                .spans_of(&service)
                .into_iter()
                .filter(|s| s.name != "work")
                .collect();
            assert!(
                spans.is_empty(),
                "exporter spans were exported: {:#?}",
                &spans[..spans.len().min(5)]
            );
        }
        None => {
            let guard = configure();
            let t = get_telemetry("app");
            for _ in 0..3 {
                let _s = t.trace("work");
                t.log_info("mine");
            }
            // What an exporter thread does: telemetry is suppressed there (the SDK's batch
            // threads and unitel's export runtime enter this scope), so its diagnostics,
            // logged or traced, stay out of the exported data.
            std::thread::spawn(|| {
                let _suppressed =
                    unitel::opentelemetry::Context::enter_telemetry_suppressed_scope();
                let exporter = get_telemetry("exporter");
                let _s = exporter.trace("export_batch");
                exporter.log_warning("export slow");
                tracing::warn!(target: "h2", "connection reset");
                tracing::info_span!("hyper_request").in_scope(|| tracing::debug!("sent"));
            })
            .join()
            .expect("thread");
            std::thread::sleep(Duration::from_millis(300));
            guard.shutdown().expect("shutdown");
        }
    }
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let name = "a_full_queue_drops_and_counts_instead_of_blocking";
    if let Some(out) = support::child(
        name,
        &[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "10"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "10"),
        ],
    ) {
        let stdout = support::assert_ok(&out);
        let counts = support::marked(&stdout, "DROPPED").expect("counts");
        let (spans, logs) = counts.split_once(' ').expect("two counts");
        let (spans, logs): (u64, u64) = (spans.parse().expect("n"), logs.parse().expect("n"));
        // 200 items into queues of 10 that a silent collector never drains.
        assert!(spans >= 150, "spans dropped for a full queue: {spans}");
        assert!(logs >= 150, "logs dropped for a full queue: {logs}");
        return;
    }
    let addr = support::fault_collector(0);
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_shutdown_timeout(Duration::from_millis(300)),
    )
    .expect("configure");
    let t = get_telemetry("flood");
    let started = std::time::Instant::now();
    for i in 0..200 {
        let _s = t.trace(format!("s{i}"));
        t.log_info("line");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a full queue never blocks recording"
    );
    use unitel::{dropped, DropReason, Signal};
    println!(
        "\nDROPPED {} {}",
        dropped(Signal::Spans, DropReason::QueueFull),
        dropped(Signal::Logs, DropReason::QueueFull)
    );
    let _ = guard.shutdown();
}

#[test]
fn the_quickstart_exports_to_the_collector_named_by_the_environment() {
    let bin = support::example_binary();
    let rotel = Rotel::get();
    let run_id = support::unique("quickstart");
    let dir = tempfile::tempdir().expect("tempdir");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = std::process::Command::new(bin)
        .current_dir(dir.path())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", rotel.http),
        )
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("test.run={run_id}"))
        .output()
        .expect("run quickstart");
    let stdout = support::assert_ok(&out);
    let trace_id = support::quickstart_trace_id(&stdout).expect("trace id");
    let tag = format!("Str({run_id})");
    let (spans, logs) = rotel.wait_for(WAIT, |r| {
        let spans: Vec<_> = r
            .spans
            .iter()
            .filter(|s| {
                attr(&s.resource, "test.run") == Some(tag.as_str()) && s.trace_id == trace_id
            })
            .cloned()
            .collect();
        let logs: Vec<_> = r
            .logs
            .iter()
            .filter(|l| l.trace_id == trace_id)
            .cloned()
            .collect();
        (spans.iter().any(|s| s.name == "process_job") && !logs.is_empty()).then_some((spans, logs))
    });
    assert!(spans
        .iter()
        .any(|s| s.name == "handle_request" && s.scope == "api_gateway"));
    assert!(spans
        .iter()
        .any(|s| s.name == "charge_payment" && s.status_code == "STATUS_CODE_ERROR"));
    assert!(
        logs.iter().any(|l| l.scope == "background_worker"),
        "{logs:#?}"
    );
    let r = rotel::parse(&rotel.output());
    assert!(
        r.metrics
            .iter()
            .any(|p| p.metric == "requests_total" && p.scope == "api_gateway"),
        "the quickstart's metrics arrive too"
    );
}

// ----- shutdown against a collector that refuses or fails: every signal's loss is named -----

/// Records spans, log records and a counter for a collector at `addr` that fails every export,
/// shuts down, and checks that the error names spans, metrics and logs, each with the count
/// `dropped_at` holds.
fn shutdown_names_every_signal_that_lost_data(addr: &str) {
    use unitel::{dropped_at, BatchSettings, DropReason, Output, Signal};
    let later = Duration::from_secs(60);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            // Nothing is exported before shutdown: its final exports are the ones that fail.
            .with_batch_span_processor(BatchSettings::new().with_schedule_delay(later))
            .with_batch_log_processor(BatchSettings::new().with_schedule_delay(later))
            .with_metric_export_interval(later),
    )
    .expect("configure");
    let t = get_telemetry("refused");
    let counter = t.counter("refused_total");
    for i in 0..20 {
        let _s = t.trace(format!("s{i}"));
        t.log_info("line");
        counter.add(1, ());
    }
    let err = guard.shutdown().expect_err("every export failed");
    let message = err.to_string();
    println!("\nMESSAGE {message}");
    let unitel::Error::Shutdown { lost, .. } = &err else {
        panic!("{err:?}")
    };
    for signal in [Signal::Spans, Signal::Metrics, Signal::Logs] {
        let name = signal.as_str();
        let n = dropped_at(Output::Otlp, signal, DropReason::ExportFailed);
        assert!(n > 0, "no {name} counted as failed: {message}");
        assert!(
            message.contains(&format!("{name}: {n} failed to export (")),
            "{name} and its {n} failed items not named: {message}"
        );
        assert!(
            lost.iter().any(|l| (l.signal, l.output, l.reason, l.count)
                == (signal, Output::Otlp, DropReason::ExportFailed, n)),
            "{name}: no entry of {n} failed to export in {lost:#?}"
        );
    }
    assert_eq!(
        dropped_at(Output::Otlp, Signal::Spans, DropReason::ExportFailed),
        20
    );
    assert_eq!(
        dropped_at(Output::Otlp, Signal::Logs, DropReason::ExportFailed),
        20
    );
    match err {
        unitel::Error::Shutdown {
            timed_out, lost, ..
        } => {
            assert!(!timed_out, "retries end within the 5 s timeout: {message}");
            assert!(lost.iter().all(|l| l.cause.is_some()), "{lost:#?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shutdown_against_a_refusing_collector_names_every_signal_with_counts() {
    let name = "shutdown_against_a_refusing_collector_names_every_signal_with_counts";
    if let Some(out) = support::child(name, &[]) {
        let stdout = support::assert_ok(&out);
        let message = support::marked(&stdout, "MESSAGE").expect("message");
        assert!(message.contains("refused"), "{message}");
        return;
    }
    // A port that was just free: nothing listens there, every connection is refused.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    shutdown_names_every_signal_that_lost_data(&addr);
}

#[test]
fn shutdown_against_a_collector_answering_503_names_every_signal_with_counts() {
    let name = "shutdown_against_a_collector_answering_503_names_every_signal_with_counts";
    if let Some(out) = support::child(name, &[]) {
        let stdout = support::assert_ok(&out);
        let message = support::marked(&stdout, "MESSAGE").expect("message");
        assert!(message.contains("503"), "{message}");
        return;
    }
    shutdown_names_every_signal_that_lost_data(&support::fault_collector(503));
}

#[test]
fn what_a_throttling_collector_leaves_at_the_timeout_is_counted_once() {
    let name = "what_a_throttling_collector_leaves_at_the_timeout_is_counted_once";
    if let Some(out) = support::child(name, &[]) {
        support::assert_ok(&out);
        return;
    }
    use unitel::{dropped_at, BatchSettings, DropReason, Output, Signal};
    const N: u64 = 300;
    // 429 without Retry-After: each batch is retried with backoff (about 1 s in all), longer
    // than the shutdown timeout.
    let addr = support::fault_collector(429);
    let later = Duration::from_secs(60);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_batch_span_processor(BatchSettings::new().with_schedule_delay(later))
            .with_batch_log_processor(BatchSettings::new().with_schedule_delay(later))
            .with_shutdown_timeout(Duration::from_millis(300)),
    )
    .expect("configure");
    let t = get_telemetry("throttled");
    for i in 0..N {
        let _s = t.trace(format!("s{i}"));
        t.log_info("line");
    }
    let result = guard.shutdown();
    let accounted = |signal| {
        let queued = dropped_at(Output::Otlp, signal, DropReason::ShutdownTimeout);
        let failed = dropped_at(Output::Otlp, signal, DropReason::ExportFailed);
        let full = dropped_at(Output::Otlp, signal, DropReason::QueueFull);
        (queued, failed + full)
    };
    for signal in [Signal::Spans, Signal::Logs] {
        let (queued, other) = accounted(signal);
        assert!(
            queued > 0,
            "{signal:?}: none still queued at the timeout: {result:?}"
        );
        assert_eq!(queued + other, N, "{signal:?}: {result:?}");
    }
    let message = result.expect_err("the collector took nothing").to_string();
    assert!(
        message.contains("spans: ") && message.contains("logs: "),
        "{message}"
    );
    // The retries go on after shutdown gave up; when they fail, nothing is counted twice.
    std::thread::sleep(Duration::from_millis(1500));
    for signal in [Signal::Spans, Signal::Logs] {
        let (queued, other) = accounted(signal);
        assert_eq!(queued + other, N, "{signal:?} counted twice");
    }
}

// ----- the default queue -----

/// A burst the default queues hold: more than the specification's 2048, fewer than unitel's
/// 16384.
const BURST: u64 = 10_000;

/// A burst of 10,000 spans and log records, recorded faster than any collector takes them (this
/// one never answers), waits in the default queues instead of being dropped as queue full; what
/// shutdown then cannot deliver is counted as still queued, every item once.
#[test]
fn a_burst_of_ten_thousand_fits_the_default_queues() {
    let name = "a_burst_of_ten_thousand_fits_the_default_queues";
    if let Some(stdout) = support::run_child(name, &[]) {
        let counts = support::marked_counts::<6>(&stdout, "COUNTS");
        let [spans_full, logs_full, spans_left, spans_failed, logs_left, logs_failed] = counts;
        assert_eq!((spans_full, logs_full), (0, 0), "queue full: {counts:?}");
        assert_eq!(spans_left + spans_failed, BURST, "spans: {counts:?}");
        assert_eq!(logs_left + logs_failed, BURST, "logs: {counts:?}");
        return;
    }
    let addr = support::fault_collector(0);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_shutdown_timeout(Duration::from_millis(300)),
    )
    .expect("configure");
    let telemetry = get_telemetry("burst");
    for _ in 0..BURST {
        let _span = telemetry.trace("burst");
        telemetry.log_info("line");
    }
    use unitel::{dropped_at, DropReason, Output, Signal};
    let count = |signal, reason| dropped_at(Output::Otlp, signal, reason);
    let full = (
        count(Signal::Spans, DropReason::QueueFull),
        count(Signal::Logs, DropReason::QueueFull),
    );
    let _ = guard.shutdown();
    println!(
        "\nCOUNTS {} {} {} {} {} {}",
        full.0,
        full.1,
        count(Signal::Spans, DropReason::ShutdownTimeout),
        count(Signal::Spans, DropReason::ExportFailed),
        count(Signal::Logs, DropReason::ShutdownTimeout),
        count(Signal::Logs, DropReason::ExportFailed),
    );
}
