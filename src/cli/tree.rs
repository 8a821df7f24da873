//! `unitel logs PATH… --trace ID`: the trace's spans as a tree (across services), each log
//! line under the span that wrote it, in time order; or its raw lines with `--json`.

use super::args::LogsArgs;
use super::input::{self, Input, Position, Tally};
use super::style::{self, Paint, Style};
use super::text;
use super::Failure;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::time::SystemTime;
use unitel::logfile::{LineScan, LogRecord, Record, SpanRecord};
use unitel::opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};

/// A record of the trace, with where it came from (for a stable order) and its raw line
/// (kept for `--json` only).
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) record: Record,
    pub(crate) raw: Option<Box<[u8]>>,
    /// Where its line is, for a stable order.
    pub(crate) order: Position,
}

pub(crate) fn run(args: &LogsArgs, style: Style) -> Result<(), Failure> {
    let inputs = input::expand(&args.paths)?;
    let (trace_id, records, tally) = find(&inputs, &args.trace, args.json)?;
    let result = show(args, style, trace_id, records);
    tally.report();
    result
}

/// Every record of the trace `id` (a full id or a unique prefix) in `inputs`.
pub(crate) fn find(
    inputs: &[Input],
    id: &str,
    keep_raw: bool,
) -> Result<(TraceId, Vec<Found>, Tally), Failure> {
    let (found, tally) = input::read(
        inputs,
        &LineScan::trace(id),
        Vec::new,
        |found: &mut Vec<Found>, at, record, raw| {
            // The raw-byte filter only narrows: the parsed id has the last word.
            if record
                .trace_id()
                .is_some_and(|t| hex_starts_with(&t.to_bytes(), id))
            {
                found.push(Found {
                    record,
                    raw: keep_raw.then(|| raw.into()),
                    order: at,
                });
            }
        },
    )?;
    let mut found: Vec<Found> = found.into_iter().flatten().collect();
    let ids: BTreeSet<[u8; 16]> = found
        .iter()
        .filter_map(|f| Some(f.record.trace_id()?.to_bytes()))
        .collect();
    let files = match tally.files {
        1 => "1 input".to_owned(),
        n => format!("{n} inputs"),
    };
    let trace_id = match ids.len() {
        0 => {
            tally.report();
            return Err(Failure::NotFound(format!(
                "trace {id} is not in {files} ({})",
                inputs
                    .iter()
                    .take(3)
                    .map(Input::name)
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if inputs.len() > 3 { ", …" } else { "" }
            )));
        }
        1 => TraceId::from_bytes(*ids.first().expect("one id")),
        n => {
            let shown: Vec<String> = ids
                .iter()
                .take(10)
                .map(|t| format!("  {}", TraceId::from_bytes(*t)))
                .collect();
            return Err(Failure::Usage(format!(
                "trace prefix {id} is ambiguous: {n} traces start with it; give more digits:\n{}",
                shown.join("\n")
            )));
        }
    };
    found.sort_by_key(|f| f.order);
    dedup(&mut found);
    Ok((trace_id, found, tally))
}

/// Whether the lowercase hex of `bytes` starts with `prefix`.
pub(crate) fn hex_starts_with(bytes: &[u8], prefix: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    prefix.bytes().enumerate().all(|(i, c)| {
        bytes
            .get(i / 2)
            .is_some_and(|b| HEX[usize::from(if i % 2 == 0 { b >> 4 } else { b & 15 })] == c)
    })
}

/// Drops records read twice (a rotated copy kept next to its compressed twin): a span by its
/// id, a log line when another is equal to it in every key.
fn dedup(found: &mut Vec<Found>) {
    let mut spans = HashSet::new();
    let mut logs: HashMap<(SystemTime, Option<SpanId>), Vec<LogRecord>> = HashMap::new();
    found.retain(|f| match &f.record {
        Record::Span(span) => spans.insert(span.span_id),
        Record::Log(log) => {
            let same_time = logs.entry((log.timestamp, log.span_id)).or_default();
            let new = !same_time.contains(log);
            if new {
                same_time.push(log.clone());
            }
            new
        }
        _ => true,
    });
}

