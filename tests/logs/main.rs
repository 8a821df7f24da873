//! Correlated logs: facade logs and `tracing`/`log` events carry trace and span ids, on the
//! console and in the JSON file, and no input can break or forge a record.

#[path = "../support/mod.rs"]
mod support;

use unitel::logfile::{LogRecord, SpanRecord};
use unitel::opentelemetry::trace::SpanId;
use unitel::testing::capture;
use unitel::{get_telemetry, TelemetryConfig};

#[test]
fn facade_logs_carry_ids_component_and_fields() {
    let capture = capture();
    let telemetry = get_telemetry("api_gateway");
    telemetry.log_info("outside any span");
    let (trace_id, span_id) = {
        let span = telemetry.trace("handle");
        telemetry.log_debug("debug line");
        telemetry.log_info_with("Request received", &[("user_id", "123")]);
        telemetry.log_warning_with("Slow query detected", &[("duration_ms", 5000)]);
        telemetry.log_error("plain error");
        (
            span.trace_id().expect("trace"),
            span.span_id().expect("span"),
        )
    };

    let outside = capture.log("outside any span").expect("logged");
    assert_eq!(outside.trace_id, None);
    assert_eq!(outside.span_id, None);
    assert_eq!(outside.json["trace_id"], serde_json::Value::Null);

    for (message, level) in [
        ("debug line", "DEBUG"),
        ("Request received", "INFO"),
        ("Slow query detected", "WARN"),
        ("plain error", "ERROR"),
    ] {
        let log = capture
            .log(message)
            .unwrap_or_else(|| panic!("{message} not logged"));
        assert_eq!(log.level, level);
        assert_eq!(log.component, "api_gateway");
        assert_eq!(log.target, "api_gateway");
        assert_eq!(
            log.trace_id.as_deref(),
            Some(trace_id.as_str()),
            "{message}"
        );
        assert_eq!(log.span_id.as_deref(), Some(span_id.as_str()), "{message}");
        assert!(log.json["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
    }
    assert_eq!(
        capture.log("Request received").unwrap().fields["user_id"],
        "123"
    );
    assert_eq!(
        capture.log("Slow query detected").unwrap().fields["duration_ms"],
        5000
    );
}

#[derive(Debug)]
struct JobError(std::io::Error);
impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("job 7 failed")
    }
}
impl std::error::Error for JobError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn error_logs_record_the_cause_chain() {
    let capture = capture();
    let telemetry = get_telemetry("worker");
    let err = JobError(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "database timed out",
    ));
    telemetry.log_error_with_cause("Job failed", &err, &[("job_id", "7")]);
    let log = capture.log("Job failed").expect("logged");
    assert_eq!(log.level, "ERROR");
    assert_eq!(log.error_chain, vec!["job 7 failed", "database timed out"]);
    assert_eq!(log.fields["job_id"], "7");
}

#[test]
fn tracing_events_are_correlated_with_contextual_and_explicit_parents() {
    let capture = capture();
    let telemetry = get_telemetry("mixed");
    let (facade_trace, facade_span) = {
        let span = telemetry.trace("facade");
        tracing::info!(
            user = "alice",
            attempt = 2,
            ok = true,
            ratio = 0.5,
            "from tracing"
        );
        (span.trace_id().unwrap(), span.span_id().unwrap())
    };
    let log = capture.log("from tracing").expect("tracing event captured");
    assert_eq!(log.trace_id.as_deref(), Some(facade_trace.as_str()));
    assert_eq!(log.span_id.as_deref(), Some(facade_span.as_str()));
    assert_eq!(
        log.component, "logs",
        "a tracing event's component is its target"
    );
    assert_eq!(log.fields["user"], "alice");
    assert_eq!(log.fields["attempt"], 2);
    assert_eq!(log.fields["ok"], true);
    assert_eq!(log.fields["ratio"], 0.5);

    // An explicit parent that is not entered: the event carries that span's ids, not the
    // current span's.
    let background = tracing::info_span!("background");
    {
        let _current = telemetry.trace("unrelated_current");
        tracing::info!(parent: &background, "explicit parent");
        tracing::info!(parent: None, "explicit root");
    }
    drop(background);
    let spans = capture.spans();
    let background = spans
        .iter()
        .find(|s| s.name == "background")
        .expect("background span");
    let explicit = capture.log("explicit parent").expect("captured");
    assert_eq!(
        explicit.trace_id.as_deref(),
        Some(background.trace_id.as_str())
    );
    assert_eq!(
        explicit.span_id.as_deref(),
        Some(background.span_id.as_str())
    );
    let root = capture.log("explicit root").expect("captured");
    assert_eq!(root.trace_id, None);

    // Inside a `tracing` span, the ids are that span's.
    let inner = tracing::info_span!("tracing_span");
    inner.in_scope(|| tracing::warn!("inside tracing span"));
    drop(inner);
    let spans = capture.spans();
    let inner = spans
        .iter()
        .find(|s| s.name == "tracing_span")
        .expect("span");
    let warn = capture.log("inside tracing span").expect("captured");
    assert_eq!(warn.span_id.as_deref(), Some(inner.span_id.as_str()));
    assert_eq!(warn.level, "WARN");
}

