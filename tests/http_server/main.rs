//! The HTTP server layer over real HTTP on loopback: an axum app with `HttpServerLayer`, asked
//! by reqwest (and by hand over a `TcpStream` where a client would not misbehave enough), read
//! back through `unitel::testing::capture`. Also the layer on a plain tower service (routes
//! from extensions, errors from the service), and with telemetry off (in a child process).

#[path = "../support/mod.rs"]
mod support;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{any, get};
use axum::Router;
use http::HeaderName;
use opentelemetry::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tower::ServiceExt as _;
use unitel::testing::{capture, Capture, CapturedSpan, PointValue};
use unitel::{get_telemetry, HttpRoute, HttpServerLayer, SpanKind, Status};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const COMPONENT: &str = "http.server";
const DURATION: &str = "http.server.request.duration";
const ACTIVE: &str = "http.server.active_requests";
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Every attribute the layer may set; anything else on a server span is a leak.
const ALLOWED: [&str; 12] = [
    "http.request.method",
    "http.request.method_original",
    "url.path",
    "url.scheme",
    "http.route",
    "http.response.status_code",
    "server.address",
    "server.port",
    "client.address",
    "network.protocol.version",
    "user_agent.original",
    "error.type",
];

/// Tells the test that `/slow`'s handler runs.
#[derive(Clone, Default)]
struct App {
    slow_started: Arc<Notify>,
}

fn router(app: App) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/any", any(|| async { "any" }))
        .route("/slow", get(slow))
        .route("/health", get(|| async { "ok" }))
        .route(
            "/baggage",
            get(|| async { unitel::baggage("tenant").unwrap_or_default() }),
        )
        .with_state(app)
        .layer(
            HttpServerLayer::new()
                .exclude_path("/health")
                .trace_id_header(HeaderName::from_static("x-trace-id")),
        )
}

/// Logs, opens a span, emits a `tracing` event, and logs again after a yield (another poll,
/// maybe on another thread).
async fn user(Path(id): Path<u64>) -> String {
    let telemetry = get_telemetry("users");
    telemetry.log_info_with("loading user", &[("user.id", id)]);
    {
        let _span = telemetry.trace("load_user");
    }
    unitel::tracing::info!(target: "users", "tracing event in handler");
    tokio::task::yield_now().await;
    telemetry.log_info("after yield");
    format!("user {id}")
}

async fn slow(State(app): State<App>) -> &'static str {
    app.slow_started.notify_one();
    tokio::time::sleep(Duration::from_secs(60)).await;
    "too late"
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, service).await;
    });
    addr
}

