//! Rendering the Prometheus exposition of 1,000 and 10,000 series. Rendering runs on a unitel
//! thread (`prometheus_text()` hands it there); this measures the whole round trip.

#![allow(missing_docs)]

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

fn render(c: &mut Criterion) {
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("prometheus_render");
    let mut made = 0;
    for series in [1_000usize, 10_000] {
        // 1,000 series per counter: the SDK caps one instrument at 2,000 attribute sets.
        while made < series {
            telemetry
                .counter(format!("series_{}", made / 1000))
                .add(1, &[("id", made.to_string())]);
            made += 1;
        }
        let text = runtime.block_on(unitel::prometheus_text()).expect("text");
        let rendered = text.lines().filter(|l| l.starts_with("series_")).count();
        assert_eq!(rendered, series, "series in the exposition");
        g.bench_function(format!("{series} series"), |b| {
            b.iter(|| runtime.block_on(unitel::prometheus_text()))
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = common::criterion().sample_size(30).measurement_time(std::time::Duration::from_secs(5)); targets = render }
criterion_main!(benches);