#[test]
fn log_crate_records_are_correlated() {
    let capture = capture();
    let telemetry = get_telemetry("legacy");
    let span = telemetry.trace("legacy_span");
    log::warn!(target: "some_library", "from the log crate");
    let trace_id = span.trace_id();
    drop(span);
    let log = capture
        .log("from the log crate")
        .expect("log record captured");
    assert_eq!(log.target, "some_library");
    assert_eq!(log.level, "WARN");
    assert_eq!(log.trace_id, trace_id);
    assert!(
        !log.fields.keys().any(|k| k.starts_with("log.")),
        "{:?}",
        log.fields
    );
}

#[test]
fn no_message_or_field_can_forge_or_break_a_record() {
    let capture = capture();
    let telemetry = get_telemetry("injection");
    let evil = "line one\r\n{\"type\":\"log\",\"level\":\"ERROR\",\"message\":\"forged\"}\n\"quoted\" \\ back\u{1b}[31m\u{0}";
    telemetry.log_info_with(evil, &[("field\"key\n", evil.to_string())]);
    tracing::info!(value = evil, "{evil}");
    let raw = capture.raw_lines();
    let logs = capture.logs();
    assert_eq!(raw.len(), 2, "exactly one line per event: {raw:#?}");
    assert!(raw.iter().all(|l| !l.contains('\n') && !l.contains('\r')));
    assert!(
        logs.iter().all(|l| l.message == evil),
        "messages round-trip exactly"
    );
    assert_eq!(logs[0].fields["field\"key\n"], evil);
    assert_eq!(logs[1].fields["value"], evil);
    assert!(logs.iter().all(|l| l.message != "forged"));
}

#[test]
fn console_lines_end_with_trace_and_span_ids() {
    if let Some(out) = support::child("console_lines_end_with_trace_and_span_ids", &[]) {
        let stdout = support::assert_ok(&out);
        let lines = support::console_lines(&stdout);
        let inside: Vec<_> = lines.iter().filter(|l| l.contains("inside")).collect();
        assert_eq!(inside.len(), 3, "{stdout}");
        let ids = support::marked(&stdout, "IDS").expect("ids printed");
        let (trace_id, span_id) = ids.split_once(' ').expect("two ids");
        for line in inside {
            assert!(
                line.ends_with(&format!("[trace:{trace_id}] [span:{span_id}]")),
                "{line}"
            );
        }
        let outside = lines
            .iter()
            .find(|l| l.contains("outside"))
            .expect("outside line");
        assert!(!outside.contains("[trace:"), "{outside}");
        assert!(outside.contains(" INFO console: outside"), "{outside}");
        // A line break in a message is escaped: still one line, ids at its end.
        let broken = lines
            .iter()
            .find(|l| l.contains("first"))
            .expect("escaped line");
        assert!(broken.contains("first\\nsecond"), "{broken}");
        assert!(lines
            .iter()
            .any(|l| l.contains("user_id=123") && l.contains("inside with field")));
        return;
    }
    let _guard = unitel::configure_telemetry(TelemetryConfig::new()).expect("configure");
    let telemetry = get_telemetry("console");
    telemetry.log_info("outside");
    let span = telemetry.trace("console_span");
    telemetry.log_info_with("inside with field", &[("user_id", "123")]);
    tracing::info!("inside from tracing");
    telemetry.log_warning("inside first\nsecond");
    println!(
        "IDS {} {}",
        span.trace_id().unwrap(),
        span.span_id().unwrap()
    );
}

