//! Memory: resident size added by start-up (every output on: console off, JSON file, OTLP
//! through a discarding batch processor, Prometheus), and bytes per live span. Prints its
//! figures; not a criterion timing.

#![allow(missing_docs)]

mod common;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let before = resident_bytes();
    let guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.path().join("bench.log"))
            .with_span_processor(common::discarding_processor())
            .with_prometheus(([127, 0, 0, 1], 0)),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    // Warm every path once so lazily made state is counted as start-up.
    {
        let _s = telemetry.trace("warm");
        telemetry.log_info("warm");
        telemetry.counter("warm_total").add(1, ());
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after_start = resident_bytes();

    const LIVE: usize = 20_000;
    let root = telemetry.trace("root");
    let base = resident_bytes();
    let spans: Vec<unitel::Span> = (0..LIVE).map(|_| telemetry.trace("live")).collect();
    let with_spans = resident_bytes();
    drop(spans);
    drop(root);
    drop(guard);

    println!(
        "memory/resident before configure: {:.1} MB",
        before as f64 / 1e6
    );
    println!(
        "memory/resident after start-up: {:.1} MB",
        after_start as f64 / 1e6
    );
    println!(
        "memory/start-up cost: {:.1} MB (target <= 8 MB)",
        (after_start.saturating_sub(before)) as f64 / 1e6
    );
    println!(
        "memory/bytes per live span: {} (target <= 1024), {LIVE} spans",
        with_spans.saturating_sub(base) / LIVE as u64
    );
}
