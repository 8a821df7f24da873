//! Shutdown: everything recorded before it reaches the JSON log file, on any runtime or none,
//! within the configured timeout; a second shutdown is an error; recording after it is a
//! silent no-op.
//!
//! Each scenario runs in its own child process (`support::child`), which the helper kills and
//! fails if it hangs: that is how a deadlock shows up.

#[path = "../support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use unitel::logfile::{LogRecord, Record, SpanRecord};
use unitel::{configure_telemetry, get_telemetry, Error, TelemetryConfig, TelemetryGuard};

/// Spans (each with one log line) per scenario.
const N: usize = 200;

fn configure(dir: &Path) -> TelemetryGuard {
    configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.join("app.log")),
    )
    .expect("configure")
}

/// One span named `span-{i}` with the log line `log-{i}` inside, on this thread.
fn emit_sync(i: usize) {
    let telemetry = get_telemetry("shutdown");
    let _span = telemetry.trace(format!("span-{i}"));
    telemetry.log_info(&format!("log-{i}"));
}

/// One span named `span-{i}` with the log line `log-{i}` inside, in an async task that may move
/// between threads at the yield.
async fn emit_async(i: usize) {
    let telemetry = get_telemetry("shutdown");
    let span = telemetry.trace(format!("span-{i}"));
    span.instrument(async move {
        tokio::task::yield_now().await;
        telemetry.log_info(&format!("log-{i}"));
        tokio::task::yield_now().await;
    })
    .await
}

/// Spawns the `N` tasks on the current runtime and waits for them.
async fn emit_all_async() {
    let tasks: Vec<_> = (0..N).map(|i| tokio::spawn(emit_async(i))).collect();
    for task in tasks {
        task.await.expect("task");
    }
}

/// Asserts the file holds exactly the `N` spans and `N` logs emitted, each log correlated with
/// its own span.
fn assert_everything_flushed(dir: &Path) {
    let records = support::read_records(dir);
    let spans: HashMap<&str, &SpanRecord> = records
        .iter()
        .filter_map(Record::as_span)
        .map(|span| (span.name.as_str(), span))
        .collect();
    let span_count = records.iter().filter_map(Record::as_span).count();
    let logs: Vec<&LogRecord> = records.iter().filter_map(Record::as_log).collect();
    assert_eq!(span_count, N, "span records in the file");
    assert_eq!(spans.len(), N, "distinct span names in the file");
    assert_eq!(logs.len(), N, "log records in the file");
    for i in 0..N {
        let span = spans
            .get(format!("span-{i}").as_str())
            .unwrap_or_else(|| panic!("no span record span-{i}"));
        let log = logs
            .iter()
            .find(|log| log.message == format!("log-{i}"))
            .unwrap_or_else(|| panic!("no log record log-{i}"));
        // A span record always has a trace id (the reader requires one).
        assert_eq!(
            log.trace_id,
            Some(span.trace_id),
            "log-{i} not in span-{i}'s trace: {log:#?} {span:#?}"
        );
        assert_eq!(
            log.span_id,
            Some(span.span_id),
            "log-{i} not in span-{i}: {log:#?} {span:#?}"
        );
        assert_eq!(span.parent_span_id, None, "{span:#?}");
    }
}

fn line_count(dir: &Path) -> usize {
    support::read_records(dir).len()
}

// ----- flushing on every runtime -----

