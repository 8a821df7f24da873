//! Prometheus pull: the `/metrics` endpoint and `prometheus_text()` expose the seed metrics under
//! their Prometheus names, promtool accepts the scrape even with hostile attribute keys or
//! counter names that collide once `_total` is added, the env-configured endpoint listens on
//! loopback, a taken port is a start-up error, and a real Prometheus server scrapes a process
//! that uses the crate and answers PromQL queries about it.
//!
//! Every test configures telemetry, so each runs its body in a child process
//! (`support::child`). The real components (`prometheus`, `promtool`) come from
//! `UNITEL_TEST_PROMETHEUS` / `UNITEL_TEST_PROMTOOL` (exported by `scripts/test.sh`), else from
//! `PATH`; a missing one fails the test.

#[path = "../support/mod.rs"]
mod support;

mod openmetrics;
mod robust;
mod spike;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::prometheus::{free_port, prometheus_binary, promtool, url_encode, PrometheusServer};
use support::Running;
use unitel::{
    configure_telemetry, dropped, get_telemetry, DropReason, Error, InstrumentOptions, Signal,
    TelemetryConfig, TelemetryGuard,
};

// ----- child processes -----

/// Configures telemetry with console output off and `/metrics` on a free loopback port.
fn configure_with_prometheus(service: &str) -> (TelemetryGuard, SocketAddr) {
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_service_name(service)
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure_telemetry with_prometheus(127.0.0.1:0)");
    let addr = guard
        .prometheus_addr()
        .expect("prometheus_addr() is None although with_prometheus was set");
    assert!(
        addr.ip().is_loopback() && addr.port() != 0,
        "prometheus_addr() should be the bound loopback address, got {addr}"
    );
    (guard, addr)
}

// ----- the real components -----

/// Runs `promtool check metrics` on `text`: (success, stdout + stderr).
fn promtool_check(promtool: &Path, text: &str) -> (bool, String) {
    let (code, report) = promtool_code(promtool, text);
    (
        code == Some(0),
        format!("promtool exit code: {code:?}\n{report}"),
    )
}

// ----- HTTP -----

use support::http_get;

/// Scrapes `/metrics`, asserting a 200 with the text exposition content type.
fn scrape(addr: SocketAddr) -> String {
    let response = http_get(addr, "/metrics", &[])
        .unwrap_or_else(|e| panic!("GET http://{addr}/metrics failed: {e}"));
    assert_eq!(response.status, 200, "GET /metrics answered {response:?}");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "unexpected Content-Type {content_type:?}"
    );
    response.body
}

/// Metric family names that have more than one `# TYPE` line (an invalid exposition: promtool
/// and Prometheus's own parsers reject or mangle it).
fn duplicate_families(text: &str) -> Vec<&str> {
    let mut seen = std::collections::BTreeSet::new();
    let mut duplicates: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !seen.insert(*name))
        .collect();
    duplicates.dedup();
    duplicates
}

