//! `unitel logs FILE --trace ID` against `grep -F ID` and `jq -c 'select(.trace_id=="ID")'` on
//! one generated log file of at least 1 GB (issue 10, item 6; figures in `docs/cli.md`, "Speed").
//!
//! ```sh
//! cargo bench --features cli --bench cli
//! ```
//!
//! A custom harness, not criterion: one jq pass over the file takes about a minute.
//!
//! **The file** is made of records the crate itself wrote. The bench configures unitel with a
//! log file, runs 360 requests on four threads (each a server span with HTTP attributes, a
//! database client span, for some a payment client span or an internal span, 2 or 3 log lines
//! with fields; about one in ten fails, logged with `log_error_with_cause`), shuts the pipeline
//! down and reads the lines back. Those lines, sorted by timestamp, are the template. It is written out again and again
//! up to the size asked for, each copy with fresh random trace and span ids (same length, ids
//! consistent within a copy) and its timestamps shifted after the previous copy's, so the file
//! stays in time order. One target trace (a checkout of 15 records) is planted, with fresh ids,
//! at 60 % of the file; no other trace id shares its first 8 hex digits. The crate's writer
//! drops lines when it falls 16 MiB behind, which is why the gigabyte is templated instead of
//! logged.
//!
//! The file, `trace-search.log`, and its description, `trace-search.json` (target id, target
//! lines, size, records), live in `UNITEL_BENCH_CLI_DIR`, by default
//! `<target dir>/unitel-bench-cli/`. They are reused by the next run when the size asked for,
//! the generator version and the keys of the crate's records are the same; delete the folder
//! to generate a new file.
//!
//! **The measurement.** The file is read once to put it in the page cache, so that every
//! command reads it from memory. Each command then runs once with its output captured and
//! checked: grep and `unitel --json` must print exactly the target's lines, jq as many lines,
//! and the tree output every span name and log message of the target, one line each (15 such
//! lines, whatever else it prints). A unitel command that fails its check (a binary still being
//! written) is left out with a message; so is jq when it is not installed. Then R rounds, each
//! command once per round, a different one first in each round. The output goes to a pipe that
//! the bench reads and throws away: GNU grep stops at the first match when its output is
//! `/dev/null`, which would time a partial read. The table gives the median wall time, the
//! throughput (file bytes / median, MB = 10^6 bytes), the child's CPU time (user + system,
//! median) and the throughput against grep's and jq's.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `UNITEL_BENCH_CLI_BYTES` | 1100000000 | size of the generated file (at least) |
//! | `UNITEL_BENCH_CLI_ROUNDS` | 3 | rounds of grep and the unitel commands |
//! | `UNITEL_BENCH_CLI_JQ_ROUNDS` | 1 | rounds of jq (the first rounds) |
//! | `UNITEL_BENCH_CLI_DIR` | `<target dir>/unitel-bench-cli` | where the file lives |

#![allow(missing_docs)]

mod common;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use unitel::{KeyValue, Span, SpanKind, Status, TelemetryConfig, UnifiedTelemetry};

/// Bumped whenever the generator writes a different file, so that an older one is not reused.
const GENERATOR: u64 = 1;
/// Request threads while the template is recorded, and requests per thread.
const THREADS: usize = 4;
const REQUESTS_PER_THREAD: usize = 90;
/// Where the target trace goes, as a fraction of the file.
const TARGET_AT: f64 = 0.6;
/// The pause between two copies of the template on the file's clock, in µs.
const COPY_GAP_US: i64 = 1_000;

fn main() {
    let settings = Settings::from_env();
    let data = dataset(&settings);
    let mb = data.bytes as f64 / 1e6;
    println!(
        "file: {} ({:.1} MB, {} records); target trace {} ({} records) at {:.0} % of the file",
        data.path.display(),
        mb,
        data.records,
        data.target_id,
        data.target_lines.len(),
        TARGET_AT * 100.0,
    );

    let start = Instant::now();
    let read = read_through(&data.path);
    assert_eq!(read, data.bytes, "the file changed size while read");
    println!(
        "page cache: the file read once before any command ({:.1} s)",
        start.elapsed().as_secs_f64()
    );

    let mut commands = commands(&settings, &data);
    commands.retain(|c| verify(c, &data));
    let ticks = clock_ticks();
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); commands.len()];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); commands.len()];
    let rounds = commands.iter().map(|c| c.rounds).max().unwrap_or(0);
    for round in 0..rounds {
        for k in 0..commands.len() {
            let i = (round + k) % commands.len();
            if round >= commands[i].rounds {
                continue;
            }
            let (secs, cpu_secs) = timed(&commands[i], ticks);
            eprintln!("round {}: {:<40} {secs:.3} s", round + 1, commands[i].label);
            wall[i].push(secs);
            cpu[i].extend(cpu_secs);
        }
    }
    report(&commands, &mut wall, &mut cpu, mb);
}

