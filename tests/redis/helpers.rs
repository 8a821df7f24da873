//! What the redis suite's tests share: the server's address, unique names, span and metric
//! assertions, the secret search, and a TCP proxy for fault injection.

use opentelemetry::Value as OtelValue;
use redis::aio::MultiplexedConnection;
use redis::ConnectionAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use unitel::testing::{Capture, CapturedSpan, PointValue};
use unitel::{SpanKind, Status};

pub(crate) const DURATION: &str = "db.client.operation.duration";
pub(crate) const BUCKETS: [f64; 9] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];

/// Every attribute the adapter may set; anything else on a redis span is a leak.
pub(crate) const ALLOWED: [&str; 9] = [
    "db.system.name",
    "db.namespace",
    "db.operation.name",
    "db.query.text",
    "db.operation.batch.size",
    "db.response.status_code",
    "error.type",
    "server.address",
    "server.port",
];

pub(crate) use crate::support::redis_url;

pub(crate) fn client() -> redis::Client {
    redis::Client::open(redis_url()).expect("UNITEL_TEST_REDIS_URL is a redis URL")
}

/// The host and port of the test server.
pub(crate) fn host_port() -> (String, u16) {
    match client().get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        other => panic!("UNITEL_TEST_REDIS_URL must be a redis:// TCP URL, not {other:?}"),
    }
}

/// A client of database `db` on the test server, with `userinfo` (`user:pw@`) if given.
pub(crate) fn client_for(userinfo: &str, db: u8) -> redis::Client {
    let (host, port) = host_port();
    redis::Client::open(format!("redis://{userinfo}{host}:{port}/{db}")).expect("redis URL")
}

/// A string no other test (or run) uses.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "unitel-test:{tag}:{}:{nanos}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) async fn multiplexed(client: &redis::Client) -> MultiplexedConnection {
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to UNITEL_TEST_REDIS_URL")
}

/// The redis spans, oldest first.
pub(crate) fn redis_spans(cap: &Capture) -> Vec<CapturedSpan> {
    cap.spans()
        .into_iter()
        .filter(|s| s.attr("db.system.name").is_some())
        .collect()
}

pub(crate) fn names(spans: &[CapturedSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

pub(crate) fn string_attr(span: &CapturedSpan, key: &str) -> Option<String> {
    match span.attr(key)? {
        OtelValue::String(s) => Some(s.as_str().to_owned()),
        other => panic!("{key} of {} is not a string: {other:?}", span.name),
    }
}

pub(crate) fn int_attr(span: &CapturedSpan, key: &str) -> Option<i64> {
    match span.attr(key)? {
        OtelValue::I64(v) => Some(*v),
        other => panic!("{key} of {} is not an integer: {other:?}", span.name),
    }
}

/// What every redis span carries: kind, parent, the target attributes, no stray attribute.
pub(crate) fn assert_redis_span(
    span: &CapturedSpan,
    parent: &CapturedSpan,
    component: &str,
    db: &str,
) {
    let (host, port) = host_port();
    assert_eq!(span.kind, SpanKind::Client, "{}", span.name);
    assert_eq!(span.component, component, "{}", span.name);
    crate::support::assert_child_of(span, parent);
    assert_eq!(
        string_attr(span, "db.system.name").as_deref(),
        Some("redis")
    );
    assert_eq!(string_attr(span, "db.namespace").as_deref(), Some(db));
    assert_eq!(string_attr(span, "server.address"), Some(host));
    assert_eq!(int_attr(span, "server.port"), Some(i64::from(port)));
    assert!(span.attr("db.query.summary").is_none(), "{}", span.name);
    crate::support::assert_attributes_within(span, &ALLOWED);
}

/// A span that succeeded: no status, no error attributes.
pub(crate) fn assert_ok_span(span: &CapturedSpan) {
    assert_eq!(span.status, Status::Unset, "{}", span.name);
    assert!(span.attr("error.type").is_none(), "{}", span.name);
    assert!(
        span.attr("db.response.status_code").is_none(),
        "{}",
        span.name
    );
}

/// A span that failed with `error_type` (and `status_code` when the server answered).
pub(crate) fn assert_error_span(span: &CapturedSpan, error_type: &str, status_code: Option<&str>) {
    match &span.status {
        Status::Error { description } => assert_eq!(description, error_type, "{}", span.name),
        other => panic!("{} should have an error status, has {other:?}", span.name),
    }
    assert_eq!(string_attr(span, "error.type").as_deref(), Some(error_type));
    assert_eq!(
        string_attr(span, "db.response.status_code").as_deref(),
        status_code
    );
}

/// The duration histogram point of `component` with the target's attributes, `operation`
/// and `extra`; asserts its buckets and returns its count.
pub(crate) fn duration_count(
    cap: &Capture,
    component: &str,
    db: &str,
    operation: &str,
    extra: &[(&str, &str)],
) -> u64 {
    let (host, port) = host_port();
    let port = port.to_string();
    let mut attrs = vec![
        ("db.system.name", "redis"),
        ("db.namespace", db),
        ("db.operation.name", operation),
        ("server.address", host.as_str()),
        ("server.port", port.as_str()),
    ];
    attrs.extend_from_slice(extra);
    match cap.point(component, DURATION, &attrs) {
        Some(PointValue::Histogram { count, bounds, .. }) => {
            assert_eq!(bounds, BUCKETS, "{DURATION} buckets");
            count
        }
        Some(other) => panic!("{DURATION} is not a histogram: {other:?}"),
        None => 0,
    }
}

/// The unit of every duration point, and that no point has `db.query.text` or an attribute
/// outside the span's.
pub(crate) fn assert_duration_points(cap: &Capture) {
    let points: Vec<_> = cap
        .metrics()
        .into_iter()
        .filter(|p| p.name == DURATION)
        .collect();
    assert!(!points.is_empty(), "no {DURATION} point");
    for point in points {
        assert_eq!(point.unit, "s");
        for (key, _) in &point.attributes {
            assert!(
                ALLOWED.contains(&key.as_str()) && key != "db.query.text",
                "unexpected metric attribute {key}"
            );
        }
    }
}

/// Kills the connection whose `CLIENT ID` is `id`, from another connection.
pub(crate) fn kill_client(id: i64) {
    let mut admin = client().get_connection().expect("admin connection");
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut admin)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1, "killed the connection");
}

/// A TCP proxy to the test server on a port of its own, for fault injection: `shut` closes
/// its connections and its listener, so that the port refuses connections from then on.
pub(crate) struct Proxy {
    pub(crate) port: u16,
    accept: tokio::task::JoinHandle<()>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub(crate) async fn start() -> Proxy {
        let (host, port) = host_port();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let proxy_port = listener.local_addr().expect("proxy address").port();
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let links2 = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut downstream, _)) = listener.accept().await {
                let Ok(mut upstream) = tokio::net::TcpStream::connect((host.as_str(), port)).await
                else {
                    return;
                };
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
                });
                links2.lock().expect("links").push(link);
            }
        });
        Proxy {
            port: proxy_port,
            accept,
            links,
        }
    }

    pub(crate) async fn shut(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let links = std::mem::take(&mut *self.links.lock().expect("links"));
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }
}

pub(crate) fn proxy_port_of(client: &redis::Client) -> u16 {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(_, port) => *port,
        other => panic!("{other:?}"),
    }
}
