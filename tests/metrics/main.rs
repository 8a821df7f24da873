//! Metrics: every instrument kind, options, caching, and dropped bad values.

#[path = "../support/mod.rs"]
mod support;

use unitel::testing::{capture, PointValue};
use unitel::{get_telemetry, DropReason, InstrumentOptions, Output, Signal, Value};

#[test]
fn counter_sums_per_attribute_set() {
    let capture = capture();
    let telemetry = get_telemetry("api_gateway");
    let requests = telemetry.counter("requests_total");
    requests.add(1, &[("method", "POST"), ("status", "200")]);
    requests.add(2, &[("method", "POST"), ("status", "200")]);
    // Attribute order does not matter; a different set is a different series.
    telemetry
        .counter("requests_total")
        .add(4, &[("status", "200"), ("method", "POST")]);
    telemetry
        .counter("requests_total")
        .add(5, &[("method", "GET"), ("status", "200")]);
    telemetry.counter("no_attrs_total").add(3, ());
    // Mixed value types through `Value`.
    telemetry.counter("mixed_total").add(
        1,
        &[("method", Value::from("POST")), ("code", Value::from(200))],
    );

    assert_eq!(
        capture.counter(
            "api_gateway",
            "requests_total",
            &[("method", "POST"), ("status", "200")]
        ),
        Some(7)
    );
    assert_eq!(
        capture.counter(
            "api_gateway",
            "requests_total",
            &[("method", "GET"), ("status", "200")]
        ),
        Some(5)
    );
    assert_eq!(
        capture.counter("api_gateway", "no_attrs_total", &[]),
        Some(3)
    );
    assert_eq!(
        capture.counter(
            "api_gateway",
            "mixed_total",
            &[("code", "200"), ("method", "POST")]
        ),
        Some(1)
    );
}

#[test]
fn instruments_are_cached_per_component_and_name() {
    let capture = capture();
    let a = get_telemetry("cache_a");
    let a_again = get_telemetry("cache_a");
    let b = get_telemetry("cache_b");
    a.counter("hits").add(1, ());
    a_again.counter("hits").add(1, ());
    a.clone().counter(String::from("hits")).add(1, ());
    b.counter("hits").add(10, ());
    assert_eq!(capture.counter("cache_a", "hits", &[]), Some(3));
    assert_eq!(capture.counter("cache_b", "hits", &[]), Some(10));
}

#[test]
fn up_down_counter_goes_both_ways() {
    let capture = capture();
    let telemetry = get_telemetry("pool");
    let open = telemetry.up_down_counter("connections_open");
    open.add(5, ());
    open.add(-3, ());
    assert_eq!(
        capture.point("pool", "connections_open", &[]),
        Some(PointValue::Sum(2.0))
    );
}

