//! Reading `unitel logs --trace` output (`--color never`) back into a tree, and checking it
//! against the records of the trace: structure, not colour.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::SystemTime;
use unitel::logfile::{format_timestamp, LogRecord, Record, SpanRecord};
use unitel::opentelemetry::trace::{SpanId, SpanKind, Status};

/// One line of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The service column (multi-service output only).
    pub(crate) service: Option<String>,
    /// 0 for a root, 1 for its children, ...
    pub(crate) depth: usize,
    /// The line after the service column and the tree's branches.
    pub(crate) text: String,
    /// An `error:` / `caused by:` line under a log line.
    pub(crate) detail: bool,
}

/// Splits the output into its header and its lines; `width` is the service column's width
/// when the output has one.
pub(crate) fn parse(output: &str, width: Option<usize>) -> (String, Vec<Line>) {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    let lines = lines
        .map(|line| {
            let (service, rest) = match width {
                Some(width) => {
                    let service: String = line.chars().take(width).collect();
                    let rest: String = line.chars().skip(width).collect();
                    let rest = rest.strip_prefix("  ").unwrap_or_else(|| {
                        panic!("no service column of width {width} in {line:?}\n{output}")
                    });
                    (Some(service.trim_end().to_owned()), rest.to_owned())
                }
                None => (None, line.to_owned()),
            };
            let (depth, text, detail) = branches(&rest);
            Line {
                service,
                depth,
                text: text.to_owned(),
                detail,
            }
        })
        .collect();
    (header, lines)
}

/// The tree's drawing at the start of a line: `│  ` / `   ` per level above, then `├─ ` or
/// `└─ `; a detail line has its parent's indent and two spaces instead.
fn branches(line: &str) -> (usize, &str, bool) {
    let mut depth = 0;
    let mut rest = line;
    loop {
        if let Some(r) = rest
            .strip_prefix("├─ ")
            .or_else(|| rest.strip_prefix("└─ "))
        {
            return (depth + 1, r, false);
        }
        match rest
            .strip_prefix("│  ")
            .or_else(|| rest.strip_prefix("   "))
        {
            Some(r) => {
                depth += 1;
                rest = r;
            }
            None => break,
        }
    }
    match rest.strip_prefix("  ") {
        Some(detail) => (depth, detail, true),
        None => {
            assert_eq!(depth, 0, "an indent without a branch: {line:?}");
            (0, rest, false)
        }
    }
}

/// `05:23:30.123481`, as the tool prints a log line's time.
pub(crate) fn clock(t: SystemTime) -> String {
    let stamp = format_timestamp(t);
    stamp
        .split_once('T')
        .map(|(_, time)| time.trim_end_matches('Z').to_owned())
        .unwrap_or(stamp)
}

/// `N spans, M log lines`.
pub(crate) fn counts(spans: usize, logs: usize) -> String {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!("{spans} span{}, {logs} log line{}", s(spans), s(logs))
}

/// What a line of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Span(SpanId),
    /// Index into the trace's log records.
    Log(usize),
}

/// Checks `output` (`unitel logs --trace ID --color never`) against `records`, the records
/// it must show and no other:
///
/// - the header names the trace, the span and log counts, and the services;
/// - every span once, every log line once, nothing else (error lines under their log line);
/// - each span under its parent (a root when the parent is not among the records), each log
///   line under the span that wrote it, siblings in time order;
/// - a span line shows its component and kind, its duration, its status and the parent note;
///   a log line its time, level, message and fields; the error and its causes follow it;
/// - with several services, every line starts with its service.
///
/// Returns the parsed lines, for further assertions.
#[track_caller]
pub(crate) fn check(output: &str, records: &[Record]) -> Vec<Line> {
    check_within(output, records, records)
}

