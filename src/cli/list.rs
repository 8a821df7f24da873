//! `unitel traces PATH…`: one line per trace — root span, component, start, duration, error
//! flag, span and log counts.

use super::args::TracesArgs;
use super::input::{self, Tally};
use super::style::{self, Paint, Style};
use super::text;
use super::Failure;
use std::collections::HashMap;
use std::io::Write as _;
use std::time::{Duration, SystemTime};
use unitel::logfile::{LineScan, Record};
use unitel::opentelemetry::trace::{SpanId, Status, TraceId};

/// What a trace is made of, gathered record by record.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) trace_id: TraceId,
    start: Option<SystemTime>,
    end: Option<SystemTime>,
    /// The root: the span without a parent (or, failing that, the earliest span whose parent
    /// is in no file), as (start, name, component, service, duration, has a parent).
    root: Option<Root>,
    spans: u64,
    logs: u64,
    error: bool,
    services: Vec<String>,
}

#[derive(Debug, Clone)]
struct Root {
    start: SystemTime,
    name: String,
    component: String,
    service: Option<String>,
    duration: Duration,
    span_id: SpanId,
    parent: Option<SpanId>,
}

impl Summary {
    fn new(trace_id: TraceId) -> Summary {
        Summary {
            trace_id,
            start: None,
            end: None,
            root: None,
            spans: 0,
            logs: 0,
            error: false,
            services: Vec::new(),
        }
    }

    fn add(&mut self, record: &Record) {
        let (from, to) = match record {
            Record::Span(span) => {
                self.spans += 1;
                self.error |= matches!(span.status, Status::Error { .. });
                let candidate = Root {
                    start: span.start_time,
                    name: span.name.clone(),
                    component: span.component.clone(),
                    service: span.service.clone(),
                    duration: span.duration,
                    span_id: span.span_id,
                    parent: span.parent_span_id,
                };
                self.offer_root(candidate);
                (span.start_time, span.end_time)
            }
            Record::Log(log) => {
                self.logs += 1;
                self.error |= log.level == tracing::Level::ERROR;
                (log.timestamp, log.timestamp)
            }
            _ => return,
        };
        if let Some(service) = record.service() {
            if !self.services.iter().any(|s| s == service) {
                self.services.push(service.to_owned());
            }
        }
        self.start = Some(self.start.map_or(from, |s| s.min(from)));
        self.end = Some(self.end.map_or(to, |e| e.max(to)));
    }

    /// A span without a parent wins; among the rest, the earliest.
    fn offer_root(&mut self, candidate: Root) {
        let better = match &self.root {
            None => true,
            Some(root) => match (root.parent.is_none(), candidate.parent.is_none()) {
                (false, true) => true,
                (true, false) => false,
                _ => candidate.start < root.start,
            },
        };
        if better {
            self.root = Some(candidate);
        }
    }

