//! `unitel logs PATH… --trace ID --follow`: the trace as it stands, then each new record of
//! it as the files grow, across rotation, until Ctrl-C.
//!
//! Every 200 ms the paths are listed again (a log's files, or a directory's) and each file is
//! read on from where the last look stopped, by identity (device and inode), not by name:
//!
//! - a file renamed by rotation (`app.log` to `app.log.1`) is the same file, not re-read;
//! - a new file (the new `app.log`, tracing-appender's next dated file) is read from its
//!   start;
//! - a file that shrank (logrotate's `copytruncate`) is read again from its start;
//! - a gzip file that appears while following is a compressed copy of lines already read,
//!   and is skipped;
//! - a half-written last line waits for its newline.

use super::args::LogsArgs;
use super::input::{Input, Position, Tally};
use super::style::Style;
use super::tree::{self, hex_starts_with};
use super::Failure;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use unitel::logfile::{self, LineScan, Record};
use unitel::opentelemetry::trace::{SpanId, TraceId};

/// How often the files are looked at again.
const POLL: Duration = Duration::from_millis(200);

/// A file's identity across renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey(u64, u64);

fn key_of(meta: &std::fs::Metadata, path: &Path) -> FileKey {
    #[cfg(unix)]
    {
        let _ = path;
        use std::os::unix::fs::MetadataExt as _;
        FileKey(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        use std::hash::{Hash as _, Hasher as _};
        let _ = meta;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        FileKey(h.finish(), 0)
    }
}

/// What is printed, and which records belong.
struct Printer<'a> {
    args: &'a LogsArgs,
    style: Style,
    /// The full trace id, once a record has shown it.
    trace_id: Option<TraceId>,
    /// `--span`: the spans of the subtree seen so far.
    subtree: Option<HashSet<SpanId>>,
    /// Spans seen, by id: their names on log lines, and a span read twice prints once.
    names: HashMap<SpanId, String>,
    tally: Tally,
    reported: u64,
}

impl Printer<'_> {
    /// Whether `record` is of the trace (locking a prefix onto the first full id seen).
    fn of_trace(&mut self, record: &Record) -> bool {
        let Some(id) = record.trace_id() else {
            return false;
        };
        match self.trace_id {
            Some(t) => t == id,
            None if hex_starts_with(&id.to_bytes(), &self.args.trace) => {
                self.trace_id = Some(id);
                true
            }
            None => false,
        }
    }

    fn keeps(&mut self, record: &Record) -> bool {
        let args = self.args;
        let time_ok = |t| args.window.overlaps(t, t);
        if let Some(subtree) = &mut self.subtree {
            let inside = match record {
                Record::Span(span) => {
                    let top = hex_starts_with(
                        &span.span_id.to_bytes(),
                        args.span.as_deref().unwrap_or(""),
                    );
                    let under = span.parent_span_id.is_some_and(|p| subtree.contains(&p));
                    if top || under {
                        subtree.insert(span.span_id);
                    }
                    top || under
                }
                Record::Log(log) => log.span_id.is_some_and(|id| {
                    subtree.contains(&id)
                        || hex_starts_with(&id.to_bytes(), args.span.as_deref().unwrap_or(""))
                }),
                _ => false,
            };
            if !inside {
                return false;
            }
        }
        match record {
            Record::Span(span) => time_ok(span.end_time),
            Record::Log(log) => {
                time_ok(log.timestamp) && args.level.is_none_or(|level| log.level <= level)
            }
            _ => false,
        }
    }

    /// Prints a new record of the trace, as one line (two or more for a log with an error).
    fn print(
        &mut self,
        record: &Record,
        raw: &[u8],
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        if !self.of_trace(record) {
            return Ok(());
        }
        if let Record::Span(span) = record {
            if self.names.insert(span.span_id, span.name.clone()).is_some() {
                return Ok(());
            }
        }
        if !self.keeps(record) {
            return Ok(());
        }
        if self.args.json {
            out.write_all(raw)?;
            out.write_all(b"\n")?;
        } else {
            let span_name = record
                .as_log()
                .and_then(|l| l.span_id)
                .and_then(|id| self.names.get(&id))
                .map(String::as_str);
            out.write_all(tree::record_line(record, span_name, self.style).as_bytes())?;
        }
        Ok(())
    }

    fn report_skipped(&mut self) {
        let skipped = self.tally.malformed + self.tally.too_long;
        if skipped > self.reported {
            self.reported = skipped;
            self.tally.report();
        }
    }
}

/// One file being followed.
#[derive(Debug)]
struct Tail {
    offset: u64,
    gzip: bool,
}