#[test]
fn log_filter_applies_per_component() {
    if let Some(out) = support::child(
        "log_filter_applies_per_component",
        &[("RUST_LOG", "warn,chatty=debug")],
    ) {
        let stdout = support::assert_ok(&out);
        let lines = support::console_lines(&stdout);
        let has = |s: &str| lines.iter().any(|l| l.contains(s));
        assert!(has("chatty debug"), "{stdout}");
        assert!(!has("chatty trace"), "{stdout}");
        assert!(!has("quiet info"), "{stdout}");
        assert!(has("quiet warning"), "{stdout}");
        return;
    }
    let _guard = unitel::configure_telemetry(TelemetryConfig::from_env()).expect("configure");
    get_telemetry("chatty").log_debug("chatty debug");
    tracing::trace!(target: "chatty", "chatty trace");
    get_telemetry("quiet").log_info("quiet info");
    get_telemetry("quiet").log_warning("quiet warning");
}

#[test]
fn json_file_holds_logs_and_span_records_of_a_whole_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(out) = support::child_in(
        "json_file_holds_logs_and_span_records_of_a_whole_trace",
        &[],
        dir.path(),
    ) {
        let stdout = support::assert_ok(&out);
        let trace_id = support::marked(&stdout, "TRACE").expect("trace id printed");
        let records = support::read_records(&dir.path().join("logs"));
        let of_trace: Vec<_> = records
            .iter()
            .filter(|r| r.trace_id().is_some_and(|id| id.to_string() == trace_id))
            .collect();
        let logs: Vec<&LogRecord> = of_trace.iter().filter_map(|r| r.as_log()).collect();
        let spans: Vec<&SpanRecord> = of_trace.iter().filter_map(|r| r.as_span()).collect();
        assert_eq!(logs.len(), 3, "{of_trace:#?}");
        assert_eq!(spans.len(), 3, "{of_trace:#?}");
        // Every record parsed as a typed log or span record, so each has all of its keys
        // (`timestamp`, `level`, `target`, `component`, `message`, `fields` of a log;
        // `timestamp`, `name`, `component`, `trace_id`, `span_id`, `kind`, `start_time`,
        // `duration_ns`, `status`, `attributes`, `events` of a span) with a value of the
        // right type; only a log's ids may be null, and inside a trace they must not be.
        for log in &logs {
            assert!(
                log.trace_id.is_some(),
                "log record lacks trace_id: {log:#?}"
            );
            assert!(log.span_id.is_some(), "log record lacks span_id: {log:#?}");
        }
        // One tree: exactly one root, every parent id resolves to a span of the trace, and
        // every log's span id is one of the trace's spans.
        let ids: Vec<SpanId> = spans.iter().map(|s| s.span_id).collect();
        assert_eq!(
            spans.iter().filter(|s| s.parent_span_id.is_none()).count(),
            1,
            "{spans:#?}"
        );
        for span in &spans {
            if let Some(parent) = span.parent_span_id {
                assert!(ids.contains(&parent), "dangling parent {parent}");
            }
        }
        for log in &logs {
            assert!(log.span_id.is_some_and(|id| ids.contains(&id)), "{log:#?}");
        }
        let worker_log = logs
            .iter()
            .find(|l| l.message == "worker step")
            .expect("worker log");
        assert_eq!(worker_log.component, "worker");
        assert_eq!(worker_log.fields["job"], 1);
        return;
    }
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file("logs/app.log"),
    )
    .expect("configure");
    let api = get_telemetry("api");
    {
        let root = api.trace("request");
        api.log_info("request start");
        let cx = unitel::TraceContext::current();
        std::thread::spawn(move || {
            let _attached = cx.attach();
            let worker = get_telemetry("worker");
            let _job = worker.trace("job");
            worker.log_info_with("worker step", &[("job", 1)]);
            let _inner = tracing::info_span!("tracing_inner").entered();
            tracing::info!("from tracing in worker");
        })
        .join()
        .unwrap();
        println!("TRACE {}", root.trace_id().unwrap());
    }
    // Another trace, which must not mix in.
    let _other = api.trace("other_request");
    api.log_info("other");
    drop(_other);
    guard.shutdown().expect("shutdown");
}

