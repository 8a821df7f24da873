//! The command line, and the parsing of its values (ids, levels, times).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tracing::Level;

/// Everything that happened in one trace, from unitel's JSON log files.
#[derive(Debug, Parser)]
#[command(name = "unitel", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Colour the output: `auto` (on a terminal, unless NO_COLOR is set), `always`, `never`.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub(crate) color: ColorChoice,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Every record of one trace: its spans as a tree, each log line under its span.
    Logs(LogsArgs),
    /// The traces in the files, one line each.
    Traces(TracesArgs),
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// `unitel logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Log files, directories (read with their subdirectories), or `-` for standard input.
    /// A log file path also reads its rotated files, gzip-compressed ones included.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// The trace: its 32-digit id, or a prefix of at least 8 hex digits that only it has.
    #[arg(long, value_name = "ID", value_parser = trace_id)]
    pub(crate) trace: String,
    /// Only this span and the spans under it (its 16-digit id, or a prefix of it).
    #[arg(long, value_name = "ID", value_parser = span_id)]
    pub(crate) span: Option<String>,
    /// Only log lines at this level or more severe: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL", value_parser = level)]
    pub(crate) level: Option<Level>,
    /// Only records in this window (a span when it overlaps it).
    #[command(flatten)]
    pub(crate) window: Window,
    /// Print the matching records' raw JSON lines, in time order, instead of the tree.
    #[arg(long)]
    pub(crate) json: bool,
    /// Keep printing the trace's new records as the files grow, across rotation (Ctrl-C
    /// stops).
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

/// `unitel traces`.
#[derive(Debug, Args)]
pub(crate) struct TracesArgs {
    /// Log files, directories (read with their subdirectories), or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Only traces with an error: a span whose status is error, or an ERROR log line.
    #[arg(long)]
    pub(crate) errors: bool,
    /// Only the N slowest traces, slowest first.
    #[arg(long, value_name = "N")]
    pub(crate) slowest: Option<usize>,
    /// Only traces that started in this window.
    #[command(flatten)]
    pub(crate) window: Window,
    /// One JSON object per trace instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--since` and `--until`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Window {
    /// From this time on: `2026-11-21T05:23:30Z`, `2026-11-21T05:23`, `2026-11-21` (UTC), or
    /// an age before now such as `90s`, `15m`, `2h`, `1d`.
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub(crate) since: Option<SystemTime>,
    /// Up to this time (same forms as `--since`).
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub(crate) until: Option<SystemTime>,
}

impl Window {
    /// Whether `from..=to` overlaps the window.
    pub(crate) fn overlaps(&self, from: SystemTime, to: SystemTime) -> bool {
        self.since.is_none_or(|since| to >= since) && self.until.is_none_or(|until| from <= until)
    }

    /// Whether either end is set.
    pub(crate) fn is_set(&self) -> bool {
        self.since.is_some() || self.until.is_some()
    }
}

/// A trace id or a prefix of one: 8 to 32 hex digits, lowercased.
fn trace_id(text: &str) -> Result<String, String> {
    hex_id(
        text,
        8,
        32,
        "a trace id is 32 hex digits; a prefix needs at least 8",
    )
}

/// A span id or a prefix of one: 4 to 16 hex digits, lowercased.
fn span_id(text: &str) -> Result<String, String> {
    hex_id(
        text,
        4,
        16,
        "a span id is 16 hex digits; a prefix needs at least 4",
    )
}

fn hex_id(text: &str, min: usize, max: usize, rule: &str) -> Result<String, String> {
    let id = text.trim().to_ascii_lowercase();
    if (min..=max).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(format!("{text:?}: {rule}"))
    }
}

fn level(text: &str) -> Result<Level, String> {
    text.parse::<Level>()
        .map_err(|_| format!("{text:?}: accepted are trace, debug, info, warn, error"))
}

/// `--since` / `--until`: an RFC 3339 UTC time, a date or date and time (UTC), or an age.
fn time(text: &str) -> Result<SystemTime, String> {
    parse_time(text, SystemTime::now()).ok_or_else(|| {
        format!(
            "{text:?}: accepted are a UTC time (2026-11-21T05:23:30Z, 2026-11-21T05:23, \
             2026-11-21) or an age before now (90s, 15m, 2h, 1d, 1h30m)"
        )
    })
}

