//! Rendering the Prometheus exposition of 1,000 and 10,000 series, in the classic text and in
//! OpenMetrics with an exemplar on every series, in the same run. Rendering runs on a unitel
//! thread (`prometheus_text()` and `GET /metrics` hand it there); this measures the whole
//! round trip, collection included:
//! - `prometheus_text`: the classic text through `prometheus_text()`, the path measured before
//!   OpenMetrics existed (issue 12's figures);
//! - `GET classic` / `GET openmetrics`: `GET /metrics` on the endpoint without an `Accept`
//!   header and with the one Prometheus 2.42 sends.
//!
//! `UNITEL_BENCH_NO_EXEMPLARS=1` records the series outside spans (no exemplars), as the bench
//! did before OpenMetrics, for comparing the classic text with an older build.

#![allow(missing_docs)]

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
     application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET /metrics` with `accept`; the body.
fn get(addr: SocketAddr, accept: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn render(c: &mut Criterion) {
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure");
    let addr = guard.prometheus_addr().expect("prometheus address");
    let telemetry = unitel::get_telemetry("bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("prometheus_render");
    let mut made = 0;
    for series in [1_000usize, 10_000] {
        // 1,000 series per counter: the SDK caps one instrument at 2,000 attribute sets. Each
        // is added to inside a sampled span, so each has an exemplar in OpenMetrics.
        while made < series {
            let counter = telemetry.counter(format!("series_{}", made / 1000));
            if std::env::var_os("UNITEL_BENCH_NO_EXEMPLARS").is_some() {
                counter.add(1, &[("id", made.to_string())]);
            } else {
                telemetry
                    .trace("request")
                    .in_scope(|| counter.add(1, &[("id", made.to_string())]));
            }
            made += 1;
        }
        let text = runtime.block_on(unitel::prometheus_text()).expect("text");
        let rendered = text.lines().filter(|l| l.starts_with("series_")).count();
        assert_eq!(rendered, series, "series in the exposition");
        let sorted = |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert!(
            sorted(&get(addr, None)) == sorted(&text),
            "GET /metrics without Accept is not prometheus_text()"
        );
        let om = get(addr, Some(PROMETHEUS_ACCEPT));
        let exemplars = om
            .lines()
            .filter(|l| l.starts_with("series_") && l.contains(" # {trace_id=\""))
            .count();
        if std::env::var_os("UNITEL_BENCH_NO_EXEMPLARS").is_none() {
            assert_eq!(exemplars, series, "series with an exemplar in OpenMetrics");
        }
        g.bench_function(format!("{series} series, prometheus_text"), |b| {
            b.iter(|| runtime.block_on(unitel::prometheus_text()))
        });
        g.bench_function(format!("{series} series, GET classic"), |b| {
            b.iter(|| get(addr, None))
        });
        g.bench_function(format!("{series} series, GET openmetrics"), |b| {
            b.iter(|| get(addr, Some(PROMETHEUS_ACCEPT)))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion().sample_size(30).measurement_time(std::time::Duration::from_secs(5)); targets = render }
criterion_main!(benches);
