//! No secret in any output: an endpoint's `user:password@`, header values and query keys never
//! reach `Debug`, an error (its `Display`, `Debug` or source chain), stdout, stderr, the log
//! file or the collector, on every path — start-up errors, export failures, `RUST_LOG=trace`.
//! Credentials travel as an `Authorization` header; `TelemetryConfig::new()` sends only the
//! headers it was given; a header HTTP cannot carry is a start-up error naming it.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::Rotel;
use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use unitel::{configure_telemetry, get_telemetry, OtlpProtocol, OtlpSettings, TelemetryConfig};

/// Every secret the tests plant; none may appear anywhere.
const SECRETS: &[&str] = &["PW-SECRET", "HDR-SECRET", "KEY-SECRET", "ENV-SECRET"];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} holds {secret}:\n{text}");
    }
}

/// `Display`, `Debug` and every source's `Display` and `Debug`.
fn error_texts(err: &unitel::Error) -> String {
    let mut out = format!("{err}\n{err:?}\n");
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(&format!("{e}\n{e:?}\n"));
        next = e.source();
    }
    out
}

#[test]
fn debug_prints_neither_credentials_nor_header_values_nor_query_keys() {
    let settings = OtlpSettings::new()
        .with_endpoint("https://carol:PW-SECRET-5@collector.example:4318/v1?api_key=KEY-SECRET-7")
        .with_header("authorization", "Bearer HDR-SECRET-6");
    let config = TelemetryConfig::from_vars([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://alice:PW-SECRET-1@collector.example:4318",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://bob:PW-SECRET-2@collector.example:4318/v1/traces?api_key=KEY-SECRET-3",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=HDR-SECRET-4"),
    ])
    .with_otlp_traces(settings.clone())
    .with_otlp_endpoint("http://dave:PW-SECRET-8@collector.example:4318");
    for text in [
        format!("{settings:?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
    ] {
        assert_clean("Debug", &text);
        // What is printed still says where data goes.
        assert!(text.contains("collector.example:4318"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

/// Endpoints that do not parse, each holding a password: every shape of a password with `/`,
/// `#`, `?` or `@`, a missing `//`, scheme or host.
const MALFORMED: &[&str] = &[
    "http:/user:PW-SECRET@collector:4318",
    "http://user:PW/SECRET@collector:4318",
    "http://user:PW#SECRET@collector:4318",
    "http://user:PW?SECRET@collector:4318",
    "user:PW-SECRET@collector:4318",
    "http://user:PW-SECRET@",
    "http://user:PW-SECRET@:4318",
    "ftp://user:PW-SECRET@collector:4318",
    "http://user:PW-SECRET@collector:99999",
    "http://user:PW-SECRET@coll ector:4318",
    "https:user:PW-SECRET",
];

#[test]
fn start_up_errors_never_echo_a_password() {
    if support::in_parent("start_up_errors_never_echo_a_password", &[]) {
        return;
    }
    for raw in MALFORMED {
        let from_env =
            TelemetryConfig::from_vars([("OTEL_EXPORTER_OTLP_ENDPOINT", *raw)]).with_console(false);
        assert_clean("config Debug", &format!("{from_env:?}"));
        let err = configure_telemetry(from_env).expect_err(raw);
        let texts = error_texts(&err);
        assert_clean(raw, &texts);
        assert!(texts.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{texts}");

        let built = TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(*raw);
        let err = configure_telemetry(built).expect_err(raw);
        let texts = error_texts(&err);
        assert_clean(raw, &texts);
        assert!(texts.contains("with_otlp_endpoint"), "{texts}");

        let per_signal = TelemetryConfig::new()
            .with_console(false)
            .with_otlp_logs(OtlpSettings::new().with_endpoint(*raw));
        let err = configure_telemetry(per_signal).expect_err(raw);
        assert_clean(raw, &error_texts(&err));
    }
    // A scheme-less endpoint is grpc's; with http it is an error, still without the password.
    let err = configure_telemetry(
        TelemetryConfig::from_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ])
        .with_console(false),
    )
    .expect_err("scheme-less http endpoint");
    assert!(error_texts(&err).contains("grpc only"), "{err}");
}

#[test]
fn headers_http_cannot_carry_are_start_up_errors_naming_the_header() {
    if support::in_parent(
        "headers_http_cannot_carry_are_start_up_errors_naming_the_header",
        &[],
    ) {
        return;
    }
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
    for (headers, name) in [
        ("x-token=HDR-SECRET%0Ainjected: 1", "x-token"),
        ("x-token=HDR-SECRET%0D%0A", "x-token"),
        ("x-token=HDR-SECRET%00", "x-token"),
        ("x(y)=HDR-SECRET", "x(y)"),
        ("x y=HDR-SECRET", "x..."),
        ("ok=1,x:y=HDR-SECRET", "x:y"),
        ("content-length=HDR-SECRET", "content-length"),
        ("HDR-SECRET-no-equals", "no `=`"),
        ("x-token=HDR-SECRET%zz", "x-token"),
    ] {
        let config =
            TelemetryConfig::from_vars([endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", headers)])
                .with_console(false);
        let err = configure_telemetry(config).expect_err(headers);
        let texts = error_texts(&err);
        assert_clean(headers, &texts);
        assert!(
            texts.contains("OTEL_EXPORTER_OTLP_HEADERS") && texts.contains(name),
            "{headers}: {texts}"
        );
    }
    for (name, value) in [
        ("x-token", "HDR-SECRET\r\nx-injected: 1"),
        ("x-token", "HDR-SECRET\n"),
        ("x(y)", "HDR-SECRET"),
        ("", "HDR-SECRET"),
        ("Host", "HDR-SECRET"),
    ] {
        for config in [
            TelemetryConfig::new().with_otlp(
                OtlpSettings::new()
                    .with_endpoint("http://127.0.0.1:9")
                    .with_header(name, value),
            ),
            TelemetryConfig::new()
                .with_otlp_endpoint("http://127.0.0.1:9")
                .with_otlp_metrics(
                    OtlpSettings::new()
                        .with_protocol(OtlpProtocol::Grpc)
                        .with_header(name, value),
                ),
        ] {
            let err = configure_telemetry(config.with_console(false)).expect_err(name);
            let texts = error_texts(&err);
            assert_clean(name, &texts);
            assert!(
                texts.contains("OtlpSettings::with_header") && texts.contains(&format!("{name}=")),
                "{name:?}: {texts}"
            );
        }
    }
}

// ----- what is sent: a collector that records the request's head -----

/// The heads of the requests a capturing collector received (`:request` is the request line).
type Requests = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// An HTTP/1.1 collector that answers 200 to everything and keeps each request's line and
/// headers (lower-cased names). Fault-injection style: only a fake can show what was sent.
fn capture_http() -> (String, Requests) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut stream = stream;
                loop {
                    let mut head = HashMap::new();
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    head.insert(":request".to_owned(), line.trim().to_owned());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            head.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        }
                    }
                    let len: usize = head
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    record.lock().unwrap().push(head);
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
                    );
                }
            });
        }
    });
    (addr, seen)
}