#[test]
fn rotation_names_files_by_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(out) = support::child_in("rotation_names_files_by_date", &[], dir.path()) {
        support::assert_ok(&out);
        let names: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let name = &names[0];
        // orders.YYYY-MM-DD.log
        assert!(
            name.starts_with("orders.")
                && name.ends_with(".log")
                && name.len() == "orders.2026-01-01.log".len(),
            "{name}"
        );
        let records = support::read_records(&dir.path().join("logs"));
        assert!(
            records
                .iter()
                .any(|r| r.as_log().is_some_and(|l| l.message == "rotated")),
            "{records:#?}"
        );
        // The configured path finds the dated file too: the reader knows the rotation naming.
        let by_path = support::read_records(&dir.path().join("logs/orders.log"));
        assert_eq!(by_path, records);
        return;
    }
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file("logs/orders.log")
            .with_log_rotation(unitel::LogRotation::Daily)
            .with_max_log_files(3),
    )
    .expect("configure");
    get_telemetry("orders").log_info("rotated");
    guard.shutdown().expect("shutdown");
}

/// `configure_telemetry` with `with_log_file(path)` on a child thread: its result, or a panic
/// when it has not returned within 5 s (it hung in `open`).
fn configure_with_log_file_within_5s(path: &str) -> Result<unitel::TelemetryGuard, unitel::Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(unitel::configure_telemetry(
            TelemetryConfig::new()
                .with_console(false)
                .with_log_file(path),
        ));
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .expect("configure_telemetry did not return within 5 s (blocked opening the log file?)")
}

#[test]
fn a_pipe_nothing_reads_or_a_directory_as_log_file_is_a_startup_error() {
    let name = "a_pipe_nothing_reads_or_a_directory_as_log_file_is_a_startup_error";
    let dir = tempfile::tempdir().expect("tempdir");
    if std::env::var("UNITEL_CHILD").as_deref() != Ok(name) {
        support::mkfifo(&dir.path().join("pipe.log"));
        std::fs::create_dir(dir.path().join("dir.log")).expect("mkdir dir.log");
    }
    if let Some(out) = support::child_in(name, &[], dir.path()) {
        support::assert_ok(&out);
        return;
    }
    for (path, kind) in [
        ("pipe.log", "a named pipe (FIFO) that nothing reads"),
        ("dir.log", "a directory"),
    ] {
        let err = configure_with_log_file_within_5s(path)
            .err()
            .unwrap_or_else(|| panic!("with_log_file({path:?}) on {kind} was accepted"));
        assert!(
            matches!(err, unitel::Error::LogFile { .. }),
            "{path}: expected Error::LogFile, got {err:?}"
        );
        let message = format!("{err}");
        assert!(
            message.contains("TelemetryConfig::with_log_file"),
            "{path}: the error should name the setting: {message}"
        );
        let cause = std::error::Error::source(&err).map(|s| s.to_string());
        assert!(
            cause
                .as_deref()
                .is_some_and(|c| c.contains(kind) && c.contains(path)),
            "{path}: the cause should say it is {kind}: {cause:?}"
        );
    }
}

/// A reader that opened the pipe the ordinary way (`cat app.log`, a log shipper), waiting in
/// `open` before the application starts: start-up does not take the pipe away from it (no
/// open-and-close to look for a reader, after which it would read the end of the pipe and
/// exit), and it gets every line. Many other files in the directory, listed when old log
/// files are pruned, keep start-up busy long enough for the reader to read.
#[cfg(unix)]
#[test]
fn a_pipe_whose_reader_waits_in_open_gets_the_lines() {
    let name = "a_pipe_whose_reader_waits_in_open_gets_the_lines";
    if support::run_child(name, &[]).is_some() {
        return;
    }
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("app.log");
    support::mkfifo(&fifo);
    for i in 0..5000 {
        std::fs::write(dir.path().join(format!("other-{i}.txt")), "").expect("write a file");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let reading = fifo.clone();
    std::thread::spawn(move || {
        // Blocks until a writer opens the pipe, then reads until every writer closed it.
        let mut text = String::new();
        let read = std::fs::File::open(&reading).and_then(|mut f| f.read_to_string(&mut text));
        let _ = tx.send(read.map(|_| text));
    });
    // Let the reader get into `open`.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&fifo)
            .with_max_log_files(2),
    )
    .expect("start-up with a reader waiting on the pipe");
    let telemetry = get_telemetry("shipper");
    for i in 0..100 {
        telemetry.log_info_with("shipped", &[("i", i)]);
    }
    guard.shutdown().expect("shutdown");
    let text = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the reader got to the end of the pipe")
        .expect("read the pipe");
    let shipped = text
        .lines()
        .filter_map(|line| unitel::logfile::parse_line(line).ok())
        .filter(|record| record.as_log().is_some_and(|l| l.message == "shipped"))
        .count();
    assert_eq!(shipped, 100, "the reader got every line:\n{text}");
}

