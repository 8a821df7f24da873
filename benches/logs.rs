//! A correlated JSON log line inside a span, into the JSON log file (unitel's batching writer
//! thread), against `tracing::info!` through tracing-subscriber's JSON formatter
//! into the same kind of writer, without ids.
//!
//! And the console line (`console_line`): the same calls with the console on. Console lines go
//! to standard output, where criterion writes its report, so they are measured in a child copy
//! of this bench whose standard output is `/dev/null` (each line still costs its `write`, as on
//! a real console): criterion asks it for `iters` calls and reads back the time they took.

#![allow(missing_docs)]

mod common;

use criterion::{black_box, criterion_group, Criterion};
use std::io::{BufRead as _, Write as _};
use std::time::{Duration, Instant};

fn logs(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.path().join("facade.log")),
    )
    .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let mut g = c.benchmark_group("json_log_line");
    {
        let _span = telemetry.trace("request");
        g.bench_function("facade log_info_with in span (correlated)", |b| {
            b.iter(|| telemetry.log_info_with(black_box("request handled"), &[("status", 200)]))
        });
        g.bench_function("facade tracing::info! in span (correlated)", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
    }
    {
        // The common case in a service: an event inside a `tracing` span (from
        // `#[tracing::instrument]` or a library), through unitel's subscriber.
        let _span = tracing::info_span!("request").entered();
        g.bench_function("facade tracing::info! in tracing span (correlated)", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
    }
    let (bare, _writer_guard) = common::bare_json_subscriber(&dir.path().join("bare.log"));
    tracing::subscriber::with_default(bare, || {
        let _span = tracing::info_span!("request").entered();
        g.bench_function("tracing-subscriber JSON line in span (no ids)", |b| {
            b.iter(|| tracing::info!(status = 200, "request handled"))
        });
    });
    g.finish();
}

/// Set in the child that writes the console lines.
const CONSOLE_CHILD: &str = "UNITEL_BENCH_CONSOLE_CHILD";

/// The console lines measured, by the name criterion shows.
const CONSOLE_CASES: &[&str] = &[
    "facade log_info_with in span",
    "facade tracing::info! in span",
    "facade log_info_with in span, text to escape",
];

fn console(c: &mut Criterion) {
    let exe = std::env::current_exe().expect("bench executable");
    let mut child = std::process::Command::new(exe)
        .env(CONSOLE_CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("console child");
    let mut ask = child.stdin.take().expect("stdin");
    let mut answers = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut g = c.benchmark_group("console_line");
    for (case, name) in CONSOLE_CASES.iter().enumerate() {
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                writeln!(ask, "{case} {iters}").expect("ask the child");
                ask.flush().expect("ask the child");
                let mut line = String::new();
                loop {
                    line.clear();
                    if answers.read_line(&mut line).expect("child's answer") == 0 {
                        panic!("the console child ended");
                    }
                    // Anything else on its standard error is passed through.
                    match line.trim_end().strip_prefix("ELAPSED_NS ") {
                        Some(ns) => break Duration::from_nanos(ns.parse().expect("nanoseconds")),
                        None => eprint!("{line}"),
                    }
                }
            })
        });
    }
    g.finish();
    drop(ask);
    let _ = child.wait();
}

/// The child: the console on, one span open; runs `iters` calls of a case per request on
/// standard input and answers with the time taken on standard error.
fn console_child() {
    let _guard = unitel::configure_telemetry(unitel::TelemetryConfig::new().with_console(true))
        .expect("configure");
    let telemetry = unitel::get_telemetry("bench");
    let _span = telemetry.trace("request");
    for request in std::io::stdin().lock().lines() {
        let request = request.expect("request");
        let (case, iters) = request.split_once(' ').expect("case and iterations");
        let iters: u64 = iters.parse().expect("iterations");
        let start = Instant::now();
        match case {
            "0" => {
                for _ in 0..iters {
                    telemetry.log_info_with(black_box("request handled"), &[("status", 200)]);
                }
            }
            "1" => {
                for _ in 0..iters {
                    tracing::info!(status = 200, "request handled");
                }
            }
            _ => {
                for _ in 0..iters {
                    telemetry.log_info_with(
                        black_box("order=42 for Zoë [trace:1] failed"),
                        &[("customer name", "Zoë Ångström"), ("route", "/orders/{id}")],
                    );
                }
            }
        }
        let elapsed = start.elapsed().as_nanos();
        eprintln!("ELAPSED_NS {elapsed}");
    }
}

criterion_group! { name = benches; config = common::criterion(); targets = logs, console }

fn main() {
    if std::env::var_os(CONSOLE_CHILD).is_some() {
        return console_child();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