/// The filters of `unitel logs`, applied to the trace's records.
struct Filters<'a> {
    args: &'a LogsArgs,
    /// `--span`: the spans of that subtree.
    subtree: Option<HashSet<SpanId>>,
}

impl Filters<'_> {
    fn keeps(&self, record: &Record) -> bool {
        let within = |from, to| self.args.window.overlaps(from, to);
        match record {
            Record::Span(span) => {
                within(span.start_time, span.end_time)
                    && self
                        .subtree
                        .as_ref()
                        .is_none_or(|s| s.contains(&span.span_id))
            }
            Record::Log(log) => {
                within(log.timestamp, log.timestamp)
                    && self.args.level.is_none_or(|level| log.level <= level)
                    && self
                        .subtree
                        .as_ref()
                        .is_none_or(|s| log.span_id.is_some_and(|id| s.contains(&id)))
            }
            _ => false,
        }
    }
}

fn show(
    args: &LogsArgs,
    style: Style,
    trace_id: TraceId,
    found: Vec<Found>,
) -> Result<(), Failure> {
    let selection = select(args, trace_id, found)?;
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    write(args, style, trace_id, selection, &mut out)?;
    out.flush()?;
    Ok(())
}

/// What `unitel logs` shows of a trace.
#[derive(Debug)]
pub(crate) struct Selection {
    /// The records that pass the filters, in time order.
    pub(crate) kept: Vec<Found>,
    /// `--span`: the span ids of the subtree.
    pub(crate) subtree: Option<HashSet<SpanId>>,
    /// Every span id of the trace in the files, filtered out or not.
    pub(crate) known: HashSet<SpanId>,
}

/// The records that pass `--span`, `--level`, `--since` and `--until`.
pub(crate) fn select(
    args: &LogsArgs,
    trace_id: TraceId,
    found: Vec<Found>,
) -> Result<Selection, Failure> {
    let known = found
        .iter()
        .filter_map(|f| Some(f.record.as_span()?.span_id))
        .collect();
    let subtree = match &args.span {
        None => None,
        Some(prefix) => Some(subtree(&found, prefix, trace_id)?),
    };
    let filters = Filters { args, subtree };
    let mut kept: Vec<Found> = found
        .into_iter()
        .filter(|f| filters.keeps(&f.record))
        .collect();
    kept.sort_by_key(|f| (f.record.timestamp(), f.order));
    Ok(Selection {
        kept,
        subtree: filters.subtree,
        known,
    })
}

/// Writes the kept records: raw lines with `--json`, else the tree.
pub(crate) fn write(
    args: &LogsArgs,
    style: Style,
    trace_id: TraceId,
    selection: Selection,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    if args.json {
        for f in &selection.kept {
            if let Some(raw) = &f.raw {
                out.write_all(raw)?;
                out.write_all(b"\n")?;
            }
        }
        return Ok(());
    }
    let records: Vec<Record> = selection.kept.into_iter().map(|f| f.record).collect();
    out.write_all(render(trace_id, &records, &selection.known, style).as_bytes())
}

/// One record as a line of its own (`--follow`): a log line (naming its span when known), or
/// a span that ended.
pub(crate) fn record_line(record: &Record, span_name: Option<&str>, style: Style) -> String {
    let empty = HashMap::new();
    let tree = Tree {
        children: &empty,
        style,
        width: 0,
        known: None,
    };
    let mut out = String::new();
    if let Some(service) = record.service() {
        style.paint(&mut out, Paint::Cyan, &text::escaped(service));
        out.push_str("  ");
    }
    match record {
        Record::Span(span) => {
            style.paint(&mut out, Paint::Dim, &style::clock(span.end_time));
            out.push_str(" span  ");
            tree.span_line(&mut out, span);
        }
        Record::Log(log) => {
            if let Some(name) = span_name {
                let mut log = log.clone();
                log.fields
                    .insert("span".into(), serde_json::Value::String(name.to_owned()));
                tree.log_line(&mut out, &log, "");
            } else {
                tree.log_line(&mut out, log, "");
            }
        }
        _ => {}
    }
    out
}

