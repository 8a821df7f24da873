//! Seed 003's promise, end to end: from a metric spike to the trace to its error log.
//!
//! examples/service.rs serves real HTTP with the server layer and `/metrics`; order 13 is slow
//! and fails. A real Prometheus with exemplar storage scrapes it; its exemplar query on the
//! latency histogram's failing series gives a trace id, the one the failing response named;
//! the service's JSON log file holds that trace's error log with its cause, and `unitel logs
//! --trace` shows it under the trace's spans.

use super::{support, Scraper};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::Running;

/// Starts examples/service.rs in `dir` with Prometheus on an ephemeral port; returns it, its
/// HTTP address and its `/metrics` address.
fn start_service(dir: &std::path::Path) -> (Running, SocketAddr, SocketAddr) {
    let mut command = Command::new(support::example_binary_named("service"));
    command
        .current_dir(dir)
        .env("UNITEL_SERVICE_ADDR", "127.0.0.1:0")
        .env("OTEL_SERVICE_NAME", "spike")
        .env("OTEL_METRICS_EXPORTER", "prometheus")
        .env("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
        .env("OTEL_EXPORTER_PROMETHEUS_PORT", "0")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_LOGS_EXPORTER")
        .env_remove("OTEL_METRICS_EXEMPLAR_FILTER")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("RUST_LOG");
    let mut service = Running::spawn("examples/service.rs", &mut command);
    // It prints both addresses, in either order.
    let (mut http, mut metrics) = (None, None);
    let (http, metrics) = service.wait_for(|line| {
        let addr = |prefix: &str| -> Option<SocketAddr> {
            let rest = line.strip_prefix(prefix)?;
            rest.trim_end_matches("/metrics").parse().ok()
        };
        http = http.or_else(|| addr("listening on http://"));
        metrics = metrics.or_else(|| addr("metrics on http://"));
        http.zip(metrics)
    });
    (service, http, metrics)
}

fn header<'a>(response: &'a support::Response, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_latency_spike_leads_to_its_trace_and_error_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, http, metrics) = start_service(dir.path());

    // Ordinary traffic, then the bad request.
    for order in 1..=5 {
        let ok = support::http_get(http, &format!("/checkout/{order}"), &[]).expect("GET");
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    let bad = support::http_get(http, "/checkout/13", &[]).expect("GET /checkout/13");
    assert_eq!(bad.status, 500, "{}", bad.body);
    let trace = header(&bad, "x-trace-id")
        .expect("the failing response names its trace")
        .to_owned();
    assert!(bad.body.contains(&trace), "{}", bad.body);

    let mut prometheus = Scraper::start_for_app_with(
        service,
        metrics,
        "1s",
        &["--enable-feature=exemplar-storage"],
    );
    prometheus.assert_up();

    // The spike: the failing series of the server's latency histogram. Its exemplar is the
    // trace of the request that made it.
    let query = r#"http_server_request_duration_seconds_bucket{http_response_status_code="500"}"#;
    let hit = prometheus.exemplar_of_trace(query, &trace);
    assert_eq!(hit["series"]["http_route"], "/checkout/{order}", "{hit}");
    let seconds: f64 = hit["value"].as_str().unwrap_or("0").parse().unwrap_or(0.0);
    assert!(
        seconds >= 0.4,
        "the slow request took at least 400 ms: {hit}"
    );
    let le: f64 = hit["series"]["le"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0.0);
    assert!(seconds <= le, "the exemplar sits in its own bucket: {hit}");

    // The trace's error log, with its cause, in the service's log file.
    let log = dir.path().join("logs/service.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let error_line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let found = text
            .lines()
            .find(|l| l.contains(&trace) && l.contains("checkout failed"))
            .map(str::to_owned);
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no error log of trace {trace} in {}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let record: serde_json::Value = serde_json::from_str(&error_line).expect("a JSON line");
    assert_eq!(record["level"], "ERROR", "{record}");
    assert!(
        record.to_string().contains("503"),
        "the cause (the inventory's 503) is in the error log: {record}"
    );

    // The CLI: the trace as a tree, the error log under its span.
    let shown = Command::new(env!("CARGO_BIN_EXE_unitel"))
        .args(["logs", "--trace", &trace])
        .arg(&log)
        .env("NO_COLOR", "1")
        .output()
        .expect("run unitel logs");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    for expected in [
        trace.as_str(),
        "GET /checkout/{order}",
        "GET /inventory/{item}",
        "checkout failed: inventory unavailable",
        "503",
    ] {
        assert!(
            text.contains(expected),
            "`unitel logs` lacks {expected:?}:\n{text}"
        );
    }
}
