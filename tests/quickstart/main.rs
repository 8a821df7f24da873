//! Runs the real quickstart example (built by `cargo test`) in an empty directory and checks
//! what the README promises: one trace id on the request's console line, on the worker's log
//! lines, and in the JSON file's log and span records of both, whose span records form one tree.

#[path = "../support/mod.rs"]
mod support;

use std::process::Command;
use unitel::logfile::SpanRecord;
use unitel::opentelemetry::trace::{SpanId, Status};

use support::example_binary;

#[test]
fn quickstart_correlates_request_and_worker_in_one_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(example_binary())
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("REDIS_URL")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .output()
        .expect("run quickstart");
    let stdout = support::assert_ok(&out);

    // The trace id it reports at the end.
    let trace_id = support::quickstart_trace_id(&stdout).expect("the quickstart names a trace");
    assert_eq!(trace_id.len(), 32);
    let tag = format!("[trace:{trace_id}]");

    // Console: the request's lines and the worker's lines carry it.
    let console = support::console_lines(&stdout);
    let of_trace: Vec<_> = console.iter().filter(|l| l.contains(&tag)).collect();
    assert!(
        of_trace
            .iter()
            .any(|l| l.contains("api_gateway: request received")),
        "{stdout}"
    );
    assert!(
        of_trace
            .iter()
            .any(|l| l.contains("background_worker: processing job")),
        "{stdout}"
    );
    assert!(
        of_trace
            .iter()
            .any(|l| l.contains("ERROR background_worker: charge failed")
                && l.contains("provider timed out")),
        "the error line carries its cause: {stdout}"
    );

    // The JSON file, under ./logs of the working directory.
    let records = support::read_records(&dir.path().join("logs"));
    let of_trace: Vec<_> = records
        .iter()
        .filter(|r| r.trace_id().is_some_and(|id| id.to_string() == trace_id))
        .collect();
    let has_log = |component: &str| {
        of_trace
            .iter()
            .any(|r| r.as_log().is_some_and(|l| l.component == component))
    };
    let has_span = |component: &str| {
        of_trace
            .iter()
            .any(|r| r.as_span().is_some_and(|s| s.component == component))
    };
    assert!(has_log("api_gateway"), "request log record");
    assert!(has_log("background_worker"), "worker log record");
    assert!(has_span("api_gateway"), "request span record");
    assert!(has_span("background_worker"), "worker span record");

    let spans: Vec<&SpanRecord> = of_trace.iter().filter_map(|r| r.as_span()).collect();
    let ids: Vec<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let roots: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    assert_eq!(roots.len(), 1, "one root: {spans:#?}");
    assert_eq!(roots[0].name, "handle_request");
    for span in &spans {
        if let Some(parent) = span.parent_span_id {
            assert!(
                ids.contains(&parent),
                "parent {parent} of {} is not in the trace",
                span.name
            );
        }
    }
    let failed = spans
        .iter()
        .find(|s| s.name == "charge_payment")
        .expect("worker step span");
    assert!(matches!(failed.status, Status::Error { .. }), "{failed:#?}");

    // The adapters' spans: the INSERT and the HTTP call are children of the request, the
    // inventory endpoint's server span is the HTTP call's child, and its query is its own.
    let named = |component: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.component == component && s.name == name)
            .copied()
            .unwrap_or_else(|| panic!("no span {component}.{name}: {spans:#?}"))
    };
    let request = roots[0];
    let insert = named("sqlx", "INSERT orders");
    assert_eq!(insert.parent_span_id, Some(request.span_id));
    let call = named("http.client", "GET");
    assert_eq!(call.parent_span_id, Some(request.span_id));
    let served = named("http.server", "GET /inventory/{item}");
    assert_eq!(served.parent_span_id, Some(call.span_id));
    let select = named("sqlx", "SELECT stock");
    assert_eq!(select.parent_span_id, Some(served.span_id));
    // The literal-free query text, and no Redis without REDIS_URL.
    let text = format!("{:?}", select.attributes);
    assert!(
        text.contains("SELECT available FROM stock WHERE item = ?"),
        "{text}"
    );
    assert!(!spans.iter().any(|s| s.component == "redis"), "{spans:#?}");

    // The last line is the exact `unitel` command that shows this trace.
    let command = format!(
        "cargo run --features cli --bin unitel -- logs logs/quickstart.log --trace {trace_id}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(&command), "last line: {last:?}");
    #[cfg(feature = "cli")]
    {
        // ... and that command (the binary it builds) shows the trace, run where the
        // quickstart ran.
        let shown = Command::new(env!("CARGO_BIN_EXE_unitel"))
            .current_dir(dir.path())
            .args(["logs", "logs/quickstart.log", "--trace", &trace_id])
            .output()
            .expect("run unitel");
        let shown = support::assert_ok(&shown);
        assert!(shown.starts_with(&format!("trace {trace_id}")), "{shown}");
        for name in [
            "handle_request",
            "INSERT orders",
            "GET /inventory/{item}",
            "charge_payment",
        ] {
            assert!(shown.contains(name), "{name} missing from:\n{shown}");
        }
        assert!(shown.contains("ERROR charge failed, will retry"), "{shown}");
        assert!(
            !shown.contains('\x1b'),
            "no colour without a terminal: {shown}"
        );
    }
}