#[test]
fn histogram_with_options_and_default_buckets() {
    let capture = capture();
    let telemetry = get_telemetry("latency");
    let h = telemetry.histogram_with_options(
        "request_duration_ms",
        InstrumentOptions::new()
            .with_unit("ms")
            .with_description("Request latency")
            .with_boundaries(vec![10.0, 100.0, 1000.0]),
    );
    for v in [5.0, 50.0, 150.0, 5000.0, 60.0] {
        h.record(v, &[("endpoint", "/api")]);
    }
    match capture.point("latency", "request_duration_ms", &[("endpoint", "/api")]) {
        Some(PointValue::Histogram {
            count,
            sum,
            bounds,
            bucket_counts,
        }) => {
            assert_eq!(count, 5);
            assert_eq!(sum, 5265.0);
            assert_eq!(bounds, vec![10.0, 100.0, 1000.0]);
            assert_eq!(bucket_counts, vec![1, 2, 1, 1]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let unit = capture
        .metrics()
        .into_iter()
        .find(|p| p.name == "request_duration_ms")
        .map(|p| p.unit);
    assert_eq!(unit.as_deref(), Some("ms"));

    telemetry.histogram("plain").record(0.5, ());
    match capture.point("latency", "plain", &[]) {
        Some(PointValue::Histogram { count, bounds, .. }) => {
            assert_eq!(count, 1);
            assert!(bounds.len() > 5, "the SDK's default boundaries: {bounds:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn gauges_report_the_last_value_and_callbacks() {
    let capture = capture();
    let telemetry = get_telemetry("fastworker");
    let temperature = telemetry.gauge("cpu_temperature");
    temperature.set(40.0, ());
    temperature.set(42.5, ());
    let queue = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(7));
    let q = queue.clone();
    telemetry.observable_gauge("fastworker.queue.size", move |g| {
        g.observe(
            q.load(std::sync::atomic::Ordering::Relaxed) as f64,
            &[("priority", "high")],
        );
    });
    telemetry.observable_gauge("fastworker.workers.active", |g| g.observe(3.0, ()));
    assert_eq!(
        capture.point("fastworker", "cpu_temperature", &[]),
        Some(PointValue::Gauge(42.5))
    );
    assert_eq!(
        capture.point(
            "fastworker",
            "fastworker.queue.size",
            &[("priority", "high")]
        ),
        Some(PointValue::Gauge(7.0))
    );
    queue.store(9, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        capture.point(
            "fastworker",
            "fastworker.queue.size",
            &[("priority", "high")]
        ),
        Some(PointValue::Gauge(9.0)),
        "the callback runs at every collection"
    );
    assert_eq!(
        capture.point("fastworker", "fastworker.workers.active", &[]),
        Some(PointValue::Gauge(3.0))
    );
}

#[test]
fn nan_infinity_and_negative_histogram_values_are_dropped_and_counted() {
    let capture = capture();
    let telemetry = get_telemetry("bad_values");
    let before = unitel::dropped(Signal::Metrics, DropReason::InvalidInput);
    let h = telemetry.histogram("sizes");
    h.record(1.0, ());
    h.record(f64::NAN, ());
    h.record(f64::INFINITY, ());
    h.record(f64::NEG_INFINITY, ());
    h.record(-1.0, ());
    let g = telemetry.gauge("level");
    g.set(2.0, ());
    g.set(f64::NAN, ());
    g.set(-3.0, ()); // negative gauges are fine
    telemetry.observable_gauge("observed", |o| {
        o.observe(f64::NAN, ());
        o.observe(4.0, ());
    });
    // One collection: the observable callback (and its NaN) runs once.
    let points = capture.metrics();
    let point = |name: &str| {
        points
            .iter()
            .find(|p| p.component == "bad_values" && p.name == name)
            .map(|p| p.value.clone())
    };
    match point("sizes") {
        Some(PointValue::Histogram { count, sum, .. }) => {
            assert_eq!(count, 1, "only the valid value is exported");
            assert_eq!(sum, 1.0);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(point("level"), Some(PointValue::Gauge(-3.0)));
    assert_eq!(point("observed"), Some(PointValue::Gauge(4.0)));
    let after = unitel::dropped(Signal::Metrics, DropReason::InvalidInput);
    assert_eq!(
        after - before,
        6,
        "4 bad histogram values, 1 bad gauge value, 1 bad observation"
    );
}

#[test]
fn every_measurement_to_an_instrument_the_sdk_refuses_is_counted_and_said_once() {
    let name = "every_measurement_to_an_instrument_the_sdk_refuses_is_counted_and_said_once";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        for (what, instrument) in [
            ("the name is invalid", "\"1starts_with_digit\""),
            ("the name is invalid", "\"has space\""),
            ("unit \"µs\" is invalid", "\"latency\""),
            ("bucket boundaries [5.0, 1.0] are invalid", "\"sizes\""),
        ] {
            let said = stderr
                .lines()
                .filter(|l| l.contains(instrument) && l.contains(what))
                .count();
            assert_eq!(said, 1, "{instrument}: {what} said {said} times:\n{stderr}");
        }
        return;
    }
    let _capture = capture();
    let invalid =
        || unitel::dropped_at(Output::Pipeline, Signal::Metrics, DropReason::InvalidInput);
    let before = invalid();
    let names = get_telemetry("names");
    for _ in 0..1000 {
        names.counter("1starts_with_digit").add(1, ());
    }
    names.counter("has space").add(1, ());
    // A unit the SDK refuses (not ASCII) and boundaries out of order: the SDK would hand out
    // an instrument that records nothing, without a word.
    let latency = names.histogram_with_options("latency", InstrumentOptions::new().with_unit("µs"));
    let sizes = names.histogram_with_options(
        "sizes",
        InstrumentOptions::new().with_boundaries([5.0, 1.0]),
    );
    for _ in 0..10 {
        latency.record(1.0, ());
        sizes.record(1.0, ());
    }
    assert_eq!(invalid() - before, 1000 + 1 + 10 + 10);
    // A valid unit and boundaries record as usual.
    let fine = names.histogram_with_options(
        "fine",
        InstrumentOptions::new()
            .with_unit("us")
            .with_boundaries([1.0, 5.0]),
    );
    fine.record(2.0, ());
    assert_eq!(invalid() - before, 1021);
}

#[test]
fn a_gauge_asked_for_under_a_counters_name_is_one_instrument_that_counts_its_drops() {
    let name = "a_gauge_asked_for_under_a_counters_name_is_one_instrument_that_counts_its_drops";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        let said = stderr
            .lines()
            .filter(|l| {
                l.contains("\"clash\"") && l.contains("a counter of that name already exists")
            })
            .count();
        assert_eq!(said, 1, "{stderr}");
        return;
    }
    let capture = capture();
    let telemetry = get_telemetry("kinds");
    telemetry.counter("clash").add(1, ());
    let conflicts =
        || unitel::dropped_at(Output::Pipeline, Signal::Metrics, DropReason::NameConflict);
    let resident = || -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
            * 4096
    };
    // Warm up, then 200,000 more: each call used to leak a new instrument (+58 MiB).
    for i in 0..1000 {
        telemetry.gauge("clash").set(i as f64, ());
    }
    let before = resident();
    for i in 0..200_000 {
        telemetry.gauge("clash").set(i as f64, ());
        telemetry.gauge(String::from("clash")).set(1.0, ());
    }
    let grown = resident().saturating_sub(before);
    if cfg!(target_os = "linux") {
        assert!(
            grown < 8 << 20,
            "asking for the clashing gauge grew memory by {grown} bytes"
        );
    }
    assert_eq!(conflicts(), 401_000, "every dropped measurement is counted");
    // The counter keeps the name and its value.
    assert_eq!(capture.counter("kinds", "clash", &[]), Some(1));
    telemetry.counter("clash").add(2, ());
    assert_eq!(capture.counter("kinds", "clash", &[]), Some(3));
}

#[test]
fn an_instrument_past_its_cardinality_limit_is_counted_and_said_once() {
    let name = "an_instrument_past_its_cardinality_limit_is_counted_and_said_once";
    if let Some((stdout, stderr)) = support::run_child_with_stderr(name, &[]) {
        let said: Vec<_> = stderr
            .lines()
            .filter(|l| l.contains("attribute sets"))
            .collect();
        assert_eq!(said.len(), 1, "{stderr}");
        assert!(
            said[0].contains("\"wide\"") && said[0].contains("more than 5"),
            "{stderr}"
        );
        assert!(
            said[0].contains("with_metric_cardinality_limit"),
            "{stderr}"
        );
        // The console exporter shows the overflow series.
        assert!(stdout.contains("otel.metric.overflow"), "{stdout}");
        return;
    }
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_log_filter("off")
            .with_metric_cardinality_limit(5)
            .with_metrics_exporter(&[unitel::Exporter::Console])
            .with_metric_export_interval(std::time::Duration::from_millis(50)),
    )
    .expect("configure_telemetry");
    let telemetry = get_telemetry("cardinality");
    let wide = telemetry.counter("wide");
    let narrow = telemetry.counter("narrow");
    for i in 0..50 {
        wide.add(1, &[("user", i.to_string())]);
        narrow.add(1, &[("route", (i % 5).to_string())]);
    }
    let limited = || {
        unitel::dropped_at(
            Output::Pipeline,
            Signal::Metrics,
            DropReason::CardinalityLimit,
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while limited() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the overflow was never noticed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Several more exports see the same overflow: still one instrument, said once.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(limited(), 1, "only \"wide\" passed its limit, counted once");
    guard.shutdown().expect("shutdown");
}

#[test]
fn a_cardinality_limit_of_zero_is_a_startup_error() {
    let name = "a_cardinality_limit_of_zero_is_a_startup_error";
    if support::run_child(name, &[]).is_some() {
        return;
    }
    for limit in [0, 10_000_000] {
        let err = unitel::configure_telemetry(
            unitel::TelemetryConfig::new().with_metric_cardinality_limit(limit),
        )
        .expect_err("an out-of-range limit");
        let message = err.to_string();
        assert!(
            message.contains("with_metric_cardinality_limit") && message.contains("1 to 1000000"),
            "{message}"
        );
    }
}

#[test]
fn bound_counters_add_to_their_attribute_set() {
    let capture = capture();
    let telemetry = get_telemetry("bound");
    let ok = telemetry.counter("jobs_total").bind(&[("status", "ok")]);
    let failed = telemetry
        .counter("jobs_total")
        .bind(&[("status", "failed")]);
    for _ in 0..5 {
        ok.add(2);
    }
    failed.clone().add(1);
    telemetry.counter("jobs_total").add(3, &[("status", "ok")]);
    assert_eq!(
        capture.counter("bound", "jobs_total", &[("status", "ok")]),
        Some(13)
    );
    assert_eq!(
        capture.counter("bound", "jobs_total", &[("status", "failed")]),
        Some(1)
    );
}

#[test]
fn static_and_runtime_names_reach_the_same_instrument() {
    let capture = capture();
    let telemetry = get_telemetry("names_cache");
    for i in 0..3 {
        // The literal takes the per-thread fast path; the String goes through the map.
        telemetry.counter("hits").add(1, ());
        telemetry.counter(format!("hi{}", "ts")).add(10, ());
        // Same literal, other kind: a different instrument, never the cached counter.
        telemetry.histogram("hits_ms").record(f64::from(i), ());
    }
    let other_thread =
        std::thread::spawn(|| get_telemetry("names_cache").counter("hits").add(100, ()));
    other_thread.join().unwrap();
    assert_eq!(capture.counter("names_cache", "hits", &[]), Some(133));
}

#[test]
fn debug_of_a_handle_and_its_instruments_names_them_without_recursing() {
    let _capture = capture();
    let telemetry = get_telemetry("debug_me");
    let counter = telemetry.counter("debug_total");
    counter.add(1, ());
    // Instruments point back at their component: printing must stop at names.
    let text = format!("{telemetry:?} {counter:?}");
    assert!(
        text.contains("debug_me") && text.contains("debug_total"),
        "{text}"
    );
    assert!(text.len() < 400, "{text}");
}

#[test]
fn task_metrics_count_outcomes_durations_and_active_workers() {
    let capture = capture();
    let telemetry = get_telemetry("tasks-test");
    let tasks = unitel::TaskMetrics::new(&telemetry, "jobs");
    let email = [
        ("task.name", "send_email"),
        ("queue", "default"),
        ("priority", "high"),
    ];
    // Borrowed strings of any lifetime name the task.
    let name = String::from("send_email");
    for _ in 0..4 {
        tasks.submitted(&name, "default", "high");
    }
    tasks.start(&name, "default", "high").completed();
    tasks.start(&name, "default", "high").failed();
    tasks.start(&name, "default", "high").retried();
    let running = tasks.start(&name, "default", "high");
    assert_eq!(
        capture.point("tasks-test", "jobs.workers.active", &[("queue", "default")]),
        Some(PointValue::Sum(1.0))
    );
    // Dropped without an outcome (a panic, a cancelled task): failed.
    drop(running);
    tasks.set_queue_size("default", "high", 12);

    assert_eq!(
        capture.counter("tasks-test", "jobs.tasks.submitted", &email),
        Some(4)
    );
    assert_eq!(
        capture.counter("tasks-test", "jobs.tasks.completed", &email),
        Some(1)
    );
    assert_eq!(
        capture.counter("tasks-test", "jobs.tasks.failed", &email),
        Some(2)
    );
    assert_eq!(
        capture.counter("tasks-test", "jobs.tasks.retried", &email),
        Some(1)
    );
    assert_eq!(
        capture.point("tasks-test", "jobs.workers.active", &[("queue", "default")]),
        Some(PointValue::Sum(0.0))
    );
    assert_eq!(
        capture.point(
            "tasks-test",
            "jobs.queue.size",
            &[("queue", "default"), ("priority", "high")]
        ),
        Some(PointValue::Gauge(12.0))
    );
    match capture.point("tasks-test", "jobs.tasks.duration", &email) {
        Some(PointValue::Histogram { count, bounds, .. }) => {
            assert_eq!(count, 4, "one duration per ended run");
            assert_eq!(bounds.last(), Some(&300.0));
        }
        other => panic!("no duration histogram: {other:?}"),
    }
}

// ----- a panicking callback, on a periodic reader -----

/// A push exporter that keeps, for each export, the names of the metrics it was handed.
#[derive(Clone, Default)]
struct Exports(std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>);

impl opentelemetry_sdk::metrics::exporter::PushMetricExporter for Exports {
    async fn export(
        &self,
        metrics: &opentelemetry_sdk::metrics::data::ResourceMetrics,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let names = metrics
            .scope_metrics()
            .flat_map(|scope| scope.metrics())
            .map(|metric| metric.name().to_owned())
            .collect();
        self.0.lock().unwrap().push(names);
        Ok(())
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(
        &self,
        _timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        opentelemetry_sdk::metrics::Temporality::Cumulative
    }
}

#[test]
fn a_panicking_callback_does_not_stop_the_periodic_export() {
    let name = "a_panicking_callback_does_not_stop_the_periodic_export";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        let report = "the callback of observable gauge \"periodic.broken\" panicked";
        assert_eq!(stderr.matches(report).count(), 1, "{stderr}");
        return;
    }
    let exports = Exports::default();
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exports.clone())
        .with_interval(std::time::Duration::from_millis(50))
        .build();
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_metric_reader(std::sync::Arc::new(reader)),
    )
    .expect("configure_telemetry");
    let periodic = get_telemetry("periodic");
    periodic.counter("periodic.steady").add(1, ());
    periodic.observable_gauge("periodic.ok", |gauge| gauge.observe(1.0, ()));
    periodic.observable_gauge("periodic.broken", |_| panic!("a bug in the callback"));

    // Three exports after the first panic, each with the other metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let with_both = |exports: &[Vec<String>]| {
        exports
            .iter()
            .filter(|names| {
                names.iter().any(|n| n == "periodic.ok")
                    && names.iter().any(|n| n == "periodic.steady")
            })
            .count()
    };
    while with_both(&exports.0.lock().unwrap()) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the periodic export stopped after the callback panicked: {:?}",
            exports.0.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(unitel::dropped(Signal::Metrics, DropReason::CallbackPanicked) >= 3);
    guard
        .shutdown()
        .expect("shutdown after a panicking callback");
}

#[test]
fn the_capture_tells_a_counter_from_an_up_down_counter() {
    use unitel::testing::InstrumentKind;
    let capture = capture();
    let telemetry = get_telemetry("kinds");
    // The same value in a counter and an up-down counter: only the kind tells them apart.
    telemetry.counter("kinds_counter").add(3, ());
    telemetry.up_down_counter("kinds_updown").add(3, ());
    telemetry.histogram("kinds_histogram").record(3.0, ());
    telemetry.gauge("kinds_gauge").set(3.0, ());
    let _observed = telemetry.observable_gauge("kinds_observed", |g| g.observe(3.0, ()));
    let metrics = capture.metrics();
    let kind = |name: &str| {
        let points: Vec<_> = metrics
            .iter()
            .filter(|p| p.component == "kinds" && p.name == name)
            .collect();
        assert_eq!(points.len(), 1, "{name}: {metrics:#?}");
        points[0].kind
    };
    assert_eq!(kind("kinds_counter"), InstrumentKind::Counter);
    assert_eq!(kind("kinds_updown"), InstrumentKind::UpDownCounter);
    assert_eq!(kind("kinds_histogram"), InstrumentKind::Histogram);
    assert_eq!(kind("kinds_gauge"), InstrumentKind::Gauge);
    assert_eq!(kind("kinds_observed"), InstrumentKind::Gauge);
    assert_eq!(
        capture.point("kinds", "kinds_counter", &[]),
        capture.point("kinds", "kinds_updown", &[]),
        "the values alone cannot tell them apart"
    );
}
