//! Runs one span or log case of `spans` and `logs` a given number of times, for counting its
//! allocations with heaptrack (the crate forbids `unsafe`, so no counting allocator): the
//! difference between a run of N calls and a run of 0 calls, divided by N, is the allocations
//! per call in the whole process (export and writer threads included).
//!
//! ```sh
//! cargo bench --bench spans_allocs --no-run   # then, for each CASE (`list` prints them):
//! heaptrack -o /tmp/a target/release/deps/spans_allocs-* CASE 100000
//! heaptrack -o /tmp/b target/release/deps/spans_allocs-* CASE 0
//! heaptrack_print /tmp/a.zst | grep 'calls to allocation'   # (a - b) / 100000
//! ```

#![allow(missing_docs)]

mod common;

use common::Bare;
use std::hint::black_box;

/// The cases, by name.
const CASES: &[&str] = &[
    "facade-span-0",
    "facade-span-3",
    "unitel-instrument-0",
    "unitel-instrument-3",
    "facade-log-in-facade-span",
    "tracing-info-in-facade-span",
    "tracing-info-in-tracing-span",
    "bare-instrument-0",
    "bare-instrument-3",
    "bare-span-3",
    "bare-lean-instrument-0",
    "bare-lean-instrument-3",
    "bare-lean-span-3",
    "bare-json-line",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench binary with `--bench`: nothing to do then.
    let (Some(case), Some(calls)) = (args.first(), args.get(1)) else {
        if args.first().map(String::as_str) == Some("list") {
            println!("{}", CASES.join("\n"));
        }
        return;
    };
    let calls: u64 = calls.parse().expect("a number of calls");
    assert!(CASES.contains(&case.as_str()), "unknown case {case}");
    let dir = tempfile::tempdir().expect("tempdir");
    // Only the bare cases run without unitel, so that a bare run counts nothing of it. The
    // span cases have no log file, as in `spans`; the log cases write to one, as in `logs`.
    let _guard = (!case.starts_with("bare")).then(|| {
        let mut config = unitel::TelemetryConfig::new()
            .with_console(false)
            .with_sampler(unitel::Sampler::AlwaysOn)
            .with_span_processor(common::discarding_processor());
        if case.contains("-in-") {
            config = config.with_log_file(dir.path().join("facade.log"));
        }
        unitel::configure_telemetry(config).expect("configure")
    });
    let telemetry = unitel::get_telemetry("bench");
    let run = |f: &mut dyn FnMut()| {
        for _ in 0..calls {
            f();
        }
    };
    let sampler = || opentelemetry_sdk::trace::Sampler::AlwaysOn;
    match case.as_str() {
        "facade-span-0" => run(&mut || {
            drop(black_box(telemetry.trace("op")));
        }),
        "facade-span-3" => run(&mut || {
            drop(black_box(
                telemetry.trace_with("op", &[("a", 1), ("b", 2), ("c", 3)]),
            ));
        }),
        "unitel-instrument-0" => run(&mut common::instrumented_0),
        "unitel-instrument-3" => run(&mut || common::instrumented_3(1, 2, 3)),
        "facade-log-in-facade-span" => {
            let _span = telemetry.trace("request");
            run(&mut || telemetry.log_info_with("request handled", &[("status", 200)]));
        }
        "tracing-info-in-facade-span" => {
            let _span = telemetry.trace("request");
            run(&mut || tracing::info!(status = 200, "request handled"));
        }
        "tracing-info-in-tracing-span" => {
            let _span = tracing::info_span!("request").entered();
            run(&mut || tracing::info!(status = 200, "request handled"));
        }
        "bare-json-line" => {
            let (bare, _writer_guard) = common::bare_json_subscriber(&dir.path().join("bare.log"));
            tracing::subscriber::with_default(bare, || {
                let _span = tracing::info_span!("request").entered();
                run(&mut || tracing::info!(status = 200, "request handled"));
            });
        }
        bare_case => {
            let bare = if bare_case.starts_with("bare-lean") {
                Bare::Lean
            } else {
                Bare::Default
            };
            common::with_bare(sampler(), bare, || {
                if bare_case.ends_with("instrument-0") {
                    run(&mut common::instrumented_0)
                } else if bare_case.ends_with("instrument-3") {
                    run(&mut || common::instrumented_3(1, 2, 3))
                } else {
                    run(&mut || {
                        drop(black_box(
                            tracing::info_span!("op", a = 1, b = 2, c = 3).entered(),
                        ));
                    })
                }
            });
        }
    }
    // Let the batch and writer threads finish.
    std::thread::sleep(std::time::Duration::from_millis(200));
}
