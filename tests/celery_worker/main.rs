//! End to end: examples/celery_worker.rs (seed 002, Ghostworks' Celery worker) against real
//! Redis and the real collector (rotel). Every task crosses a Redis list, and the worker's
//! spans continue the trace of the API request that enqueued it: `POST ..` (server) →
//! `apply_async/<task>` (producer, with the `LPUSH` under it) → `run/<task>` (consumer) → the
//! seed's span (`email.send_verification`, ...), each with `task.id`, `task.name` and `queue`;
//! the two failing tasks' spans have an error status and an error log. The worker's `/metrics`
//! exposes the seed's names exactly — `celery_tasks_processed_total{name,status,queue}` and
//! `celery_task_duration_seconds` — with exact counts, and no payload value (an email address,
//! a token) reaches the collector. Without `REDIS_URL` the demo run uses an in-process queue,
//! exits 0, and its log file holds the same trace links.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Received, Rotel, SpanRec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The example's demo run, in the order it enqueues: (task, queue, its own span, fails).
const DEMO: [(&str, &str, &str, bool); 6] = [
    (
        "send_verification_email",
        "email",
        "email.send_verification",
        false,
    ),
    (
        "send_verification_email",
        "email",
        "email.send_verification",
        true,
    ),
    (
        "send_password_reset_email",
        "email",
        "email.send_password_reset",
        false,
    ),
    (
        "send_workspace_invitation",
        "email",
        "email.send_workspace_invitation",
        false,
    ),
    (
        "process_batch",
        "data_processing",
        "data.process_batch",
        false,
    ),
    ("export_data", "data_processing", "data.export", true),
];

/// Values of the example's task payloads: personal data and secrets, never to be recorded.
const PAYLOAD_VALUES: [&str; 8] = [
    "ada@users.ghostworks.test",
    "bounce@users.ghostworks.test",
    "grace@users.ghostworks.test",
    "users.ghostworks.test",
    "vt-7f3a91c2",
    "vt-0b44d8e1",
    "rt-52e0c6aa",
    "it-9d1f03b7",
];

/// A task the example says it queued: `queued <task> id=.. queue=.. trace=.. (<request>)`.
#[derive(Debug, Clone)]
struct Queued {
    task: String,
    id: String,
    queue: String,
    trace: String,
}

fn queued_tasks(lines: &[String]) -> Vec<Queued> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("queued "))
        .map(|rest| {
            let mut words = rest.split_whitespace();
            let task = words.next().unwrap_or_default().to_owned();
            let fields: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
            let field = |k: &str| {
                fields
                    .get(k)
                    .unwrap_or_else(|| panic!("no {k}= in {rest:?}"))
                    .to_string()
            };
            Queued {
                task,
                id: field("id"),
                queue: field("queue"),
                trace: field("trace"),
            }
        })
        .collect()
}

/// Starts the example serving in `dir`, with the variables it reads removed first and `env`
/// set; killed on drop if the test fails before it stops it.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> support::Running {
    let mut command = Command::new(support::example_binary_named("celery_worker"));
    command
        .arg("--serve")
        .current_dir(dir)
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_EXPORTER_PROMETHEUS_HOST")
        .env_remove("OTEL_METRICS_EXPORTER")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    support::Running::spawn("examples/celery_worker.rs", &mut command)
}

/// The samples of `metric` in the classic exposition: their labels and value.
fn samples(text: &str, metric: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (k, v) = pair.split_once("=\"")?;
                    Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

fn span_with<'a>(
    spans: &[&'a SpanRec],
    what: &str,
    pick: impl Fn(&SpanRec) -> bool,
) -> &'a SpanRec {
    let found: Vec<&&SpanRec> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(
        found.len(),
        1,
        "{what}: wanted one span, found {}: {found:#?}",
        found.len()
    );
    found[0]
}

fn str_attr<'a>(span: &'a SpanRec, key: &str) -> Option<&'a str> {
    attr(&span.attrs, key)
}