pub(crate) fn run(args: &LogsArgs, style: Style) -> Result<(), Failure> {
    let mut printer = Printer {
        args,
        style,
        trace_id: None,
        subtree: args.span.as_ref().map(|_| HashSet::new()),
        names: HashMap::new(),
        tally: Tally::default(),
        reported: 0,
    };
    let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    let paths: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| p.as_os_str() != "-")
        .cloned()
        .collect();
    let scan = LineScan::trace(&args.trace).with_unterminated_last_line(false);
    let mut out = std::io::stdout().lock();

    // What is there already: the trace as a tree (or its raw lines), as `unitel logs` shows it.
    let mut tails: HashMap<FileKey, Tail> = HashMap::new();
    wait_in(&paths)?;
    let mut first: Vec<tree::Found> = Vec::new();
    for path in current_files(&paths) {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let key = key_of(&meta, &path);
        if tails.contains_key(&key) {
            continue; // named twice
        }
        let offset = read_from(&path, 0, &scan, &mut printer.tally, |record, raw| {
            if record
                .trace_id()
                .is_some_and(|t| hex_starts_with(&t.to_bytes(), &args.trace))
            {
                let order = Position {
                    input: 0,
                    line: first.len() as u64,
                };
                first.push(tree::Found {
                    record,
                    raw: Some(raw.into()),
                    order,
                });
            }
        });
        let gzip = is_gzip(&path);
        tails.insert(key, Tail { offset, gzip });
    }
    let ids: HashSet<TraceId> = first.iter().filter_map(|f| f.record.trace_id()).collect();
    if ids.len() > 1 {
        return Err(Failure::Usage(format!(
            "trace prefix {} is ambiguous: {} traces start with it; give more digits",
            args.trace,
            ids.len()
        )));
    }
    if let Some(id) = ids.into_iter().next() {
        printer.trace_id = Some(id);
        for f in &first {
            if let Record::Span(span) = &f.record {
                printer.names.insert(span.span_id, span.name.clone());
            }
        }
        match tree::select(args, id, first) {
            Ok(mut selection) => {
                if let Some(subtree) = selection.subtree.take() {
                    printer.subtree = Some(subtree);
                }
                tree::write(args, style, id, selection, &mut out)?;
            }
            // The span may not have ended yet: wait for it.
            Err(Failure::NotFound(message)) => {
                let _ = writeln!(std::io::stderr(), "unitel: {message} yet; waiting");
            }
            Err(other) => return Err(other),
        }
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "unitel: waiting for trace {} (Ctrl-C stops)",
            args.trace
        );
    }
    out.flush()?;
    printer.report_skipped();

    if stdin {
        // Standard input: print as lines arrive, until it ends.
        let reader = logfile::decompressed(std::io::stdin())
            .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
        let scan = LineScan::trace(&args.trace);
        let mut failed = None;
        let _ = scan.run(reader, |raw| {
            if failed.is_some() {
                return;
            }
            match logfile::parse_line(raw) {
                Ok(record) => {
                    if let Err(e) = printer
                        .print(&record, raw, &mut out)
                        .and_then(|()| out.flush())
                    {
                        failed = Some(e);
                    }
                }
                Err(e) => printer.tally.malformed(&Input::Stdin, &e),
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        printer.report_skipped();
        if paths.is_empty() {
            return Ok(());
        }
    }

    loop {
        std::thread::sleep(POLL);
        for file in current_files(&paths) {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let key = key_of(&meta, &file);
            let tail = tails.entry(key).or_insert_with(|| Tail {
                offset: 0,
                // A compressed file that appears now holds lines already read.
                gzip: is_gzip(&file),
            });
            if tail.gzip {
                continue;
            }
            if meta.len() < tail.offset {
                tail.offset = 0;
            }
            if meta.len() == tail.offset {
                continue;
            }
            let mut new = Vec::new();
            tail.offset = read_from(
                &file,
                tail.offset,
                &scan,
                &mut printer.tally,
                |record, raw| new.push((record, Box::<[u8]>::from(raw))),
            );
            for (record, raw) in &new {
                printer.print(record, raw, &mut out)?;
            }
        }
        out.flush()?;
        printer.report_skipped();
    }
}

/// Checks that each path can be waited on: it has log files, or it (or the directory it
/// would be written to) is a directory.
fn wait_in(paths: &[PathBuf]) -> Result<(), Failure> {
    for path in paths {
        let has_files = logfile::log_files(path).is_ok_and(|f| !f.is_empty());
        let directory = path.is_dir()
            || path
                .parent()
                .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir());
        if !has_files && !directory {
            return Err(Failure::Usage(format!(
                "no log files at {} and no directory to wait in",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The files of the paths now, oldest first.
fn current_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if let Ok(found) = logfile::log_files(path) {
            files.extend(found);
        }
    }
    files
}

fn is_gzip(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == [0x1f, 0x8b]
}

/// Reads `path` from `offset` to its last whole line, handing over the trace's records;
/// returns the offset to go on from.
fn read_from(
    path: &Path,
    offset: u64,
    scan: &LineScan,
    tally: &mut Tally,
    mut each: impl FnMut(Record, &[u8]),
) -> u64 {
    let input = Input::File(path.to_owned());
    let reader: Box<dyn Read + Send> = if offset == 0 {
        match logfile::open_log_file(path) {
            Ok(r) => r,
            Err(_) => return offset,
        }
    } else {
        match std::fs::File::open(path).and_then(|mut f| f.seek(SeekFrom::Start(offset)).map(|_| f))
        {
            Ok(f) => Box::new(f),
            Err(_) => return offset,
        }
    };
    let gzip = offset == 0 && is_gzip(path);
    match scan.run(reader, |raw| match logfile::parse_line(raw) {
        Ok(record) => each(record, raw),
        Err(e) => tally.malformed(&input, &e),
    }) {
        Ok(summary) => {
            tally.too_long += summary.too_long;
            if gzip {
                u64::MAX
            } else {
                offset + summary.consumed
            }
        }
        Err(_) => offset,
    }
}