struct Settings {
    bytes: u64,
    rounds: usize,
    jq_rounds: usize,
    dir: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: u64| -> u64 {
            match std::env::var(name) {
                Ok(v) => v
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
                Err(_) => default,
            }
        };
        let dir = match std::env::var_os("UNITEL_BENCH_CLI_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => target_dir().join("unitel-bench-cli"),
        };
        Settings {
            bytes: number("UNITEL_BENCH_CLI_BYTES", 1_100_000_000),
            rounds: number("UNITEL_BENCH_CLI_ROUNDS", 3) as usize,
            jq_rounds: number("UNITEL_BENCH_CLI_JQ_ROUNDS", 1) as usize,
            dir,
        }
    }
}

/// `CARGO_TARGET_DIR` when set, else the target directory this bench runs from
/// (`<target>/release/deps/cli-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the bench's path");
    match exe.ancestors().nth(3) {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir(),
    }
}

// ---------------------------------------------------------------------------------------------
// The file.

/// The generated file and what the checks need of it.
struct Dataset {
    path: PathBuf,
    bytes: u64,
    records: u64,
    target_id: String,
    /// The target's lines, in file order.
    target_lines: Vec<String>,
}

/// The file of `settings`, reused when the one on disk was made for the same size, by the same
/// generator, from records with the same keys; generated otherwise.
fn dataset(settings: &Settings) -> Dataset {
    fs::create_dir_all(&settings.dir).expect("create the bench directory");
    let path = settings.dir.join("trace-search.log");
    let described = settings.dir.join("trace-search.json");
    let recorded = record_template(&settings.dir);
    let keys = record_keys(&recorded.lines);
    if let Some(data) = reusable(&path, &described, settings.bytes, &keys) {
        println!(
            "reusing {} (delete it to generate a new one)",
            path.display()
        );
        return data;
    }
    let start = Instant::now();
    let data = generate(&path, settings.bytes, &recorded);
    let description = serde_json::json!({
        "generator": GENERATOR,
        "requested_bytes": settings.bytes,
        "bytes": data.bytes,
        "records": data.records,
        "record_keys": keys,
        "target_trace_id": data.target_id,
        "target_lines": data.target_lines,
    });
    fs::write(&described, description.to_string()).expect("write the description");
    println!(
        "generated {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    data
}

fn reusable(path: &Path, described: &Path, bytes: u64, keys: &str) -> Option<Dataset> {
    let text = fs::read_to_string(described).ok()?;
    let d: serde_json::Value = serde_json::from_str(&text).ok()?;
    let size = fs::metadata(path).ok()?.len();
    let same = d["generator"].as_u64() == Some(GENERATOR)
        && d["requested_bytes"].as_u64() == Some(bytes)
        && d["bytes"].as_u64() == Some(size)
        && d["record_keys"].as_str() == Some(keys);
    if !same {
        return None;
    }
    Some(Dataset {
        path: path.to_path_buf(),
        bytes: size,
        records: d["records"].as_u64()?,
        target_id: d["target_trace_id"].as_str()?.to_string(),
        target_lines: d["target_lines"]
            .as_array()?
            .iter()
            .map(|l| l.as_str().map(str::to_string))
            .collect::<Option<_>>()?,
    })
}

/// The keys of the first log record and the first span record: a change in the crate's format
/// makes the next run generate a new file.
fn record_keys(lines: &[String]) -> String {
    let mut out = Vec::new();
    for kind in ["log", "span"] {
        let first = lines.iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["type"] == kind).then_some(v)
        });
        let keys: Vec<&str> = match &first {
            Some(serde_json::Value::Object(m)) => m.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        out.push(format!("{kind}:{}", keys.join(",")));
    }
    out.join(";")
}

/// What the crate wrote: every line, and the target trace's id among them.
struct Recorded {
    lines: Vec<String>,
    target_id: String,
}