/// The span named by `prefix` (unique in the trace) and every span under it.
fn subtree(found: &[Found], prefix: &str, trace_id: TraceId) -> Result<HashSet<SpanId>, Failure> {
    let spans: Vec<&SpanRecord> = found.iter().filter_map(|f| f.record.as_span()).collect();
    let matches: BTreeSet<[u8; 8]> = spans
        .iter()
        .map(|s| s.span_id)
        .chain(found.iter().filter_map(|f| f.record.as_log()?.span_id))
        .map(|id| id.to_bytes())
        .filter(|id| hex_starts_with(id, prefix))
        .collect();
    let top = match matches.len() {
        0 => {
            return Err(Failure::NotFound(format!(
                "span {prefix} is not in trace {trace_id}"
            )))
        }
        1 => SpanId::from_bytes(*matches.first().expect("one span")),
        n => {
            return Err(Failure::Usage(format!(
                "span prefix {prefix} is ambiguous in trace {trace_id}: {n} spans start with it"
            )))
        }
    };
    let mut children: HashMap<SpanId, Vec<SpanId>> = HashMap::new();
    for span in &spans {
        if let Some(parent) = span.parent_span_id {
            children.entry(parent).or_default().push(span.span_id);
        }
    }
    let mut set = HashSet::new();
    let mut stack = vec![top];
    while let Some(id) = stack.pop() {
        if set.insert(id) {
            stack.extend(children.get(&id).into_iter().flatten());
        }
    }
    Ok(set)
}