// ----- the text exposition format -----

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of a text exposition (comments skipped); panics on a malformed line.
fn parse_exposition(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("malformed sample line {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            // A label name, or the closing brace.
            let (start, c) = *chars.peek()?;
            if c == '}' {
                rest = &inner[start + 1..];
                break;
            }
            let mut key = String::new();
            loop {
                let (_, c) = chars.next()?;
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            if labels.insert(key.trim().to_owned(), value).is_some() {
                return None;
            }
            if chars.peek()?.1 == ',' {
                chars.next();
            }
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The samples named `name` whose labels include `labels`.
fn matching<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(text: &str, samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = matching(samples, name, labels);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {name} sample with labels {labels:?}, found {found:?}; scrape:\n{text}"
    );
    found[0].value
}

fn assert_value(text: &str, samples: &[Sample], name: &str, labels: &[(&str, &str)], want: f64) {
    let got = value(text, samples, name, labels);
    assert!(
        (got - want).abs() < 1e-9,
        "{name}{labels:?} = {got}, expected {want}; scrape:\n{text}"
    );
}

// ----- 1. the seed names and values -----

#[test]
fn scrape_has_the_seed_names_and_values() {
    if support::run_child("scrape_has_the_seed_names_and_values", &[]).is_some() {
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-seed");

    // Seed 000: fastworker.
    let worker = get_telemetry("fastworker");
    let email = [("task_type", "email")];
    worker.counter("fastworker.tasks.submitted").add(2, &email);
    worker.counter("fastworker.tasks.submitted").add(3, &email);
    worker
        .counter("fastworker.tasks.failed")
        .add(2, &[("task_type", "email"), ("error", "timeout")]);
    let duration = worker.histogram("fastworker.tasks.duration");
    duration.record(0.25, &email);
    duration.record(1.5, &email);
    worker.observable_gauge("fastworker.workers.active", |gauge| {
        gauge.observe(4.0, ());
    });
    worker.observable_gauge("fastworker.queue.size", |gauge| {
        gauge.observe(12.0, &[("priority", "high")]);
        gauge.observe(3.0, &[("priority", "low")]);
    });

    // Seed 003: api_gateway.
    let api = get_telemetry("api_gateway");
    let post_ok = [("method", "POST"), ("status", "200")];
    api.counter("requests_total").add(1, &post_ok);
    api.counter("requests_total").add(2, &post_ok);
    api.counter("requests_total")
        .add(7, &[("method", "GET"), ("status", "404")]);
    let request_duration = api.histogram("request_duration_ms");
    request_duration.record(50.0, &[("endpoint", "/api")]);
    request_duration.record(150.0, &[("endpoint", "/api")]);
    // A bad value: dropped, and counted in unitel_dropped_total.
    request_duration.record(f64::NAN, &[("endpoint", "/api")]);
    api.histogram_with_options("latency", InstrumentOptions::new().with_unit("ms"))
        .record(20.0, ());

    let text = scrape(addr);
    let samples = parse_exposition(&text);
    let t = text.as_str();
    assert_eq!(duplicate_families(t), Vec::<&str>::new(), "{t}");

    // Counters get `_total`, once.
    assert_value(
        t,
        &samples,
        "fastworker_tasks_submitted_total",
        &[("task_type", "email")],
        5.0,
    );
    assert_value(
        t,
        &samples,
        "fastworker_tasks_failed_total",
        &[("task_type", "email"), ("error", "timeout")],
        2.0,
    );
    // The exporter labels each series with its component (the instrumentation scope).
    assert_value(
        t,
        &samples,
        "fastworker_tasks_submitted_total",
        &[("task_type", "email"), ("otel_scope_name", "fastworker")],
        5.0,
    );

    // Histograms: buckets, sum and count, no unit suffix without a unit.
    let d = [("task_type", "email")];
    assert_value(
        t,
        &samples,
        "fastworker_tasks_duration_bucket",
        &[("task_type", "email"), ("le", "+Inf")],
        2.0,
    );
    assert_value(t, &samples, "fastworker_tasks_duration_count", &d, 2.0);
    assert_value(t, &samples, "fastworker_tasks_duration_sum", &d, 1.75);
    let api_labels = [("endpoint", "/api")];
    assert_value(
        t,
        &samples,
        "request_duration_ms_bucket",
        &[("endpoint", "/api"), ("le", "100")],
        1.0,
    );
    assert_value(
        t,
        &samples,
        "request_duration_ms_bucket",
        &[("endpoint", "/api"), ("le", "250")],
        2.0,
    );
    assert_value(
        t,
        &samples,
        "request_duration_ms_bucket",
        &[("endpoint", "/api"), ("le", "+Inf")],
        2.0,
    );
    assert_value(t, &samples, "request_duration_ms_count", &api_labels, 2.0);
    assert_value(t, &samples, "request_duration_ms_sum", &api_labels, 200.0);
    assert!(
        !samples
            .iter()
            .any(|s| s.name.starts_with("request_duration_ms_milliseconds")),
        "request_duration_ms has no unit, yet got a `_milliseconds` suffix:\n{t}"
    );
    // With unit "ms": `_milliseconds`.
    assert_value(t, &samples, "latency_milliseconds_count", &[], 1.0);
    assert_value(t, &samples, "latency_milliseconds_sum", &[], 20.0);
    assert!(
        !samples.iter().any(|s| s.name.starts_with("latency_")
            && !s.name.starts_with("latency_milliseconds_")),
        "a histogram with unit ms should be named latency_milliseconds_*:\n{t}"
    );

    // Observable gauges, read at scrape time.
    assert_value(t, &samples, "fastworker_workers_active", &[], 4.0);
    assert_value(
        t,
        &samples,
        "fastworker_queue_size",
        &[("priority", "high")],
        12.0,
    );
    assert_value(
        t,
        &samples,
        "fastworker_queue_size",
        &[("priority", "low")],
        3.0,
    );

    // The resource.
    assert_value(
        t,
        &samples,
        "target_info",
        &[
            ("service_name", "prom-seed"),
            ("telemetry_sdk_language", "rust"),
        ],
        1.0,
    );

    // The crate's own counter: every signal, with each output's reasons, the NaN counted.
    for signal in ["spans", "metrics", "logs"] {
        for (output, reason) in [
            ("pipeline", "invalid_input"),
            ("otlp", "queue_full"),
            ("otlp", "export_failed"),
            ("otlp", "shutdown_timeout"),
            ("log_file", "queue_full"),
            ("log_file", "write_failed"),
            ("log_file", "shutdown_timeout"),
        ] {
            value(
                t,
                &samples,
                "unitel_dropped_total",
                &[("signal", signal), ("reason", reason), ("output", output)],
            );
        }
    }
    for (output, reason) in [
        ("pipeline", "callback_panicked"),
        ("pipeline", "cardinality_limit"),
        ("pipeline", "name_conflict"),
        ("prometheus", "name_conflict"),
    ] {
        value(
            t,
            &samples,
            "unitel_dropped_total",
            &[
                ("signal", "metrics"),
                ("reason", reason),
                ("output", output),
            ],
        );
        assert!(
            matching(
                &samples,
                "unitel_dropped_total",
                &[("signal", "logs"), ("reason", reason), ("output", output)]
            )
            .is_empty(),
            "{output} cannot drop logs for {reason}, yet it is reported:\n{t}"
        );
    }
    let invalid = unitel::dropped(Signal::Metrics, DropReason::InvalidInput);
    assert!(invalid >= 1, "the NaN was not counted as dropped");
    assert_value(
        t,
        &samples,
        "unitel_dropped_total",
        &[("signal", "metrics"), ("reason", "invalid_input")],
        invalid as f64,
    );

    // Anything but /metrics is a 404; a scrape is repeatable.
    let other = http_get(addr, "/other", &[]).expect("GET /other");
    assert_eq!(other.status, 404, "GET /other answered {other:?}");
    let again = parse_exposition(&scrape(addr));
    assert_eq!(
        value(t, &again, "fastworker_tasks_submitted_total", &email),
        5.0,
        "a second scrape changed a cumulative counter"
    );

    // Seed 003's counter is already named `requests_total`: it keeps that name (no second
    // `_total`), one series per attribute set.
    let doubled = matching(&samples, "requests_total_total", &[]);
    assert!(
        doubled.is_empty(),
        "the counter `requests_total` is exported as `requests_total_total` (`_total` appended \
         although the name already ends with it): {doubled:?}\n{t}"
    );
    assert_value(
        t,
        &samples,
        "requests_total",
        &[
            ("method", "POST"),
            ("status", "200"),
            ("otel_scope_name", "api_gateway"),
        ],
        3.0,
    );
    assert_value(
        t,
        &samples,
        "requests_total",
        &[("method", "GET"), ("status", "404")],
        7.0,
    );
}

// ----- 2. promtool -----

#[test]
fn promtool_accepts_the_scrape_with_hostile_attribute_keys() {
    // Resolved in the parent too, so a missing promtool fails with the plain message.
    let promtool_path = promtool();
    let path = promtool_path.to_string_lossy().into_owned();
    if support::run_child(
        "promtool_accepts_the_scrape_with_hostile_attribute_keys",
        &[("UNITEL_TEST_PROMTOOL", &path)],
    )
    .is_some()
    {
        return;
    }

    // The check has teeth: promtool rejects an invalid label name.
    let (ok, report) = promtool_check(
        &promtool_path,
        "# HELP bad_total A counter.\n# TYPE bad_total counter\nbad_total{a:b=\"1\"} 1\n",
    );
    assert!(
        !ok,
        "promtool accepted an invalid label name, so this test proves nothing:\n{report}"
    );

    let (_guard, addr) = configure_with_prometheus("prom-hostile");
    let telemetry = get_telemetry("hostile");
    telemetry
        .counter_with_options(
            "hostile.events",
            InstrumentOptions::new().with_description("Events with hostile attribute keys"),
        )
        .add(
            3,
            &[("a:b", "1"), ("1abc", "2"), ("__x", "3"), ("ok.key", "4")],
        );
    let text = scrape(addr);

    let (ok, report) = promtool_check(&promtool_path, &text);
    assert!(
        ok,
        "promtool check metrics rejected the scrape:\n{report}\n--- scrape\n{text}"
    );

    let samples = parse_exposition(&text);
    let t = text.as_str();
    assert_value(
        t,
        &samples,
        "hostile_events_total",
        &[
            ("a_b", "1"),
            ("key_1abc", "2"),
            ("key__x", "3"),
            ("ok_key", "4"),
        ],
        3.0,
    );
    for sample in matching(&samples, "hostile_events_total", &[]) {
        for raw in ["a:b", "1abc", "__x", "ok.key"] {
            assert!(
                !sample.labels.contains_key(raw),
                "raw key {raw:?} exported as a label: {sample:?}"
            );
        }
    }
    for raw in ["a:b=", "{1abc=", ",1abc=", "{__x=", ",__x=", "ok.key="] {
        assert!(
            !t.contains(raw),
            "the scrape has the raw label {raw:?}:\n{t}"
        );
    }
}

#[test]
fn counters_named_with_and_without_total_keep_the_scrape_valid() {
    let promtool_path = promtool();
    let path = promtool_path.to_string_lossy().into_owned();
    if support::run_child(
        "counters_named_with_and_without_total_keep_the_scrape_valid",
        &[("UNITEL_TEST_PROMTOOL", &path)],
    )
    .is_some()
    {
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-collision");
    // Both are legal OpenTelemetry names; `_total` is added to the first one only, so both end
    // up wanting the Prometheus name `jobs_total`.
    let telemetry = get_telemetry("jobs");
    telemetry.counter("jobs").add(1, &[("queue", "default")]);
    telemetry
        .counter("jobs_total")
        .add(2, &[("queue", "default")]);
    let text = scrape(addr);

    let duplicates = duplicate_families(&text);
    assert!(
        duplicates.is_empty(),
        "metric families exported twice under one name: {duplicates:?}\n{text}"
    );
    // `jobs` keeps its name rather than clash with `jobs_total`: promtool parses the scrape
    // (exit 0, or 3 for style lints only) and its one finding is the missing suffix.
    let (code, report) = promtool_code(&promtool_path, &text);
    assert!(
        code == Some(0) || code == Some(3),
        "promtool check metrics rejected the scrape:\n{report}\n--- scrape\n{text}"
    );
    assert!(!report.contains("error while linting"), "{report}");
    assert!(text.contains("\njobs{queue=\"default\""), "{text}");
    assert!(text.contains("\njobs_total{queue=\"default\""), "{text}");
}

#[test]
fn integer_sums_past_2_pow_53_are_exposed_exactly() {
    if support::run_child("integer_sums_past_2_pow_53_are_exposed_exactly", &[]).is_some() {
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-big");
    let telemetry = get_telemetry("big");
    // 2^53 + 1 is the first integer an f64 cannot hold.
    telemetry
        .counter("big.bytes")
        .add(9_007_199_254_740_993, ());
    telemetry
        .up_down_counter("big.balance")
        .add(-9_007_199_254_740_993, ());
    let text = scrape(addr);
    for want in [
        "big_bytes_total{otel_scope_name=\"big\"} 9007199254740993\n",
        "big_balance{otel_scope_name=\"big\"} -9007199254740993\n",
    ] {
        assert!(text.contains(want), "no {want:?} in the scrape:\n{text}");
    }
}

/// promtool's exit code (0 clean, 3 style lints only, 1 unparseable) and its report.
fn promtool_code(promtool: &Path, text: &str) -> (Option<i32>, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    let mut stdin = child.stdin.take().expect("promtool stdin");
    let text = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for promtool");
    let _ = writer.join();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), report)
}

// ----- a panicking callback -----

/// What unitel says on standard error when the callback of `panicky.gauge` panics.
const PANIC_REPORT: &str = "the callback of observable gauge \"panicky.gauge\" panicked";

#[test]
fn a_panicking_callback_costs_only_its_own_gauge() {
    let name = "a_panicking_callback_costs_only_its_own_gauge";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        support::assert_said_once(&stderr, PANIC_REPORT);
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let (guard, addr) = configure_with_prometheus("prom-panic");
    let panicky = get_telemetry("panicky");
    panicky.counter("panicky.steady").add(3, ());
    panicky.observable_gauge("panicky.ok", |gauge| gauge.observe(7.0, ()));
    panicky.observable_gauge("panicky.gauge", |gauge| {
        gauge.observe(1.0, ());
        panic!("a bug in the application's callback");
    });

    // Scraped twice over HTTP, and once through prometheus_text(): every collection runs the
    // panicking callback, and each still serves every other metric.
    for round in 1..=2 {
        let text = scrape(addr);
        let samples = parse_exposition(&text);
        assert_value(&text, &samples, "panicky_steady_total", &[], 3.0);
        assert_value(&text, &samples, "panicky_ok", &[], 7.0);
        assert!(
            dropped(Signal::Metrics, DropReason::CallbackPanicked) >= round,
            "round {round}: the panic is not counted; scrape:\n{text}"
        );
    }
    let text = rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), unitel::prometheus_text())
                .await
                .expect("prometheus_text() did not complete within 10 s")
        })
        .expect("prometheus_text() is None while telemetry runs");
    let samples = parse_exposition(&text);
    assert_value(&text, &samples, "panicky_steady_total", &[], 3.0);
    assert_value(&text, &samples, "panicky_ok", &[], 7.0);
    assert!(dropped(Signal::Metrics, DropReason::CallbackPanicked) >= 3);
    // ... and the crate's own counter says so too (unitel_dropped_total reads the counts at
    // the start of each collection: at least the two scrapes' panics by now).
    let reported = value(
        &text,
        &samples,
        "unitel_dropped_total",
        &[("signal", "metrics"), ("reason", "callback_panicked")],
    );
    assert!(reported >= 2.0, "{reported}");
    guard
        .shutdown()
        .expect("shutdown after a panicking callback");
}

