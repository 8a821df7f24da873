//! End to end: examples/temponest.rs (seed 001) as a real pair of services. Serving, against
//! real PostgreSQL (`UNITEL_TEST_POSTGRES_URL`) and Redis (`UNITEL_TEST_REDIS_URL`), pushing
//! OTLP to the real collector (rotel): a request with a `traceparent` gives ONE trace at the
//! collector with the agents service's SERVER span, its `custom-operation` span, the sqlx
//! CLIENT span (PostgreSQL, literals as `?`), the redis CLIENT spans (a miss: `GET` and
//! `SETEX`), the reqwest CLIENT span and, as its child, the SERVER span of the auth service (a
//! second process with its own `service.name`), plus both services' log lines in that trace; a
//! second request hits the cache (no SQL). Batches and metrics are held back (60 s), so that
//! everything reaching rotel after SIGTERM proves the shutdown flushed both processes, which
//! exit 0; `http.server.request.duration` and `custom.requests` arrive with their counts. The
//! database password and the cached value appear nowhere: not at rotel, not in the example's
//! output. Without DATABASE_URL and REDIS_URL, the default demo run exits 0 and prints the
//! spans of its three requests, across both services, in one trace.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Received, Rotel, SpanRec};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use unitel::logfile::{Record, SpanRecord};
use unitel::SpanKind;

const AGENTS: &str = "temponest-agents";
const AUTH: &str = "temponest-auth";
/// What the example caches in Redis: it must never be recorded.
const CACHED_VALUE: &str = "planner,coder,reviewer";

/// `n` random bytes as lowercase hex (a fresh trace or span id per run: the collector's output
/// is shared with every other test and run).
fn random_hex(bytes: usize) -> String {
    let mut out = String::new();
    while out.len() < bytes * 2 {
        let n = RandomState::new().hash_one(Instant::now());
        out.push_str(&format!("{n:016x}"));
    }
    out.truncate(bytes * 2);
    out
}

/// Starts the example binary with `args` and `env`, with every variable it reads removed
/// first. Killed on drop whatever happens (its auth child then sees its stdin close and stops
/// too).
fn start(args: &[&str], env: &[(&str, String)]) -> support::Running {
    let mut command = Command::new(support::example_binary_named("temponest"));
    command.args(args);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "AUTH_SERVICE_URL",
        "ENVIRONMENT",
        "TELEMETRY_ENABLED",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    for (var, _) in std::env::vars().filter(|(k, _)| k.starts_with("OTEL_")) {
        command.env_remove(var);
    }
    for (var, value) in env {
        command.env(var, value);
    }
    support::Running::spawn("examples/temponest.rs", &mut command)
}

/// What rotel printed after `from` (bytes of its output before this test's example started):
/// the example's service names are fixed, so earlier runs must not count.
fn received_since(rotel: &Rotel, from: usize) -> (String, Received) {
    let output = rotel.output();
    let text = output.get(from..).unwrap_or_default().to_owned();
    let received = rotel::parse(&text);
    (text, received)
}

fn in_trace<'a>(received: &'a Received, trace: &str) -> Vec<&'a SpanRec> {
    received
        .spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .collect()
}

#[track_caller]
fn one<'a>(spans: &[&'a SpanRec], service: &str, name: &str) -> &'a SpanRec {
    let found: Vec<&&SpanRec> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {name:?} of {service} wanted, in {:?}",
        names(spans)
    );
    found[0]
}

fn names(spans: &[&SpanRec]) -> Vec<String> {
    spans
        .iter()
        .map(|s| format!("{}/{}", s.service, s.name))
        .collect()
}

fn db_spans<'a>(spans: &[&'a SpanRec], system: &str) -> Vec<&'a SpanRec> {
    let system = format!("Str({system})");
    spans
        .iter()
        .copied()
        .filter(|s| attr(&s.attrs, "db.system.name") == Some(system.as_str()))
        .collect()
}