/// Runs the requests through unitel into `dir/template/template.log` and reads the lines back,
/// sorted by timestamp.
fn record_template(dir: &Path) -> Recorded {
    let template_dir = dir.join("template");
    let _ = fs::remove_dir_all(&template_dir);
    let log = template_dir.join("template.log");
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_service_name("bench")
            .with_console(false)
            .with_log_file(&log),
    )
    .expect("configure unitel");
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut shop = Shop::new(t as u64 + 1);
                for i in 0..REQUESTS_PER_THREAD {
                    shop.request(t * REQUESTS_PER_THREAD + i);
                }
            })
        })
        .collect();
    let target_id = Shop::new(99).checkout();
    for worker in workers {
        worker.join().expect("a request thread panicked");
    }
    drop(guard);
    assert_eq!(
        unitel::dropped(unitel::Signal::Logs, unitel::DropReason::QueueFull),
        0,
        "the log writer dropped lines of the template"
    );
    let text = fs::read_to_string(&log).expect("read the template back");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Lines from different threads may reach the file out of order; the copies must not.
    lines.sort_by_cached_key(|l| {
        serde_json::from_str::<serde_json::Value>(l).expect("a JSON line")["timestamp"]
            .as_str()
            .map(str::to_string)
    });
    Recorded { lines, target_id }
}

/// Writes copies of the template, with the target at [`TARGET_AT`], until `bytes` are written.
fn generate(path: &Path, bytes: u64, recorded: &Recorded) -> Dataset {
    let (target, ordinary): (Vec<&String>, Vec<&String>) = recorded
        .lines
        .iter()
        .partition(|l| l.contains(&recorded.target_id));
    assert!(
        (10..=20).contains(&target.len()),
        "the target trace has {} records",
        target.len()
    );
    let ordinary = Template::compile(&ordinary);
    let target = Template::compile(&target);
    let mut rng = Rng::new(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
            ^ u64::from(std::process::id()),
    );
    let target_ids = Ids::fresh(&target, &mut rng, None);
    let prefix: [u8; 8] = target_ids.traces[0][..8].try_into().expect("8 digits");

    // The file's clock ends about now.
    let copy_us = ordinary.span_us + COPY_GAP_US;
    let copies = bytes / ordinary.bytes.max(1) + 1;
    let mut clock = ordinary.start_us - copies as i64 * copy_us;

    let partial = path.with_extension("log.partial");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial).expect("create"));
    let mut buf = Vec::with_capacity(2 * ordinary.bytes as usize);
    let (mut written, mut records) = (0u64, 0u64);
    let mut target_lines = None;
    while written < bytes {
        if target_lines.is_none() && written as f64 >= bytes as f64 * TARGET_AT {
            buf.clear();
            target.write(&target_ids, clock, &mut buf);
            clock += target.span_us + COPY_GAP_US;
            let text = String::from_utf8(buf.clone()).expect("UTF-8");
            target_lines = Some(text.lines().map(str::to_string).collect::<Vec<_>>());
            out.write_all(&buf).expect("write");
            written += buf.len() as u64;
            records += target.lines.len() as u64;
        }
        let ids = Ids::fresh(&ordinary, &mut rng, Some(&prefix));
        buf.clear();
        ordinary.write(&ids, clock, &mut buf);
        clock += copy_us;
        out.write_all(&buf).expect("write");
        written += buf.len() as u64;
        records += ordinary.lines.len() as u64;
    }
    out.into_inner()
        .expect("flush")
        .sync_all()
        .expect("sync the file");
    fs::rename(&partial, path).expect("rename the file into place");
    Dataset {
        path: path.to_path_buf(),
        bytes: written,
        records,
        target_id: String::from_utf8(target_ids.traces[0].to_vec()).expect("hex"),
        target_lines: target_lines.expect("a file of at least one copy has the target"),
    }
}

/// Template lines cut into literal text and the places of ids and timestamps.
struct Template {
    /// The literal text of every line.
    text: Vec<u8>,
    lines: Vec<Vec<Piece>>,
    traces: usize,
    spans: usize,
    /// The earliest timestamp, in µs since the epoch; the others are offsets from it.
    start_us: i64,
    /// The latest timestamp's offset.
    span_us: i64,
    bytes: u64,
}

enum Piece {
    Text(std::ops::Range<usize>),
    Trace(usize),
    Span(usize),
    /// µs after the template's start.
    Time(i64),
}