// ----- 3. prometheus_text() -----

/// The samples of a scrape, in a canonical order.
fn canonical(text: &str) -> Vec<(String, String, f64)> {
    let mut samples: Vec<_> = parse_exposition(text)
        .into_iter()
        .map(|s| (s.name, format!("{:?}", s.labels), s.value))
        .collect();
    samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    samples
}

#[test]
fn prometheus_text_matches_the_http_scrape() {
    if support::run_child("prometheus_text_matches_the_http_scrape", &[]).is_some() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let text_of = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), unitel::prometheus_text())
                .await
                .expect("prometheus_text() did not complete within 10 s")
        })
    };
    assert_eq!(
        text_of(&rt),
        None,
        "prometheus_text() before configure_telemetry"
    );

    let (guard, addr) = configure_with_prometheus("prom-text");
    let worker = get_telemetry("fastworker");
    worker
        .counter("fastworker.tasks.submitted")
        .add(4, &[("task_type", "email")]);
    worker
        .histogram("fastworker.tasks.duration")
        .record(0.5, &[("task_type", "email")]);

    let text = text_of(&rt).expect("prometheus_text() is None although Prometheus is on");
    let samples = parse_exposition(&text);
    assert_value(
        &text,
        &samples,
        "fastworker_tasks_submitted_total",
        &[("task_type", "email")],
        4.0,
    );
    assert_value(
        &text,
        &samples,
        "fastworker_tasks_duration_bucket",
        &[("le", "+Inf")],
        1.0,
    );
    assert!(
        text.contains("# TYPE fastworker_tasks_submitted_total counter"),
        "{text}"
    );
    assert!(
        text.contains("target_info{"),
        "no target_info in prometheus_text():\n{text}"
    );

    let scraped = scrape(addr);
    assert_eq!(
        canonical(&text),
        canonical(&scraped),
        "prometheus_text() and GET /metrics differ\n--- prometheus_text\n{text}\n--- scrape\n{scraped}"
    );

    guard.shutdown().expect("shutdown");
    assert_eq!(
        text_of(&rt),
        None,
        "prometheus_text() after shutdown (telemetry is not running)"
    );
}