/// What goes under a node of the tree, in time order.
enum Item<'a> {
    Span(&'a SpanRecord),
    Log(&'a LogRecord),
    /// Log lines of a span that has no span record in the files (not sampled, or still
    /// open).
    Unrecorded(SpanId),
}

/// The trace as text: a header, then its spans as a tree with their log lines. `known` holds
/// every span id of the trace in the files, so that a parent left out by a filter is not
/// called missing.
pub(crate) fn render(
    trace_id: TraceId,
    records: &[Record],
    known: &HashSet<SpanId>,
    style: Style,
) -> String {
    let spans: Vec<&SpanRecord> = records.iter().filter_map(Record::as_span).collect();
    let logs: Vec<&LogRecord> = records.iter().filter_map(Record::as_log).collect();
    let by_id: HashMap<SpanId, &SpanRecord> = spans.iter().map(|s| (s.span_id, *s)).collect();

    let mut children: HashMap<Option<SpanId>, Vec<Item<'_>>> = HashMap::new();
    for span in &spans {
        let parent = span.parent_span_id.filter(|p| by_id.contains_key(p));
        children.entry(parent).or_default().push(Item::Span(span));
    }
    let mut unrecorded = HashSet::new();
    for log in &logs {
        let Some(span_id) = log.span_id else { continue };
        if !by_id.contains_key(&span_id) && unrecorded.insert(span_id) {
            children
                .entry(None)
                .or_default()
                .push(Item::Unrecorded(span_id));
        }
        children
            .entry(Some(span_id))
            .or_default()
            .push(Item::Log(log));
    }
    let first_log = |id: SpanId| {
        logs.iter()
            .filter(|l| l.span_id == Some(id))
            .map(|l| l.timestamp)
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    for items in children.values_mut() {
        items.sort_by_key(|item| match item {
            Item::Span(s) => s.start_time,
            Item::Log(l) => l.timestamp,
            Item::Unrecorded(id) => first_log(*id),
        });
    }

    let services: BTreeSet<&str> = records.iter().filter_map(Record::service).collect();
    let width = if services.len() > 1 {
        services
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
    } else {
        0
    };
    let mut out = String::new();
    header(&mut out, trace_id, &spans, &logs, &services, style);
    let tree = Tree {
        children: &children,
        style,
        width,
        known: Some(known),
    };
    if let Some(roots) = children.get(&None) {
        for root in roots {
            tree.item(&mut out, root, "", None);
        }
    }
    out
}

fn header(
    out: &mut String,
    trace_id: TraceId,
    spans: &[&SpanRecord],
    logs: &[&LogRecord],
    services: &BTreeSet<&str>,
    style: Style,
) {
    style.paint(out, Paint::Bold, &format!("trace {trace_id}"));
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
        out.push_str("  ");
        out.push_str(&style::date_time(start));
        out.push_str("  ");
        style.paint(
            out,
            Paint::Yellow,
            &style::duration(end.duration_since(start).unwrap_or_default()),
        );
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push_str("  ");
    out.push_str(&plural(spans.len(), "span"));
    out.push_str(", ");
    out.push_str(&plural(logs.len(), "log line"));
    if !services.is_empty() {
        out.push_str(", ");
        out.push_str(&plural(services.len(), "service"));
        out.push_str(" (");
        out.push_str(&services.iter().copied().collect::<Vec<_>>().join(", "));
        out.push(')');
    }
    let failed = spans
        .iter()
        .any(|s| matches!(s.status, Status::Error { .. }))
        || logs.iter().any(|l| l.level == tracing::Level::ERROR);
    if failed {
        out.push_str("  ");
        style.paint(out, Paint::BoldRed, "ERROR");
    }
    out.push('\n');
}

struct Tree<'a> {
    children: &'a HashMap<Option<SpanId>, Vec<Item<'a>>>,
    style: Style,
    /// The service column's width; 0 when the trace has one service.
    width: usize,
    /// Every span id of the trace in the files, when the whole trace is at hand (so that a
    /// parent missing from it is worth a note).
    known: Option<&'a HashSet<SpanId>>,
}

impl Tree<'_> {
    /// Writes `item` and what is under it; `last` is `None` for a root, else whether it is
    /// its parent's last item.
    fn item(&self, out: &mut String, item: &Item<'_>, indent: &str, last: Option<bool>) {
        let (branch, under) = match last {
            None => ("", ""),
            Some(false) => ("├─ ", "│  "),
            Some(true) => ("└─ ", "   "),
        };
        let child_indent = format!("{indent}{under}");
        match item {
            Item::Span(span) => {
                self.service(out, span.service.as_deref());
                out.push_str(indent);
                out.push_str(branch);
                self.span_line(out, span);
                self.children_of(out, Some(span.span_id), &child_indent);
            }
            Item::Unrecorded(id) => {
                self.service(out, None);
                out.push_str(indent);
                out.push_str(branch);
                self.style.paint(
                    out,
                    Paint::Dim,
                    &format!(
                        "(span {id}: no span record in these files; not sampled or not ended)"
                    ),
                );
                out.push('\n');
                self.children_of(out, Some(*id), &child_indent);
            }
            Item::Log(log) => {
                self.service(out, log.service.as_deref());
                out.push_str(indent);
                out.push_str(branch);
                self.log_line(out, log, &child_indent);
            }
        }
    }

    fn children_of(&self, out: &mut String, id: Option<SpanId>, indent: &str) {
        if let Some(items) = self.children.get(&id) {
            for (i, child) in items.iter().enumerate() {
                self.item(out, child, indent, Some(i + 1 == items.len()));
            }
        }
    }

    fn service(&self, out: &mut String, service: Option<&str>) {
        if self.width > 0 {
            let service = service.unwrap_or("");
            let pad = self.width - service.chars().count().min(self.width);
            self.style.paint(out, Paint::Cyan, service);
            out.push_str(&" ".repeat(pad + 2));
        }
    }

    fn span_line(&self, out: &mut String, span: &SpanRecord) {
        let style = self.style;
        style.paint(out, Paint::Bold, &text::escaped(&span.name));
        out.push_str("  ");
        let mut about = text::escaped(&span.component).into_owned();
        let kind = match span.kind {
            SpanKind::Server => Some("server"),
            SpanKind::Client => Some("client"),
            SpanKind::Producer => Some("producer"),
            SpanKind::Consumer => Some("consumer"),
            _ => None,
        };
        if let Some(kind) = kind {
            about.push_str(" · ");
            about.push_str(kind);
        }
        style.paint(out, Paint::Dim, &about);
        out.push_str("  ");
        style.paint(out, Paint::Yellow, &style::duration(span.duration));
        match &span.status {
            Status::Ok => {
                out.push_str("  ");
                style.paint(out, Paint::Green, "ok");
            }
            Status::Error { description } => {
                out.push_str("  ");
                let label = if description.is_empty() {
                    "error".to_owned()
                } else {
                    format!("error: {}", text::escaped(description))
                };
                style.paint(out, Paint::BoldRed, &label);
            }
            Status::Unset => {}
        }
        let attrs = key_attributes(span);
        if !attrs.is_empty() {
            out.push_str("  ");
            let mut line = String::new();
            for (i, (key, value)) in attrs.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                text::write_token(&mut line, key);
                line.push('=');
                style::value(&mut line, value);
            }
            style.paint(out, Paint::Dim, &line);
        }
        let missing = span
            .parent_span_id
            .filter(|p| self.known.is_some_and(|known| !known.contains(p)));
        if let Some(parent) = missing {
            out.push_str("  ");
            style.paint(
                out,
                Paint::Dim,
                &format!("(parent {parent} is not in these files)"),
            );
        }
        out.push('\n');
    }

    fn log_line(&self, out: &mut String, log: &LogRecord, indent: &str) {
        let style = self.style;
        style.paint(out, Paint::Dim, &style::clock(log.timestamp));
        out.push(' ');
        style.level(out, log.level);
        out.push(' ');
        text::write_message(out, &log.message);
        if !log.fields.is_empty() {
            let mut line = String::new();
            for (key, value) in &log.fields {
                line.push(' ');
                text::write_token(&mut line, key);
                line.push('=');
                style::value(&mut line, value);
            }
            out.push(' ');
            style.paint(out, Paint::Dim, &line);
        }
        out.push('\n');
        if let Some(error) = &log.error {
            let lines = std::iter::once(("error: ", &error.message))
                .chain(error.causes.iter().map(|c| ("caused by: ", c)));
            for (label, message) in lines {
                self.service(out, log.service.as_deref());
                out.push_str(indent);
                out.push_str("  ");
                style.paint(
                    out,
                    Paint::Red,
                    &format!("{label}{}", text::escaped(message)),
                );
                out.push('\n');
            }
        }
    }
}

