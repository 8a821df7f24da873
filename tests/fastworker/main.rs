//! End to end: examples/fastworker.rs (seed 000, FastWorker) against the real components.
//!
//! - Served (`--serve`), it pushes OTLP to the real collector (rotel) while a real Prometheus
//!   server scrapes its `/metrics` every second: each of seed 000's four PromQL queries answers
//!   with finite data, and the `fastworker_workers_active` and `fastworker_queue_size` gauges
//!   are there. At the collector, every `worker.execute_task` is the child of the
//!   `client.submit_task` of the same task, in its trace, with FastWorker's attributes. After
//!   SIGTERM it exits 0, and its final metric values (only exported by the shutdown's flush)
//!   reach the collector, equal to the counts it printed.
//! - The demo run (no servers) ends on its own and names a failed task's trace, whose two spans
//!   form a tree in the JSON log file.
//! - `FASTWORKER_TELEMETRY_ENABLED=false` turns everything off: no endpoint, no trace, nothing
//!   at the collector.

#[path = "../otlp/rotel.rs"]
mod rotel;
#[path = "../support/mod.rs"]
mod support;

use rotel::{attr, Received, Rotel, SpanRec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::prometheus::PrometheusServer;
use support::Running;

// ----- the example -----

/// Starts the example in `dir` with `args` and the environment `env`, the OTEL_* and
/// FASTWORKER_* variables of this process (and RUST_LOG) left out.
fn start_example(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Running {
    let mut command = Command::new(support::example_binary_named("fastworker"));
    command.current_dir(dir).args(args);
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("OTEL_") || name.starts_with("FASTWORKER_") || name == "RUST_LOG" {
            command.env_remove(&var);
        }
    }
    for (k, v) in env {
        command.env(k, v);
    }
    Running::spawn("examples/fastworker.rs", &mut command)
}

/// The trace id on the example's `trace <32 hex> (<task id> ...)` line, and the task's id.
fn trace_line(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("trace ")?;
    let (trace_id, rest) = rest.split_once(' ')?;
    let task = rest.strip_prefix('(')?.split_whitespace().next()?;
    Some((trace_id.to_owned(), task.to_owned()))
}

/// The counts on the example's last line: `stopped: tasks submitted N, completed C, failed F`.
fn final_counts(output: &str) -> [u64; 3] {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("stopped: tasks submitted "))
        .unwrap_or_else(|| panic!("no final counts in:\n{output}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers
        .try_into()
        .unwrap_or_else(|n| panic!("three counts wanted in {line:?}, got {n:?}"))
}

// ----- a real Prometheus server -----

/// `promql`'s instant vector as (labels, value) samples.
fn query(
    prometheus: &PrometheusServer,
    promql: &str,
) -> Result<Vec<(serde_json::Value, f64)>, String> {
    let json = prometheus.query(promql)?;
    if json["data"]["resultType"] != "vector" {
        return Err(format!("{promql}: not a vector: {json}"));
    }
    Ok(json["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), value)
        })
        .collect())
}

/// The finite values of every query, once each has at least one (40 s at most), while the
/// server and the example keep running.
fn finite_answers<'q>(
    prometheus: &mut PrometheusServer,
    example: &mut Running,
    queries: &[&'q str],
) -> BTreeMap<&'q str, Vec<f64>> {
    let started = Instant::now();
    let mut answers = BTreeMap::new();
    let mut last = BTreeMap::new();
    loop {
        prometheus.assert_running();
        example.assert_running();
        for &q in queries {
            if answers.contains_key(q) {
                continue;
            }
            match query(prometheus, q) {
                Ok(samples) => {
                    let finite: Vec<f64> = samples
                        .iter()
                        .map(|(_, v)| *v)
                        .filter(|v| v.is_finite())
                        .collect();
                    if finite.is_empty() {
                        last.insert(q, format!("{samples:?}"));
                    } else {
                        answers.insert(q, finite);
                    }
                }
                Err(e) => {
                    last.insert(q, e);
                }
            }
        }
        if answers.len() == queries.len() {
            return answers;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "prometheus has no finite answer to some of seed 000's queries within 40 s\n\
             last answers: {last:#?}\n--- prometheus log\n{}\n--- example output\n{}",
            prometheus.log(),
            example.output()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

// ----- the collector -----

fn span_of_task<'a>(spans: &[&'a SpanRec], name: &str, task: &str) -> Option<&'a SpanRec> {
    let id = format!("Str({task})");
    spans
        .iter()
        .copied()
        .find(|s| s.name == name && attr(&s.attrs, "task.id") == Some(id.as_str()))
}

