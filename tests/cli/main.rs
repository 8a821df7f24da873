//! The `unitel` command-line tool on log files the crate itself wrote (`fixture.rs`): one
//! request across three services, a log rotated into a numbered and a gzip-compressed copy,
//! corrupted lines, a growing file followed across rotation, and a closed standard output.
//!
//! Trees are compared by structure (`tree.rs` reads the `--color never` output back into
//! lines with a depth and checks them against the trace's records), never by colour codes.

mod fixture;
mod run;
mod tree;

use fixture::Fixture;
use run::{app_log, lines_of, records, trace_lines, unitel, unitel_stdin, Line, Run};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use unitel::logfile::{format_timestamp, Record};
use unitel::opentelemetry::trace::{SpanId, Status};

/// Plays a fixture role when the test binary runs as a child (`fixture.rs`); else nothing.
#[test]
fn fixture_child() {
    fixture::child_main();
}

/// `OsString` arguments from paths and strings alike.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut v: Vec<OsString> = Vec::new();
        $(v.extend(Args::from($arg).0);)*
        v
    }};
}

/// One argument, or several (a slice of paths).
struct Args(Vec<OsString>);

impl From<&str> for Args {
    fn from(s: &str) -> Self {
        Args(vec![s.into()])
    }
}

impl From<&String> for Args {
    fn from(s: &String) -> Self {
        Args(vec![s.into()])
    }
}

impl From<&PathBuf> for Args {
    fn from(p: &PathBuf) -> Self {
        Args(vec![p.into()])
    }
}

impl From<&[PathBuf]> for Args {
    fn from(paths: &[PathBuf]) -> Self {
        Args(paths.iter().map(OsString::from).collect())
    }
}

/// The three services' log directories, in the order given to the tool.
fn service_dirs(f: &Fixture) -> Vec<PathBuf> {
    ["api", "payments", "ledger"]
        .iter()
        .map(|s| f.dir(s))
        .collect()
}

/// Their live log files.
fn service_files(f: &Fixture) -> Vec<PathBuf> {
    service_dirs(f).iter().map(|d| app_log(d)).collect()
}

/// `unitel logs PATHS --trace ID --color never EXTRA…`.
fn logs(paths: &[PathBuf], id: &str, extra: &[&str]) -> Run {
    let mut args = args!["logs", paths, "--trace", id, "--color", "never"];
    args.extend(extra.iter().map(OsString::from));
    unitel(&args)
}

/// The log record of the trace with this message.
fn log_named<'a>(records: &'a [Record], message: &str) -> &'a unitel::logfile::LogRecord {
    records
        .iter()
        .filter_map(Record::as_log)
        .find(|l| l.message == message)
        .unwrap_or_else(|| panic!("no log {message:?}"))
}

/// The span record of the trace with this name.
fn span_named<'a>(records: &'a [Record], name: &str) -> &'a unitel::logfile::SpanRecord {
    records
        .iter()
        .filter_map(Record::as_span)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?}"))
}

/// The trace ids of every fixture file.
fn every_trace_id(f: &Fixture) -> HashSet<String> {
    let mut files = service_files(f);
    files.extend(unitel::logfile::log_files(f.dir("rotated")).expect("rotated files"));
    files.push(app_log(&f.dir("follow-src")));
    files.push(app_log(&f.dir("many")));
    lines_of(&files)
        .iter()
        .filter_map(|l| l.record.trace_id())
        .map(|t| t.to_string())
        .collect()
}

// 1. The tree.

#[test]
fn logs_rebuilds_one_tree_across_three_services() {
    let f = fixture::get();
    let id = f.id("request");
    let run = logs(&service_dirs(f), id, &[]);
    let out = run.ok();
    let expected = records(&trace_lines(&service_files(f), id));
    assert_eq!(
        expected.iter().filter(|r| r.as_span().is_some()).count(),
        6,
        "the fixture's request has 6 spans"
    );
    let lines = tree::check(out, &expected);

    let header = out.lines().next().unwrap();
    assert!(
        header.contains("3 services (api, ledger, payments)") && header.ends_with("  ERROR"),
        "{run}"
    );
    // payments' SERVER span hangs under api's CLIENT span, ledger's under payments' CLIENT.
    let call = tree::subtree_of(&lines, "POST payments/charge");
    assert_eq!(call[0].service.as_deref(), Some("api"), "{run}");
    let server = tree::subtree_of(&lines, "POST /charge");
    assert_eq!(server[0].depth, call[0].depth + 1, "{run}");
    assert_eq!(server[0].service.as_deref(), Some("payments"), "{run}");
    assert!(
        call.iter()
            .any(|l| l.text.starts_with("POST /charge  payments · server")),
        "{run}"
    );
    let ledger = tree::subtree_of(&lines, "append entry");
    assert_eq!(ledger[0].service.as_deref(), Some("ledger"), "{run}");
    assert!(
        tree::subtree_of(&lines, "ledger.append")
            .iter()
            .any(|l| l.text.starts_with("append entry  ledger · server")),
        "{run}"
    );
    for line in out.lines().skip(1) {
        assert!(
            ["api       ", "payments  ", "ledger    "]
                .iter()
                .any(|s| line.starts_with(s)),
            "a line without its service column: {line:?}\n{run}"
        );
    }
    // The failure: the span's status, the error log with its cause.
    assert!(
        server[0]
            .text
            .contains("  error: payment provider rejected the charge"),
        "{run}"
    );
    let detail: Vec<&str> = server
        .iter()
        .filter(|l| l.detail)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        detail,
        [
            "error: payment provider rejected the charge",
            "caused by: provider timed out after 3 ms"
        ],
        "{run}"
    );
    // Key attributes on the span lines.
    assert!(
        lines[0].text.contains(
            "http.request.method=GET http.route=/orders/{id} http.response.status_code=502"
        ),
        "{run}"
    );
    for other in [
        "settle batch",
        "compact ledger",
        "GET /health",
        "build report",
    ] {
        assert!(
            !out.contains(other),
            "a record of another trace: {other}\n{run}"
        );
    }
}