#[test]
fn shutdown_flushes_everything_without_a_runtime() {
    if support::in_parent("shutdown_flushes_everything_without_a_runtime", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || (t * N / 4..(t + 1) * N / 4).for_each(emit_sync));
        }
    });
    guard.shutdown().expect("shutdown");
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn shutdown_flushes_everything_on_current_thread_runtime() {
    if support::in_parent("shutdown_flushes_everything_on_current_thread_runtime", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        emit_all_async().await;
        guard.shutdown().expect("shutdown inside block_on");
    });
    drop(rt);
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn shutdown_flushes_everything_on_multi_thread_runtime() {
    if support::in_parent("shutdown_flushes_everything_on_multi_thread_runtime", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let guard = rt.block_on(async {
        emit_all_async().await;
        // From a worker thread, not just the block_on thread.
        tokio::spawn(async move {
            guard.shutdown().expect("shutdown on a worker thread");
            guard
        })
        .await
        .expect("shutdown task")
    });
    drop(rt);
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn shutdown_flushes_everything_on_one_worker_thread() {
    if support::in_parent("shutdown_flushes_everything_on_one_worker_thread", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        emit_all_async().await;
        guard.shutdown().expect("shutdown inside block_on");
    });
    drop(rt);
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn shutdown_on_the_only_worker_thread_does_not_deadlock() {
    if support::in_parent("shutdown_on_the_only_worker_thread_does_not_deadlock", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let guard = rt.block_on(async {
        emit_all_async().await;
        tokio::spawn(async move {
            guard.shutdown().expect("shutdown on the only worker");
            guard
        })
        .await
        .expect("shutdown task")
    });
    drop(rt);
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn dropping_the_guard_flushes_everything() {
    if support::in_parent("dropping_the_guard_flushes_everything", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    (0..N).for_each(emit_sync);
    drop(guard);
    assert_everything_flushed(dir.path());
}

#[test]
fn dropping_the_guard_inside_a_runtime_flushes_everything() {
    if support::in_parent(
        "dropping_the_guard_inside_a_runtime_flushes_everything",
        &[],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        emit_all_async().await;
        drop(guard);
    });
    drop(rt);
    assert_everything_flushed(dir.path());
}

// ----- after shutdown -----

#[test]
fn second_shutdown_is_already_shut_down() {
    if support::in_parent("second_shutdown_is_already_shut_down", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure(dir.path());
    emit_sync(0);
    assert!(guard.shutdown().is_ok());
    let second = guard.shutdown();
    assert!(
        matches!(second, Err(Error::AlreadyShutDown)),
        "second shutdown: {second:?}"
    );
    assert!(second
        .unwrap_err()
        .to_string()
        .contains("already shut down"));
    let third = guard.shutdown();
    assert!(matches!(third, Err(Error::AlreadyShutDown)), "{third:?}");
    drop(guard);
}

#[test]
fn recording_after_shutdown_is_a_silent_no_op() {
    if let Some(stdout) = support::run_child("recording_after_shutdown_is_a_silent_no_op", &[]) {
        let lines = support::console_lines(&stdout);
        assert!(
            lines.iter().any(|l| l.contains("log-0")),
            "the log before shutdown is not on the console:\n{stdout}"
        );
        let late: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("after-shutdown") || l.contains("log-1"))
            .collect();
        assert!(late.is_empty(), "printed after shutdown: {late:#?}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Console on as well: nothing may be printed after shutdown either.
    let guard =
        configure_telemetry(TelemetryConfig::new().with_log_file(dir.path().join("app.log")))
            .expect("configure");
    let telemetry = get_telemetry("late");
    let counter = telemetry.counter("late_total");
    let histogram = telemetry.histogram("late_ms");
    let gauge = telemetry.gauge("late_gauge");
    let _observable = telemetry.observable_gauge("late_observable", |g| g.observe(1.0, ()));
    emit_sync(0);
    guard.shutdown().expect("shutdown");
    let before = line_count(dir.path());
    assert_eq!(before, 2, "one span and one log before shutdown");

    {
        let span = telemetry.trace("after-shutdown");
        assert!(!span.is_recording(), "a span after shutdown records");
        span.set_attribute("k", "v");
        span.add_event("e", ());
        assert_eq!(unitel::current_trace_id(), None);
        telemetry.log_info("after-shutdown-log");
        telemetry.log_error("after-shutdown-error");
        counter.add(1, &[("k", "v")]);
        histogram.record(1.0, ());
        gauge.set(2.0, ());
        telemetry.counter("new_after_shutdown_total").add(1, ());
        let _late_observable =
            telemetry.observable_gauge("late_observable_2", |g| g.observe(1.0, ()));
        tracing::info!("after-shutdown-event");
        tracing::info_span!("after-shutdown-tracing-span")
            .in_scope(|| tracing::error!("after-shutdown-event-in-span"));
        emit_sync(1);
    }
    drop(guard);
    std::thread::sleep(Duration::from_millis(100));
    let after = line_count(dir.path());
    assert_eq!(after, before, "lines were added after shutdown");
}

#[test]
fn shutdown_timeout_is_respected_on_current_thread_runtime() {
    if support::in_parent(
        "shutdown_timeout_is_respected_on_current_thread_runtime",
        &[],
    ) {
        return;
    }
    // A collector that never answers: the flush cannot finish, so the timeout is what ends
    // the shutdown.
    let addr = support::fault_collector(0);
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(dir.path().join("app.log"))
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_shutdown_timeout(Duration::from_millis(300)),
    )
    .expect("configure");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        emit_all_async().await;
        let started = Instant::now();
        let result = guard.shutdown();
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(2),
            "shutdown took {elapsed:?}"
        );
        assert!(
            matches!(result, Err(Error::Shutdown { timeout, timed_out: true, .. }) if timeout == Duration::from_millis(300)),
            "{result:?}"
        );
    });
    drop(rt);
}

/// A log file whose writes block forever (a FIFO nobody reads): flushing cannot finish, and
/// shutdown must give up after the configured timeout and say so.
#[cfg(unix)]
#[test]
fn shutdown_gives_up_after_the_timeout_when_the_file_is_stuck() {
    if support::in_parent(
        "shutdown_gives_up_after_the_timeout_when_the_file_is_stuck",
        &[],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("app.log");
    support::mkfifo(&fifo);
    // A reader that never reads: the FIFO has a reader, and writes block once it is full.
    let _reader = support::fifo_reader(&fifo);
    let timeout = Duration::from_millis(300);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&fifo)
            .with_shutdown_timeout(timeout),
    )
    .expect("configure");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Far more than the pipe holds: the writer thread blocks.
        let telemetry = get_telemetry("stuck");
        let padding = "x".repeat(200);
        for i in 0..5_000 {
            telemetry.log_info(&format!("line {i} {padding}"));
        }
        emit_all_async().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let result = guard.shutdown();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(2),
            "shutdown took {elapsed:?}"
        );
        match result {
            Err(Error::Shutdown {
                timeout: t,
                timed_out: true,
                ..
            }) => assert_eq!(t, timeout),
            other => panic!(
                "expected a timed-out shutdown after {timeout:?}, got {other:?} after {elapsed:?}"
            ),
        }
    });
    drop(rt);
    // Dropping the guard after a timed-out shutdown does not wait again.
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(1));
}

