//! Issue 14: a scrape that asks for OpenMetrics gets it, with exemplars (the trace and span of
//! a measurement made in a sampled span) on histogram buckets and counters, under the same
//! metric and label names as the classic text; everyone else keeps the classic text; and a
//! real Prometheus with exemplar storage, scraping a process, answers `query_exemplars` with
//! the trace id of the slow request.
//!
//! promtool 2.42 cannot check the OpenMetrics text: `promtool check metrics` reads only the
//! classic format (an exemplar is "expected integer as timestamp, got #"). The real scrape
//! (Prometheus's own OpenMetrics parser) is the check.

use super::*;

/// What Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn get(addr: SocketAddr, accept: Option<&str>) -> support::Response {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    let response = http_get(addr, "/metrics", &headers)
        .unwrap_or_else(|e| panic!("GET http://{addr}/metrics failed: {e}"));
    assert_eq!(response.status, 200, "GET /metrics answered {response:?}");
    response
}

/// The sample lines of an exposition without their exemplars.
fn samples_of(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" # ").next().unwrap_or(l))
        .collect()
}

/// The line that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix}\n--- exposition\n{text}"))
}

#[test]
fn openmetrics_is_served_on_request_with_exemplars() {
    if support::run_child(
        "openmetrics::openmetrics_is_served_on_request_with_exemplars",
        &[],
    )
    .is_some()
    {
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-openmetrics");
    let api = get_telemetry("api");
    let duration = api.histogram_with_options(
        "request_duration",
        InstrumentOptions::default().with_unit("ms"),
    );
    let requests = api.counter("requests");
    let odd = api.counter("odd.events");
    duration.record(5.0, &[("endpoint", "/fast")]);
    requests.add(1, &[("endpoint", "/fast")]);
    let span = api.trace("slow request");
    let trace_id = span.trace_id().expect("the span is sampled");
    let span_id = span.span_id().expect("the span has an id");
    span.in_scope(|| {
        duration.record(900.0, &[("endpoint", "/slow")]);
        requests.add(2, &[("endpoint", "/slow")]);
        odd.add(1, &[("le", "a\"b\\c\nd")]);
    });
    let exemplar =
        |value: &str| format!(" # {{trace_id=\"{trace_id}\",span_id=\"{span_id}\"}} {value} ");

    let om_response = get(addr, Some(PROMETHEUS_ACCEPT));
    assert_eq!(
        om_response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = om_response.body;
    assert!(om.ends_with("\n# EOF\n"), "{om}");
    assert_eq!(om.matches("# EOF").count(), 1, "{om}");
    assert_eq!(duplicate_families(&om), Vec::<&str>::new(), "{om}");

    // The counter: family without `_total`, sample with it and the exemplar.
    assert!(om.contains("# TYPE requests counter\n"), "{om}");
    let scope = "otel_scope_name=\"api\"";
    let slow = line(
        &om,
        &format!("requests_total{{endpoint=\"/slow\",{scope}}} 2"),
    );
    assert!(
        slow.contains(&exemplar("2")),
        "{slow}\nwanted {}",
        exemplar("2")
    );
    let fast = line(
        &om,
        &format!("requests_total{{endpoint=\"/fast\",{scope}}} 1"),
    );
    assert!(!fast.contains('#'), "no span, no exemplar: {fast}");

    // The histogram: `# UNIT`, the exemplar on the bucket of 900 only.
    assert!(
        om.contains("# TYPE request_duration_milliseconds histogram\n")
            && om.contains("# UNIT request_duration_milliseconds milliseconds\n"),
        "{om}"
    );
    let bucket = |le: &str| {
        line(
            &om,
            &format!(
                "request_duration_milliseconds_bucket{{endpoint=\"/slow\",{scope},le=\"{le}\"}}"
            ),
        )
    };
    assert!(
        bucket("1000").contains(&exemplar("900")),
        "{}",
        bucket("1000")
    );
    for le in ["750", "2500", "+Inf"] {
        assert!(!bucket(le).contains('#'), "{}", bucket(le));
    }
    let sum = line(&om, "request_duration_milliseconds_sum{endpoint=\"/slow\"");
    assert!(!sum.contains('#'), "{sum}");

    // Escaping and renamed keys as in the classic text, with the exemplar.
    let escaped = format!("odd_events_total{{key_le=\"a\\\"b\\\\c\\nd\",{scope}}} 1");
    assert!(line(&om, &escaped).contains(&exemplar("1")), "{om}");

    // Everyone else: the classic text, as before, with the same samples.
    for accept in [None, Some("text/plain;version=0.0.4"), Some("*/*")] {
        let classic = get(addr, accept);
        assert_eq!(
            classic.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "Accept {accept:?}"
        );
        let text = classic.body;
        assert!(
            !text.contains("trace_id") && !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        assert!(text.contains("# TYPE requests_total counter\n"), "{text}");
        // The samples match but for what changed between the scrapes (the drop counters).
        let stable = |t: &'_ str| -> Vec<String> {
            samples_of(t)
                .into_iter()
                .filter(|l| !l.starts_with("unitel_"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(stable(&text), stable(&om), "Accept {accept:?}");
    }
}

const EXEMPLAR_APP: &str = "openmetrics::real_prometheus_stores_the_exemplar_of_the_slow_request";

/// The app for the real Prometheus: one slow request (900 ms, its trace id printed as
/// `SLOW <id>`), then fast ones (50 ms) every 100 ms, each in a span of its own, until its
/// test is gone.
fn exemplar_app() {
    let (_guard, addr) = configure_with_prometheus("prom-exemplars");
    let stop = parent_gone();
    let api = get_telemetry("api_gateway");
    let duration = api.histogram("request_duration_ms");
    let requests = api.counter("requests_total");
    let request = |ms: f64| {
        let span = api.trace("request");
        let trace_id = span.trace_id();
        span.in_scope(|| {
            requests.add(1, &[("method", "POST")]);
            duration.record(ms, &[("endpoint", "/api")]);
        });
        trace_id
    };
    let slow = request(900.0).expect("a sampled span");
    println!("SLOW {slow}");
    println!("ADDR {addr}");
    let _ = std::io::stdout().flush();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        request(50.0);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn real_prometheus_stores_the_exemplar_of_the_slow_request() {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(EXEMPLAR_APP) {
        exemplar_app();
        return;
    }
    let (app, app_addr) = spawn_app_of(EXEMPLAR_APP);
    // Printed before the address, so already read.
    let printed = app.output();
    let slow = printed
        .lines()
        .find_map(|l| l.split_once("SLOW ").map(|(_, id)| id.trim().to_owned()))
        .unwrap_or_else(|| panic!("the app printed no SLOW line before its address:\n{printed}"));
    let mut prometheus =
        Scraper::start_for_app_with(app, app_addr, "1s", &["--enable-feature=exemplar-storage"]);
    prometheus.assert_up();

    // The slow request's trace, from the bucket it fell in.
    let hit = prometheus.exemplar_of_trace("request_duration_ms_bucket", &slow);
    assert_eq!(hit["series"]["le"], "1000", "{hit}");
    assert_eq!(hit["series"]["endpoint"], "/api", "{hit}");
    assert_eq!(hit["value"], "900", "{hit}");
    let span_id = hit["labels"]["span_id"].as_str().unwrap_or_default();
    assert!(
        span_id.len() == 16 && span_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{hit}"
    );

    // The counter's exemplars: one of the requests' traces.
    prometheus.exemplars_until(r#"requests_total{method="POST"}"#, &|found| {
        found.iter().any(|e| {
            e["labels"]["trace_id"]
                .as_str()
                .is_some_and(|t| t.len() == 32)
        })
    });

    // The seed names and PromQL still work over the OpenMetrics scrape.
    let answers = prometheus.assert_found(&[
        r#"requests_total{method="POST",otel_scope_name="api_gateway"}"#,
        "histogram_quantile(0.99, rate(request_duration_ms_bucket[5m]))",
    ]);
    assert!(
        answers
            .values()
            .all(|a| finite_values(a).iter().all(|v| *v > 0.0)),
        "{answers:#?}"
    );
}

/// The test below's gauge callback, held while it scrapes.
static HELD: Hold = Hold::new();

#[test]
fn classic_and_openmetrics_scrapes_share_one_collection() {
    if support::run_child(
        "openmetrics::classic_and_openmetrics_scrapes_share_one_collection",
        &[],
    )
    .is_some()
    {
        return;
    }
    let (_guard, addr) = configure_with_prometheus("prom-shared");
    let telemetry = get_telemetry("shared");
    telemetry.counter("shared.requests").add(1, ());
    // Both want `clash_total`: the counter keeps it, the gauge is left out and counted once per
    // collection, whatever the formats rendered from it.
    telemetry.counter("clash_total").add(1, ());
    get_telemetry("other").observable_gauge("clash_total", |g| g.observe(1.0, ()));
    HELD.gauge(&telemetry, "shared.held", Duration::from_secs(20));
    let _ = get(addr, None);
    let conflicts = || {
        unitel::dropped_at(
            unitel::Output::Prometheus,
            Signal::Metrics,
            DropReason::NameConflict,
        )
    };
    let before = conflicts();

    // A classic scrape starts a collection that the callback holds; an OpenMetrics scrape
    // arrives while it is held, and shares it.
    HELD.set(true);
    let classic = std::thread::spawn(move || get(addr, None));
    let started = Instant::now();
    while HELD.entered() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no collection started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let om = std::thread::spawn(move || get(addr, Some(PROMETHEUS_ACCEPT)));
    std::thread::sleep(Duration::from_millis(300));
    HELD.set(false);
    let classic = classic.join().expect("classic scrape");
    let om = om.join().expect("openmetrics scrape");

    assert_eq!(HELD.entered(), 1, "one collection for both");
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!classic.body.contains("# EOF"), "{}", classic.body);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert_eq!(
        samples_of(&classic.body),
        samples_of(&om.body),
        "one collection, the same samples"
    );
    assert_eq!(
        conflicts() - before,
        1,
        "the left-out gauge is counted once for the shared collection"
    );
}