#[test]
fn logs_of_one_file_shows_its_part_of_the_trace() {
    let f = fixture::get();
    let id = f.id("request");

    let payments = app_log(&f.dir("payments"));
    let run = logs(std::slice::from_ref(&payments), id, &[]);
    let expected = records(&trace_lines(std::slice::from_ref(&payments), id));
    let lines = tree::check(run.ok(), &expected);
    // One service: no service column; the root's parent lives in api's file.
    assert!(
        lines[0].text.starts_with("POST /charge  payments · server")
            && lines[0].text.ends_with(&format!(
                "(parent {} is not in these files)",
                f.id("client_span")
            )),
        "{run}"
    );
    assert!(!run.stdout.contains("ledger · server"), "{run}");

    let api = app_log(&f.dir("api"));
    let run = logs(std::slice::from_ref(&api), id, &[]);
    let expected = records(&trace_lines(std::slice::from_ref(&api), id));
    let lines = tree::check(run.ok(), &expected);
    assert_eq!(
        tree::subtree_of(&lines, "POST payments/charge").len(),
        1,
        "no payments record in api's file: {run}"
    );
    assert!(
        lines[0]
            .text
            .starts_with("GET /orders/{id}  orders · server"),
        "{run}"
    );
}

#[test]
fn colour_only_on_a_terminal_or_when_asked() {
    let f = fixture::get();
    let api = vec![f.dir("api")];
    let id = f.id("request");
    let plain = unitel(&args!["logs", &api[..], "--trace", id]);
    assert!(!plain.ok().contains('\x1b'), "not a terminal: {plain}");
    assert_eq!(plain.stdout, logs(&api, id, &[]).stdout);
    let always = unitel(&args!["logs", &api[..], "--trace", id, "--color", "always"]);
    assert!(always.ok().contains("\x1b["), "{always}");
    let forced = run::run(
        {
            let mut c = run::command(&args!["logs", &api[..], "--trace", id]);
            c.env("CLICOLOR_FORCE", "1");
            c
        },
        &["CLICOLOR_FORCE=1 logs"],
        None,
    );
    assert!(forced.ok().contains("\x1b["), "{forced}");

    let traces = unitel(&args!["traces", &api[..]]);
    assert!(!traces.ok().contains('\x1b'), "{traces}");
    let traces = unitel(&args!["traces", &api[..], "--color", "always"]);
    assert!(traces.ok().contains("\x1b["), "{traces}");
}

#[test]
fn control_characters_in_records_never_reach_the_terminal() {
    let f = fixture::get();
    let run = unitel(&args![
        "logs",
        &f.dir("api"),
        "--trace",
        f.id("health"),
        "--color",
        "always"
    ]);
    let out = run.ok();
    assert!(!out.contains("\x1b[2J"), "{run}");
    assert!(out.contains("probe from \\u{1b}[2Jterminal"), "{run}");
    // Invisible characters are escaped, the message cannot pass for fields and the key that
    // is not a simple token is quoted: one field, as on the console.
    for c in ['\u{202e}', '\u{2028}', '\u{200b}'] {
        assert!(
            !out.contains(c),
            "U+{:04X} reached the terminal: {run}",
            c as u32
        );
    }
    assert!(
        out.contains(
            "probe from \\u{1b}[2Jterminal role\\=admin \\u{202e}txt.exe\\u{2028} \x1b[2m \"a b=c d\"=\"\\u{200b}x\""
        ),
        "{run}"
    );
}

// 2. Prefixes.

#[test]
fn a_prefix_of_eight_digits_in_any_case_is_the_trace() {
    let f = fixture::get();
    let id = f.id("request");
    let others: Vec<String> = every_trace_id(f)
        .into_iter()
        .filter(|t| t != id && t[..8] == id[..8])
        .collect();
    assert!(
        others.is_empty(),
        "the fixture's ids share a prefix: {others:?}"
    );
    let dirs = service_dirs(f);
    let full = logs(&dirs, id, &[]);
    let full = full.ok();
    for prefix in [
        id[..8].to_owned(),
        id[..8].to_ascii_uppercase(),
        id.to_ascii_uppercase(),
    ] {
        let run = logs(&dirs, &prefix, &[]);
        assert_eq!(run.ok(), full, "{prefix}");
    }
}

#[test]
fn seven_digits_are_a_usage_error() {
    let f = fixture::get();
    let run = logs(&service_dirs(f), &f.id("request")[..7], &[]);
    let err = run.fails(2);
    assert!(err.contains("at least 8"), "{run}");
}