/// A gRPC collector (h2 with prior knowledge) that answers OK and keeps each request's headers.
fn capture_grpc() -> (String, Requests) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr").to_string())
                .expect("send");
            let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                let record = Arc::clone(&record);
                async move {
                    let mut head: HashMap<String, String> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    head.insert(":request".to_owned(), req.uri().to_string());
                    record.lock().unwrap().push(head);
                    (
                        [("content-type", "application/grpc"), ("grpc-status", "0")],
                        "",
                    )
                }
            });
            axum::serve(listener, app).await.expect("serve");
        });
    });
    let addr = rx.recv().expect("address");
    (addr, seen)
}

fn wait_for_request(seen: &Mutex<Vec<HashMap<String, String>>>) -> HashMap<String, String> {
    let start = std::time::Instant::now();
    loop {
        if let Some(head) = seen.lock().unwrap().first() {
            return head.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no request reached the collector"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// In the child: spans to the endpoint in `CAPTURE_ENDPOINT` with `TelemetryConfig::new()`
/// (or `from_env()` when `CAPTURE_FROM_ENV` is set), one explicit header.
fn send_one_span() {
    let endpoint = std::env::var("CAPTURE_ENDPOINT").expect("endpoint");
    let protocol = match std::env::var("CAPTURE_PROTOCOL").as_deref() {
        Ok("grpc") => OtlpProtocol::Grpc,
        _ => OtlpProtocol::HttpProtobuf,
    };
    let base = if std::env::var("CAPTURE_FROM_ENV").is_ok() {
        TelemetryConfig::from_env()
    } else {
        TelemetryConfig::new()
    };
    let guard = configure_telemetry(
        base.with_console(false)
            .with_otlp(
                OtlpSettings::new()
                    .with_endpoint(endpoint)
                    .with_protocol(protocol)
                    .with_header("x-explicit", "yes"),
            )
            .with_traces_exporter(&[unitel::Exporter::Otlp])
            .with_metrics_exporter(&[unitel::Exporter::None])
            .with_logs_exporter(&[unitel::Exporter::None]),
    )
    .expect("configure");
    drop(get_telemetry("capture").trace("one"));
    let _ = guard.shutdown();
}

fn check_sent(protocol: &str, from_env: bool) {
    let (addr, seen) = match protocol {
        "grpc" => capture_grpc(),
        _ => capture_http(),
    };
    let endpoint = format!("HTTP://alice:p%40ss-PW-SECRET@{addr}");
    let name = format!(
        "{}_{}",
        if protocol == "grpc" { "grpc" } else { "http" },
        if from_env { "from_env" } else { "new" }
    );
    let test = format!("what_is_sent_{name}");
    let mut env = vec![
        ("CAPTURE_ENDPOINT", endpoint.as_str()),
        ("CAPTURE_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=ENV-SECRET"),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-from-env=ENV-SECRET"),
    ];
    if from_env {
        env.push(("CAPTURE_FROM_ENV", "1"));
    }
    let out = support::child(&test, &env).expect("parent");
    let stdout = support::assert_ok(&out);
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &String::from_utf8_lossy(&out.stderr));
    let head = wait_for_request(&seen);
    let request = &head[":request"];
    assert!(
        request.contains("/v1/traces") || request.contains("TraceService/Export"),
        "{head:?}"
    );
    assert!(
        !request.contains('@'),
        "credentials in the request URL: {head:?}"
    );
    // alice:p@ss-PW-SECRET, percent-decoded, as HTTP Basic.
    assert_eq!(
        head.get("authorization").map(String::as_str),
        Some("Basic YWxpY2U6cEBzcy1QVy1TRUNSRVQ="),
        "{head:?}"
    );
    assert_eq!(head.get("x-explicit").map(String::as_str), Some("yes"));
    assert_eq!(
        head.contains_key("x-from-env"),
        from_env,
        "OTEL_EXPORTER_OTLP_HEADERS is sent only by from_env(): {head:?}"
    );
}

macro_rules! what_is_sent {
    ($name:ident, $protocol:literal, $from_env:literal) => {
        #[test]
        fn $name() {
            if std::env::var("UNITEL_CHILD").as_deref() == Ok(stringify!($name)) {
                send_one_span();
            } else {
                check_sent($protocol, $from_env);
            }
        }
    };
}

what_is_sent!(what_is_sent_http_new, "http/protobuf", false);
what_is_sent!(what_is_sent_http_from_env, "http/protobuf", true);
what_is_sent!(what_is_sent_grpc_new, "grpc", false);
what_is_sent!(what_is_sent_grpc_from_env, "grpc", true);

// ----- RUST_LOG=trace, a credentialed endpoint, a real collector -----

/// The child: everything on (console, JSON log file, OTLP for all signals), the noisiest filter.
fn traced_run(log_file: &str) {
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_log_file(log_file)
            .with_batch_span_processor(
                unitel::BatchSettings::new().with_schedule_delay(Duration::from_millis(50)),
            ),
    )
    .expect("configure");
    let t = get_telemetry("secrets");
    for i in 0..5 {
        let span = t.trace(format!("work-{i}"));
        t.log_info_with("working", &[("i", i)]);
        t.counter("secrets.work").add(1, &[("kind", "work")]);
        drop(span);
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = guard.shutdown();
}

fn check_traced(test: &str, protocol: &str, endpoint: &str, delivered: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    let log_path = log.to_string_lossy().into_owned();
    let service = format!("secrets-{}-{}", std::process::id(), test);
    let out = support::child(
        test,
        &[
            ("RUST_LOG", "trace"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=HDR-SECRET-9,authorization=Bearer%20HDR-SECRET-10",
            ),
            ("OTEL_SERVICE_NAME", &service),
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            ("SECRETS_LOG", &log_path),
        ],
    )
    .expect("parent");
    let stdout = support::assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    let file = std::fs::read_to_string(&log).expect("log file");
    assert_clean("log file", &file);
    // The application's own lines are there; the exporter stack's are not.
    assert!(
        support::console_lines(&stdout)
            .iter()
            .any(|l| l.contains("working")),
        "{stdout}"
    );
    for stack in [
        "hyper",
        "h2",
        "tonic",
        "rustls",
        "tower",
        "reqwest",
        "opentelemetry",
    ] {
        for line in support::console_lines(&stdout) {
            let component = line.split_whitespace().nth(2).unwrap_or("");
            assert!(
                !component.starts_with(stack),
                "an exporter-stack line reached the console: {line}"
            );
        }
        assert!(
            !file.contains(&format!("\"target\":\"{stack}")),
            "an exporter-stack record reached the log file"
        );
    }
    if delivered {
        let rotel = Rotel::get();
        rotel.wait_for(Duration::from_secs(20), |r| {
            (r.spans_of(&service).len() >= 5).then_some(())
        });
        assert_clean("what the collector received", &rotel.output());
    } else {
        assert!(
            stderr.contains("exporting"),
            "the failure is reported: {stderr}"
        );
    }
}

macro_rules! traced {
    ($name:ident, $protocol:literal, $endpoint:expr, $delivered:literal) => {
        #[test]
        fn $name() {
            if std::env::var("UNITEL_CHILD").as_deref() == Ok(stringify!($name)) {
                traced_run(&std::env::var("SECRETS_LOG").expect("log path"));
            } else {
                let endpoint: String = $endpoint;
                check_traced(stringify!($name), $protocol, &endpoint, $delivered);
            }
        }
    };
}

traced!(
    rust_log_trace_leaks_nothing_over_http,
    "http/protobuf",
    format!("http://user:PW-SECRET-11@{}", Rotel::get().http),
    true
);
traced!(
    rust_log_trace_leaks_nothing_over_grpc,
    "grpc",
    format!("http://user:PW-SECRET-12@{}", Rotel::get().grpc),
    true
);
traced!(
    a_refused_connection_leaks_nothing_over_http,
    "http/protobuf",
    format!(
        "http://user:PW-SECRET-13@{}/x?api_key=KEY-SECRET-14",
        closed_port()
    ),
    false
);
traced!(
    a_refused_connection_leaks_nothing_over_grpc,
    "grpc",
    format!("http://user:PW-SECRET-15@{}", closed_port()),
    false
);
traced!(
    a_tls_failure_leaks_nothing,
    "http/protobuf",
    // TLS spoken to a plain-http collector: the handshake fails.
    format!("https://user:PW-SECRET-16@{}", Rotel::get().http),
    false
);

/// A loopback port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}