#[test]
fn prometheus_text_is_none_without_prometheus() {
    if support::run_child("prometheus_text_is_none_without_prometheus", &[]).is_some() {
        return;
    }
    let guard = configure_telemetry(TelemetryConfig::new().with_console(false))
        .expect("configure_telemetry");
    assert_eq!(guard.prometheus_addr(), None);
    get_telemetry("api_gateway")
        .counter("requests_total")
        .add(1, &[("method", "POST")]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    assert_eq!(
        rt.block_on(unitel::prometheus_text()),
        None,
        "prometheus_text() returned text although Prometheus is not enabled"
    );
}

// ----- 4. the environment's endpoint -----

#[test]
fn env_prometheus_listens_on_loopback_by_default() {
    let port = free_port().to_string();
    if support::run_child(
        "env_prometheus_listens_on_loopback_by_default",
        &[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", &port),
        ],
    )
    .is_some()
    {
        return;
    }
    let port: u16 = std::env::var("OTEL_EXPORTER_PROMETHEUS_PORT")
        .expect("OTEL_EXPORTER_PROMETHEUS_PORT in the child")
        .parse()
        .expect("a port");
    let guard = configure_telemetry(TelemetryConfig::from_env().with_console(false))
        .expect("configure_telemetry from OTEL_METRICS_EXPORTER=prometheus");
    let addr = guard
        .prometheus_addr()
        .expect("OTEL_METRICS_EXPORTER=prometheus did not start the endpoint");
    assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], port)));

    get_telemetry("fastworker")
        .counter("fastworker.tasks.submitted")
        .add(9, ());
    let text = scrape(addr);
    let samples = parse_exposition(&text);
    assert_value(
        &text,
        &samples,
        "fastworker_tasks_submitted_total",
        &[],
        9.0,
    );
    assert!(
        !matching(&samples, "target_info", &[]).is_empty(),
        "no target_info:\n{text}"
    );
}