#[test]
fn an_ambiguous_prefix_names_both_traces() {
    let f = fixture::get();
    let run = logs(&[f.dir("api")], fixture::AMBIGUOUS_PREFIX, &[]);
    let err = run.fails(2);
    assert!(err.contains("ambiguous"), "{run}");
    for id in fixture::AMBIGUOUS {
        assert!(err.contains(id), "{id} not named: {run}");
    }
    // Each of them by its full id.
    for (i, id) in fixture::AMBIGUOUS.iter().enumerate() {
        let run = logs(&[f.dir("api")], id, &[]);
        let expected = records(&trace_lines(&[app_log(&f.dir("api"))], id));
        let lines = tree::check(run.ok(), &expected);
        assert!(
            lines[0]
                .text
                .starts_with(&format!("ambiguous job {i}  orders")),
            "{run}"
        );
    }
}

// 3. Not found.

#[test]
fn a_trace_not_in_the_files_is_exit_code_1() {
    let f = fixture::get();
    let missing = "0123456789abcdef0123456789abcdef";
    assert!(!every_trace_id(f).iter().any(|t| t.starts_with("01234567")));
    for id in [missing, &missing[..8]] {
        let run = logs(&service_dirs(f), id, &[]);
        let err = run.fails(1);
        assert!(err.contains(&format!("trace {id} ")), "{run}");
    }
}

// 4. Filters.

#[test]
fn span_narrows_to_one_subtree() {
    let f = fixture::get();
    let id = f.id("request");
    let top = f.id("payments_server");
    let all = records(&trace_lines(&service_files(f), id));
    // The subtree, from the records.
    let mut inside: HashSet<SpanId> = HashSet::from([SpanId::from_hex(top).unwrap()]);
    loop {
        let before = inside.len();
        for span in all.iter().filter_map(Record::as_span) {
            if span.parent_span_id.is_some_and(|p| inside.contains(&p)) {
                inside.insert(span.span_id);
            }
        }
        if inside.len() == before {
            break;
        }
    }
    assert_eq!(inside.len(), 3, "POST /charge, ledger.append, append entry");
    let expected: Vec<Record> = all
        .iter()
        .filter(|r| match r {
            Record::Span(s) => inside.contains(&s.span_id),
            Record::Log(l) => l.span_id.is_some_and(|s| inside.contains(&s)),
            _ => false,
        })
        .cloned()
        .collect();
    let run = logs(&service_dirs(f), id, &["--span", top]);
    let lines = tree::check_within(run.ok(), &expected, &all);
    assert!(
        lines[0].text.starts_with("POST /charge  payments · server"),
        "{run}"
    );
    for gone in [
        "GET /orders/{id}",
        "load_order",
        "request received",
        "payment failed",
    ] {
        assert!(!run.stdout.contains(gone), "{gone}: {run}");
    }
    let by_prefix = logs(
        &service_dirs(f),
        id,
        &["--span", &top[..6].to_ascii_uppercase()],
    );
    assert_eq!(by_prefix.ok(), run.stdout);
    let nowhere = logs(&service_dirs(f), id, &["--span", "0000000000000bad"]);
    assert!(nowhere.fails(1).contains("0000000000000bad"), "{nowhere}");
}

#[test]
fn level_warn_keeps_warnings_errors_and_every_span() {
    let f = fixture::get();
    let id = f.id("request");
    let expected: Vec<Record> = records(&trace_lines(&service_files(f), id))
        .into_iter()
        .filter(|r| {
            r.as_log()
                .is_none_or(|l| l.level <= unitel::tracing::Level::WARN)
        })
        .collect();
    assert_eq!(expected.iter().filter(|r| r.as_log().is_some()).count(), 2);
    let run = logs(&service_dirs(f), id, &["--level", "warn"]);
    tree::check(run.ok(), &expected);
    assert!(
        run.stdout.contains(" WARN  payment failed, answering 502"),
        "{run}"
    );
    assert!(run.stdout.contains(" ERROR charge failed"), "{run}");
    for gone in [
        " INFO ",
        "request received",
        "charging card",
        "entry appended",
    ] {
        assert!(!run.stdout.contains(gone), "{gone}: {run}");
    }
}

#[test]
fn since_and_until_keep_the_records_in_the_window() {
    let f = fixture::get();
    let id = f.id("request");
    let all = records(&trace_lines(&service_files(f), id));
    let since = log_named(&all, "charging card").timestamp;
    let until = log_named(&all, "order loaded").timestamp;
    let keep = |from: Option<std::time::SystemTime>, to: Option<std::time::SystemTime>| {
        all.iter()
            .filter(|r| {
                let (start, end) = match r {
                    Record::Span(s) => (s.start_time, s.end_time),
                    Record::Log(l) => (l.timestamp, l.timestamp),
                    _ => unreachable!(),
                };
                from.is_none_or(|t| end >= t) && to.is_none_or(|t| start <= t)
            })
            .cloned()
            .collect::<Vec<_>>()
    };

    let run = logs(&service_dirs(f), id, &["--since", &format_timestamp(since)]);
    tree::check(run.ok(), &keep(Some(since), None));
    assert!(run.stdout.contains("charging card"), "{run}");
    for gone in ["load_order", "order loaded", "request received"] {
        assert!(!run.stdout.contains(gone), "{gone}: {run}");
    }

    let run = logs(&service_dirs(f), id, &["--until", &format_timestamp(until)]);
    tree::check(run.ok(), &keep(None, Some(until)));
    assert!(
        run.stdout.contains("order loaded") && run.stdout.contains("load_order"),
        "{run}"
    );
    for gone in ["POST /charge", "charging card", "payment failed"] {
        assert!(!run.stdout.contains(gone), "{gone}: {run}");
    }

    // A window between the two: the spans around it, the logs inside it.
    let window = [
        "--since",
        &format_timestamp(until),
        "--until",
        &format_timestamp(since),
    ];
    let run = logs(&service_dirs(f), id, &window);
    tree::check(run.ok(), &keep(Some(until), Some(since)));
    assert!(run.stdout.contains("order loaded") && run.stdout.contains("charging card"));

    // A window after the trace: its header, no record.
    let after = span_named(&all, "GET /orders/{id}").end_time + Duration::from_secs(3600);
    let run = logs(&service_dirs(f), id, &["--since", &format_timestamp(after)]);
    let out = run.ok();
    assert_eq!(out.lines().count(), 1, "{run}");
    assert!(
        out.starts_with(&format!("trace {id}  0 spans, 0 log lines")),
        "{run}"
    );
}