// ----- what shutdown loses is counted and said -----

/// Spans and log records recorded into queues of 2048 (set below; the default is larger) that a
/// silent collector never drains: some are refused at the full queue, the rest are still queued
/// at shutdown.
const FLOOD: u64 = 3000;

#[test]
fn what_a_silent_collector_leaves_queued_is_counted_and_said_once_on_drop() {
    let name = "what_a_silent_collector_leaves_queued_is_counted_and_said_once_on_drop";
    if let Some((stdout, stderr)) = support::run_child_with_stderr(name, &[]) {
        let counts = support::marked_counts::<6>(&stdout, "COUNTS");
        let [spans_left, spans_full, spans_failed, logs_left, logs_full, logs_failed] = counts;
        assert!(
            spans_left > 0 && logs_left > 0,
            "nothing counted as still queued at the timeout: {counts:?}"
        );
        assert!(
            spans_full > 0 && logs_full > 0,
            "nothing refused at the full queue of 2048: {counts:?}"
        );
        // Every span and record is accounted for: the collector received none.
        assert_eq!(
            spans_left + spans_full + spans_failed,
            FLOOD,
            "spans: {counts:?}"
        );
        assert_eq!(
            logs_left + logs_full + logs_failed,
            FLOOD,
            "logs: {counts:?}"
        );
        let said: Vec<&str> = stderr.lines().filter(|l| l.contains("shutdown")).collect();
        assert_eq!(said.len(), 1, "one line about shutdown:\n{stderr}");
        let line = said[0];
        assert!(line.starts_with("unitel: shutdown lost data: "), "{line}");
        for expected in [
            format!("spans: {spans_left} still queued for export at the 500ms timeout"),
            format!("logs: {logs_left} still queued for export at the 500ms timeout"),
        ] {
            assert!(line.contains(&expected), "{expected:?} not in {line:?}");
        }
        return;
    }
    let addr = support::fault_collector(0);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_batch_span_processor(unitel::BatchSettings::new().with_max_queue_size(2048))
            .with_batch_log_processor(unitel::BatchSettings::new().with_max_queue_size(2048))
            .with_shutdown_timeout(Duration::from_millis(500)),
    )
    .expect("configure");
    let telemetry = get_telemetry("flood");
    for i in 0..FLOOD {
        let _span = telemetry.trace(format!("span-{i}"));
        telemetry.log_info("line");
    }
    // The path the README recommends: the guard just goes out of scope.
    drop(guard);
    use unitel::{dropped_at, DropReason, Output, Signal};
    let count = |signal, reason| dropped_at(Output::Otlp, signal, reason);
    println!(
        "\nCOUNTS {} {} {} {} {} {}",
        count(Signal::Spans, DropReason::ShutdownTimeout),
        count(Signal::Spans, DropReason::QueueFull),
        count(Signal::Spans, DropReason::ExportFailed),
        count(Signal::Logs, DropReason::ShutdownTimeout),
        count(Signal::Logs, DropReason::QueueFull),
        count(Signal::Logs, DropReason::ExportFailed),
    );
}

