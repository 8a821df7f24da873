//! The `unitel` command-line tool: everything that happened in one trace, from the JSON log
//! files alone (`docs/cli.md`).
//!
//! It reads the files through `unitel::logfile` only (the reader, the raw-byte trace filter,
//! the typed records) and imports nothing else of the crate.
//!
//! - `args.rs`: the command line;
//! - `input.rs`: the inputs (files, directories, rotated and gzip files, standard input) read
//!   into records, malformed lines skipped and counted;
//! - `tree.rs`: `unitel logs --trace`, the trace as a tree of spans with their log lines;
//! - `list.rs`: `unitel traces`, one line per trace;
//! - `follow.rs`: `unitel logs --follow`, new records as the files grow and rotate;
//! - `style.rs`: colour, durations, times, values;
//! - `src/format/text.rs`, the library's own file compiled in here too: escaping text for a
//!   terminal, so a record reads the same here as on the console (no forged fields, no
//!   invisible characters). It uses nothing else of the crate.

mod args;
mod follow;
mod input;
mod list;
mod style;
// What the console does not use of it is not dead there, nor is what this tool leaves.
#[allow(dead_code)]
#[path = "../format/text.rs"]
mod text;
mod tree;

use std::io::Write;
use std::process::ExitCode;

pub(crate) use self::args::{Cli, Command};

/// How a command ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing matched (the trace is not in the files): exit code 1.
    NotFound(String),
    /// Bad arguments or unreadable input: exit code 2.
    Usage(String),
    /// Standard output closed (`unitel logs .. | head`): a quiet success.
    Closed,
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Usage(format!("cannot write the output: {e}"))
        }
    }
}

/// Runs the command line; what `main` returns.
pub(crate) fn run(cli: Cli) -> ExitCode {
    let style = style::Style::new(cli.color);
    let result = match cli.command {
        Command::Logs(args) if args.follow => follow::run(&args, style),
        Command::Logs(args) => tree::run(&args, style),
        Command::Traces(args) => list::run(&args, style),
    };
    match result {
        Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::NotFound(message)) => {
            let _ = writeln!(std::io::stderr(), "unitel: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            let _ = writeln!(std::io::stderr(), "unitel: {message}");
            ExitCode::from(2)
        }
    }
}