#[test]
fn since_and_until_accept_rfc3339_offsets() {
    let f = fixture::get();
    let id = f.id("request");
    let all = records(&trace_lines(&service_files(f), id));
    let since = log_named(&all, "charging card").timestamp;
    let zulu = logs(&service_dirs(f), id, &["--since", &format_timestamp(since)]);
    assert!(zulu.ok().contains("charging card") && !zulu.stdout.contains("order loaded"));
    // The same instant as `date -u -Iseconds` writes it, and two hours east of UTC.
    let utc = format_timestamp(since).replace('Z', "+00:00");
    let east = format_timestamp(since + Duration::from_secs(7200)).replace('Z', "+02:00");
    for time in [utc, east] {
        let run = logs(&service_dirs(f), id, &["--since", &time]);
        assert_eq!(run.code, Some(0), "an RFC 3339 time with an offset: {run}");
        assert_eq!(run.stdout, zulu.stdout, "{time}");
    }
}

// 5. --json.

#[test]
fn json_prints_the_raw_lines_of_the_trace_in_time_order() {
    let f = fixture::get();
    let id = f.id("request");
    let mut lines = trace_lines(&service_files(f), id);
    lines.sort_by_key(|l| l.record.timestamp());
    let expected: String = lines
        .iter()
        .map(|l| format!("{}\n", String::from_utf8(l.raw.clone()).unwrap()))
        .collect();
    let run = logs(&service_dirs(f), id, &["--json"]);
    assert_eq!(run.ok(), expected, "{run}");
    let by_prefix = logs(&service_dirs(f), &id[..8], &["--json"]);
    assert_eq!(by_prefix.ok(), expected);
    // With a filter: only the lines it keeps, still raw.
    let warn = logs(&service_dirs(f), id, &["--json", "--level", "warn"]);
    let kept: Vec<&str> = warn.ok().lines().collect();
    assert_eq!(kept.len(), 6 + 2, "{warn}");
    assert!(
        kept.iter().all(|l| expected.contains(&format!("{l}\n"))),
        "{warn}"
    );
}

// 6. Several services.

#[test]
fn records_carry_their_service() {
    let f = fixture::get();
    for service in ["api", "payments", "ledger"] {
        let lines = lines_of(&[app_log(&f.dir(service))]);
        assert!(lines.len() >= 4, "{service}: {} lines", lines.len());
        for line in &lines {
            assert_eq!(
                line.record.service(),
                Some(service),
                "{}",
                String::from_utf8_lossy(&line.raw)
            );
            let raw = String::from_utf8_lossy(&line.raw);
            assert!(raw.contains(&format!("\"service\":\"{service}\"")), "{raw}");
        }
    }
}

// 7. Rotated and gzip-compressed files, standard input.