/// The sum over series of each series' latest (largest: the counters are cumulative) value of
/// `metric`, and how many series there are.
fn counter_total(received: &Received, service: &str, metric: &str) -> (u64, usize) {
    let mut series: BTreeMap<String, f64> = BTreeMap::new();
    for point in received.points_of(service, metric) {
        let key = format!("{:?}", point.attrs);
        let value = point.value.unwrap_or_default();
        let slot = series.entry(key).or_insert(value);
        *slot = slot.max(value);
    }
    (series.values().sum::<f64>() as u64, series.len())
}

// ----- the tests -----

#[test]
fn seed_queries_answer_one_trace_per_task_and_sigterm_flushes() {
    let rotel = Rotel::get();
    let service = support::unique("fastworker");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut example = start_example(
        dir.path(),
        &["--serve"],
        &[
            ("OTEL_SERVICE_NAME", service.clone()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", rotel.http),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            // Port 0: a free port, printed by the example. OTEL_METRIC_EXPORT_INTERVAL is left
            // at its 60 s, so the metrics reach the collector only by the shutdown's flush.
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0".into()),
        ],
    );
    let metrics: SocketAddr = example.wait_for(|l| {
        l.strip_prefix("metrics: http://")?
            .strip_suffix("/metrics")?
            .parse()
            .ok()
    });
    let (trace_id, task) = example.wait_for(trace_line);
    assert_eq!(trace_id.len(), 32, "not a trace id: {trace_id}");

    // A real Prometheus scrapes it; seed 000's four queries (over one minute: the scrape
    // interval is one second) each answer with finite data.
    let mut prometheus = PrometheusServer::start(metrics, "1s", &[]);
    let submitted = "rate(fastworker_tasks_submitted_total[1m])";
    let failed = "rate(fastworker_tasks_failed_total[1m])";
    let average =
        "rate(fastworker_tasks_duration_sum[1m]) / rate(fastworker_tasks_duration_count[1m])";
    let p95 = "histogram_quantile(0.95, rate(fastworker_tasks_duration_bucket[1m]))";
    let answers = finite_answers(
        &mut prometheus,
        &mut example,
        &[submitted, failed, average, p95],
    );
    assert!(
        answers[submitted].iter().any(|&v| v > 0.0),
        "no task submitted lately: {:?}",
        answers[submitted]
    );
    // The example's tasks run 20..400 ms: averages and the 95th percentile fall in there
    // (the percentile interpolates within a bucket, at most the 0.5 s bound).
    assert!(
        answers[average].iter().all(|&v| v > 0.015 && v < 0.45),
        "average task duration outside 0.015..0.45 s: {:?}",
        answers[average]
    );
    assert!(
        answers[p95].iter().all(|&v| v > 0.0 && v <= 0.5),
        "p95 task duration outside (0, 0.5] s: {:?}",
        answers[p95]
    );
    // Failures keep coming while it serves: some failure rate turns positive.
    let started = Instant::now();
    loop {
        let rates = query(&prometheus, failed).unwrap_or_default();
        if rates.iter().any(|(_, v)| *v > 0.0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the failure rate never turned positive: {rates:?}\n{}",
            example.output()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The gauges: workers running a task, and a queue size per priority.
    let active = query(&prometheus, r#"fastworker_workers_active{queue="default"}"#)
        .expect("query fastworker_workers_active");
    assert_eq!(active.len(), 1, "fastworker_workers_active: {active:?}");
    assert!(
        active[0].1 >= 0.0 && active[0].1 <= 3.0,
        "three workers at most: {active:?}"
    );
    let sizes = query(&prometheus, r#"fastworker_queue_size{queue="default"}"#)
        .expect("query fastworker_queue_size");
    let mut priorities: Vec<&str> = sizes
        .iter()
        .filter_map(|(labels, _)| labels["priority"].as_str())
        .collect();
    priorities.sort_unstable();
    assert_eq!(
        priorities,
        ["critical", "high", "low", "normal"],
        "fastworker_queue_size by priority: {sizes:?}"
    );

    // At the collector: the printed task's two spans, in its trace, parent and child.
    let (submit, execute) = rotel.wait_for(Duration::from_secs(30), |r| {
        let spans = r.spans_of(&service);
        let submit = span_of_task(&spans, "client.submit_task", &task)?;
        let execute = span_of_task(&spans, "worker.execute_task", &task)?;
        Some((submit.clone(), execute.clone()))
    });
    assert_eq!(submit.trace_id, trace_id, "{submit:#?}");
    assert_eq!(execute.trace_id, trace_id, "{execute:#?}");
    assert_eq!(
        execute.parent_id, submit.span_id,
        "worker.execute_task's parent is client.submit_task"
    );
    assert_eq!(submit.kind, "SPAN_KIND_PRODUCER");
    assert_eq!(execute.kind, "SPAN_KIND_CONSUMER");
    for span in [&submit, &execute] {
        assert_eq!(
            attr(&span.attrs, "task.name"),
            Some("Str(generate_report)"),
            "{span:#?}"
        );
        assert!(
            attr(&span.attrs, "task.priority").is_some_and(|p| [
                "Str(critical)",
                "Str(high)",
                "Str(normal)",
                "Str(low)"
            ]
            .contains(&p)),
            "{span:#?}"
        );
    }
    assert_eq!(
        attr(&submit.attrs, "task.priority"),
        attr(&execute.attrs, "task.priority")
    );
    assert!(
        attr(&execute.attrs, "worker.id").is_some_and(|w| w.starts_with("Str(worker-")),
        "{execute:#?}"
    );
    // The printed task is a failed one: its span says so, with the cause.
    assert_eq!(execute.status_code, "STATUS_CODE_ERROR", "{execute:#?}");
    assert!(
        execute
            .events
            .iter()
            .any(|(name, attrs)| name == "exception"
                && attrs
                    .iter()
                    .any(|(_, v)| v.contains("database did not answer"))),
        "no exception event with the cause: {execute:#?}"
    );

    // Every task that ran so far: the worker's span is the child of the submit span of the
    // same task, in its trace.
    let received = rotel::parse(&rotel.output());
    let spans = received.spans_of(&service);
    let executed: Vec<&&SpanRec> = spans
        .iter()
        .filter(|s| s.name == "worker.execute_task")
        .collect();
    assert!(executed.len() >= 9, "the batch's spans: {}", executed.len());
    for execute in executed {
        let task = attr(&execute.attrs, "task.id").expect("task.id");
        let task = task.trim_start_matches("Str(").trim_end_matches(')');
        let submit = span_of_task(&spans, "client.submit_task", task)
            .unwrap_or_else(|| panic!("no client.submit_task for {task}"));
        assert_eq!(
            (&execute.trace_id, &execute.parent_id),
            (&submit.trace_id, &submit.span_id),
            "{task}: the worker's span is not the submit span's child"
        );
    }

    // SIGTERM: it stops, flushes and exits 0.
    let (status, output) = example.terminate();
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(
        !output.contains("not fully flushed"),
        "the shutdown lost telemetry:\n{output}"
    );
    let [submitted, completed, failed] = final_counts(&output);
    assert_eq!(submitted, completed + failed, "tasks left unrun:\n{output}");
    assert!(failed > 0, "no task failed:\n{output}");

    // The final values reached the collector: with a 60 s export interval, only the shutdown's
    // flush exported them.
    let want = [submitted, completed, failed];
    let started = Instant::now();
    let received = loop {
        let received = rotel::parse(&rotel.output());
        let got = [
            "fastworker.tasks.submitted",
            "fastworker.tasks.completed",
            "fastworker.tasks.failed",
        ]
        .map(|metric| counter_total(&received, &service, metric).0);
        if got == want {
            break received;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the collector has submitted/completed/failed {got:?}, the example counted {want:?}:\n{output}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let points = received.points_of(&service, "fastworker.tasks.duration");
    let runs: u64 = points.iter().filter_map(|p| p.count).sum();
    assert!(
        runs >= completed + failed,
        "fastworker.tasks.duration counts {runs} runs, {} ended",
        completed + failed
    );
    for gauge in ["fastworker.workers.active", "fastworker.queue.size"] {
        assert!(
            !received.points_of(&service, gauge).is_empty(),
            "{gauge} did not reach the collector"
        );
    }
}

#[test]
fn demo_run_ends_by_itself_and_the_log_file_holds_the_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = start_example(
        dir.path(),
        &[],
        &[("OTEL_EXPORTER_PROMETHEUS_PORT", "0".into())],
    );
    let (status, output) = example.finish();
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(
        output.contains("no OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{output}"
    );
    assert!(output.contains("metrics: http://127.0.0.1:"), "{output}");
    assert!(
        output.contains("9 tasks ran on 3 workers: 7 completed, 2 failed"),
        "{output}"
    );
    let (trace_id, task) = output
        .lines()
        .find_map(trace_line)
        .unwrap_or_else(|| panic!("no trace line:\n{output}"));

    // Client and worker console lines of that task carry its trace.
    let tag = format!("[trace:{trace_id}]");
    let console = support::console_lines(&output);
    for line in ["client: task submitted", "worker: task failed"] {
        assert!(
            console
                .iter()
                .any(|l| l.contains(line) && l.contains(&task) && l.contains(&tag)),
            "no {line:?} line of {task} with {tag}:\n{output}"
        );
    }

    // The JSON log file: the trace's two span records, parent and child, as the seed's
    // service name.
    let records = support::read_records(&dir.path().join("logs"));
    let spans: Vec<_> = records
        .iter()
        .filter_map(|r| r.as_span())
        .filter(|s| s.trace_id.to_string() == trace_id)
        .collect();
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span record in trace {trace_id}: {spans:#?}"))
    };
    let (submit, execute) = (named("client.submit_task"), named("worker.execute_task"));
    assert_eq!(submit.parent_span_id, None);
    assert_eq!(execute.parent_span_id, Some(submit.span_id));
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert!(
        output.contains(&format!("logs/fastworker.log --trace {trace_id}")),
        "the command that shows the trace:\n{output}"
    );
    assert_eq!(
        submit.service.as_deref(),
        Some("fastworker"),
        "the seed's default service name"
    );
    let attribute = |name: &str| execute.attributes.get(name).and_then(|v| v.as_str());
    assert_eq!(attribute("task.id"), Some(task.as_str()), "{execute:#?}");
    assert_eq!(attribute("task.name"), Some("generate_report"));
    assert!(
        attribute("worker.id").is_some_and(|w| w.starts_with("worker-")),
        "{execute:#?}"
    );
}

#[test]
fn fastworker_telemetry_enabled_false_turns_telemetry_off() {
    let rotel = Rotel::get();
    let service = support::unique("fastworker-off");
    let dir = tempfile::tempdir().expect("tempdir");
    let example = start_example(
        dir.path(),
        &[],
        &[
            ("FASTWORKER_TELEMETRY_ENABLED", "false".into()),
            ("OTEL_SERVICE_NAME", service.clone()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", rotel.http),
            ),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0".into()),
        ],
    );
    let (status, output) = example.finish();
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(output.contains("telemetry off"), "{output}");
    // The tasks still ran.
    assert!(
        output.contains("9 tasks ran on 3 workers: 7 completed, 2 failed"),
        "{output}"
    );
    assert!(
        !output.contains("metrics: "),
        "an endpoint served:\n{output}"
    );
    assert!(
        output.lines().all(|l| trace_line(l).is_none()) && !output.contains("[trace:"),
        "a trace was recorded:\n{output}"
    );
    assert!(
        support::console_lines(&output).is_empty(),
        "log lines were written:\n{output}"
    );
    // Nothing reached the collector. It prints what it receives within milliseconds; give it
    // a moment, as an exporter that sent at exit would have been flushed by then.
    std::thread::sleep(Duration::from_secs(1));
    let received = rotel::parse(&rotel.output());
    assert!(
        received.spans_of(&service).is_empty()
            && received.logs_of(&service).is_empty()
            && !received.metrics.iter().any(|p| p.service == service),
        "telemetry reached the collector although it was off"
    );
}