/// The attributes worth a place on a span's line: the semantic conventions' identifying ones
/// first, then others, leaving out bookkeeping (`code.*`, `thread.*`, `busy_ns`, ...), at most
/// eight.
fn key_attributes(span: &SpanRecord) -> Vec<(&str, &serde_json::Value)> {
    const FIRST: &[&str] = &[
        "http.request.method",
        "http.route",
        "url.path",
        "url.full",
        "http.response.status_code",
        "rpc.system",
        "rpc.method",
        "db.system.name",
        "db.namespace",
        "db.query.summary",
        "db.operation.name",
        "db.collection.name",
        "db.response.status_code",
        "messaging.system",
        "messaging.operation.type",
        "messaging.destination.name",
        "server.address",
        "server.port",
        "error.type",
    ];
    const NOISE: &[&str] = &[
        "code.",
        "thread.",
        "busy_ns",
        "idle_ns",
        "target",
        "otel.",
        "network.",
        "url.scheme",
        "url.query",
        "user_agent.",
        "client.",
        "http.request.header",
        "http.response.header",
        "http.request.body",
        "http.response.body",
        "db.query.text",
        "db.statement",
    ];
    let mut attrs: Vec<(&str, &serde_json::Value)> = FIRST
        .iter()
        .filter_map(|key| span.attributes.get_key_value(*key))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    // url.path says what url.full says, without the host.
    if attrs.iter().any(|(k, _)| *k == "url.full") {
        attrs.retain(|(k, _)| *k != "url.path");
    }
    for (key, value) in &span.attributes {
        if attrs.len() >= 8 {
            break;
        }
        if !FIRST.contains(&key.as_str()) && !NOISE.iter().any(|n| key.starts_with(n)) {
            attrs.push((key, value));
        }
    }
    attrs.truncate(8);
    attrs
}