#[test]
fn rotated_and_gzip_files_are_read_with_the_live_one() {
    let f = fixture::get();
    let dir = f.dir("rotated");
    let files: Vec<PathBuf> = ["app.log.2.gz", "app.log.1", "app.log"]
        .iter()
        .map(|n| dir.join(n))
        .collect();
    for file in &files {
        assert!(file.is_file(), "{}", file.display());
    }
    assert!(!dir.join("app.log.2").exists());
    let live = app_log(&dir);
    for (key, names) in [
        ("export", vec!["nightly export", "exported 3 files"]),
        (
            "import",
            vec![
                "import batch",
                "import started",
                "resume import",
                "import resumed",
            ],
        ),
        ("cleanup", vec!["cleanup", "cleaned up"]),
    ] {
        let id = f.id(key);
        let expected = records(&trace_lines(&files, id));
        let from_dir = logs(std::slice::from_ref(&dir), id, &[]);
        tree::check(from_dir.ok(), &expected);
        for name in names {
            assert!(from_dir.stdout.contains(name), "{name}: {from_dir}");
        }
        let from_file = logs(std::slice::from_ref(&live), id, &[]);
        assert_eq!(
            from_file.ok(),
            from_dir.stdout,
            "the live file's path reads its rotations"
        );
    }
    // The trace that went on from app.log.1 into app.log: one tree.
    let run = logs(std::slice::from_ref(&dir), f.id("import"), &[]);
    let lines = tree::check(run.ok(), &records(&trace_lines(&files, f.id("import"))));
    assert!(
        tree::subtree_of(&lines, "import batch")
            .iter()
            .any(|l| l.text.starts_with("resume import  importer")),
        "{run}"
    );
    // A rotated copy's path is that file alone.
    let gz = dir.join("app.log.2.gz");
    let run = logs(std::slice::from_ref(&gz), f.id("export"), &[]);
    tree::check(run.ok(), &records(&trace_lines(&files, f.id("export"))));
    let run = logs(&[dir.join("app.log.1")], f.id("export"), &[]);
    run.fails(1);

    let traces = unitel(&args!["traces", &dir, "--json"]);
    let ids: HashSet<String> = traces
        .ok()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["trace_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: HashSet<String> = ["export", "import", "cleanup"]
        .iter()
        .map(|k| f.id(k).to_owned())
        .collect();
    assert_eq!(ids, expected, "{traces}");
}

#[test]
fn standard_input_plain_and_gzip() {
    let f = fixture::get();
    let dir = f.dir("rotated");
    let plain = dir.join("app.log.1");
    let run = unitel_stdin(
        &args!["logs", "-", "--trace", f.id("import"), "--color", "never"],
        std::fs::read(&plain).unwrap(),
    );
    let expected = records(&trace_lines(std::slice::from_ref(&plain), f.id("import")));
    assert_eq!(expected.len(), 2);
    tree::check(run.ok(), &expected);

    let gz = dir.join("app.log.2.gz");
    let bytes = std::fs::read(&gz).unwrap();
    assert_eq!(bytes[..2], [0x1f, 0x8b]);
    let run = unitel_stdin(
        &args!["logs", "-", "--trace", f.id("export"), "--color", "never"],
        bytes.clone(),
    );
    tree::check(run.ok(), &records(&trace_lines(&[gz], f.id("export"))));

    let run = unitel_stdin(&args!["traces", "-", "--json"], bytes);
    let out = run.ok();
    assert_eq!(out.lines().count(), 1, "{run}");
    assert!(out.contains(f.id("export")), "{run}");
}

// 8. Corrupted lines.

#[test]
fn corrupted_lines_are_skipped_and_counted() {
    let f = fixture::get();
    let id = f.id("request");
    let api = app_log(&f.dir("api"));
    let lines = lines_of(std::slice::from_ref(&api));
    let tmp = tempfile::tempdir().unwrap();
    let corrupt = tmp.path().join("app.log");

    let needle = format!("\"trace_id\":\"{id}\"");
    let of_trace = lines
        .iter()
        .find(|l| l.record.trace_id().is_some_and(|t| t.to_string() == id))
        .unwrap();
    let raw = &of_trace.raw;
    let at = String::from_utf8_lossy(raw).find(&needle).unwrap() + needle.len() + 5;
    assert!(at < raw.len());
    let mut bytes = Vec::new();
    let middle = lines.len() / 2;
    for line in &lines[..middle] {
        bytes.extend_from_slice(&line.raw);
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(b"this is not JSON at all\n");
    bytes.extend_from_slice(&raw[..at]); // half a real line
    bytes.push(b'\n');
    bytes.extend_from_slice(format!("{{\"type\":\"log\",{needle},\"message\":broken\n").as_bytes());
    bytes.extend_from_slice(format!("{{\"type\":\"log\",{needle},\"message\":\"").as_bytes());
    bytes.resize(bytes.len() + (20 << 20), b'x');
    bytes.extend_from_slice(b"\"}\n");
    for line in &lines[middle..] {
        bytes.extend_from_slice(&line.raw);
        bytes.push(b'\n');
    }
    std::fs::write(&corrupt, &bytes).unwrap();

    let clean = logs(std::slice::from_ref(&api), id, &[]);
    let run = logs(std::slice::from_ref(&corrupt), id, &[]);
    assert_eq!(
        run.ok(),
        clean.ok(),
        "the same trace as from the clean file"
    );
    assert!(run.stderr.contains("skipped 2 malformed lines"), "{run}");
    assert!(
        run.stderr.contains("skipped 1 line longer than 16 MiB"),
        "{run}"
    );

    let clean = logs(std::slice::from_ref(&api), id, &["--json"]);
    let run = logs(std::slice::from_ref(&corrupt), id, &["--json"]);
    assert_eq!(run.ok(), clean.ok());

    let clean = unitel(&args!["traces", &api, "--color", "never"]);
    let run = unitel(&args!["traces", &corrupt, "--color", "never"]);
    assert_eq!(run.ok(), clean.ok());
    assert!(run.stderr.contains("skipped 3 malformed lines"), "{run}");
    assert!(
        run.stderr.contains("skipped 1 line longer than 16 MiB"),
        "{run}"
    );
    assert!(!clean.stderr.contains("skipped"), "{clean}");
}

// 9. `unitel traces`.

/// A row of the `traces` table.
#[derive(Debug)]
struct Row {
    trace: String,
    duration: String,
    spans: u64,
    logs: u64,
    error: bool,
    root: String,
}

fn table(run: &Run) -> Vec<Row> {
    let mut lines = run.ok().lines();
    let head = lines.next().unwrap_or_else(|| panic!("no table: {run}"));
    assert!(
        head.starts_with("TRACE ") && head.ends_with("ROOT"),
        "{run}"
    );
    // TRACE(32)  START(26)  DURATION(9)  SPANS(5)  LOGS(5)  ERROR(5)  ROOT
    let error_at = 32 + 2 + 26 + 2 + 9 + 2 + 5 + 2 + 5 + 2;
    lines
        .map(|line| {
            let t: Vec<&str> = line.split_whitespace().collect();
            let chars: Vec<char> = line.chars().collect();
            let column = |from: usize, to: usize| -> String {
                chars
                    .get(from..to.min(chars.len()))
                    .unwrap_or_default()
                    .iter()
                    .collect()
            };
            let error = match column(error_at, error_at + 5).as_str() {
                "error" => true,
                "     " => false,
                other => panic!("{other:?} in the error column: {line:?}\n{run}"),
            };
            Row {
                trace: t[0].to_owned(),
                duration: t[3].to_owned(),
                spans: t[4].parse().unwrap(),
                logs: t[5].parse().unwrap(),
                error,
                root: column(error_at + 7, chars.len()),
            }
        })
        .collect()
}

/// Per trace of `lines`: (spans, logs, error).
fn tally(lines: &[Line]) -> BTreeMap<String, (u64, u64, bool)> {
    let mut out: BTreeMap<String, (u64, u64, bool)> = BTreeMap::new();
    for line in lines {
        let Some(id) = line.record.trace_id() else {
            continue;
        };
        let entry = out.entry(id.to_string()).or_default();
        match &line.record {
            Record::Span(s) => {
                entry.0 += 1;
                entry.2 |= matches!(s.status, Status::Error { .. });
            }
            Record::Log(l) => {
                entry.1 += 1;
                entry.2 |= l.level == unitel::tracing::Level::ERROR;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn traces_lists_one_line_per_trace() {
    let f = fixture::get();
    let lines = lines_of(&service_files(f));
    let expected = tally(&lines);
    assert_eq!(
        expected.len(),
        7,
        "request, health, 2 ambiguous, report, settle, compact"
    );
    let run = unitel(&args!["traces", &service_dirs(f)[..], "--color", "never"]);
    let rows = table(&run);
    assert_eq!(rows.len(), expected.len(), "{run}");
    let shown: BTreeMap<String, (u64, u64, bool)> = rows
        .iter()
        .map(|r| (r.trace.clone(), (r.spans, r.logs, r.error)))
        .collect();
    assert_eq!(shown, expected, "{run}");
    let errors: Vec<&str> = rows
        .iter()
        .filter(|r| r.error)
        .map(|r| r.trace.as_str())
        .collect();
    assert_eq!(errors, [f.id("request")], "{run}");
    let row = |key: &str| rows.iter().find(|r| r.trace == f.id(key)).unwrap();
    assert!(
        row("request")
            .root
            .starts_with("GET /orders/{id}  api/orders"),
        "{run}"
    );
    assert!(row("slow").root.starts_with("build report  "), "{run}");
    assert!(
        row("settlement").root.starts_with("settle batch  "),
        "{run}"
    );
    // The table's durations are the root spans'.
    let all = records(&lines);
    for (key, root) in [("request", "GET /orders/{id}"), ("slow", "build report")] {
        let span = span_named(&all, root);
        let (nanos, resolution) = tree::parse_duration(&row(key).duration).unwrap();
        assert!(
            (nanos - span.duration.as_nanos() as f64).abs() <= resolution / 2.0 + 1.0,
            "{key}: {} vs {:?}\n{run}",
            row(key).duration,
            span.duration
        );
    }
    // In start order.
    let order: Vec<&str> = rows.iter().map(|r| r.trace.as_str()).collect();
    let position = |key: &str| order.iter().position(|t| *t == f.id(key)).unwrap();
    assert!(position("request") < position("health") && position("health") < position("slow"));
}

#[test]
fn traces_errors_slowest_and_since_filter() {
    let f = fixture::get();
    let dirs = service_dirs(f);
    let ids = |extra: &[&str]| -> Vec<String> {
        let mut args = args!["traces", &dirs[..], "--color", "never"];
        args.extend(extra.iter().map(OsString::from));
        let run = unitel(&args);
        if run.ok().is_empty() {
            return Vec::new();
        }
        table(&run).into_iter().map(|r| r.trace).collect()
    };
    assert_eq!(ids(&["--errors"]), [f.id("request")]);
    assert_eq!(ids(&["--slowest", "1"]), [f.id("slow")]);
    assert_eq!(ids(&["--slowest", "2"]), [f.id("slow"), f.id("request")]);

    let all = records(&lines_of(&service_files(f)));
    let health = span_named(&all, "GET /health").start_time;
    let slow = span_named(&all, "build report").start_time;
    let mut after_health = ids(&["--since", &format_timestamp(health)]);
    after_health.sort();
    let mut expected = vec![
        f.id("health").to_owned(),
        fixture::AMBIGUOUS[0].to_owned(),
        fixture::AMBIGUOUS[1].to_owned(),
        f.id("slow").to_owned(),
    ];
    expected.sort();
    assert_eq!(after_health, expected);
    assert_eq!(ids(&["--since", &format_timestamp(slow)]), [f.id("slow")]);
    assert_eq!(
        ids(&["--since", &format_timestamp(slow), "--errors"]),
        Vec::<String>::new()
    );
}

#[test]
fn traces_json_has_one_object_per_trace() {
    let f = fixture::get();
    let lines = lines_of(&service_files(f));
    let expected = tally(&lines);
    let all = records(&lines);
    let run = unitel(&args!["traces", &service_dirs(f)[..], "--json"]);
    let objects: Vec<serde_json::Value> = run
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{run}")))
        .collect();
    assert_eq!(objects.len(), expected.len(), "{run}");
    for object in &objects {
        let id = object["trace_id"].as_str().expect("trace_id");
        let (spans, logs, error) = expected[id];
        assert_eq!(object["spans"], spans, "{object}");
        assert_eq!(object["logs"], logs, "{object}");
        assert_eq!(object["error"], error, "{object}");
        assert!(object["duration_ns"].is_u64(), "{object}");
    }
    let by_id = |key: &str| objects.iter().find(|o| o["trace_id"] == f.id(key)).unwrap();
    let request = span_named(&all, "GET /orders/{id}");
    assert_eq!(
        by_id("request")["duration_ns"],
        request.duration.as_nanos() as u64
    );
    assert_eq!(by_id("request")["root"], "GET /orders/{id}");
    let slow = span_named(&all, "build report");
    assert_eq!(
        by_id("slow")["duration_ns"],
        slow.duration.as_nanos() as u64
    );
    assert!(slow.duration >= Duration::from_millis(60));
}

// 10. --follow.

/// A running `unitel logs --follow`, its output read by threads.
struct Follower {
    child: Child,
    stdout: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Follower {
    fn spawn(path: &Path, id: &str) -> Follower {
        let mut child = run::command(&args![
            "logs",
            &path.to_path_buf(),
            "--trace",
            id,
            "--follow",
            "--color",
            "never"
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unitel --follow");
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Follower {
            child,
            stdout,
            seen: Vec::new(),
            stderr,
        }
    }

    fn report(&mut self) -> String {
        let status = self.child.try_wait().ok().flatten();
        format!(
            "unitel --follow (exited: {status:?})\n--- stdout\n{}\n--- stderr\n{}",
            self.seen.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits up to 10 s for a line of stdout that contains `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        if self.seen.iter().any(|l| l.contains(needle)) {
            return;
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {needle:?} within 10 s\n{}", self.report())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(100));
                    panic!("stdout closed before {needle:?}\n{}", self.report())
                }
            }
        }
    }

    /// Waits up to 10 s for `needle` on stderr.
    fn wait_for_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr.lock().unwrap().contains(needle) {
            if Instant::now() > deadline {
                panic!("no {needle:?} on stderr within 10 s\n{}", self.report());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Collects what arrives within `time`.
    fn drain(&mut self, time: Duration) {
        let deadline = Instant::now() + time;
        while let Ok(line) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
}

fn joined(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(&line.raw);
        out.push(b'\n');
    }
    out
}

/// The follow fixture's lines: the other trace's, and the followed trace's in its two halves
/// (up to "step one"'s span record, then the rest, "batch job"'s record last).
fn follow_lines(f: &Fixture) -> (Vec<Line>, Vec<Line>, Vec<Line>) {
    let lines = lines_of(&[app_log(&f.dir("follow-src"))]);
    let id = f.id("follow");
    let (ours, other): (Vec<Line>, Vec<Line>) = lines
        .into_iter()
        .partition(|l| l.record.trace_id().is_some_and(|t| t.to_string() == id));
    let split = ours
        .iter()
        .position(|l| l.record.as_span().is_some_and(|s| s.name == "step one"))
        .unwrap()
        + 1;
    assert_eq!(ours.len(), 5, "two logs, three spans");
    assert!(ours[4]
        .record
        .as_span()
        .is_some_and(|s| s.name == "batch job"));
    let second = ours[split..].to_vec();
    let first = ours[..split].to_vec();
    (other, first, second)
}

#[test]
fn follow_prints_new_records_across_rotation() {
    let f = fixture::get();
    let (other, first, second) = follow_lines(f);
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("app.log");
    std::fs::write(&live, joined(&other)).unwrap();

    let mut follow = Follower::spawn(tmp.path(), f.id("follow"));
    follow.wait_for_stderr("waiting for trace");
    append(&live, &joined(&first));
    follow.wait_for("first half: step one started");
    follow.wait_for(" span  step one  batch");

    // Rotation: the file is renamed, a new one takes its name; its last line half-written.
    std::fs::rename(&live, tmp.path().join("app.log.1")).unwrap();
    let (last, rest) = second.split_last().unwrap();
    let mut bytes = joined(rest);
    let cut = last.raw.len() / 2;
    bytes.extend_from_slice(&last.raw[..cut]);
    std::fs::write(&live, &bytes).unwrap();
    follow.wait_for("second half: step two started");
    follow.wait_for(" span  step two  batch");
    follow.drain(Duration::from_millis(800));
    assert_eq!(
        follow.count("batch job"),
        0,
        "a half-written line printed\n{}",
        follow.report()
    );

    let mut end = last.raw[cut..].to_vec();
    end.push(b'\n');
    append(&live, &end);
    follow.wait_for(" span  batch job  batch");
    follow.drain(Duration::from_millis(500));

    for (needle, times) in [
        ("first half: step one started", 1),
        ("second half: step two started", 1),
        (" span  step one ", 1),
        (" span  step two ", 1),
        (" span  batch job ", 1),
        ("other job", 0),
    ] {
        assert_eq!(follow.count(needle), times, "{needle}\n{}", follow.report());
    }
    assert!(!follow.stderr.lock().unwrap().contains("panicked"));
}

#[test]
fn follow_shows_the_trace_so_far_then_what_is_new() {
    let f = fixture::get();
    let (other, first, second) = follow_lines(f);
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("app.log");
    let mut start = joined(&other);
    start.extend(joined(&first));
    std::fs::write(&live, start).unwrap();

    let mut follow = Follower::spawn(&live, &f.id("follow")[..8]);
    follow.wait_for(&format!("trace {}", f.id("follow")));
    follow.wait_for("first half: step one started");
    append(&live, &joined(&second));
    follow.wait_for("second half: step two started");
    follow.wait_for(" span  batch job  batch");
    follow.drain(Duration::from_millis(500));
    assert_eq!(
        follow.count("first half: step one started"),
        1,
        "{}",
        follow.report()
    );
    assert_eq!(follow.count("other job"), 0, "{}", follow.report());
}

#[test]
fn follow_waits_for_a_log_file_that_is_not_there_yet() {
    let f = fixture::get();
    let (_, first, second) = follow_lines(f);
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("app.log");
    let mut follow = Follower::spawn(&live, f.id("follow"));
    follow.wait_for_stderr("waiting for trace");
    let mut all = joined(&first);
    all.extend(joined(&second));
    std::fs::write(&live, all).unwrap();
    follow.wait_for("first half: step one started");
    follow.wait_for(" span  batch job  batch");
}

#[test]
fn follow_waits_in_a_directory_with_no_log_yet() {
    let f = fixture::get();
    let (_, first, second) = follow_lines(f);
    let tmp = tempfile::tempdir().unwrap();
    let mut follow = Follower::spawn(tmp.path(), f.id("follow"));
    follow.wait_for_stderr("waiting for trace");
    let mut all = joined(&first);
    all.extend(joined(&second));
    std::fs::write(tmp.path().join("app.log"), all).unwrap();
    follow.wait_for("first half: step one started");
    follow.wait_for(" span  batch job  batch");
}

// 11. A closed standard output.

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let f = fixture::get();
    let many = f.dir("many");
    let big = f.id("big");
    for args in [
        args!["traces", &many],
        args!["traces", &many, "--json"],
        args!["logs", &many, "--trace", big],
        args!["logs", &many, "--trace", big, "--json"],
    ] {
        let mut child = run::command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{args:?}");
        drop(stdout); // `| head -1`
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?} still running 30 s after its stdout closed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
    }
}

// Big traces: every record, however close in time.

#[test]
fn every_log_line_is_shown_even_when_two_share_a_microsecond() {
    let f = fixture::get();
    let many = app_log(&f.dir("many"));
    let id = f.id("big");
    let lines = trace_lines(std::slice::from_ref(&many), id);
    assert_eq!(lines.len(), fixture::BIG_TRACE_LOGS + 1);
    let mut stamps: HashMap<std::time::SystemTime, usize> = HashMap::new();
    for line in &lines {
        *stamps.entry(line.record.timestamp()).or_default() += 1;
    }
    let shared = stamps.values().filter(|n| **n > 1).count();
    eprintln!("{shared} microseconds hold more than one of the trace's lines");

    let run = logs(std::slice::from_ref(&many), id, &["--json"]);
    assert_eq!(
        run.ok().lines().count(),
        lines.len(),
        "--json lost lines ({shared} shared microseconds)"
    );
    let run = logs(std::slice::from_ref(&many), id, &[]);
    let header = run.ok().lines().next().unwrap().to_owned();
    assert!(
        header.contains(&tree::counts(1, fixture::BIG_TRACE_LOGS)),
        "{header}"
    );
    assert_eq!(
        run.stdout.lines().count(),
        2 + fixture::BIG_TRACE_LOGS,
        "{header}"
    );
    let traces = unitel(&args!["traces", &many, "--json"]);
    assert_eq!(traces.ok().lines().count(), fixture::MANY_TRACES + 1);
}

#[test]
fn distinct_log_lines_sharing_a_microsecond_are_all_shown() {
    // Two threads of one span logging the same message in the same microsecond, with
    // different values: one real line of the crate, and its twin with another value.
    let f = fixture::get();
    let id = f.id("big");
    let lines = trace_lines(&[app_log(&f.dir("many"))], id);
    let first = String::from_utf8(lines[0].raw.clone()).unwrap();
    assert!(first.contains("\"message\":\"tick\"") && first.contains("\"fields\":{\"i\":0}"));
    let twin = first.replace("\"fields\":{\"i\":0}", "\"fields\":{\"i\":1000000}");
    let span = String::from_utf8(lines.last().unwrap().raw.clone()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("app.log");
    std::fs::write(&file, format!("{first}\n{twin}\n{span}\n")).unwrap();

    let run = logs(std::slice::from_ref(&file), id, &["--json"]);
    assert_eq!(run.ok(), format!("{first}\n{twin}\n{span}\n"), "{run}");
    let run = logs(std::slice::from_ref(&file), id, &[]);
    let out = run.ok();
    assert!(
        out.lines().next().unwrap().contains(&tree::counts(1, 2)),
        "{run}"
    );
    assert!(
        out.contains(" tick  i=0") && out.contains(" tick  i=1000000"),
        "{run}"
    );
}