#[cfg(unix)]
#[test]
fn a_stuck_log_file_drops_and_counts_lines_without_blocking() {
    let name = "a_stuck_log_file_drops_and_counts_lines_without_blocking";
    if support::run_child(name, &[]).is_some() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("app.log");
    support::mkfifo(&fifo);
    // The file is a pipe with a reader that does not read until the end: once the pipe's
    // buffer is full the writer retries every 5 ms, the queue fills up to its 16 MiB and
    // every line past that is dropped.
    let mut reader = support::fifo_reader(&fifo);
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&fifo)
            .with_shutdown_timeout(std::time::Duration::from_millis(200)),
    )
    .expect("configure");
    let telemetry = get_telemetry("flood");
    let padding = "x".repeat(400);
    let total: u64 = 200_000; // about 100 MiB of lines
    let started = std::time::Instant::now();
    for i in 0..total {
        telemetry.log_info_with("line", &[("i", i.to_string()), ("pad", padding.clone())]);
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(20),
        "logging never waits for the file: {took:?}"
    );
    let _ = guard.shutdown();
    let bytes = support::read_available(&mut reader);
    let in_pipe = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| unitel::logfile::parse_line(line).ok())
        .filter(|record| record.as_log().is_some_and(|l| l.message == "line"))
        .count() as u64;
    let dropped: u64 = [
        unitel::DropReason::QueueFull,
        unitel::DropReason::WriteFailed,
        unitel::DropReason::ShutdownTimeout,
    ]
    .into_iter()
    .map(|reason| unitel::dropped_at(unitel::Output::LogFile, unitel::Signal::Logs, reason))
    .sum();
    assert!(
        unitel::dropped_at(
            unitel::Output::LogFile,
            unitel::Signal::Logs,
            unitel::DropReason::QueueFull
        ) > 0,
        "the queue filled up"
    );
    assert_eq!(
        in_pipe + dropped,
        total,
        "{in_pipe} lines in the pipe, {dropped} counted as dropped"
    );
}

#[test]
fn the_reader_finds_a_logs_rotated_files_in_time_order_and_names_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let line = |message: &str| {
        format!(
            "{{\"timestamp\":\"2026-11-21T05:10:04.123456Z\",\"type\":\"log\",\"level\":\"INFO\",\"target\":\"orders\",\"component\":\"orders\",\"message\":\"{message}\",\"trace_id\":null,\"span_id\":null,\"fields\":{{}}}}\n"
        )
    };
    for (file, message) in [
        ("orders.2026-11-21.log", "second"),
        ("orders.2026-11-20.log", "first"),
        ("orders.2026-11-21-07.log", "third"),
        ("other.log", "another log"),
        ("orders.log.bak", "a backup"),
    ] {
        std::fs::write(dir.path().join(file), line(message)).unwrap();
    }
    let files: Vec<String> = unitel::logfile::log_files(dir.path().join("orders.log"))
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        [
            "orders.2026-11-20.log",
            "orders.2026-11-21-07.log",
            "orders.2026-11-21.log"
        ]
    );
    let messages: Vec<String> = unitel::logfile::read_records(dir.path().join("orders.log"))
        .unwrap()
        .into_iter()
        .filter_map(|r| r.as_log().map(|l| l.message.clone()))
        .collect();
    assert_eq!(messages, ["first", "third", "second"]);

    // A line that is not a record: the error names the file and the line, and says why.
    let bad = dir.path().join("orders.2026-11-22.log");
    std::fs::write(&bad, format!("{}\n{{\"type\":\"log\"}}\n", line("fourth"))).unwrap();
    let err = unitel::logfile::read_records(dir.path().join("orders.log")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("orders.2026-11-22.log") && message.contains("line 3"),
        "{message}"
    );
    let cause = std::error::Error::source(&err)
        .expect("a cause")
        .to_string();
    assert!(cause.contains("`timestamp`"), "{cause}");
}