pub(super) fn parse_time(text: &str, now: SystemTime) -> Option<SystemTime> {
    let text = text.trim();
    if let Some(age) = parse_age(text) {
        return now.checked_sub(age);
    }
    let parse = unitel::logfile::parse_timestamp;
    let text = text.replacen(' ', "T", 1).replacen('t', "T", 1);
    // A numeric offset (`+02:00`, `-0500`), as `date -Iseconds` prints: back to UTC.
    let (local, offset) = match text.get(10..).and_then(|t| t.rfind(['+', '-'])) {
        Some(at) => {
            let at = at + 10;
            let digits: String = text[at + 1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let minutes =
                digits[..2].parse::<u64>().ok()? * 60 + digits[2..].parse::<u64>().ok()?;
            let sign = if text[at..].starts_with('-') { -1 } else { 1 };
            (&text[..at], sign * i64::try_from(minutes * 60).ok()?)
        }
        None => (text.trim_end_matches(['Z', 'z']), 0),
    };
    let utc = match local.len() {
        10 => parse(&format!("{local}T00:00:00Z")),
        16 => parse(&format!("{local}:00Z")),
        _ => parse(&format!("{local}Z")),
    }?;
    // local = utc + offset, so utc = local - offset.
    if offset >= 0 {
        utc.checked_sub(Duration::from_secs(offset.unsigned_abs()))
    } else {
        utc.checked_add(Duration::from_secs(offset.unsigned_abs()))
    }
}

/// `90s`, `15m`, `2h`, `1d`, `1h30m`.
fn parse_age(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                number = Some(number.unwrap_or(0).checked_mul(10)? + u64::from(c as u8 - b'0'))
            }
            's' | 'm' | 'h' | 'd' | 'w' => {
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    'h' => 3600,
                    'd' => 86_400,
                    _ => 604_800,
                };
                total = total.checked_add(number.take()?.checked_mul(unit)?)?;
            }
            _ => return None,
        }
    }
    (number.is_none() && !text.is_empty()).then_some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn ids_are_hex_of_the_right_length_and_lowercased() {
        assert_eq!(trace_id("4BF92F35").unwrap(), "4bf92f35");
        assert!(trace_id("4bf92f3").is_err(), "7 digits");
        assert!(trace_id(&"a".repeat(33)).is_err());
        assert!(trace_id("4bf92f3g").is_err());
        assert!(span_id("00f0").is_ok() && span_id("00f").is_err());
    }

    #[test]
    fn times_are_utc_stamps_dates_or_ages() {
        let now = UNIX_EPOCH + Duration::from_secs(1_763_702_710);
        let at = |t: &str| {
            parse_time(t, now)
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
                .unwrap_or(0)
        };
        assert_eq!(at("2025-11-21T05:25:10Z"), 1_763_702_710);
        assert_eq!(at("2025-11-21T05:25:10.5Z"), 1_763_702_710);
        assert_eq!(at("2025-11-21T05:25:10"), 1_763_702_710);
        assert_eq!(at("2025-11-21 05:25"), 1_763_702_700);
        assert_eq!(at("2025-11-21"), 1_763_683_200);
        assert_eq!(at("2025-11-21T05:25:10+00:00"), 1_763_702_710);
        assert_eq!(at("2025-11-21T07:25:10.25+02:00"), 1_763_702_710);
        assert_eq!(at("2025-11-21T00:25:10-0500"), 1_763_702_710);
        assert_eq!(at("2025-11-21t05:25:10z"), 1_763_702_710);
        assert_eq!(at("15m"), 1_763_702_710 - 900);
        assert_eq!(at("1h30m"), 1_763_702_710 - 5400);
        for bad in [
            "yesterday",
            "15",
            "m",
            "2025-13-01",
            "",
            "2025-11-21T05:25:10+2",
        ] {
            assert!(parse_time(bad, now).is_none(), "{bad}");
        }
    }
}