/// [`check`] for a part of a trace (`--span`): `whole` is all of the trace in the files, so a
/// parent that is in them but filtered out gets no "not in these files" note.
#[track_caller]
pub(crate) fn check_within(output: &str, records: &[Record], whole: &[Record]) -> Vec<Line> {
    let known: HashSet<SpanId> = whole
        .iter()
        .filter_map(|r| Some(r.as_span()?.span_id))
        .collect();
    let spans: Vec<&SpanRecord> = records.iter().filter_map(Record::as_span).collect();
    let logs: Vec<&LogRecord> = records.iter().filter_map(Record::as_log).collect();
    let by_id: HashMap<SpanId, &SpanRecord> = spans.iter().map(|s| (s.span_id, *s)).collect();
    let services: BTreeSet<&str> = records.iter().filter_map(Record::service).collect();
    let width = (services.len() > 1).then(|| {
        services
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    });
    let (header, lines) = parse(output, width);

    // The header.
    let trace_id = records
        .first()
        .and_then(Record::trace_id)
        .expect("records of a trace");
    if !header.starts_with(&format!("trace {trace_id}  ")) {
        fail(
            output,
            format!("the header does not name trace {trace_id}: {header:?}"),
        );
    }
    // Its time span: first start to last end, over the records shown.
    let start = spans
        .iter()
        .map(|s| s.start_time)
        .chain(logs.iter().map(|l| l.timestamp))
        .min();
    let end = spans
        .iter()
        .map(|s| s.end_time)
        .chain(logs.iter().map(|l| l.timestamp))
        .max();
    if let (Some(start), Some(end)) = (start, end) {
        let parts: Vec<&str> = header.split("  ").collect();
        let date = format_timestamp(start)
            .trim_end_matches('Z')
            .replacen('T', " ", 1);
        if parts.get(1) != Some(&date.as_str()) {
            fail(
                output,
                format!("the header does not start at {date}: {header:?}"),
            );
        }
        let took = end.duration_since(start).unwrap_or_default().as_nanos() as f64;
        match parts.get(2).and_then(|d| parse_duration(d)) {
            Some((nanos, resolution)) if (nanos - took).abs() <= resolution / 2.0 + 1.0 => {}
            _ => fail(
                output,
                format!("the header's duration is not {took} ns: {header:?}"),
            ),
        }
    }
    let mut expected = counts(spans.len(), logs.len());
    if !services.is_empty() {
        let n = services.len();
        let names: Vec<&str> = services.iter().copied().collect();
        expected.push_str(&format!(
            ", {n} service{} ({})",
            if n == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    if !header.contains(&expected) {
        fail(output, format!("the header lacks {expected:?}: {header:?}"));
    }

    // Which record each line is.
    let mut nodes: Vec<(usize, Node)> = Vec::new();
    let mut seen_logs = vec![false; logs.len()];
    let mut seen_spans: HashMap<SpanId, usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.detail {
            continue;
        }
        let is_log = line.text.len() > 16
            && line.text.as_bytes()[2] == b':'
            && line.text.as_bytes()[8] == b'.'
            && line.text.as_bytes()[15] == b' ';
        let node = if is_log {
            let found = logs.iter().enumerate().position(|(j, log)| {
                !seen_logs[j]
                    && line.text.starts_with(&format!(
                        "{} {:<5} {}",
                        clock(log.timestamp),
                        log.level.as_str(),
                        log.message
                    ))
            });
            match found {
                Some(j) => {
                    seen_logs[j] = true;
                    Node::Log(j)
                }
                None => fail(
                    output,
                    format!(
                        "line {i} is no log record of the trace (or shown twice): {:?}",
                        line.text
                    ),
                ),
            }
        } else {
            match spans
                .iter()
                .find(|s| line.text.starts_with(&format!("{}  ", s.name)))
            {
                Some(span) => {
                    if let Some(before) = seen_spans.insert(span.span_id, i) {
                        fail(
                            output,
                            format!("span {:?} shown twice (lines {before}, {i})", span.name),
                        );
                    }
                    Node::Span(span.span_id)
                }
                None => fail(
                    output,
                    format!(
                        "line {i} is no span or log record of the trace: {:?}",
                        line.text
                    ),
                ),
            }
        };
        nodes.push((i, node));
    }
    if let Some(j) = seen_logs.iter().position(|seen| !seen) {
        fail(output, format!("log line {:?} is missing", logs[j].message));
    }
    if let Some(span) = spans.iter().find(|s| !seen_spans.contains_key(&s.span_id)) {
        fail(output, format!("span {:?} is missing", span.name));
    }

    // Where each line hangs: the nearest line above it one level up.
    let mut parent_of: HashMap<usize, Option<usize>> = HashMap::new();
    for &(i, _) in &nodes {
        let depth = lines[i].depth;
        let parent = if depth == 0 {
            None
        } else {
            let p = (0..i)
                .rev()
                .find(|&j| !lines[j].detail && lines[j].depth == depth - 1)
                .unwrap_or_else(|| fail(output, format!("line {i} has no parent line")));
            Some(p)
        };
        parent_of.insert(i, parent);
    }
    let span_line = |id: SpanId| seen_spans[&id];
    let mut children: HashMap<Option<usize>, Vec<(SystemTime, usize)>> = HashMap::new();
    for &(i, node) in &nodes {
        let (expected_parent, time, service) = match node {
            Node::Span(id) => {
                let span = by_id[&id];
                let parent = span
                    .parent_span_id
                    .filter(|p| by_id.contains_key(p))
                    .map(span_line);
                (parent, span.start_time, span.service.as_deref())
            }
            Node::Log(j) => {
                let log = logs[j];
                let span = log
                    .span_id
                    .filter(|s| by_id.contains_key(s))
                    .unwrap_or_else(|| {
                        fail(output, format!("log {:?} has no span record", log.message))
                    });
                (Some(span_line(span)), log.timestamp, log.service.as_deref())
            }
        };
        if parent_of[&i] != expected_parent {
            let name = |l: Option<usize>| l.map_or("(root)".to_owned(), |l| lines[l].text.clone());
            fail(
                output,
                format!(
                    "line {i} {:?} hangs under {:?}, expected under {:?}",
                    lines[i].text,
                    name(parent_of[&i]),
                    name(expected_parent)
                ),
            );
        }
        if width.is_some() && lines[i].service.as_deref() != service {
            fail(
                output,
                format!(
                    "line {i} {:?} shows service {:?}, its record says {service:?}",
                    lines[i].text, lines[i].service
                ),
            );
        }
        children.entry(parent_of[&i]).or_default().push((time, i));
    }
    for (parent, items) in &children {
        if items.windows(2).any(|w| w[0].0 > w[1].0) {
            fail(
                output,
                format!(
                    "the lines under {:?} are not in time order",
                    parent.map(|p| lines[p].text.clone())
                ),
            );
        }
    }

    // What each line says.
    for &(i, node) in &nodes {
        let text = &lines[i].text;
        match node {
            Node::Span(id) => check_span_line(output, text, by_id[&id], &known),
            Node::Log(j) => {
                let log = logs[j];
                for key in log.fields.keys() {
                    if !text.contains(&format!(" {key}=")) {
                        fail(
                            output,
                            format!("the log line {text:?} lacks its field {key}"),
                        );
                    }
                }
                let details: Vec<&Line> = lines[i + 1..].iter().take_while(|l| l.detail).collect();
                let expected: Vec<String> = log
                    .error
                    .iter()
                    .flat_map(|e| {
                        std::iter::once(format!("error: {}", e.message))
                            .chain(e.causes.iter().map(|c| format!("caused by: {c}")))
                    })
                    .collect();
                let shown: Vec<&str> = details.iter().map(|l| l.text.as_str()).collect();
                if shown != expected {
                    fail(
                        output,
                        format!(
                            "the lines under log {:?} are {shown:?}, expected {expected:?}",
                            log.message
                        ),
                    );
                }
                if width.is_some()
                    && details
                        .iter()
                        .any(|d| d.service.as_deref() != log.service.as_deref())
                {
                    fail(
                        output,
                        format!("an error line of {:?} lacks its service", log.message),
                    );
                }
            }
        }
    }
    lines
}

#[track_caller]
fn fail(output: &str, what: String) -> ! {
    panic!("{what}\n--- output\n{output}")
}

/// `name  component · kind  duration  status  attributes  (parent note)`.
fn check_span_line(output: &str, text: &str, span: &SpanRecord, known: &HashSet<SpanId>) {
    let rest = &text[span.name.len() + 2..];
    let parts: Vec<&str> = rest.split("  ").collect();
    let kind = match span.kind {
        SpanKind::Server => " · server",
        SpanKind::Client => " · client",
        SpanKind::Producer => " · producer",
        SpanKind::Consumer => " · consumer",
        _ => "",
    };
    let about = format!("{}{kind}", span.component);
    if parts.first() != Some(&about.as_str()) {
        fail(
            output,
            format!("span line {text:?}: expected {about:?} after the name"),
        );
    }
    match parts.get(1).and_then(|d| parse_duration(d)) {
        Some((nanos, resolution)) => {
            let actual = span.duration.as_nanos() as f64;
            if (nanos - actual).abs() > resolution / 2.0 + 1.0 {
                fail(
                    output,
                    format!(
                        "span line {text:?}: duration {} is not {:?}",
                        parts[1], span.duration
                    ),
                );
            }
        }
        None => fail(
            output,
            format!("span line {text:?}: no duration after {about:?}"),
        ),
    }
    let extra = &parts[2..];
    match &span.status {
        Status::Error { description } => {
            let expected = if description.is_empty() {
                "error".to_owned()
            } else {
                format!("error: {description}")
            };
            if !extra.contains(&expected.as_str()) {
                fail(output, format!("span line {text:?} lacks {expected:?}"));
            }
        }
        Status::Ok => {
            if !extra.contains(&"ok") {
                fail(output, format!("span line {text:?} lacks its ok status"));
            }
        }
        Status::Unset => {
            if extra.iter().any(|p| *p == "ok" || p.starts_with("error")) {
                fail(
                    output,
                    format!("span line {text:?} shows a status the span has not"),
                );
            }
        }
    }
    let note = span
        .parent_span_id
        .filter(|p| !known.contains(p))
        .map(|p| format!("(parent {p} is not in these files)"));
    let shown = extra.iter().find(|p| p.starts_with("(parent "));
    if shown.copied() != note.as_deref() {
        fail(
            output,
            format!("span line {text:?}: parent note {shown:?}, expected {note:?}"),
        );
    }
}

/// `850ns`, `12.3µs`, `45.20ms`, `1.234s`, `2m05s`: nanoseconds, and the resolution shown.
pub(crate) fn parse_duration(text: &str) -> Option<(f64, f64)> {
    if let Some((m, s)) = text.strip_suffix('s').and_then(|t| t.split_once('m')) {
        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) {
            let secs = m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?;
            return Some((secs * 1e9, 1e9));
        }
    }
    let (number, unit) = [("ns", 1.0), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)]
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))?;
    let value: f64 = number.parse().ok()?;
    let decimals = number.split_once('.').map_or(0, |(_, d)| d.len());
    Some((value * unit, unit / 10f64.powi(decimals as i32)))
}

/// The lines of the span named `name`, and of everything under it (its subtree).
pub(crate) fn subtree_of<'a>(lines: &'a [Line], name: &str) -> &'a [Line] {
    let start = lines
        .iter()
        .position(|l| !l.detail && l.text.starts_with(&format!("{name}  ")))
        .unwrap_or_else(|| panic!("no span {name:?}"));
    let depth = lines[start].depth;
    let end = lines[start + 1..]
        .iter()
        .position(|l| !l.detail && l.depth <= depth)
        .map_or(lines.len(), |n| start + 1 + n);
    &lines[start..end]
}