/// Every invisible character the console must escape: line and paragraph separators, NEL,
/// bidi overrides, embeddings, isolates and marks, zero-width characters, BOM, soft hyphen, a
/// tag character.
const INVISIBLE: &[char] = &[
    '\u{2028}',
    '\u{2029}',
    '\u{85}',
    '\u{202a}',
    '\u{202b}',
    '\u{202c}',
    '\u{202d}',
    '\u{202e}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200e}',
    '\u{200f}',
    '\u{61c}',
    '\u{200b}',
    '\u{200c}',
    '\u{200d}',
    '\u{2060}',
    '\u{feff}',
    '\u{ad}',
    '\u{e0041}',
];

#[test]
fn console_lines_cannot_be_forged() {
    let fake_ids = format!("[trace:{}] [span:{}]", "f".repeat(32), "f".repeat(16));
    if let Some(out) = support::child("console_lines_cannot_be_forged", &[]) {
        let stdout = support::assert_ok(&out);
        for c in INVISIBLE {
            assert!(
                !stdout.contains(*c),
                "U+{:04X} reached the console",
                *c as u32
            );
        }
        let lines = support::console_lines(&stdout);
        let line = |needle: &str| {
            *lines
                .iter()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stdout}"))
        };
        let ids = support::marked(&stdout, "IDS").expect("ids printed");
        let (trace_id, span_id) = ids.split_once(' ').expect("two ids");
        let real = format!(" [trace:{trace_id}] [span:{span_id}]");

        // Outside a span the line has no ids, and no text of it passes for them.
        let outside = line("outside x");
        assert!(!outside.contains(" [trace:"), "{outside}");
        assert!(outside.contains("outside x \\[trace:ffff"), "{outside}");
        // Inside a span the real ids are the only ones, at the end.
        for needle in ["inside x", "keyed", "valued"] {
            let inside = line(needle);
            assert!(inside.ends_with(&real), "{inside}");
            assert_eq!(inside.matches(" [trace:").count(), 1, "{inside}");
            assert_eq!(inside.matches(" [span:").count(), 1, "{inside}");
        }
        // A key that is not a simple token is quoted: one field, not three.
        assert!(
            line("keyed").contains(": keyed \"a b=c d\"=v "),
            "{}",
            line("keyed")
        );
        // A value cannot carry the ids either.
        assert!(
            line("valued").contains(" v=\"x \\[trace:ffff"),
            "{}",
            line("valued")
        );
        // A message cannot pass for fields.
        assert!(
            line("login").contains(": login user\\=alice role\\=admin"),
            "{}",
            line("login")
        );
        // Invisible characters are escaped in messages, keys and values.
        let hidden = line("hidden some");
        assert!(
            hidden.contains(
                "hidden some \\u{2028}\\u{2029}\\u{85}\\u{202e}\\u{2066}\\u{200e}\\u{61c}\\u{200b}\\u{2060}\\u{feff} end"
            ),
            "{hidden}"
        );
        let all = line("hidden all");
        let escaped: String = INVISIBLE
            .iter()
            .map(|c| format!("\\u{{{:x}}}", *c as u32))
            .collect();
        assert!(all.contains(&format!("hidden all {escaped} end")), "{all}");
        assert!(
            all.contains(" \"k\\u{202e}\"=\"\\u{202e}gnp.exe\\u{200b}\""),
            "{all}"
        );
        // What is readable stays as it was.
        assert!(
            line("plain").contains(
                ": plain x = 5, [worker 3] café route=/orders/{id} name=\"Zoë Ångström\""
            ),
            "{}",
            line("plain")
        );
        return;
    }
    let _guard = unitel::configure_telemetry(TelemetryConfig::new()).expect("configure");
    let telemetry = get_telemetry("forge");
    telemetry.log_info(&format!("outside x {fake_ids}"));
    let span = telemetry.trace("forge_span");
    telemetry.log_info(&format!("inside x {fake_ids}"));
    telemetry.log_info_with("keyed", &[("a b=c d", "v")]);
    telemetry.log_info_with("valued", &[("v", format!("x {fake_ids}"))]);
    telemetry.log_info("login user=alice role=admin");
    let invisible: String = INVISIBLE.iter().collect();
    telemetry.log_info_with(
        &format!("hidden all {invisible} end"),
        &[(String::from("k\u{202e}"), "\u{202e}gnp.exe\u{200b}")],
    );
    telemetry.log_info("hidden some \u{2028}\u{2029}\u{85}\u{202e}\u{2066}\u{200e}\u{61c}\u{200b}\u{2060}\u{feff} end");
    telemetry.log_info_with(
        "plain x = 5, [worker 3] café",
        &[("route", "/orders/{id}"), ("name", "Zoë Ångström")],
    );
    println!(
        "IDS {} {}",
        span.trace_id().unwrap(),
        span.span_id().unwrap()
    );
}

