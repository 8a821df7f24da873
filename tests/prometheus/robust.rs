//! Issue 12: the exposition stays valid whatever the names and keys (reserved labels, a
//! histogram next to a gauge named like its `_count`, a counter and a gauge of one name, keys
//! equal once made valid), checked by promtool and by a real Prometheus server scraping the
//! process; and a blocked observable callback does not hold up scrapes.

use super::*;
use unitel::{dropped_at, Output};

/// Scrapes twice (promtool must accept both) and returns the second text.
fn checked_scrape(addr: SocketAddr) -> String {
    let promtool_path = promtool();
    let mut text = String::new();
    for _ in 0..2 {
        text = scrape(addr);
        let (ok, report) = promtool_check(&promtool_path, &text);
        assert!(
            ok,
            "promtool check metrics rejected the scrape:\n{report}\n--- scrape\n{text}"
        );
        assert_eq!(duplicate_families(&text), Vec::<&str>::new(), "{text}");
    }
    text
}

fn tools() -> [(&'static str, String); 2] {
    [
        (
            "UNITEL_TEST_PROMTOOL",
            promtool().to_string_lossy().into_owned(),
        ),
        (
            "UNITEL_TEST_PROMETHEUS",
            prometheus_binary().to_string_lossy().into_owned(),
        ),
    ]
}

/// In the parent: runs `name` in a child with the tools' paths; returns its stderr.
fn in_child(name: &str) -> Option<String> {
    let tools = tools();
    let env: Vec<(&str, &str)> = tools.iter().map(|(k, v)| (*k, v.as_str())).collect();
    support::run_child_saying(name, &env).map(|(_, stderr)| stderr)
}

fn name_conflicts() -> u64 {
    dropped_at(
        Output::Prometheus,
        Signal::Metrics,
        DropReason::NameConflict,
    )
}

// ----- 15. keys the exposition reserves -----

#[test]
fn reserved_label_keys_are_renamed_and_the_target_stays_up() {
    if let Some(stderr) =
        in_child("robust::reserved_label_keys_are_renamed_and_the_target_stays_up")
    {
        support::assert_said_once(&stderr, "attribute key \"le\"");
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-reserved");
    let telemetry = get_telemetry("reserved");
    let keys = [
        ("le", "x"),
        ("quantile", "q"),
        ("otel_scope_name", "mine"),
        ("otel.scope.version", "v9"),
        ("__name__", "n"),
    ];
    telemetry.histogram("reserved.latency").record(2.0, &keys);
    telemetry.counter("reserved.events").add(4, &keys);
    telemetry.counter("reserved.other").add(1, ());
    let text = checked_scrape(addr);
    let samples = parse_exposition(&text);
    let renamed = [
        ("key_le", "x"),
        ("key_quantile", "q"),
        ("key_otel_scope_name", "mine"),
        ("key_otel_scope_version", "v9"),
        ("key__name__", "n"),
        ("otel_scope_name", "reserved"),
    ];
    let mut bucket = renamed.to_vec();
    bucket.push(("le", "+Inf"));
    assert_value(&text, &samples, "reserved_latency_bucket", &bucket, 1.0);
    assert_value(&text, &samples, "reserved_latency_count", &renamed, 1.0);
    assert_value(&text, &samples, "reserved_events_total", &renamed, 4.0);

    let mut prometheus = Scraper::start(addr, "1s");
    prometheus.assert_up();
    prometheus.assert_found(&[
        r#"reserved_latency_bucket{key_le="x",le="+Inf",otel_scope_name="reserved"}"#,
        r#"reserved_events_total{key_quantile="q",key_otel_scope_name="mine"}"#,
        "reserved_other_total",
    ]);
}

// ----- 16. a histogram and a gauge named like one of its series -----

#[test]
fn a_gauge_named_like_a_histograms_count_keeps_the_target_up() {
    if let Some(stderr) =
        in_child("robust::a_gauge_named_like_a_histograms_count_keeps_the_target_up")
    {
        support::assert_said_once(&stderr, "gauge \"hh_count\" cannot be exposed");
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-suffix");
    let telemetry = get_telemetry("suffix");
    telemetry.histogram("hh").record(3.0, &[("k", "v")]);
    telemetry.observable_gauge("hh_count", |g| g.observe(42.0, &[("k", "v")]));
    telemetry.observable_gauge("hh_bucket_size", |g| g.observe(5.0, ()));
    telemetry.counter("suffix.other").add(1, ());
    let before = name_conflicts();
    let text = checked_scrape(addr);
    let samples = parse_exposition(&text);
    // The histogram keeps its series; the gauge cannot be exposed next to it, and is counted.
    assert_value(&text, &samples, "hh_count", &[("k", "v")], 1.0);
    assert_value(&text, &samples, "hh_sum", &[("k", "v")], 3.0);
    assert_value(&text, &samples, "hh_bucket_size", &[], 5.0);
    assert!(
        name_conflicts() >= before + 2,
        "the left-out gauge was not counted in both scrapes ({before} -> {})",
        name_conflicts()
    );

    let mut prometheus = Scraper::start(addr, "1s");
    prometheus.assert_up();
    prometheus.assert_found(&[
        r#"hh_bucket{k="v",le="+Inf"}"#,
        r#"hh_count{k="v"}"#,
        "hh_bucket_size",
        "suffix_other_total",
    ]);
}

// ----- 17. a counter and a gauge of one name -----

#[test]
fn a_counter_and_a_gauge_of_one_name_are_both_exposed() {
    if let Some(stderr) = in_child("robust::a_counter_and_a_gauge_of_one_name_are_both_exposed") {
        support::assert_said_once(&stderr, "gauge \"both_total\" cannot be exposed");
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-kinds");
    // One name, two kinds, in two components: the counter is `dual_total`, the gauge `dual`.
    get_telemetry("counting").counter("dual").add(3, ());
    get_telemetry("gauging").observable_gauge("dual", |g| g.observe(7.0, ()));
    // Here both want `both_total`: the counter keeps it, the gauge is left out and counted.
    get_telemetry("counting").counter("both_total").add(5, ());
    get_telemetry("gauging").observable_gauge("both_total", |g| g.observe(9.0, ()));
    let before = name_conflicts();
    let text = scrape(addr);
    let samples = parse_exposition(&text);
    assert_value(
        &text,
        &samples,
        "dual_total",
        &[("otel_scope_name", "counting")],
        3.0,
    );
    assert_value(
        &text,
        &samples,
        "dual",
        &[("otel_scope_name", "gauging")],
        7.0,
    );
    assert_value(&text, &samples, "both_total", &[], 5.0);
    assert!(
        text.contains("# TYPE dual gauge\n") && text.contains("# TYPE dual_total counter\n"),
        "{text}"
    );
    checked_scrape(addr);
    assert!(
        name_conflicts() >= before + 2,
        "the left-out gauge was not counted in both scrapes ({before} -> {})",
        name_conflicts()
    );

    let mut prometheus = Scraper::start(addr, "1s");
    prometheus.assert_up();
    prometheus.assert_found(&["dual_total", "dual", "both_total"]);
}

// ----- 18. keys equal once made valid -----

#[test]
fn keys_equal_once_made_valid_keep_their_values() {
    if let Some(stderr) = in_child("robust::keys_equal_once_made_valid_keep_their_values") {
        support::assert_said_once(&stderr, "collide_hits_total: the series");
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-keys");
    let telemetry = get_telemetry("collide");
    // Within one series: both values are kept, joined with `;` in the order of the keys.
    telemetry.counter("collide.pairs").add(
        1,
        &[("a:b", "1"), ("a_b", "2"), ("1x", "3"), ("key_1x", "4")],
    );
    // Two series that become one: the one whose keys were valid is exposed, the other counted.
    telemetry.counter("collide.hits").add(1, &[("a:b", "1")]);
    telemetry.counter("collide.hits").add(2, &[("a_b", "1")]);
    let before = name_conflicts();
    let text = checked_scrape(addr);
    let samples = parse_exposition(&text);
    assert_value(
        &text,
        &samples,
        "collide_pairs_total",
        &[("a_b", "1;2"), ("key_1x", "3;4")],
        1.0,
    );
    assert_value(&text, &samples, "collide_hits_total", &[("a_b", "1")], 2.0);
    assert!(
        name_conflicts() >= before + 2,
        "the left-out series was not counted in both scrapes ({before} -> {})",
        name_conflicts()
    );

    let mut prometheus = Scraper::start(addr, "1s");
    prometheus.assert_up();
    prometheus.assert_found(&[
        r#"collide_pairs_total{a_b="1;2",key_1x="3;4"}"#,
        r#"collide_hits_total{a_b="1"}"#,
    ]);
}

// ----- 3. a blocked observable callback -----

/// The slow gauge's callback, blocked while the test says so.
static BLOCKED: Hold = Hold::new();

/// Asserts a 503 whose body names the slow callback.
fn assert_slow(response: &support::Response, what: &str) {
    assert_eq!(response.status, 503, "{what}: {response:?}");
    assert!(
        response.body.contains("callback"),
        "{what}: the 503 does not name the cause: {response:?}"
    );
}

#[test]
fn a_blocked_callback_does_not_hold_up_scrapes() {
    if let Some(stderr) = in_child("robust::a_blocked_callback_does_not_hold_up_scrapes") {
        support::assert_said_once(&stderr, "callback is slow or blocked");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let (_guard, addr) = configure_with_prometheus("prom-slow");
    let telemetry = get_telemetry("slow");
    telemetry.counter("slow.steady").add(1, ());
    BLOCKED.gauge(&telemetry, "slow.gauge", Duration::from_secs(60));
    let text = scrape(addr);
    assert!(text.contains("slow_gauge{"), "{text}");
    // A real Prometheus server scrapes it (every 2 s, timeout 2 s).
    let mut prometheus = Scraper::start(addr, "2s");
    prometheus.assert_up();

    BLOCKED.set(true);
    let timeout = [("X-Prometheus-Scrape-Timeout-Seconds", "3")];
    // Two scrapes at once: each is answered (http_get gives up after 10 s) with a 503 that
    // names the cause, the second not queued behind the first.
    let first = std::thread::spawn(move || http_get(addr, "/metrics", &timeout));
    std::thread::sleep(Duration::from_millis(300));
    let second = std::thread::spawn(move || http_get(addr, "/metrics", &timeout));
    // Meanwhile the endpoint answers other requests.
    let other = http_get(addr, "/other", &[]).expect("GET /other while a collection is blocked");
    assert_eq!(other.status, 404, "{other:?}");
    let first = first.join().expect("first scrape thread");
    let first = first.expect("the first scrape got no answer while the callback is blocked");
    assert_slow(&first, "first scrape");
    let second = second.join().expect("second scrape thread");
    let second = second.expect("the second scrape got no answer while the callback is blocked");
    assert_slow(&second, "second scrape");

    // Connections beyond the bound (8) are answered 503 at once, not queued: of 12 at once,
    // some are told so, and every one is answered.
    let burst: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || http_get(addr, "/metrics", &timeout)))
        .collect();
    let mut too_many = 0;
    for scrape in burst {
        let response = scrape.join().expect("scrape thread");
        let response = response.expect("a scrape of the burst got no answer");
        assert_eq!(response.status, 503, "{response:?}");
        if response.body.contains("too many") {
            too_many += 1;
        } else {
            assert_slow(&response, "a scrape of the burst");
        }
    }
    assert!(too_many >= 1, "no connection of 12 was beyond the bound");

    // prometheus_text() gives up too (after 10 s), well before the callback returns.
    let text = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), unitel::prometheus_text())
            .await
            .expect("prometheus_text() did not resolve within 30 s while a callback blocks")
    });
    assert_eq!(text, None, "prometheus_text() while the callback blocks");

    // The Prometheus server got the 503 within its scrape timeout.
    let (health, error) = prometheus.health();
    assert_eq!(health, "down", "{error}\n{}", prometheus.log());
    assert!(error.contains("503"), "prometheus's last error: {error}");

    // All of them shared the one collection that is still blocked.
    assert_eq!(
        BLOCKED.entered(),
        1,
        "more than one collection ran at a time"
    );
    BLOCKED.set(false);
    let started = Instant::now();
    let text = loop {
        let response = http_get(addr, "/metrics", &[]).expect("scrape after the callback returned");
        if response.status == 200 {
            break response.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still no 200 after the callback returned: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.contains("slow_steady_total"), "{text}");
    let started = Instant::now();
    while prometheus.health().0 != "up" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the target did not come back up: {:?}\n{}",
            prometheus.health(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

// ----- 12. the cardinality limit, seen at a scrape -----

#[test]
fn an_instrument_past_its_cardinality_limit_is_said_once_and_the_scrape_stays_valid() {
    if let Some(stderr) = in_child(
        "robust::an_instrument_past_its_cardinality_limit_is_said_once_and_the_scrape_stays_valid",
    ) {
        let said: Vec<_> = stderr
            .lines()
            .filter(|l| l.contains("attribute sets"))
            .collect();
        assert_eq!(said.len(), 1, "{stderr}");
        assert!(said[0].contains("\"per_user\"") && said[0].contains("more than 3"));
        return;
    }
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_metric_cardinality_limit(3)
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure_telemetry");
    let addr = guard.prometheus_addr().expect("prometheus_addr");
    let telemetry = get_telemetry("limits");
    for user in 0..10 {
        telemetry
            .counter("per_user")
            .add(1, &[("user", user.to_string())]);
    }
    let limited = || {
        dropped_at(
            Output::Pipeline,
            Signal::Metrics,
            DropReason::CardinalityLimit,
        )
    };
    let text = checked_scrape(addr);
    let samples = parse_exposition(&text);
    // Three series keep their user; the other seven measurements are summed in the overflow
    // series.
    assert_value(
        &text,
        &samples,
        "per_user_total",
        &[("otel_metric_overflow", "true")],
        7.0,
    );
    assert_eq!(matching(&samples, "per_user_total", &[]).len(), 4, "{text}");
    // Two scrapes, one instrument: counted once.
    assert_eq!(limited(), 1);
    assert_value(
        &text,
        &samples,
        "unitel_dropped_total",
        &[("reason", "cardinality_limit"), ("output", "pipeline")],
        1.0,
    );
}