impl Template {
    fn compile(lines: &[&String]) -> Template {
        let mut text = Vec::new();
        let mut traces: HashMap<&[u8], usize> = HashMap::new();
        let mut spans: HashMap<&[u8], usize> = HashMap::new();
        let mut absolute = Vec::new();
        let mut compiled = Vec::new();
        for line in lines {
            let b = line.as_bytes();
            let mut pieces = Vec::new();
            let mut literal = 0;
            let mut i = 0;
            while i < b.len() {
                if b[i] != b'"' {
                    i += 1;
                    continue;
                }
                let rest = &b[i + 1..];
                let found = if let Some(us) = timestamp(rest) {
                    absolute.push(us);
                    Some((27, Piece::Time(us)))
                } else if quoted_hex(rest, 32) {
                    let n = traces.len();
                    Some((32, Piece::Trace(*traces.entry(&rest[..32]).or_insert(n))))
                } else if quoted_hex(rest, 16) {
                    let n = spans.len();
                    Some((16, Piece::Span(*spans.entry(&rest[..16]).or_insert(n))))
                } else {
                    None
                };
                match found {
                    Some((len, piece)) => {
                        let start = text.len();
                        text.extend_from_slice(&b[literal..=i]);
                        pieces.push(Piece::Text(start..text.len()));
                        pieces.push(piece);
                        i += 1 + len;
                        literal = i;
                    }
                    None => i += 1,
                }
            }
            let start = text.len();
            text.extend_from_slice(&b[literal..]);
            text.push(b'\n');
            pieces.push(Piece::Text(start..text.len()));
            compiled.push(pieces);
        }
        let start_us = absolute.iter().copied().min().expect("timestamps");
        let end_us = absolute.iter().copied().max().expect("timestamps");
        for piece in compiled.iter_mut().flatten() {
            if let Piece::Time(us) = piece {
                *us -= start_us;
            }
        }
        Template {
            bytes: lines.iter().map(|l| l.len() as u64 + 1).sum(),
            text,
            lines: compiled,
            traces: traces.len(),
            spans: spans.len(),
            start_us,
            span_us: end_us - start_us,
        }
    }

    /// Appends one copy with `ids`, its timestamps shifted to start at `start_us`.
    fn write(&self, ids: &Ids, start_us: i64, out: &mut Vec<u8>) {
        for piece in self.lines.iter().flatten() {
            match piece {
                Piece::Text(range) => out.extend_from_slice(&self.text[range.clone()]),
                Piece::Trace(i) => out.extend_from_slice(&ids.traces[*i]),
                Piece::Span(i) => out.extend_from_slice(&ids.spans[*i]),
                Piece::Time(offset) => write_time(start_us + offset, out),
            }
        }
    }
}

/// One copy's ids, in lowercase hex.
struct Ids {
    traces: Vec<[u8; 32]>,
    spans: Vec<[u8; 16]>,
}

impl Ids {
    /// Random ids for `template`; no trace id starts with `avoid`.
    fn fresh(template: &Template, rng: &mut Rng, avoid: Option<&[u8; 8]>) -> Ids {
        let traces = (0..template.traces)
            .map(|_| loop {
                let mut id = [0u8; 32];
                hex(rng.next(), &mut id[..16]);
                hex(rng.next(), &mut id[16..]);
                if avoid.is_none_or(|p| id[..8] != p[..]) {
                    break id;
                }
            })
            .collect();
        let spans = (0..template.spans)
            .map(|_| {
                let mut id = [0u8; 16];
                hex(rng.next(), &mut id);
                id
            })
            .collect();
        Ids { traces, spans }
    }
}

fn hex(mut v: u64, out: &mut [u8]) {
    for b in out.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
    }
}

/// Whether `b` starts with `len` lowercase hex digits and a closing quote.
fn quoted_hex(b: &[u8], len: usize) -> bool {
    b.len() > len
        && b[len] == b'"'
        && b[..len]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// `2026-11-21T05:23:30.123481Z"` at the start of `b`, in µs since the epoch.
fn timestamp(b: &[u8]) -> Option<i64> {
    const SHAPE: &[u8; 28] = b"dddd-dd-ddTdd:dd:dd.ddddddZ\"";
    if b.len() < SHAPE.len() {
        return None;
    }
    let fits = SHAPE.iter().zip(b).all(|(s, c)| {
        if *s == b'd' {
            c.is_ascii_digit()
        } else {
            s == c
        }
    });
    if !fits {
        return None;
    }
    let n = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'))
    };
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    let secs = days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19);
    Some(secs * 1_000_000 + n(20..26))
}

/// `us` since the epoch as `2026-11-21T05:23:30.123481Z`, the crate's format.
fn write_time(us: i64, out: &mut Vec<u8>) {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, s / 3_600);
    put(14, 2, s / 60 % 60);
    put(17, 2, s % 60);
    put(20, 6, micros);
    out.extend_from_slice(&b);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// splitmix64: ids and the requests' choices, without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn pause(&mut self, lo_us: u64, hi_us: u64) {
        std::thread::sleep(Duration::from_micros(self.range(lo_us, hi_us)));
    }
}

// ---------------------------------------------------------------------------------------------
// The requests the template is made of.