#[test]
fn a_field_given_twice_keeps_its_last_value() {
    let capture = capture();
    let telemetry = get_telemetry("twice");
    telemetry.log_info_with("facade twice", &[("a", 1), ("b", 2), ("a", 3)]);
    tracing::info!(a = 1, b = 2, a = 3, "tracing twice");
    for message in ["facade twice", "tracing twice"] {
        let raw = capture
            .raw_lines()
            .into_iter()
            .find(|l| l.contains(message))
            .expect("logged");
        assert_eq!(raw.matches("\"a\":").count(), 1, "{raw}");
        let log = capture.log(message).expect("logged");
        assert_eq!(log.fields["a"], 3, "{raw}");
        assert_eq!(log.fields["b"], 2, "{raw}");
        assert_eq!(
            log.fields.keys().collect::<Vec<_>>(),
            ["a", "b"],
            "the key keeps its first place: {raw}"
        );
    }
}

#[test]
fn a_field_given_twice_is_shown_once_on_the_console() {
    if let Some(out) = support::child("a_field_given_twice_is_shown_once_on_the_console", &[]) {
        let stdout = support::assert_ok(&out);
        let lines = support::console_lines(&stdout);
        for message in ["facade twice", "tracing twice"] {
            let line = lines
                .iter()
                .find(|l| l.contains(message))
                .unwrap_or_else(|| panic!("{message}:\n{stdout}"));
            assert!(line.ends_with(&format!("{message} a=3 b=2")), "{line}");
        }
        return;
    }
    let _guard = unitel::configure_telemetry(TelemetryConfig::new()).expect("configure");
    let telemetry = get_telemetry("twice");
    telemetry.log_info_with("facade twice", &[("a", 1), ("b", 2), ("a", 3)]);
    tracing::info!(a = 1, b = 2, a = 3, "tracing twice");
}