// ----- 5. a taken port -----

#[test]
fn taken_port_is_a_startup_error() {
    if support::run_child("taken_port_is_a_startup_error", &[]).is_some() {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("local addr");
    let err = match configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_prometheus(taken_addr),
    ) {
        Ok(guard) => panic!(
            "configure_telemetry succeeded on a taken port; endpoint at {:?}",
            guard.prometheus_addr()
        ),
        Err(err) => err,
    };
    match &err {
        Error::Prometheus { addr, .. } => assert_eq!(*addr, taken_addr),
        other => panic!("expected Error::Prometheus, got {other:?}"),
    }
    assert!(
        std::error::Error::source(&err).is_some(),
        "no io error source"
    );
    let message = err.to_string();
    assert!(message.contains("with_prometheus"), "{message}");
    assert!(message.contains(&taken_addr.to_string()), "{message}");

    // The failed attempt installed nothing: configuring again on a free port works.
    let (_guard, addr) = configure_with_prometheus("after-taken-port");
    assert_ne!(addr, taken_addr);
    drop(taken);
}

// ----- 6. a real Prometheus server -----

const APP_TEST: &str = "real_prometheus_scrapes_the_app";

/// An observable gauge's callback that blocks while held: a slow collection, on demand.
struct Hold {
    held: AtomicBool,
    /// Collections that entered the callback while it was held.
    entered: std::sync::atomic::AtomicUsize,
}