#[test]
fn serve_mode_serves_metrics_until_ctrl_c() {
    use std::io::{BufRead, BufReader, Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dir = tempfile::tempdir().expect("tempdir");
    /// Kills the server if the test fails before it stops it.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(
        Command::new(example_binary())
            .arg("--serve")
            .current_dir(dir.path())
            .env("OTEL_EXPORTER_PROMETHEUS_PORT", port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start quickstart --serve"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let announced = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("serving Prometheus metrics on"))
        .expect("says where it serves");
    assert!(
        announced.contains(&format!("http://127.0.0.1:{port}/metrics")),
        "{announced}"
    );

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("requests_total{"), "{response}");
    assert!(
        response.contains("request_duration_ms_bucket{"),
        "{response}"
    );

    // Ctrl-C: it flushes, prints its trace, and exits successfully.
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.0.wait().expect("wait");
    assert!(exit.success(), "exit {exit}: {rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("Ctrl-C: flushing")),
        "{rest:#?}"
    );
    assert!(rest.iter().any(|l| l.starts_with("trace ")), "{rest:#?}");
}

/// With `REDIS_URL`, each request also counts itself in Redis: an `INCRBY` span under the
/// request's span, in the same trace, with the real server's address and no value.
#[test]
fn quickstart_uses_redis_when_redis_url_is_set() {
    let url = support::redis_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(example_binary())
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env("REDIS_URL", &url)
        .output()
        .expect("run quickstart");
    let stdout = support::assert_ok(&out);
    let trace_id = support::quickstart_trace_id(&stdout).expect("the quickstart names a trace");
    let records = support::read_records(&dir.path().join("logs"));
    let spans: Vec<&SpanRecord> = records
        .iter()
        .filter_map(|r| r.as_span())
        .filter(|s| s.trace_id.to_string() == trace_id)
        .collect();
    let request = spans
        .iter()
        .find(|s| s.name == "handle_request")
        .expect("request span");
    let incr = spans
        .iter()
        .find(|s| s.component == "redis")
        .unwrap_or_else(|| panic!("no redis span: {spans:#?}"));
    assert_eq!(incr.name, "INCRBY");
    assert_eq!(incr.parent_span_id, Some(request.span_id));
    let attrs = format!("{:?}", incr.attributes);
    assert!(
        attrs.contains("\"db.system.name\": String(\"redis\")"),
        "{attrs}"
    );
    assert!(
        !attrs.contains("quickstart:requests"),
        "the key is a value: {attrs}"
    );
}