#[test]
fn shutdown_async_lets_the_runtime_run_other_tasks_while_it_waits() {
    let name = "shutdown_async_lets_the_runtime_run_other_tasks_while_it_waits";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        // The error was returned to the caller; the guard's drop afterwards says nothing.
        assert!(
            !stderr.contains("shutdown lost data"),
            "the drop after shutdown_async shut down again:\n{stderr}"
        );
        return;
    }
    let addr = support::fault_collector(0);
    let timeout = Duration::from_millis(1000);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_otlp_endpoint(format!("http://{addr}"))
            .with_shutdown_timeout(timeout),
    )
    .expect("configure");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        emit_all_async().await;
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        tokio::task::yield_now().await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        let result = guard.shutdown_async().await;
        let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
        ticker.abort();
        // The silent collector holds the export until the timeout: the shutdown had to wait,
        // and the other task ran meanwhile on the runtime's one thread.
        assert!(
            matches!(
                &result,
                Err(Error::Shutdown {
                    timed_out: true,
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(
            during >= 3,
            "the other task ran {during} times while shutdown_async waited"
        );
    });
    assert!(
        matches!(guard.shutdown(), Err(Error::AlreadyShutDown)),
        "shutdown_async did not shut down"
    );
    drop(guard);
    drop(rt);
}

/// A span processor whose shutdown panics (an application's own processor with a bug).
#[derive(Debug)]
struct PanicsAtShutdown;

impl unitel::opentelemetry_sdk::trace::SpanProcessor for PanicsAtShutdown {
    fn on_start(
        &self,
        _span: &mut unitel::opentelemetry_sdk::trace::Span,
        _cx: &unitel::opentelemetry::Context,
    ) {
    }

    fn on_end(&self, _span: unitel::opentelemetry_sdk::trace::SpanData) {}

    fn force_flush(&self) -> unitel::opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(
        &self,
        _timeout: Duration,
    ) -> unitel::opentelemetry_sdk::error::OTelSdkResult {
        panic!("a bug in the processor")
    }
}

/// A part whose shutdown panics is named as failed, with the SDK error as its source, at once:
/// not as still flushing at a timeout it never waited for.
#[test]
fn a_part_that_panics_at_shutdown_is_reported_failed_not_still_flushing() {
    let name = "a_part_that_panics_at_shutdown_is_reported_failed_not_still_flushing";
    // The processor's panic is the test: only that one may be said.
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        support::assert_said_once(&stderr, "panicked at");
        return;
    }
    let timeout = Duration::from_secs(3);
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_span_processor(PanicsAtShutdown)
            .with_shutdown_timeout(timeout),
    )
    .expect("configure");
    drop(get_telemetry("panics").trace("span"));
    let started = Instant::now();
    let result = guard.shutdown();
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());
    match &result {
        Err(Error::Shutdown {
            timed_out: false,
            lost,
            failures,
            ..
        }) if lost.is_empty() => {
            let [(unitel::Signal::Spans, failure @ unitel::ShutdownFailure::Failed(_))] =
                &failures[..]
            else {
                panic!("{failures:?}")
            };
            let source = std::error::Error::source(failure).map(|s| s.to_string());
            assert!(
                source.as_deref().is_some_and(|s| s.contains("panicked")),
                "{source:?}"
            );
            assert_eq!(
                result.as_ref().map_err(|e| e.to_string()).unwrap_err(),
                "telemetry shutdown: spans: failed to flush (Operation failed: the exporter \
                 panicked while shutting down)"
            );
        }
        other => panic!("expected a failed shutdown, not a timeout: {other:?}"),
    }
}

// ----- stopping on Ctrl-C / SIGTERM -----