#[test]
fn an_error_field_is_shown_once_with_its_causes() {
    if let Some(out) = support::child("an_error_field_is_shown_once_with_its_causes", &[]) {
        let stdout = support::assert_ok(&out);
        let line = support::console_lines(&stdout)
            .into_iter()
            .find(|l| l.contains("charge failed") && !l.contains("\"type\""))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(line.matches(" error=").count(), 1, "{line}");
        assert!(
            line.ends_with(r#"charge failed error="card declined: gateway timeout""#),
            "{line}"
        );
        // The JSON record holds it once too, as its error, like `log_error`'s.
        let json = support::marked(&stdout, "JSON").expect("the JSON record");
        let record: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(record["fields"].get("error"), None, "{json}");
        assert_eq!(record["error"]["message"], "card declined", "{json}");
        assert_eq!(record["error"]["causes"][0], "gateway timeout", "{json}");
        return;
    }
    #[derive(Debug)]
    struct Declined(std::io::Error);
    impl std::fmt::Display for Declined {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("card declined")
        }
    }
    impl std::error::Error for Declined {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let _guard = unitel::configure_telemetry(
        TelemetryConfig::new().with_json_sink(|line| print!("\nJSON {line}")),
    )
    .expect("configure");
    let err = Declined(std::io::Error::other("gateway timeout"));
    tracing::error!(error = &err as &dyn std::error::Error, "charge failed");
}

#[test]
fn nan_and_infinite_fields_are_written_as_the_format_says() {
    const NAME: &str = "nan_and_infinite_fields_are_written_as_the_format_says";
    if let Some(out) = support::child(NAME, &[]) {
        let stdout = support::assert_ok(&out);
        // The console shows the values as Rust prints them.
        let lines = support::console_lines(&stdout);
        for message in ["tracing floats", "unitel floats"] {
            let line = lines
                .iter()
                .find(|l| l.contains(message))
                .unwrap_or_else(|| panic!("no console line {message:?}:\n{stdout}"));
            assert!(
                line.contains(&format!("{message} nan=NaN inf=inf ninf=-inf one=1.5")),
                "{line}"
            );
        }
        return;
    }
    let expected = [
        ("nan", serde_json::json!("NaN")),
        ("inf", serde_json::json!("Infinity")),
        ("ninf", serde_json::json!("-Infinity")),
        ("one", serde_json::json!(1.5)),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let spans = support::EndedSpans::default();
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_log_file(&path)
            .with_span_processor(spans.clone()),
    )
    .expect("configure");
    let telemetry = get_telemetry("floats");
    {
        let _span = tracing::info_span!(
            "tracing float span",
            nan = f64::NAN,
            inf = f64::INFINITY,
            ninf = f64::NEG_INFINITY,
            one = 1.5
        )
        .entered();
        tracing::info!(
            nan = f64::NAN,
            inf = f64::INFINITY,
            ninf = f64::NEG_INFINITY,
            one = 1.5,
            "tracing floats"
        );
        let _facade = telemetry
            .trace("unitel float span")
            .attr("nan", f64::NAN)
            .attr("inf", f64::INFINITY)
            .attr("ninf", f64::NEG_INFINITY)
            .attr("one", 1.5)
            .attr("floats", vec![f64::NAN, f64::NEG_INFINITY, 1.5]);
        telemetry.log_info_with(
            "unitel floats",
            &[
                ("nan", f64::NAN),
                ("inf", f64::INFINITY),
                ("ninf", f64::NEG_INFINITY),
                ("one", 1.5),
            ],
        );
    }
    guard.shutdown().expect("shutdown");

    // Every line of the file is valid JSON, and the reader takes it back.
    let text = std::fs::read_to_string(&path).expect("the log file");
    let mut seen = Vec::new();
    for line in text.lines() {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not valid JSON ({e}): {line}"));
        let record = unitel::logfile::parse_line(line)
            .unwrap_or_else(|e| panic!("the reader rejects it ({e}): {line}"));
        let (name, values) = match &record {
            unitel::logfile::Record::Log(log) => (log.message.clone(), &log.fields),
            unitel::logfile::Record::Span(span) => (span.name.clone(), &span.attributes),
            _ => continue,
        };
        if !name.contains("float") {
            continue;
        }
        for (key, value) in &expected {
            assert_eq!(values.get(*key), Some(value), "{key} in {json}");
        }
        if name == "unitel float span" {
            assert_eq!(
                values.get("floats"),
                Some(&serde_json::json!(["NaN", "-Infinity", 1.5])),
                "{json}"
            );
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "tracing float span",
            "tracing floats",
            "unitel float span",
            "unitel floats"
        ],
        "{text}"
    );
    // The spans keep the numbers themselves, for OTLP (a double, NaN and infinities included).
    let spans = spans.0.lock().unwrap().clone();
    for name in ["tracing float span", "unitel float span"] {
        let attributes = &spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
            .attributes;
        let get = |key: &str| match attributes.iter().find(|kv| kv.key.as_str() == key) {
            Some(unitel::KeyValue {
                value: unitel::Value::F64(v),
                ..
            }) => *v,
            other => panic!("{name}: {key} is {other:?}"),
        };
        assert!(get("nan").is_nan(), "{name}");
        assert_eq!(get("inf"), f64::INFINITY, "{name}");
        assert_eq!(get("ninf"), f64::NEG_INFINITY, "{name}");
        assert_eq!(get("one"), 1.5, "{name}");
    }
}

mod file_faults;