    fn merge(&mut self, other: Summary) {
        self.spans += other.spans;
        self.logs += other.logs;
        self.error |= other.error;
        for service in other.services {
            if !self.services.contains(&service) {
                self.services.push(service);
            }
        }
        self.start = match (self.start, other.start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end = match (self.end, other.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(root) = other.root {
            self.offer_root(root);
        }
    }

    /// The root span's duration when the trace has a true root; else first to last record.
    fn duration(&self) -> Duration {
        match &self.root {
            Some(root) if root.parent.is_none() => root.duration,
            _ => match (self.start, self.end) {
                (Some(s), Some(e)) => e.duration_since(s).unwrap_or_default(),
                _ => Duration::ZERO,
            },
        }
    }

    fn start(&self) -> SystemTime {
        self.start.unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

pub(crate) fn run(args: &TracesArgs, style: Style) -> Result<(), Failure> {
    let inputs = input::expand(&args.paths)?;
    let (summaries, tally) = summaries(&inputs)?;
    let mut traces: Vec<Summary> = summaries
        .into_iter()
        .filter(|t| !args.errors || t.error)
        .filter(|t| args.window.overlaps(t.start(), t.start()))
        .collect();
    match args.slowest {
        Some(n) => {
            traces.sort_by(|a, b| {
                b.duration()
                    .cmp(&a.duration())
                    .then(a.start().cmp(&b.start()))
            });
            traces.truncate(n);
        }
        None => traces.sort_by(|a, b| {
            a.start()
                .cmp(&b.start())
                .then(a.trace_id.to_bytes().cmp(&b.trace_id.to_bytes()))
        }),
    }
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    if args.json {
        for t in &traces {
            writeln!(out, "{}", json_line(t))?;
        }
    } else {
        table(&mut out, &traces, style)?;
    }
    out.flush()?;
    drop(out);
    tally.report();
    if traces.is_empty() {
        let which = if args.errors || args.window.is_set() || args.slowest.is_some() {
            "no trace matches the filters"
        } else {
            "no traces in the files"
        };
        if !args.json {
            let _ = writeln!(std::io::stderr(), "unitel: {which}");
        }
    }
    Ok(())
}

/// Reads every record of `inputs` into one summary per trace.
fn summaries(inputs: &[input::Input]) -> Result<(Vec<Summary>, Tally), Failure> {
    let (maps, tally) = input::read(
        inputs,
        &LineScan::every_line(),
        HashMap::<TraceId, Summary>::new,
        |map, _, record, _| {
            if let Some(trace_id) = record.trace_id() {
                map.entry(trace_id)
                    .or_insert_with(|| Summary::new(trace_id))
                    .add(&record);
            }
        },
    )?;
    let mut all: HashMap<TraceId, Summary> = HashMap::new();
    for map in maps {
        for (id, summary) in map {
            match all.entry(id) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(summary),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(summary);
                }
            }
        }
    }
    Ok((all.into_values().collect(), tally))
}

fn root_text(t: &Summary) -> (String, String) {
    match &t.root {
        Some(root) => {
            let mut name = text::escaped(&root.name).into_owned();
            if let Some(parent) = root.parent {
                name.push_str(&format!(" (parent {parent} not in these files)"));
            }
            let mut component = text::escaped(&root.component).into_owned();
            if let Some(service) = &root.service {
                if t.services.len() > 1 || service != &root.component {
                    component = format!("{}/{}", text::escaped(service), component);
                }
            }
            (name, component)
        }
        None => ("(no span records)".into(), String::new()),
    }
}

fn table(out: &mut impl std::io::Write, traces: &[Summary], style: Style) -> std::io::Result<()> {
    if traces.is_empty() {
        return Ok(());
    }
    let mut head = String::new();
    style.paint(
        &mut head,
        Paint::Bold,
        &format!(
            "{:<32}  {:<26}  {:>9}  {:>5}  {:>5}  {:<5}  {}",
            "TRACE", "START (UTC)", "DURATION", "SPANS", "LOGS", "ERROR", "ROOT"
        ),
    );
    writeln!(out, "{head}")?;
    for t in traces {
        let (name, component) = root_text(t);
        let mut line = String::new();
        line.push_str(&t.trace_id.to_string());
        line.push_str("  ");
        line.push_str(&format!("{:<26}", style::date_time(t.start())));
        line.push_str("  ");
        style.paint(
            &mut line,
            Paint::Yellow,
            &format!("{:>9}", style::duration(t.duration())),
        );
        line.push_str(&format!("  {:>5}  {:>5}  ", t.spans, t.logs));
        if t.error {
            style.paint(&mut line, Paint::BoldRed, "error");
        } else {
            line.push_str("     ");
        }
        line.push_str("  ");
        style.paint(&mut line, Paint::Bold, &name);
        if !component.is_empty() {
            line.push_str("  ");
            style.paint(&mut line, Paint::Dim, &component);
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn json_line(t: &Summary) -> String {
    let root = t.root.as_ref();
    serde_json::json!({
        "trace_id": t.trace_id.to_string(),
        "start": unitel::logfile::format_timestamp(t.start()),
        "duration_ns": u64::try_from(t.duration().as_nanos()).unwrap_or(u64::MAX),
        "root": root.map(|r| r.name.as_str()),
        "root_span_id": root.map(|r| r.span_id.to_string()),
        "component": root.map(|r| r.component.as_str()),
        "service": root.and_then(|r| r.service.as_deref()),
        "services": t.services,
        "spans": t.spans,
        "logs": t.logs,
        "error": t.error,
    })
    .to_string()
}