/// Sends `request` as it is and reads the whole answer (ask for `Connection: close`).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// `GET url` with extra headers, through reqwest.
async fn http_get(url: String, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

fn server_spans(spans: &[CapturedSpan]) -> Vec<&CapturedSpan> {
    spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect()
}

/// The one server span of the test.
fn only_server_span(capture: &Capture) -> CapturedSpan {
    let spans = capture.spans();
    let server = server_spans(&spans);
    assert_eq!(
        server.len(),
        1,
        "server spans: {:?}",
        server.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    server[0].clone()
}

fn s(value: &str) -> Option<Value> {
    Some(Value::from(value.to_owned()))
}

fn attr(span: &CapturedSpan, key: &str) -> Option<Value> {
    span.attr(key).cloned()
}

fn assert_no_leaks(span: &CapturedSpan, secrets: &[&str]) {
    support::assert_attributes_within(span, &ALLOWED);
    for kv in &span.attributes {
        let value = kv.value.to_string();
        for secret in secrets {
            assert!(
                !value.contains(secret),
                "{} = {value:?} leaks {secret:?}",
                kv.key
            );
        }
    }
}

fn histogram(capture: &Capture, attrs: &[(&str, &str)]) -> Option<(u64, Vec<f64>)> {
    match capture.point(COMPONENT, DURATION, attrs)? {
        PointValue::Histogram { count, bounds, .. } => Some((count, bounds)),
        other => panic!("{DURATION} is not a histogram: {other:?}"),
    }
}

fn active(capture: &Capture, method: &str) -> f64 {
    match capture.point(
        COMPONENT,
        ACTIVE,
        &[("http.request.method", method), ("url.scheme", "http")],
    ) {
        Some(PointValue::Sum(v)) => v,
        None => 0.0,
        Some(other) => panic!("{ACTIVE} is not a sum: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_is_named_after_the_route_with_every_attribute() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(
        format!("http://{addr}/users/42?token=s3cr3t-query"),
        &[
            ("user-agent", "unitel-test/1.0"),
            ("authorization", "Bearer s3cr3t-header"),
            ("cookie", "session=s3cr3t-cookie"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "user 42");

    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(span.component, COMPONENT);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(span.parent_span_id, None);
    assert_eq!(attr(&span, "http.request.method"), s("GET"));
    assert_eq!(attr(&span, "http.request.method_original"), None);
    assert_eq!(attr(&span, "url.path"), s("/users/42"));
    assert_eq!(attr(&span, "url.scheme"), s("http"));
    assert_eq!(attr(&span, "http.route"), s("/users/{id}"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(Value::I64(200))
    );
    assert_eq!(attr(&span, "server.address"), s("127.0.0.1"));
    assert_eq!(
        attr(&span, "server.port"),
        Some(Value::I64(i64::from(addr.port())))
    );
    assert_eq!(attr(&span, "network.protocol.version"), s("1.1"));
    assert_eq!(attr(&span, "user_agent.original"), s("unitel-test/1.0"));
    assert_eq!(attr(&span, "error.type"), None);
    // No forwarding header: the peer address from axum's `ConnectInfo`.
    assert_eq!(attr(&span, "client.address"), s("127.0.0.1"));
    assert_no_leaks(&span, &["s3cr3t", "token", "Bearer", "session"]);
    assert!(
        !capture.spans().iter().any(|s| s.name.contains("/users/42")),
        "a span is named after the raw path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_name_client_scheme_and_host() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(
        format!("http://{addr}/users/1"),
        &[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "shop.example:8443"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let span = only_server_span(&capture);
    assert_eq!(attr(&span, "client.address"), s("203.0.113.7"));
    assert_eq!(attr(&span, "url.scheme"), s("https"));
    assert_eq!(attr(&span, "server.address"), s("shop.example"));
    assert_eq!(attr(&span, "server.port"), Some(Value::I64(8443)));

    // `Forwarded` wins over the `X-Forwarded-*` headers.
    let capture = {
        drop(capture);
        self::capture()
    };
    client()
        .get(format!("http://{addr}/users/2"))
        .header(
            "forwarded",
            r#"for="[2001:db8::1]:4711";proto=https;host=api.example, for=198.51.100.2"#,
        )
        .header("x-forwarded-for", "198.51.100.1")
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "other.example")
        .send()
        .await
        .expect("request");
    let span = only_server_span(&capture);
    assert_eq!(attr(&span, "client.address"), s("2001:db8::1"));
    assert_eq!(attr(&span, "url.scheme"), s("https"));
    assert_eq!(attr(&span, "server.address"), s("api.example"));
    assert_eq!(attr(&span, "server.port"), None);

    // A scheme other than http(s) from a header is ignored: it would grow the metric's series.
    let capture = {
        drop(capture);
        self::capture()
    };
    http_get(
        format!("http://{addr}/users/3"),
        &[
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-for", "unknown"),
        ],
    )
    .await;
    let span = only_server_span(&capture);
    assert_eq!(attr(&span, "url.scheme"), s("http"));
    // `unknown` is not an address: the peer's is used.
    assert_eq!(attr(&span, "client.address"), s("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_request_is_named_by_its_method_alone() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(format!("http://{addr}/no/such/page"), &[]).await;
    assert_eq!(response.status(), 404);
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET");
    assert_eq!(attr(&span, "http.route"), None);
    assert_eq!(attr(&span, "url.path"), s("/no/such/page"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(Value::I64(404))
    );
    // 4xx is the client's error: the server span's status stays unset.
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_from_a_route_leaves_the_status_unset() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(format!("http://{addr}/missing"), &[]).await;
    assert_eq!(response.status(), 404);
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /missing");
    assert_eq!(span.status, Status::Unset);
    assert_eq!(attr(&span, "error.type"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_an_error_with_its_status_code() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let before = histogram(&capture, &fail_point()).map_or(0, |(count, _)| count);
    let response = http_get(format!("http://{addr}/fail"), &[]).await;
    assert_eq!(response.status(), 500);
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /fail");
    assert!(
        matches!(span.status, Status::Error { .. }),
        "status {:?}",
        span.status
    );
    assert_eq!(attr(&span, "error.type"), s("500"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(Value::I64(500))
    );
    let (count, _) = histogram(&capture, &fail_point()).expect("the 500 is in the histogram");
    assert_eq!(count, before + 1);
}

fn fail_point() -> [(&'static str, &'static str); 6] {
    [
        ("http.request.method", "GET"),
        ("url.scheme", "http"),
        ("http.route", "/fail"),
        ("http.response.status_code", "500"),
        ("network.protocol.version", "1.1"),
        ("error.type", "500"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_are_other() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    for method in ["PURGE", "get"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client()
            .request(method, format!("http://{addr}/any"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }
    let spans = capture.spans();
    let server = server_spans(&spans);
    assert_eq!(server.len(), 2);
    for (span, original) in server.iter().zip(["PURGE", "get"]) {
        assert_eq!(span.name, "HTTP /any");
        assert_eq!(attr(span, "http.request.method"), s("_OTHER"));
        assert_eq!(attr(span, "http.request.method_original"), s(original));
    }
    let (count, _) = histogram(
        &capture,
        &[
            ("http.request.method", "_OTHER"),
            ("url.scheme", "http"),
            ("http.route", "/any"),
            ("http.response.status_code", "200"),
            ("network.protocol.version", "1.1"),
        ],
    )
    .expect("a point for _OTHER");
    assert!(count >= 2, "count {count}");
    assert_eq!(active(&capture, "_OTHER"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_traceparent_is_the_parent_and_its_trace_id_is_returned() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(
        format!("http://{addr}/users/7"),
        &[("traceparent", &format!("00-{TRACE}-{PARENT}-01"))],
    )
    .await;
    assert_eq!(response.status(), 200);
    let header = response
        .headers()
        .get("x-trace-id")
        .expect("trace id header")
        .to_str()
        .unwrap()
        .to_owned();
    let span = only_server_span(&capture);
    assert_eq!(span.trace_id, TRACE);
    assert_eq!(span.parent_span_id.as_deref(), Some(PARENT));
    assert_ne!(span.span_id, PARENT);
    assert_eq!(header, TRACE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_traceparent_starts_a_new_trace_and_keeps_the_baggage() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let bad = format!("00-{TRACE}-0000000000000000-01"); // an all-zero parent id is invalid
    let response = http_get(
        format!("http://{addr}/baggage"),
        &[("traceparent", &bad), ("baggage", "tenant=acme")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let header = response
        .headers()
        .get("x-trace-id")
        .expect("trace id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.text().await.unwrap(), "acme");
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /baggage");
    assert_ne!(span.trace_id, TRACE);
    assert_eq!(span.parent_span_id, None);
    assert_eq!(header, span.trace_id);
    assert_eq!(header.len(), 32);
    assert!(header
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_path_has_no_span_and_no_metrics() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    for _ in 0..3 {
        let response = http_get(
            format!("http://{addr}/health"),
            &[("traceparent", &format!("00-{TRACE}-{PARENT}-01"))],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-trace-id").is_none());
    }
    // Something that is not excluded, so the capture is known to be working.
    http_get(format!("http://{addr}/users/1"), &[]).await;
    let spans = capture.spans();
    let names: Vec<&str> = server_spans(&spans)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["GET /users/{id}"]);
    let health: Vec<_> = capture
        .metrics()
        .into_iter()
        .filter(|p| {
            p.component == COMPONENT
                && p.attributes
                    .iter()
                    .any(|(k, v)| k == "http.route" && v == "/health")
        })
        .collect();
    assert!(health.is_empty(), "metrics for /health: {health:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_spans_and_logs_are_children_of_the_server_span() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let response = http_get(format!("http://{addr}/users/5"), &[]).await;
    assert_eq!(response.status(), 200);
    let server = only_server_span(&capture);
    let inner = capture.span("load_user").expect("the handler's span");
    assert_eq!(inner.trace_id, server.trace_id);
    assert_eq!(
        inner.parent_span_id.as_deref(),
        Some(server.span_id.as_str())
    );
    for message in ["loading user", "after yield", "tracing event in handler"] {
        let log = capture
            .log(message)
            .unwrap_or_else(|| panic!("no log {message:?}"));
        assert_eq!(
            log.trace_id.as_deref(),
            Some(server.trace_id.as_str()),
            "{message}"
        );
        assert_eq!(
            log.span_id.as_deref(),
            Some(server.span_id.as_str()),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_histogram_has_the_buckets_and_the_attributes() {
    let capture = capture();
    let addr = serve(router(App::default())).await;
    let users = [
        ("http.request.method", "GET"),
        ("url.scheme", "http"),
        ("http.route", "/users/{id}"),
        ("http.response.status_code", "200"),
        ("network.protocol.version", "1.1"),
    ];
    let before = histogram(&capture, &users).map_or(0, |(count, _)| count);
    for id in 0..3 {
        let response = http_get(format!("http://{addr}/users/{id}"), &[]).await;
        assert_eq!(response.status(), 200);
    }
    let (count, bounds) = histogram(&capture, &users).expect("a point for /users/{id}");
    assert_eq!(count, before + 3);
    assert_eq!(bounds, BUCKETS);
    let points = capture.metrics();
    let duration = points
        .iter()
        .find(|p| p.component == COMPONENT && p.name == DURATION)
        .expect("duration");
    assert_eq!(duration.unit, "s");
    let active_point = points
        .iter()
        .find(|p| p.component == COMPONENT && p.name == ACTIVE)
        .expect("active requests");
    assert_eq!(active_point.unit, "{request}");
    assert_eq!(active(&capture, "GET"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_request_is_not_left_active() {
    let capture = capture();
    let app = App::default();
    let addr = serve(router(app.clone())).await;
    assert_eq!(active(&capture, "GET"), 0.0);
    let cancelled = [
        ("http.request.method", "GET"),
        ("url.scheme", "http"),
        ("http.route", "/slow"),
        ("network.protocol.version", "1.1"),
        ("error.type", "cancelled"),
    ];
    let before = histogram(&capture, &cancelled).map_or(0, |(count, _)| count);

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    tokio::time::timeout(Duration::from_secs(10), app.slow_started.notified())
        .await
        .expect("the handler started");
    assert_eq!(active(&capture, "GET"), 1.0, "the request is active");
    drop(stream); // the client goes away while the handler sleeps

    let deadline = Instant::now() + Duration::from_secs(10);
    while active(&capture, "GET") != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the cancelled request stays active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /slow");
    assert_eq!(attr(&span, "error.type"), s("cancelled"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert!(matches!(span.status, Status::Error { .. }));
    let (count, _) = histogram(&capture, &cancelled).expect("the cancelled request is timed");
    assert_eq!(count, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_huge_headers_do_not_break_requests() {
    let capture = capture();
    let addr = serve(router(App::default())).await;

    let mut request = b"GET /users/9 HTTP/1.1\r\nHost: [::1\r\nUser-Agent: bad \xff\xfe bytes\r\n\
X-Forwarded-For: not-an-ip\r\nForwarded: for\r\nX-Forwarded-Proto: \xff\r\n\
traceparent: \xff\xff\r\nConnection: close\r\n\r\n"
        .to_vec();
    let answer = raw(addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET /users/{id}");
    assert_eq!(
        attr(&span, "user_agent.original"),
        s("bad \u{FFFD}\u{FFFD} bytes")
    );
    assert_eq!(attr(&span, "server.address"), None);
    assert_eq!(attr(&span, "client.address"), s("127.0.0.1"));
    assert_eq!(attr(&span, "url.scheme"), s("http"));
    assert_eq!(span.parent_span_id, None);

    let capture = {
        drop(capture);
        self::capture()
    };
    let huge = "x".repeat(60 * 1024);
    request = format!(
        "GET /users/10?{huge} HTTP/1.1\r\nHost: {huge}\r\nUser-Agent: {huge}\r\n\
X-Forwarded-For: {huge}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let answer = raw(addr, &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    let span = only_server_span(&capture);
    for key in ["user_agent.original", "server.address"] {
        let value = attr(&span, key)
            .unwrap_or_else(|| panic!("no {key}"))
            .to_string();
        assert!(value.len() <= 1024, "{key} is {} bytes", value.len());
        assert!(value.starts_with("xxx"), "{key} = {value}");
    }
    assert_eq!(attr(&span, "url.path"), s("/users/10"));
}

/// A tower service that routes inside: the route comes back in the response's extensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_from_extensions_name_the_span() {
    let capture = capture();
    let inner = tower::service_fn(|req: http::Request<String>| async move {
        let mut response = http::Response::new(String::new());
        if req.uri().path().starts_with("/orders/") {
            response
                .extensions_mut()
                .insert(HttpRoute::new("/orders/{id}"));
        }
        Ok::<_, std::convert::Infallible>(response)
    });
    let service = tower::Layer::layer(&HttpServerLayer::new(), inner);

    let request = http::Request::post("/orders/77")
        .body(String::new())
        .unwrap();
    service.clone().oneshot(request).await.unwrap();
    let span = only_server_span(&capture);
    assert_eq!(span.name, "POST /orders/{id}");
    assert_eq!(attr(&span, "http.route"), s("/orders/{id}"));
    assert_eq!(attr(&span, "url.path"), s("/orders/77"));

    // Known before the call: from the request's extensions.
    let capture = {
        drop(capture);
        self::capture()
    };
    let mut request = http::Request::delete("/carts/3")
        .body(String::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(HttpRoute::new("/carts/{id}"));
    service.clone().oneshot(request).await.unwrap();
    let span = only_server_span(&capture);
    assert_eq!(span.name, "DELETE /carts/{id}");
    assert_eq!(attr(&span, "http.route"), s("/carts/{id}"));

    // Neither: the method alone.
    let capture = {
        drop(capture);
        self::capture()
    };
    let request = http::Request::get("/elsewhere")
        .body(String::new())
        .unwrap();
    service.oneshot(request).await.unwrap();
    let span = only_server_span(&capture);
    assert_eq!(span.name, "GET");
    assert_eq!(attr(&span, "http.route"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_service_errors_are_recorded() {
    let capture = capture();
    let failing = tower::service_fn(|_: http::Request<()>| async {
        Err::<http::Response<()>, _>(std::io::Error::other("disk on fire"))
    });
    let service = tower::Layer::layer(&HttpServerLayer::new().component("errors.io"), failing);
    let request = http::Request::put("/files/1").body(()).unwrap();
    assert!(service.oneshot(request).await.is_err());
    let span = only_server_span(&capture);
    assert_eq!(span.component, "errors.io");
    assert_eq!(attr(&span, "error.type"), s("std::io::error::Error"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert!(matches!(span.status, Status::Error { .. }));
    let point = capture.point(
        "errors.io",
        DURATION,
        &[
            ("http.request.method", "PUT"),
            ("url.scheme", "http"),
            ("network.protocol.version", "1.1"),
            ("error.type", "std::io::error::Error"),
        ],
    );
    assert!(
        matches!(point, Some(PointValue::Histogram { count: 1, .. })),
        "{point:?}"
    );

    let capture = {
        drop(capture);
        self::capture()
    };
    let boxed = tower::service_fn(|_: http::Request<()>| async {
        Err::<http::Response<()>, tower::BoxError>("opaque".into())
    });
    let service = tower::Layer::layer(&HttpServerLayer::new(), boxed);
    let request = http::Request::get("/x").body(()).unwrap();
    assert!(service.oneshot(request).await.is_err());
    let span = only_server_span(&capture);
    assert_eq!(attr(&span, "error.type"), s("_OTHER"));
}

/// Telemetry never configured: requests pass through untouched, and a received trace context
/// still reaches the handler and comes back in the header.
#[test]
fn without_telemetry_requests_pass_and_the_trace_goes_through() {
    if support::in_parent(
        "without_telemetry_requests_pass_and_the_trace_goes_through",
        &[],
    ) {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route(
                "/trace",
                get(|| async { unitel::current_trace_id().unwrap_or_default() }),
            )
            .layer(HttpServerLayer::new().trace_id_header(HeaderName::from_static("x-trace-id")));
        let addr = serve(app).await;

        let response = http_get(
            format!("http://{addr}/trace"),
            &[("traceparent", &format!("00-{TRACE}-{PARENT}-01"))],
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers().get("x-trace-id").map(|v| v.as_bytes()),
            Some(TRACE.as_bytes())
        );
        assert_eq!(response.text().await.unwrap(), TRACE);

        let response = http_get(format!("http://{addr}/trace"), &[]).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-trace-id").is_none());
        assert_eq!(response.text().await.unwrap(), "");
    });
}
