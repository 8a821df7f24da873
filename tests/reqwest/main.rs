//! The reqwest adapter over real HTTP on loopback: an in-process axum server (routes answering
//! 200, 404, 500 and never, echoing the trace headers it received) asked through
//! `instrument_reqwest` and `HttpClientMiddleware`, read back through `unitel::testing::capture`.
//! Also the error paths (a refused connection, a timeout, a dropped request), the redaction of
//! `url.full`, and telemetry off and `OTEL_PROPAGATORS` in child processes.

#[path = "../support/mod.rs"]
mod support;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use opentelemetry::Value;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use unitel::testing::{capture, Capture, CapturedSpan, PointValue};
use unitel::{get_telemetry, HttpClientMiddleware, SpanKind, Status, TraceContext};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const COMPONENT: &str = "http.client";
const DURATION: &str = "http.client.request.duration";
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Every attribute the middleware may set; anything else on a client span is a leak.
const ALLOWED: [&str; 9] = [
    "http.request.method",
    "http.request.method_original",
    "server.address",
    "server.port",
    "url.full",
    "url.scheme",
    "http.response.status_code",
    "network.protocol.version",
    "error.type",
];

fn router() -> Router {
    Router::new()
        .route("/ok", any(echo))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "too late"
            }),
        )
}

/// Answers with the trace headers (and `Authorization`) it received, as JSON.
async fn echo(headers: HeaderMap) -> String {
    let mut seen = serde_json::Map::new();
    for name in ["traceparent", "tracestate", "baggage", "authorization"] {
        let values: Vec<serde_json::Value> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned().into())
            .collect();
        if !values.is_empty() {
            seen.insert(name.to_owned(), values.into());
        }
    }
    serde_json::Value::Object(seen).to_string()
}

async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router()).await;
    });
    addr
}

/// The headers the echo route received, by name (each present name with one value).
async fn echoed(response: reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    body.as_object()
        .expect("an object")
        .iter()
        .map(|(name, values)| {
            let values = values.as_array().expect("an array");
            assert_eq!(values.len(), 1, "{name} sent {} times", values.len());
            (name.clone(), values[0].as_str().expect("text").to_owned())
        })
        .collect()
}

fn client() -> ClientWithMiddleware {
    unitel::instrument_reqwest(reqwest::Client::new())
}

fn s(value: &str) -> Option<Value> {
    Some(Value::from(value.to_owned()))
}

fn attr(span: &CapturedSpan, key: &str) -> Option<Value> {
    span.attr(key).cloned()
}