/// An error with a `source()` chain, for `log_error_with_cause` and `record_error`.
#[derive(Debug)]
struct Failure {
    message: &'static str,
    cause: Option<Box<Failure>>,
}

impl Failure {
    fn chain(messages: &[&'static str]) -> Failure {
        let (first, rest) = messages.split_first().expect("a message");
        Failure {
            message: first,
            cause: (!rest.is_empty()).then(|| Box::new(Failure::chain(rest))),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "shop-ios/4.12.0 (iPhone; iOS 17.4)",
    "okhttp/4.12.0",
];

/// A database call: its statement, and how long it takes (µs, from..to).
struct Query {
    operation: &'static str,
    table: &'static str,
    text: &'static str,
    us: (u64, u64),
}

const SELECT_USER: Query = Query {
    operation: "SELECT",
    table: "users",
    text: "SELECT id, name, email, created_at FROM users WHERE id = $1",
    us: (150, 1_200),
};
const INSERT_ORDER: Query = Query {
    operation: "INSERT",
    table: "orders",
    text: "INSERT INTO orders (user_id, items, total_cents) VALUES ($1, $2, $3) RETURNING id",
    us: (300, 2_000),
};
const SELECT_ORDER: Query = Query {
    operation: "SELECT",
    table: "orders",
    text: "SELECT id, user_id, items, total_cents, status FROM orders WHERE id = $1",
    us: (150, 1_000),
};
const LIST_PRODUCTS: Query = Query {
    operation: "SELECT",
    table: "products",
    text: "SELECT id, name, price_cents FROM products ORDER BY name LIMIT 50 OFFSET $1",
    us: (300, 4_000),
};
const SELECT_CART: Query = Query {
    operation: "SELECT",
    table: "carts",
    text: "SELECT item_id, quantity FROM cart_items WHERE cart_id = $1",
    us: (200, 800),
};
const RESERVE_ITEMS: Query = Query {
    operation: "UPDATE",
    table: "inventory",
    text: "UPDATE inventory SET reserved = reserved + $2 WHERE item_id = $1",
    us: (300, 1_500),
};

fn kv(key: &'static str, value: impl Into<unitel::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

/// A shop's request handlers: the handles of its three components, and random choices.
struct Shop {
    api: UnifiedTelemetry,
    db: UnifiedTelemetry,
    pay: UnifiedTelemetry,
    rng: Rng,
}

impl Shop {
    fn new(seed: u64) -> Shop {
        Shop {
            api: unitel::get_telemetry("api"),
            db: unitel::get_telemetry("db"),
            pay: unitel::get_telemetry("payments"),
            rng: Rng::new(seed),
        }
    }

    /// The request's server span, as an HTTP server layer makes it.
    fn server(&mut self, method: &'static str, route: &'static str, path: String) -> Span {
        let client = format!("10.2.{}.{}", self.rng.range(0, 255), self.rng.range(1, 255));
        let agent = USER_AGENTS[self.rng.range(0, USER_AGENTS.len() as u64) as usize];
        self.api
            .span(format!("{method} {route}"))
            .kind(SpanKind::Server)
            .attr("http.request.method", method)
            .attr("http.route", route)
            .attr("url.path", path)
            .attr("url.scheme", "http")
            .attr("server.address", "shop.internal")
            .attr("server.port", 8080)
            .attr("network.protocol.version", "1.1")
            .attr("client.address", client)
            .attr("user_agent.original", agent)
            .start()
    }

    /// A database client span for `q`, returning `rows`.
    fn query(&mut self, q: &Query, rows: u64) {
        let span = self
            .db
            .span(format!("{} {}", q.operation, q.table))
            .kind(SpanKind::Client)
            .attr("db.system.name", "postgresql")
            .attr("db.namespace", "shop")
            .attr("db.operation.name", q.operation)
            .attr("db.collection.name", q.table)
            .attr("db.query.text", q.text)
            .attr("server.address", "pg-primary.internal")
            .attr("server.port", 5432)
            .start();
        self.rng.pause(q.us.0, q.us.1);
        span.set_attribute("db.response.returned_rows", rows);
    }

    /// An HTTP client span to the payment provider, still open (for its status).
    fn payment(&mut self, path: &'static str) -> Span {
        let span = self
            .pay
            .span(format!("POST {path}"))
            .kind(SpanKind::Client)
            .attr("http.request.method", "POST")
            .attr("server.address", "api.payments.example")
            .attr("server.port", 443)
            .attr("url.full", format!("https://api.payments.example{path}"))
            .start();
        self.rng.pause(500, 3_000);
        span
    }

    /// One ordinary request, chosen by `n`: 4 to 6 records, some of them errors.
    fn request(&mut self, n: usize) {
        if n.is_multiple_of(30) {
            // A line outside any trace.
            let (in_use, idle) = (self.rng.range(0, 20) as i64, self.rng.range(0, 10) as i64);
            let fields = [kv("pool.in_use", in_use), kv("pool.idle", idle)];
            self.api.log_info_with("connection pool", &fields);
        }
        let user = self.rng.range(1_000, 99_999) as i64;
        let order = format!("ord_{:08x}", self.rng.next() as u32);
        let api = self.api.clone();
        match n % 10 {
            0..=3 => {
                let span = self.server("GET", "/users/{id}", format!("/users/{user}"));
                api.log_info_with("loading user", &[kv("user.id", user)]);
                self.query(&SELECT_USER, 1);
                if n.is_multiple_of(7) {
                    let fields = [kv("user.id", user), kv("cache.name", "profiles")];
                    api.log_warning_with("profile cache miss", &fields);
                }
                api.log_info_with(
                    "user loaded",
                    &[kv("user.id", user), kv("cache.hit", false)],
                );
                span.set_attribute("http.response.status_code", 200);
            }
            4..=6 => {
                let span = self.server("POST", "/orders", "/orders".to_string());
                let items = self.rng.range(1, 9) as i64;
                let fields = [kv("user.id", user), kv("order.items", items)];
                api.log_info_with("creating order", &fields);
                {
                    let _validate = api.trace_with("validate_order", &[("order.items", items)]);
                    self.rng.pause(50, 300);
                }
                self.query(&INSERT_ORDER, 1);
                let call = self.payment("/v1/payment_intents");
                if n.is_multiple_of(4) {
                    let err = Failure::chain(&[
                        "payment provider unavailable",
                        "POST https://api.payments.example/v1/payment_intents: 503 Service Unavailable",
                    ]);
                    call.record_error(&err);
                    call.set_status(Status::error("payment provider unavailable"));
                    call.set_attribute("http.response.status_code", 503);
                    drop(call);
                    let fields = [kv("user.id", user), kv("retry", false)];
                    self.pay
                        .log_error_with_cause("payment intent failed", &err, &fields);
                    span.set_status(Status::error("payment provider unavailable"));
                    span.set_attribute("http.response.status_code", 502);
                } else {
                    call.set_attribute("http.response.status_code", 200);
                    drop(call);
                    let total = self.rng.range(500, 90_000) as i64;
                    let fields = [kv("order.id", order), kv("order.total_cents", total)];
                    api.log_info_with("order created", &fields);
                    span.set_attribute("http.response.status_code", 201);
                }
            }
            7..=8 => {
                let span = self.server("GET", "/orders/{id}", format!("/orders/{order}"));
                api.log_info_with("loading order", &[kv("order.id", order.clone())]);
                let found = !n.is_multiple_of(3);
                self.query(&SELECT_ORDER, u64::from(found));
                if found {
                    api.log_info_with("order loaded", &[kv("order.id", order)]);
                    span.set_attribute("http.response.status_code", 200);
                } else {
                    api.log_warning_with("order not found", &[kv("order.id", order)]);
                    span.set_attribute("http.response.status_code", 404);
                }
            }
            _ => {
                let span = self.server("GET", "/products", "/products".to_string());
                api.log_info_with("listing products", &[kv("page", 1)]);
                let failed = n % 4 == 1;
                self.query(&LIST_PRODUCTS, if failed { 0 } else { 50 });
                if failed {
                    let err = Failure::chain(&[
                        "query failed",
                        "error returned from database: canceling statement due to statement timeout",
                    ]);
                    api.log_error_with_cause("listing products failed", &err, &[kv("page", 1)]);
                    span.record_error(&err);
                    span.set_status(Status::error("query failed"));
                    span.set_attribute("http.response.status_code", 500);
                } else {
                    api.log_info_with("products listed", &[kv("count", 50)]);
                    span.set_attribute("http.response.status_code", 200);
                }
            }
        }
    }

    /// The target: a checkout of 7 spans and 8 log lines, with a declined charge and a retry.
    /// Returns its trace id.
    fn checkout(&mut self) -> String {
        let (api, pay) = (self.api.clone(), self.pay.clone());
        let cart = "c_93f1a7";
        let span = self.server("POST", "/checkout/{cart_id}", format!("/checkout/{cart}"));
        let trace_id = span.trace_id().expect("the checkout is sampled");
        api.log_info_with(
            "checkout started",
            &[kv("cart.id", cart), kv("user.id", 4711)],
        );
        self.query(&SELECT_CART, 3);
        {
            let _price = api.trace("price_cart");
            self.rng.pause(100, 400);
            let fields = [kv("cart.items", 3), kv("cart.total_cents", 12_999)];
            api.log_info_with("cart priced", &fields);
        }
        self.query(&RESERVE_ITEMS, 3);
        api.log_info_with("inventory reserved", &[kv("cart.items", 3)]);
        let call = self.payment("/v1/charges");
        let err = Failure::chain(&["card declined", "issuer response 05: do not honour"]);
        call.record_error(&err);
        call.set_status(Status::error("card declined"));
        call.set_attribute("http.response.status_code", 402);
        drop(call);
        let fields = [kv("cart.id", cart), kv("attempt", 1)];
        pay.log_error_with_cause("charge declined, retrying", &err, &fields);
        let call = self.payment("/v1/charges");
        call.set_attribute("http.response.status_code", 200);
        drop(call);
        let fields = [kv("cart.id", cart), kv("attempt", 2)];
        pay.log_info_with("charge accepted", &fields);
        self.query(&INSERT_ORDER, 1);
        api.log_info_with("order stored", &[kv("order.id", "ord_5e2a90c1")]);
        let fields = [kv("queue.depth", 512)];
        api.log_warning_with("confirmation email queued late", &fields);
        span.set_attribute("http.response.status_code", 201);
        api.log_info("checkout finished");
        drop(span);
        trace_id
    }
}

// ---------------------------------------------------------------------------------------------
// The commands.

struct Cmd {
    label: &'static str,
    program: String,
    args: Vec<String>,
    rounds: usize,
    check: Check,
    /// Left out with a message when its check fails, instead of failing the bench.
    optional: bool,
}

enum Check {
    /// Exactly the target's lines, in any order.
    Lines,
    /// As many lines as the target has.
    Count,
    /// Every span name and log message of the target, one line per record.
    Shows,
}

fn commands(settings: &Settings, data: &Dataset) -> Vec<Cmd> {
    let file = data.path.display().to_string();
    let id = data.target_id.clone();
    let mut commands = Vec::new();
    match option_env!("CARGO_BIN_EXE_unitel") {
        Some(unitel) => {
            let logs = |extra: &[&str]| -> Vec<String> {
                ["logs", &file, "--trace"]
                    .iter()
                    .chain(extra)
                    .map(|s| s.to_string())
                    .collect()
            };
            for (label, args, check) in [
                ("unitel logs FILE --trace ID", logs(&[&id]), Check::Shows),
                (
                    "unitel logs FILE --trace ID --json",
                    logs(&[&id, "--json"]),
                    Check::Lines,
                ),
                (
                    "unitel logs FILE --trace PREFIX8",
                    logs(&[&id[..8]]),
                    Check::Shows,
                ),
            ] {
                commands.push(Cmd {
                    label,
                    program: unitel.to_string(),
                    args,
                    rounds: settings.rounds,
                    check,
                    optional: true,
                });
            }
        }
        None => println!("unitel: the binary is not built (needs `--features cli`); left out"),
    }
    commands.push(Cmd {
        label: "grep -F ID FILE",
        program: "grep".to_string(),
        args: vec!["-F".to_string(), id.clone(), file.clone()],
        rounds: settings.rounds,
        check: Check::Lines,
        optional: false,
    });
    let jq = Command::new("jq")
        .arg("--version")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output();
    match jq {
        Ok(out) if out.status.success() => commands.push(Cmd {
            label: "jq -c 'select(.trace_id==\"ID\")' FILE",
            program: "jq".to_string(),
            args: vec!["-c".into(), format!("select(.trace_id==\"{id}\")"), file],
            rounds: settings.jq_rounds,
            check: Check::Count,
            optional: false,
        }),
        _ => println!("jq: not installed; left out"),
    }
    commands.retain(|c| c.rounds > 0);
    commands
}

/// Runs `cmd` once with its output captured; whether the output is the target's.
fn verify(cmd: &Cmd, data: &Dataset) -> bool {
    let out: Output = match Command::new(&cmd.program).args(&cmd.args).output() {
        Ok(out) => out,
        Err(e) => return reject(cmd, &format!("cannot run {}: {e}", cmd.program)),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("");
        return reject(cmd, &format!("exit {}: {first}", out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed: Vec<&str> = stdout.lines().collect();
    let want = data.target_lines.len();
    let problem = match cmd.check {
        Check::Lines => {
            let mut got = printed.clone();
            let mut expected: Vec<&str> = data.target_lines.iter().map(String::as_str).collect();
            got.sort_unstable();
            expected.sort_unstable();
            (got != expected)
                .then(|| format!("{} lines, not the target's {want} lines", printed.len()))
        }
        Check::Count => (printed.len() != want
            || printed.iter().any(|l| !l.contains(&data.target_id)))
        .then(|| format!("{} lines, not the target's {want}", printed.len())),
        Check::Shows => {
            let shown = shown_strings(data);
            let missing: Vec<&String> = shown
                .iter()
                .filter(|s| !stdout.contains(s.as_str()))
                .collect();
            let naming = printed
                .iter()
                .filter(|l| shown.iter().any(|s| l.contains(s.as_str())))
                .count();
            if !missing.is_empty() {
                Some(format!("output lacks {missing:?}"))
            } else if naming != want {
                Some(format!("{naming} lines name a record, not {want}"))
            } else {
                None
            }
        }
    };
    match problem {
        Some(problem) => reject(cmd, &problem),
        None => {
            println!("checked: {:<40} {} lines out", cmd.label, printed.len());
            true
        }
    }
}

fn reject(cmd: &Cmd, problem: &str) -> bool {
    if !cmd.optional {
        panic!("{}: {problem}", cmd.label);
    }
    println!("left out: {} ({problem})", cmd.label);
    false
}

/// The span names and log messages of the target trace.
fn shown_strings(data: &Dataset) -> Vec<String> {
    let mut strings: Vec<String> = data
        .target_lines
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let key = if v["type"] == "span" {
                "name"
            } else {
                "message"
            };
            v[key].as_str().map(str::to_string)
        })
        .collect();
    strings.sort();
    strings.dedup();
    strings
}

/// One timed run: wall seconds, and the child's CPU seconds (user + system) when known. The
/// output goes to a pipe read and thrown away here.
fn timed(cmd: &Cmd, ticks: f64) -> (f64, Option<f64>) {
    let cpu_before = children_cpu_ticks();
    let start = Instant::now();
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the command");
    let mut stdout = child.stdout.take().expect("piped");
    let mut sink = vec![0u8; 1 << 16];
    while stdout.read(&mut sink).expect("read the output") > 0 {}
    let status = child.wait().expect("wait");
    let secs = start.elapsed().as_secs_f64();
    assert!(status.success(), "{}: {status}", cmd.label);
    let cpu = match (cpu_before, children_cpu_ticks()) {
        (Some(before), Some(after)) => Some((after - before) as f64 / ticks),
        _ => None,
    };
    (secs, cpu)
}

/// User + system time of this process's waited-for children, in clock ticks
/// (`/proc/self/stat` fields 16 and 17); `None` off Linux.
fn children_cpu_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (state).
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some(cutime + cstime)
}

/// Clock ticks per second, from `getconf CLK_TCK`; 100 when that fails.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads `path` to the end; the bytes read.
fn read_through(path: &Path) -> u64 {
    let mut file = File::open(path).expect("open the file");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match file.read(&mut buf).expect("read the file") {
            0 => return total,
            n => total += n as u64,
        }
    }
}

fn report(commands: &[Cmd], wall: &mut [Vec<f64>], cpu: &mut [Vec<f64>], mb: f64) {
    let medians: Vec<Option<f64>> = wall.iter_mut().map(|w| common::median(w)).collect();
    let rate = |i: usize| medians[i].map(|s| mb / s);
    let grep = commands
        .iter()
        .position(|c| c.program == "grep")
        .and_then(rate);
    let jq = commands
        .iter()
        .position(|c| c.program == "jq")
        .and_then(rate);
    println!();
    println!(
        "| command | runs | median s | min–max s | MB/s | CPU s | throughput / grep's | / jq's |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (i, cmd) in commands.iter().enumerate() {
        let Some(median) = medians[i] else { continue };
        let runs = &wall[i];
        let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = runs.iter().copied().fold(0.0, f64::max);
        let mbs = mb / median;
        let cpu = common::median(&mut cpu[i]).map_or("—".to_string(), |c| format!("{c:.2}"));
        let vs = |base: Option<f64>| base.map_or("—".to_string(), |b| format!("{:.2}", mbs / b));
        println!(
            "| `{}` | {} | {median:.3} | {min:.3}–{max:.3} | {mbs:.0} | {cpu} | {} | {} |",
            cmd.label,
            runs.len(),
            vs(grep),
            vs(jq),
        );
    }
    let goal = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| c.label.starts_with("unitel"))
        .filter_map(|(i, c)| Some((c.label, rate(i)? / grep?)));
    for (label, ratio) in goal {
        let met = if ratio >= 0.5 { "met" } else { "NOT met" };
        println!("goal ≥ 0.5 × grep's throughput: {label}: {ratio:.2} ({met})");
    }
}
