//! The inputs: paths expanded into files (a log file with its rotated and gzip copies, a
//! directory with everything under it, `-` for standard input), read through
//! `unitel::logfile`, with malformed and over-long lines skipped and counted.

use super::Failure;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use unitel::logfile::{self, LineScan, Record};

/// One file to read, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub(crate) fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "standard input".into(),
        }
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Input::File(path) => logfile::open_log_file(path),
            Input::Stdin => logfile::decompressed(std::io::stdin()),
        }
    }
}

/// The files behind the command line's paths, each once, in the order given (a log's files
/// oldest first).
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, Failure> {
    let mut inputs = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        if path.as_os_str() == "-" {
            if !inputs.contains(&Input::Stdin) {
                inputs.push(Input::Stdin);
            }
            continue;
        }
        let files = if path.is_file() && !is_log_path(path) {
            vec![path.clone()]
        } else {
            logfile::log_files(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?
        };
        if files.is_empty() {
            return Err(Failure::Usage(format!(
                "no log files at {} (expected a log file, its directory, or `-`)",
                path.display()
            )));
        }
        for file in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(key) {
                inputs.push(Input::File(file));
            }
        }
    }
    Ok(inputs)
}

/// Whether `path` is a log's live file whose rotated copies sit beside it: `logs/app.log`
/// names `app.log.1` and `app.2026-11-21.log` too; `app.log.1` or `app.log.2.gz` only
/// itself.
fn is_log_path(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let last = name.rsplit('.').next().unwrap_or("");
    !(name.ends_with(".gz") || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())))
}

/// What reading went through, reported at the end.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) files: usize,
    pub(crate) malformed: u64,
    pub(crate) too_long: u64,
    /// The first malformed line: where, and why.
    pub(crate) first_malformed: Option<String>,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.files += other.files;
        self.malformed += other.malformed;
        self.too_long += other.too_long;
        if self.first_malformed.is_none() {
            self.first_malformed = other.first_malformed;
        }
    }

    /// Counts a line that is not a record.
    pub(crate) fn malformed(&mut self, input: &Input, error: &unitel::Error) {
        self.malformed += 1;
        if self.first_malformed.is_none() {
            self.first_malformed = Some(format!("{}: {error}", input.name()));
        }
    }

    /// Says on standard error what was skipped, if anything.
    pub(crate) fn report(&self) {
        use std::io::Write as _;
        let mut err = std::io::stderr().lock();
        if self.malformed > 0 {
            let _ = writeln!(
                err,
                "unitel: skipped {} malformed line{} (first: {})",
                self.malformed,
                if self.malformed == 1 { "" } else { "s" },
                self.first_malformed.as_deref().unwrap_or("?")
            );
        }
        if self.too_long > 0 {
            let _ = writeln!(
                err,
                "unitel: skipped {} line{} longer than {} MiB",
                self.too_long,
                if self.too_long == 1 { "" } else { "s" },
                logfile::MAX_LINE_BYTES >> 20
            );
        }
    }
}

/// Reads every input with `scan`, parsing each line it hands over, and folds the records
/// into one `T` per worker with `fold` (given the record and its raw line); the workers' `T`s
/// come back with the tally. Files are read by as many threads as there are cores.
pub(crate) fn read<T: Send>(
    inputs: &[Input],
    scan: &LineScan,
    init: impl Fn() -> T + Sync,
    fold: impl Fn(&mut T, usize, Record, &[u8]) + Sync,
) -> Result<(Vec<T>, Tally), Failure> {
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(inputs.len())
        .max(1);
    let results: Vec<Result<(T, Tally), Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut tally = Tally::default();
                    loop {
                        let index = {
                            let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                            let index = *next;
                            *next += 1;
                            index
                        };
                        let Some(input) = inputs.get(index) else {
                            break;
                        };
                        let reader = input.open().map_err(|e| {
                            Failure::Usage(format!("cannot read {}: {e}", input.name()))
                        })?;
                        tally.files += 1;
                        let summary = scan
                            .run(reader, |line| match logfile::parse_line(line) {
                                Ok(record) => fold(&mut state, index, record, line),
                                Err(e) => tally.malformed(input, &e),
                            })
                            .map_err(|e| {
                                Failure::Usage(format!("cannot read {}: {e}", input.name()))
                            })?;
                        tally.too_long += summary.too_long;
                    }
                    Ok((state, tally))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure::Usage("a reader thread failed".into())))
            })
            .collect()
    });
    let mut states = Vec::with_capacity(results.len());
    let mut tally = Tally::default();
    for result in results {
        let (state, t) = result?;
        states.push(state);
        tally.absorb(t);
    }
    Ok((states, tally))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_log_path_reads_its_rotations_a_rotated_copy_only_itself() {
        assert!(is_log_path(Path::new("logs/app.log")));
        assert!(is_log_path(Path::new("logs/app.2026-11-21.log")));
        assert!(!is_log_path(Path::new("logs/app.log.1")));
        assert!(!is_log_path(Path::new("logs/app.log.2.gz")));
    }
}