/// The one CLIENT span of the test.
fn only_client_span(capture: &Capture) -> CapturedSpan {
    let spans = capture.spans();
    let client: Vec<&CapturedSpan> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(
        client.len(),
        1,
        "client spans: {:?}",
        client.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let span = client[0].clone();
    support::assert_attributes_within(&span, &ALLOWED);
    span
}

/// The attributes every request to `addr` has, on the span and the metric.
fn base(addr: SocketAddr, method: &str) -> Vec<(&'static str, String)> {
    vec![
        ("http.request.method", method.to_owned()),
        ("server.address", "127.0.0.1".to_owned()),
        ("server.port", addr.port().to_string()),
        ("url.scheme", "http".to_owned()),
    ]
}

/// Asserts that `http.client.request.duration` (on `component`) has one point with exactly
/// `attrs`, the convention's buckets and `count` values; returns the sum.
fn assert_duration(
    capture: &Capture,
    component: &str,
    attrs: &[(&'static str, String)],
    count: u64,
) -> f64 {
    let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match capture.point(component, DURATION, &attrs) {
        Some(PointValue::Histogram {
            count: got,
            sum,
            bounds,
            ..
        }) => {
            assert_eq!(got, count, "{DURATION} count for {attrs:?}");
            assert_eq!(bounds, BUCKETS);
            let unit = capture
                .metrics()
                .into_iter()
                .find(|p| p.name == DURATION)
                .map(|p| p.unit);
            assert_eq!(unit.as_deref(), Some("s"));
            sum
        }
        other => panic!(
            "no {DURATION} point with {attrs:?}: {other:?}; points: {:#?}",
            capture
                .metrics()
                .into_iter()
                .filter(|p| p.name == DURATION)
                .collect::<Vec<_>>()
        ),
    }
}

/// Asserts that none of `secrets` appears in any exported span, JSON line or metric point
/// (`support::assert_no_secret`), and that a client span, its record and its duration were
/// among them.
fn assert_nowhere(capture: &Capture, secrets: &[&str]) {
    let spans = format!("{:?}", capture.spans());
    assert!(spans.contains("url.full"), "no client span to search");
    assert!(
        capture.raw_lines().iter().any(|l| l.contains("url.full")),
        "no client span record among the lines to search"
    );
    assert!(
        format!("{:?}", capture.metrics()).contains(DURATION),
        "no metric to search"
    );
    support::assert_no_secret(capture, secrets);
}

/// The error status every failed request gets: no URL, no address in its description.
fn assert_error_status(span: &CapturedSpan, addr: SocketAddr) {
    let Status::Error { description } = &span.status else {
        panic!("{} status {:?}, not an error", span.name, span.status);
    };
    for leak in ["http", "127.0.0.1", &addr.port().to_string()] {
        assert!(
            !description.contains(leak),
            "status description {description:?} holds {leak:?}"
        );
    }
    assert!(span.events.is_empty(), "events: {:?}", span.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_has_the_client_attributes_and_the_caller_as_parent() {
    let capture = capture();
    let addr = serve().await;
    let client = client();
    let url = format!("http://{addr}/ok?page=2#top");
    let telemetry = get_telemetry("caller");
    let response = telemetry
        .span("caller_op")
        .instrument(
            client
                .get(&url)
                .header("authorization", "Bearer s3cr3t-bearer")
                // Left from another trace: it must not travel with this span's traceparent.
                .header("tracestate", "stale=1")
                .send(),
        )
        .await
        .expect("request");
    let echoed = echoed(response).await;
    assert_eq!(
        echoed.get("authorization").map(String::as_str),
        Some("Bearer s3cr3t-bearer")
    );

    let span = only_client_span(&capture);
    let parent = capture.span("caller_op").expect("caller span");
    assert_eq!(span.name, "GET");
    assert_eq!(span.component, COMPONENT);
    assert_eq!(span.status, Status::Unset);
    assert_eq!(span.trace_id, parent.trace_id);
    assert_eq!(span.parent_span_id.as_ref(), Some(&parent.span_id));
    assert_eq!(attr(&span, "http.request.method"), s("GET"));
    assert_eq!(attr(&span, "http.request.method_original"), None);
    assert_eq!(attr(&span, "server.address"), s("127.0.0.1"));
    assert_eq!(
        attr(&span, "server.port"),
        Some(Value::I64(i64::from(addr.port())))
    );
    assert_eq!(attr(&span, "url.full"), s(&url));
    assert_eq!(attr(&span, "url.scheme"), s("http"));
    assert_eq!(
        attr(&span, "http.response.status_code"),
        Some(Value::I64(200))
    );
    assert_eq!(attr(&span, "network.protocol.version"), s("1.1"));
    assert_eq!(attr(&span, "error.type"), None);

    // The server was told that the CLIENT span is its parent.
    assert_eq!(
        echoed.get("traceparent"),
        Some(&format!("00-{}-{}-01", span.trace_id, span.span_id))
    );
    assert_eq!(echoed.get("tracestate"), None);
    assert_eq!(echoed.get("baggage"), None);

    let mut attrs = base(addr, "GET");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    let sum = assert_duration(&capture, COMPONENT, &attrs, 1);
    assert!(sum > 0.0 && sum < 10.0, "duration {sum}");
    assert_nowhere(&capture, &["s3cr3t-bearer", "Bearer"]);
}

/// Logs a line while the request passes, for the correlation check.
struct LogInside;

impl Middleware for LogInside {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        req: reqwest::Request,
        extensions: &'life1 mut http::Extensions,
        next: Next<'life2>,
    ) -> Pin<
        Box<
            dyn Future<Output = reqwest_middleware::Result<reqwest::Response>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            get_telemetry("inner").log_info("inside the chain");
            tokio::task::yield_now().await;
            let response = next.run(req, extensions).await;
            get_telemetry("inner").log_info("after the response");
            response
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_span_is_the_parent_and_inner_logs_correlate() {
    let capture = capture();
    let addr = serve().await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(HttpClientMiddleware::new().component("inventory-client"))
        .with(LogInside)
        .build();
    let telemetry = get_telemetry("caller");
    let echoed = {
        let _parent = telemetry.trace("guarded_op");
        let response = client
            .post(format!("http://{addr}/ok"))
            .body("payload")
            .send()
            .await
            .expect("request");
        echoed(response).await
    };

    let span = only_client_span(&capture);
    let parent = capture.span("guarded_op").expect("caller span");
    assert_eq!(span.name, "POST");
    assert_eq!(span.component, "inventory-client");
    assert_eq!(span.parent_span_id.as_ref(), Some(&parent.span_id));
    assert_eq!(span.trace_id, parent.trace_id);
    assert_eq!(
        echoed.get("traceparent"),
        Some(&format!("00-{}-{}-01", span.trace_id, span.span_id))
    );
    for message in ["inside the chain", "after the response"] {
        let log = capture.log(message).expect(message);
        assert_eq!(log.trace_id.as_ref(), Some(&span.trace_id), "{message}");
        assert_eq!(log.span_id.as_ref(), Some(&span.span_id), "{message}");
    }

    let mut attrs = base(addr, "POST");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    assert_duration(&capture, "inventory-client", &attrs, 1);
    let port = ("server.port".to_owned(), addr.port().to_string());
    assert!(
        !capture
            .metrics()
            .iter()
            .any(|p| p.component == COMPONENT && p.attributes.contains(&port)),
        "recorded on the default component too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_errors_are_errors_with_their_status_code() {
    let capture = capture();
    let addr = serve().await;
    let client = client();
    for (path, code) in [("missing", 404), ("fail", 500)] {
        let response = client
            .get(format!("http://{addr}/{path}"))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), code);
    }
    let spans: Vec<CapturedSpan> = capture
        .spans()
        .into_iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(spans.len(), 2);
    for (span, code) in spans.iter().zip(["404", "500"]) {
        assert_eq!(span.name, "GET");
        // The status code says it all: no description.
        assert_eq!(span.status, Status::error(""), "{code}");
        assert_eq!(attr(span, "error.type"), s(code));
        assert_eq!(
            attr(span, "http.response.status_code"),
            Some(Value::I64(code.parse().unwrap()))
        );
        assert_eq!(attr(span, "network.protocol.version"), s("1.1"));
        assert_eq!(span.parent_span_id, None);

        let mut attrs = base(addr, "GET");
        attrs.push(("http.response.status_code", code.to_owned()));
        attrs.push(("network.protocol.version", "1.1".to_owned()));
        attrs.push(("error.type", code.to_owned()));
        assert_duration(&capture, COMPONENT, &attrs, 1);
    }
}

/// More attribute sets than a thread keeps bound: each is still counted on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_attribute_sets_are_each_counted() {
    let capture = capture();
    let addr = serve().await;
    let client = client();
    let codes: Vec<u16> = (200..=239).chain(400..=409).collect();
    for round in 0..2 {
        for &code in &codes {
            if round == 1 && code % 3 != 0 {
                continue;
            }
            let response = client
                .get(format!("http://{addr}/status/{code}"))
                .send()
                .await
                .expect("a response");
            assert_eq!(response.status().as_u16(), code);
        }
    }
    for &code in &codes {
        let mut attrs = base(addr, "GET");
        attrs.push(("http.response.status_code", code.to_string()));
        attrs.push(("network.protocol.version", "1.1".to_owned()));
        if code >= 400 {
            attrs.push(("error.type", code.to_string()));
        }
        assert_duration(
            &capture,
            COMPONENT,
            &attrs,
            if code % 3 == 0 { 2 } else { 1 },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_connect_error_and_no_url_is_recorded() {
    let capture = capture();
    // A port nobody listens on any more.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let url = format!("http://{addr}/gone?sig=s3cr3t-sig&page=1");
    let error = client().get(&url).send().await.expect_err("nobody listens");
    // reqwest's own text names the URL, secret and all: it must not be what is recorded.
    assert!(
        format!("{error} {error:?}").contains("s3cr3t-sig"),
        "reqwest's error no longer names the URL: {error:?}"
    );

    let span = only_client_span(&capture);
    assert_eq!(span.name, "GET");
    assert_eq!(attr(&span, "error.type"), s("connect"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert_eq!(attr(&span, "network.protocol.version"), None);
    assert_eq!(
        attr(&span, "url.full"),
        s(&format!("http://{addr}/gone?sig=REDACTED&page=1"))
    );
    assert_error_status(&span, addr);

    let mut attrs = base(addr, "GET");
    attrs.push(("error.type", "connect".to_owned()));
    assert_duration(&capture, COMPONENT, &attrs, 1);
    // hyper's own TRACE line says "Connection refused" (with the address, not the URL); the
    // span says neither.
    let recorded = format!("{span:?}");
    assert!(
        !recorded.contains("refused") && !recorded.contains("tcp connect"),
        "{recorded}"
    );
    assert_nowhere(&capture, &["s3cr3t-sig", "error sending request"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_a_timeout() {
    let capture = capture();
    let addr = serve().await;
    let error = client()
        .get(format!("http://{addr}/slow"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .expect_err("too slow");
    assert!(error.is_timeout(), "{error:?}");

    let span = only_client_span(&capture);
    assert_eq!(attr(&span, "error.type"), s("timeout"));
    assert_eq!(attr(&span, "http.response.status_code"), None);
    assert_error_status(&span, addr);

    let mut attrs = base(addr, "GET");
    attrs.push(("error.type", "timeout".to_owned()));
    let sum = assert_duration(&capture, COMPONENT, &attrs, 1);
    assert!((0.2..5.0).contains(&sum), "duration {sum}");
    assert_nowhere(&capture, &["operation timed out"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_request_is_cancelled() {
    let capture = capture();
    let addr = serve().await;
    let client = client();
    let telemetry = get_telemetry("caller");
    let outcome = telemetry
        .span("impatient")
        .instrument(tokio::time::timeout(
            Duration::from_millis(150),
            client.get(format!("http://{addr}/slow")).send(),
        ))
        .await;
    assert!(outcome.is_err(), "the request finished: {outcome:?}");

    let span = only_client_span(&capture);
    let parent = capture.span("impatient").expect("caller span");
    assert_eq!(span.parent_span_id.as_ref(), Some(&parent.span_id));
    assert_eq!(attr(&span, "error.type"), s("cancelled"));
    assert_error_status(&span, addr);

    let mut attrs = base(addr, "GET");
    attrs.push(("error.type", "cancelled".to_owned()));
    let sum = assert_duration(&capture, COMPONENT, &attrs, 1);
    assert!((0.1..5.0).contains(&sum), "duration {sum}");
}

/// One signed query value per listed key, each a distinct secret.
const SIGNED: [(&str, &str); 9] = [
    ("X-Amz-Signature", "SECRETamzsig"),
    ("X-Amz-Credential", "SECRETamzcred"),
    ("X-Amz-Security-Token", "SECRETamztoken"),
    ("AWSAccessKeyId", "SECRETawskey"),
    ("Signature", "SECRETsignature"),
    ("sig", "SECRETazuresig"),
    ("X-Goog-Signature", "SECRETgoogsig"),
    // Written otherwise, the same keys.
    ("X%2DAmz%2DSignature", "SECRETencoded"),
    ("x-amz-security-token", "SECRETlower"),
];

/// `keep=visible&<every signed pair>&after=kept#frag`, as sent and as recorded.
fn signed_query() -> (String, String) {
    let sent: Vec<String> = SIGNED.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let recorded: Vec<String> = SIGNED
        .iter()
        .map(|(k, _)| format!("{k}=REDACTED"))
        .collect();
    (
        format!("keep=visible&{}&after=kept#frag", sent.join("&")),
        format!("keep=visible&{}&after=kept#frag", recorded.join("&")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_signed_query_values_and_auth_headers_never_reach_the_telemetry() {
    let capture = capture();
    let addr = serve().await;
    let (query, redacted) = signed_query();
    let telemetry = get_telemetry("caller");
    // The request builder moves the URL's user and password into `Authorization: Basic`.
    let response = telemetry
        .span("signed_download")
        .instrument(
            client()
                .get(format!("http://user:pa55word@{addr}/ok?{query}"))
                .send(),
        )
        .await
        .expect("request");
    let echoed = echoed(response).await;
    assert_eq!(
        echoed.get("authorization").map(String::as_str),
        Some("Basic dXNlcjpwYTU1d29yZA==")
    );
    let response = client()
        .get(format!("http://{addr}/ok?{query}"))
        .bearer_auth("s3cr3t-bearer")
        .header("x-api-key", "s3cr3t-api-key")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    telemetry.log_info("both requests done");

    let spans: Vec<CapturedSpan> = capture
        .spans()
        .into_iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(
            attr(span, "url.full"),
            s(&format!("http://{addr}/ok?{redacted}"))
        );
    }
    let mut secrets: Vec<&str> = SIGNED.iter().map(|(_, v)| *v).collect();
    secrets.extend([
        "SECRET",
        "pa55word",
        "dXNlcjpwYTU1d29yZA",
        "user:",
        "s3cr3t-bearer",
        "s3cr3t-api-key",
        "Basic",
        "Bearer",
    ]);
    assert!(capture.log("both requests done").is_some());
    // Every line, hyper's and reqwest's own DEBUG and TRACE lines included.
    assert_nowhere(&capture, &secrets);
    let mut attrs = base(addr, "GET");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    assert_duration(&capture, COMPONENT, &attrs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_of_a_hand_built_request_is_redacted() {
    let capture = capture();
    let addr = serve().await;
    let (query, redacted) = signed_query();
    // A request built by hand keeps the userinfo in its URL.
    let url = format!("http://user:pa55word@{addr}/ok?{query}");
    let request = reqwest::Request::new(reqwest::Method::GET, url.parse().expect("a URL"));
    let response = client().execute(request).await.expect("request");
    assert_eq!(response.status(), 200);

    let span = only_client_span(&capture);
    assert_eq!(
        attr(&span, "url.full"),
        s(&format!("http://REDACTED:REDACTED@{addr}/ok?{redacted}"))
    );
    let mut secrets: Vec<&str> = SIGNED.iter().map(|(_, v)| *v).collect();
    secrets.extend(["SECRET", "pa55word", "user:"]);
    // hyper-util's connection pool names its key, userinfo and all, in DEBUG and TRACE lines
    // of its own ("pooling idle connection for (\"http\", user:pa55word@..)"); the capture
    // logs everything at `trace`, and unitel's log layer redacts the userinfo in them.
    let pool_lines = capture
        .lines()
        .into_iter()
        .filter(|line| {
            line["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("hyper_util::client::legacy::pool"))
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("REDACTED:REDACTED@"))
        })
        .count();
    assert!(
        pool_lines > 0,
        "hyper-util's pool lines were seen, redacted"
    );
    assert_nowhere(&capture, &secrets);
    let mut attrs = base(addr, "GET");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    assert_duration(&capture, COMPONENT, &attrs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_is_other_and_the_span_is_named_http() {
    let capture = capture();
    let addr = serve().await;
    let method = reqwest::Method::from_bytes(b"PURGE").unwrap();
    let response = client()
        .request(method, format!("http://{addr}/ok"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    let span = only_client_span(&capture);
    assert_eq!(span.name, "HTTP");
    assert_eq!(attr(&span, "http.request.method"), s("_OTHER"));
    assert_eq!(attr(&span, "http.request.method_original"), s("PURGE"));
    let mut attrs = base(addr, "_OTHER");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    assert_duration(&capture, COMPONENT, &attrs, 1);
    assert!(
        !format!("{:?}", capture.metrics()).contains("PURGE"),
        "the original method is on the metric"
    );
}

/// The context the test "received": trace, parent, tracestate and baggage.
fn received() -> TraceContext {
    let mut headers = HashMap::new();
    headers.insert("traceparent".to_owned(), format!("00-{TRACE}-{PARENT}-01"));
    headers.insert("tracestate".to_owned(), "vendor=abc".to_owned());
    headers.insert("baggage".to_owned(), "tenant=acme".to_owned());
    unitel::extract_trace_context(&headers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_trace_state_and_baggage_go_on_and_old_headers_are_replaced() {
    let capture = capture();
    let addr = serve().await;
    let response = received()
        .instrument(
            client()
                .get(format!("http://{addr}/ok"))
                // A stale context on the request is replaced, not doubled.
                .header(
                    "traceparent",
                    "00-11111111111111111111111111111111-2222222222222222-01",
                )
                .header("baggage", "stale=1")
                .send(),
        )
        .await
        .expect("request");
    let echoed = echoed(response).await;

    let span = only_client_span(&capture);
    assert_eq!(span.trace_id, TRACE);
    assert_eq!(span.parent_span_id.as_deref(), Some(PARENT));
    assert_eq!(span.trace_state, "vendor=abc");
    assert_eq!(
        echoed.get("traceparent"),
        Some(&format!("00-{TRACE}-{}-01", span.span_id))
    );
    assert_eq!(
        echoed.get("tracestate").map(String::as_str),
        Some("vendor=abc")
    );
    assert_eq!(
        echoed.get("baggage").map(String::as_str),
        Some("tenant=acme")
    );
    let mut attrs = base(addr, "GET");
    attrs.push(("http.response.status_code", "200".to_owned()));
    attrs.push(("network.protocol.version", "1.1".to_owned()));
    assert_duration(&capture, COMPONENT, &attrs, 1);
}

/// `OTEL_PROPAGATORS=baggage`: only the baggage is sent.
#[test]
fn configured_propagators_decide_what_is_sent() {
    if support::in_parent(
        "configured_propagators_decide_what_is_sent",
        &[("OTEL_PROPAGATORS", "baggage")],
    ) {
        return;
    }
    let _guard =
        unitel::configure_telemetry(unitel::TelemetryConfig::from_env().with_console(false))
            .expect("configure");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = serve().await;
        let telemetry = get_telemetry("caller");
        let _span = telemetry.trace("caller_op");
        let _baggage = unitel::set_baggage("tenant", "acme");
        let response = client()
            .get(format!("http://{addr}/ok"))
            .send()
            .await
            .expect("request");
        let echoed = echoed(response).await;
        assert_eq!(echoed.get("traceparent"), None);
        assert_eq!(echoed.get("tracestate"), None);
        assert_eq!(
            echoed.get("baggage").map(String::as_str),
            Some("tenant=acme")
        );
    });
}

/// Telemetry never configured: requests work as with the bare client, nothing is added to
/// them, and a received context is passed on as it came.
#[test]
fn without_telemetry_requests_pass_and_a_received_context_goes_on() {
    if support::in_parent(
        "without_telemetry_requests_pass_and_a_received_context_goes_on",
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
        let addr = serve().await;
        let client = client();

        let response = client
            .get(format!("http://{addr}/ok"))
            .send()
            .await
            .expect("request");
        assert!(echoed(response).await.is_empty(), "headers were added");

        let response = received()
            .instrument(client.get(format!("http://{addr}/ok")).send())
            .await
            .expect("request");
        let echoed = echoed(response).await;
        assert_eq!(
            echoed.get("traceparent"),
            Some(&format!("00-{TRACE}-{PARENT}-01"))
        );
        assert_eq!(
            echoed.get("tracestate").map(String::as_str),
            Some("vendor=abc")
        );
        assert_eq!(
            echoed.get("baggage").map(String::as_str),
            Some("tenant=acme")
        );

        let response = client
            .get(format!("http://{addr}/missing"))
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 404);
        let error = client
            .get(format!("http://{addr}/slow"))
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .expect_err("too slow");
        assert!(error.is_timeout());
    });
}