/// Runs `test` in a child process of its own, with `dir` for its log file, and waits until it
/// says `signal-test: ready` (its handlers are installed). libtest's own `test … ` may come
/// first on the line, hence `ends_with`.
fn start_signalled(test: &str, dir: &Path) -> support::Running {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("UNITEL_CHILD", test)
        .env("UNITEL_SIGNAL_DIR", dir);
    let mut child = support::Running::spawn(test, &mut command);
    wait_said(&mut child, "signal-test: ready");
    child
}

fn wait_said(child: &mut support::Running, what: &str) {
    child.wait_for(|line| line.ends_with(what).then_some(()));
}

/// Child side: the directory the parent gave, or `None` in the parent.
fn signal_dir(test: &str) -> Option<std::path::PathBuf> {
    (std::env::var("UNITEL_CHILD").as_deref() == Ok(test))
        .then(|| std::env::var_os("UNITEL_SIGNAL_DIR").map(Into::into))
        .flatten()
}

/// SIGTERM (what `docker stop` sends) resolves `shutdown_signal()` on a multi-thread runtime;
/// `main` carries on, and the guard flushes the spans recorded before the signal and the one
/// recorded after it: the process exits 0 with all of them in the file.
#[cfg(unix)]
#[test]
fn sigterm_resolves_shutdown_signal_and_the_guard_flushes_everything() {
    let test = "sigterm_resolves_shutdown_signal_and_the_guard_flushes_everything";
    if let Some(dir) = signal_dir(test) {
        let guard = configure(&dir);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            for i in 0..N - 1 {
                emit_async(i).await;
            }
            let stop = unitel::shutdown_signal();
            // The handlers are installed by the first call, before `ready` is said.
            assert!(!unitel::shutdown_requested());
            println!("signal-test: ready");
            stop.await;
            assert!(unitel::shutdown_requested());
            // A second wait sees the same signal at once.
            unitel::shutdown_signal().await;
            emit_async(N - 1).await;
        });
        drop(guard);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let child = start_signalled(test, dir.path());
    // Nothing has flushed the batch yet: the spans are still in the process.
    child.signal("TERM");
    let (status, said) = child.finish();
    assert!(status.success(), "{status:?}\n{said}");
    assert_everything_flushed(dir.path());
}

/// Without any async runtime: a plain loop polls `shutdown_requested()`, and Ctrl-C (SIGINT)
/// ends it.
#[cfg(unix)]
#[test]
fn sigint_ends_a_plain_loop_that_polls_shutdown_requested() {
    let test = "sigint_ends_a_plain_loop_that_polls_shutdown_requested";
    if let Some(dir) = signal_dir(test) {
        let guard = configure(&dir);
        assert!(!unitel::shutdown_requested());
        println!("signal-test: ready");
        let mut i = 0;
        while !unitel::shutdown_requested() {
            if i < N {
                emit_sync(i);
                i += 1;
                if i == N {
                    println!("signal-test: emitted");
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // The loop ran until the signal, which the parent sent after all N.
        assert_eq!(i, N);
        drop(guard);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = start_signalled(test, dir.path());
    wait_said(&mut child, "signal-test: emitted");
    child.signal("INT");
    let (status, said) = child.finish();
    assert!(status.success(), "{status:?}\n{said}");
    assert_everything_flushed(dir.path());
}

/// A second SIGTERM while the shutdown hangs ends the process at once with status 143, as
/// SIGTERM would without a handler, saying why.
#[cfg(unix)]
#[test]
fn a_second_sigterm_ends_a_stuck_shutdown_with_status_143() {
    let test = "a_second_sigterm_ends_a_stuck_shutdown_with_status_143";
    if let Some(dir) = signal_dir(test) {
        let _guard = configure(&dir);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let stop = unitel::shutdown_signal();
            assert!(!unitel::shutdown_requested());
            println!("signal-test: ready");
            stop.await;
            println!("signal-test: stuck");
            // A shutdown that never finishes.
            std::future::pending::<()>().await;
        });
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = start_signalled(test, dir.path());
    child.signal("TERM");
    wait_said(&mut child, "signal-test: stuck");
    child.signal("TERM");
    let (status, said) = child.finish();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.code(),
        Some(143),
        "{status:?} {:?}\n{said}",
        status.signal()
    );
    assert!(
        said.contains("unitel: second SIGTERM: exiting without waiting for the shutdown"),
        "{said}"
    );
}
