//! End to end: examples/service.rs over real HTTP on loopback, pushing to the real collector
//! (rotel). A request with a `traceparent` gives one trace across the server span, the
//! outgoing call (with its `tracestate` forwarded), the callee's server span and the worker's
//! span; malformed values start new traces; the server and worker metrics arrive by name.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Received, Rotel, SpanRec};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use support::Response;
use unitel::logfile::Record;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

/// Starts the example in `dir` under `service`'s name, pushing to rotel; killed on drop. The
/// address it listens on, from the line saying so.
fn start(dir: &std::path::Path, service: &str) -> (support::Running, SocketAddr) {
    let rotel = Rotel::get();
    let mut command = Command::new(support::example_binary_named("service"));
    command
        .current_dir(dir)
        .env("UNITEL_SERVICE_ADDR", "127.0.0.1:0")
        .env("OTEL_SERVICE_NAME", service)
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", rotel.http),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_PROPAGATORS")
        .env_remove("OTEL_SDK_DISABLED");
    let mut running = support::Running::spawn("examples/service.rs", &mut command);
    let addr = running.wait_for_prefix("listening on http://");
    let addr = addr
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("not an address: {addr:?}: {e}"));
    (running, addr)
}

/// GET `path` with extra header lines (raw, so malformed values go out as is).
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    support::http_get(addr, path, headers).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The trace id the service names in its body.
fn trace_of(response: &Response) -> String {
    response
        .body
        .rsplit("trace ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn span<'a>(spans: &'a [&'a SpanRec], name: &str) -> &'a SpanRec {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

#[test]
fn one_trace_across_server_call_and_worker_at_the_collector_and_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let service_name = format!("service-e2e-{}", std::process::id());
    let (service, addr) = start(dir.path(), &service_name);

    let traced = get(
        addr,
        "/checkout/42",
        &[
            ("traceparent", &format!("00-{TRACE}-{PARENT}-01")),
            ("tracestate", TRACESTATE),
        ],
    );
    assert_eq!(traced.status, 200, "{}", traced.body);
    assert_eq!(trace_of(&traced), TRACE, "{}", traced.body);
    assert_eq!(traced.header("x-trace-id"), Some(TRACE));
    assert_eq!(get(addr, "/health", &[]).status, 200);

    // Malformed values from the spec: each request starts a trace of its own.
    let valid = format!("00-{TRACE}-{PARENT}-01");
    let malformed = [
        valid.to_uppercase(),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!("00-{}-{PARENT}-01", "0".repeat(32)),
        format!("00-{TRACE}-{}-01", "0".repeat(16)),
        format!("00-{TRACE}-{PARENT}-01-extra"),
        format!("00-{TRACE}-{PARENT}"),
        format!("00-{}-{PARENT}-01", &TRACE[..31]),
        format!("0x-{TRACE}-{PARENT}-01"),
    ];
    let mut fresh = Vec::new();
    for value in &malformed {
        let r = get(
            addr,
            "/checkout/7",
            &[("traceparent", value), ("tracestate", TRACESTATE)],
        );
        assert_eq!(r.status, 200, "{value}: {}", r.body);
        let trace = trace_of(&r);
        assert_eq!(trace.len(), 32, "{value}: {}", r.body);
        assert_ne!(trace, TRACE, "{value} continued the caller's trace");
        assert!(!fresh.contains(&trace), "{value}: a trace id was reused");
        fresh.push(trace);
    }
    let (status, output) = service.terminate();
    assert!(status.success(), "the service failed: {status}\n{output}");
    assert!(output.contains("stopped"), "{output}");

    // The log file alone rebuilds the trace.
    let records = support::read_records(&dir.path().join("logs/service.log"));
    let in_trace = |r: &&Record| match r {
        Record::Span(s) => s.trace_id.to_string() == TRACE,
        Record::Log(l) => l.trace_id.map(|t| t.to_string()).as_deref() == Some(TRACE),
        _ => false,
    };
    let traced_records: Vec<&Record> = records.iter().filter(in_trace).collect();
    let file_span = |name: &str| {
        traced_records
            .iter()
            .find_map(|r| match r {
                Record::Span(s) if s.name == name => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no span {name:?} in the file's trace"))
    };
    let checkout = file_span("GET /checkout/{order}");
    let call = file_span("GET");
    let inventory = file_span("GET /inventory/{item}");
    let producer = file_span("client.submit_task");
    let worker = file_span("worker.execute_task");
    let parent = |s: &unitel::logfile::SpanRecord| s.parent_span_id.map(|p| p.to_string());
    assert_eq!(parent(&checkout).as_deref(), Some(PARENT));
    assert_eq!(parent(&call), Some(checkout.span_id.to_string()));
    assert_eq!(parent(&inventory), Some(call.span_id.to_string()));
    assert_eq!(parent(&producer), Some(checkout.span_id.to_string()));
    assert_eq!(parent(&worker), Some(producer.span_id.to_string()));
    for message in ["checkout started", "stock checked", "shipment booked"] {
        assert!(
            traced_records
                .iter()
                .any(|r| matches!(r, Record::Log(l) if l.message == message)),
            "log {message:?} is not in the trace"
        );
    }
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, Record::Span(s) if s.attributes.get("url.path").and_then(|v| v.as_str()) == Some("/health"))),
        "the health check was traced"
    );

    // The collector has the same trace, with the tracestate forwarded on the outgoing call.
    let rotel = Rotel::get();
    let received: Received = rotel.wait_for(Duration::from_secs(30), |r| {
        let n = r
            .spans_of(&service_name)
            .iter()
            .filter(|s| s.trace_id == TRACE)
            .count();
        let metrics_in = ["http.server.request.duration", "fastworker.tasks.completed"]
            .iter()
            .all(|m| !r.points_of(&service_name, m).is_empty());
        (n >= 5 && metrics_in).then(|| rotel::parse(&rotel.output()))
    });
    let spans = received.spans_of(&service_name);
    let traced: Vec<&SpanRec> = spans
        .iter()
        .copied()
        .filter(|s| s.trace_id == TRACE)
        .collect();
    let server = span(&traced, "GET /checkout/{order}");
    assert_eq!(server.parent_id, PARENT);
    assert_eq!(server.kind, "SPAN_KIND_SERVER", "{:?}", server.kind);
    assert_eq!(
        attr(&server.attrs, "http.route"),
        Some("Str(/checkout/{order})")
    );
    assert_eq!(server.trace_state, TRACESTATE);
    let callee = span(&traced, "GET /inventory/{item}");
    assert_eq!(callee.trace_state, TRACESTATE, "tracestate not forwarded");
    assert_eq!(callee.parent_id, span(&traced, "GET").span_id);
    assert_eq!(
        span(&traced, "worker.execute_task").kind,
        "SPAN_KIND_CONSUMER"
    );
    // The malformed requests' server spans are roots of their own traces.
    for trace in &fresh {
        let root = spans
            .iter()
            .find(|s| &s.trace_id == trace && s.name == "GET /checkout/{order}")
            .unwrap_or_else(|| panic!("no server span for trace {trace}"));
        assert_eq!(root.parent_id, "", "{trace}");
        assert_eq!(
            root.trace_state, "",
            "{trace}: the tracestate of a bad traceparent was kept"
        );
    }

    for metric in [
        "http.server.request.duration",
        "http.server.active_requests",
        "fastworker.tasks.submitted",
        "fastworker.tasks.completed",
        "fastworker.tasks.duration",
        "fastworker.workers.active",
    ] {
        assert!(
            !received.points_of(&service_name, metric).is_empty(),
            "no {metric} at the collector"
        );
    }
    let durations = received.points_of(&service_name, "http.server.request.duration");
    let checkout_points: Vec<_> = durations
        .iter()
        .filter(|p| {
            p.attrs
                .iter()
                .any(|(k, v)| k == "http.route" && v == "Str(/checkout/{order})")
        })
        .collect();
    let last = checkout_points
        .last()
        .expect("a duration point for /checkout/{order}");
    assert_eq!(last.count, Some(1 + malformed.len() as u64));
    assert_eq!(
        last.bounds,
        vec![0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    );
    let submitted = received.points_of(&service_name, "fastworker.tasks.submitted");
    assert_eq!(
        submitted.last().and_then(|p| p.value),
        Some(1.0 + malformed.len() as f64)
    );
}