impl Hold {
    const fn new() -> Hold {
        Hold {
            held: AtomicBool::new(false),
            entered: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Registers gauge `name` whose callback waits while this is held, at most `max`.
    fn gauge(
        &'static self,
        telemetry: &unitel::UnifiedTelemetry,
        name: &'static str,
        max: Duration,
    ) {
        telemetry.observable_gauge(name, move |g| {
            if self.held.load(Ordering::SeqCst) {
                self.entered.fetch_add(1, Ordering::SeqCst);
            }
            let started = Instant::now();
            while self.held.load(Ordering::SeqCst) && started.elapsed() < max {
                std::thread::sleep(Duration::from_millis(10));
            }
            g.observe(1.0, ());
        });
    }

    fn set(&self, held: bool) {
        self.held.store(held, Ordering::SeqCst);
    }

    fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }
}

/// A flag that turns true when the test process that spawned this one ([`spawn_app_of`]) is
/// gone (this process is handed to another parent): an app whose test died without killing
/// it stops on its own.
fn parent_gone() -> Arc<AtomicBool> {
    let gone = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&gone);
    #[cfg(unix)]
    std::thread::spawn(move || {
        let parent = std::os::unix::process::parent_id();
        while std::os::unix::process::parent_id() == parent {
            std::thread::sleep(Duration::from_millis(100));
        }
        flag.store(true, Ordering::Relaxed);
    });
    #[cfg(not(unix))]
    drop(flag);
    gone
}

/// The app: records seed metrics every 100 ms for up to 60 s, or until its test is gone.
fn app_body() {
    let (_guard, addr) = configure_with_prometheus("prom-app");
    println!("ADDR {addr}");
    let _ = std::io::stdout().flush();

    let stop = parent_gone();
    let worker = get_telemetry("fastworker");
    let api = get_telemetry("api_gateway");
    // Seed 000's metrics, from the task-metrics helper: tasks run on threads of their own for
    // 0.05..0.95 s, one in five fails.
    let tasks = unitel::TaskMetrics::new(&worker, "fastworker");
    let requests = api.counter("requests_total");
    let request_duration = api.histogram("request_duration_ms");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        tasks.submitted("send_email", "default", "high");
        tasks.set_queue_size("default", "high", i % 7);
        let run = tasks.start("send_email", "default", "high");
        let seconds = 0.05 + (i % 10) as f64 * 0.1;
        let fails = i.is_multiple_of(5);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            if fails {
                run.failed();
            } else {
                run.completed();
            }
        });
        requests.add(1, &[("method", "POST"), ("status", "200")]);
        let ms = [50.0, 150.0][(i % 2) as usize];
        request_duration.record(ms, &[("endpoint", "/api")]);
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Spawns the app; returns it and its address.
fn spawn_app() -> (Running, SocketAddr) {
    spawn_app_of(APP_TEST)
}