#[test]
fn tasks_cross_redis_in_the_request_trace_and_are_counted_under_the_seed_names() {
    let redis_url = support::redis_url();
    let rotel = Rotel::get();
    let service = support::unique("celery-worker");
    let prefix = format!("{service}:");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut worker = start(
        dir.path(),
        &[
            ("REDIS_URL", &redis_url),
            ("CELERY_QUEUE_PREFIX", &prefix),
            ("OTEL_SERVICE_NAME", &service),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://{}", rotel.http),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ],
    );

    // The demo tasks are queued and run before it says it serves.
    let mut lines = Vec::new();
    let metrics_addr = worker.wait_for(|line| {
        lines.push(line.to_owned());
        line.strip_prefix("serving Prometheus metrics on http://")
            .map(str::to_owned)
    });
    let output = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.starts_with("queue: Redis at ")
            && l.contains(&format!("{prefix}email"))
            && !l.contains("redis://")),
        "{output}"
    );
    assert!(
        lines.iter().any(|l| l == "6 tasks: 4 success, 2 failure"),
        "{output}"
    );
    let queued = queued_tasks(&lines);
    assert_eq!(queued.len(), DEMO.len(), "{output}");
    for (q, (task, queue, _, _)) in queued.iter().zip(DEMO) {
        assert_eq!(
            (q.task.as_str(), q.queue.as_str()),
            (task, queue),
            "{output}"
        );
        assert_eq!(q.trace.len(), 32, "{output}");
    }
    let metrics_addr: SocketAddr = metrics_addr
        .split_once("/metrics")
        .and_then(|(addr, _)| addr.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {output}"));

    // The queues were Redis lists, and the worker took every task from them.
    let mut redis = redis::Client::open(redis_url.as_str())
        .and_then(|c| c.get_connection())
        .expect("connect to UNITEL_TEST_REDIS_URL");
    for queue in ["email", "data_processing"] {
        let left: i64 = redis::cmd("LLEN")
            .arg(format!("{prefix}{queue}"))
            .query(&mut redis)
            .expect("LLEN");
        assert_eq!(left, 0, "{prefix}{queue} still holds tasks");
    }

    // /metrics: the seed's names and labels, exact counts.
    let scraped = support::http_get(metrics_addr, "/metrics", &[]).expect("scrape /metrics");
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    let text = scraped.body;
    assert!(
        text.contains("# TYPE celery_tasks_processed_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE celery_task_duration_seconds histogram\n"),
        "{text}"
    );
    assert!(
        !text.contains("celery_tasks_processed_total_total"),
        "{text}"
    );
    let processed = samples(&text, "celery_tasks_processed_total");
    let mut counts: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for (labels, value) in &processed {
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["name", "otel_scope_name", "queue", "status"],
            "{text}"
        );
        let key = (
            labels["name"].clone(),
            labels["status"].clone(),
            labels["queue"].clone(),
        );
        *counts.entry(key).or_default() += value;
    }
    let mut expected: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for (task, queue, _, fails) in DEMO {
        let status = if fails { "failure" } else { "success" };
        *expected
            .entry((task.into(), status.into(), queue.into()))
            .or_default() += 1.0;
    }
    assert_eq!(counts, expected, "{text}");
    let durations = samples(&text, "celery_task_duration_seconds_count");
    let tasks_timed: f64 = durations.iter().map(|(_, v)| v).sum();
    assert_eq!(tasks_timed, DEMO.len() as f64, "{text}");
    for (labels, _) in &durations {
        let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "otel_scope_name", "queue"], "{text}");
    }
    assert!(
        text.contains("celery_task_duration_seconds_bucket{name=\"process_batch\""),
        "{text}"
    );
    let emails = samples(&text, "email_tasks_total");
    let failed_emails: f64 = emails
        .iter()
        .filter(|(l, _)| l.get("success").map(String::as_str) == Some("false"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failed_emails, 1.0, "{text}");

    let (status, output) = worker.terminate();
    assert!(status.success(), "the example failed: {status}\n{output}");
    assert!(
        output.lines().any(|l| l.starts_with("stopping:")),
        "{output}"
    );

    // The collector: every task's chain of spans, in its request's trace.
    // (The example flushes everything before it exits: once its runs are in, all is.)
    let received: Received = rotel.wait_for(Duration::from_secs(20), |r| {
        let runs = r
            .spans_of(&service)
            .iter()
            .filter(|s| s.name.starts_with("run/"))
            .count();
        let counted = !r
            .points_of(&service, "celery_tasks_processed_total")
            .is_empty();
        (runs >= DEMO.len() && counted).then(|| rotel::parse(&rotel.output()))
    });
    let spans = received.spans_of(&service);
    for (q, (task, queue, own_span, fails)) in queued.iter().zip(DEMO) {
        let in_trace: Vec<&SpanRec> = spans
            .iter()
            .copied()
            .filter(|s| s.trace_id == q.trace)
            .collect();
        let request = span_with(&in_trace, "the request", |s| {
            s.kind == "SPAN_KIND_SERVER" && s.name.starts_with("POST /")
        });
        assert!(request.parent_id.is_empty(), "{request:#?}");
        let producer = span_with(&in_trace, "the producer", |s| {
            s.name == format!("apply_async/{task}")
        });
        let lpush = span_with(&in_trace, "the LPUSH", |s| s.name == "LPUSH");
        let run = span_with(&in_trace, "the run span", |s| {
            s.name == format!("run/{task}")
        });
        let own = span_with(&in_trace, own_span, |s| s.name == own_span);

        assert_eq!(producer.kind, "SPAN_KIND_PRODUCER");
        assert_eq!(producer.parent_id, request.span_id, "{producer:#?}");
        assert_eq!(lpush.kind, "SPAN_KIND_CLIENT");
        assert_eq!(lpush.parent_id, producer.span_id, "{lpush:#?}");
        assert_eq!(str_attr(lpush, "db.system.name"), Some("Str(redis)"));
        assert_eq!(run.kind, "SPAN_KIND_CONSUMER");
        assert_eq!(run.parent_id, producer.span_id, "{run:#?}");
        assert_eq!(own.parent_id, run.span_id, "{own:#?}");
        for span in [producer, run, own] {
            assert_eq!(str_attr(span, "task.id"), Some(&*format!("Str({})", q.id)));
            assert_eq!(str_attr(span, "task.name"), Some(&*format!("Str({task})")));
            assert_eq!(str_attr(span, "queue"), Some(&*format!("Str({queue})")));
        }
        for span in [run, own] {
            let failed = span.status_code == "STATUS_CODE_ERROR";
            assert_eq!(failed, fails, "{task} {}: {span:#?}", span.name);
        }
        if queue == "email" {
            assert!(str_attr(own, "email.type").is_some(), "{own:#?}");
            assert!(str_attr(own, "user.id").is_some(), "{own:#?}");
            let success = format!("Bool({})", !fails);
            assert_eq!(str_attr(own, "email.success"), Some(&*success), "{own:#?}");
        }
        // A failing task's error log is in its trace, with its cause.
        let error_logs = received
            .logs_of(&service)
            .into_iter()
            .filter(|l| l.trace_id == q.trace && l.severity_text == "ERROR")
            .count();
        assert_eq!(error_logs, usize::from(fails), "{task} in {}", q.trace);
    }
    // The BRPOPs that took the tasks are Redis spans of the worker, outside the tasks' traces.
    assert!(spans.iter().any(|s| s.name == "BRPOP"), "no BRPOP span");

    // The counter arrives by OTLP under the seed's name, with the seed's labels.
    let points = received.points_of(&service, "celery_tasks_processed_total");
    assert!(
        points.iter().any(|p| attr(&p.attrs, "name").is_some()
            && attr(&p.attrs, "status") == Some("Str(failure)")
            && attr(&p.attrs, "queue").is_some()),
        "{points:#?}"
    );

    // No payload value anywhere in what the collector received.
    let everything = rotel.output();
    for value in PAYLOAD_VALUES {
        assert!(
            !everything.contains(value),
            "the payload value {value:?} reached the collector"
        );
    }
}