/// The last point of `metric` for `service` whose attributes include `with`.
fn last_point<'a>(
    received: &'a Received,
    service: &str,
    metric: &str,
    with: (&str, &str),
) -> &'a rotel::PointRec {
    received
        .points_of(service, metric)
        .into_iter()
        .rev()
        .find(|p| p.attrs.iter().any(|(k, v)| k == with.0 && v == with.1))
        .unwrap_or_else(|| panic!("no {metric} point of {service} with {with:?}"))
}

#[test]
fn one_trace_across_agents_postgres_redis_and_auth_flushed_on_sigterm() {
    let (pg, redis, password) = (
        support::postgres_url(),
        support::redis_url(),
        support::postgres_password(),
    );
    let rotel = Rotel::get();
    let from = rotel.output().len();

    let mut example = start(
        &["--serve", "--listen", "127.0.0.1:0"],
        &[
            ("DATABASE_URL", pg),
            ("REDIS_URL", redis),
            // The seed's docker-compose: production, OTLP to the collector.
            ("ENVIRONMENT", "production".to_owned()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", rotel.http),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
            // Nothing is pushed before shutdown: what arrives was flushed by it.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "60000".to_owned()),
        ],
    );
    let addr: SocketAddr = example
        .wait_for_prefix("temponest-agents listening on http://")
        .trim()
        .parse()
        .expect("the agents service's address");

    // A miss (the example empties the cache entry at start-up), then a hit.
    let (trace, parent) = (random_hex(16), random_hex(8));
    let traceparent = format!("00-{trace}-{parent}-01");
    let first = support::http_get(addr, "/api/custom", &[("traceparent", &traceparent)])
        .expect("GET /api/custom");
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.body.trim(),
        format!("3 active agents for 2 users; trace {trace}")
    );
    assert_eq!(first.header("x-trace-id"), Some(trace.as_str()));
    let (hit_trace, hit_parent) = (random_hex(16), random_hex(8));
    let hit = support::http_get(
        addr,
        "/api/custom",
        &[("traceparent", &format!("00-{hit_trace}-{hit_parent}-01"))],
    )
    .expect("GET /api/custom again");
    assert_eq!(hit.status, 200, "{}", hit.body);
    // Not traced, not measured.
    assert_eq!(
        support::http_get(addr, "/health", &[])
            .map(|r| r.status)
            .ok(),
        Some(200)
    );

    let (_, before) = received_since(rotel, from);
    assert!(
        in_trace(&before, &trace).is_empty(),
        "spans were exported before shutdown: the flush would prove nothing"
    );

    let (status, output) = example.terminate();
    assert!(status.success(), "the example failed: {status}\n{output}");
    assert!(output.contains("stopped"), "{output}");
    assert!(
        !output.contains("[stderr]"),
        "the example wrote on stderr:\n{output}"
    );

    // Everything arrives through the shutdown flush of both processes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, received) = loop {
        let (text, received) = received_since(rotel, from);
        let spans = in_trace(&received, &trace);
        let complete = spans.iter().any(|s| s.service == AUTH)
            && spans.iter().any(|s| s.name == "GET /api/custom")
            && !received
                .points_of(AGENTS, "http.server.request.duration")
                .is_empty()
            && !received
                .points_of(AUTH, "http.server.request.duration")
                .is_empty()
            && !received.points_of(AGENTS, "custom.requests").is_empty()
            && in_trace(&received, &hit_trace).len() >= 5;
        if complete {
            break (text, received);
        }
        assert!(
            Instant::now() < deadline,
            "rotel did not get the flushed data; trace {trace} has {:?}; output:\n{output}",
            names(&spans)
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // ONE trace: the caller's, and every span in it hangs from the caller's span.
    let spans = in_trace(&received, &trace);
    let ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for span in &spans {
        assert!(
            span.parent_id == parent || ids.contains(&span.parent_id.as_str()),
            "{}/{} is not in the tree of the request: parent {}",
            span.service,
            span.name,
            span.parent_id
        );
    }

    let server = one(&spans, AGENTS, "GET /api/custom");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(server.parent_id, parent);
    assert_eq!(attr(&server.attrs, "http.route"), Some("Str(/api/custom)"));
    assert_eq!(
        attr(&server.attrs, "http.response.status_code"),
        Some("Int(200)")
    );

    let operation = one(&spans, AGENTS, "custom-operation");
    assert_eq!(operation.parent_id, server.span_id);
    assert_eq!(
        attr(&operation.attrs, "custom.attribute"),
        Some("Str(value)")
    );
    assert_eq!(attr(&operation.attrs, "result.count"), Some("Int(3)"));

    // The database: PostgreSQL, the literal as `?`.
    let queries = db_spans(&spans, "postgresql");
    assert_eq!(
        queries.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["SELECT agents"]
    );
    let query = queries[0];
    assert_eq!(query.kind, "SPAN_KIND_CLIENT");
    assert_eq!(query.service, AGENTS);
    assert_eq!(query.parent_id, operation.span_id);
    assert_eq!(
        attr(&query.attrs, "db.query.text"),
        Some("Str(SELECT name FROM agents WHERE status = ? ORDER BY id)")
    );
    assert!(
        query.attrs.iter().all(|(_, v)| !v.contains("'active'")),
        "an SQL literal was recorded: {:?}",
        query.attrs
    );

    // The cache: a miss, so GET then SETEX, no value recorded.
    let commands = db_spans(&spans, "redis");
    assert_eq!(
        commands.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["GET", "SETEX"],
        "in {:?}",
        names(&spans)
    );
    for command in &commands {
        assert_eq!(command.kind, "SPAN_KIND_CLIENT");
        assert_eq!(command.service, AGENTS);
        assert_eq!(command.parent_id, operation.span_id);
        assert_eq!(attr(&command.attrs, "db.query.text"), None);
    }

    // The call to the auth service, and the auth service's span as its child.
    let calls: Vec<&&SpanRec> = spans
        .iter()
        .filter(|s| s.service == AGENTS && s.scope == "http.client")
        .collect();
    assert_eq!(calls.len(), 1, "one call to auth in {:?}", names(&spans));
    let call = calls[0];
    assert_eq!(call.parent_id, operation.span_id);
    let auth_url = attr(&call.attrs, "url.full").expect("url.full");
    assert!(
        auth_url.starts_with("Str(http://127.0.0.1:") && auth_url.ends_with("/api/v1/users)"),
        "{auth_url}"
    );
    let callee = one(&spans, AUTH, "GET /api/v1/users");
    assert_eq!(callee.kind, "SPAN_KIND_SERVER");
    assert_eq!(callee.parent_id, call.span_id);
    assert_eq!(
        attr(&callee.attrs, "http.route"),
        Some("Str(/api/v1/users)")
    );
    assert_eq!(
        spans.len(),
        7,
        "exactly the request's spans: {:?}",
        names(&spans)
    );

    // The logs of both services carry the trace too.
    for (service, message) in [
        (AGENTS, "cache miss: reading the database"),
        (AUTH, "users listed"),
    ] {
        assert!(
            received
                .logs_of(service)
                .iter()
                .any(|l| l.trace_id == trace && l.body.contains(message)),
            "no log {message:?} of {service} in trace {trace}"
        );
    }

    // The second request hit the cache: a GET, no SQL, no SETEX.
    let hit_spans = in_trace(&received, &hit_trace);
    assert!(
        db_spans(&hit_spans, "postgresql").is_empty(),
        "{:?}",
        names(&hit_spans)
    );
    assert_eq!(
        db_spans(&hit_spans, "redis")
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["GET"]
    );
    one(&hit_spans, AUTH, "GET /api/v1/users");

    // The metrics, with the counts of this run (the health check is not measured).
    let agents_duration = last_point(
        &received,
        AGENTS,
        "http.server.request.duration",
        ("http.route", "Str(/api/custom)"),
    );
    assert_eq!(agents_duration.count, Some(2));
    assert_eq!(
        received
            .points_of(AGENTS, "http.server.request.duration")
            .len(),
        1
    );
    let auth_duration = last_point(
        &received,
        AUTH,
        "http.server.request.duration",
        ("http.route", "Str(/api/v1/users)"),
    );
    assert_eq!(auth_duration.count, Some(2));
    let custom = last_point(
        &received,
        AGENTS,
        "custom.requests",
        ("status", "Str(success)"),
    );
    assert_eq!(custom.value, Some(2.0));
    let db_duration = last_point(
        &received,
        AGENTS,
        "db.client.operation.duration",
        ("db.system.name", "Str(postgresql)"),
    );
    assert!(db_duration.count.is_some_and(|n| n >= 1));

    // No secret anywhere.
    for (what, haystack) in [("rotel's output", &text), ("the example's output", &output)] {
        assert!(
            !haystack.contains(&password),
            "the database password is in {what}"
        );
        assert!(
            !haystack.contains(CACHED_VALUE),
            "the cached value is in {what}"
        );
    }
}

#[test]
fn demo_without_servers_shows_one_trace_across_both_services() {
    let example = start(&[], &[]);
    let (status, output) = example.finish();
    assert!(status.success(), "the demo failed: {status}\n{output}");
    assert!(
        output.contains("database: SQLite in memory (DATABASE_URL is not set)"),
        "{output}"
    );
    assert!(
        output.contains("cache: none (REDIS_URL is not set)"),
        "{output}"
    );
    assert!(
        !output.contains("[stderr]"),
        "the demo wrote on stderr:\n{output}"
    );
    let trace = output
        .lines()
        .find_map(|l| l.strip_prefix("trace ")?.split(':').next())
        .unwrap_or_else(|| panic!("no trace id printed:\n{output}"))
        .to_owned();
    assert_eq!(trace.len(), 32, "{trace}");

    // The development console: every span as a JSON span record, the auth process's included.
    let spans: Vec<SpanRecord> = output
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| match unitel::logfile::parse_line(l) {
            Ok(Record::Span(span)) => span,
            other => panic!("not a span record: {l}: {other:?}"),
        })
        .filter(|s| s.trace_id.to_string() == trace)
        .collect();
    let count = |service: &str, name: &str, kind: SpanKind| {
        spans
            .iter()
            .filter(|s| s.service.as_deref() == Some(service) && s.name == name && s.kind == kind)
            .count()
    };
    assert_eq!(count(AGENTS, "demo", SpanKind::Internal), 1);
    assert_eq!(count(AGENTS, "GET /api/custom", SpanKind::Server), 3);
    assert_eq!(count(AGENTS, "custom-operation", SpanKind::Internal), 3);
    assert_eq!(count(AGENTS, "SELECT agents", SpanKind::Client), 3);
    // Three calls to the agents service and three from it to auth.
    assert_eq!(count(AGENTS, "GET", SpanKind::Client), 6);
    assert_eq!(count(AUTH, "GET /api/v1/users", SpanKind::Server), 3);
    assert_eq!(
        spans.len(),
        19,
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    for query in spans.iter().filter(|s| s.name == "SELECT agents") {
        assert_eq!(
            query
                .attributes
                .get("db.system.name")
                .and_then(|v| v.as_str()),
            Some("sqlite")
        );
    }
    // One tree under the demo span.
    let ids: Vec<_> = spans.iter().map(|s| s.span_id).collect();
    for span in &spans {
        match span.parent_span_id {
            None => assert_eq!(span.name, "demo"),
            Some(parent) => assert!(ids.contains(&parent), "{} has no parent here", span.name),
        }
    }
    // The log lines carry it too, from both processes.
    let tagged = format!("[trace:{trace}]");
    assert_eq!(
        output
            .lines()
            .filter(|l| l.contains("auth: users listed") && l.contains(&tagged))
            .count(),
        3,
        "{output}"
    );
    assert!(!output.contains(CACHED_VALUE), "{output}");
}