/// Spawns test `test` as an app in a child process (it prints `ADDR <address>` once it
/// serves `/metrics`, and stops when its test is gone); returns it and its address.
fn spawn_app_of(test: &str) -> (Running, SocketAddr) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("UNITEL_CHILD", test)
        .env_remove("OTEL_METRICS_EXPORTER")
        .env_remove("RUST_LOG");
    let mut app = Running::spawn("the app", &mut command);
    // The test harness may print `test <name> ... ` before it on the same line.
    let addr = app.wait_for(|line| line.split_once("ADDR ").map(|(_, a)| a.trim().to_owned()));
    let addr = addr
        .parse()
        .unwrap_or_else(|_| panic!("bad ADDR line {addr:?}"));
    (app, addr)
}

/// The finite values of a vector query result.
fn finite_values(json: &serde_json::Value) -> Vec<f64> {
    json["data"]["result"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .filter_map(|r| r["value"][1].as_str())
                .filter_map(|v| v.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .collect()
        })
        .unwrap_or_default()
}

/// A real Prometheus server scraping `target`; killed when dropped, as is the app it scrapes
/// when that runs in a child process of its own.
struct Scraper {
    server: PrometheusServer,
    target: SocketAddr,
    /// The scraped app, when it is a child process.
    app: Option<Running>,
}

impl Scraper {
    /// Starts the server (scrape interval and timeout `interval`, e.g. "2s") and waits until it
    /// is ready.
    fn start(target: SocketAddr, interval: &str) -> Scraper {
        Scraper::launch(target, interval, None, &[])
    }

    /// [`Scraper::start`] for an app in a child process (`spawn_app`): its exit fails the test
    /// too, and its output is shown with the server's log.
    fn start_for_app(app: Running, target: SocketAddr, interval: &str) -> Scraper {
        Scraper::launch(target, interval, Some(app), &[])
    }

    /// [`Scraper::start_for_app`] with more command-line arguments for the server (such as
    /// `--enable-feature=exemplar-storage`).
    fn start_for_app_with(
        app: Running,
        target: SocketAddr,
        interval: &str,
        args: &[&str],
    ) -> Scraper {
        Scraper::launch(target, interval, Some(app), args)
    }

    fn launch(target: SocketAddr, interval: &str, app: Option<Running>, args: &[&str]) -> Scraper {
        let mut scraper = Scraper {
            server: PrometheusServer::start(target, interval, args),
            target,
            app,
        };
        scraper.running();
        scraper
    }

    /// The server's log, and the app's output when it is a child.
    fn log(&self) -> String {
        let mut log = format!("--- prometheus log\n{}", self.server.log());
        if let Some(app) = &self.app {
            log.push_str("\n--- app output\n");
            log.push_str(&app.output());
        }
        log
    }

    /// Fails the test if the app, when it is a child, or the server has exited.
    fn running(&mut self) {
        if let Some(app) = &mut self.app {
            app.assert_running();
        }
        self.server.assert_running();
    }