#[test]
fn default_run_without_redis_uses_an_in_process_queue_and_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(support::example_binary_named("celery_worker"))
        .current_dir(dir.path())
        .env_remove("REDIS_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_PROMETHEUS_PORT")
        .env_remove("OTEL_EXPORTER_PROMETHEUS_HOST")
        .env_remove("OTEL_METRICS_EXPORTER")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run examples/celery_worker.rs");
    let stdout = support::assert_ok(&out);
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("queue: in-process")),
        "{stdout}"
    );
    assert!(
        lines.iter().any(|l| l == "6 tasks: 4 success, 2 failure"),
        "{stdout}"
    );
    // The exposition it prints: the seed's names, without a Prometheus endpoint to scrape.
    assert!(
        stdout.contains(
            "celery_tasks_processed_total{name=\"export_data\",queue=\"data_processing\",status=\"failure\""
        ),
        "{stdout}"
    );
    let queued = queued_tasks(&lines);
    assert_eq!(queued.len(), DEMO.len(), "{stdout}");

    // The log file holds each task's chain in its request's trace.
    let records = support::read_records(&dir.path().join("logs"));
    let spans: Vec<&unitel::logfile::SpanRecord> =
        records.iter().filter_map(|r| r.as_span()).collect();
    for (q, (task, _, own_span, fails)) in queued.iter().zip(DEMO) {
        let named = |name: &str| {
            spans
                .iter()
                .find(|s| s.trace_id.to_string() == q.trace && s.name == name)
                .copied()
                .unwrap_or_else(|| panic!("no {name} in trace {}", q.trace))
        };
        let producer = named(&format!("apply_async/{task}"));
        let run = named(&format!("run/{task}"));
        let own = named(own_span);
        assert_eq!(run.parent_span_id, Some(producer.span_id));
        assert_eq!(own.parent_span_id, Some(run.span_id));
        assert_eq!(
            matches!(run.status, unitel::Status::Error { .. }),
            fails,
            "{run:#?}"
        );
    }
    // The command it ends with shows the failed verification email's trace.
    let bounced = &queued[1];
    let last = lines.last().map(String::as_str).unwrap_or_default();
    assert!(
        last.ends_with(&format!(
            "logs logs/celery_worker.log --trace {}",
            bounced.trace
        )),
        "{last}"
    );

    // No payload value in its output or its log file.
    let file =
        std::fs::read_to_string(dir.path().join("logs/celery_worker.log")).expect("the log file");
    for value in PAYLOAD_VALUES {
        assert!(!stdout.contains(value), "{value:?} printed:\n{stdout}");
        assert!(!file.contains(value), "{value:?} in the log file");
    }
}
