//! How things look: colour on a terminal (plain text otherwise), durations, times, values.

use super::args::ColorChoice;
use super::text;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::{Duration, SystemTime};
use tracing::Level;

/// Whether to colour, decided once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    color: bool,
}

/// ANSI SGR codes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Paint {
    Bold,
    Dim,
    Red,
    BoldRed,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Bold => "1",
            Paint::Dim => "2",
            Paint::Red => "31",
            Paint::BoldRed => "1;31",
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Blue => "34",
            Paint::Magenta => "35",
            Paint::Cyan => "36",
        }
    }
}

impl Style {
    /// `auto`: colour when standard output is a terminal, `NO_COLOR` is unset and `TERM` is
    /// not `dumb`; `CLICOLOR_FORCE` forces it.
    pub(crate) fn new(choice: ColorChoice) -> Style {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if set("NO_COLOR") => false,
            ColorChoice::Auto if set("CLICOLOR_FORCE") => true,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        Style { color }
    }

    /// Appends `text` to `out`, painted.
    pub(crate) fn paint(&self, out: &mut String, paint: Paint, text: &str) {
        if self.color && !text.is_empty() {
            let _ = write!(out, "\x1b[{}m{text}\x1b[0m", paint.code());
        } else {
            out.push_str(text);
        }
    }

    /// Appends a level, padded to five characters, in its colour.
    pub(crate) fn level(&self, out: &mut String, level: Level) {
        let paint = match level {
            Level::ERROR => Paint::BoldRed,
            Level::WARN => Paint::Yellow,
            Level::INFO => Paint::Green,
            Level::DEBUG => Paint::Blue,
            Level::TRACE => Paint::Magenta,
        };
        self.paint(out, paint, &format!("{:<5}", level.as_str()));
    }
}

/// `850ns`, `12.3µs`, `45.20ms`, `1.234s`, `2m05s`.
pub(crate) fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        format!("{:.1}µs", nanos as f64 / 1e3)
    } else if nanos < 1_000_000_000 {
        format!("{:.2}ms", nanos as f64 / 1e6)
    } else if nanos < 60_000_000_000 {
        format!("{:.3}s", nanos as f64 / 1e9)
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// `2026-11-21 05:23:30.123481` (UTC).
pub(crate) fn date_time(t: SystemTime) -> String {
    let stamp = unitel::logfile::format_timestamp(t);
    stamp.trim_end_matches('Z').replacen('T', " ", 1)
}

/// `05:23:30.123481` (UTC).
pub(crate) fn clock(t: SystemTime) -> String {
    let stamp = unitel::logfile::format_timestamp(t);
    stamp.split_once('T').map_or(stamp.clone(), |(_, time)| {
        time.trim_end_matches('Z').to_owned()
    })
}

/// A value as the value of `key=value` text: strings bare when they are simple tokens, else
/// quoted and escaped; numbers and booleans as they are; lists and objects as quoted JSON.
/// The console writes fields the same way (`text::write_token`).
pub(crate) fn value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => text::write_token(out, s),
        other => text::write_token(out, &other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_three_significant_figures_or_so() {
        assert_eq!(duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(duration(Duration::from_nanos(12_345)), "12.3µs");
        assert_eq!(duration(Duration::from_micros(45_200)), "45.20ms");
        assert_eq!(duration(Duration::from_millis(1_234)), "1.234s");
        assert_eq!(duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(text::escaped("a\x1b[2Jb\nc"), "a\\u{1b}[2Jb\\nc");
        let mut out = String::new();
        value(&mut out, &Value::String("two words".into()));
        out.push(' ');
        value(&mut out, &Value::from(42));
        assert_eq!(out, "\"two words\" 42");
    }
}