    /// The target's health and last error once it has been scraped (waits up to 30 s).
    fn health(&mut self) -> (String, String) {
        let started = Instant::now();
        loop {
            self.running();
            if let Ok(json) = self.server.json("/api/v1/targets") {
                let target = json["data"]["activeTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| {
                        t["scrapeUrl"]
                            .as_str()
                            .is_some_and(|u| u.contains(&self.target.to_string()))
                    })
                    .cloned();
                if let Some(t) = target {
                    let health = t["health"].as_str().unwrap_or_default().to_owned();
                    if health != "unknown" {
                        let error = t["lastError"].as_str().unwrap_or_default().to_owned();
                        return (health, error);
                    }
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus did not scrape {} within 30 s\n{}",
                self.target,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Asserts that the target is up (its scrapes are accepted whole).
    fn assert_up(&mut self) {
        let (health, error) = self.health();
        assert_eq!(
            health,
            "up",
            "prometheus marks the target {health}: {error}\n{}",
            self.log()
        );
    }

    /// The exemplars Prometheus has for the series of `query` (`/api/v1/query_exemplars` over
    /// the last hour), once `found` accepts them (waits up to 40 s); each is the series' labels
    /// and the exemplar's labels, value and timestamp as the API gives them.
    fn exemplars_until(
        &mut self,
        query: &str,
        found: &dyn Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            self.running();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs();
            let path = format!(
                "/api/v1/query_exemplars?query={}&start={}&end={}",
                url_encode(query),
                now - 3600,
                now + 60
            );
            let last = match self.server.json(&path) {
                Ok(json) => {
                    let exemplars: Vec<serde_json::Value> = json["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|series| {
                            series["exemplars"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|e| {
                                    serde_json::json!({
                                        "series": series["seriesLabels"],
                                        "labels": e["labels"],
                                        "value": e["value"],
                                        "timestamp": e["timestamp"],
                                    })
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    if found(&exemplars) {
                        return exemplars;
                    }
                    json.to_string()
                }
                Err(e) => e,
            };
            if started.elapsed() > Duration::from_secs(40) {
                let (health, error) = self.health();
                panic!(
                    "prometheus has not the exemplars wanted for {query} (target {health} \
                     {error})\nlast answer: {last}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The exemplar of `query` whose trace is `trace_id`, once Prometheus has it (40 s at most).
    fn exemplar_of_trace(&mut self, query: &str, trace_id: &str) -> serde_json::Value {
        let of_trace = |e: &&serde_json::Value| e["labels"]["trace_id"] == trace_id;
        self.exemplars_until(query, &|found| found.iter().any(|e| of_trace(&e)))
            .iter()
            .find(of_trace)
            .cloned()
            .expect("found")
    }

    /// Asserts that every query has a finite result within 40 s; returns each query's answer.
    fn assert_found<'q>(&mut self, queries: &[&'q str]) -> BTreeMap<&'q str, serde_json::Value> {
        let started = Instant::now();
        let mut answers = BTreeMap::new();
        let mut pending: Vec<&str> = queries.to_vec();
        let mut last = BTreeMap::new();
        while !pending.is_empty() {
            self.running();
            pending.retain(|q| match self.server.query(q) {
                Ok(json)
                    if json["data"]["resultType"] == "vector"
                        && !finite_values(&json).is_empty() =>
                {
                    answers.insert(*q, json);
                    false
                }
                Ok(json) => {
                    last.insert(*q, json.to_string());
                    true
                }
                Err(e) => {
                    last.insert(*q, e);
                    true
                }
            });
            if pending.is_empty() {
                break;
            }
            if started.elapsed() > Duration::from_secs(40) {
                let (health, error) = self.health();
                let names = self
                    .server
                    .json("/api/v1/label/__name__/values")
                    .map(|j| j["data"].to_string())
                    .unwrap_or_else(|e| e);
                panic!(
                    "prometheus has no finite result for {pending:?} (target {health} {error})\n\
                     metric names it has: {names}\nlast answers: {last:#?}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        answers
    }
}

#[test]
fn real_prometheus_scrapes_the_app() {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(APP_TEST) {
        app_body();
        return;
    }
    let (app, app_addr) = spawn_app();
    let mut prometheus = Scraper::start_for_app(app, app_addr, "1s");
    prometheus.assert_up();

    // PromQL over what was scraped.
    let queries = [
        "rate(fastworker_tasks_submitted_total[5m])",
        "histogram_quantile(0.95, rate(fastworker_tasks_duration_bucket[5m]))",
        r#"requests_total{method="POST",status="200"}"#,
        r#"request_duration_ms_bucket{le="100"}"#,
        // The rest of seed 000's queries, over the task-metrics helper's series.
        "rate(fastworker_tasks_failed_total[5m])",
        "rate(fastworker_tasks_duration_sum[5m]) / rate(fastworker_tasks_duration_count[5m])",
        r#"fastworker_workers_active{queue="default"}"#,
        r#"fastworker_queue_size{queue="default",priority="high"}"#,
        r#"fastworker_tasks_completed_total{task_name="send_email",priority="high"}"#,
    ];
    let answers = prometheus.assert_found(&queries);

    // The values make sense for what the app records.
    let rate = finite_values(&answers[queries[0]]);
    assert!(
        rate.iter().any(|&v| v > 0.0),
        "rate of submitted tasks is not positive: {rate:?}"
    );
    let p95 = finite_values(&answers[queries[1]]);
    // Durations 0.05..0.95 s, evenly: the 95th percentile is in the (0.5, 1] bucket.
    assert!(
        p95.iter().all(|&v| v > 0.5 && v <= 1.0),
        "p95 task duration outside the (0.5, 1] bucket: {p95:?}"
    );
    let posts = &answers[queries[2]];
    assert!(
        posts["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["metric"]["otel_scope_name"] == "api_gateway"
                && r["metric"]["job"] == "unitel-app"),
        "requests_total lacks its scope or job labels: {posts}"
    );
    assert!(
        finite_values(&answers[queries[3]])
            .iter()
            .all(|&v| v >= 1.0),
        "request_duration_ms_bucket{{le=\"100\"}} should count the 50 ms requests: {}",
        answers[queries[3]]
    );
    let average = finite_values(&answers[queries[5]]);
    assert!(
        average.iter().all(|&v| v > 0.05 && v < 0.95),
        "average task duration outside 0.05..0.95 s: {average:?}"
    );
    let failed = finite_values(&answers[queries[4]]);
    assert!(
        failed.iter().all(|&v| v > 0.0) && !failed.is_empty(),
        "no failure rate: {failed:?}"
    );
}
